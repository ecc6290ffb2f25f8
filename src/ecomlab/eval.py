"""``ecomlab-eval``: re-evaluate a finished run on its test split.

    ecomlab-eval run_dir=logs/train/runs/2026-11-27_10-00-00            # best checkpoint
    ecomlab-eval run_dir=logs/train/runs/2026-11-27_10-00-00 ckpt=last

The run is rebuilt from its ``config.yaml`` (same data, split and seed). Trained models load the chosen
checkpoint; classical models have no weights and are refitted on the same training split, which is
deterministic. The results land in this command's own run directory as ``metrics.json``.

A run directory is input like any other file: its ``config.yaml`` may only name ecomlab's classes and the
libraries ecomlab's own configs use (:mod:`ecomlab.config_trust`; ``trust_config=true`` lifts that for a run
you trust), and the best checkpoint its ``metrics.json`` records must be a local file inside the run directory.
Checkpoints are read with ``torch.load(weights_only=True)`` (:mod:`ecomlab.checkpoints`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig

import ecomlab
from ecomlab.checkpoints import is_url, load_weights
from ecomlab.cli import config_errors_exit_2, quiet_third_party, user_errors_exit_2
from ecomlab.config_trust import load_run_config
from ecomlab.report.table import print_metrics
from ecomlab.train import build_task
from ecomlab.utils import atomic_write_json, config_dir


class RunDirError(ValueError):
    """The given directory is not a finished ecomlab run."""


def _recorded_checkpoint(run_dir: Path, record: dict[str, Any], metrics_path: Path) -> str | None:
    """The best checkpoint ``metrics.json`` records, as a file inside ``run_dir``: where it was written, or
    ``checkpoints/<its name>`` of a run directory that was moved since. Anything else (a URL Lightning would
    download, a file elsewhere) is refused."""
    raw = record.get("checkpoint")
    if raw is None or raw == "":
        return None
    inside = run_dir.resolve()
    if isinstance(raw, str) and not is_url(raw):
        for candidate in (Path(raw), run_dir / raw, run_dir / "checkpoints" / Path(raw).name):
            real = candidate.resolve()
            if real.is_file() and real.is_relative_to(inside):
                return str(real)
    raise RunDirError(f"{metrics_path}: key 'checkpoint' = {raw!r} is not a checkpoint file inside the run "
                      f"directory {run_dir}; refusing to read it (pass ckpt=last or ckpt=<a local path>)")


def _resolve_checkpoint(run_dir: Path, ckpt: str, record: dict[str, Any]) -> str | None:
    if ckpt == "best":
        best = _recorded_checkpoint(run_dir, record, run_dir / "metrics.json")
        if best is None:  # trained without checkpointing: the weights it tested were never written
            raise RunDirError(f"{run_dir / 'metrics.json'}: this trained run records no checkpoint (was it trained "
                              "without checkpointing?); pass ckpt=last or ckpt=<a checkpoint path>, or train it again")
        return best
    if ckpt == "last":
        last = run_dir / "checkpoints" / "last.ckpt"
        if not last.exists():
            raise RunDirError(f"{last}: no last checkpoint in this run")
        return str(last)
    if is_url(ckpt):
        raise RunDirError(f"ckpt={ckpt}: a URL; checkpoints are read from local files only")
    path = Path(ckpt)
    if not path.exists():
        raise RunDirError(f"ckpt={ckpt}: file not found; expected best, last or a checkpoint path")
    if not path.is_file():
        raise RunDirError(f"ckpt={ckpt}: not a file; expected best, last or a checkpoint path")
    return str(path)


@dataclass
class LoadedRun:
    """A finished run rebuilt from its ``config.yaml``: record, config, set-up data module, prepared task and
    the chosen checkpoint (``None`` for classical models, refitted deterministically; weights not loaded)."""

    cfg: DictConfig
    record: dict[str, Any]
    datamodule: Any
    task: Any
    checkpoint: str | None


def trust_flag(cfg: DictConfig) -> bool:
    """The ``trust_config`` key of the eval/export configs, which must be a boolean."""
    value = cfg.get("trust_config", False)
    if not isinstance(value, bool):
        raise ValueError(f"trust_config={value!r}; expected true or false")
    return value


def _read_record(metrics_path: Path) -> dict[str, Any]:
    try:
        record = json.loads(metrics_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunDirError(f"{metrics_path}: not valid JSON ({err}); not a finished ecomlab run") from None
    if not isinstance(record, dict):
        raise RunDirError(f"{metrics_path}: expected a JSON object (the run record), got {type(record).__name__}")
    return record


def load_run(run_dir: str | Path, ckpt: str = "best", arg: str = "run_dir", trust_config: bool = False) -> LoadedRun:
    """Rebuild a finished run (same data, split and seed); ``arg`` names the CLI key in error messages.
    ``trust_config`` instantiates the run's ``config.yaml`` whatever it names (see the module docstring)."""
    run_dir = Path(run_dir)
    config_path, metrics_path = run_dir / "config.yaml", run_dir / "metrics.json"
    if not config_path.is_file() or not metrics_path.is_file():
        raise RunDirError(f"{arg}={run_dir}: not a finished ecomlab run (needs config.yaml and metrics.json)")
    record = _read_record(metrics_path)
    run_cfg = load_run_config(config_path, trust_config)
    for key in ("data", "model"):
        if not isinstance(run_cfg.get(key), DictConfig):
            raise RunDirError(f"{config_path}: no '{key}' section; not the config of an ecomlab run")
    if not isinstance(run_cfg.get("seed"), int):
        raise RunDirError(f"{config_path}: key seed = {run_cfg.get('seed')!r}; expected the run's integer seed")
    pl.seed_everything(run_cfg.seed, workers=True, verbose=False)
    datamodule = hydra.utils.instantiate(run_cfg.data)
    datamodule.setup("test")
    protocol = record.get("protocol")
    if isinstance(protocol, dict) and protocol.get("trained_through_validation") is True:
        datamodule.train_through_validation()  # the network's statistics came from that longer training part
    task = build_task(run_cfg.model, datamodule)
    ckpt_path = _resolve_checkpoint(run_dir, ckpt, record) if task.trainable else None
    task.prepare(datamodule.train_data())
    return LoadedRun(run_cfg, record, datamodule, task, ckpt_path)


