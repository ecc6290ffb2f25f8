"""``ecomlab-train``: compose a config, fit a model, evaluate it, write the run record.

    ecomlab-train experiment=quickstart
    ecomlab-train data=synthetic_shop model=tfidf seed=1
    ecomlab-train -m model=popularity,tfidf data=synthetic_shop,movielens_small seed=0,1,2

Gradient-trained models run ``Trainer.fit`` (resuming from ``checkpoints/last.ckpt`` when the run directory
already holds one) and are evaluated from the best checkpoint; classical models fit in closed form. Both then
go through the same ``Trainer.validate`` / ``Trainer.test`` loops and the same metrics.

A run directory that already holds a finished run of the same config (``metrics.json`` with an equal
``config_fingerprint``) is skipped, so a study (or an Optuna search, see ``configs/hparams_search/``) run again
into the same sweep directory resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

import ecomlab
from ecomlab.callbacks import TrainingOutcome
from ecomlab.checkpoints import checkpoint_mismatch, checkpoint_readable, checkpoint_value, resume_checkpoint
from ecomlab.cli import config_errors_exit_2, quiet_third_party, user_errors_exit_2
from ecomlab.config_schema import validate_config
from ecomlab.report.table import print_metrics
from ecomlab.run_record import config_fingerprint, training_outcome, write_run_record
from ecomlab.utils import atomic_write_json, atomic_write_text, config_dir, instantiate_with_dims

log = logging.getLogger(__name__)


def check_task_matches_data(cfg: DictConfig) -> None:
    """Refuse a ranking model on a forecasting data set (and vice versa) before anything is loaded."""
    model_kind = getattr(hydra.utils.get_object(cfg.model._target_), "kind", None)
    data_kind = getattr(hydra.utils.get_object(cfg.data._target_), "kind", None)
    if model_kind and data_kind and model_kind != data_kind:
        choices = _choices()
        raise ValueError(
            f"model={choices.get('model', cfg.model._target_)} is a {model_kind} model but "
            f"data={choices.get('data', cfg.data._target_)} is a {data_kind} data set; "
            f"choose a {model_kind} data config")


def _choices() -> dict[str, str]:
    if HydraConfig.initialized():
        return {k: v for k, v in HydraConfig.get().runtime.choices.items() if isinstance(v, str)}
    return {}


def _callbacks(cfg: DictConfig, task: Any, has_validation: bool = True, quiet: bool = False) -> list[pl.Callback]:
    """Callbacks of a trained model; any ``monitor`` follows the task's (namespaced) validation metric.

    Without validation data (a backtest with ``val_windows: 0``) nothing is monitored: early stopping is
    dropped and the checkpoint keeps the last epoch, so the test uses the model trained for ``max_epochs``.
    """
    if not task.trainable or not cfg.get("callbacks"):
        return []
    monitor = task.monitor if has_validation else None
    callbacks = [hydra.utils.instantiate(c, **({"monitor": monitor} if "monitor" in c else {}))
                 for c in cfg.callbacks.values() if c is not None and "_target_" in c]
    if not has_validation:
        if not quiet:
            log.warning("no validation data: no early stopping, and the last epoch's weights are tested")
        callbacks = [c for c in callbacks if not isinstance(c, pl.callbacks.EarlyStopping)]
    return callbacks


def _loggers(cfg: DictConfig) -> list[Any]:
    if not cfg.get("logger"):
        return []
    return [hydra.utils.instantiate(c) for c in cfg.logger.values() if c is not None and "_target_" in c]


def compile_network(net: torch.nn.Module) -> None:
    """``torch.compile`` a network's ``forward`` and, when it has one, its ``loss``, in place: the module and its
    ``state_dict`` keys stay as they are, so checkpoints load with or without compilation."""
    net.compile()
    if callable(getattr(net, "loss", None)):
        net.loss = torch.compile(net.loss)  # type: ignore[method-assign]


def resolved_task_args(model_cfg: DictConfig, dims: dict[str, Any]) -> dict[str, Any]:
    """A task's ``season_length`` left null (``${data.season_length}`` of a data config that leaves it to the
    panel's frequency) takes the one the data module resolved."""
    if "season_length" in model_cfg and model_cfg.season_length is None and "season_length" in dims:
        return {"season_length": dims["season_length"]}
    return {}


