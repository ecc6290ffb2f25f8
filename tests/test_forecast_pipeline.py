"""Forecasting pipeline for global models: training data / windows without look-ahead, covariates and their
validation, calendar features, probabilistic metrics, and the trained models through the real runner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecomlab.data.bundle import DatasetBundle, DataValidationError, build_bundle
from ecomlab.data.forecast_datamodule import ForecastDataModule, calendar_attributes
from ecomlab.data.splits import RollingOrigin
from ecomlab.metrics.probabilistic import coverage, msql, pinball_loss, quantiles_from_intervals
from ecomlab.train import train

SENTINEL = 1e6


class PanelSource:
    """An in-memory sales panel (the data contract), for tests."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def load(self) -> DatasetBundle:
        return build_bundle("test_panel", None, sales=self.frame)


def panel(lengths: tuple[int, ...] = (60, 45, 80), freq: str = "D", seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for i, n in enumerate(lengths):
        t = np.arange(n)
        parts.append(pd.DataFrame({
            # series of different lengths all end on the same day
            "unique_id": f"s{i}", "ds": pd.date_range(end="2024-03-31", periods=n, freq=freq),
            "y": 10.0 + i + np.sin(2 * np.pi * t / 7) + rng.normal(0, 0.1, n),
            "promo": rng.integers(0, 2, n).astype(float), "price": rng.uniform(5, 6, n)}))
    return pd.concat(parts, ignore_index=True)


def module(frame: pd.DataFrame, **kwargs) -> ForecastDataModule:
    kwargs = {"input_size": 14, "batch_size": 16, "windows_per_epoch": 256, **kwargs}
    dm = ForecastDataModule(PanelSource(frame), RollingOrigin(horizon=7, n_windows=2, step=7, val_windows=1),
                            season_length=7, **kwargs)
    dm.setup()
    return dm


# --------------------------------------------------------------------------- data module


def test_train_data_and_windows_stop_before_the_first_evaluation_cutoff() -> None:
    frame = panel()
    # every value at or after a series' first evaluation cutoff (3 windows of 7 before the end) is a sentinel
    late = frame.groupby("unique_id").cumcount(ascending=False) < 21
    frame.loc[late, "y"] = SENTINEL
    dm = module(frame, futr_covariates=["promo"])
    data = dm.train_data()
    assert list(data.unique_id) == ["s0", "s1", "s2"]  # series index = sorted unique_id order
    for s, (y, ds) in enumerate(zip(data.y, data.ds, strict=True)):
        first_cutoff = dm.val_items[s][1].cutoff
        assert len(y) == first_cutoff and (y < SENTINEL).all()
        assert pd.Timestamp(ds[-1]) < pd.Timestamp(dm.series[s].ds[first_cutoff])
        assert len(data.covariates[s]) == len(y) and list(data.covariates[s].columns) == ["promo"]
        assert data.calendar[s].shape == (len(y), dm.dims["n_calendar"])
    n_windows = 0
    for batch in dm.train_dataloader():
        assert batch["insample_y"].shape == (16, 14) and batch["outsample_y"].shape == (16, 7)
        assert batch["futr_exog"].shape == (16, 21, 1) and batch["calendar"].shape[:2] == (16, 21)
        assert float(batch["insample_y"].max()) < SENTINEL and float(batch["outsample_y"].max()) < SENTINEL
        # padded history steps are zero and masked out
        assert float((batch["insample_y"] * (1 - batch["insample_mask"])).abs().sum()) == 0.0
        n_windows += len(batch["outsample_y"])
    assert n_windows == 256


def test_training_windows_are_the_series_values() -> None:
    dm = module(panel())
    batch = next(iter(dm.train_dataloader()))
    for b in range(len(batch["series_index"])):
        y = dm.series[int(batch["series_index"][b])].y
        target = batch["outsample_y"][b].double().numpy()
        # the target is a stretch of the series; the history is what precedes it
        starts = [t for t in range(len(y) - 6) if np.allclose(y[t: t + 7], target, atol=1e-4)]
        assert len(starts) == 1
        t = starts[0]
        observed = batch["insample_mask"][b].numpy() > 0
        np.testing.assert_allclose(batch["insample_y"][b].numpy()[observed], y[max(0, t - 14): t], atol=1e-4)


def test_evaluation_batches_carry_series_index_dates_and_covariates() -> None:
    frame = panel()
    dm = module(frame, futr_covariates=["promo"], hist_covariates=["price"])
    assert dm.dims["n_futr"] == 1 and dm.dims["n_hist"] == 1 and dm.dims["input_size"] == 14
    batch = next(iter(dm.test_dataloader()))
    for b, uid in enumerate(batch["unique_id"]):
        rows = frame[frame["unique_id"] == uid].reset_index(drop=True)
        cutoff = len(batch["history"][b])
        assert dm.series[batch["series_index"][b]].unique_id == uid
        np.testing.assert_array_equal(batch["history_ds"][b], rows["ds"].to_numpy()[:cutoff])
        np.testing.assert_allclose(batch["history_covariates"][b], rows[["promo", "price"]].to_numpy()[:cutoff],
                                   rtol=1e-6)
        np.testing.assert_allclose(batch["future_covariates"][b, :, 0], rows["promo"].to_numpy()[cutoff: cutoff + 7])
        np.testing.assert_allclose(batch["futr_exog"][b, -7:, 0].numpy(), rows["promo"].to_numpy()[cutoff: cutoff + 7])
        np.testing.assert_allclose(batch["insample_y"][b].numpy(), rows["y"].to_numpy()[cutoff - 14: cutoff],
                                   rtol=1e-6)
        assert batch["hist_exog"].shape[1:] == (14, 1)


def test_loader_workers_persist_and_give_the_same_evaluation_batches() -> None:
    frame = panel()
    plain, workers = module(frame, num_workers=0), module(frame, num_workers=2)
    loader = workers.test_dataloader()
    assert loader.persistent_workers and loader.num_workers == 2 and not loader.pin_memory  # no GPU trainer
    assert workers.train_dataloader().persistent_workers and not plain.train_dataloader().persistent_workers
    got, want = list(loader), list(plain.test_dataloader())
    assert [b["position"].tolist() for b in got] == [b["position"].tolist() for b in want]
    for a, b in zip(got, want, strict=True):
        assert a["unique_id"] == b["unique_id"] and np.array_equal(a["future"], b["future"])
    assert module(frame, pin_memory=True).val_dataloader().pin_memory
    with pytest.raises(ValueError, match="num_workers=-1"):
        module(frame, num_workers=-1)


def test_declared_covariates_are_validated() -> None:
    with pytest.raises(DataValidationError, match="declared covariate 'discount'"):
        module(panel(), futr_covariates=["discount"])
    frame = panel()
    # a promotion flag unknown on the last day: inside the last test window's horizon
    frame.loc[(frame["unique_id"] == "s1") & (frame["ds"] == frame["ds"].max()), "promo"] = np.nan
    with pytest.raises(DataValidationError, match="'promo' of series 's1' is NaN in the forecast horizon"):
        module(frame, futr_covariates=["promo"])
    frame = panel()
    frame.loc[3, "price"] = np.nan
    with pytest.raises(DataValidationError, match="'price' of series 's0' has 1 NaN"):
        module(frame, hist_covariates=["price"])
    with pytest.raises(ValueError, match="both known-future and past-only"):
        module(panel(), futr_covariates=["promo"], hist_covariates=["promo"])


def test_calendar_features_follow_the_frequency() -> None:
    daily = pd.date_range("2020-01-01", periods=800, freq="D").to_numpy()
    assert [a for a, _ in calendar_attributes(daily)] == ["day_of_week", "day_of_year"]
    # under 1.5 years the yearly cycle is left out (late-year phases would never be seen in training)
    assert [a for a, _ in calendar_attributes(daily[:300])] == ["day_of_week"]
    monthly = pd.date_range("2000-01-01", periods=48, freq="MS").to_numpy()
    assert [a for a, _ in calendar_attributes(monthly)] == ["month"]
    dm = module(panel())
    weekday = dm.series[0].calendar[:, 0]  # sin(2 pi * weekday / 7)
    np.testing.assert_allclose(weekday, np.sin(2 * np.pi * pd.DatetimeIndex(dm.series[0].ds).day_of_week / 7),
                               atol=1e-6)


# --------------------------------------------------------------------------- probabilistic metrics


def test_pinball_loss_by_hand() -> None:
    y, q_hat = np.array([10.0, 0.0, 4.0]), np.array([8.0, 2.0, 4.0])
    # u = y - q_hat = (2, -2, 0); rho_0.9 = (1.8, 0.2, 0) -> mean 2/3
    assert pinball_loss(y, q_hat, 0.9) == pytest.approx(2.0 / 3.0)
    # rho_0.5 = |u| / 2
    assert pinball_loss(y, q_hat, 0.5) == pytest.approx(np.mean(np.abs(y - q_hat)) / 2)
    np.testing.assert_allclose(pinball_loss(np.stack([y, y]), np.stack([q_hat, y]), 0.1), [(0.2 + 1.8) / 3, 0.0])
    with pytest.raises(ValueError, match="quantile level"):
        pinball_loss(y, q_hat, 1.0)


def test_msql_and_coverage_by_hand() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    lo, med, hi = np.array([0.0, 2.5, 2.0, 3.0]), np.array([1.0, 3.0, 3.0, 4.0]), np.array([2.0, 3.5, 4.0, 3.5])
    # pinball: q=0.1 on u=(1,-0.5,1,1): (0.1,0.45,0.1,0.1)/4 = 0.1875; q=0.5 on u=(0,-1,0,0): 0.125;
    # q=0.9 on u=(-1,-1.5,-1,0.5): (0.1,0.15,0.1,0.45)/4 = 0.2; mean = 0.5125/3; scale 0.5
    quantiles = {0.1: lo, 0.5: med, 0.9: hi}
    assert msql(y, quantiles, 0.5) == pytest.approx(0.5125 / 3 / 0.5)
    assert np.isnan(msql(y, quantiles, 0.0))
    # inside: 1 in [0,2] yes, 2 in [2.5,3.5] no, 3 in [2,4] yes, 4 in [3,3.5] no
    assert coverage(y, lo, hi) == pytest.approx(0.5)
    assert coverage(y, y, y) == 1.0  # bounds count as inside
    assert quantiles_from_intervals({"y_hat": med, "lo_80": lo, "hi_80": hi}).keys() == {0.1, 0.5, 0.9}
    assert quantiles_from_intervals({"y_hat": med}) == {}


# --------------------------------------------------------------------------- the runner


@pytest.mark.parametrize(("model", "data"), [("lstm", "synthetic_sales"), ("lstm_deepar", "retail_series"),
                                             ("gbt", "synthetic_sales"), ("gbt", "retail_series")])
def test_global_models_run_through_the_runner(compose_cfg, model: str, data: str) -> None:
    overrides = [f"model={model}", f"data={data}", "trainer.fast_dev_run=true", "data.batch_size=16",
                 "model.net.hidden_size=16" if model.startswith("lstm") else "model.net.max_iter=20"]
    if data == "synthetic_sales":
        overrides += ["data.source.n_users=200", "data.source.n_items=60"]
    else:
        overrides += ["data.backtest.n_windows=1"]
    cfg = compose_cfg(overrides)
    record = train(cfg)
    out = Path(cfg.paths.output_dir)
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    # validation selects the trained LSTMs' checkpoint; nothing selects on it for GBT, so it is skipped
    assert metrics["test/mase"] > 0 and (metrics["val/mase"] > 0 if model.startswith("lstm") else "val/mase" not in metrics)
    forecasts = pd.read_parquet(out / "forecasts_test.parquet")
    for key in ("test/msql", "test/coverage_80", "test/coverage_95"):  # gbt: conformal intervals
        assert 0.0 <= metrics[key] < (np.inf if key.endswith("msql") else 1.0 + 1e-9), key
    assert {"lo_80", "hi_80", "lo_95", "hi_95"} <= set(forecasts.columns)
    assert (forecasts["lo_95"] <= forecasts["lo_80"] + 1e-6).all()
    assert (forecasts["hi_80"] <= forecasts["hi_95"] + 1e-6).all()
    assert record["protocol"]["input_size"] == cfg.data.input_size


def test_a_trained_model_without_validation_windows_trains_and_tests_its_last_epoch(compose_cfg) -> None:
    """M3-style protocol (one official hold-out, no validation window): nothing to monitor, so no early
    stopping, and the last epoch's checkpoint is tested (not a crash on a missing val/mase)."""
    cfg = compose_cfg(["model=lstm", "data=retail_series", "data.backtest.n_windows=1", "data.backtest.val_windows=0",
                       "trainer.max_epochs=2", "trainer.limit_train_batches=2", "model.net.hidden_size=8",
                       "data.batch_size=16"])
    record = train(cfg)
    metrics = record["metrics"]
    assert "val/mase" not in metrics and metrics["test/mase"] > 0
    assert record["checkpoint"] and "epoch_001" in record["checkpoint"]  # epochs 0 and 1 ran; the last is tested