def load_run_weights(run: LoadedRun) -> None:
    """The chosen checkpoint's weights into ``run.task`` (``weights_only=True``; another model's checkpoint is
    refused naming the file)."""
    if run.checkpoint is not None:
        load_weights(run.task, run.checkpoint)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    run_dir = Path(cfg.run_dir)
    run = load_run(run_dir, str(cfg.ckpt), trust_config=trust_flag(cfg))
    run_cfg, record, datamodule, task, ckpt_path = run.cfg, run.record, run.datamodule, run.task, run.checkpoint
    load_run_weights(run)  # here rather than through Lightning's ckpt_path, which would also fetch URLs
    trainer = pl.Trainer(accelerator=run_cfg.trainer.get("accelerator", "cpu"), devices=1, logger=False,
                         enable_checkpointing=False, enable_model_summary=False,
                         default_root_dir=cfg.paths.output_dir)
    t0 = time.perf_counter()
    test = trainer.test(task, datamodule=datamodule, verbose=False)
    metrics = dict(test[0]) if test else {}
    out = {"run_dir": str(run_dir), "checkpoint": ckpt_path, "model": record.get("model"),
           "dataset": record.get("dataset"), "metrics": metrics,
           "eval_seconds": round(time.perf_counter() - t0, 4), "ecomlab_version": ecomlab.__version__,
           "data_fingerprint": datamodule.protocol()["data_fingerprint"]}
    atomic_write_json(Path(cfg.paths.output_dir) / "metrics.json", out)
    print_metrics(metrics, title=f"{out['model']} on {out['dataset']}: test metrics (re-evaluated)")
    return out


@config_errors_exit_2
@hydra.main(version_base="1.3", config_path=config_dir(), config_name="eval")
@user_errors_exit_2
def main(cfg: DictConfig) -> None:
    quiet_third_party()
    evaluate(cfg)


if __name__ == "__main__":
    main()
