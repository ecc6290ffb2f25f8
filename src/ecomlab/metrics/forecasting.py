"""Point-forecast accuracy metrics (numpy) and their aggregation over series and windows.

Shapes
------
Every metric accepts either

* 1-D arrays ``y, y_hat: [h]`` (one forecast of horizon ``h``) and returns a Python ``float``, or
* 2-D arrays ``y, y_hat: [B, h]`` (``B`` forecasts, last axis = horizon) and returns ``np.ndarray[B]``.

``y`` and ``y_hat`` must have identical shapes. Values are computed in float64. NaNs in the inputs
propagate (no silent skipping inside a forecast).

``FORECAST_METRICS`` holds the metrics that only need ``(y, y_hat)`` (``mae``, ``rmse``, ``smape``).
``mase`` and ``rmsse`` are deliberately *not* in it because they additionally need the in-sample history
(or a precomputed scale from :func:`mase_scale` / :func:`rmsse_scale`).

Aggregation: :func:`per_series` averages a per-window table over the windows of each series and
:func:`aggregate` then averages over series, both ignoring NaNs (nanmean); NaN appears e.g. for MASE
on a constant history.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

__all__ = [
    "FORECAST_METRICS",
    "aggregate",
    "mae",
    "mase",
    "mase_scale",
    "per_series",
    "rmse",
    "rmsse",
    "rmsse_scale",
    "smape",
]

FloatOrArray = float | np.ndarray


def _pair(y: np.ndarray, y_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y, dtype=np.float64)
    b = np.asarray(y_hat, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"y and y_hat must have the same shape, got {a.shape} and {b.shape}")
    if a.ndim not in (1, 2):
        raise ValueError(f"expected 1-D [h] or 2-D [B, h] arrays, got ndim={a.ndim}")
    if a.shape[-1] == 0:
        raise ValueError("empty horizon")
    return a, b


def _out(v: np.ndarray) -> FloatOrArray:
    """0-d result -> float, [B] result -> ndarray."""
    return float(v) if v.ndim == 0 else v


def mae(y: np.ndarray, y_hat: np.ndarray) -> FloatOrArray:
    """Mean absolute error: ``MAE = (1/h) * sum_t |y_t - ŷ_t|``."""
    a, b = _pair(y, y_hat)
    return _out(np.mean(np.abs(a - b), axis=-1))  # [..., h] -> [...]


def rmse(y: np.ndarray, y_hat: np.ndarray) -> FloatOrArray:
    """Root mean squared error: ``RMSE = sqrt((1/h) * sum_t (y_t - ŷ_t)^2)``."""
    a, b = _pair(y, y_hat)
    return _out(np.sqrt(np.mean((a - b) ** 2, axis=-1)))  # [..., h] -> [...]


def smape(y: np.ndarray, y_hat: np.ndarray) -> FloatOrArray:
    """Symmetric MAPE on the 0-200 scale (M4 definition).

    ``sMAPE = (1/h) * sum_t 200 * |y_t - ŷ_t| / (|y_t| + |ŷ_t|)``, where a term with
    ``y_t = ŷ_t = 0`` (0/0) counts as 0.
    """
    a, b = _pair(y, y_hat)
    num = 200.0 * np.abs(a - b)  # [..., h]
    den = np.abs(a) + np.abs(b)  # [..., h]
    # den == 0 only when y_t = ŷ_t = 0 (0/0 -> 0); NaN inputs give NaN != 0 and so propagate
    terms = np.divide(num, den, out=np.zeros_like(num), where=den != 0)  # [..., h]
    return _out(np.mean(terms, axis=-1))  # [..., h] -> [...]


def _checked_insample(insample: np.ndarray, season_length: int) -> np.ndarray:
    """``insample`` as float64 ``[T]`` or ``[B, T]``, with a clear error for a bad season length or shape."""
    if isinstance(season_length, bool) or not isinstance(season_length, int | np.integer) or season_length < 1:
        raise ValueError(f"season_length must be an int >= 1, got {season_length!r}")
    x = np.asarray(insample, dtype=np.float64)
    if x.ndim not in (1, 2):
        raise ValueError(f"insample must be 1-D [T] or 2-D [B, T], got ndim={x.ndim}")
    return x


def mase_scale(insample: np.ndarray, season_length: int) -> FloatOrArray:
    """In-sample seasonal-naive MAE, the MASE denominator (M4 definition).

    ``scale = (1/(T-m)) * sum_{t=m..T-1} |x_t - x_{t-m}|`` for the history ``x = insample`` of length
    ``T`` and season ``m = season_length`` (0-based ``t``).

    Fallback: if ``T <= m`` (history shorter than one season plus one) ``m = 1`` is used instead
    (non-seasonal naive). If even ``T <= 1`` the scale is undefined and NaN is returned.

    ``insample`` may be 1-D ``[T]`` (returns float) or 2-D ``[B, T]`` (returns ``[B]``; all series
    share ``T``).
    """
    x = _checked_insample(insample, season_length)
    t_len = x.shape[-1]
    m = int(season_length) if t_len > season_length else 1
    if t_len <= m:
        return _out(np.full(x.shape[:-1], np.nan))
    diffs = np.abs(x[..., m:] - x[..., :-m])  # [..., T] -> [..., T-m]
    return _out(np.mean(diffs, axis=-1))  # [..., T-m] -> [...]


def mase(
    y: np.ndarray,
    y_hat: np.ndarray,
    insample: np.ndarray | None = None,
    season_length: int = 1,
    *,
    scale: FloatOrArray | None = None,
) -> FloatOrArray:
    """Mean absolute scaled error (M4 definition).

    ``MASE = MAE(y, ŷ) / scale`` with ``scale = mase_scale(insample, season_length)``
    ``= mean_{t=m..T-1} |insample_t - insample_{t-m}|``.

    Pass either ``insample`` (+ ``season_length``) or a precomputed ``scale`` (from
    :func:`mase_scale`, useful to compute it once per series), not both.

    A scale of 0 (constant / perfectly seasonal history) or NaN gives NaN, whatever the numerator;
    aggregations (:func:`per_series`, :func:`aggregate`) use nanmean so such forecasts are skipped.
    For 2-D ``y`` pass ``insample`` as ``[B, T]`` or ``scale`` as ``[B]``.
    """
    if (insample is None) == (scale is None):
        raise ValueError("pass exactly one of `insample` or `scale`")
    if scale is None:
        assert insample is not None
        scale = mase_scale(insample, season_length)
    num = np.asarray(mae(y, y_hat), dtype=np.float64)  # [...]
    s = np.asarray(scale, dtype=np.float64)
    if s.shape not in ((), num.shape):
        raise ValueError(f"scale shape {s.shape} does not match the number of forecasts {num.shape}")
    s = np.broadcast_to(s, num.shape)
    ok = s > 0  # NaN > 0 is False
    out = np.divide(num, s, out=np.full(num.shape, np.nan), where=ok)
    return _out(out)


def rmsse_scale(insample: np.ndarray, season_length: int = 1, *, drop_leading_zeros: bool = True) -> FloatOrArray:
    """In-sample mean squared seasonal-naive error, the RMSSE denominator (M5 definition).

    ``scale = (1/(n-m)) * sum_{t=m..n-1} (x_t - x_{t-m})^2`` over the history ``x``; with
    ``drop_leading_zeros`` (the M5 rule) ``x`` starts at the first non-zero observation, so a product's
    periods before it was first sold do not count. The M5 competition uses ``m = 1`` (the default).

    Fallbacks as :func:`mase_scale`: ``m = 1`` when ``n <= m``, NaN when even ``n <= 1`` (an all-zero history
    with ``drop_leading_zeros`` has ``n = 0``). ``insample`` is 1-D ``[T]`` (returns float) or 2-D ``[B, T]``
    (returns ``[B]``; the leading zeros are dropped per row).
    """
    x = _checked_insample(insample, season_length)
    rows = x.reshape(-1, x.shape[-1])  # [B, T] (a 1-D history is one row)
    t_len = rows.shape[1]
    nonzero = rows != 0  # NaN != 0: a NaN counts as observed and propagates
    first = np.where(nonzero.any(axis=1), nonzero.argmax(axis=1), t_len) if drop_leading_zeros \
        else np.zeros(len(rows), dtype=np.int64)  # [B] start of the active history
    n = t_len - first  # [B]
    m = np.where(n > season_length, int(season_length), 1)  # [B]
    out = np.full(len(rows), np.nan)
    for b in np.flatnonzero(n > 1):  # row by row: each has its own start and lag
        active = rows[b, first[b]:]  # [n_b]
        out[b] = np.mean((active[m[b]:] - active[: -m[b]]) ** 2)  # [n_b - m_b] -> scalar
    return _out(out.reshape(x.shape[:-1]))


def rmsse(
    y: np.ndarray,
    y_hat: np.ndarray,
    insample: np.ndarray | None = None,
    season_length: int = 1,
    *,
    scale: FloatOrArray | None = None,
) -> FloatOrArray:
    """Root mean squared scaled error (Hyndman & Koehler 2006; the M5 competition's point metric).

    ``RMSSE = sqrt( (1/h) * sum_t (y_t - ŷ_t)^2 / scale )`` with ``scale = rmsse_scale(insample,
    season_length)``, the in-sample mean squared (seasonal) naive error from the first non-zero observation.
    Pass either ``insample`` (+ ``season_length``, default 1 as in M5) or a precomputed ``scale``, not both.
    A scale of 0 or NaN gives NaN, as for :func:`mase`. Squared errors make RMSSE favour forecasts of the mean
    (MASE favours the median): on intermittent demand a forecast of zero can win MASE and lose RMSSE.
    """
    if (insample is None) == (scale is None):
        raise ValueError("pass exactly one of `insample` or `scale`")
    if scale is None:
        assert insample is not None
        scale = rmsse_scale(insample, season_length)
    num = np.asarray(rmse(y, y_hat), dtype=np.float64) ** 2  # [...] mean squared error
    s = np.asarray(scale, dtype=np.float64)
    if s.shape not in ((), num.shape):
        raise ValueError(f"scale shape {s.shape} does not match the number of forecasts {num.shape}")
    s = np.broadcast_to(s, num.shape)
    out = np.divide(num, s, out=np.full(num.shape, np.nan), where=s > 0)  # NaN > 0 is False
    return _out(np.sqrt(out))


FORECAST_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], FloatOrArray]] = {
    "mae": mae,
    "rmse": rmse,
    "smape": smape,
}
"""Metrics of signature ``fn(y, y_hat)``. ``mase`` and ``rmsse`` are separate: they need ``insample`` or ``scale``."""


_KEYS = ("unique_id", "window")


def _metric_columns(per_window: pd.DataFrame) -> list[str]:
    missing = [c for c in _KEYS if c not in per_window.columns]
    if missing:
        raise ValueError(f"per_window is missing column(s) {missing}")
    cols = [c for c in per_window.columns if c not in _KEYS]
    if not cols:
        raise ValueError("per_window has no metric columns")
    return cols


def per_series(per_window: pd.DataFrame) -> pd.DataFrame:
    """Average each metric over the windows of each series (NaN windows skipped).

    ``per_series[s, metric] = nanmean_{w} per_window[s, w, metric]``

    Input columns: ``unique_id``, ``window`` and one numeric column per metric. Returns a frame with
    columns ``unique_id`` + the metric columns, one row per series, sorted by ``unique_id``. A series
    whose windows are all NaN for a metric gets NaN.
    """
    cols = _metric_columns(per_window)
    grouped = per_window.groupby("unique_id", sort=True)[cols].mean()  # pandas mean skips NaN
    return grouped.reset_index()


def aggregate(per_window: pd.DataFrame) -> dict[str, float]:
    """Overall score per metric: mean over windows within each series, then mean over series.

    ``score[metric] = nanmean_{s} ( nanmean_{w} per_window[s, w, metric] )``

    Every series therefore weighs the same regardless of its number of windows. Returns
    ``{metric: value}`` (NaN if a metric is NaN everywhere).
    """
    ps = per_series(per_window)
    cols = [c for c in ps.columns if c != "unique_id"]
    return {c: float(ps[c].mean()) for c in cols}
