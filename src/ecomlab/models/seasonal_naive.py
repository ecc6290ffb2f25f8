"""Seasonal naive forecaster (Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*, §5.2).

Each future step repeats the value observed one (or more) full seasons earlier:

.. math::  \\hat y_{T+h} = y_{T+h-m(\\lfloor (h-1)/m \\rfloor + 1)},

i.e. the last observed season of length :math:`m` is tiled over the horizon. A history shorter than one
season has no value a full season back, so it falls back to the naive forecast :math:`\\hat y_{T+h} = y_T`.
With :math:`m = 1` the two coincide.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ecomlab.models.base import Forecaster
from ecomlab.models.local import check_histories


class SeasonalNaive(Forecaster):
    """Tiles the last full season of each history over the horizon; naive (last value) when too short."""

    def __init__(self, season_length: int = 12) -> None:
        super().__init__()
        if season_length < 1:
            raise ValueError(f"season_length must be >= 1, got {season_length}")
        self.season_length = int(season_length)

    def forecast(self, histories: Sequence[np.ndarray], horizon: int) -> np.ndarray:  # -> [B, horizon]
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        m = self.season_length
        steps = np.arange(horizon)  # h - 1 for h = 1..horizon
        out = np.empty((len(histories), horizon), dtype=np.float64)
        # missing values (NaN) carried forward, as for every per-series model
        for b, y in enumerate(check_histories(histories, horizon)):
            if y.size < m:
                out[b] = y[-1]
            else:
                # (h-1) mod m indexes the last season; equivalent to the lag m(floor((h-1)/m) + 1).
                out[b] = y[-m:][steps % m]  # [m] -> [horizon]
        return out
