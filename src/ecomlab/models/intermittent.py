"""Shared machinery of the intermittent-demand baselines (Croston, TSB, ADIDA; statsforecast's implementations).

Intermittent demand has many zero periods between irregular, variable non-zero demands (spare parts, slow
products of a shop). Exponential smoothing of the series itself is biased low right after a demand and high
after a long gap; the methods here instead smooth the two parts of demand, its size and its occurrence
(Croston 1972; Syntetos & Boylan 2005; Teunter, Syntetos & Babai 2011), or the series aggregated over the
typical interval between demands (Nikolopoulos et al. 2011). Each gives a flat forecast of the demand rate per
period, :math:`\\hat y_{T+h} = \\hat y_{T+1}` for every ``h``, which is never negative for a non-negative history and
is zero for a history without demand.

Intervals: the methods have no error model, so central intervals are conformal (statsforecast
``ConformalIntervals``): the method is refitted at ``conformal_windows`` cutoffs inside each history and the
absolute errors of those backtests over the horizon, per step, give symmetric bands
:math:`\\hat y_{T+h} \\pm q_{level}(|e_h|)`. A non-negative target's lower bounds below zero are clipped by the
evaluation (:mod:`ecomlab.models.nonnegative`).

Short-series policy (a series is never dropped; see :mod:`ecomlab.models.local`): statsforecast backtests at
as many of the ``conformal_windows`` cutoffs as the history holds, but at least two, so a history needs
``2 * horizon + 1`` points; a shorter one, or a fit that fails, gets the naive forecast and its random-walk
intervals, counted in ``fallbacks["naive"]``. The methods are not seasonal: the data's season length is unused.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from statsforecast.utils import ConformalIntervals

from ecomlab.models.local import StatsForecaster
from ecomlab.models.local_fit import SFModel


class IntermittentForecaster(StatsForecaster):
    """A per-series statsforecast intermittent-demand method with conformal intervals.

    Subclasses build the statsforecast model in :meth:`method` from its ``prediction_intervals`` argument.
    ``horizon`` comes from the data module (``dims``): the conformal windows are as long as the forecast.
    """

    def __init__(self, horizon: int, conformal_windows: int = 5, n_jobs: int = 1) -> None:
        super().__init__(season_length=1, n_jobs=n_jobs)
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        if conformal_windows < 2:
            raise ValueError(f"conformal_windows={conformal_windows}; statsforecast needs at least 2")
        self.horizon, self.conformal_windows = int(horizon), int(conformal_windows)
        #: series-windows forecast by naive instead (history too short for the conformal windows, failed fit)
        self.fallbacks = {"naive": 0}

    def method(self, prediction_intervals: ConformalIntervals) -> SFModel:
        raise NotImplementedError

    def build(self, season_length: int) -> SFModel:
        return self.method(ConformalIntervals(h=self.horizon, n_windows=self.conformal_windows))

    def _run(self, histories: Sequence[np.ndarray], horizon: int, levels: Sequence[int]) -> dict[str, np.ndarray]:
        if horizon != self.horizon:
            raise ValueError(f"{type(self).__name__} calibrates its intervals for horizon {self.horizon} "
                             f"(the data's); asked for {horizon}")
        return super()._run(histories, horizon, levels)
