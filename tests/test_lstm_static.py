"""Static covariates: per-series group codes in the forecast data module and the LSTM's per-group embedding."""

from __future__ import annotations

import inspect
from functools import partial

import numpy as np
import pandas as pd
import pytest
import pytorch_lightning as pl
import torch

from ecomlab.data.bundle import DatasetBundle, DataValidationError, build_bundle
from ecomlab.data.forecast_datamodule import ForecastDataModule
from ecomlab.data.splits import RollingOrigin
from ecomlab.models.forecast_heads import PointHead
from ecomlab.models.lstm_forecaster import LSTMForecaster
from ecomlab.tasks.forecasting import ForecastTask

STATES = ["NSW", "VIC", "QLD"]
INDUSTRIES = ["food", "clothing"]


class GroupPanel:
    """Six series, one per (state, industry): state as a sales-panel column, industry in the metadata only.

    Industry ``food`` trends up and ``clothing`` down at the same relative rate, so from one observation of
    history (``input_size=1``) only the industry tells where a series goes.
    """

    def __init__(self, length: int = 120, noise: float = 0.01, varying_state: bool = False) -> None:
        self.length, self.noise, self.varying_state = length, noise, varying_state

    def load(self) -> DatasetBundle:
        rng = np.random.default_rng(0)
        t = np.arange(self.length)
        parts, meta = [], {}
        for i, (state, industry) in enumerate((s, ind) for s in STATES for ind in INDUSTRIES):
            uid = f"{state}/{industry}"
            rate = 0.03 if industry == "food" else -0.03
            y = (20.0 + 5 * i) * np.exp(rate * t) * (1 + rng.normal(0, self.noise, self.length))
            column = np.array([state] * self.length, dtype=object)
            if self.varying_state and i == 1:
                column[-1] = "WA"  # a series that moves state: not a static covariate
            parts.append(pd.DataFrame({"unique_id": uid, "ds": pd.date_range("2020-01-01", periods=self.length,
                                                                                freq="D"),
                                       "y": y, "state": column}))
            meta[uid] = {"industry": industry}
        return build_bundle("groups", None, sales=pd.concat(parts, ignore_index=True), meta={"series": meta})


def datamodule(source: GroupPanel | None = None, static: list[str] | None = None, **kwargs) -> ForecastDataModule:
    dm = ForecastDataModule(source or GroupPanel(), RollingOrigin(horizon=7, n_windows=2, step=7), season_length=7,
                            static_covariates=static, calendar=False, **kwargs)
    dm.setup()
    return dm


def net_for(dm: ForecastDataModule, **kwargs) -> LSTMForecaster:
    # the sizes the network takes, as instantiate_with_dims hands them over (dims carry more, e.g. nonnegative)
    dims = {k: v for k, v in dm.dims.items() if k in inspect.signature(LSTMForecaster).parameters}
    return LSTMForecaster(**{"hidden_size": 16, "n_layers": 1, "dropout": 0.0, **kwargs}, **dims)


def test_codes_from_a_column_and_from_metadata_share_one_code_space() -> None:
    dm = datamodule(static=["state", "industry"])
    assert dm.static_levels == {"state": sorted(STATES), "industry": sorted(INDUSTRIES)}
    assert dm.dims["n_static"] == 2 and dm.dims["n_static_levels"] == 5
    uids = [s.unique_id for s in dm.series]
    for uid, (state_code, industry_code) in zip(uids, dm.static_codes, strict=True):
        state, industry = uid.split("/")
        assert state_code == sorted(STATES).index(state)
        assert industry_code == 3 + sorted(INDUSTRIES).index(industry)  # offset past the 3 states
    data = dm.train_data()
    assert data.static is not None and data.static.shape == (6, 2) and data.static_columns == ("state", "industry")
    assert dm.protocol()["static_covariates"] == {"state": 3, "industry": 2}
    # without static covariates the sizes a network is built from are unchanged
    plain = datamodule()
    assert "n_static" not in plain.dims and plain.train_data().static is None


def test_static_covariate_errors_name_the_column_and_series() -> None:
    with pytest.raises(DataValidationError, match=r"'state' must hold exactly one value per series; series 'NSW/clothing'"):
        datamodule(GroupPanel(varying_state=True), static=["state"])
    with pytest.raises(DataValidationError, match=r"'region' is neither a column .* series 'NSW/clothing'.*industry"):
        datamodule(static=["region"])


def test_the_group_embedding_is_used_and_travels_with_the_weights() -> None:
    torch.manual_seed(0)
    dm = datamodule(static=["state", "industry"], input_size=14)
    net = net_for(dm).eval()
    net.fit_panel(dm.train_data())
    np.testing.assert_array_equal(net.static_codes.numpy(), dm.static_codes)
    batch = next(iter(dm.test_dataloader()))
    base = net.predict(batch, 7)["y_hat"]
    # a fresh network given only the state dict (as an export or a checkpoint does) forecasts the same
    clone = net_for(dm).eval()
    clone.load_state_dict(net.state_dict())
    np.testing.assert_array_equal(clone.predict(batch, 7)["y_hat"], base)
    # moving every series to another industry changes its forecast: the embedding reaches the output
    with torch.no_grad():
        net.static_codes[:, 1] = 7 - net.static_codes[:, 1]  # food <-> clothing (codes 3 and 4)
    assert not np.allclose(net.predict(batch, 7)["y_hat"], base)
    # gradients reach the rows of the groups present in the batch
    net.train().loss(next(iter(dm.train_dataloader()))).backward()
    assert net.static_embedding is not None and net.static_embedding.weight.grad.abs().sum(1).gt(0).all()
    # a network without static covariates keeps its old state dict (old checkpoints still load)
    assert "static_codes" not in net_for(datamodule()).state_dict()


def test_fit_panel_refuses_a_panel_without_the_static_codes() -> None:
    net = net_for(datamodule(static=["industry"]))
    with pytest.raises(ValueError, match="1 static covariate"):
        net.fit_panel(datamodule().train_data())


def _trained_mae(static: list[str] | None) -> float:
    pl.seed_everything(0)
    # one step of history: mean scaling leaves z = 1 for every window, so only the embedding tells the trend
    dm = datamodule(static=static, input_size=1, windows_per_epoch=512, batch_size=64)
    net = net_for(dm, embedding_dim=0, head=PointHead(), static_embedding_dim=2)
    task = ForecastTask(net, season_length=1, optimizer=partial(torch.optim.Adam, lr=1e-2))
    task.prepare(dm.train_data())
    trainer = pl.Trainer(max_epochs=15, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         limit_val_batches=0)
    trainer.fit(task, datamodule=dm)
    (metrics,) = trainer.test(task, datamodule=dm, verbose=False)
    return metrics["test/mase"]


def test_the_group_embedding_learns_what_the_history_cannot_show() -> None:
    with_groups, without = _trained_mae(["industry"]), _trained_mae(None)
    assert with_groups < 0.3 * without, (with_groups, without)
