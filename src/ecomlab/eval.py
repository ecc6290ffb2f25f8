"""``ecomlab-eval``: re-evaluate a finished run on its test split.

    ecomlab-eval run_dir=logs/train/runs/2026-11-27_10-00-00            # best checkpoint
    ecomlab-eval run_dir=logs/train/runs/2026-11-27_10-00-00 ckpt=last

The run is rebuilt from its ``config.yaml`` (same data, split and seed). Trained models load the chosen
checkpoint; classical models have no weights and are refitted on the same training split, which is
deterministic. The results land in this command's own run directory as ``metrics.json``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

import ecomlab
from ecomlab.cli import config_errors_exit_2, quiet_third_party, user_errors_exit_2
from ecomlab.report.table import print_metrics
from ecomlab.train import build_task
from ecomlab.utils import atomic_write_json, config_dir


class RunDirError(ValueError):
    """The given directory is not a finished ecomlab run."""


def _resolve_checkpoint(run_dir: Path, ckpt: str, record: dict[str, Any]) -> str | None:
    if ckpt == "best":
        best = record.get("checkpoint")
        return str(best) if best else None
    if ckpt == "last":
        last = run_dir / "checkpoints" / "last.ckpt"
        if not last.exists():
            raise RunDirError(f"{last}: no last checkpoint in this run")
        return str(last)
    path = Path(ckpt)
    if not path.exists():
        raise RunDirError(f"ckpt={ckpt}: file not found; expected best, last or a checkpoint path")
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


def load_run(run_dir: str | Path, ckpt: str = "best", arg: str = "run_dir") -> LoadedRun:
    """Rebuild a finished run (same data, split and seed); ``arg`` names the CLI key in error messages."""
    run_dir = Path(run_dir)
    config_path, metrics_path = run_dir / "config.yaml", run_dir / "metrics.json"
    if not config_path.exists() or not metrics_path.exists():
        raise RunDirError(f"{arg}={run_dir}: not a finished ecomlab run (needs config.yaml and metrics.json)")
    record = json.loads(metrics_path.read_text(encoding="utf-8"))
    run_cfg = OmegaConf.load(config_path)
    assert isinstance(run_cfg, DictConfig)
    pl.seed_everything(run_cfg.seed, workers=True, verbose=False)
    datamodule = hydra.utils.instantiate(run_cfg.data)
    datamodule.setup("test")
    task = build_task(run_cfg.model, datamodule)
    ckpt_path = _resolve_checkpoint(run_dir, ckpt, record) if task.trainable else None
    task.prepare(datamodule.train_data())
    return LoadedRun(run_cfg, record, datamodule, task, ckpt_path)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    run_dir = Path(cfg.run_dir)
    run = load_run(run_dir, str(cfg.ckpt))
    run_cfg, record, datamodule, task, ckpt_path = run.cfg, run.record, run.datamodule, run.task, run.checkpoint
    trainer = pl.Trainer(accelerator=run_cfg.trainer.get("accelerator", "cpu"), devices=1, logger=False,
                         enable_checkpointing=False, enable_model_summary=False,
                         default_root_dir=cfg.paths.output_dir)
    t0 = time.perf_counter()
    test = trainer.test(task, datamodule=datamodule, ckpt_path=ckpt_path, verbose=False)
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
