"""Panels as they arrive: gaps filled, kept missing or refused with every offending series counted, irregular
series dropped, covariates declared once (real CSV files through SalesFile, Preprocess and the data module)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import hydra
import numpy as np
import pandas as pd
import pytest
from omegaconf import DictConfig

from ecomlab.data.bundle import DataValidationError
from ecomlab.data.forecast_datamodule import ForecastDataModule
from ecomlab.data.preprocess import Preprocess
from ecomlab.data.sources.panels import SalesFile
from ecomlab.data.splits import RollingOrigin
from ecomlab.models.ets import Ets
from ecomlab.models.gbt_lags import GBTLags
from ecomlab.models.seasonal_naive import SeasonalNaive

WEEKS = 60


def weekly_panel(n_series: int = 8, gappy: tuple[int, ...] = (1, 3, 4), off_grid: tuple[int, ...] = ()) -> pd.DataFrame:
    """``n_series`` weekly series; those in ``gappy`` miss weeks 20 and 21, those in ``off_grid`` have week 30 on a
    Wednesday instead of its Monday."""
    rng = np.random.default_rng(0)
    parts = []
    for i in range(n_series):
        ds = pd.date_range("2021-01-04", periods=WEEKS, freq="W-MON")
        frame = pd.DataFrame({"unique_id": f"shop{i:02d}", "ds": ds, "y": 50.0 + i + rng.normal(0, 1, WEEKS),
                              "price": 9.0 + np.arange(WEEKS) / 100, "promo": (np.arange(WEEKS) % 5 == 0) * 1.0})
        if i in gappy:
            frame = frame.drop(index=[20, 21])
        if i in off_grid:
            frame.loc[30, "ds"] += pd.Timedelta(days=2)
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def write(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "panel.csv"
    frame.to_csv(path, index=False)
    return path


def module(path: Path, covariates: list[str] | None = None, **kwargs) -> ForecastDataModule:
    preprocess = Preprocess(**{k: kwargs.pop(k) for k in ("fill_gaps", "drop_irregular") if k in kwargs})
    dm = ForecastDataModule(SalesFile(str(path), covariates=covariates), RollingOrigin(horizon=4, n_windows=1),
                            season_length=4, preprocess=preprocess, input_size=8, **kwargs)
    dm.setup()
    return dm


def test_gaps_are_refused_with_every_offending_series_counted(tmp_path: Path) -> None:
    path = write(tmp_path, weekly_panel(n_series=12, gappy=(1, 3, 4, 5, 6, 7, 9)))
    with pytest.raises(DataValidationError) as err:
        module(path)
    message = str(err.value)
    assert "7 of 12 sales series are not regular at freq 'W-MON'" in message
    assert "'shop01', 'shop03', 'shop04', 'shop05', 'shop06' and 2 more" in message
    assert "first gap after 2021-05-17 (position 19); the next observation is 2021-06-07, expected 2021-05-24" in message
    assert "data.preprocess.fill_gaps=zero, ffill or nan" in message and "data.preprocess.drop_irregular=true" in message
    assert message.count("\n") == 0


@pytest.mark.parametrize(("how", "expected"), [("zero", [0.0, 0.0]), ("ffill", "previous"), ("nan", [np.nan] * 2)])
def test_fill_gaps_inserts_the_missing_weeks(tmp_path: Path, how: str, expected) -> None:
    frame = weekly_panel()
    dm = module(write(tmp_path, frame), covariates=["price"], fill_gaps=how)
    assert all(len(s.y) == WEEKS for s in dm.series)
    s1 = dm.series[1]
    previous = frame[frame["unique_id"] == "shop01"]["y"].to_numpy()[19]
    np.testing.assert_allclose(s1.y[20:22], [previous] * 2 if expected == "previous" else expected)
    # covariates of the inserted weeks carry the last observed week's values
    np.testing.assert_allclose(s1.covariates[20:22, 0], [9.19, 9.19], rtol=1e-6)
    steps = dm.bundle.meta["preprocess"]["steps"]
    assert steps["gaps_filled"] == {"series": 3, "periods": 6, "with": how}
    assert steps["gap_series"] == ["shop01", "shop03", "shop04"]


def test_missing_values_are_masked_for_networks_and_carried_for_local_models(tmp_path: Path) -> None:
    dm = module(write(tmp_path, weekly_panel(gappy=(1,))), fill_gaps="nan")
    tensors = dm.tensors
    row = tensors.y[1, dm.input_size:]
    mask = tensors.mask[1, dm.input_size:]
    assert (mask[20:22] == 0).all() and (row[20:22] == 0).all() and mask[:20].all() and mask[22:].all()
    # a training window whose target covers the gap masks those steps
    cut = dm.tensors.cut(np.array([1]), np.array([19]), with_target=True)
    np.testing.assert_array_equal(cut["outsample_mask"][0].numpy(), [1, 0, 0, 1])
    np.testing.assert_array_equal(cut["outsample_y"][0].numpy()[1:3], [0, 0])
    # evaluation batches keep the NaN in the raw arrays and say where they are
    batch = dm.val_dataloader().dataset.__getitems__(list(range(len(dm.val_items))))
    assert batch["future_mask"].shape == batch["future"].shape and batch["future_mask"].all()
    history = batch["history"][1]
    assert np.isnan(history[20:22]).all()
    # per-series models carry the last value over the gap, GBT skips missing targets: all finite
    assert np.isfinite(SeasonalNaive(season_length=4).forecast(batch["history"], 4)).all()
    assert np.isfinite(Ets(season_length=4).forecast(batch["history"], 4)).all()
    gbt = GBTLags(horizon=4, season_length=4, max_iter=10, calibration_windows=2)
    gbt.fit_panel(dm.train_data())
    out = gbt.predict(batch, 4, levels=[80])
    assert np.isfinite(out["y_hat"]).all() and np.isfinite(out["lo_80"]).all()


def test_drop_irregular_leaves_out_what_cannot_be_made_regular(tmp_path: Path) -> None:
    path = write(tmp_path, weekly_panel(gappy=(1, 3), off_grid=(5,)))
    dm = module(path, drop_irregular=True)
    assert [s.unique_id for s in dm.series] == ["shop00", "shop02", "shop04", "shop06", "shop07"]
    assert dm.bundle.meta["preprocess"]["steps"]["irregular_dropped"] == 3
    dm = module(path, drop_irregular=True, fill_gaps="zero")  # gaps filled, the off-grid series dropped
    assert len(dm.series) == 7 and dm.bundle.meta["preprocess"]["steps"]["irregular_series"] == ["shop05"]
    with pytest.raises(DataValidationError, match=r"1 of 8 sales series is not regular.*'shop05'.*"
                                                  r"fill_gaps=zero fills only missing periods.*off the 'W-MON' grid"):
        module(path, fill_gaps="zero")


def test_a_too_short_series_names_min_series_length(tmp_path: Path) -> None:
    frame = weekly_panel(gappy=())
    frame = frame[~((frame["unique_id"] == "shop02") & (frame["ds"] > "2021-02-01"))]
    with pytest.raises(DataValidationError, match=r"'shop02' \(5 observation\(s\)\) too short.*"
                                                  r"data\.preprocess\.min_series_length=16"):
        module(write(tmp_path, frame))


# --------------------------------------------------------------------------- covariates declared once


def sales_file(compose_cfg: Callable[..., DictConfig], path: Path, *overrides: str) -> ForecastDataModule:
    cfg = compose_cfg(["data=sales-file", f"data.source.path={path}", "data.backtest.horizon=4",
                       "data.season_length=4", "data.backtest.n_windows=1", *overrides])
    dm = hydra.utils.instantiate(cfg.data)
    dm.setup()
    return dm


def test_source_covariates_alone_are_used_as_past_only(compose_cfg, tmp_path: Path) -> None:
    path = write(tmp_path, weekly_panel(gappy=()))
    dm = sales_file(compose_cfg, path, "data.source.covariates=[price,promo]")
    assert dm.hist_covariates == ["price", "promo"] and dm.futr_covariates == []
    assert dm.dims["n_hist"] == 2
    dm = sales_file(compose_cfg, path, "data.source.covariates=[price,promo]", "data.futr_covariates=[promo]")
    assert dm.futr_covariates == ["promo"] and dm.hist_covariates == ["price"]
    dm = sales_file(compose_cfg, path, "data.source.covariates=[price,promo]", "data.hist_covariates=[price]")
    assert dm.futr_covariates == ["promo"] and dm.hist_covariates == ["price"]


def test_a_classified_covariate_is_read_without_naming_it_twice(compose_cfg, tmp_path: Path) -> None:
    path = write(tmp_path, weekly_panel(gappy=()))
    dm = sales_file(compose_cfg, path, "data.futr_covariates=[promo]")
    assert dm.futr_covariates == ["promo"] and dm.dims["n_futr"] == 1
    np.testing.assert_array_equal(dm.series[0].covariates[:6, 0], [1, 0, 0, 0, 0, 1])
    with pytest.raises(DataValidationError, match=r"missing column\(s\) \['discount'\].*fix data\.futr_covariates"):
        sales_file(compose_cfg, path, "data.futr_covariates=[discount]")
    with pytest.raises(DataValidationError, match=r"missing column\(s\) \['discount'\].*fix data\.source\.covariates"):
        sales_file(compose_cfg, path, "data.source.covariates=[discount]")
