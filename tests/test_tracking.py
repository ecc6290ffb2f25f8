"""Logger configs as a run uses them: the run record names where each logger put the run's curves."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from ecomlab.train import train

TINY_SHOP = ["model=bpr", "data=synthetic_shop", "data.source.n_users=80", "data.source.n_items=50",
             "trainer.max_epochs=1", "eval.print_table=false", "seed=3"]


def test_csv_logger_run_is_recorded(compose_cfg) -> None:
    cfg = compose_cfg(TINY_SHOP)
    record = train(cfg)
    (run,) = record["logger_runs"]
    assert run["kind"] == "CSVLogger" and run["version"] == 0
    curves = pd.read_csv(Path(run["log_dir"]) / "metrics.csv")
    assert Path(run["log_dir"]) == Path(cfg.paths.output_dir) / "csv" / "version_0"
    assert "val/ndcg@10" in curves.columns and curves["train/loss"].notna().any()


@pytest.mark.slow  # MLflow creates its SQLite store through alembic migrations: ~10 s on the shared machine
def test_mlflow_logger_writes_a_local_store_and_the_record_links_the_run(compose_cfg) -> None:
    cfg = compose_cfg([*TINY_SHOP, "logger=mlflow"])
    assert cfg.logger.mlflow.tracking_uri.startswith("sqlite:///")
    record = train(cfg)
    (run,) = record["logger_runs"]
    assert run["kind"] == "MLFlowLogger" and run["run_id"]
    on_disk = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert on_disk["logger_runs"] == record["logger_runs"]

    client = mlflow.MlflowClient(tracking_uri=cfg.logger.mlflow.tracking_uri)
    tracked = client.get_run(run["run_id"])
    assert tracked.info.run_name == "bpr/synthetic_shop/seed3"
    assert tracked.info.experiment_id == run["experiment_id"]
    assert client.get_experiment(run["experiment_id"]).name == cfg.task_name
    # the curves are there: training loss per step, and the validation metric (MLflow allows no '@' in metric
    # names, so Lightning logs val/ndcg@10 as val/ndcg10), last logged by the best checkpoint's validation
    assert client.get_metric_history(run["run_id"], "train/loss")
    assert tracked.data.metrics["val/ndcg10"] == pytest.approx(record["metrics"]["val/ndcg@10"], abs=1e-6)
    assert (Path(cfg.paths.log_dir) / "mlflow.db").exists()