def wants_validation(cfg: DictConfig, task: Any, datamodule: Any) -> bool:
    """Whether the validation windows are evaluated: ``eval.validate`` when set, else when something uses them.

    A trained model's checkpoint and early stopping select on them, and a search's ``optimized_metric`` reads
    them; a forecaster fitted without gradient steps (ETS, ARIMA, the naive family, GBT) has no setting chosen
    on them, and the per-series ones would refit on every validation window for nothing. A data module with a
    ``validation`` record (forecasting) notes the decision in the run record's protocol.
    """
    asked = cfg.get("eval", {}).get("validate")
    if asked is not None:
        validate, why = bool(asked), f"eval.validate={str(bool(asked)).lower()}"
    elif getattr(datamodule, "trained_through_validation", False):
        validate, why = False, "the network trained through them (model.refit=budget): they are in-sample"
    elif task.kind != "forecasting" or task.trainable:
        validate, why = True, "the trained model's checkpoint and early stopping select on it"
    elif str(cfg.get("optimized_metric") or "").startswith("val/"):
        validate, why = True, f"optimized_metric={cfg.optimized_metric} reads it"
    else:
        validate, why = False, ("nothing selects on it (a model fitted without gradient steps); "
                                "eval.validate=true evaluates it")
    if isinstance(getattr(datamodule, "validation", None), dict):
        datamodule.validation = {**datamodule.validation, "evaluated": validate, "why": why}
    if not validate:
        log.info("validation windows not evaluated: %s", why)
    return validate


def build_task(model_cfg: DictConfig, datamodule: Any) -> Any:
    """The model config's task around its network, sized by the (set-up) data module's ``dims``."""
    try:
        net = instantiate_with_dims(model_cfg.net, datamodule.dims)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, MemoryError) or (isinstance(cause, RuntimeError) and "allocate" in str(cause)):
            sizes = {k: v for k, v in model_cfg.net.items() if isinstance(v, int) and not isinstance(v, bool)}
            raise ValueError(f"model.net: {model_cfg.net._target_} with {sizes} and the data's "
                             f"{dict(datamodule.dims)} needs more memory than this machine has "
                             f"({' '.join(str(cause).split())[:160]}); choose smaller sizes") from None
        raise
    task = hydra.utils.instantiate(model_cfg, net=net, **resolved_task_args(model_cfg, datamodule.dims))
    task.set_metric_namespace(datamodule.metric_namespace)
    return task


def finished_record(output_dir: Path, cfg: DictConfig) -> dict[str, Any] | None:
    """The run record in ``output_dir`` if it holds a finished run of this very config, else None.

    A record of another config (say, more epochs) is no match: that run goes on from its last checkpoint.
    """
    path = output_dir / "metrics.json"
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    return record if record.get("config_fingerprint") == config_fingerprint(cfg) else None


#: what a refitting run writes into ``checkpoints/`` once its selection is done (see :func:`refit`)
REFIT_PLAN = "refit_plan.json"


def read_refit_plan(output_dir: Path) -> dict[str, Any] | None:
    """The finished selection of a refitting run stopped before its end, or None (no plan, or one whose selected
    checkpoint is gone: the selection then runs again from its own last checkpoint)."""
    path = output_dir / "checkpoints" / REFIT_PLAN
    if not path.is_file():
        return None
    plan = json.loads(path.read_text())
    selected = plan.get("selected")
    if not isinstance(selected, str) or not Path(selected).is_file() or not isinstance(plan.get("global_step"), int):
        log.warning("%s: its selected checkpoint %r is missing; the selection runs again", path, selected)
        return None
    return plan


