"""LSTM forecaster: shapes per decoder and head, ordered quantiles, scaling, no look-ahead, learning."""

from __future__ import annotations

import inspect
from functools import partial

import numpy as np
import pandas as pd
import pytest
import pytorch_lightning as pl
import torch

from ecomlab.data.bundle import DatasetBundle, build_bundle
from ecomlab.data.forecast_datamodule import ForecastDataModule
from ecomlab.data.splits import RollingOrigin
from ecomlab.models import forecast_heads as heads
from ecomlab.models.lstm_forecaster import LSTMForecaster
from ecomlab.tasks.forecasting import ForecastTask

HEADS = [heads.PointHead, heads.QuantileHead, heads.NormalHead, heads.StudentTHead, heads.NegativeBinomialHead]


class SinePanel:
    """Several series: level + weekly sine (series-specific level, amplitude and phase) + small noise."""

    def __init__(self, n_series: int = 6, length: int = 200, noise: float = 0.05, seed: int = 0) -> None:
        self.n_series, self.length, self.noise, self.seed = n_series, length, noise, seed

    def load(self) -> DatasetBundle:
        rng = np.random.default_rng(self.seed)
        t = np.arange(self.length)
        parts = [pd.DataFrame({
            "unique_id": f"s{i}", "ds": pd.date_range("2021-01-01", periods=self.length, freq="D"),
            "y": 10.0 + 3 * i + (1 + i % 3) * np.sin(2 * np.pi * (t + i) / 7) + rng.normal(0, self.noise, self.length),
            "promo": rng.integers(0, 2, self.length)}) for i in range(self.n_series)]
        return build_bundle("sine", None, sales=pd.concat(parts, ignore_index=True))


def datamodule(source: SinePanel | None = None, **kwargs) -> ForecastDataModule:
    dm = ForecastDataModule(source or SinePanel(), RollingOrigin(horizon=7, n_windows=2, step=7), season_length=7,
                            input_size=21, batch_size=64, **kwargs)
    dm.setup()
    return dm


def net_for(dm: ForecastDataModule, **kwargs) -> LSTMForecaster:
    # the sizes the network takes, as instantiate_with_dims hands them over (dims carry more, e.g. nonnegative)
    accepted = inspect.signature(LSTMForecaster).parameters
    dims = {k: v for k, v in dm.dims.items() if k in accepted}
    return LSTMForecaster(**{"hidden_size": 16, "n_layers": 1, "dropout": 0.0, **kwargs}, **dims)


@pytest.fixture(scope="module")
def dm() -> ForecastDataModule:
    return datamodule(futr_covariates=["promo"])


