"""Gradient-boosted trees on lag features: shapes, no look-ahead, a learned seasonal pattern, the refit path."""

from __future__ import annotations

import numpy as np
import pytest

from ecomlab.data.bundle import build_bundle
from ecomlab.data.forecast_datamodule import ForecastDataModule
from ecomlab.data.splits import RollingOrigin
from ecomlab.metrics.forecasting import mase
from ecomlab.models.gbt_lags import GBTLags
from test_lstm_forecaster import SinePanel


def datamodule(source: SinePanel | None = None) -> ForecastDataModule:
    dm = ForecastDataModule(source or SinePanel(noise=0.05), RollingOrigin(horizon=7, n_windows=2, step=7),
                            season_length=7, futr_covariates=["promo"], batch_size=64)
    dm.setup()
    return dm


@pytest.fixture(scope="module")
def dm() -> ForecastDataModule:
    return datamodule()


def fitted(dm: ForecastDataModule, **kwargs) -> GBTLags:
    net = GBTLags(horizon=7, season_length=7, **{"max_iter": 60, **kwargs})
    net.fit_panel(dm.train_data())
    return net


@pytest.mark.parametrize("strategy", ["recursive", "direct"])
def test_shapes_and_seasonal_pattern(dm: ForecastDataModule, strategy: str) -> None:
    net = fitted(dm, strategy=strategy)
    assert len(net.models) == (1 if strategy == "recursive" else 7)
    batch = next(iter(dm.test_dataloader()))
    out = net.predict(batch, 7, [80, 95])
    assert set(out) == {"y_hat"}  # point forecasts only
    assert out["y_hat"].shape == batch["future"].shape
    # against the one-step naive scale (a pure weekly pattern has no seasonal-naive error)
    scales = np.array([np.mean(np.abs(np.diff(h))) for h in batch["history"]])
    assert np.mean(mase(batch["future"], out["y_hat"], scale=scales)) < 0.2


def test_defaults_lags_and_short_histories() -> None:
    net = GBTLags(horizon=3, season_length=4)
    assert net.lags == [1, 2, 3, 4, 8, 12] and net.rolling == [4, 8]
    with pytest.raises(ValueError, match="strategy"):
        GBTLags(horizon=3, strategy="multi")
    # histories shorter than the longest lag get NaN features, which the trees accept
    window = np.full((2, net.width), np.nan)
    window[0, -2:] = [1.0, 2.0]
    window[1, -1] = 0.0
    base, scale = net._base(window)
    assert np.isnan(base[0, 2]) and base[0, 0] == pytest.approx(2.0 / 1.5) and scale[1] == 1.0


@pytest.mark.parametrize("strategy", ["recursive", "direct"])
def test_no_look_ahead(dm: ForecastDataModule, strategy: str) -> None:
    net = fitted(dm, strategy=strategy)
    base = next(iter(dm.test_dataloader()))
    changed = SinePanel(noise=0.05)
    frame = changed.load().sales
    frame.loc[frame.groupby("unique_id").cumcount(ascending=False) < 7, ["y", "promo"]] = [1e4, 0]
    changed.load = lambda: build_bundle("sine", None, sales=frame)  # type: ignore[method-assign]
    other = next(iter(datamodule(changed).test_dataloader()))
    last = np.asarray(base["window"]) == 1
    assert not np.allclose(other["future"][last], base["future"][last])
    # promo of the last window's horizon is a known-future input: keep the original values there
    other["future_covariates"] = base["future_covariates"]
    np.testing.assert_allclose(net.predict(other, 7)["y_hat"], net.predict(base, 7)["y_hat"])


def test_refit_per_window_uses_data_up_to_each_cutoff(dm: ForecastDataModule) -> None:
    plain, refit = fitted(dm), fitted(dm, refit=True)
    batch = next(iter(dm.test_dataloader()))
    a, b = plain.predict(batch, 7)["y_hat"], refit.predict(batch, 7)["y_hat"]
    assert a.shape == b.shape and np.isfinite(b).all()
    assert not np.allclose(a, b)  # the refitted models saw the data between the first and each cutoff
    scales = np.array([np.mean(np.abs(np.diff(h))) for h in batch["history"]])
    assert np.mean(mase(batch["future"], b, scale=scales)) < 0.2
