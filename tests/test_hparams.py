"""Hyperparameter search and resumable studies: config fingerprints, skipping finished runs, a real Optuna sweep."""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ecomlab.run_record import config_fingerprint
from ecomlab.train import train

BIN = Path(sys.executable).parent
TINY_SHOP = ["data=synthetic_shop", "data.source.n_users=80", "data.source.n_items=50", "trainer.max_epochs=1"]


def test_fingerprint_ignores_where_a_run_writes_but_not_what_it_computes(compose_cfg, tmp_path: Path) -> None:
    cfg = compose_cfg(["model=bpr", *TINY_SHOP])
    before = config_fingerprint(cfg)
    # paths reach other nodes through interpolation (checkpoint and logger directories, the data cache)
    assert str(tmp_path) in cfg.callbacks.model_checkpoint.dirpath and str(tmp_path) in cfg.data.cache_dir
    cfg.paths.output_dir = str(tmp_path / "elsewhere" / "run")
    cfg.paths.cache_dir = str(tmp_path / "other_cache")
    assert config_fingerprint(cfg) == before
    assert cfg.paths.output_dir.endswith("elsewhere/run"), "fingerprinting leaves the config as it was"
    cfg.model.optimizer.lr = 0.5
    assert config_fingerprint(cfg) != before


def test_a_finished_run_is_skipped_and_a_changed_config_trains(compose_cfg, caplog: pytest.LogCaptureFixture) -> None:
    cfg = compose_cfg(["model=bpr", *TINY_SHOP, "eval.print_table=false"])
    first = train(cfg)
    record_file = Path(cfg.paths.output_dir) / "metrics.json"
    mtime = record_file.stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="ecomlab.train"):
        again = train(cfg)
    assert "already holds a finished run of this config" in caplog.text
    assert again == json.loads(record_file.read_text()) and again["metrics"] == first["metrics"]
    assert record_file.stat().st_mtime_ns == mtime, "a skipped run leaves metrics.json untouched"
    assert len(list((Path(cfg.paths.output_dir) / "csv").glob("version_*"))) == 1, "no logger started"

    caplog.clear()
    cfg.trainer.max_epochs = 2
    with caplog.at_level(logging.INFO, logger="ecomlab.train"):
        longer = train(cfg)
    assert "already holds" not in caplog.text and "resuming from" in caplog.text
    assert longer["config_fingerprint"] != first["config_fingerprint"]
    assert record_file.stat().st_mtime_ns != mtime


def sweep(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ECOMLAB_ROOT": str(cwd), "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([str(BIN / "ecomlab-train"), "-m", "hparams_search=bpr_optuna", *TINY_SHOP,
                           "trainer.max_epochs=2", "eval.print_table=false", f"hydra.sweep.dir={cwd}/sweep", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def metric_of(trial: Path) -> float:
    return json.loads((trial / "metrics.json").read_text())["metrics"]["val/ndcg@10"]


@pytest.mark.slow  # two console-script sweeps of 2 and 3 trials: ~30 s on the shared machine
def test_optuna_sweep_records_the_best_trial_and_resumes(tmp_path: Path) -> None:
    proc = sweep(tmp_path, "hydra.sweeper.n_trials=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "sweep"
    trials = [out / "0", out / "1"]
    values = [metric_of(t) for t in trials]
    best = yaml.safe_load((out / "optimization_results.yaml").read_text())
    assert math.isfinite(best["best_value"]) and best["best_value"] == max(values)
    space = yaml.safe_load((out / "search_space.yaml").read_text())
    assert space["direction"] == "maximize" and space["optimized_metric"] == "val/ndcg@10"
    assert set(best["best_params"]) == set(space["params"]) and space["sampler"]["seed"] == 0
    # each trial ran the parameters Optuna proposed for it
    chosen = json.loads((trials[values.index(max(values))] / "metrics.json").read_text())["config"]
    assert chosen["model"]["optimizer"]["lr"] == best["best_params"]["model.optimizer.lr"]
    assert chosen["data"]["num_negatives"] == best["best_params"]["data.num_negatives"]

    # An interrupted study resumes: run it again into the same sweep directory with one trial more. Trial 0
    # is made to look diverged (NaN): the sweeper must record it as failed and carry on.
    record = json.loads((trials[0] / "metrics.json").read_text())
    record["metrics"]["val/ndcg@10"] = float("nan")
    (trials[0] / "metrics.json").write_text(json.dumps(record))
    mtimes = [(t / "metrics.json").stat().st_mtime_ns for t in trials]
    proc = sweep(tmp_path, "hydra.sweeper.n_trials=3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    for trial in trials:
        assert f"skipping {trial}: it already holds a finished run of this config" in log
    assert [(t / "metrics.json").stat().st_mtime_ns for t in trials] == mtimes
    assert "val/ndcg@10 is nan" in log
    assert (out / "2" / "metrics.json").exists()
    best = yaml.safe_load((out / "optimization_results.yaml").read_text())
    assert best["best_value"] == max(values[1], metric_of(out / "2"))
