"""Forecast ensemble: members cut their own windows, quantiles average exactly, one member equals itself,
unsupported members are refused, and an ensemble trains through the real Lightning loop."""

from __future__ import annotations

import inspect
from functools import partial

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from ecomlab.models import forecast_heads as heads
from ecomlab.models.forecast_ensemble import ForecastEnsemble
from ecomlab.models.lstm_forecaster import LSTMForecaster
from ecomlab.tasks.forecasting import ForecastTask
from test_lstm_forecaster import SinePanel, datamodule


def ensemble_for(dm, **kwargs) -> ForecastEnsemble:
    # the sizes the ensemble takes, as instantiate_with_dims hands them over (dims carry more, e.g. nonnegative)
    accepted = inspect.signature(ForecastEnsemble).parameters
    dims = {k: v for k, v in dm.dims.items() if k in accepted}
    member = partial(LSTMForecaster, hidden_size=8, n_layers=1, dropout=0.0, mlp_size=16,
                     head=kwargs.pop("head", heads.QuantileHead()))
    return ForecastEnsemble(member, **dims, **kwargs)


@pytest.fixture(scope="module")
def dm():
    return datamodule(futr_covariates=["promo"])


def test_members_read_their_own_window_and_loss_is_the_sum(dm) -> None:
    torch.manual_seed(0)
    net = ensemble_for(dm, n_members=3, input_sizes=[21, 7])
    net.fit_panel(dm.train_data())
    assert net.member_sizes == [21, 7, 21] and [m.input_size for m in net.members] == [21, 7, 21]
    batch = next(iter(dm.train_dataloader()))
    window = net._window(batch, 7)
    assert window["insample_y"].shape == (64, 7) and window["calendar"].shape[1] == 7 + 7
    torch.testing.assert_close(window["insample_y"], batch["insample_y"][:, -7:])
    expected = sum(m.loss(net._window(batch, s)) for m, s in zip(net.members, net.member_sizes, strict=True))
    torch.testing.assert_close(net.loss(batch), expected)
    raw, loc, scale = net.raw_outputs(batch)
    assert raw.shape == (64, 7, 5) and loc.shape == scale.shape == (64, 1)


def test_quantiles_are_the_members_average_in_original_units(dm) -> None:
    torch.manual_seed(1)
    net = ensemble_for(dm, n_members=2, input_sizes=[21, 14], combine="mean").eval()
    net.fit_panel(dm.train_data())
    batch = next(iter(dm.test_dataloader()))
    out = net.predict(batch, 7, [80, 95])
    members = [m.predict(net._window(batch, s), 7, [80, 95]) for m, s in zip(net.members, net.member_sizes,
                                                                            strict=True)]
    for key in ("y_hat", "lo_80", "hi_80", "lo_95", "hi_95"):
        np.testing.assert_allclose(out[key], (members[0][key] + members[1][key]) / 2, rtol=1e-4, atol=1e-4)
    assert (out["lo_95"] <= out["lo_80"] + 1e-4).all() and (out["hi_80"] <= out["hi_95"] + 1e-4).all()


def test_median_combination_takes_the_middle_member_per_quantile(dm) -> None:
    torch.manual_seed(4)
    net = ensemble_for(dm, n_members=3, input_sizes=[21, 14, 7]).eval()
    net.fit_panel(dm.train_data())
    batch = next(iter(dm.test_dataloader()))
    out = net.predict(batch, 7, [80, 95])
    members = [m.predict(net._window(batch, s), 7, [80, 95]) for m, s in zip(net.members, net.member_sizes,
                                                                            strict=True)]
    for key in ("y_hat", "lo_80", "hi_95"):
        np.testing.assert_allclose(out[key], np.median([m[key] for m in members], axis=0), rtol=1e-4, atol=1e-4)
    assert (out["lo_80"] <= out["y_hat"] + 1e-4).all() and (out["y_hat"] <= out["hi_80"] + 1e-4).all()


def test_one_member_forecasts_like_the_member_alone(dm) -> None:
    torch.manual_seed(2)
    net = ensemble_for(dm, n_members=1).eval()
    net.fit_panel(dm.train_data())
    batch = next(iter(dm.test_dataloader()))
    for key, value in net.members[0].predict(batch, 7, [80]).items():
        np.testing.assert_allclose(net.predict(batch, 7, [80])[key], value, rtol=1e-4)


def test_point_members_average_their_forecasts(dm) -> None:
    torch.manual_seed(3)
    net = ensemble_for(dm, n_members=2, head=heads.PointHead(), combine="mean").eval()
    net.fit_panel(dm.train_data())
    batch = next(iter(dm.test_dataloader()))
    mean = np.mean([m.predict(batch, 7)["y_hat"] for m in net.members], axis=0)
    np.testing.assert_allclose(net.predict(batch, 7, [80])["y_hat"], mean, rtol=1e-5, atol=1e-5)


def test_refuses_what_it_cannot_average(dm) -> None:
    with pytest.raises(ValueError, match="QuantileHead and PointHead"):
        ensemble_for(dm, n_members=2, head=heads.NormalHead())
    with pytest.raises(ValueError, match=r"input_sizes \[42\] must lie in 1..21"):
        ensemble_for(dm, input_sizes=[14, 42])
    with pytest.raises(ValueError, match="n_members=0"):
        ensemble_for(dm, n_members=0)
    with pytest.raises(ValueError, match="combine='vote'"):
        ensemble_for(dm, combine="vote")


def test_ensemble_trains_and_beats_its_untrained_self() -> None:
    pl.seed_everything(0)
    dm = datamodule(SinePanel(noise=0.02), windows_per_epoch=2048)
    net = ensemble_for(dm, n_members=3, input_sizes=[21, 14])
    task = ForecastTask(net, season_length=7, optimizer=partial(torch.optim.Adam, lr=1e-2))
    task.prepare(dm.train_data())
    trainer = pl.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0)
    before = trainer.test(task, dm.test_dataloader(), verbose=False)[0]["test/mase"]
    trainer.fit(task, dm.train_dataloader())
    after = trainer.test(task, dm.test_dataloader(), verbose=False)[0]["test/mase"]
    assert after < 0.3 * before
