"""ARIMA / seasonal ARIMA baseline (Box & Jenkins, 1970), fitted independently per series by statsmodels.

A SARIMA(p, d, q)(P, D, Q)_s model of :math:`y_t` with backshift operator :math:`B` is

.. math::  \\phi_p(B)\\,\\Phi_P(B^s)\\,(1-B)^d (1-B^s)^D\\, y_t = c(t) + \\theta_q(B)\\,\\Theta_Q(B^s)\\,\\varepsilon_t,

fitted by exact maximum likelihood (state-space Kalman filter); forecasts are the conditional means
:math:`\\hat y_{T+h} = \\mathbb{E}[y_{T+h} \\mid y_{1:T}]`.

Robustness policy: statsmodels' convergence warnings are silenced but counted in ``fit_warnings``. If a
fit raises (``LinAlgError``, or ``IndexError``/``ValueError`` on very short histories) or yields a
non-finite forecast, that series falls back to the naive forecast :math:`\\hat y_{T+h} = y_T` and is
counted in ``fit_failures``. Both counters refer to the most recent :meth:`Arima.forecast` call;
``fallbacks["naive"]`` counts the same fallbacks cumulatively over every call, like the other classical
forecasters' ``fallbacks``. A fixed order is not adapted to short series: a history too short for it fails to
fit and takes this naive fallback. ``n_jobs != 1`` fits the series in a process pool (``-1``: all cores;
:func:`ecomlab.models.local.map_series`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from statsmodels.tools.sm_exceptions import ConvergenceWarning
from statsmodels.tsa.arima.model import ARIMA

from ecomlab.models.base import Forecaster
from ecomlab.models.local import check_histories, map_series

_Warning = tuple[str, type[Warning], str, int]  # (message, category, filename, lineno)


def _fit_one(
    y: np.ndarray,
    horizon: int,
    order: tuple[int, int, int],
    seasonal_order: tuple[int, int, int, int],
    trend: str | None,
) -> tuple[np.ndarray, int, bool, list[_Warning]]:
    """Forecast one series; returns ``(forecast [horizon], n_convergence_warnings, failed, other_warnings)``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = ARIMA(y, order=order, seasonal_order=seasonal_order, trend=trend).fit()
            forecast = np.asarray(result.forecast(horizon), dtype=np.float64)  # [horizon]
            failed = not np.all(np.isfinite(forecast))
        # statsmodels raises many exception types on degenerate input; any of them means "no usable fit".
        except Exception:
            failed = True
    if failed:
        forecast = np.full(horizon, y[-1], dtype=np.float64)
    n_conv = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    # Start-parameter and numerical warnings from inside statsmodels are routine for per-series fits;
    # anything raised elsewhere is passed back to the caller.
    # Plain tuples, because WarningMessage objects need not pickle back from a joblib worker.
    others = [
        (str(w.message), w.category, w.filename, w.lineno) for w in caught if "statsmodels" not in w.filename
    ]
    return forecast, n_conv, failed, others


class Arima(Forecaster):
    """Per-series (S)ARIMA forecasts with a naive fallback; parallel over series when ``n_jobs != 1``."""

    def __init__(
        self,
        order: Sequence[int] = (1, 1, 1),
        seasonal_order: Sequence[int] | None = None,
        trend: str | None = None,
        n_jobs: int = 1,
    ) -> None:
        super().__init__()
        # Hydra passes lists; statsmodels expects tuples.
        p, d, q = _ints(order, 3, "order")
        self.order: tuple[int, int, int] = (p, d, q)
        sp_, sd, sq, s = _ints(
            (0, 0, 0, 0) if seasonal_order is None else seasonal_order, 4, "seasonal_order"
        )
        self.seasonal_order: tuple[int, int, int, int] = (sp_, sd, sq, s)
        self.trend = trend
        self.n_jobs = n_jobs
        self.fit_warnings: int = 0
        self.fit_failures: int = 0
        #: series-windows that took the naive fallback, over every call since the model was built
        self.fallbacks: dict[str, int] = {"naive": 0}

    def forecast(self, histories: Sequence[np.ndarray], horizon: int) -> np.ndarray:  # -> [B, horizon]
        series = check_histories(histories, horizon)
        args = (horizon, self.order, self.seasonal_order, self.trend)
        # the same chunked, forked pool as the statsforecast models (one task per series costs a round trip each)
        results = map_series(_fit_one, series, self.n_jobs, *args)
        self.fit_warnings = sum(r[1] for r in results)
        self.fit_failures = sum(r[2] for r in results)
        self.fallbacks["naive"] += self.fit_failures
        for _, _, _, others in results:
            for message, category, filename, lineno in others:
                warnings.warn_explicit(message, category, filename, lineno)
        if not results:
            return np.empty((0, horizon), dtype=np.float64)
        return np.stack([r[0] for r in results])  # B x [horizon] -> [B, horizon]


def _ints(values: Sequence[int], length: int, name: str) -> list[int]:
    if len(values) != length:
        raise ValueError(f"{name} must have {length} entries, got {list(values)}")
    return [int(v) for v in values]
