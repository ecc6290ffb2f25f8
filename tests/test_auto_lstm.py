"""AutoLSTM: a seeded search on the validation windows chooses the network, the chosen configuration travels
with the weights, and a backtest without validation windows is refused."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import pytorch_lightning as pl
import torch

from ecomlab.data.forecast_datamodule import ForecastDataModule
from ecomlab.data.splits import RollingOrigin
from ecomlab.models.auto_lstm import AutoLSTM
from ecomlab.models.lstm_forecaster import LSTMForecaster
from ecomlab.tasks.forecasting import ForecastTask
from test_lstm_forecaster import SinePanel, datamodule

SPACE = {"hidden_size": {"choices": [4, 8]}, "scaler": {"choices": ["mean", "standard"]}}


def auto_for(dm: ForecastDataModule, **kwargs) -> AutoLSTM:
    member = partial(LSTMForecaster, n_layers=1, dropout=0.0, mlp_size=8, embedding_dim=0)
    dims = {k: dm.dims[k] for k in ("n_series", "horizon", "input_size", "n_calendar", "n_futr", "n_hist")}
    return AutoLSTM(member, **dims, **{"net_space": SPACE, "optimizer_space": {"lr": {"low": 1e-3, "high": 1e-2,
                                                                                        "log": True}},
                                       "n_trials": 4, "trial_steps": 3, "seed": 0, **kwargs})


def fit(net: AutoLSTM, dm: ForecastDataModule, root: Path) -> tuple[ForecastTask, pl.Trainer]:
    task = ForecastTask(net, season_length=7, optimizer=partial(torch.optim.Adam, lr=1e-3), steps_per_epoch=3)
    task.prepare(dm.train_data())
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=root,
                         callbacks=[pl.callbacks.ModelCheckpoint(dirpath=root / "ckpt", monitor="val/mase")])
    trainer.fit(task, datamodule=dm)
    return task, trainer


def test_search_picks_the_best_validation_trial_and_the_choice_travels_with_the_weights(tmp_path: Path) -> None:
    pl.seed_everything(0)
    dm = datamodule(SinePanel(n_series=3, length=120), windows_per_epoch=64)
    task, trainer = fit(auto_for(dm), dm, tmp_path)
    trials = pd.read_csv(tmp_path / "search_trials.csv")
    assert len(trials) == 4 and trials["value"].notna().all()
    best = trials.loc[trials["value"].idxmin()]
    net = task.net
    assert net.chosen["net"] == {"hidden_size": best["params_net.hidden_size"], "scaler": best["params_net.scaler"]}
    assert net.chosen["optimizer"]["lr"] == pytest.approx(best["params_optimizer.lr"])
    assert net.net.encoder.hidden_size == best["params_net.hidden_size"] and net.net.scaler == best["params_net.scaler"]
    # the final network trains with the chosen step size
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(best["params_optimizer.lr"])
    # a fresh AutoLSTM (the member's defaults) rebuilds the chosen network from the checkpoint before its weights load
    fresh = ForecastTask(auto_for(dm), season_length=7,
                         optimizer=partial(torch.optim.Adam))
    fresh.prepare(dm.train_data())
    checkpoint = torch.load(trainer.checkpoint_callback.best_model_path, weights_only=True)
    fresh.load_state_dict(checkpoint["state_dict"])
    assert fresh.net.chosen == net.chosen
    batch = next(iter(dm.test_dataloader()))
    np.testing.assert_allclose(fresh.net.eval().predict(batch, 7, [80])["y_hat"],
                               net.eval().predict(batch, 7, [80])["y_hat"], rtol=1e-6)


def test_search_is_seeded(tmp_path: Path) -> None:
    dm = datamodule(SinePanel(n_series=3, length=120), windows_per_epoch=64)
    values = []
    for run in ("a", "b"):
        pl.seed_everything(0)
        fit(auto_for(dm, n_trials=2), dm, tmp_path / run)
        values.append(pd.read_csv(tmp_path / run / "search_trials.csv").drop(columns="duration"))
    pd.testing.assert_frame_equal(values[0], values[1])


def test_refuses_a_backtest_without_validation_windows(tmp_path: Path) -> None:
    dm = ForecastDataModule(SinePanel(n_series=2, length=80), RollingOrigin(horizon=7, n_windows=1, val_windows=0),
                            season_length=7, input_size=14, windows_per_epoch=64)
    dm.setup()
    with pytest.raises(ValueError, match="val_windows >= 1"):
        fit(auto_for(dm), dm, tmp_path)


def test_search_space_is_checked() -> None:
    dm = datamodule(SinePanel(n_series=2, length=80))
    with pytest.raises(ValueError, match="not arguments"):
        auto_for(dm, net_space={"hidden_sise": {"choices": [4]}})
    with pytest.raises(ValueError, match="choices"):
        auto_for(dm, net_space={"hidden_size": {"choices": []}})
