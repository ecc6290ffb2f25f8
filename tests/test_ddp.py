"""Distributed data parallel (``trainer=ddp``) on CPU: two gloo processes train a real model end to end.

The test metrics of the DDP run come from evaluation split across both ranks and gathered; re-evaluating the
same checkpoint in one process (``ecomlab-eval``) must give exactly the same numbers, and only rank 0 writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
TINY = ["model=bpr", "data=synthetic_shop", "data.source.n_users=150", "data.source.n_items=80",
        "data.batch_size=128", "data.eval_batch_size=16", "trainer.max_epochs=3", "logger=[]",
        "eval.print_table=false", "callbacks.rich_progress_bar=null"]


def _env(root: Path) -> dict[str, str]:
    env = {**os.environ, "ECOMLAB_ROOT": str(root), "OMP_NUM_THREADS": "1"}
    for var in ("RANK", "LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "HYDRA_FULL_ERROR"):
        env.pop(var, None)
    return env


@pytest.mark.slow  # two training processes plus one evaluation: ~1 minute on 2 cores
def test_ddp_training_on_two_cpu_processes_gathers_metrics_equal_to_one_process(tmp_path: Path) -> None:
    run = tmp_path / "ddp_run"
    train = subprocess.run(
        [str(BIN / "ecomlab-train"), *TINY, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
         f"hydra.run.dir={run}", f"paths.cache_dir={tmp_path}/cache"],
        cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=900)
    assert train.returncode == 0, train.stderr[-4000:]
    log = train.stdout + train.stderr
    assert "MEMBER: 1/2" in log and "MEMBER: 2/2" in log, "both ranks must have joined the process group"
    record = json.loads((run / "metrics.json").read_text())
    assert record["config"]["trainer"]["strategy"] == "ddp"
    assert record["protocol"]["n_test_users"] > 16, "the test users must span several batches on both ranks"
    ddp_metrics = {k: v for k, v in record["metrics"].items() if k.startswith("test/")}
    assert ddp_metrics["test/ndcg@10"] > 0

    again = tmp_path / "eval_run"
    evaluated = subprocess.run(
        [str(BIN / "ecomlab-eval"), f"run_dir={run}", f"hydra.run.dir={again}"],
        cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert evaluated.returncode == 0, evaluated.stderr[-4000:]
    single = json.loads((again / "metrics.json").read_text())["metrics"]
    for key, value in ddp_metrics.items():
        assert single[key] == pytest.approx(value, abs=1e-6), f"{key}: DDP {value} vs one process {single[key]}"
    # one record, written by rank 0 alone: no per-rank copies or leftovers beside it
    assert sorted(p.name for p in run.glob("metrics*.json")) == ["metrics.json"]
