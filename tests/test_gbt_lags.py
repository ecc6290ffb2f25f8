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
    assert set(out) == {"y_hat", "lo_80", "hi_80", "lo_95", "hi_95"}
    assert all(v.shape == batch["future"].shape for v in out.values())
    # nested, centred intervals that widen with the level
    assert (out["lo_95"] <= out["lo_80"]).all() and (out["lo_80"] <= out["y_hat"]).all()
    assert (out["y_hat"] <= out["hi_80"]).all() and (out["hi_80"] <= out["hi_95"]).all()
    assert (out["hi_95"] - out["lo_95"]).mean() > (out["hi_80"] - out["lo_80"]).mean() > 0
    inside = (batch["future"] >= out["lo_95"]) & (batch["future"] <= out["hi_95"])
    assert inside.mean() > 0.7  # noisy sine panel: calibrated on held-out training windows
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
    for key, value in net.predict(base, 7, [80]).items():  # intervals too: calibrated on training data only
        np.testing.assert_allclose(net.predict(other, 7, [80])[key], value)


def test_refit_per_window_uses_data_up_to_each_cutoff(dm: ForecastDataModule) -> None:
    plain, refit = fitted(dm), fitted(dm, refit=True)
    batch = next(iter(dm.test_dataloader()))
    a, b = plain.predict(batch, 7)["y_hat"], refit.predict(batch, 7)["y_hat"]
    assert a.shape == b.shape and np.isfinite(b).all()
    assert not np.allclose(a, b)  # the refitted models saw the data between the first and each cutoff
    scales = np.array([np.mean(np.abs(np.diff(h))) for h in batch["history"]])
    assert np.mean(mase(batch["future"], b, scale=scales)) < 0.2


def test_conformal_quantiles_are_the_finite_sample_ranks(dm: ForecastDataModule) -> None:
    net = fitted(dm, calibration_windows=3)
    errors = net.calibration_errors
    n_series = len(dm.train_data().y)
    assert errors is not None and errors.shape == (3 * n_series, 7) and (errors >= 0).all()
    n = len(errors)
    rank = int(np.ceil((n + 1) * 0.8))  # 1-based finite-sample conformal rank
    np.testing.assert_allclose(net.conformal_quantiles(80, 7), np.sort(errors, axis=0)[rank - 1])
    # a level needing a rank beyond n takes the largest error (too few windows, not an error)
    np.testing.assert_allclose(net.conformal_quantiles(99.9, 7), errors.max(axis=0))
    with pytest.raises(ValueError, match="calibrated for 7 steps"):
        net.conformal_quantiles(80, 8)
    # half-width = scale at the origin x q_k
    batch = next(iter(dm.test_dataloader()))
    out = net.predict(batch, 7, [80])
    _, scale = net._base(net._windows(batch["history"]))
    np.testing.assert_allclose(out["hi_80"] - out["y_hat"], scale[:, None] * net.conformal_quantiles(80, 7)[None])
    point = fitted(dm, calibration_windows=0).predict(batch, 7, [80, 95])
    assert set(point) == {"y_hat"}
    np.testing.assert_allclose(point["y_hat"], out["y_hat"])  # calibration never changes the point forecast
