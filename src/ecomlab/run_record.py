"""The run record: what every run directory holds, written atomically.

``metrics.json`` -- every validation and test metric, the protocol (split, K values, candidate set,
seasonality, data fingerprint), timings, peak memory, git commit, seed, model and data names, how training
ended (``epochs_run``, ``global_step``, ``best_epoch``, ``stop_reason``, ``stop_detail``; see
:func:`training_outcome`; a network refit with ``model.refit=selected`` records its selection's and, under
``refit``, the refit's steps, selected checkpoint and final checkpoint), the logger runs holding the training
curves (``logger_runs``: CSV / TensorBoard
version directories, MLflow run ids), and the composed config. ``config.yaml`` -- the resolved config (``ecomlab-eval`` rebuilds the run from it).
``per_user_{val,test}.parquet`` / ``per_series_{val,test}.parquet`` -- per-user or per-series metric values;
``forecasts_test.parquet`` -- forecasts next to actuals.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from ecomlab.callbacks import TrainingOutcome, fit_limit, stop_reason
from ecomlab.checkpoints import checkpoint_value
from ecomlab.utils import (
    atomic_write_json,
    atomic_write_parquet,
    atomic_write_text,
    git_commit,
    peak_memory_mb,
)

#: why ``Trainer.fit`` returned, in the order its loop checks them (``max_steps`` before ``max_epochs`` before a
#: callback's stop request); ``not_trained``: a closed-form model, fitted without epochs
STOP_REASONS = ("max_steps", "max_epochs", "early_stopping", "max_time", "stopped", "not_trained")

#: config nodes that never change what a run computes: where it writes, Hydra internals, labels, loggers
_NOT_FINGERPRINTED = ("paths", "hydra", "tags", "logger")


def config_fingerprint(cfg: DictConfig) -> str:
    """Hash of the resolved config without paths, loggers and Hydra internals: equal for re-runs of a recipe.

    Paths are interpolated into other nodes too (checkpoint and logger directories, the data cache), so each
    ``paths.*`` value is replaced by its own name before resolving: a run moved to another directory, or the
    same job of a sweep run again, keeps its fingerprint.
    """
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        for key in cfg.get("paths") or {}:
            cfg.paths[key] = f"<paths.{key}>"
    plain = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(plain, dict)
    plain = {k: v for k, v in plain.items() if k not in _NOT_FINGERPRINTED}
    return hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()[:16]


def logger_runs(loggers: Sequence[Any]) -> list[dict[str, Any]]:
    """Where each logger put this run's curves: its kind and whichever of name, version, log / save directory,
    MLflow experiment and run id it has (a CSV or TensorBoard version directory, an MLflow run id)."""
    runs = []
    for logger in loggers:
        entry: dict[str, Any] = {"kind": type(logger).__name__}
        for attr in ("name", "version", "log_dir", "save_dir", "experiment_id", "run_id"):
            value = getattr(logger, attr, None)
            if value is not None:
                entry[attr] = value if isinstance(value, int) else str(value)
        runs.append(entry)
    return runs


def training_outcome(trainer: Any, tested_checkpoint: str | None) -> dict[str, Any]:
    """How training ended: ``epochs_run`` (epochs the fit loop finished, counting one a stop request cut
    short), ``global_step`` (optimizer steps), ``best_epoch`` (0-based epoch of the weights that were validated
    and tested), ``stop_reason`` (one of :data:`STOP_REASONS`) and ``stop_detail``; ``trainer`` None for a
    closed-form model.

    Read after ``Trainer.validate`` / ``Trainer.test``. The fit loop's counters survive them, but loading the
    tested checkpoint puts every callback back in its state from when that checkpoint was saved, so the reason
    comes from :class:`~ecomlab.callbacks.TrainingOutcome`, which took it when training ended; without one, only
    a limit or the one stopping callback present can be named.
    """
    if trainer is None:
        return {"epochs_run": 0, "global_step": 0, "best_epoch": None, "stop_reason": "not_trained",
                "stop_detail": "fitted in closed form, no training epochs"}
    epochs = int(trainer.current_epoch)
    # no checkpoint tested: the weights in memory, those of the last epoch run
    best = checkpoint_value(tested_checkpoint, "epoch") if tested_checkpoint else epochs - 1
    recorded = next((c.reason for c in trainer.callbacks if isinstance(c, TrainingOutcome) and c.reason), None)
    if recorded:
        reason, detail = recorded
    elif tested_checkpoint is None or fit_limit(trainer):  # nothing was reloaded, or the counters tell
        reason, detail = stop_reason(trainer)
    else:
        stoppers = trainer.early_stopping_callbacks
        timed = any(isinstance(c, pl.callbacks.Timer) for c in trainer.callbacks)
        if stoppers and not timed:
            reason, detail = "early_stopping", f"{stoppers[0].monitor} stopped improving"
        elif timed and not stoppers:
            reason, detail = "max_time", "max_time reached"
        else:
            reason, detail = "stopped", "early stopping or max_time (no TrainingOutcome callback to tell which)"
    return {"epochs_run": epochs, "global_step": int(trainer.global_step), "best_epoch": best,
            "stop_reason": reason, "stop_detail": detail}


def write_run_record(output_dir: Path, *, cfg: DictConfig, task: Any, datamodule: Any, metrics: dict[str, float],
                     timings: dict[str, float], model_name: str, dataset_name: str, checkpoint: str | None,
                     version: str, loggers: Sequence[Any] = (),
                     outcome: dict[str, Any] | None = None) -> dict[str, Any]:
    protocol = datamodule.protocol()
    if protocol["task"] == "ranking":
        protocol["ks"] = list(task.ks)
    protocol["seed"] = int(cfg.seed)
    record = {
        "model": model_name,
        "dataset": dataset_name,
        "seed": int(cfg.seed),
        "tags": list(cfg.get("tags") or []),
        "metrics": {k: float(v) for k, v in sorted(metrics.items())},
        "monitor": task.monitor,
        "protocol": protocol,
        "data_fingerprint": protocol["data_fingerprint"],
        "config_fingerprint": config_fingerprint(cfg),
        **{k: round(v, 4) for k, v in timings.items()},
        **peak_memory_mb(),
        "checkpoint": checkpoint,
        # a refit run's outcome is its selection's, plus what the refit trained (ecomlab.train.refit)
        **(outcome if outcome is not None else training_outcome(task.trainer if task.trainable else None,
                                                                 checkpoint)),
        "logger_runs": logger_runs(loggers),
        "deterministic_algorithms": bool(torch.are_deterministic_algorithms_enabled()),
        "git_commit": git_commit(),
        "ecomlab_version": version,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    if protocol["task"] == "forecasting":
        record["fallbacks"] = {k: int(v) for k, v in task.net.fallbacks.items()}
    if task.trainer is None or task.trainer.is_global_zero:
        for stage, frame in getattr(task, "per_user", {}).items():
            atomic_write_parquet(output_dir / f"per_user_{stage}.parquet", frame)
        for stage, frame in getattr(task, "per_series", {}).items():
            atomic_write_parquet(output_dir / f"per_series_{stage}.parquet", frame)
        if "test" in getattr(task, "forecasts", {}):
            atomic_write_parquet(output_dir / "forecasts_test.parquet", task.forecasts["test"])
        atomic_write_text(output_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
        # metrics.json last: its presence means the run finished and everything above is complete.
        atomic_write_json(output_dir / "metrics.json", record)
    return record
