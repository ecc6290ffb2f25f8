"""Study publishing: grouping by model variant (config keys), mean ± std over seeds, commits of the code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecomlab.report.study import publish_study, summarize

ROOT = Path(__file__).resolve().parents[1]
COMMIT = "3e771a6" + "0" * 33


def write_record(path: Path, model: str, seed: int, lr: float, ndcg: float, commit: str | None = COMMIT,
                 epochs: int = 20) -> None:
    path.mkdir(parents=True)
    record = {"model": model, "dataset": "d", "seed": seed, "protocol": {}, "fit_seconds": 1.0,
              "eval_seconds": 0.5, "metrics": {"test/ndcg@10": ndcg, "val/ndcg@10": 0.0},
              "epochs_run": 7, "best_epoch": 2, "stop_reason": "early_stopping", "git_commit": commit,
              "config": {"seed": seed, "model": {"optimizer": {"lr": lr}}, "trainer": {"max_epochs": epochs},
                         "paths": {"output_dir": str(path)},
                         "callbacks": {"model_checkpoint": {"dirpath": str(path / "checkpoints")}}}}
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


def test_results_name_the_commit_and_how_each_run_ended(tmp_path: Path) -> None:
    write_record(tmp_path / "runs" / "a", "bpr", 0, 1e-2, 0.10)
    write_record(tmp_path / "runs" / "b", "bpr", 1, 1e-2, 0.20, commit="1" * 40)
    publish_study("s", [tmp_path / "runs"], tmp_path / "out")
    csv = pd.read_csv(tmp_path / "out" / "results.csv", dtype={"git_commit": str})
    assert list(csv.columns[-4:]) == ["epochs_run", "best_epoch", "stop_reason", "git_commit"]
    assert list(csv["git_commit"]) == [COMMIT, "1" * 40]
    assert (tmp_path / "out" / "results.csv").read_text().splitlines()[1].endswith(",7,2,early_stopping," + COMMIT)
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert f"Code: commits {COMMIT[:12]} (1 run), 111111111111 (1 run)" in summary


@pytest.mark.parametrize("commit", [None, "", COMMIT + "-dirty"])
def test_runs_of_uncommitted_code_are_refused(tmp_path: Path, commit: str | None) -> None:
    write_record(tmp_path / "runs" / "a", "bpr", 0, 1e-2, 0.10, commit=commit)
    with pytest.raises(ValueError, match=r"a/metrics.json: git_commit is .* not a commit; a published number"):
        publish_study("s", [tmp_path / "runs"], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    publish_study("s", [tmp_path / "runs"], tmp_path / "out", allow_uncommitted=True)


def test_a_row_never_averages_two_configurations(tmp_path: Path) -> None:
    write_record(tmp_path / "runs" / "a", "bpr", 0, 1e-2, 0.10, epochs=20)
    write_record(tmp_path / "runs" / "b", "bpr", 0, 1e-2, 0.20, epochs=40)
    with pytest.raises(ValueError, match=r"differ in config key trainer.max_epochs.*20 in .*a but 40 in .*b"):
        publish_study("s", [tmp_path / "runs"], tmp_path / "out")
    results = publish_study("s", [tmp_path / "runs"], tmp_path / "out", config_keys=["trainer.max_epochs"])
    assert list(results["trainer.max_epochs"]) == [20, 40]


def test_the_script_refuses_bad_input_with_one_line(tmp_path: Path) -> None:
    write_record(tmp_path / "runs" / "a", "bpr", 0, 1e-2, 0.10, commit=COMMIT + "-dirty")
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "publish_study.py"), "s", str(tmp_path / "runs"),
                          "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("error: ") and "git_commit is" in line


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


def test_a_list_valued_config_key_tells_variants_apart(tmp_path: Path) -> None:
    for name, seed, sizes in (("a", 0, [36, 48]), ("b", 1, [36, 48]), ("c", 0, [24])):
        write_record(tmp_path / "runs" / name, "lstm_ensemble", seed, 1e-3, 0.1 * (seed + 1))
        path = tmp_path / "runs" / name / "metrics.json"
        record = json.loads(path.read_text())
        record["config"]["model"]["net"] = {"input_sizes": sizes}
        path.write_text(json.dumps(record))
    results = publish_study("s", [tmp_path / "runs"], tmp_path / "out", config_keys=["model.net.input_sizes"])
    assert len(results) == 3
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "| d | lstm_ensemble | [36, 48] | 2 |" in summary and "| d | lstm_ensemble | [24] | 1 |" in summary
