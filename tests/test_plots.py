"""Each comparison plot is written as a non-empty PNG from runs trained in the test."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from ecomlab.report.compare import load_runs
from ecomlab.report.plots import (
    at_k_families,
    csv_log,
    epoch_curves,
    plot_at_k,
    plot_bars,
    plot_curves,
    plot_forecasts,
    plot_units,
)
from test_compare import SERIES, SHOP, make_runs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    os.environ.setdefault("PL_DISABLE_FORK", "1")
    plan = [("popularity", SHOP, 0), ("bpr", SHOP, 0), ("bpr", SHOP, 1), ("seasonal_naive", SERIES, 0),
            ("arima", SERIES, 0)]
    return make_runs(tmp_path_factory.mktemp("plots"), plan)


def assert_png(paths: list[Path], names: list[str]) -> None:
    assert sorted(p.name for p in paths) == sorted(names)
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 2000, path


def test_bars_at_k_and_units(runs_dir: Path, tmp_path: Path) -> None:
    runs = load_runs([runs_dir])
    metrics = ["test/ndcg@10", "test/recall@10", "test/mase"]
    assert_png(plot_bars(runs, metrics, tmp_path), ["bars_retail_series.png", "bars_synthetic_shop.png"])
    assert at_k_families(runs, metrics) == {
        "test/ndcg": ["test/ndcg@5", "test/ndcg@10", "test/ndcg@20"],
        "test/recall": ["test/recall@5", "test/recall@10", "test/recall@20"]}
    assert_png(plot_at_k(runs, metrics, tmp_path), ["at_k_synthetic_shop.png"])
    assert_png(plot_units(runs, metrics, tmp_path), ["units_retail_series.png", "units_synthetic_shop.png"])


def test_training_curves_from_csv_logs(runs_dir: Path, tmp_path: Path) -> None:
    runs = load_runs([runs_dir])
    bpr = next(r for r in runs if r.model == "bpr")
    curves = epoch_curves(csv_log(bpr))
    assert list(curves.index) == [0, 1]  # trainer.max_epochs=2; the evaluation after fit is not an epoch
    assert curves["train/loss"].notna().all() and curves[bpr.monitor].notna().all()
    assert_png(plot_curves(runs, tmp_path), ["curves_retail_series.png", "curves_synthetic_shop.png"])


def test_forecast_plot_with_intervals(runs_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "runs"
    for name in ("seasonal_naive_s0", "arima_s0"):
        shutil.copytree(runs_dir / name, copy / name)
    plain = plot_forecasts(load_runs([copy]), tmp_path / "plain", series=["a10"])
    assert_png(plain, ["forecast_retail_series_a10.png"])
    path = copy / "arima_s0" / "forecasts_test.parquet"
    frame = pd.read_parquet(path)
    frame = frame.assign(lo_80=frame["y_hat"] * 0.9, hi_80=frame["y_hat"] * 1.1,
                         lo_95=frame["y_hat"] * 0.8, hi_95=frame["y_hat"] * 1.2)
    frame.to_parquet(path, index=False)
    banded = plot_forecasts(load_runs([copy]), tmp_path / "banded", series=["a10"])
    assert_png(banded, ["forecast_retail_series_a10.png"])
    assert banded[0].read_bytes() != plain[0].read_bytes()
    with pytest.raises(ValueError, match="series 'nope' is not among the test forecasts of any dataset"):
        plot_forecasts(load_runs([copy]), tmp_path / "none", series=["nope"])
