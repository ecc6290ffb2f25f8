"""``model.refit``: validation chooses a network's training length, then a fresh network trains through the
validation windows for exactly that many steps and is the one tested (ecomlab.train.refit).

Real ``ecomlab-train`` runs (in-process) of a small LSTM on the built-in synthetic sales panel; the data module's
extended training part, the refit's step count, the selection it keeps, its resumption after a stop, and a
searched network (AutoLSTM) keeping its choice.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from ecomlab.data.forecast_datamodule import ForecastDataModule
from ecomlab.data.splits import RollingOrigin
from ecomlab.models.lstm_forecaster import LSTMForecaster
from test_lstm_forecaster import SinePanel
from test_train_hardening import run_train

SMALL = ["model=lstm", "data=synthetic_sales", "data.source.n_users=200", "data.source.n_items=12", "model.net.hidden_size=8",
         "model.net.mlp_size=16", "model.steps_per_epoch=4", "trainer.max_epochs=3", "eval.print_table=false",
         "callbacks.rich_progress_bar=null"]


def record(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def test_training_part_runs_to_the_first_test_cutoff_and_windows_never_reach_the_test() -> None:
    dm = ForecastDataModule(SinePanel(n_series=3, length=120), RollingOrigin(horizon=7, n_windows=2, val_windows=2),
                            season_length=7, input_size=21, batch_size=256)
    dm.setup()
    before = dm.train_lengths.copy()
    dm.train_through_validation()
    first_test = np.array([min(w.cutoff for s2, w in dm.test_items if s2.index == s.index) for s in dm.series])
    assert (dm.train_lengths == first_test).all() and (dm.train_lengths - before == 14).all()
    assert all(len(y) == n for y, n in zip(dm.train_data().y, first_test, strict=True))
    batch = next(iter(dm.train_dataloader()))
    # every training target lies before its series' first test cutoff
    series = dm.series
    for i, row in zip(batch["series_index"].tolist(), batch["outsample_y"].tolist(), strict=True):
        y = series[i].y[: first_test[i]]
        assert any(np.allclose(y[t: t + 7], row) for t in range(len(y) - 6))


def test_refit_trains_the_selected_steps_through_validation_and_keeps_the_selection(in_tmp: Path) -> None:
    plain, refit = in_tmp / "plain", in_tmp / "refit"
    assert run_train(in_tmp, plain, *SMALL, "seed=3", "model.refit=null") == 0
    assert run_train(in_tmp, refit, *SMALL, "seed=3", "model.refit=selected") == 0
    a, b = record(plain), record(refit)
    # the selection is the plain run: same validation metrics, same best epoch
    assert {k: v for k, v in a["metrics"].items() if k.startswith("val/")} == \
        {k: v for k, v in b["metrics"].items() if k.startswith("val/")}
    assert b["best_epoch"] == a["best_epoch"] and b["global_step"] == a["global_step"]
    selected = torch.load(b["refit"]["selected"], map_location="cpu", weights_only=True)
    final = torch.load(b["refit"]["checkpoint"], map_location="cpu", weights_only=True)
    assert b["refit"]["global_step"] == selected["global_step"] == final["global_step"] == 4 * (a["best_epoch"] + 1)
    assert b["checkpoint"] == b["refit"]["checkpoint"] and Path(b["checkpoint"]).name.startswith("refit_")
    # the refit network saw the validation windows: more training observations, other test forecasts
    assert b["protocol"]["n_train_observations"] > a["protocol"]["n_train_observations"]
    assert b["protocol"]["trained_through_validation"] and not a["protocol"]["trained_through_validation"]
    assert b["metrics"]["test/mase"] != a["metrics"]["test/mase"]


def test_a_run_stopped_in_its_refit_resumes_without_selecting_again(in_tmp: Path) -> None:
    whole, stopped = in_tmp / "whole", in_tmp / "stopped"
    assert run_train(in_tmp, whole, *SMALL, "model.refit=selected") == 0
    assert run_train(in_tmp, stopped, *SMALL, "model.refit=selected") == 0
    ckpts = stopped / "checkpoints"
    # what a stop during the refit leaves: the selection's checkpoints and plan, no refit result, no record
    (stopped / "metrics.json").unlink()
    for path in ckpts.glob("refit_*.ckpt"):
        path.unlink()
    selection_mtime = (ckpts / "last.ckpt").stat().st_mtime_ns
    assert run_train(in_tmp, stopped, *SMALL, "model.refit=selected") == 0
    assert (ckpts / "last.ckpt").stat().st_mtime_ns == selection_mtime  # the selection did not train again
    assert record(stopped)["metrics"] == record(whole)["metrics"]


def test_without_validation_windows_refit_changes_nothing(in_tmp: Path) -> None:
    plain, refit = in_tmp / "plain", in_tmp / "refit"
    args = [*SMALL, "data.backtest.val_windows=0"]
    assert run_train(in_tmp, plain, *args) == 0
    assert run_train(in_tmp, refit, *args, "model.refit=selected") == 0
    assert record(refit)["metrics"] == record(plain)["metrics"] and "refit" not in record(refit)


def test_a_searched_network_refits_with_its_chosen_configuration(in_tmp: Path) -> None:
    run_dir = in_tmp / "auto"
    assert run_train(in_tmp, run_dir, *[a for a in SMALL if not a.startswith("model.net.")], "model=auto_lstm",
                     "model.net.n_trials=2", "model.net.trial_steps=2", "model.refit=selected") == 0
    chosen = record(run_dir)
    final = torch.load(chosen["refit"]["checkpoint"], map_location="cpu", weights_only=True)
    extra = next(v for k, v in final["state_dict"].items() if k.endswith("_extra_state"))
    trials = (run_dir / "search_trials.csv").read_text().strip().splitlines()
    assert len(trials) == 3  # header + 2: one search, not a second one for the refit
    selected = torch.load(chosen["refit"]["selected"], map_location="cpu", weights_only=True)
    assert extra == next(v for k, v in selected["state_dict"].items() if k.endswith("_extra_state"))


def test_a_budget_run_trains_through_validation_as_a_run_without_validation_windows(in_tmp: Path) -> None:
    budget, none = in_tmp / "budget", in_tmp / "none"
    assert run_train(in_tmp, budget, *SMALL, "model.refit=budget", "callbacks.early_stopping.patience=0") == 0
    assert run_train(in_tmp, none, *SMALL, "data.backtest.val_windows=0") == 0
    b, n = record(budget), record(none)
    # the whole budget (no early stopping, though patience 0 would have stopped it), no in-sample validation
    assert b["global_step"] == 3 * 4 and not [k for k in b["metrics"] if k.startswith("val/")]
    assert b["protocol"]["validation"]["evaluated"] is False and b["protocol"]["trained_through_validation"]
    # exactly the network trained on the same observations without validation windows
    assert b["protocol"]["n_train_observations"] == n["protocol"]["n_train_observations"]
    assert b["metrics"] == n["metrics"]


def test_a_searched_network_searches_on_validation_then_trains_through_it(in_tmp: Path) -> None:
    run_dir = in_tmp / "auto"
    assert run_train(in_tmp, run_dir, *[a for a in SMALL if not a.startswith("model.net.")], "model=auto_lstm",
                     "model.net.n_trials=2", "model.net.trial_steps=2", "model.refit=budget") == 0
    r = record(run_dir)
    trials = (run_dir / "search_trials.csv").read_text().strip().splitlines()
    assert len(trials) == 3 and r["protocol"]["trained_through_validation"] and r["global_step"] == 3 * 4


@pytest.mark.parametrize("value", ["selected", "budget", "null"])
def test_refit_is_a_model_key(value: str, compose_cfg) -> None:
    from ecomlab.config_schema import validate_config
    from ecomlab.utils import config_dir  # noqa: F401  (compose_cfg uses the package's configs)

    cfg = compose_cfg(["model=lstm", "data=synthetic_sales", f"model.refit={value}"])
    validate_config(cfg)
    assert cfg.model.refit == (None if value == "null" else value)


def test_an_unknown_refit_is_refused() -> None:
    from ecomlab.tasks.forecasting import ForecastTask

    with pytest.raises(ValueError, match="refit='yes'; expected null, 'selected' or 'budget'"):
        ForecastTask(LSTMForecaster(n_series=1, horizon=2), season_length=1, optimizer=torch.optim.Adam,
                     refit="yes")



def test_a_budget_run_re_evaluates_to_its_own_test_metrics(in_tmp: Path) -> None:
    """``ecomlab-eval``'s rebuild takes the extended training part too (the LSTM's covariate statistics)."""
    from ecomlab.eval import load_run, load_run_weights

    run_dir = in_tmp / "budget"
    assert run_train(in_tmp, run_dir, *SMALL, "model.refit=budget") == 0
    run = load_run(run_dir)
    assert run.datamodule.trained_through_validation
    load_run_weights(run)
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    again = trainer.test(run.task, datamodule=run.datamodule, verbose=False)[0]
    recorded = record(run_dir)["metrics"]
    assert again == pytest.approx({k: v for k, v in recorded.items() if k.startswith("test/")}, rel=1e-6)
