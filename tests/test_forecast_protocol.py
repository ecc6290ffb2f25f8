"""Protocol from the data: season length, horizon and step follow the panel's frequency when left null, an explicit
value wins, the run record says what was inferred, and suspicious settings are warned about (real files)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import DictConfig

from ecomlab.data.bundle import DataValidationError
from ecomlab.data.forecast_datamodule import ForecastDataModule
from ecomlab.data.preprocess import Preprocess
from ecomlab.data.sources.panels import SalesFile
from ecomlab.data.splits import RollingOrigin, frequency_family
from ecomlab.train import train


def write_panel(path: Path, freq: str, periods: int, n_series: int = 2, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    frames = [pd.DataFrame({"unique_id": f"s{i}", "ds": pd.date_range("2015-01-05", periods=periods, freq=freq),
                            "y": 100.0 + 10 * np.sin(2 * np.pi * np.arange(periods) / 52) + rng.normal(0, 1, periods)})
              for i in range(n_series)]
    pd.concat(frames).to_csv(path, index=False)
    return path


def file_module(path: Path, **kwargs) -> ForecastDataModule:
    backtest = kwargs.pop("backtest", RollingOrigin(horizon=None, n_windows=1, val_windows=1))
    dm = ForecastDataModule(SalesFile(str(path)), backtest, preprocess=Preprocess(), **kwargs)
    dm.setup()
    return dm


@pytest.mark.parametrize(("freq", "periods", "family", "season", "horizon"), [
    ("h", 400, "hourly", 24, 48), ("D", 200, "daily", 7, 28), ("W-MON", 120, "weekly", 52, 13),
    ("MS", 80, "monthly", 12, 18), ("QS", 40, "quarterly", 4, 8), ("YS", 30, "yearly", 1, 6),
])
def test_null_season_horizon_and_step_follow_the_frequency(tmp_path: Path, freq: str, periods: int, family: str,
                                                            season: int, horizon: int) -> None:
    dm = file_module(write_panel(tmp_path / "panel.csv", freq, periods))
    assert dm.dims["season_length"] == season and dm.dims["horizon"] == horizon
    assert dm.backtest.step == horizon and dm.test_items[0][1].horizon == horizon
    assert dm.input_size == max(2 * horizon, 2 * season)
    inferred = dm.protocol()["inferred"]
    assert inferred["frequency"] == family and inferred["inferred"] == ["season_length", "horizon", "step"]
    assert inferred["from"].startswith("ds") and inferred["warnings"] == []


def test_an_explicit_value_wins_and_odd_settings_are_warned(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_panel(tmp_path / "panel.csv", "W-MON", 120)
    with caplog.at_level(logging.WARNING):
        dm = file_module(path, season_length=12, backtest=RollingOrigin(horizon=None, n_windows=2, step=6))
    # the horizon still follows the weekly frequency, the explicit season and step do not
    assert (dm.season_length, dm.backtest.horizon, dm.backtest.step) == (12, 13, 6)
    inferred = dm.protocol()["inferred"]
    assert inferred["inferred"] == ["horizon"]
    assert any("step=6 < horizon=13" in w and "overlap" in w for w in inferred["warnings"])
    assert any("season_length=12 is no cycle of weekly data" in w for w in inferred["warnings"])
    assert "season_length=12 is no cycle of weekly data" in caplog.text and "overlap" in caplog.text
    dm = file_module(path, season_length=1, backtest=RollingOrigin(horizon=4, n_windows=1, val_windows=0))
    assert dm.protocol()["inferred"]["inferred"] == [] and dm.protocol()["inferred"]["warnings"] == []


def test_a_frequency_without_defaults_asks_for_the_keys(tmp_path: Path) -> None:
    path = write_panel(tmp_path / "panel.csv", "2D", 200)
    with pytest.raises(DataValidationError, match=r"data.season_length, data.backtest.horizon .*freq='2D'.*set"):
        file_module(path)
    assert file_module(path, season_length=7, backtest=RollingOrigin(horizon=7)).dims["horizon"] == 7
    assert [frequency_family(f) for f in ("QS-OCT", "ME", "W-SUN", "B", "15min")] == \
        ["quarterly", "monthly", "weekly", None, None]


def test_sales_file_defaults_on_a_weekly_panel_record_what_was_inferred(
        compose_cfg: Callable[..., DictConfig], tmp_path: Path) -> None:
    """The issue's case: a weekly panel with data=sales-file and nothing else set ran with a 12-week season."""
    path = write_panel(tmp_path / "weekly.csv", "W-MON", 150)
    cfg = compose_cfg(["data=sales-file", f"data.source.path={path}", "model=seasonal_naive"])
    record = train(cfg)
    protocol = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())["protocol"]
    assert protocol["season_length"] == 52 and protocol["backtest"]["horizon"] == 13
    assert protocol["backtest"]["step"] == 13
    assert protocol["inferred"]["inferred"] == ["season_length", "horizon", "step"]
    assert protocol["inferred"]["frequency"] == "weekly" and protocol["inferred"]["freq"] == "W-MON"
    # the forecast repeats the value 52 weeks before each target: the model got the inferred season
    forecasts = pd.read_parquet(Path(cfg.paths.output_dir) / "forecasts_test.parquet")
    panel = pd.read_csv(path, parse_dates=["ds"]).set_index(["unique_id", "ds"])["y"]
    back = [panel[(u, d - pd.Timedelta(weeks=52))] for u, d in zip(forecasts["unique_id"], forecasts["ds"], strict=True)]
    np.testing.assert_allclose(forecasts["y_hat"], back)
    assert record["metrics"]["test/mase"] > 0
