"""A training run SIGKILLed at random points and started again in the same run directory ends with exactly
the test metrics of an uninterrupted run (CPU, one seed).

Real ``ecomlab-train`` subprocesses on tiny synthetic data (tiny BPR, 150 epochs, ~20 s); every kill lands
at a random time between the first epoch and the end of training, so some hit an epoch, some a validation,
some a checkpoint write. Lightning 2.6 writes ``last.ckpt`` only when the monitored metric improves (with
``save_last=True``), so the small learning rate keeps it improving and the kills leave checkpoints of many
different epochs. ``ECOMLAB_KILL_SEED`` picks other kill times; ``-s`` prints what each kill left.

Exact resumption needs the random generators in the checkpoint (:class:`ecomlab.callbacks.RNGState`, in
``configs/callbacks/default.yaml``). Without it, runs killed after their first checkpoint and before their
best epoch end with different metrics.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

BIN = Path(sys.executable).parent
N_KILLS = 7
ARGS = ["model=bpr", "data=synthetic_shop", "data.source.n_users=300", "data.source.n_items=150",
        "trainer.max_epochs=150", "model.optimizer.lr=5.0e-4", "callbacks.early_stopping.patience=1000", "callbacks.rich_progress_bar=null",
        "eval.print_table=false"]


def start(tmp_path: Path, run_dir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ECOMLAB_ROOT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    log = (run_dir.parent / f"{run_dir.name}.log").open("ab")
    return subprocess.Popen([str(BIN / "ecomlab-train"), *ARGS, f"hydra.run.dir={run_dir}",
                             f"paths.cache_dir={tmp_path}/cache"], cwd=tmp_path, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def finish(tmp_path: Path, run_dir: Path) -> dict[str, Any]:
    proc = start(tmp_path, run_dir)
    assert proc.wait(timeout=600) == 0, (run_dir.parent / f"{run_dir.name}.log").read_text()[-3000:]
    return json.loads((run_dir / "metrics.json").read_text())


def first_checkpoint(proc: subprocess.Popen[bytes], run_dir: Path) -> float:
    """Seconds until ``last.ckpt`` first appears (the end of epoch 0); start-up time varies with machine load."""
    t0 = time.perf_counter()
    while not (run_dir / "checkpoints" / "last.ckpt").exists() and proc.poll() is None:
        time.sleep(0.02)
    return time.perf_counter() - t0


def test_metrics(record: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in record["metrics"].items() if k.startswith("test/")}


test_metrics.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def left_behind(run_dir: Path) -> str:
    """What a kill left: the epoch in last.ckpt (loaded as plain weights), or why there is none."""
    if (run_dir / "metrics.json").exists():
        return "finished before the kill"
    last = run_dir / "checkpoints" / "last.ckpt"
    if not last.exists():
        return "no checkpoint yet"
    try:
        return f"last.ckpt after epoch {torch.load(last, map_location='cpu', weights_only=True)['epoch']}"
    except Exception as err:  # a truncated file (train.py then falls back to an older checkpoint)
        return f"unreadable last.ckpt ({type(err).__name__})"


@pytest.mark.slow
def test_sigkill_at_random_points_resumes_to_identical_metrics(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    proc = start(tmp_path, tmp_path / "reference")
    first = first_checkpoint(proc, tmp_path / "reference")
    assert proc.wait(timeout=600) == 0
    wall = time.perf_counter() - t0
    reference = test_metrics(json.loads((tmp_path / "reference" / "metrics.json").read_text()))
    rng = random.Random(int(os.environ.get("ECOMLAB_KILL_SEED", "0")))
    # one kill during start-up / epoch 0, the others at random times in training, counted from the run's own
    # first checkpoint so that a slower start-up (a loaded machine) does not push them past the end
    delays = [None] + [rng.uniform(0.0, 0.85) * (wall - first) for _ in range(N_KILLS - 1)]

    outcomes = []
    for i, delay in enumerate(delays):
        run_dir = tmp_path / f"kill{i}"
        proc = start(tmp_path, run_dir)
        at = first * 0.5 if delay is None else first_checkpoint(proc, run_dir) + delay
        try:
            proc.wait(timeout=first * 0.5 if delay is None else delay)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        state = left_behind(run_dir)
        resumed = test_metrics(finish(tmp_path, run_dir))
        outcomes.append((at, state, resumed == reference))
    print(f"\nreference run: {wall:.1f} s, first checkpoint after {first:.1f} s; kill points (seconds after "
          "start, state left, metrics equal):")
    for delay, state, same in outcomes:
        print(f"  {delay:5.1f} s  {state:38s} {'survived' if same else 'DIFFERENT METRICS'}")
    print(f"{sum(same for *_, same in outcomes)}/{len(outcomes)} kill points survived")
    killed = [o for o in outcomes if o[1] != "finished before the kill"]
    assert len(killed) >= 5, f"too few runs were killed mid-way: {outcomes}"
    assert all(same for *_, same in outcomes), outcomes


@pytest.mark.slow
def test_truncated_last_checkpoint_falls_back(tmp_path: Path) -> None:
    """A kill during Lightning's (non-atomic) checkpoint write leaves a truncated ``last.ckpt``."""
    reference = test_metrics(finish(tmp_path, tmp_path / "reference"))
    run_dir = tmp_path / "truncated"
    finish(tmp_path, run_dir)
    (run_dir / "metrics.json").unlink()  # as if killed before the run record
    last = run_dir / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    assert test_metrics(finish(tmp_path, run_dir)) == reference
