"""The forecasting suite's competition panels: M4 weekly / hourly and tourism monthly / quarterly (real files)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import hydra
import numpy as np
import pandas as pd
import pytest
from omegaconf import DictConfig

from conftest import SHARED_DATA
from ecomlab.data.bundle import DataValidationError
from ecomlab.data.sources.m4 import M4
from ecomlab.data.sources.tourism import Tourism

M4_DIR = SHARED_DATA / "m4-weekly-hourly"
TOURISM_DIR = SHARED_DATA / "tourism"

#: data config -> (folder, official test split file, n_series, horizon, freq)
SUITE = {
    "m4-weekly": (M4_DIR, "m4_weekly_hourly_long.parquet", 359, 13, "W-MON"),
    "m4-hourly": (M4_DIR, "m4_weekly_hourly_long.parquet", 414, 48, "h"),
    "tourism-monthly": (TOURISM_DIR, "tourism_long.parquet", 366, 24, "MS"),
    "tourism-quarterly": (TOURISM_DIR, "tourism_long.parquet", 427, 8, "QS-JAN"),
}


@pytest.mark.parametrize("name", sorted(SUITE))
def test_suite_config_tests_exactly_the_official_hold_out(compose_cfg: Callable[..., DictConfig],
                                                          name: str) -> None:
    folder, file, n_series, horizon, freq = SUITE[name]
    if not (folder / file).is_file():
        pytest.skip(f"{folder / file} is not available")
    cfg = compose_cfg([f"data={name}", "model=seasonal_naive"])
    cfg.data.source.data_dir = str(SHARED_DATA)
    dm = hydra.utils.instantiate(cfg.data)
    dm.setup("fit")
    assert dm.bundle is not None and dm.bundle.meta["freq"] == freq
    assert len(dm.series) == n_series and dm.dims["horizon"] == horizon
    # every series is evaluated once, on its official hold-out, and validated on the window just before it
    assert len(dm.test_items) == n_series and len(dm.val_items) == n_series
    raw = pd.read_parquet(folder / file)
    prefix = name.split("-")[1]
    raw = raw[raw["period"].str.lower() == prefix]
    test = {uid: g["y"].to_numpy() for uid, g in raw[raw["split"] == "test"].groupby("unique_id")}
    n_train = raw[raw["split"] == "train"].groupby("unique_id").size()
    for s, w in dm.test_items:
        np.testing.assert_array_equal(s.y[w.cutoff:w.end], test[s.unique_id])
        assert w.cutoff == n_train[s.unique_id]
    for s, w in dm.val_items:
        assert w.end == n_train[s.unique_id]  # validation ends where the official history ends


def test_m4_index_is_regular_from_a_fixed_origin() -> None:
    if not (M4_DIR / M4.observations_file).is_file():
        pytest.skip("M4 files are not available")
    bundle = M4(str(SHARED_DATA), frequency="hourly").load()
    sales = bundle.sales
    assert sales is not None and bundle.meta["calendar"] == "synthetic"
    first = sales.groupby("unique_id")["ds"].min()
    assert (first == pd.Timestamp("2000-01-01 00:00")).all()
    steps = sales.groupby("unique_id")["ds"].diff().dropna()
    assert (steps == pd.Timedelta(hours=1)).all()
    assert bundle.meta["series"]["H1"]["frequency_m"] == 24


def test_tourism_keeps_real_dates() -> None:
    if not (TOURISM_DIR / Tourism.observations_file).is_file():
        pytest.skip("tourism files are not available")
    sales = Tourism(str(SHARED_DATA), frequency="quarterly").load().sales
    assert sales is not None
    assert sales["ds"].min() == pd.Timestamp("1975-01-01") and sales["ds"].dt.month.isin([1, 4, 7, 10]).all()


def _competition_files(tmp_path: Path, test_rows: int) -> Path:
    folder = tmp_path / "m4-weekly-hourly"
    folder.mkdir(parents=True)
    obs = pd.DataFrame({"unique_id": ["W1"] * 5, "period": "Weekly", "t": [1, 2, 3, 4, 5],
                        "split": ["train"] * (5 - test_rows) + ["test"] * test_rows, "y": np.arange(5.0)})
    obs.to_parquet(folder / M4.observations_file)
    pd.DataFrame({"unique_id": ["W1"], "period": ["Weekly"], "n_train": [3], "horizon": [2],
                  "frequency_m": [1]}).to_csv(folder / M4.series_file, index=False)
    return tmp_path


def test_a_hold_out_of_the_wrong_length_is_named(tmp_path: Path) -> None:
    assert len(M4(str(_competition_files(tmp_path / "ok", 2))).load().sales) == 5
    with pytest.raises(DataValidationError, match=r"series W1 has 4 train row\(s\), the series table says n_train=3"):
        M4(str(_competition_files(tmp_path / "bad", 1))).load()
    with pytest.raises(ValueError, match="M4.frequency='daily'"):
        M4(str(tmp_path), frequency="daily")