def refit(cfg: DictConfig, selected: Any, datamodule: Any, steps: int,
          output_dir: Path) -> tuple[Any, pl.Trainer, str | None]:
    """Train a fresh network through the validation windows for ``steps`` optimizer steps (``model.refit``).

    Validation chose the length (``steps``, the selected checkpoint's); this network sees every observation before
    the first test cutoff, from the same seed, with the same configuration (a searched network keeps the
    selection's choice) and learning-rate schedule, and is neither validated nor stopped early: the validation
    windows are in its training data. Its checkpoints are ``checkpoints/refit_*.ckpt``, so a run stopped here
    resumes from ``refit_last.ckpt`` after the plan (:data:`REFIT_PLAN`) the selection left. Returns the new
    task, its trainer and its checkpoint, which the test evaluates.
    """
    datamodule.train_through_validation()
    pl.seed_everything(cfg.seed, workers=True)
    task = build_task(cfg.model, datamodule)
    task.prepare(datamodule.train_data())
    task.adopt_selection(selected, datamodule)
    if cfg.get("compile"):
        compile_network(task.net)
    callbacks = _callbacks(cfg, task, has_validation=False, quiet=True)
    for callback in callbacks:
        if isinstance(callback, pl.callbacks.ModelCheckpoint):
            callback.filename, callback.CHECKPOINT_NAME_LAST = "refit_{epoch:03d}", "refit_last"
    trainer: pl.Trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=[*callbacks, TrainingOutcome()], logger=False, max_steps=steps, limit_val_batches=0)
    last = output_dir / "checkpoints" / "refit_last.ckpt"
    resume = str(last) if last.is_file() and checkpoint_readable(last) else None
    log.info("refit through the validation windows: %d steps%s", steps, f", resuming from {resume}" if resume else "")
    trainer.fit(task, datamodule=datamodule, ckpt_path=resume, weights_only=True)
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    return task, trainer, best or None


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run one experiment described by a composed config; returns the run record."""
    validate_config(cfg)  # unknown keys, wrong types, out-of-range values: exit 2 before anything is loaded
    check_task_matches_data(cfg)
    output_dir = Path(cfg.paths.output_dir)
    record = finished_record(output_dir, cfg)
    if record is not None:
        log.info("skipping %s: it already holds a finished run of this config (fingerprint %s)",
                 output_dir, record["config_fingerprint"])
        return record
    output_dir.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(cfg.seed, workers=True)
    if cfg.get("deterministic"):
        torch.use_deterministic_algorithms(True, warn_only=True)

    t0 = time.perf_counter()
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("fit")
    data_seconds = time.perf_counter() - t0
    task = build_task(cfg.model, datamodule)
    if cfg.get("compile") and task.trainable:
        compile_network(task.net)

    loggers = _loggers(cfg)
    refit_mode = getattr(task, "refit", None) if task.trainable and datamodule.has_validation else None
    # a budget run trains through its validation windows: nothing to validate, stop or select on while it trains
    through = refit_mode == "budget"
    task.through_validation = through
    trainer: pl.Trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=[*_callbacks(cfg, task, datamodule.has_validation and not through, quiet=through),
                                TrainingOutcome()],
        logger=loggers or False, **({"limit_val_batches": 0} if through else {}))

    t0 = time.perf_counter()
    ckpt_path: str | None = None
    task.prepare(datamodule.train_data())
    refitting = refit_mode == "selected"
    plan = read_refit_plan(output_dir) if refitting else None
    if plan is not None:  # the selection finished before the run was stopped in its refit
        log.info("resuming the refit: the selection (%s, %d steps) finished before", plan["selected"],
                 plan["global_step"])
        ckpt_path = plan["selected"]
    elif task.trainable:
        resume = resume_checkpoint(output_dir / "checkpoints")
        if resume:
            mismatch = checkpoint_mismatch(resume, task)
            if mismatch:
                raise ValueError(f"{resume}: cannot resume this run from it, it holds another model ({mismatch}); "
                                 "run the directory's own config again, or choose a new hydra.run.dir")
            log.info("resuming from %s", resume)
        trainer.fit(task, datamodule=datamodule, ckpt_path=resume, weights_only=True)
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        ckpt_path = best or None
    fit_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    # checkpoints hold only tensors and plain values (see ecomlab.callbacks): nothing in one may run code
    # a refit validates whatever eval.validate says: this loads the selected weights the refit starts from
    val = trainer.validate(task, datamodule=datamodule, ckpt_path=ckpt_path, verbose=False, weights_only=True) \
        if wants_validation(cfg, task, datamodule) or refitting else []
    eval_seconds = time.perf_counter() - t0
    outcome: dict[str, Any] | None = None
    if refitting:
        t0 = time.perf_counter()
        if plan is None:
            step = checkpoint_value(ckpt_path, "global_step")  # without a checkpoint: the last epoch's weights
            plan = {"selected": ckpt_path, "global_step": int(step if step is not None else trainer.global_step),
                    "outcome": training_outcome(trainer, ckpt_path)}
            if ckpt_path and trainer.is_global_zero:  # without a checkpoint a stopped run selects again
                atomic_write_json(output_dir / "checkpoints" / REFIT_PLAN, plan)
        outcome = {**plan["outcome"], "refit": {"global_step": plan["global_step"], "selected": plan["selected"]}}
        task, trainer, ckpt_path = refit(cfg, task, datamodule, plan["global_step"], output_dir)
        outcome["refit"]["checkpoint"] = ckpt_path
        fit_seconds += time.perf_counter() - t0
    t0 = time.perf_counter()
    test = trainer.test(task, datamodule=datamodule, ckpt_path=ckpt_path, verbose=False, weights_only=True)
    eval_seconds += time.perf_counter() - t0

    metrics = {**(val[0] if val else {}), **(test[0] if test else {})}
    if not trainer.is_global_zero:  # distributed run: rank 0 alone writes the run record
        return {"metrics": metrics, "monitor": task.monitor}
    choices = _choices()
    record = write_run_record(
        output_dir, cfg=cfg, task=task, datamodule=datamodule, metrics=metrics,
        timings={"data_seconds": data_seconds, "fit_seconds": fit_seconds, "eval_seconds": eval_seconds},
        model_name=choices.get("model", type(task.net).__name__), dataset_name=choices.get("data", "custom"),
        checkpoint=ckpt_path, version=ecomlab.__version__, loggers=loggers, outcome=outcome,
    )
    if cfg.get("eval", {}).get("print_table", True) and trainer.is_global_zero:
        print_metrics(metrics, title=f"{record['model']} on {record['dataset']} (seed {cfg.seed}): test metrics")
        print(f"run directory: {output_dir}")
    return record


class SearchSpaceRecorder(Callback):
    """Writes ``search_space.yaml`` into the sweep directory before the first trial of an Optuna search.

    Hydra's Optuna sweeper saves only the best trial (``optimization_results.yaml``) and, unlike the basic
    sweeper, no ``multirun.yaml``; this keeps what was searched next to it: the metric and direction, the
    sampler and its seed, the number of trials and every parameter's distribution as an override expression.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweeper = config.hydra.sweeper
        space = {
            "optimized_metric": config.get("optimized_metric"),
            "direction": sweeper.get("direction"),
            "study_name": sweeper.get("study_name"),
            "n_trials": sweeper.get("n_trials"),
            "sampler": sweeper.get("sampler"),
            "params": sweeper.get("params"),
        }
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(sweep_dir / "search_space.yaml", OmegaConf.to_yaml(OmegaConf.create(space), resolve=True))


