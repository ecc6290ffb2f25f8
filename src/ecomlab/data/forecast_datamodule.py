"""Lightning data module for sales forecasting: a long-format panel, rolling-origin backtest windows and
training windows for global (trained) forecasters.

Series are indexed by their position in sorted ``unique_id`` order; that ``series_index`` is the same in
:meth:`ForecastDataModule.train_data`, the training windows and the evaluation batches.

**Training part** of a series: its observations before its first evaluation cutoff (the first validation
window's cutoff, or the first test window's when ``val_windows=0``). Nothing at or after that cutoff is ever
given to ``fit_panel`` or to the training windows, except by :meth:`ForecastDataModule.train_through_validation`
(a network refit on the validation windows once they chose its training length), which moves it to the first
test cutoff.

**Evaluation batches** (one item per (series, window) pair) are dicts with

* ``unique_id`` (list[str]), ``window`` (list[int]), ``series_index`` (``[B]`` int array);
* ``history`` / ``history_ds`` (lists of 1-D arrays: every observation before the window's cutoff),
  ``future`` (``[B, h]``) and ``future_ds`` (list of date arrays);
* ``history_covariates`` (list of ``[T_b, n_futr + n_hist]`` arrays: known-future columns first, then the
  past-only ones), ``future_covariates`` (``[B, h, n_futr]``: known-future values over the horizon),
  ``history_calendar`` (list of ``[T_b, n_calendar]``) and ``future_calendar`` (``[B, h, n_calendar]``);
* the same window as fixed-size tensors for networks (see :class:`WindowTensors`): the last ``input_size``
  steps of history, left-padded and masked where the history is shorter.

**Training windows** (``train_dataloader``) are the :class:`WindowTensors` keys plus ``outsample_y``
``[B, h]``; cut points are drawn (with replacement, ``windows_per_epoch`` per epoch) from the positions of
each series' training part whose ``horizon`` targets lie inside that part, and the batch is gathered with one
fancy-indexing operation on a padded panel array (no Python loop per window). Two knobs shape the draw
(N-BEATS, Oreshkin et al. 2020, Sec. 3 "history limit"):

* ``train_window_limit``: only the ``train_window_limit`` latest cut points of each series are eligible
  (``None``: all), so training concentrates on the recent dynamics the forecast continues from;
* ``train_sampling``: ``"window"`` draws every eligible cut point with equal probability (long series weigh
  more), ``"series"`` first draws a series uniformly, then one of its cut points, so every series weighs the
  same, as in the evaluation average.

Covariates are declared once. ``futr_covariates`` (known for the forecast horizon, e.g. promotions or prices)
and ``hist_covariates`` (only known up to the cutoff) classify the covariates the source declares
(``data.source.covariates``, recorded as ``bundle.meta["covariates"]``); a list left ``None`` takes the declared
columns the other list does not (both ``None``: all of them past-only, which can never leak the future), so the
source's ``covariates`` alone is enough. A source that keeps only the columns it is told
(:class:`~ecomlab.data.sources.panels.SalesFile`) is told the declared ones, so the lists alone are enough too.
They are checked at setup: a missing or non-numeric column, or a NaN (a known-future covariate with NaN inside
an evaluation horizon is reported as such), is a :class:`DataValidationError` naming the column, the key that
declared it and the series.

**Missing values** (``data.preprocess.fill_gaps=nan``): a missing ``y`` stays NaN in the evaluation batches'
``history`` and ``future`` (``future_mask`` ``[B, h]`` is 1 where observed), and is 0 with mask 0 in the window
tensors (``insample_mask``, and ``outsample_mask`` ``[B, h]`` in training windows), so a loss or metric that
weights by the mask skips it. Calendar features (sin/cos of the
position in each seasonal cycle the frequency has) are derived from ``ds``.

**Static covariates** (``static_covariates``: one category per series, e.g. aus_retail's ``state`` and
``industry``) are read from a sales-panel column that is constant within each series, or else from the
source's per-series metadata (``bundle.meta["series"][unique_id][name]``). Each column's categories are
numbered in sorted order and offset so that all columns share one code space: ``static_codes`` ``[S, n_static]``
holds codes in ``0 .. n_static_levels - 1``, handed to global models as ``ForecastTrainData.static`` (the LSTM
learns one embedding per group). ``dims`` carries ``n_static`` and ``n_static_levels`` only when some are
declared.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler, WeightedRandomSampler

from ecomlab.data.bundle import BundleSource, DatasetBundle, DataValidationError
from ecomlab.data.cache import load_bundle
from ecomlab.data.loaders import loader_settings
from ecomlab.data.preprocess import Preprocess, infer_panel_freq
from ecomlab.data.splits import BacktestWindow, RollingOrigin, resolve_protocol
from ecomlab.models.base import ForecastTrainData

log = logging.getLogger(__name__)

#: calendar cycles by sampling step: (largest step in days, [(pandas attribute, period, cycle in days), ...]);
#: a cycle is listed only where it varies between observations (daily data has no hour, weekly no weekday)
_CALENDAR = [
    (1 - 1e-9, [("hour", 24, 1.0), ("day_of_week", 7, 7.0)]),
    (1 + 1e-9, [("day_of_week", 7, 7.0), ("day_of_year", 365.25, 365.25)]),
    (7 + 1e-9, [("day_of_year", 365.25, 365.25)]),
    (31 + 1e-9, [("month", 12, 365.25)]),
    (92 + 1e-9, [("quarter", 4, 365.25)]),
]


def calendar_attributes(ds: np.ndarray) -> list[tuple[str, float]]:
    """The seasonal cycles of a series sampled like ``ds`` (sub-daily / daily / weekly / monthly / quarterly;
    none for yearly data) that ``ds`` covers at least 1.5 times: a network meeting a phase of a cycle it never
    saw in training (late-year days after one year of data) extrapolates badly."""
    days = np.asarray(ds, dtype="datetime64[ns]").astype(np.int64) / 86_400e9
    step = float(np.median(np.diff(days))) if days.size > 1 else 1.0
    span = float(days[-1] - days[0]) + step if days.size else 0.0
    for largest, attributes in _CALENDAR:
        if step <= largest:
            return [(name, period) for name, period, cycle in attributes if span >= 1.5 * cycle]
    return []


def calendar_features(ds: np.ndarray, attributes: Sequence[tuple[str, float]]) -> np.ndarray:
    """``[T, 2 * len(attributes)]``: ``sin`` and ``cos`` of ``2 pi * position / period`` for each cycle."""
    index = pd.DatetimeIndex(np.asarray(ds, dtype="datetime64[ns]"))
    if not attributes:
        return np.zeros((len(index), 0), dtype=np.float32)
    angle = np.stack([2 * np.pi * np.asarray(getattr(index, name), np.float64) / period
                      for name, period in attributes], axis=1)  # [T, A]
    return np.concatenate([np.sin(angle), np.cos(angle)], axis=1).astype(np.float32)  # [T, A] x2 -> [T, 2A]


@dataclass(frozen=True)
class Series:
    unique_id: str
    ds: np.ndarray
    y: np.ndarray
    #: ``[T, n_futr + n_hist]`` float32 covariates (known-future columns first)
    covariates: np.ndarray
    #: ``[T, n_calendar]`` calendar features
    calendar: np.ndarray
    index: int = 0


class WindowTensors:
    """Fixed-size window tensors cut from a left-padded panel (shared by training and evaluation).

    Keys: ``insample_y`` / ``insample_mask`` ``[B, L]`` (target history, 0 and mask 0 where padded),
    ``hist_exog`` ``[B, L, n_hist]`` (past-only covariates), ``futr_exog`` ``[B, L + h, n_futr]`` (known-future
    covariates over history and horizon), ``calendar`` ``[B, L + h, n_calendar]``, ``series_index`` ``[B]``,
    and ``outsample_y`` ``[B, h]`` (training windows only).
    """

    def __init__(self, series: Sequence[Series], input_size: int, horizon: int, n_futr: int) -> None:
        self.input_size, self.horizon, self.n_futr = input_size, horizon, n_futr
        length = max(len(s.y) for s in series)
        # panel position L + t holds step t of a series; the L leading zeros pad short histories
        n_cov, n_cal = series[0].covariates.shape[1], series[0].calendar.shape[1]
        self.y = np.zeros((len(series), input_size + length), np.float32)
        self.mask = np.zeros_like(self.y)
        self.cov = np.zeros((len(series), input_size + length, n_cov), np.float32)
        self.cal = np.zeros((len(series), input_size + length, n_cal), np.float32)
        for s in series:
            end = input_size + len(s.y)
            observed = np.isfinite(s.y)  # a missing value (fill_gaps=nan) is 0 and masked, like padding
            self.y[s.index, input_size:end] = np.where(observed, s.y, 0.0)
            self.mask[s.index, input_size:end] = observed
            self.cov[s.index, input_size:end] = s.covariates
            self.cal[s.index, input_size:end] = s.calendar

    def cut(self, series_index: np.ndarray, cutoff: np.ndarray, with_target: bool) -> dict[str, torch.Tensor]:
        """Windows ending at ``cutoff`` (the first forecast step) of the given series, all at once."""
        L, h = self.input_size, self.horizon
        rows = series_index[:, None]  # [B, 1]
        cols = cutoff[:, None] + np.arange(L + h)[None, :]  # [B, L + h]: panel positions cutoff-L .. cutoff+h-1
        cov = self.cov[rows, cols]  # [B, L + h, n_cov]
        out = {
            "insample_y": torch.from_numpy(self.y[rows, cols[:, :L]]),  # [B, L]
            "insample_mask": torch.from_numpy(self.mask[rows, cols[:, :L]]),  # [B, L]
            "futr_exog": torch.from_numpy(np.ascontiguousarray(cov[:, :, : self.n_futr])),  # [B, L + h, n_futr]
            "hist_exog": torch.from_numpy(np.ascontiguousarray(cov[:, :L, self.n_futr:])),  # [B, L, n_hist]
            "calendar": torch.from_numpy(self.cal[rows, cols]),  # [B, L + h, n_cal]
            "series_index": torch.from_numpy(series_index.astype(np.int64)),  # [B]
        }
        if with_target:
            out["outsample_y"] = torch.from_numpy(self.y[rows, cols[:, L:]])  # [B, h]
            out["outsample_mask"] = torch.from_numpy(self.mask[rows, cols[:, L:]])  # [B, h]: 0 where missing
        return out


class WindowDataset(Dataset):
    """Evaluation items: one (series, backtest window) pair each."""

    def __init__(self, items: list[tuple[Series, BacktestWindow]], tensors: WindowTensors) -> None:
        self.items, self.tensors = items, tensors

    def __len__(self) -> int:
        return len(self.items)

    def __getitems__(self, indices: list[int]) -> dict[str, Any]:
        chosen = [self.items[i] for i in indices]
        n_futr = self.tensors.n_futr
        index = np.array([s.index for s, _ in chosen], dtype=np.int64)
        cutoff = np.array([w.cutoff for _, w in chosen], dtype=np.int64)
        future = np.stack([s.y[w.cutoff: w.cutoff + w.horizon] for s, w in chosen])  # [B, h]
        return {
            "position": np.asarray(indices, dtype=np.int64),  # [B] in the data set: order and identity across ranks
            "unique_id": [s.unique_id for s, _ in chosen],
            "window": [w.index for _, w in chosen],
            "series_index": index,
            "history": [s.y[: w.cutoff] for s, w in chosen],
            "history_ds": [s.ds[: w.cutoff] for s, w in chosen],
            "future": future,  # [B, h], NaN where missing (fill_gaps=nan)
            "future_mask": np.isfinite(future).astype(np.float32),  # [B, h]: 1 observed, 0 missing
            "future_ds": [s.ds[w.cutoff: w.cutoff + w.horizon] for s, w in chosen],
            "history_covariates": [s.covariates[: w.cutoff] for s, w in chosen],
            "future_covariates": np.stack([s.covariates[w.cutoff: w.cutoff + w.horizon, :n_futr]
                                           for s, w in chosen]),  # [B, h, n_futr]
            "history_calendar": [s.calendar[: w.cutoff] for s, w in chosen],
            "future_calendar": np.stack([s.calendar[w.cutoff: w.cutoff + w.horizon] for s, w in chosen]),
            **self.tensors.cut(index, cutoff, with_target=False),
        }

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.__getitems__([index])


class TrainWindowDataset(Dataset):
    """Every admissible training window (series, cut point); a batch is gathered in one indexing operation."""

    def __init__(self, series_index: np.ndarray, cutoff: np.ndarray, tensors: WindowTensors) -> None:
        self.series_index, self.cutoff, self.tensors = series_index, cutoff, tensors

    def __len__(self) -> int:
        return len(self.cutoff)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        chosen = np.asarray(indices, dtype=np.int64)
        return self.tensors.cut(self.series_index[chosen], self.cutoff[chosen], with_target=True)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.__getitems__([index])


class ForecastDataModule(pl.LightningDataModule):
    """A sales panel from a source, the backtest protocol, covariates and the seasonality used by MASE.

    The bundle is loaded through :func:`ecomlab.data.cache.load_bundle`: ``preprocess`` is applied after the
    source and the result is cached under ``cache_dir`` (``None``: no cache) for sources with ``cache_key()``.
    ``input_size`` is the history window networks see (default ``max(2 * horizon, 2 * season_length)``);
    ``windows_per_epoch`` training windows are drawn per epoch, in batches of ``batch_size``; evaluation takes
    ``eval_batch_size`` (series, window) pairs per batch (default ``batch_size``): local models fit a batch's
    series in parallel and wait for its slowest, so fewer, larger batches keep the workers busy.
    ``nonnegative`` (``None``: inferred, true when no training value is below zero) reaches models as
    ``dims["nonnegative"]`` and ``ForecastTrainData.nonnegative`` and the run record's protocol.
    """

    kind = "forecasting"
    #: forecasting has one evaluation protocol (the backtest), so its metric names carry no namespace
    metric_namespace = ""

    def __init__(self, source: BundleSource, backtest: RollingOrigin, season_length: int | None = None,
                 series: list[str] | None = None, batch_size: int = 64, num_workers: int = 0,
                 preprocess: Preprocess | None = None, cache_dir: str | None = None,
                 futr_covariates: Sequence[str] | None = None, hist_covariates: Sequence[str] | None = None,
                 calendar: bool = True, input_size: int | None = None, windows_per_epoch: int = 2048,
                 static_covariates: Sequence[str] | None = None, train_window_limit: int | None = None,
                 train_sampling: Literal["window", "series"] = "window", eval_batch_size: int | None = None,
                 pin_memory: bool | None = None, nonnegative: bool | None = None) -> None:
        super().__init__()
        #: ``None``: non-negative exactly when no training value is below zero (see :meth:`setup`)
        self.nonnegative_setting = nonnegative
        if num_workers < 0:
            raise ValueError(f"num_workers={num_workers}; expected an integer >= 0")
        #: ``None``: pin host memory exactly when the trainer runs on a GPU
        self.pin_memory = pin_memory
        if eval_batch_size is not None and eval_batch_size < 1:
            raise ValueError(f"eval_batch_size={eval_batch_size}; expected an integer >= 1 or null (batch_size)")
        self.eval_batch_size = eval_batch_size or batch_size
        if train_window_limit is not None and train_window_limit < 1:
            raise ValueError(f"train_window_limit={train_window_limit}; expected an integer >= 1 or null")
        if train_sampling not in ("window", "series"):
            raise ValueError(f"train_sampling={train_sampling!r}; expected 'window' or 'series'")
        self.train_window_limit, self.train_sampling = train_window_limit, train_sampling
        if (season_length is not None and season_length < 1) or batch_size < 1 or windows_per_epoch < 1:
            raise ValueError("season_length, batch_size and windows_per_epoch must be >= 1; got "
                             f"{season_length}, {batch_size}, {windows_per_epoch}")
        if input_size is not None and input_size < 1:
            raise ValueError(f"input_size={input_size}; expected an integer >= 1 or null")
        self.source, self.backtest = source, backtest
        #: as configured; ``None`` follows the panel's frequency (resolved in :meth:`setup`)
        self.season_length_arg, self.input_size_arg = season_length, input_size
        self.season_length: int = season_length or 1
        self.batch_size, self.num_workers = batch_size, num_workers
        self.series_filter = list(series) if series else None
        self.preprocess, self.cache_dir = preprocess, cache_dir
        #: as configured; ``None`` takes the panel's other extra columns (resolved in :meth:`setup`)
        self.futr_arg = None if futr_covariates is None else [str(c) for c in futr_covariates]
        self.hist_arg = None if hist_covariates is None else [str(c) for c in hist_covariates]
        self.futr_covariates = list(self.futr_arg or [])
        self.hist_covariates = list(self.hist_arg or [])
        both = sorted(set(self.futr_covariates) & set(self.hist_covariates))
        if both:
            raise ValueError(f"covariate(s) {both} are declared both known-future and past-only; pick one")
        self.static_covariates = list(static_covariates or [])
        repeated = sorted({c for c in self.static_covariates if self.static_covariates.count(c) > 1})
        if repeated:
            raise ValueError(f"static covariate(s) {repeated} are declared more than once")
        self.calendar = calendar
        self.input_size = 0  # set in setup(), once the horizon and season length are known
        #: what :func:`resolve_protocol` inferred from the frequency (for the run record)
        self.inferred: dict[str, Any] = {}
        #: whether the run evaluated the validation windows, and why (set by the runner; for the run record)
        self.validation: dict[str, Any] = {"evaluated": None}
        #: the training part was extended to the first test cutoff (:meth:`train_through_validation`)
        self.trained_through_validation = False
        self.windows_per_epoch = windows_per_epoch
        self.cache_info: dict[str, Any] = {}
        self.bundle: DatasetBundle | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.bundle is not None:
            return
        self._tell_source()
        bundle, self.cache_info = load_bundle(self.source, self.preprocess, self.cache_dir)
        if bundle.sales is None:
            raise DataValidationError(
                f"data set '{bundle.name}' has no sales panel, so it cannot train or evaluate a forecaster; "
                "pick a forecasting data config (e.g. data=retail_series)")
        sales = bundle.sales
        if self.series_filter is not None:
            unknown = sorted(set(self.series_filter) - set(sales["unique_id"]))
            if unknown:
                raise DataValidationError(
                    f"data.series names unknown series {unknown[:5]}; the panel has "
                    f"{sorted(sales['unique_id'].unique())[:10]}")
            sales = sales[sales["unique_id"].isin(self.series_filter)]
        self._classify_covariates(list(bundle.meta.get("covariates") or []), bundle.name)
        columns = self.futr_covariates + self.hist_covariates
        self._check_columns(sales, columns, bundle.name)
        self._resolve_protocol(bundle, sales)
        groups = list(sales.groupby("unique_id", sort=True))
        longest = max(groups, key=lambda g: len(g[1]))[1]
        self.calendar_attributes = calendar_attributes(longest["ds"].to_numpy()) if self.calendar else []
        self.series = [
            Series(str(uid), g["ds"].to_numpy(), g["y"].to_numpy(np.float64),
                   g[columns].to_numpy(np.float32).reshape(len(g), len(columns)),  # [T, n_futr + n_hist]
                   calendar_features(g["ds"].to_numpy(), self.calendar_attributes), index=i)
            for i, (uid, g) in enumerate(groups)]
        self.val_items: list[tuple[Series, BacktestWindow]] = []
        self.test_items: list[tuple[Series, BacktestWindow]] = []
        self.train_lengths = np.zeros(len(self.series), dtype=np.int64)
        #: each series' first test cutoff: the training part's end once it takes in the validation windows
        self.test_starts = np.zeros(len(self.series), dtype=np.int64)
        self._check_lengths(bundle.name)
        for s in self.series:
            val, test = self.backtest.windows(len(s.y))
            self._check_nan(s, val + test, bundle.name)
            self.val_items += [(s, w) for w in val]
            self.test_items += [(s, w) for w in test]
            self.train_lengths[s.index] = (val or test)[0].cutoff
            self.test_starts[s.index] = test[0].cutoff
        # a demand target: judged on the training parts only (NaN < 0 is False), so no evaluation value decides it
        self.nonnegative = self.nonnegative_setting if self.nonnegative_setting is not None else not any(
            np.any(s.y[:n] < 0) for s, n in zip(self.series, self.train_lengths, strict=True))
        self.tensors = WindowTensors(self.series, self.input_size, self.backtest.horizon, len(self.futr_covariates))
        self.static_codes, self.static_levels = self._static(sales, bundle)
        self.bundle = bundle

    def _tell_source(self) -> None:
        """A source that keeps only the covariate columns it is told (``covariates``) is told the declared ones."""
        kept = getattr(self.source, "covariates", None)
        if not isinstance(kept, list):
            return
        declared_in = getattr(self.source, "declared_in", None)
        for key, columns in (("data.futr_covariates", self.futr_covariates),
                             ("data.hist_covariates", self.hist_covariates)):
            for column in columns:
                if column not in kept:
                    kept.append(column)
                    if isinstance(declared_in, dict):
                        declared_in[column] = key

    def _classify_covariates(self, declared: list[str], name: str) -> None:
        """Fill a ``None`` list with the source's declared covariates that the other list does not take."""
        if self.futr_arg is not None and self.hist_arg is not None:
            return
        taken = set(self.futr_covariates) | set(self.hist_covariates) | set(self.static_covariates)
        rest = [c for c in declared if c not in taken]
        if self.hist_arg is None:
            self.hist_covariates += rest  # past-only unless declared known-future: it cannot leak the future
        else:
            self.futr_covariates += rest
        if rest:
            log.info("%s: covariates known ahead %s, past-only %s (data.futr_covariates / data.hist_covariates "
                     "classify data.source.covariates)", name, self.futr_covariates, self.hist_covariates)

    def _resolve_protocol(self, bundle: DatasetBundle, sales: pd.DataFrame) -> None:
        """Season length, horizon and step: as configured, or from the panel's frequency where left null."""
        freq = bundle.meta.get("freq")
        if freq is None:  # no preprocess step recorded it: infer it the same way
            freq = infer_panel_freq(sales, name=bundle.name)
        self.season_length, self.backtest, self.inferred = resolve_protocol(
            freq, self.season_length_arg, self.backtest)
        if self.preprocess is not None and self.preprocess.freq:
            self.inferred["from"] = "data.preprocess.freq (checked on every series)"
        elif self.preprocess is None and bundle.meta.get("freq") is not None:
            self.inferred["from"] = "the source's declared frequency"
        else:
            self.inferred["from"] = "ds (pandas.infer_freq on every series)"
        if self.inferred["inferred"]:
            log.info("%s: %s from the %s frequency (%s): season_length=%d, horizon=%d, step=%d", bundle.name,
                     ", ".join(self.inferred["inferred"]), self.inferred["frequency"], freq, self.season_length,
                     self.backtest.horizon, self.backtest.step)
        for warning in self.inferred["warnings"]:
            log.warning("%s: %s", bundle.name, warning)
        self.input_size = self.input_size_arg or max(2 * self.backtest.horizon, 2 * self.season_length)

    def _check_lengths(self, name: str) -> None:
        """Every series must hold the backtest's windows: name the short ones and what they lack."""
        need = self.backtest.min_length()
        short = [s for s in self.series if len(s.y) < need]
        if not short:
            return
        shown = ", ".join(f"'{s.unique_id}' ({len(s.y)} observation(s))" for s in short[:3]) + (
            ", ..." if len(short) > 3 else "")
        raise DataValidationError(
            f"{name}: series {shown} too short for the backtest ({len(short)} of {len(self.series)} series); "
            f"RollingOrigin's {self.backtest.needs()}. Lower those keys, or leave the short series out with "
            f"data.preprocess.min_series_length={need}")

    def _static(self, sales: pd.DataFrame, bundle: DatasetBundle) -> tuple[np.ndarray, dict[str, list[str]]]:
        """``([S, n_static] codes in one shared code space, {column: its categories in code order})``."""
        uids = [s.unique_id for s in self.series]
        meta = bundle.meta.get("series") or {}
        codes = np.zeros((len(uids), len(self.static_covariates)), dtype=np.int64)
        levels: dict[str, list[str]] = {}
        offset = 0
        for j, column in enumerate(self.static_covariates):
            if column in sales.columns:
                per_series = sales.groupby("unique_id", sort=True)[column].agg(["nunique", "first"])
                varying = per_series.index[per_series["nunique"] != 1]
                if len(varying):
                    raise DataValidationError(
                        f"{bundle.name}: static covariate '{column}' must hold exactly one value per series; "
                        f"series '{varying[0]}' has {int(per_series.loc[varying[0], 'nunique'])} "
                        f"({len(varying)} series affected)")
                values = [str(per_series.loc[uid, "first"]) for uid in uids]
            else:
                values = []
                for uid in uids:
                    attributes = meta.get(uid) or {}
                    if column not in attributes or attributes[column] is None:
                        found = sorted(attributes) if attributes else "no per-series metadata"
                        raise DataValidationError(
                            f"{bundle.name}: static covariate '{column}' is neither a column of the sales panel "
                            f"nor a metadata key of series '{uid}' (its metadata: {found}); fix "
                            "data.static_covariates")
                    values.append(str(attributes[column]))
            categories = sorted(set(values))
            number = {c: i for i, c in enumerate(categories)}
            codes[:, j] = offset + np.array([number[v] for v in values], dtype=np.int64)
            levels[column] = categories
            offset += len(categories)
        return codes, levels

    def _check_columns(self, sales: pd.DataFrame, columns: list[str], name: str) -> None:
        for column in columns:
            if column not in sales.columns:
                others = [c for c in sales.columns if c not in ("unique_id", "ds", "y")]
                key = "data.futr_covariates" if column in self.futr_covariates else "data.hist_covariates"
                raise DataValidationError(
                    f"{name}: declared covariate '{column}' ({key}) is not a column of the sales panel "
                    f"(its covariate columns: {others}); fix {key}")
            if not pd.api.types.is_numeric_dtype(sales[column]) and not pd.api.types.is_bool_dtype(sales[column]):
                raise DataValidationError(f"{name}: covariate '{column}' has dtype {sales[column].dtype}; "
                                          "covariates must be numeric (encode categories as numbers)")

    def _check_nan(self, s: Series, windows: list[BacktestWindow], name: str) -> None:
        n_futr = len(self.futr_covariates)
        for j, column in enumerate(self.futr_covariates + self.hist_covariates):
            bad = np.isnan(s.covariates[:, j])
            if not bad.any():
                continue
            for w in windows if j < n_futr else []:
                inside = np.flatnonzero(bad[w.cutoff: w.cutoff + w.horizon])
                if inside.size:
                    raise DataValidationError(
                        f"{name}: known-future covariate '{column}' of series '{s.unique_id}' is NaN in the "
                        f"forecast horizon (ds={pd.Timestamp(s.ds[w.cutoff + inside[0]]).date()}); a future "
                        "covariate must be known for every forecast step")
            first = int(np.flatnonzero(bad)[0])
            raise DataValidationError(
                f"{name}: covariate '{column}' of series '{s.unique_id}' has {int(bad.sum())} NaN value(s), "
                f"first at ds={pd.Timestamp(s.ds[first]).date()}; fill them in the data")

    def train_through_validation(self) -> None:
        """Extend every series' training part to its first test cutoff, taking in the validation windows.

        For a network whose final training takes them in (``model.refit``, see
        :mod:`ecomlab.tasks.forecasting`): the test windows stay unseen, the validation windows are then in-sample.
        """
        assert self.bundle is not None, "call setup() first"
        self.train_lengths = self.test_starts.copy()
        self.trained_through_validation = True

    @property
    def has_validation(self) -> bool:
        """``False`` when the backtest has no validation windows (e.g. M3's single official hold-out)."""
        assert self.bundle is not None, "call setup() first"
        return len(self.val_items) > 0

    @property
    def dims(self) -> dict[str, int]:
        assert self.bundle is not None, "call setup() first"
        return {"n_series": len(self.series), "horizon": self.backtest.horizon,
                "season_length": self.season_length, "input_size": self.input_size,
                "n_futr": len(self.futr_covariates), "n_hist": len(self.hist_covariates),
                "n_calendar": 2 * len(self.calendar_attributes), "nonnegative": bool(self.nonnegative),
                # only when declared, so configs of models without static inputs keep their sizes
                **({"n_static": len(self.static_covariates),
                    "n_static_levels": sum(len(v) for v in self.static_levels.values())}
                   if self.static_covariates else {})}

    def train_data(self) -> ForecastTrainData:
        """Each series' observations before its first evaluation cutoff, indexed like the batches."""
        assert self.bundle is not None, "call setup() first"
        columns = self.futr_covariates + self.hist_covariates
        return ForecastTrainData(
            unique_id=[s.unique_id for s in self.series],
            ds=[s.ds[:n] for s, n in zip(self.series, self.train_lengths, strict=True)],
            y=[s.y[:n] for s, n in zip(self.series, self.train_lengths, strict=True)],
            season_length=self.season_length,
            covariates=[pd.DataFrame(s.covariates[:n], columns=columns)
                        for s, n in zip(self.series, self.train_lengths, strict=True)] if columns else None,
            calendar=[s.calendar[:n] for s, n in zip(self.series, self.train_lengths, strict=True)],
            futr_columns=tuple(self.futr_covariates), hist_columns=tuple(self.hist_covariates),
            static=self.static_codes if self.static_covariates else None,
            static_columns=tuple(self.static_covariates), nonnegative=bool(self.nonnegative))

    def train_dataloader(self) -> DataLoader:
        """Random training windows whose targets lie inside each series' training part."""
        assert self.bundle is not None, "call setup() first"
        h = self.backtest.horizon
        # a window cut at t (first target step) needs t >= 1 observed step and t + h <= the training length
        counts = np.maximum(self.train_lengths - h, 0)  # [S]
        if self.train_window_limit is not None:
            counts = np.minimum(counts, self.train_window_limit)
        if counts.sum() == 0:
            raise DataValidationError(f"{self.bundle.name}: no series has more than horizon={h} training "
                                      "observations before its first evaluation window; nothing to train on")
        series_index = np.repeat(np.arange(len(self.series)), counts)  # [N]
        starts = np.cumsum(counts) - counts  # [S]
        # [N]: the count latest cut points per series, count .. 1 steps before the last one
        cutoff = (np.arange(counts.sum()) - np.repeat(starts, counts)
                  + np.repeat(self.train_lengths - h - counts, counts) + 1)
        dataset = TrainWindowDataset(series_index, cutoff, self.tensors)
        sampler: Sampler[int]
        if self.train_sampling == "series":
            # each series gets total weight 1, shared by its cut points
            weights = np.repeat(1.0 / np.maximum(counts, 1), counts)  # [N]
            sampler = WeightedRandomSampler(torch.as_tensor(weights, dtype=torch.float64),
                                            num_samples=self.windows_per_epoch, replacement=True)
        else:
            sampler = RandomSampler(dataset, replacement=True, num_samples=self.windows_per_epoch)
        return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler,
                          **loader_settings(self.num_workers, self.pin_memory, self.trainer))

    def _loader(self, items: list[tuple[Series, BacktestWindow]]) -> DataLoader:
        return DataLoader(WindowDataset(items, self.tensors), batch_size=self.eval_batch_size, shuffle=False,
                          **loader_settings(self.num_workers, self.pin_memory, self.trainer))

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_items)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_items)

    def protocol(self) -> dict[str, Any]:
        assert self.bundle is not None, "call setup() first"
        return {
            "task": "forecasting",
            "backtest": self.backtest.describe(),
            "preprocess": self.preprocess.describe() if self.preprocess is not None else None,
            "data_cache": self.cache_info,
            "season_length": self.season_length,
            # which of season_length / horizon / step followed the frequency, from what, and the warnings
            "inferred": self.inferred,
            "n_series": len(self.series),
            "n_val_windows": len(self.val_items),
            "validation": self.validation,
            "trained_through_validation": self.trained_through_validation,
            "n_test_windows": len(self.test_items),
            "futr_covariates": self.futr_covariates,
            "hist_covariates": self.hist_covariates,
            "static_covariates": {column: len(v) for column, v in self.static_levels.items()},
            "calendar": [name for name, _ in self.calendar_attributes],
            "input_size": self.input_size,
            "nonnegative": bool(self.nonnegative),
            "train_window_limit": self.train_window_limit,
            "train_sampling": self.train_sampling,
            "n_train_observations": int(self.train_lengths.sum()),
            "data_fingerprint": self.bundle.fingerprint(),
            "data": self.bundle.summary(),
            "data_warnings": self.bundle.meta.get("warnings", {}),
        }