@pytest.mark.parametrize("seasonal_lag", [False, True])
@pytest.mark.parametrize("decoder", ["direct", "recursive"])
@pytest.mark.parametrize("head", HEADS)
def test_shapes_per_decoder_and_head(dm: ForecastDataModule, decoder: str, head: type, seasonal_lag: bool) -> None:
    torch.manual_seed(0)
    net = net_for(dm, head=head(), decoder=decoder, seasonal_lag=seasonal_lag)
    net.fit_panel(dm.train_data())
    train_batch = next(iter(dm.train_dataloader()))
    raw, loc, scale = net.raw_outputs(train_batch)
    assert raw.shape == (64, 7, head().n_outputs) and loc.shape == scale.shape == (64, 1)
    loss = net.loss(train_batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    batch = next(iter(dm.test_dataloader()))
    out = net.eval().predict(batch, 7, [80, 95])
    assert out["y_hat"].shape == (len(batch["unique_id"]), 7) and np.isfinite(out["y_hat"]).all()
    if head is heads.PointHead:
        assert set(out) == {"y_hat"}
    else:
        assert set(out) == {"y_hat", "lo_80", "hi_80", "lo_95", "hi_95"}
        tol = 1e-4  # exact quantiles for every head: ordered up to rounding
        assert (out["lo_95"] <= out["lo_80"] + tol).all() and (out["lo_80"] <= out["y_hat"] + tol).all()
        assert (out["y_hat"] <= out["hi_80"] + tol).all() and (out["hi_80"] <= out["hi_95"] + tol).all()
    # evaluation is repeatable, and a window's forecast does not depend on the rest of its batch
    np.testing.assert_array_equal(net.predict(batch, 7, [80])["y_hat"], out["y_hat"])
    half = {k: v[:5] for k, v in batch.items()}
    for key, value in net.predict(half, 7, [80, 95]).items():
        np.testing.assert_allclose(value, out[key][:5], rtol=1e-5, atol=1e-6, err_msg=key)


@pytest.mark.parametrize("head", [heads.StudentTHead, heads.NegativeBinomialHead])
def test_distribution_head_quantiles_are_the_laws_own(head: type[heads.DistributionHead]) -> None:
    """Exact quantiles (SciPy) against the empirical quantiles of 200,000 draws from the same torch law: a
    parametrisation mismatch (e.g. SciPy's negative binomial success probability) would show here."""
    torch.manual_seed(0)
    h = head()
    raw, loc, scale = torch.randn(3, 2, h.n_outputs), torch.full((3, 1), 4.0), torch.full((3, 1), 3.0)
    levels = [0.025, 0.1, 0.5, 0.9, 0.975]
    exact = h.quantiles(raw, loc, scale, levels)  # [B, h, R]
    draws = h.distribution(raw, loc, scale).sample((200_000,))  # [S, B, h]
    empirical = torch.quantile(draws.reshape(200_000, -1), torch.tensor(levels), dim=0).T.reshape(3, 2, 5)
    spread = draws.std(0).unsqueeze(-1)  # [B, h, 1]
    # Student-t: within 3% of a standard deviation; negative binomial: integer quantiles, at most one count off
    tol = 0.03 * spread if head is heads.StudentTHead else torch.full_like(spread, 1.0)
    assert ((exact - empirical).abs() <= tol).all(), (exact, empirical)
    torch.testing.assert_close(h.median(raw, loc, scale), exact[..., 2])


def test_student_t_loss_is_torchs_log_likelihood() -> None:
    """The head writes out StudentT.log_prob (torch's constructor reads back from the device); same value and
    gradient as torch's law, to the bit."""
    torch.manual_seed(0)
    h = heads.StudentTHead()
    raw = torch.randn(8, 5, 3, requires_grad=True)
    loc, scale, y = torch.randn(8, 1), torch.rand(8, 1) + 0.1, torch.randn(8, 5) * 3
    ours = h.loss(raw, y, loc, scale)
    (grad_ours,) = torch.autograd.grad(ours, raw)
    theirs = -torch.distributions.StudentT(*h.parameters_of(raw, loc, scale)).log_prob(y).mean()
    (grad_theirs,) = torch.autograd.grad(theirs, raw)
    assert torch.equal(ours, theirs) and torch.equal(grad_ours, grad_theirs)


def test_quantile_head_outputs_are_ordered_and_interpolated() -> None:
    head = heads.QuantileHead([0.1, 0.5, 0.9])
    raw = torch.randn(32, 5, 3) * 5
    q = head.ordered(raw)
    assert (q[..., 1:] >= q[..., :-1]).all()
    loc, scale = torch.full((32, 1), 2.0), torch.full((32, 1), 3.0)
    inter = head.quantiles(raw, loc, scale, [0.1, 0.3, 0.5, 0.95])
    torch.testing.assert_close(inter[..., 0], 2.0 + 3.0 * q[..., 0])
    torch.testing.assert_close(inter[..., 1], 2.0 + 3.0 * (q[..., 0] + q[..., 1]) / 2)  # halfway 0.1 -> 0.5
    torch.testing.assert_close(inter[..., 3], 2.0 + 3.0 * q[..., 2])  # clamped to the outermost level
    with pytest.raises(ValueError, match="including 0.5"):
        heads.QuantileHead([0.1, 0.9])


def test_window_scalers_use_observed_steps_only() -> None:
    y = torch.tensor([[0.0, 0.0, 1.0, 2.0, 3.0, 6.0]])
    mask = torch.tensor([[0.0, 0.0, 1.0, 1.0, 1.0, 1.0]])
    loc, scale = heads.window_scale(y, mask, "mean")
    assert float(loc) == 0.0 and float(scale) == pytest.approx(3.0)
    loc, scale = heads.window_scale(y, mask, "standard")
    assert float(loc) == pytest.approx(3.0) and float(scale) == pytest.approx(np.std([1, 2, 3, 6]))
    loc, scale = heads.window_scale(y, mask, "robust")
    assert float(loc) == pytest.approx(2.5) and float(scale) == pytest.approx(np.subtract(*np.percentile([1, 2, 3, 6], [75, 25])))
    loc, scale = heads.window_scale(torch.zeros(1, 4), torch.ones(1, 4), "standard")  # flat window
    assert float(scale) == 1.0


def test_seasonal_lag_gives_each_step_its_value_one_season_back() -> None:
    """Step k sees z at window position L + k - 1 - s * ceil(k / s) (0-based): seasonal naive's forecast for it;
    a padded step, or one a season longer than the window reaches before the window, gives 0 with mask 0."""
    net = LSTMForecaster(n_series=1, horizon=6, input_size=10, season_length=4, seasonal_lag=True)
    z = torch.arange(10.0).repeat(2, 1)  # [2, 10]: position i holds i
    mask = torch.ones(2, 10)
    mask[1, :7] = 0  # the second window is left-padded up to position 6
    lag = net._seasonal_lag(z, mask)  # [2, 6, 2]
    assert lag[0, :, 0].tolist() == [6, 7, 8, 9, 6, 7] and lag[0, :, 1].tolist() == [1] * 6
    assert lag[1, :, 0].tolist() == [0, 7, 8, 9, 0, 7] and lag[1, :, 1].tolist() == [0, 1, 1, 1, 0, 1]
    longer = LSTMForecaster(n_series=1, horizon=3, input_size=10, season_length=12, seasonal_lag=True)
    lag = longer._seasonal_lag(z, torch.ones(2, 10))  # steps 1-2 fall before the window; step 3 is position 0
    assert lag[0, :, 0].tolist() == [0, 0, 0] and lag[0, :, 1].tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match="season_length >= 1"):
        LSTMForecaster(n_series=1, horizon=3, seasonal_lag=True)


