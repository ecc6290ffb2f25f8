"""Gradient-boosted trees on lag features, global across the series of a panel.

Histogram gradient boosting (Ke et al. 2017, LightGBM; scikit-learn's ``HistGradientBoostingRegressor``) fits
``y_{T+k} / s_T ~ f(y_{T+1-l} / s_T for l in lags, mean(y_{T-w+1..T}) / s_T for w in rolling, log s_T,
calendar_{T+k}, futr_{T+k}, series)`` where ``T`` is the forecast origin and ``s_T`` the mean absolute value of
the last ``max(lags)`` observations (so one model serves series of any level). Missing lags of short histories
are NaN, which the trees route natively; so is a missing value of the data (``data.preprocess.fill_gaps=nan``),
and a missing target is left out of the training samples.

**Lags.** By default the last season and two seasons further back: ``1..m``, ``2m``, ``3m`` (``m`` the season
length). In ``fit_panel`` the lags are capped by the history the fits actually have: a lag needs at least two
training samples where it is observed, in the longest training series (shortened by the calibration hold-out,
and by the horizon for the direct strategy). Lags beyond that are dropped with a logged note (104 weeks of
training data hold no 156-week lag; the trees cannot bin a feature that is always missing). Rolling means need
no cap: they average whatever part of their window is observed. The series index is a categorical feature when the panel has at most
255 series (the library's limit), otherwise it is left out.

Multi-horizon, by ``strategy``: ``recursive`` -- one model for ``k = 1``, applied ``h`` times feeding its own
forecasts back as lags, each step kept within ``[lo - r, hi + r]`` (``lo``, ``hi`` the window's observed
minimum and maximum, ``r = hi - lo``): the fed-back forecasts re-measure ``s``, so a ratio above 1 would
otherwise compound (seen on an intermittent panel: tens to millions in 28 steps); ``direct`` -- one model per
step ``k = 1..h`` (Taieb et al. 2012), everything measured at the origin.

Fitted in ``fit_panel`` on every series' training part. With ``refit: true`` each evaluation window is
forecast by models refitted on the panel truncated at that window's cutoff: the batch's series contribute
their histories (exactly that truncation); series not in the batch for that window contribute only their
training part (data before the first evaluation cutoff), so no model ever sees data after a cutoff, at the
cost of older data for those series. Past-only covariates are not used.

**Prediction intervals: split conformal on held-out training windows** (Vovk et al. 2005; per horizon step as
in Stankeviciute et al. 2021). Quantile boosting was not chosen: one extra ensemble per quantile and step,
and recursive quantile forecasts fed back through the lags do not compose into valid multi-step quantiles.
In ``fit_panel`` a *calibration* model :math:`\\tilde f` (same features, same strategy) is fitted on every
series without its last ``h + C - 1`` observations (``C = calibration_windows``); it then forecasts from the
``C`` held-out origins :math:`o = T_s - h - C + 2, \\dots, T_s - h + 1` of each series ``s`` (1-based; the
history is :math:`y_{1..o-1}`, so every target lies in the training part and none was seen by
:math:`\\tilde f`), giving scaled absolute errors per step :math:`k = 1..h`

.. math::  e_{s,o,k} = |y_{s,o+k-1} - \\tilde y_{s,o+k-1}| \\,/\\, s_{o},

with :math:`s_o` the model's own scale at the origin. For level :math:`100(1-\\alpha)\\%` and the
:math:`n_k` errors of step ``k``, :math:`\\hat q_k` is the :math:`\\lceil (n_k + 1)(1 - \\alpha) \\rceil`-th
smallest (the largest when that rank exceeds :math:`n_k`: too few windows for the level, stated rather than
refused), and the interval of the final model's forecast is

.. math::  \\hat y_{T+k} \\pm s_T \\, \\hat q_k .

Scaling by :math:`s_T` pools the errors of series of any level. The calibration model costs a second fit;
``calibration_windows: 0`` gives point forecasts only. With ``refit: true`` the refitted models reuse the
errors calibrated in ``fit_panel``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.ensemble import HistGradientBoostingRegressor

from ecomlab.models.base import Forecaster, ForecastTrainData

log = logging.getLogger(__name__)

_MAX_CATEGORIES = 255


def _nanmean_rows(a: np.ndarray) -> np.ndarray:
    """Row means over the non-NaN entries ``[N, W] -> [N]``; NaN for a row with none (no warning)."""
    count = np.sum(~np.isnan(a), axis=1)
    total = np.nansum(a, axis=1)
    return np.divide(total, count, out=np.full(len(a), np.nan), where=count > 0)


class GBTLags(Forecaster):
    """Global histogram gradient boosting on lags, rolling means and calendar features."""

    def __init__(self, horizon: int, season_length: int = 1, lags: Sequence[int] | None = None,
                 rolling: Sequence[int] | None = None, strategy: Literal["recursive", "direct"] = "recursive",
                 refit: bool = False, max_iter: int = 300, learning_rate: float = 0.05, max_leaf_nodes: int = 31,
                 min_samples_leaf: int = 20, max_train_samples: int = 200_000, calibration_windows: int = 8,
                 seed: int = 0) -> None:
        super().__init__()
        if strategy not in ("recursive", "direct"):
            raise ValueError(f"strategy={strategy!r}; expected 'recursive' or 'direct'")
        m = season_length
        # default: the last season, then the same season 2 and 3 cycles back
        self.lags = sorted(set(lags or [*range(1, m + 1), 2 * m, 3 * m]))
        self.rolling = sorted(set(rolling or {m, 2 * m} - {1}))
        if min(self.lags) < 1 or (self.rolling and min(self.rolling) < 2):
            raise ValueError(f"lags must be >= 1 and rolling windows >= 2; got {self.lags}, {self.rolling}")
        if calibration_windows < 0:
            raise ValueError(f"calibration_windows={calibration_windows}; expected >= 0 (0: no intervals)")
        self.horizon, self.strategy, self.refit = horizon, strategy, refit
        self.width = max(self.lags + self.rolling)  # observations the features look back
        self.params = dict(max_iter=max_iter, learning_rate=learning_rate, max_leaf_nodes=max_leaf_nodes,
                           min_samples_leaf=min_samples_leaf, random_state=seed)
        self.max_train_samples, self.seed = max_train_samples, seed
        self.calibration_windows = calibration_windows
        self.models: list[HistGradientBoostingRegressor] = []
        #: scaled absolute calibration errors ``[n, h]`` (see the module docstring); None: no intervals
        self.calibration_errors: np.ndarray | None = None
        self.panel: ForecastTrainData | None = None
        self.n_futr, self.use_series = 0, True
        #: lags the training history could not feed (see :meth:`cap_lags`)
        self.dropped_lags: list[int] = []

    # ------------------------------------------------------------------ features
    def _base(self, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(features [N, n_lags + n_rolling + 1], scale [N])`` from the last ``width`` values before each
        origin (``window [N, W]``, NaN-padded on the left)."""
        W = self.width
        scale = _nanmean_rows(np.abs(window[:, W - max(self.lags):]))  # [N]
        scale = np.where(scale > 0, scale, 1.0)  # all-zero or empty recent history
        lags = window[:, [W - lag for lag in self.lags]]  # [N, n_lags]
        rolling = np.stack([_nanmean_rows(window[:, W - w:]) for w in self.rolling], axis=1).reshape(len(window), -1)
        base = np.concatenate([lags, rolling], axis=1) / scale[:, None]  # [N, n_lags + n_rolling]
        return np.concatenate([base, np.log(scale)[:, None]], axis=1), scale  # [N, n_lags + n_rolling + 1]

    def _design(self, base: np.ndarray, known: np.ndarray, series: np.ndarray) -> np.ndarray:
        """``[N, F]``: window features, the target step's known inputs, then the series (categorical, last)."""
        columns = [base, known] + ([series[:, None].astype(np.float64)] if self.use_series else [])
        return np.concatenate(columns, axis=1)

    @staticmethod
    def _known(calendar: np.ndarray | None, covariates: Any, n_futr: int, length: int) -> np.ndarray:
        """Known-future inputs ``[T, n_calendar + n_futr]`` of one series."""
        cal = np.zeros((length, 0)) if calendar is None else np.asarray(calendar, np.float64)
        cov = np.zeros((length, 0)) if covariates is None else np.asarray(covariates, np.float64)[:, :n_futr]
        return np.concatenate([cal, cov], axis=1)  # [T, n_cal] + [T, n_futr] -> [T, n_known]

    def _samples(self, y: np.ndarray, known: np.ndarray, index: int, k: int) -> tuple[np.ndarray, ...]:
        """All (origin T, target T + k) pairs of one series: windows ``[N, W]``, known ``[N, n_known]``, ..."""
        n = len(y) - k  # origins 0 .. len - 1 - k
        if n < 1:
            return np.zeros((0, self.width)), np.zeros((0, known.shape[1])), np.zeros(0), np.zeros(0, np.int64)
        padded = np.concatenate([np.full(self.width, np.nan), y])  # [W + T]
        windows = sliding_window_view(padded, self.width)[1: n + 1]  # [n, W]: row T ends at y_T
        return windows, known[k: k + n], y[k: k + n], np.full(n, index, np.int64)

    def _fit(self, ys: Sequence[np.ndarray], knowns: Sequence[np.ndarray]) -> list[HistGradientBoostingRegressor]:
        self.use_series = len(ys) <= _MAX_CATEGORIES
        steps = [1] if self.strategy == "recursive" else list(range(1, self.horizon + 1))
        rng = np.random.default_rng(self.seed)
        models = []
        for k in steps:
            parts = [self._samples(np.asarray(y, np.float64), kn, i, k)
                     for i, (y, kn) in enumerate(zip(ys, knowns, strict=True))]
            windows, known, target, series = (np.concatenate(p) for p in zip(*parts, strict=True))
            observed = np.isfinite(target)  # a missing target (fill_gaps=nan) teaches nothing
            if not observed.all():
                windows, known, target, series = windows[observed], known[observed], target[observed], series[observed]
            if len(target) == 0:
                raise ValueError(f"no series is longer than {k} observations; nothing to fit")
            if len(target) > self.max_train_samples:
                keep = rng.choice(len(target), self.max_train_samples, replace=False)
                windows, known, target, series = windows[keep], known[keep], target[keep], series[keep]
            base, scale = self._base(windows)
            X = self._design(base, known, series)  # [N, F]
            model = HistGradientBoostingRegressor(
                categorical_features=[X.shape[1] - 1] if self.use_series else None, **self.params)
            models.append(model.fit(X, target / scale))
        return models

    def cap_lags(self, longest: int) -> None:
        """Drop the lags the longest training series cannot feed (module docstring)."""
        cut = longest - self.horizon - self.calibration_windows + 1 if self.calibration_windows else longest
        step = self.horizon if self.strategy == "direct" else 1
        cap = cut - step - 1  # a lag l is observed in cut - step - l + 1 samples: keep those with >= 2
        lags = [lag for lag in self.lags if lag <= cap]
        if not lags:
            raise ValueError(
                f"the longest training series has {longest} observations: after the horizon ({self.horizon}) and "
                f"the conformal calibration windows (model.net.calibration_windows={self.calibration_windows}) "
                "no lag has two training samples; lower model.net.calibration_windows or data.backtest.horizon")
        if lags != self.lags:
            self.dropped_lags = sorted(set(self.lags) - set(lags))
            log.info("gbt: lags %s dropped: the longest training series has %d observations, so a lag can reach %d "
                     "steps back (model.net.lags)", self.dropped_lags, longest, cap)
            self.lags = lags

    def fit_panel(self, data: ForecastTrainData) -> None:
        self.cap_lags(max(len(y) for y in data.y))
        self.panel, self.n_futr = data, len(data.futr_columns)
        knowns = [self._known(None if data.calendar is None else data.calendar[i],
                              None if data.covariates is None else data.covariates[i], self.n_futr, len(y))
                  for i, y in enumerate(data.y)]
        self.models = self._fit(data.y, knowns)
        self.calibration_errors = self._calibrate(data.y, knowns) if self.calibration_windows else None

    def _calibrate(self, ys: Sequence[np.ndarray], knowns: Sequence[np.ndarray]) -> np.ndarray | None:
        """Scaled absolute errors ``[n, h]`` of a model fitted without each series' last ``h + C - 1`` values,
        forecasting from its ``C`` last origins; ``None`` when no series is long enough."""
        h, C = self.horizon, self.calibration_windows
        cuts = [max(len(y) - h - C + 1, 0) for y in ys]  # the earliest held-out origin of each series
        try:
            models = self._fit([np.asarray(y, np.float64)[:c] for y, c in zip(ys, cuts, strict=True)],
                               [kn[:c] for kn, c in zip(knowns, cuts, strict=True)])
        except ValueError:  # no series has a training sample left before its held-out part
            return None
        histories, known, series, targets = [], [], [], []
        for s, (y, kn, cut) in enumerate(zip(ys, knowns, cuts, strict=True)):
            y = np.asarray(y, np.float64)
            for origin in range(max(cut, 1), len(y) - h + 1):  # at least one observation of history
                histories.append(y[:origin])
                known.append(kn[origin: origin + h])
                series.append(s)
                targets.append(y[origin: origin + h])
        if not histories:
            return None
        forecast = self._forecast_arrays(models, histories, np.stack(known), np.asarray(series), h)  # [n, h]
        _, scale = self._base(self._windows(histories))  # [n]
        return np.abs(np.stack(targets) - forecast) / scale[:, None]  # [n, h]

    def conformal_quantiles(self, level: float, horizon: int) -> np.ndarray:
        """``[h]`` scaled half-widths :math:`\\hat q_k` of the ``level`` % interval (module docstring)."""
        errors = self.calibration_errors
        assert errors is not None
        if horizon > errors.shape[1]:
            raise ValueError(f"intervals are calibrated for {errors.shape[1]} steps; asked for {horizon}")
        out = np.empty(horizon)
        for k in range(horizon):  # per step, over the errors whose target was observed
            column = np.sort(errors[:, k][np.isfinite(errors[:, k])])
            n = len(column)
            rank = min(int(np.ceil((n + 1) * level / 100.0)), n)  # 1-based; capped at the largest error
            out[k] = column[rank - 1] if n else np.nan
        return out  # [h]

    # ------------------------------------------------------------------ forecasting
    def _windows(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """``[B, W]``: the last ``width`` values of each history, NaN-padded on the left."""
        window = np.full((len(histories), self.width), np.nan)
        for b, y in enumerate(histories):  # one copy per series, not per sample
            tail = np.asarray(y, np.float64)[-self.width:]
            window[b, self.width - len(tail):] = tail
        return window

    def _forecast(self, models: Sequence[Any], batch: dict[str, Any], rows: np.ndarray, horizon: int) -> np.ndarray:
        cal = np.asarray(batch["future_calendar"], np.float64)[rows]  # [B, h, n_cal]
        cov = np.asarray(batch["future_covariates"], np.float64)[rows][..., : self.n_futr]  # [B, h, n_futr]
        known = np.concatenate([cal, cov], axis=2)  # [B, h, n_known]
        series = np.asarray(batch["series_index"])[rows]
        return self._forecast_arrays(models, [batch["history"][r] for r in rows], known, series, horizon)

    def _forecast_arrays(self, models: Sequence[Any], histories: Sequence[np.ndarray], known: np.ndarray,
                         series: np.ndarray, horizon: int) -> np.ndarray:
        """``[B, h]`` forecasts from histories, known-future inputs ``[B, h, n_known]`` and series indices ``[B]``
        (NaN: a series the models never saw, routed like a missing category). ``models`` need ``predict(X)``."""
        window = self._windows(histories)  # [B, W]
        out = np.empty((len(histories), horizon))
        if self.strategy == "direct":
            base, scale = self._base(window)  # everything is measured at the origin
            for k in range(horizon):
                out[:, k] = models[k].predict(self._design(base, known[:, k], series)) * scale
            return out
        # fed-back forecasts re-measure the scale, so a predicted ratio above 1 compounds step after step (an
        # intermittent series' forecast grew from tens to millions over 28 days): each step stays within the
        # window's observed range widened by that range on both sides
        low, high = np.nanmin(window, axis=1), np.nanmax(window, axis=1)  # [B]
        low, high = low - (high - low), high + (high - low)
        for k in range(horizon):
            base, scale = self._base(window)
            step = models[0].predict(self._design(base, known[:, k], series)) * scale  # [B]
            out[:, k] = np.clip(step, low, high)
            window = np.concatenate([window[:, 1:], out[:, k: k + 1]], axis=1)  # feed the forecast back, [B, W]
        return out

    def _intervals(self, histories: Sequence[np.ndarray], y_hat: np.ndarray,
                   levels: Sequence[int]) -> dict[str, np.ndarray]:
        """``lo_<level>`` / ``hi_<level>`` ``[B, h]``: ``y_hat -/+ s_T q_k`` (module docstring); ``{}`` without
        calibration errors."""
        if not levels or self.calibration_errors is None:
            return {}
        _, scale = self._base(self._windows(histories))  # [B]
        out = {}
        for level in levels:
            half = scale[:, None] * self.conformal_quantiles(level, y_hat.shape[1])[None, :]  # [B, 1] * [1, h]
            out[f"lo_{level}"], out[f"hi_{level}"] = y_hat - half, y_hat + half
        return out

    def predict(self, batch: dict[str, Any], horizon: int, levels: Sequence[int] = ()) -> dict[str, np.ndarray]:
        if not self.models or self.panel is None:
            raise RuntimeError(f"{type(self).__name__}: call fit_panel() before predict()")
        if self.strategy == "direct" and horizon > len(self.models):
            raise ValueError(f"direct strategy was fitted for horizon {len(self.models)}, asked for {horizon}")
        out = np.empty((len(batch["history"]), horizon))
        if not self.refit:
            out[:] = self._forecast(self.models, batch, np.arange(len(out)), horizon)
            return {"y_hat": out, **self._intervals(batch["history"], out, levels)}
        windows = np.asarray(batch["window"])
        for w in np.unique(windows):
            rows = np.flatnonzero(windows == w)
            ys, knowns = list(self.panel.y), [
                self._known(None if self.panel.calendar is None else self.panel.calendar[i],
                            None if self.panel.covariates is None else self.panel.covariates[i], self.n_futr, len(y))
                for i, y in enumerate(self.panel.y)]
            for r in rows:  # the batch's series: their history up to this window's cutoff
                s = int(batch["series_index"][r])
                ys[s] = np.asarray(batch["history"][r], np.float64)
                knowns[s] = self._known(batch["history_calendar"][r], batch["history_covariates"][r], self.n_futr,
                                        len(ys[s]))
            out[rows] = self._forecast(self._fit(ys, knowns), batch, rows, horizon)
        return {"y_hat": out, **self._intervals(batch["history"], out, levels)}

    def forecast(self, histories: Sequence[np.ndarray], horizon: int) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} is global: it forecasts evaluation batches via predict()")
