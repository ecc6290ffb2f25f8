"""Forecasts of a non-negative target (sales, demand, counts): the policy every forecaster's output passes through.

A data module flags its target non-negative when no value of any series' training part is below zero
(``dims["nonnegative"]``, ``ForecastTrainData.nonnegative``; ``data.nonnegative`` overrides). For such a target
the evaluation (:class:`ecomlab.tasks.forecasting.ForecastTask`) and the served bundles apply
:func:`nonnegative_forecasts` to whatever a model predicts:

* every entry (the point forecast and each ``lo_<level>`` / ``hi_<level>`` bound) becomes ``max(x, 0)``. For a
  quantile this is exact, not a patch: ``max(Y, 0)`` is non-decreasing in ``Y``, so its ``tau``-quantile is
  ``max(q_tau(Y), 0)``, the quantile of the forecast law censored at zero, which is the law a non-negative target
  can have; intervals stay nested and the point forecast stays inside them;
* a series whose whole history is zero (a product never sold so far) gets zero for every entry: no model has
  evidence of any demand, and a classical model fitted to a constant zero says the same.

Models that can do better than censoring do so themselves (e.g. the LSTM's non-negative heads in
:mod:`ecomlab.models.forecast_heads`); this function leaves their forecasts unchanged except for the all-zero rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def all_zero(history: np.ndarray) -> bool:
    """Whether every observed (non-NaN) value of ``history`` is zero; a history without any is not."""
    y = np.asarray(history, dtype=np.float64)
    observed = y[~np.isnan(y)]
    return observed.size > 0 and not observed.any()


def nonnegative_forecasts(prediction: Mapping[str, np.ndarray],
                          histories: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """``prediction`` (``{"y_hat": [B, h], "lo_80": [B, h], ...}``) for a non-negative target: every entry clipped
    at zero, and all-zero for the rows whose history (``histories[b]``) is all zero. NaN stays NaN (a model's
    failure is reported, not hidden). Returns new arrays; the input is not modified."""
    zero = np.array([all_zero(h) for h in histories], dtype=bool)  # [B]
    out = {}
    for key, value in prediction.items():
        v = np.asarray(value, dtype=np.float64)
        if v.shape[:1] != zero.shape:
            raise ValueError(f"prediction '{key}' has {v.shape[0] if v.ndim else 0} rows for {len(zero)} histories")
        clipped = np.where(v < 0, 0.0, v)  # NaN < 0 is False: NaN kept
        clipped[zero] = 0.0  # [B, h] rows of series never above zero
        out[key] = clipped
    return out