@pytest.mark.parametrize("seasonal_lag", [False, True])
@pytest.mark.parametrize("decoder", ["direct", "recursive"])
def test_no_look_ahead(decoder: str, seasonal_lag: bool) -> None:
    torch.manual_seed(0)
    dm = datamodule()
    net = net_for(dm, decoder=decoder, seasonal_lag=seasonal_lag).eval()
    net.fit_panel(dm.train_data())
    base = next(iter(dm.test_dataloader()))
    # the same panel with every value after the last window's cutoff replaced
    changed = SinePanel()
    frame = changed.load().sales
    late = frame.groupby("unique_id").cumcount(ascending=False) < 7
    frame.loc[late, "y"] = 1e4
    changed.load = lambda: build_bundle("sine", None, sales=frame)  # type: ignore[method-assign]
    other = next(iter(datamodule(changed).test_dataloader()))
    assert not np.allclose(other["future"], base["future"])
    np.testing.assert_allclose(net.predict(other, 7, [80])["y_hat"], net.predict(base, 7, [80])["y_hat"])


@pytest.mark.parametrize("decoder", ["direct", "recursive"])
def test_learns_a_seasonal_pattern_with_lightning(decoder: str) -> None:
    pl.seed_everything(0)
    dm = datamodule(windows_per_epoch=1024)
    # standard scaling: the weekly swing is a small share of the level, so mean scaling learns it more slowly
    net = net_for(dm, hidden_size=32, decoder=decoder, head=heads.QuantileHead(), scaler="standard")
    # MASE against the one-step naive scale: a pure seasonal pattern has no seasonal-naive error to scale by
    task = ForecastTask(net, season_length=1, optimizer=partial(torch.optim.Adam, lr=1e-2))
    task.prepare(dm.train_data())
    trainer = pl.Trainer(max_epochs=10, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         limit_val_batches=0)
    with torch.no_grad():
        first = float(net.loss(next(iter(dm.train_dataloader()))))
    trainer.fit(task, datamodule=dm)
    (metrics,) = trainer.test(task, datamodule=dm, verbose=False)
    with torch.no_grad():
        assert float(net.loss(next(iter(dm.train_dataloader())))) < first / 5
    assert metrics["test/mase"] < 0.2, metrics
    assert 0.5 < metrics["test/coverage_95"] <= 1.0


def test_steps_per_epoch_fixes_the_budget_whatever_the_data_config_draws() -> None:
    """An epoch is ``steps_per_epoch`` optimizer steps on any panel: 64 windows per epoch in batches of 64 would
    be one step per epoch; the task's 5 steps per epoch over 3 epochs make 15 (and 15 steps' worth of windows)."""
    pl.seed_everything(0)
    dm = datamodule(windows_per_epoch=64)
    task = ForecastTask(net_for(dm), season_length=7, optimizer=partial(torch.optim.Adam, lr=1e-3), steps_per_epoch=5)
    task.prepare(dm.train_data())
    trainer = pl.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(task, datamodule=dm)
    assert trainer.global_step == 15 and trainer.current_epoch == 3
    assert dm.windows_per_epoch == 5 * 64
    (metrics,) = trainer.test(task, datamodule=dm, verbose=False)
    # every forecaster is scored on RMSSE (M5) and, with intervals, on scaled CRPS as well
    assert {"test/rmsse", "test/scaled_crps", "test/msql"} <= set(metrics)
    assert np.isfinite(metrics["test/rmsse"]) and np.isfinite(metrics["test/scaled_crps"])
    with pytest.raises(ValueError, match="steps_per_epoch=0"):
        ForecastTask(net_for(dm), season_length=7, optimizer=partial(torch.optim.Adam), steps_per_epoch=0)
