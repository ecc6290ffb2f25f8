"""Gradient-boosted trees on lag features: shapes, no look-ahead, a learned seasonal pattern, the refit path."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecomlab.data.bundle import build_bundle
from ecomlab.data.forecast_datamodule import ForecastDataModule
from ecomlab.data.preprocess import Preprocess
from ecomlab.data.sources.panels import SalesFile
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


@pytest.mark.parametrize("strategy", ["recursive", "direct"])
def test_lags_beyond_the_training_history_are_dropped_with_a_note(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                                  strategy: str) -> None:
    """The issue's case: 104 weeks, season 52, default lags up to 156 (was a numpy error naming no key)."""
    rng = np.random.default_rng(0)
    ds = pd.date_range("2020-01-06", periods=104, freq="W-MON")
    pd.concat([pd.DataFrame({"unique_id": f"s{i}", "ds": ds,
                             "y": 100 + 10 * np.sin(np.arange(104) * 2 * np.pi / 52) + rng.normal(0, 1, 104)})
               for i in range(4)]).to_csv(tmp_path / "weekly.csv", index=False)
    dm = ForecastDataModule(SalesFile(str(tmp_path / "weekly.csv")), RollingOrigin(horizon=None, n_windows=1),
                            preprocess=Preprocess())
    dm.setup()
    assert dm.dims["season_length"] == 52 and len(dm.train_data().y[0]) == 78
    net = GBTLags(horizon=13, season_length=52, max_iter=20, strategy=strategy)
    with caplog.at_level(logging.INFO, logger="ecomlab.models.gbt_lags"):
        net.fit_panel(dm.train_data())
    # 78 training weeks, 8 calibration origins and 13 steps leave 58 for the calibration fit
    cap = 58 - (13 if strategy == "direct" else 1) - 1
    assert net.dropped_lags == [lag for lag in [*range(1, 53), 104, 156] if lag > cap]
    assert max(net.lags) == min(cap, 52)
    assert "dropped" in caplog.text and "model.net.lags" in caplog.text
    out = net.predict(next(iter(dm.test_dataloader())), 13, [80])
    assert np.isfinite(out["y_hat"]).all()


class _ThreeTimesTheScale:
    """A fitted tree model's ``predict`` that always answers a ratio of 3 to the window's scale (what trees learned
    from an intermittent panel's rare sales after quiet windows)."""

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(X), 3.0)


def test_recursive_forecasts_stay_within_the_widened_history_range() -> None:
    """Fed-back forecasts re-measure the scale, so a ratio above 1 compounded: on the online-retail panel one
    product's 28-day forecast grew from tens to millions (MASE 908). Each step is kept within the window's range
    widened by that range on both sides."""
    net = GBTLags(horizon=28, season_length=7, calibration_windows=0)
    net.use_series = False
    history = np.zeros(60)
    history[[10, 30, 50]] = [20.0, 10.0, 20.0]
    out = net._forecast_arrays([_ThreeTimesTheScale()], [history], np.zeros((1, 28, 0)), np.zeros(1), 28)
    assert out[0, 0] == pytest.approx(3 * 20 / 21)  # the first step is the model's own answer
    assert out.max() == pytest.approx(40.0) and out.min() >= 0  # [0, 20] widened by its range: at most 40
