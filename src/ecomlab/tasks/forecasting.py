"""LightningModule for every forecaster: training of global networks and backtest evaluation over
rolling-origin windows.

``prepare(train_data)`` hands the training part of the panel to ``net.fit_panel`` (classical global models fit
there; networks take normalisation statistics). Trainable networks get ``training_step`` = ``net.loss(batch)``
on the data module's training windows, logged as ``train/loss`` (each epoch's mean).

Each evaluation batch holds (series, window) pairs; ``net.predict(batch, horizon, levels)`` forecasts
``horizon`` steps from each window's history, with central intervals at ``levels`` (default 80 and 95 %) when
the model gives them. A non-negative target (``ForecastTrainData.nonnegative``) gets its forecasts through
:func:`ecomlab.models.nonnegative.nonnegative_forecasts` (clipped at zero, zero for an all-zero history).
Metrics (MAE, RMSE, sMAPE on 0-200, MASE with the data's ``season_length``, RMSSE as in M5 (one-step scale);
for models with intervals also ``msql``, ``scaled_crps``, ``coverage_80``, ``coverage_95``, see
:mod:`ecomlab.metrics.probabilistic`)
are computed per series and window, averaged over windows per series, then over series, and logged as
``test/mase`` etc. The per-window values and the forecasts (with ``lo_<level>`` / ``hi_<level>`` columns when
present) are kept for run records and plots. Every model also gets ``rmsse`` (the M5 competition's metric:
one-step naive scale from the first non-zero observation), and models with intervals ``scaled_crps`` (the
pinball loss over the interval quantiles and the median, relative to the window's own level).

**Training budget in steps** (``steps_per_epoch``): the data module draws ``data.windows_per_epoch`` training
windows per epoch, so an epoch of one data config can be 32 steps and of another 128, and ``trainer.max_epochs``
then means a different amount of training on every panel. A task with ``steps_per_epoch`` set makes each epoch
exactly that many optimizer steps (the window sampler draws ``steps_per_epoch * batch_size`` windows per
epoch, with replacement, whatever the data config says), so a network trains ``trainer.max_epochs *
steps_per_epoch`` steps and is validated (early stopping, checkpoint selection, a per-epoch learning-rate
schedule) every ``steps_per_epoch`` steps on every panel. Epoch boundaries stay where checkpoints are taken,
so a killed run still resumes exactly.

**Training through the validation windows** (``refit``): the validation windows sit between the training part
and the first test window, so a network selected on them never trains on the most recent stretch of each series,
which a local model (ETS) fits. ``refit`` lets the final network train on every observation before the first test
cutoff (the test windows stay unseen; N-BEATS, Oreshkin et al. 2020, and scikit-learn's ``refit=True`` likewise
choose on held-out data, then fit the final model on all of it):

* ``budget``: the network trains through the validation windows for the whole step budget (``trainer.max_epochs``
  x ``steps_per_epoch``) under its learning-rate schedule, without early stopping, and the last weights are
  tested. The validation windows serve only a search (``model=auto_lstm`` chooses its configuration on them first,
  trained on the training part alone) and are not evaluated afterwards: they are in-sample. On the forecast
  suite, one validation window per series chose the stopping epoch worse than the fixed budget did
  (experiments/forecast_suite/README.md).
* ``selected`` (run by :func:`ecomlab.train.refit`): training stops early and picks its checkpoint on the
  validation windows as usual; then a fresh network (same seed and configuration) trains through them for exactly
  the selected checkpoint's number of optimizer steps and is tested. The run record's validation metrics are the
  selected network's.
* ``null``: the selected checkpoint is tested (the validation windows are never trained on).

**Calibrated intervals** (``calibrate``): before testing, a network's interval bounds are recalibrated on the
data module's validation windows by conformalized quantile regression (:mod:`ecomlab.models.conformal`): one
offset per level and horizon step, in units of each series' MASE scale, applied to the test forecasts (and by the
exported bundle to served ones); the point forecast is unchanged. Without validation windows nothing changes.

**Searched networks** (``model=auto_lstm``, :class:`ecomlab.models.auto_lstm.AutoLSTM`): a network with a
``suggest(trial)`` method declares a search space; at the start of ``fit`` (not when a run resumes: the
checkpoint holds the chosen configuration; nor a smoke run, ``fast_dev_run`` or ``limit_val_batches=0``, which
keep the defaults) the task runs its seeded Optuna study, training each candidate with
a Lightning trainer of its own for the network's ``trial_steps`` steps (no early stopping, no checkpoints) and
scoring it on the data module's validation windows by the task's monitor, then adopts the best configuration
and trains it with the full budget. The trials are written to ``<output dir>/search_trials.csv``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import optuna
import pandas as pd
import pytorch_lightning as pl
import torch

from ecomlab.metrics.forecasting import (
    FORECAST_METRICS,
    aggregate,
    mase,
    mase_scale,
    per_series,
    rmsse,
    rmsse_scale,
)
from ecomlab.metrics.probabilistic import coverage, msql, quantiles_from_intervals, scaled_crps
from ecomlab.models.base import Forecaster
from ecomlab.models.conformal import calibrated, conformal_offsets
from ecomlab.models.nonnegative import nonnegative_forecasts
from ecomlab.tasks.distributed import gather_objects, keep_derived_buffers_local, world_size
from ecomlab.tasks.epoch_loss import EpochLoss
from ecomlab.tasks.optim import OptimizerFactory, SchedulerFactory, configure_optimizers
from ecomlab.utils import atomic_write_text

Evaluated = tuple[int | None, dict[str, Any], pd.DataFrame]

log = logging.getLogger(__name__)


class ForecastTask(pl.LightningModule):
    #: which models and data modules fit together; checked before anything is loaded
    kind = "forecasting"

    def __init__(self, net: Forecaster, season_length: int, optimizer: OptimizerFactory | None = None,
                 monitor: str = "val/mase", mode: str = "min", levels: Sequence[int] = (80, 95),
                 scheduler: SchedulerFactory | None = None, steps_per_epoch: int | None = None,
                 calibrate: bool = False, refit: Literal["selected", "budget"] | None = None) -> None:
        super().__init__()
        if steps_per_epoch is not None and steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch={steps_per_epoch}; expected an integer >= 1 or null (the data "
                             "config's windows_per_epoch decides)")
        self.steps_per_epoch = steps_per_epoch
        if season_length < 1:
            raise ValueError(f"season_length={season_length}; expected an integer >= 1")
        if mode not in ("min", "max"):
            raise ValueError(f"mode={mode!r}; expected 'min' or 'max'")
        if net.trainable and optimizer is None:
            raise ValueError(f"{type(net).__name__} is trained by gradient steps: its model config needs an optimizer")
        # plain ints: Hydra passes a ListConfig, which weights-only checkpoint loading refuses in hparams
        levels = [int(lv) for lv in levels]
        if any(not 0 < lv < 100 for lv in levels):
            raise ValueError(f"levels={levels}: interval levels are percentages in (0, 100)")
        self.levels = levels
        self.net = net
        self.calibrate = bool(calibrate)
        if refit not in (None, "selected", "budget"):
            raise ValueError(f"refit={refit!r}; expected null, 'selected' or 'budget' (see ecomlab.tasks.forecasting)")
        #: how the final network uses the validation windows (see the module docstring)
        self.refit = refit
        #: a refit's configuration came from the selection run (a searched network does not search again)
        self.configured_by_selection = False
        #: set by the runner (ecomlab.train) for ``refit="budget"``, which also switches validation and early stopping
        #: off: ``setup`` then extends the training part through the validation windows, after any search. A bare
        #: Lightning trainer leaves it off and trains on the training part as configured.
        self.through_validation = False
        #: per calibrated level, its conformal offsets ``[h]`` (set by :meth:`calibrate_intervals`)
        self.interval_offsets: dict[int, np.ndarray] = {}
        self.season_length = season_length
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.monitor, self.mode = monitor, mode
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        #: per stage, one ``(position in the data set, metric row, forecast frame)`` per evaluated window
        self._evaluated: dict[str, list[Evaluated]] = {"val": [], "test": []}
        #: per-series metric values of the last evaluation, by stage
        self.per_series: dict[str, pd.DataFrame] = {}
        #: long-format forecasts of the last evaluation, by stage (unique_id, window, ds, y, y_hat[, lo_80, ...])
        self.forecasts: dict[str, pd.DataFrame] = {}
        self._epoch_loss = EpochLoss()
        #: the training target is non-negative (set by prepare from ForecastTrainData.nonnegative)
        self.nonnegative = False

    @property
    def trainable(self) -> bool:
        return self.net.trainable

    def adopt_selection(self, selected: ForecastTask, datamodule: Any) -> None:
        """Start a refit (see the module docstring) from the run that chose its length, whose selected weights
        are loaded: a searched network takes the configuration that run chose instead of searching again,
        calibrated intervals take their offsets from the selected network (the validation windows are in-sample
        for the refit one), and the selection's validation results are kept for the run record."""
        if hasattr(self.net, "choose") and hasattr(selected.net, "chosen"):
            self.net.choose(selected.net.chosen)
        if self.calibrate:
            self.interval_offsets = selected.calibrate_intervals(datamodule)
        self.configured_by_selection = True
        if "val" in selected.per_series:
            self.per_series["val"] = selected.per_series["val"]

    def set_metric_namespace(self, namespace: str) -> None:
        if namespace:
            raise ValueError(f"forecasting metrics have no '{namespace}' namespace (only ranking has sampled "
                             "evaluation)")

    def prepare(self, data: Any) -> None:
        """Give global models the training part of the panel (local models refit per window instead)."""
        if data is not None:
            self.nonnegative = bool(getattr(data, "nonnegative", False))
            self.net.fit_panel(data)

    def setup(self, stage: str) -> None:
        keep_derived_buffers_local(self)  # statistics fit_panel() derives on every rank stay out of DDP broadcasts
        if stage == "fit":
            through = self.through_validation  # the runner sets it only where the data has validation windows
            if (hasattr(self.net, "suggest") and not self.trainer.ckpt_path  # a resumed run keeps its choice
                    and not self.configured_by_selection):
                # validation is off during a budget run's training (in-sample), not for its search
                if self.trainer.fast_dev_run or (self.trainer.limit_val_batches == 0 and not through):
                    log.warning("%s: no search (a smoke run, or validation switched off); the default "
                                "configuration trains", type(self.net).__name__)
                else:
                    self._search()
            if through and not self.trainer.fast_dev_run:
                self.trainer.datamodule.train_through_validation()
                self.prepare(self.trainer.datamodule.train_data())
            self._fix_epoch_length()

    def _search(self) -> None:
        """Choose the network's configuration on the validation windows (see the module docstring)."""
        net, datamodule = self.net, self.trainer.datamodule
        if not getattr(datamodule, "has_validation", False):
            raise ValueError(f"{type(net).__name__} searches on validation windows and this backtest has none; "
                             "set data.backtest.val_windows >= 1")
        assert self.optimizer_factory is not None

        def objective(trial: optuna.Trial) -> float:
            params = net.suggest(trial)
            torch.manual_seed(net.seed + trial.number)
            task = ForecastTask(net.candidate(params["net"]), self.season_length,
                                partial(self.optimizer_factory, **params["optimizer"]), monitor=self.monitor,
                                mode=self.mode, levels=(), steps_per_epoch=net.trial_steps)
            trainer = pl.Trainer(max_epochs=1, accelerator=self.trainer.accelerator, devices=1, logger=False,
                                 enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                                 num_sanity_val_steps=0, gradient_clip_val=self.trainer.gradient_clip_val)
            trainer.fit(task, datamodule=datamodule)
            value = float(trainer.callback_metrics[self.monitor])
            return value if np.isfinite(value) else float("inf")  # a diverged candidate loses, the search goes on

        sampler = optuna.samplers.TPESampler(seed=net.seed)
        study = optuna.create_study(direction="minimize" if self.mode == "min" else "maximize", sampler=sampler)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            study.optimize(objective, n_trials=net.n_trials)
        finally:
            datamodule.trainer = self.trainer  # the trials' trainers attached themselves to the data module
        best = study.best_trial.params
        net.choose({part: {k.split(".", 1)[1]: v for k, v in best.items() if k.startswith(part + ".")}
                    for part in ("net", "optimizer")})
        log.info("%s: %d trials, best %s=%.4f with %s", type(net).__name__, len(study.trials), self.monitor,
                 study.best_value, net.chosen)
        trials = study.trials_dataframe(attrs=("number", "value", "params", "duration"))
        out = Path(self.trainer.default_root_dir)
        if self.trainer.is_global_zero:
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out / "search_trials.csv", trials.to_csv(index=False))

    def _fix_epoch_length(self) -> None:
        """Make every training epoch ``steps_per_epoch`` optimizer steps (see the module docstring).

        The train loader is built after this hook (Lightning's fit loop asks the data module for it once setup
        is done), so the sampler's window count is set here; each rank of a distributed run draws its share.
        ``fast_dev_run`` keeps its one batch.
        """
        datamodule = self.trainer.datamodule
        if (self.steps_per_epoch is None or self.trainer.fast_dev_run
                or not hasattr(datamodule, "windows_per_epoch")):
            return
        windows = self.steps_per_epoch * datamodule.batch_size * self.trainer.world_size
        if datamodule.windows_per_epoch != windows:
            log.info("steps_per_epoch=%d: %d training windows per epoch (data.windows_per_epoch was %d)",
                     self.steps_per_epoch, windows, datamodule.windows_per_epoch)
            datamodule.windows_per_epoch = windows

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self.net.loss(batch)
        self._epoch_loss.add(loss, int(batch["outsample_y"].shape[0]))  # logged once per epoch
        return loss

    def on_train_epoch_start(self) -> None:
        self._epoch_loss.reset()

    def on_train_epoch_end(self) -> None:
        self._epoch_loss.log(self)

    def calibrate_intervals(self, datamodule: Any) -> dict[int, np.ndarray]:
        """Conformal offsets of every level from the network's forecasts of ``datamodule``'s validation windows
        (:mod:`ecomlab.models.conformal`), kept in :attr:`interval_offsets` for the test forecasts and exports.
        Nothing (``{}``) unless ``calibrate`` is set, the network is trained and gives intervals, and the data
        module has validation windows."""
        self.interval_offsets = {}
        if not (self.calibrate and self.net.trainable and self.levels and getattr(datamodule, "has_validation",
                                                                                  False)):
            return {}
        parts: dict[str, list[np.ndarray]] = {"y": [], "scale": []}
        training = self.net.training
        self.net.eval()
        try:
            with torch.no_grad():
                for batch in datamodule.val_dataloader():
                    future = np.asarray(batch["future"], dtype=np.float64)  # [B, h]
                    prediction = self.net.predict(batch, future.shape[1], self.levels)
                    if any(f"lo_{lv}" not in prediction for lv in self.levels):
                        return {}  # a point forecaster: no intervals to calibrate
                    parts["y"].append(future)
                    parts["scale"].append(np.array([mase_scale(h, self.season_length) for h in batch["history"]]))
                    for key in (f"{side}_{lv}" for lv in self.levels for side in ("lo", "hi")):
                        parts.setdefault(key, []).append(np.asarray(prediction[key], np.float64))
        finally:
            self.net.train(training)
        stacked = {key: np.concatenate(value) for key, value in parts.items()}  # [N, h] (scale: [N])
        self.interval_offsets = {lv: conformal_offsets(stacked["y"], stacked[f"lo_{lv}"], stacked[f"hi_{lv}"],
                                                       stacked["scale"], lv) for lv in self.levels}
        log.info("intervals calibrated on %d validation windows: mean offset (MASE scales) %s", len(stacked["y"]),
                 {lv: round(float(q.mean()), 3) for lv, q in self.interval_offsets.items()})
        return self.interval_offsets

    def on_test_start(self) -> None:
        if self.calibrate and not self.configured_by_selection:  # a refit's offsets came with its selection
            self.calibrate_intervals(self.trainer.datamodule)

    def _evaluate(self, batch: dict[str, Any], stage: str) -> None:
        future = np.asarray(batch["future"], dtype=np.float64)  # [B, h]
        prediction = {k: np.asarray(v, dtype=np.float64)
                      for k, v in self.net.predict(batch, future.shape[1], self.levels).items()}
        for key, value in prediction.items():
            if value.shape != future.shape:
                raise RuntimeError(f"{type(self.net).__name__}.predict returned '{key}' of shape {value.shape}, "
                                   f"expected {future.shape}")
        scale = np.array([mase_scale(h, self.season_length) for h in batch["history"]], dtype=np.float64)  # [B]
        if stage == "test" and self.interval_offsets:
            prediction = calibrated(prediction, scale, self.interval_offsets)
        if self.nonnegative:
            prediction = nonnegative_forecasts(prediction, batch["history"])
        y_hat = prediction["y_hat"]  # [B, h]
        quantiles = quantiles_from_intervals(prediction)
        columns: dict[str, np.ndarray] = {name: np.asarray(fn(future, y_hat)) for name, fn in FORECAST_METRICS.items()}
        columns["mase"] = np.asarray(mase(future, y_hat, scale=scale))  # [B]
        squared_scale = np.array([rmsse_scale(h) for h in batch["history"]], dtype=np.float64)  # [B], M5: m = 1
        columns["rmsse"] = np.asarray(rmsse(future, y_hat, scale=squared_scale))  # [B]
        if quantiles:
            columns["msql"] = np.asarray(msql(future, quantiles, scale))  # [B]
            columns["scaled_crps"] = np.asarray(scaled_crps(future, quantiles))  # [B]
            for level in self.levels:
                if f"lo_{level}" in prediction and f"hi_{level}" in prediction:
                    columns[f"coverage_{level}"] = np.asarray(
                        coverage(future, prediction[f"lo_{level}"], prediction[f"hi_{level}"]))  # [B]
        positions = batch.get("position")
        for b, uid in enumerate(batch["unique_id"]):
            row: dict[str, Any] = {"unique_id": uid, "window": batch["window"][b]}
            row.update({name: float(values[b]) for name, values in columns.items()})
            frame = pd.DataFrame({"unique_id": uid, "window": batch["window"][b], "ds": batch["future_ds"][b],
                                  "y": future[b], **{key: value[b] for key, value in prediction.items()}})
            self._evaluated[stage].append((None if positions is None else int(positions[b]), row, frame))

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def _finish(self, stage: str) -> None:
        evaluated, self._evaluated[stage] = self._evaluated[stage], []
        if world_size() > 1:  # every rank joins the gather, with or without windows of its own
            evaluated = self._gathered(evaluated)
        if not evaluated:
            return
        per_window = pd.DataFrame([row for _, row, _ in evaluated])
        self.per_series[stage] = per_series(per_window)
        self.forecasts[stage] = pd.concat([frame for _, _, frame in evaluated], ignore_index=True)
        self.log_dict({f"{stage}/{name}": float(value) for name, value in aggregate(per_window).items()})

    @staticmethod
    def _gathered(evaluated: list[Evaluated]) -> list[Evaluated]:
        """Every rank's evaluated windows, each once and in the data set's order.

        A distributed sampler deals the windows out strided and pads the ranks' shares with repeated windows;
        keyed by their position in the data set, every rank then holds exactly what one process evaluates, and
        logs the same metrics (so checkpointing and early stopping agree across ranks).
        """
        every = [window for part in gather_objects(evaluated) for window in part]
        if any(position is None for position, _, _ in every):  # batches built without positions: keep all
            return every
        by_position: dict[int | None, Evaluated] = {}
        for window in every:
            by_position.setdefault(window[0], window)
        return [by_position[p] for p in sorted(by_position)]  # every key is an int here

    def on_validation_epoch_end(self) -> None:
        self._finish("val")

    def on_test_epoch_end(self) -> None:
        self._finish("test")

    def configure_optimizers(self) -> Any:
        factory = self.optimizer_factory
        overrides = self.net.optimizer_overrides() if hasattr(self.net, "optimizer_overrides") else {}
        if factory is not None and overrides:  # a searched network's chosen step size (and the like)
            factory = partial(factory, **overrides)
        return configure_optimizers(factory, self.scheduler_factory, self.net.parameters(), self.monitor)
