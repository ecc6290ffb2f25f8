"""The console scripts as a user runs them: real subprocesses, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ecomlab.report.study import publish_study

BIN = Path(sys.executable).parent
TINY_SHOP = ["data=synthetic_shop", "data.source.n_users=150", "data.source.n_items=80"]


def run(tool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ECOMLAB_ROOT": str(cwd)}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([str(BIN / tool), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_quickstart_cli_prints_table_and_writes_record(tmp_path: Path) -> None:
    proc = run("ecomlab-train", "experiment=quickstart", "trainer.max_epochs=1", "trainer.limit_train_batches=3",
               f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "bpr on movielens_small" in proc.stdout and "ndcg" in proc.stdout
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["model"] == "bpr" and record["dataset"] == "movielens_small"
    assert record["protocol"]["split"]["split"] == "ratio" and record["protocol"]["ks"] == [5, 10, 20]
    assert 0.0 <= record["metrics"]["test/ndcg@10"] <= 1.0

    # ecomlab-eval reproduces the test metrics from the best checkpoint
    proc = run("ecomlab-eval", f"run_dir={tmp_path}/run", f"hydra.run.dir={tmp_path}/eval", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    for key, value in record["metrics"].items():
        if key.startswith("test/"):
            assert again["metrics"][key] == pytest.approx(value, abs=1e-6), key


def test_killed_run_resumes_from_last_checkpoint(tmp_path: Path) -> None:
    common = ["model=bpr", *TINY_SHOP, f"hydra.run.dir={tmp_path}/run", "callbacks.early_stopping.patience=100"]
    first = run("ecomlab-train", *common, "trainer.max_epochs=2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    second = run("ecomlab-train", *common, "trainer.max_epochs=4", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming from" in second.stderr + second.stdout
    logs = [pd.read_csv(p) for p in sorted((tmp_path / "run" / "csv").glob("version_*/metrics.csv"))]
    assert len(logs) == 2, "the resumed run logs to a new version and keeps the first run's log"
    trained = [set(log.loc[log["train/loss"].notna(), "epoch"]) for log in logs]
    assert trained[0] == {0, 1}
    # Lightning's last.ckpt is written after epoch 1's validation, so the resumed run closes epoch 1 (its
    # epoch-end hooks) and then trains epochs 2-3; epoch 0 is never repeated.
    assert {2, 3} <= trained[1] <= {1, 2, 3}


def test_multirun_sweep_and_study(tmp_path: Path) -> None:
    proc = run("ecomlab-train", "-m", "model=popularity,random", *TINY_SHOP, "seed=0,1",
               f"hydra.sweep.dir={tmp_path}/sweep", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = sorted((tmp_path / "sweep").rglob("metrics.json"))
    assert len(records) == 4
    # the runs ran this checkout, whose tree may hold uncommitted edits (or be no git checkout at all): the
    # commit policy has its own tests (test_study.py); this one is about the sweep and the files it publishes
    results = publish_study("tiny", [tmp_path / "sweep"], tmp_path / "study", allow_uncommitted=True)
    assert list(results.columns[:4]) == ["study", "model", "dataset", "seed"]
    assert "test/ndcg@10" in results.columns and "fit_seconds" in results.columns
    assert len(results) == 4 and set(results["model"]) == {"popularity", "random"}
    summary = (tmp_path / "study" / "summary.md").read_text()
    assert "| synthetic_shop | popularity | 2 |" in summary


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["model=arima"], "forecasting model but data=movielens_small"),
        (["data=files", "data.source.interactions=missing.csv"], "missing.csv: file not found"),
        (["data=retail_series"], "ranking model but data=retail_series"),
        (["model=bpr", "eval.ks=[0]"], "eval.ks: [0] is not allowed; expected a non-empty list"),
    ],
)
def test_bad_input_exits_2_with_one_message(tmp_path: Path, args: list[str], needle: str) -> None:
    proc = run("ecomlab-train", *args, f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    assert proc.returncode == 2, (proc.stdout[-2000:], proc.stderr[-2000:])
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_eval_refuses_a_directory_that_is_not_a_run(tmp_path: Path) -> None:
    proc = run("ecomlab-eval", f"run_dir={tmp_path}", f"hydra.run.dir={tmp_path}/eval", cwd=tmp_path)
    assert proc.returncode == 2
    assert "not a finished ecomlab run" in proc.stderr
