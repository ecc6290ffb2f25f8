"""Forecaster bundles: local (per-series) models export their configuration, and forecast any history.

Seasonal naive, naive, Naive2, ARIMA, AutoARIMA and ETS refit on every history they are given (Hyndman &
Athanasopoulos, *FPP*, ch. 5 and 8-9), so a trained run holds no fitted state: the bundle is the resolved
network config plus its sizes (``model/forecaster.json``), the interval levels of the run and the data's
frequency. Served forecasts are :math:`\\hat y_{T+1..T+h} = f_{\\theta(y_{1..T})}(h)` with the model refitted
on the supplied history ``y_{1..T}`` of each series, exactly as in the backtest.

:class:`BundleForecaster` is the loaded form: ``forecast(history_df, horizon, covariates=None)`` takes a
long ``unique_id, ds, y`` frame and returns a long frame with ``y_hat``, the ``lo_<level>`` / ``hi_<level>``
interval bounds and the same bounds as quantile columns ``q<p>`` (``lo_80`` = ``q0.1``).
Global models with fitted state (GBT on lags, the LSTM) are not exported yet: they are refused with a message.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from ecomlab.metrics.probabilistic import quantiles_from_intervals
from ecomlab.models.base import Forecaster
from ecomlab.utils import instantiate_with_dims

SPEC = "model/forecaster.json"


def export_forecaster(task: Any, datamodule: Any, fmt: str, root: Path, net_config: dict[str, Any]) -> dict[str, Any]:
    """Write ``model/forecaster.json`` for a local forecaster; returns the manifest entries."""
    net = task.net
    if net.trainable or type(net).fit_panel is not Forecaster.fit_panel:
        raise ValueError(f"{type(net).__name__} is a global forecaster with fitted state; only the per-series "
                         "models (seasonal_naive, naive, naive2, arima, auto_arima, ets) can be exported so far")
    ds = pd.DatetimeIndex(datamodule.series[0].ds)
    freq = pd.infer_freq(ds) if len(ds) >= 3 else None
    spec = {"config": net_config, "dims": dict(datamodule.dims), "levels": list(task.levels), "freq": freq,
            "horizon": int(datamodule.dims["horizon"])}
    (root / "model").mkdir(parents=True, exist_ok=True)
    (root / SPEC).write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    notes = [] if fmt == "native" else [f"format={fmt} was asked for; per-series models refit on each history "
                                        "and are exported as their configuration (JSON)"]
    return {"format": "native", "forecaster": {"_target_": "ecomlab.export.forecasters.BundleForecaster",
                                               "path": SPEC},
            "horizon": spec["horizon"], "levels": spec["levels"], "freq": freq, "notes": notes}


class BundleForecaster:
    """A local forecaster rebuilt from its bundle spec; see the module docstring."""

    def __init__(self, root: Path, path: str) -> None:
        spec = json.loads((Path(root) / path).read_text(encoding="utf-8"))
        target = str(spec["config"].get("_target_", ""))
        if not target.startswith("ecomlab.models."):
            raise ValueError(f"{Path(root) / path}: the forecaster must be an ecomlab model, got {target!r}")
        self.net: Forecaster = instantiate_with_dims(OmegaConf.create(spec["config"]), spec["dims"])
        self.levels: list[int] = [int(v) for v in spec["levels"]]
        self.freq: str | None = spec["freq"]
        self.horizon = int(spec["horizon"])

    def forecast(self, history_df: pd.DataFrame, horizon: int | None = None, covariates: pd.DataFrame | None = None,
                 levels: Sequence[int] | None = None) -> pd.DataFrame:
        """Forecasts for every series of ``history_df`` (``unique_id, ds, y``), ``horizon`` steps (default: the
        run's) past each series' last date, as a long frame ``unique_id, ds, y_hat[, lo_80, hi_80, ..., q0.1,
        ...]``."""
        if covariates is not None:
            raise ValueError(f"{type(self.net).__name__} uses no covariates; call forecast without them")
        horizon = self.horizon if horizon is None else int(horizon)
        if horizon < 1:
            raise ValueError(f"horizon={horizon}; expected an integer >= 1")
        levels = self.levels if levels is None else [int(v) for v in levels]
        frame = _check_history(history_df)
        groups = [(uid, part) for uid, part in frame.groupby("unique_id", sort=False)]
        histories = [part["y"].to_numpy(np.float64) for _, part in groups]
        prediction = self.net.predict({"history": histories}, horizon, levels)  # {"y_hat": [S, h], ...}
        quantiles = quantiles_from_intervals(prediction)
        out = []
        for s, (uid, part) in enumerate(groups):
            columns = {key: value[s] for key, value in prediction.items()}
            columns.update({f"q{q:g}": value[s] for q, value in quantiles.items() if q != 0.5})
            out.append(pd.DataFrame({"unique_id": uid, "ds": self._future(part["ds"], horizon), **columns}))
        return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=["unique_id", "ds", "y_hat"])

    def _future(self, ds: pd.Series, horizon: int) -> pd.DatetimeIndex:
        freq = self.freq or (pd.infer_freq(pd.DatetimeIndex(ds)) if len(ds) >= 3 else None)
        if freq is None:
            raise ValueError("cannot tell the series' frequency: the bundle records none and the history has "
                             "irregular or too few dates")
        return pd.date_range(ds.iloc[-1], periods=horizon + 1, freq=freq)[1:]


def _check_history(history_df: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in ("unique_id", "ds", "y") if c not in history_df.columns]
    if missing:
        raise ValueError(f"history: missing column(s) {missing}; expected a long frame unique_id, ds, y")
    frame = history_df[["unique_id", "ds", "y"]].copy()
    try:
        frame["ds"] = pd.to_datetime(frame["ds"])
    except (ValueError, TypeError) as err:
        raise ValueError(f"history: column 'ds' has unparseable dates ({err})") from err
    y = pd.to_numeric(frame["y"], errors="coerce")
    bad = np.flatnonzero(~np.isfinite(y.to_numpy(np.float64)))
    if len(bad):
        raise ValueError(f"history: column 'y' is missing or not a finite number at rows {bad[:5].tolist()}")
    frame["y"] = y
    if frame.duplicated(["unique_id", "ds"]).any():
        raise ValueError("history: duplicate (unique_id, ds) rows")
    if frame.empty:
        raise ValueError("history: no rows")
    return frame.sort_values(["unique_id", "ds"], kind="stable")
