"""Lightning data module for sales forecasting: a long-format panel and rolling-origin backtest windows.

Evaluation batches are dicts with ``unique_id`` (list[str]), ``window`` (list[int]), ``history``
(list of 1-D arrays: every observation before the window's cutoff), ``future`` (``[B, horizon]`` array)
and ``future_ds`` (list of date arrays). Classical forecasters refit on each history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytorch_lightning as pl
from torch.utils.data import DataLoader, Dataset

from ecomlab.data.bundle import BundleSource, DatasetBundle, DataValidationError
from ecomlab.data.cache import load_bundle
from ecomlab.data.preprocess import Preprocess
from ecomlab.data.splits import BacktestWindow, RollingOrigin


@dataclass(frozen=True)
class Series:
    unique_id: str
    ds: np.ndarray
    y: np.ndarray


class WindowDataset(Dataset):
    def __init__(self, items: list[tuple[Series, BacktestWindow]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitems__(self, indices: list[int]) -> dict[str, Any]:
        chosen = [self.items[i] for i in indices]
        return {
            "unique_id": [s.unique_id for s, _ in chosen],
            "window": [w.index for _, w in chosen],
            "history": [s.y[: w.cutoff] for s, w in chosen],
            "future": np.stack([s.y[w.cutoff: w.cutoff + w.horizon] for s, w in chosen]),  # [B, h]
            "future_ds": [s.ds[w.cutoff: w.cutoff + w.horizon] for s, w in chosen],
        }

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.__getitems__([index])


def _identity(batch: Any) -> Any:
    return batch


class ForecastDataModule(pl.LightningDataModule):
    """A sales panel from a source, the backtest protocol and the seasonality used by MASE.

    The bundle is loaded through :func:`ecomlab.data.cache.load_bundle`: ``preprocess`` is applied after the
    source and the result is cached under ``cache_dir`` (``None``: no cache) for sources with ``cache_key()``.
    """

    kind = "forecasting"
    #: forecasting has one evaluation protocol (the backtest), so its metric names carry no namespace
    metric_namespace = ""


    def __init__(self, source: BundleSource, backtest: RollingOrigin, season_length: int,
                 series: list[str] | None = None, batch_size: int = 64, num_workers: int = 0,
                 preprocess: Preprocess | None = None, cache_dir: str | None = None) -> None:
        super().__init__()
        if season_length < 1 or batch_size < 1:
            raise ValueError(f"season_length and batch_size must be >= 1; got {season_length}, {batch_size}")
        self.source, self.backtest = source, backtest
        self.season_length, self.batch_size, self.num_workers = season_length, batch_size, num_workers
        self.series_filter = list(series) if series else None
        self.preprocess, self.cache_dir = preprocess, cache_dir
        self.cache_info: dict[str, Any] = {}
        self.bundle: DatasetBundle | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.bundle is not None:
            return
        bundle, self.cache_info = load_bundle(self.source, self.preprocess, self.cache_dir)
        if bundle.sales is None:
            raise DataValidationError(
                f"data set '{bundle.name}' has no sales panel, so it cannot train or evaluate a forecaster; "
                "pick a forecasting data config (e.g. data=retail_series)")
        sales = bundle.sales
        if self.series_filter is not None:
            unknown = sorted(set(self.series_filter) - set(sales["unique_id"]))
            if unknown:
                raise DataValidationError(
                    f"data.series names unknown series {unknown[:5]}; the panel has "
                    f"{sorted(sales['unique_id'].unique())[:10]}")
            sales = sales[sales["unique_id"].isin(self.series_filter)]
        self.series = [Series(str(uid), g["ds"].to_numpy(), g["y"].to_numpy(np.float64))
                       for uid, g in sales.groupby("unique_id", sort=True)]
        self.val_items: list[tuple[Series, BacktestWindow]] = []
        self.test_items: list[tuple[Series, BacktestWindow]] = []
        for s in self.series:
            try:
                val, test = self.backtest.windows(len(s.y))
            except DataValidationError as err:
                raise DataValidationError(f"{bundle.name}: series '{s.unique_id}': {err}") from err
            self.val_items += [(s, w) for w in val]
            self.test_items += [(s, w) for w in test]
        self.bundle = bundle

    @property
    def dims(self) -> dict[str, int]:
        assert self.bundle is not None, "call setup() first"
        return {"n_series": len(self.series), "horizon": self.backtest.horizon,
                "season_length": self.season_length}

    def train_data(self) -> None:
        """Classical forecasters refit on every window's history, so there is nothing to fit up front."""
        return None

    def _loader(self, items: list[tuple[Series, BacktestWindow]]) -> DataLoader:
        return DataLoader(WindowDataset(items), batch_size=self.batch_size, shuffle=False,
                          num_workers=self.num_workers, collate_fn=_identity)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_items)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_items)

    def protocol(self) -> dict[str, Any]:
        assert self.bundle is not None, "call setup() first"
        return {
            "task": "forecasting",
            "backtest": self.backtest.describe(),
            "preprocess": self.preprocess.describe() if self.preprocess is not None else None,
            "data_cache": self.cache_info,
            "season_length": self.season_length,
            "n_series": len(self.series),
            "n_val_windows": len(self.val_items),
            "n_test_windows": len(self.test_items),
            "data_fingerprint": self.bundle.fingerprint(),
            "data": self.bundle.summary(),
            "data_warnings": self.bundle.meta.get("warnings", {}),
        }
