"""TSB, the Teunter-Syntetos-Babai method for intermittent demand (Teunter, Syntetos & Babai 2011).

Croston's method (:mod:`ecomlab.models.croston`) updates only when demand occurs, so its forecast stays put
through any number of empty periods, also when a product is dying out. TSB smooths the *probability* of demand
every period and the demand size only in periods with demand:

.. math::

    p_t = p_{t-1} + \\alpha_p (\\mathbb 1[y_t > 0] - p_{t-1}), \\qquad
    z_t = \\begin{cases} z_{t-1} + \\alpha_d (y_t - z_{t-1}) & y_t > 0 \\\\ z_{t-1} & \\text{else} \\end{cases},
    \\qquad \\hat y_{T+h} = p_T\\, z_T,

an unbiased flat forecast of the demand per period that decays towards zero while no demand arrives.
statsforecast's ``TSB`` takes the two smoothing constants as given; the defaults here, ``alpha_d = alpha_p =
0.1``, are the low end of the range the paper studies (0.1 - 0.3), chosen before seeing any data set here.

Intervals are conformal and short histories fall back to naive (see :mod:`ecomlab.models.intermittent`).
"""

from __future__ import annotations

from statsforecast.models import TSB as SFTSB
from statsforecast.utils import ConformalIntervals

from ecomlab.models.intermittent import IntermittentForecaster


class TSB(IntermittentForecaster):
    """Demand probability (updated every period) times demand size (updated at demands), per series."""

    def __init__(self, horizon: int, alpha_d: float = 0.1, alpha_p: float = 0.1, conformal_windows: int = 5,
                 n_jobs: int = 1) -> None:
        super().__init__(horizon=horizon, conformal_windows=conformal_windows, n_jobs=n_jobs)
        for name, value in (("alpha_d", alpha_d), ("alpha_p", alpha_p)):
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name}={value}; a smoothing constant lies in (0, 1]")
        self.alpha_d, self.alpha_p = float(alpha_d), float(alpha_p)

    def method(self, prediction_intervals: ConformalIntervals) -> SFTSB:
        return SFTSB(alpha_d=self.alpha_d, alpha_p=self.alpha_p, prediction_intervals=prediction_intervals)