@config_errors_exit_2
@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
@user_errors_exit_2
def main(cfg: DictConfig) -> float | None:
    """Console entry point; returns the validation metric so Hydra sweepers (Optuna) can optimise it.

    The metric is ``optimized_metric`` (set by ``hparams_search`` configs) or else the task's monitor; its value
    is the one ``Trainer.validate`` gives the best checkpoint. A non-finite value (a diverged trial) is returned
    as None: Optuna's sweeper then records a failed trial and the search goes on, where a NaN would make the
    sweeper itself fail in ``study.tell``.
    """
    quiet_third_party()
    log.debug("config:\n%s", OmegaConf.to_yaml(cfg))
    record = train(cfg)
    metric = cfg.get("optimized_metric") or record["monitor"]
    if cfg.get("optimized_metric") and metric not in record["metrics"]:
        logged = sorted(k for k in record["metrics"] if k.startswith("val/"))
        raise ValueError(f"optimized_metric={metric} is not a metric of this run; its validation metrics: {logged}")
    value = record["metrics"].get(metric)
    if value is None or not math.isfinite(value):
        if value is not None or cfg.get("optimized_metric"):  # no validation data is not a failure by itself
            log.warning("%s is %s in %s: a sweeper records this run as failed", metric, value, cfg.paths.output_dir)
        return None
    return float(value)


if __name__ == "__main__":
    main()
