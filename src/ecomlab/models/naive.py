"""Naive and Naive2, the M-competition benchmarks (Makridakis & Hibon 2000; M4, Makridakis et al. 2020).

**Naive** repeats the last observation: :math:`\\hat y_{T+h} = y_T`.

**Naive2** is the naive forecast of the seasonally adjusted series, re-seasonalised. A series of length
:math:`T` with season :math:`m > 1` counts as seasonal when its lag-:math:`m` autocorrelation passes the
90% test of the M4 benchmarks (``seasonality_test``; R ``SeasonalityTest``):

.. math::  |r_m| > 1.645 \\sqrt{\\left(1 + 2 \\sum_{k=1}^{m-1} r_k^2\\right) / T},

with :math:`r_k` the sample autocorrelations (statsmodels ``acf``). A seasonal series is split by classical
multiplicative decomposition, :math:`y_t = \\mathrm{trend}_t \\cdot s_t \\cdot e_t` (statsmodels
``seasonal_decompose``: centred moving-average trend, seasonal indices :math:`s` averaged per season
position and normalised to mean 1), and

.. math::  \\hat y_{T+h} = \\frac{y_T}{s_T}\\, s_{T+h-m\\lceil h/m \\rceil},

i.e. the last adjusted value times the index of the matching position in the last season. A series that is
not seasonal gets the naive forecast; with :math:`m = 1` Naive2 is Naive.

Short-series and sign policy (a series is never dropped; each fallback to naive is counted in
``fallbacks``, cumulatively over calls): the M4 benchmarks test seasonality only when :math:`T \\ge 3m`, so a
shorter history gets the naive forecast (``fallbacks["short"]``); multiplicative decomposition needs
:math:`y > 0`, so a history with a zero or negative value gets the naive forecast
(``fallbacks["non_positive"]``). A series that fails the test is not a fallback: naive is Naive2's forecast
for it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from statsmodels.tsa.seasonal import seasonal_decompose
from statsmodels.tsa.stattools import acf

from ecomlab.models.base import Forecaster
from ecomlab.models.local import check_histories

#: one-sided 90% normal quantile of the M4 seasonality test
_Z90 = 1.645


class Naive(Forecaster):
    """The last observed value, repeated over the horizon."""

    def forecast(self, histories: Sequence[np.ndarray], horizon: int) -> np.ndarray:  # -> [B, horizon]
        series = check_histories(histories, horizon)
        last = np.array([y[-1] for y in series], dtype=np.float64)  # [B]
        return np.repeat(last[:, None], horizon, axis=1)  # [B] -> [B, horizon]


def is_seasonal(y: np.ndarray, season_length: int) -> bool:
    """The M4 90% autocorrelation test at lag ``season_length`` (see the module docstring)."""
    m = season_length
    with np.errstate(invalid="ignore", divide="ignore"):  # a constant series has 0/0 autocorrelations
        r = acf(y, nlags=m, fft=False)  # [m + 1], r[0] = 1
    limit = _Z90 * np.sqrt((1.0 + 2.0 * np.sum(r[1:m] ** 2)) / y.size)
    return bool(np.abs(r[m]) > limit)  # NaN (constant series) compares False: not seasonal


class Naive2(Forecaster):
    """Naive on the multiplicatively seasonally adjusted series when the M4 seasonality test passes."""

    def __init__(self, season_length: int = 1) -> None:
        super().__init__()
        if season_length < 1:
            raise ValueError(f"season_length must be >= 1, got {season_length}")
        self.season_length = int(season_length)
        #: series-windows forecast by plain naive for lack of history or of positive values
        self.fallbacks: dict[str, int] = {"short": 0, "non_positive": 0}

    def seasonal_indices(self, y: np.ndarray) -> np.ndarray | None:
        """The multiplicative seasonal index of every observation ``[T]``, or ``None`` for plain naive."""
        m = self.season_length
        if m == 1:
            return None
        if y.size < 3 * m:
            self.fallbacks["short"] += 1
            return None
        if np.any(y <= 0):
            self.fallbacks["non_positive"] += 1
            return None
        if not is_seasonal(y, m):
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.asarray(seasonal_decompose(y, model="multiplicative", period=m).seasonal)  # [T]

    def forecast(self, histories: Sequence[np.ndarray], horizon: int) -> np.ndarray:  # -> [B, horizon]
        series = check_histories(histories, horizon)
        m = self.season_length
        out = np.empty((len(series), horizon), dtype=np.float64)
        for b, y in enumerate(series):
            s = self.seasonal_indices(y)
            if s is None:
                out[b] = y[-1]
                continue
            # the indices repeat with period m, so the last season's indices continue over the horizon
            future = s[-m:][np.arange(horizon) % m]  # [m] -> [horizon]
            out[b] = y[-1] / s[-1] * future
        return out
