"""ADIDA, the aggregate-disaggregate intermittent demand approach (Nikolopoulos, Syntetos, Boylan, Petropoulos
& Assimakopoulos 2011).

Temporal aggregation removes most of the zeros: the history is cut, from its end, into non-overlapping buckets
of :math:`k` periods, with :math:`k` the mean interval between demands rounded to an integer, and each bucket
summed, :math:`Y_i = \\sum_{t \\in \\text{bucket } i} y_t`. Simple exponential smoothing with its smoothing constant
optimised (statsforecast ``ADIDA``) forecasts the next bucket, and the forecast is spread evenly over its
periods,

.. math::  \\hat y_{T+h} = \\hat Y_{I+1} / k,

a flat forecast of the demand per period. A history without demand is forecast zero.

Intervals are conformal and short histories fall back to naive (see :mod:`ecomlab.models.intermittent`).
"""

from __future__ import annotations

from statsforecast.models import ADIDA as SFADIDA
from statsforecast.utils import ConformalIntervals

from ecomlab.models.intermittent import IntermittentForecaster


class ADIDA(IntermittentForecaster):
    """Exponential smoothing of the series summed over buckets of the mean inter-demand interval, per series."""

    def method(self, prediction_intervals: ConformalIntervals) -> SFADIDA:
        return SFADIDA(prediction_intervals=prediction_intervals)
