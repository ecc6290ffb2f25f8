"""Exponential smoothing (ETS) with automatic model selection (Hyndman, Koehler, Snyder & Grose, 2002).

An ETS(E, T, S) state-space model has an error type E (additive or multiplicative), a trend T (none,
additive, or additive damped) and a season S (none, additive, multiplicative) of length :math:`m`. The
additive-error, damped-trend, additive-season member, for instance, is

.. math::

    y_t = \\ell_{t-1} + \\phi b_{t-1} + s_{t-m} + \\varepsilon_t, \\quad
    \\ell_t = \\ell_{t-1} + \\phi b_{t-1} + \\alpha\\varepsilon_t, \\quad
    b_t = \\phi b_{t-1} + \\beta\\varepsilon_t, \\quad
    s_t = s_{t-m} + \\gamma\\varepsilon_t,

with forecasts :math:`\\hat y_{T+h} = \\ell_T + (\\phi + \\dots + \\phi^h) b_T + s_{T+h-m(k+1)}`. Every
admissible combination is fitted by maximum likelihood and the one with the lowest AICc is kept
(statsforecast ``AutoETS``, a port of R ``forecast::ets``). ``model`` is the three-letter ETS code with
``Z`` for "select": ``"ZZZ"`` (default) selects all three, ``"AAN"`` fixes Holt's linear method. ``damped``
``None`` tries both. Multiplicative components are skipped for series with non-positive values.

Short-series policy (see :mod:`ecomlab.models.local`): a seasonal model needs at least ``2 *
season_length`` observations; shorter histories (and failed seasonal fits) get the model with season
``N``, counted in ``fallbacks["non_seasonal"]``; tiny histories (statsforecast refuses fewer than the
number of parameters plus five points, so at most 6 points for the simplest model) get the naive forecast,
counted in ``fallbacks["naive"]``. No series is dropped.
"""

from __future__ import annotations

from statsforecast.models import AutoETS

from ecomlab.models.local import StatsForecaster

_CODES = ("AMZ", "NAMZ", "NAMZ")  # allowed letters for error, trend, season


class Ets(StatsForecaster):
    """Per-series ETS with automatic component selection; ``n_jobs != 1`` fits series in a process pool."""

    def __init__(self, season_length: int = 1, model: str = "ZZZ", damped: bool | None = None,
                 n_jobs: int = 1) -> None:
        super().__init__(season_length=season_length, n_jobs=n_jobs)
        code = str(model).upper()
        if len(code) != 3 or any(c not in allowed for c, allowed in zip(code, _CODES, strict=True)):
            raise ValueError(f"model={model!r}; expected a 3-letter ETS code such as 'ZZZ', 'AAN' or 'MAM' "
                             "(error A/M/Z, trend N/A/M/Z, season N/A/M/Z)")
        self.model, self.damped = code, damped

    @property
    def seasonal(self) -> bool:
        return self.season_length > 1 and self.model[2] != "N"

    def build(self, season_length: int) -> AutoETS:
        # the non-seasonal stage must not ask for a season: statsforecast refuses "A"/"M" with m = 1
        code = self.model if season_length > 1 else self.model[:2] + "N"
        return AutoETS(season_length=season_length, model=code, damped=self.damped)
