"""The run record says how training ended: epochs run, the tested checkpoint's epoch and why it stopped."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ecomlab.train import train

TINY_SHOP = ["model=bpr", "data=synthetic_shop", "data.source.n_users=80", "data.source.n_items=50",
             "eval.print_table=false", "seed=3"]
#: the callback that sees the stop when it happens (``++``: whether or not the run's callbacks already have it)
OUTCOME = "++callbacks.training_outcome._target_=ecomlab.callbacks.TrainingOutcome"
FIELDS = ("epochs_run", "best_epoch", "stop_reason", "stop_detail", "global_step")


def run(compose_cfg, *overrides: str) -> dict:
    cfg = compose_cfg([*TINY_SHOP, *overrides])
    record = train(cfg)
    on_disk = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert {k: on_disk[k] for k in FIELDS} == {k: record[k] for k in FIELDS}
    if record["checkpoint"]:  # the best epoch is the one whose checkpoint was tested
        saved = torch.load(record["checkpoint"], map_location="cpu", weights_only=True)
        assert record["best_epoch"] == saved["epoch"]
        if Path(record["checkpoint"]).name.startswith("epoch_"):  # the checkpoint callback's file names
            assert Path(record["checkpoint"]).name == f"epoch_{saved['epoch']:03d}.ckpt"
    return record


def test_max_epochs(compose_cfg) -> None:
    record = run(compose_cfg, OUTCOME, "trainer.max_epochs=3", "callbacks.early_stopping=null")
    assert (record["stop_reason"], record["epochs_run"]) == ("max_epochs", 3)
    assert record["stop_detail"] == "max_epochs=3 reached" and 0 <= record["best_epoch"] <= 2


# no epoch can improve NDCG@10 by 1.0: the first validation sets the best score, the second ends the run
NO_PATIENCE = ["trainer.max_epochs=50", "callbacks.early_stopping.patience=1", "callbacks.early_stopping.min_delta=1.0"]


def test_early_stopping(compose_cfg) -> None:
    record = run(compose_cfg, OUTCOME, *NO_PATIENCE)
    assert (record["stop_reason"], record["epochs_run"]) == ("early_stopping", 2)
    assert "val/ndcg@10 did not improve in the last 1 records" in record["stop_detail"]
    assert record["best_epoch"] in (0, 1)


def test_early_stopping_is_named_without_the_outcome_callback(compose_cfg) -> None:
    # the tested checkpoint's reload rewinds the early stopping state; with no timer nothing else could stop
    record = run(compose_cfg, *NO_PATIENCE)
    assert (record["stop_reason"], record["epochs_run"]) == ("early_stopping", 2)


def test_a_time_cap_is_visible_next_to_early_stopping(compose_cfg) -> None:
    record = run(compose_cfg, OUTCOME, "trainer.max_epochs=100000", "callbacks.early_stopping.patience=100000",
                 "+trainer.max_time=\"00:00:00:01\"")
    assert record["stop_reason"] == "max_time" and record["stop_detail"].startswith("max_time of 1 s of training reached")
    assert 1 <= record["epochs_run"] < 100000 and record["best_epoch"] < record["epochs_run"]


def test_max_steps(compose_cfg) -> None:
    # 80 users' purchases make several batches of 256 per epoch: 5 steps end inside an epoch
    record = run(compose_cfg, OUTCOME, "trainer.max_epochs=50", "+trainer.max_steps=5", "data.batch_size=256",
                 "callbacks.early_stopping=null")
    assert (record["stop_reason"], record["global_step"]) == ("max_steps", 5)
    assert record["stop_detail"] == "max_steps=5 reached"


def test_a_closed_form_model_says_it_was_not_trained(compose_cfg) -> None:
    record = run(compose_cfg, "model=popularity")
    assert (record["stop_reason"], record["epochs_run"], record["best_epoch"]) == ("not_trained", 0, None)


def test_a_run_without_ecomlab_callbacks(compose_cfg) -> None:
    # callbacks=none: Lightning's default checkpoint of the last epoch; the fit loop's counters tell the reason
    record = run(compose_cfg, "trainer.max_epochs=2", "callbacks=none")
    assert (record["stop_reason"], record["epochs_run"], record["best_epoch"]) == ("max_epochs", 2, 1)
