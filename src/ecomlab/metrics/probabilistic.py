"""Probabilistic forecast metrics (numpy): pinball (quantile) loss, mean scaled quantile loss, scaled CRPS,
coverage.

Shapes follow :mod:`ecomlab.metrics.forecasting`: ``y`` and each forecast are 1-D ``[h]`` (returns a float)
or 2-D ``[B, h]`` (returns ``[B]``). Values are float64; NaNs propagate.

A model's prediction dict (``y_hat``, ``lo_<level>``, ``hi_<level>``) is read as quantile forecasts by
:func:`quantiles_from_intervals`: a central ``level`` % interval spans the quantiles
``(1 - level/100) / 2`` and ``(1 + level/100) / 2``; the point forecast of a probabilistic model is its
median (quantile 0.5).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["coverage", "msql", "pinball_loss", "quantiles_from_intervals", "scaled_crps"]

FloatOrArray = float | np.ndarray


def _pair(y: np.ndarray, y_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(y, dtype=np.float64), np.asarray(y_hat, dtype=np.float64)
    if a.shape != b.shape or a.ndim not in (1, 2) or a.shape[-1] == 0:
        raise ValueError(f"expected equal 1-D [h] or 2-D [B, h] shapes with h >= 1, got {a.shape} and {b.shape}")
    return a, b


def _out(v: np.ndarray) -> FloatOrArray:
    return float(v) if v.ndim == 0 else v


def pinball_loss(y: np.ndarray, y_q: np.ndarray, q: float) -> FloatOrArray:
    """Mean pinball loss of the ``q``-quantile forecast ``y_q`` over the horizon.

    ``rho_q(u) = u * (q - 1[u < 0])`` with ``u = y_t - y_q,t``;  ``PL_q = (1/h) * sum_t rho_q(y_t - y_q,t)``.
    For ``q = 0.5`` this is half the MAE.
    """
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile level must lie in (0, 1), got {q}")
    a, b = _pair(y, y_q)
    u = a - b  # [..., h]
    return _out(np.mean(u * (q - (u < 0)), axis=-1))  # [..., h] -> [...]


def msql(y: np.ndarray, quantiles: Mapping[float, np.ndarray], scale: FloatOrArray) -> FloatOrArray:
    """Mean scaled quantile loss: pinball loss averaged over the given quantile levels, divided by the MASE
    scale (in-sample seasonal-naive MAE, :func:`ecomlab.metrics.forecasting.mase_scale`).

    ``MSQL = (1/|Q|) * sum_{q in Q} PL_q(y, y_q) / scale``. A scale of 0 or NaN gives NaN (as for MASE).
    With the median alone, ``MSQL = MASE / 2``.
    """
    if not quantiles:
        raise ValueError("msql needs at least one quantile forecast")
    loss = np.mean([np.asarray(pinball_loss(y, y_q, q), dtype=np.float64) for q, y_q in quantiles.items()],
                   axis=0)  # [Q, ...] -> [...]
    s = np.broadcast_to(np.asarray(scale, dtype=np.float64), loss.shape)
    return _out(np.divide(loss, s, out=np.full(loss.shape, np.nan), where=s > 0))


def scaled_crps(y: np.ndarray, quantiles: Mapping[float, np.ndarray]) -> FloatOrArray:
    """Scaled CRPS of a quantile forecast (Rangapuram et al. 2021; GluonTS's mean weighted quantile loss,
    utilsforecast's ``scaled_crps``): the CRPS, approximated by twice the pinball loss averaged over the levels
    ``Q``, summed over the horizon and divided by the sum of absolute actuals,

    ``sCRPS = (2/|Q|) * sum_{q in Q} sum_t rho_q(y_t - y_q,t) / sum_t |y_t|``.

    Unlike :func:`msql` it needs no history: it is relative to the window's own level, so it is comparable
    across series of any scale but undefined (NaN) for a window whose actuals are all zero.
    """
    if not quantiles:
        raise ValueError("scaled_crps needs at least one quantile forecast")
    a = np.asarray(y, dtype=np.float64)
    loss = np.mean([np.asarray(pinball_loss(a, y_q, q), dtype=np.float64) for q, y_q in quantiles.items()],
                   axis=0)  # [Q, ...] -> [...] mean over levels of the per-step mean
    norm = np.mean(np.abs(a), axis=-1)  # [..., h] -> [...]: sums over h, both divided by h
    return _out(np.divide(2.0 * loss, norm, out=np.full(loss.shape, np.nan), where=norm > 0))


def coverage(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> FloatOrArray:
    """Empirical coverage of an interval: ``(1/h) * sum_t 1[lo_t <= y_t <= hi_t]`` (share of actuals inside,
    bounds included)."""
    a, low = _pair(y, lo)
    _, high = _pair(y, hi)
    return _out(np.mean((a >= low) & (a <= high), axis=-1).astype(np.float64))  # [..., h] -> [...]


def quantiles_from_intervals(prediction: Mapping[str, np.ndarray]) -> dict[float, np.ndarray]:
    """``{quantile level: forecast}`` from ``lo_<level>`` / ``hi_<level>`` entries plus the median ``y_hat``;
    empty when the prediction has no intervals (a point forecaster's ``y_hat`` is not a median)."""
    out: dict[float, np.ndarray] = {}
    for key, value in prediction.items():
        side, _, level = key.partition("_")
        if side in ("lo", "hi") and level:
            alpha = float(level) / 100.0
            if not 0.0 < alpha < 1.0:
                raise ValueError(f"interval '{key}': level must lie in (0, 100)")
            out[round((1 - alpha) / 2 if side == "lo" else (1 + alpha) / 2, 10)] = np.asarray(value)
    if out:
        out[0.5] = np.asarray(prediction["y_hat"])
    return dict(sorted(out.items()))
