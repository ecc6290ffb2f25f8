"""Study publishing: grouping by model variant (config keys) and mean ± std over seeds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecomlab.report.study import publish_study, summarize


def write_record(path: Path, model: str, seed: int, lr: float, ndcg: float) -> None:
    path.mkdir(parents=True)
    record = {"model": model, "dataset": "d", "seed": seed, "protocol": {}, "fit_seconds": 1.0,
              "eval_seconds": 0.5, "metrics": {"test/ndcg@10": ndcg, "val/ndcg@10": 0.0},
              "config": {"model": {"optimizer": {"lr": lr}}}}
    (path / "metrics.json").write_text(json.dumps(record))


def test_variants_are_separate_rows_and_seeds_are_averaged(tmp_path: Path) -> None:
    write_record(tmp_path / "runs" / "a", "lightgcn", 0, 1e-2, 0.10)
    write_record(tmp_path / "runs" / "b", "lightgcn", 1, 1e-2, 0.20)
    write_record(tmp_path / "runs" / "c", "lightgcn", 0, 2e-3, 0.30)
    results = publish_study("s", [tmp_path / "runs"], tmp_path / "out", config_keys=["model.optimizer.lr"])
    assert list(results.columns[:5]) == ["study", "model", "dataset", "seed", "model.optimizer.lr"]
    # validation metrics are kept (they pick variants), before the test ones; the summary shows test metrics
    assert list(results.columns[5:7]) == ["val/ndcg@10", "test/ndcg@10"]
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "val/ndcg@10" not in summary
    assert "| d | lightgcn | 0.002 | 1 | 0.3000 |" in summary  # a single run shows no spread
    assert "| d | lightgcn | 0.01 | 2 | 0.1500 ± 0.0707 |" in summary


def test_no_runs_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no finished runs"):
        publish_study("s", [tmp_path / "empty"], tmp_path / "out")


def test_glob_patterns_select_runs(tmp_path: Path) -> None:
    write_record(tmp_path / "runs" / "a", "lightgcn", 0, 1e-2, 0.10)
    write_record(tmp_path / "runs" / "b", "bpr", 0, 1e-2, 0.20)
    results = publish_study("s", [str(tmp_path / "runs" / "a*")], tmp_path / "out")
    assert list(results["model"]) == ["lightgcn"]
    with pytest.raises(FileNotFoundError, match="no glob match"):
        publish_study("s", [str(tmp_path / "runs" / "z*")], tmp_path / "out")


def test_summary_keeps_models_that_lack_a_config_key() -> None:
    """A config key one model does not have (NaN) still gives that model its own row."""
    results = pd.DataFrame({
        "dataset": ["d"] * 3, "model": ["bpr", "bpr", "neumf"], "seed": [0, 1, 0],
        "model.net.reg_weight": [1e-4, 1e-4, np.nan], "test/ndcg@10": [0.1, 0.3, 0.5],
        "fit_seconds": [1.0, 1.0, 2.0], "eval_seconds": [1.0, 1.0, 1.0]})
    text = summarize(results, ["test/ndcg@10"], ["model.net.reg_weight"])
    assert "| d | bpr | 0.0001 | 2 | 0.2000 ± 0.1414 |" in text
    assert "| d | neumf |  | 1 | 0.5000 |" in text
