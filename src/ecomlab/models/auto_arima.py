"""Automatic (seasonal) ARIMA: the Hyndman & Khandakar (2008) stepwise order search, per series.

For each series a SARIMA(p, d, q)(P, D, Q)_m model

.. math::  \\phi_p(B)\\,\\Phi_P(B^m)\\,(1-B)^d (1-B^m)^D\\, y_t = c + \\theta_q(B)\\,\\Theta_Q(B^m)\\,\\varepsilon_t

is chosen as follows: the seasonal difference order D by a seasonal-strength test (m > 1), the difference
order d by repeated KPSS unit-root tests, then (p, q, P, Q) by a stepwise search that starts from a few
small models and moves one order at a time while the information criterion improves (``ic``, AICc by
default: :math:`\\mathrm{AICc} = -2\\log L + 2k + 2k(k+1)/(T-k-1)`). The fit is statsforecast's
``AutoARIMA`` (a port of R ``forecast::auto.arima``); forecasts are conditional means with Gaussian
prediction intervals.

Short-series policy (see :mod:`ecomlab.models.local`): a seasonal search needs at least ``2 *
season_length`` observations; shorter histories (and failed seasonal fits) get the non-seasonal search,
counted in ``fallbacks["non_seasonal"]``; histories where that fails too get the naive forecast, counted in
``fallbacks["naive"]``. No series is dropped.
"""

from __future__ import annotations

from statsforecast.models import AutoARIMA as _SFAutoARIMA

from ecomlab.models.local import StatsForecaster

_CRITERIA = ("aicc", "aic", "bic")


class AutoArima(StatsForecaster):
    """Per-series automatic ARIMA; ``n_jobs != 1`` fits series in a process pool (``-1``: all cores).

    ``stepwise=False`` searches all orders up to ``max_order`` (slower); ``approximation=True`` ranks
    candidates by a conditional-sum-of-squares likelihood and refits only the winner exactly (``None``: on
    when the series is longer than 150 or ``season_length > 12``, as in R).
    """

    def __init__(self, season_length: int = 1, ic: str = "aicc", stepwise: bool = True,
                 approximation: bool | None = False, max_order: int = 5, n_jobs: int = 1) -> None:
        super().__init__(season_length=season_length, n_jobs=n_jobs)
        if ic not in _CRITERIA:
            raise ValueError(f"ic={ic!r}; expected one of {_CRITERIA}")
        self.ic, self.stepwise, self.approximation = ic, bool(stepwise), approximation
        self.max_order = int(max_order)

    def build(self, season_length: int) -> _SFAutoARIMA:
        return _SFAutoARIMA(season_length=season_length, ic=self.ic, stepwise=self.stepwise,
                            approximation=self.approximation, max_order=self.max_order)
