"""Croston's method for intermittent demand (Croston 1972) and its bias-corrected form, SBA (Syntetos & Boylan
2005).

Croston smooths the size of each non-zero demand and the interval between demands separately, updating both
only in periods with demand. With :math:`y_t > 0` the :math:`j`-th demand and :math:`q_j` the number of periods
since the previous one,

.. math::

    z_j = z_{j-1} + \\alpha (y_t - z_{j-1}), \\qquad p_j = p_{j-1} + \\alpha (q_j - p_{j-1}), \\qquad
    \\hat y_{T+h} = \\frac{z_J}{p_J}

for every ``h`` (``J``: the last demand), a flat forecast of the demand per period. The ratio of the two smoothed
quantities is biased upwards; SBA multiplies it by :math:`1 - \\alpha / 2`,
:math:`\\hat y_{T+h} = (1 - \\alpha / 2)\\, z_J / p_J`. Both use :math:`\\alpha = 0.1` (statsforecast's
``CrostonClassic`` and ``CrostonSBA``). A history without demand is forecast by its last value, zero.

Intervals are conformal and short histories fall back to naive (see :mod:`ecomlab.models.intermittent`).
"""

from __future__ import annotations

from statsforecast.models import CrostonClassic
from statsforecast.models import CrostonSBA as SFCrostonSBA
from statsforecast.utils import ConformalIntervals

from ecomlab.models.intermittent import IntermittentForecaster


class Croston(IntermittentForecaster):
    """Croston's method, per series: smoothed demand size over smoothed inter-demand interval."""

    def method(self, prediction_intervals: ConformalIntervals) -> CrostonClassic:
        return CrostonClassic(prediction_intervals=prediction_intervals)


class CrostonSBA(IntermittentForecaster):
    """The Syntetos-Boylan approximation: Croston's forecast times ``1 - alpha / 2`` (0.95)."""

    def method(self, prediction_intervals: ConformalIntervals) -> SFCrostonSBA:
        return SFCrostonSBA(prediction_intervals=prediction_intervals)
