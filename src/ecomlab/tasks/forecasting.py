"""LightningModule for every forecaster: backtest evaluation over rolling-origin windows.

Each evaluation batch holds (series, window) pairs; the network forecasts ``horizon`` steps from each
window's history. Metrics (MAE, RMSE, sMAPE on 0-200, MASE with the data's ``season_length``) are computed
per series and window, averaged over windows per series, then over series, and logged as ``test/mase`` etc.
The per-window values and the forecasts themselves are kept for run records and plots.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch

from ecomlab.metrics.forecasting import FORECAST_METRICS, aggregate, mase, mase_scale, per_series
from ecomlab.models.base import Forecaster

OptimizerFactory = Callable[..., torch.optim.Optimizer]


class ForecastTask(pl.LightningModule):
    #: which models and data modules fit together; checked before anything is loaded
    kind = "forecasting"

    def __init__(self, net: Forecaster, season_length: int, optimizer: OptimizerFactory | None = None,
                 monitor: str = "val/mase", mode: str = "min") -> None:
        super().__init__()
        if season_length < 1:
            raise ValueError(f"season_length={season_length}; expected an integer >= 1")
        if mode not in ("min", "max"):
            raise ValueError(f"mode={mode!r}; expected 'min' or 'max'")
        if net.trainable and optimizer is None:
            raise ValueError(f"{type(net).__name__} is trained by gradient steps: its model config needs an optimizer")
        self.net = net
        self.season_length = season_length
        self.optimizer_factory = optimizer
        self.monitor, self.mode = monitor, mode
        self.save_hyperparameters(ignore=["net", "optimizer"])
        self._rows: dict[str, list[dict[str, Any]]] = {"val": [], "test": []}
        self._forecasts: dict[str, list[pd.DataFrame]] = {"val": [], "test": []}
        #: per-series metric values of the last evaluation, by stage
        self.per_series: dict[str, pd.DataFrame] = {}
        #: long-format forecasts of the last evaluation, by stage (unique_id, window, ds, y, y_hat)
        self.forecasts: dict[str, pd.DataFrame] = {}

    @property
    def trainable(self) -> bool:
        return self.net.trainable

    def set_metric_namespace(self, namespace: str) -> None:
        if namespace:
            raise ValueError(f"forecasting metrics have no '{namespace}' namespace (only ranking has sampled "
                             "evaluation)")

    def prepare(self, data: Any) -> None:
        """Classical forecasters refit per window inside ``forecast``; nothing to do up front."""

    def _evaluate(self, batch: dict[str, Any], stage: str) -> None:
        future = np.asarray(batch["future"], dtype=np.float64)  # [B, h]
        y_hat = np.asarray(self.net.forecast(batch["history"], future.shape[1]), dtype=np.float64)  # [B, h]
        if y_hat.shape != future.shape:
            raise RuntimeError(f"{type(self.net).__name__}.forecast returned shape {y_hat.shape}, "
                               f"expected {future.shape}")
        for b, uid in enumerate(batch["unique_id"]):
            row: dict[str, Any] = {"unique_id": uid, "window": batch["window"][b]}
            for name, fn in FORECAST_METRICS.items():
                row[name] = float(fn(future[b], y_hat[b]))
            scale = mase_scale(batch["history"][b], self.season_length)
            row["mase"] = float(mase(future[b], y_hat[b], scale=scale))
            self._rows[stage].append(row)
            self._forecasts[stage].append(pd.DataFrame({
                "unique_id": uid, "window": batch["window"][b], "ds": batch["future_ds"][b],
                "y": future[b], "y_hat": y_hat[b]}))

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def _finish(self, stage: str) -> None:
        if not self._rows[stage]:
            return
        per_window = pd.DataFrame(self._rows[stage])
        self.per_series[stage] = per_series(per_window)
        self.forecasts[stage] = pd.concat(self._forecasts[stage], ignore_index=True)
        self.log_dict({f"{stage}/{name}": float(value) for name, value in aggregate(per_window).items()})
        self._rows[stage], self._forecasts[stage] = [], []

    def on_validation_epoch_end(self) -> None:
        self._finish("val")

    def on_test_epoch_end(self) -> None:
        self._finish("test")

    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            return None
        return self.optimizer_factory(params=self.net.parameters())
