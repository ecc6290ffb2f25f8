"""Each experiment recipe runs end to end on tiny settings through the real runner and Lightning trainer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import SHARED_DATA
from ecomlab.train import train
from ecomlab.utils import config_dir

EXPERIMENTS = sorted(p.stem for p in (Path(config_dir()) / "experiment").glob("*.yaml"))
TINY = ["trainer.fast_dev_run=true", "data.batch_size=8"]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_runs_fast_dev_run(compose_cfg, experiment: str) -> None:
    cfg = compose_cfg([f"experiment={experiment}", *TINY])
    if "data_dir" in cfg.data.source:  # public data sets: the shared copies, when present
        if not SHARED_DATA.exists():
            pytest.skip(f"{SHARED_DATA} not present")
        cfg.paths.data_dir = str(SHARED_DATA)
    record = train(cfg)
    out = Path(cfg.paths.output_dir)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["metrics"] == record["metrics"]
    assert any(k.startswith("test/") for k in saved["metrics"]), saved["metrics"]
    assert (out / "config.yaml").exists()


@pytest.mark.parametrize(
    ("model", "data"),
    [("popularity", "synthetic_shop"), ("tfidf", "synthetic_shop"), ("random", "synthetic_shop"),
     ("bpr", "synthetic_shop"), ("seasonal_naive", "retail_series"), ("arima", "retail_series")],
)
def test_every_model_runs_on_tiny_data(compose_cfg, model: str, data: str) -> None:
    overrides = [f"model={model}", f"data={data}", "trainer.max_epochs=2"]
    if data == "synthetic_shop":
        overrides += ["data.source.n_users=120", "data.source.n_items=60", "data.batch_size=256"]
    else:
        overrides += ["data.source.series=[souvenirs]", "data.backtest.n_windows=1"]
    cfg = compose_cfg(overrides)
    record = train(cfg)
    metrics = record["metrics"]
    key = "test/ndcg@10" if data == "synthetic_shop" else "test/mase"
    assert key in metrics and metrics[key] >= 0.0
    assert record["protocol"]["data_fingerprint"] == record["data_fingerprint"]
    for field in ("fit_seconds", "eval_seconds", "peak_rss_mb", "git_commit", "seed", "config_fingerprint"):
        assert field in record
    out = Path(cfg.paths.output_dir)
    if data == "synthetic_shop":
        per_user = __import__("pandas").read_parquet(out / "per_user_test.parquet")
        assert len(per_user) == record["protocol"]["n_test_users"]
        assert per_user["ndcg@10"].mean() == pytest.approx(metrics["test/ndcg@10"], rel=1e-5)
    else:
        assert (out / "forecasts_test.parquet").exists()
    if model == "bpr":
        assert (out / "checkpoints" / "last.ckpt").exists()
        assert record["checkpoint"] and Path(record["checkpoint"]).exists()
        assert (out / "csv" / "version_0" / "metrics.csv").exists()
