"""Conformance of every classical forecaster, each built from its model config the way ``ecomlab-train`` does.

On a tiny panel of series of different lengths (one too short for any seasonal model): forecasts are
``[B, h]`` and finite, depend only on the history passed in (no look-ahead, no state carried between calls),
and the short series is forecast by the documented fallback and counted, never dropped.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecomlab.train import train
from ecomlab.utils import instantiate_with_dims

SEASON, HORIZON = 4, 6
PATTERN = np.array([0.8, 1.3, 1.1, 0.8])  # multiplicative seasonal indices, mean 1
#: model config -> the fallback count the 2-point series adds (None: the model has no fallback counter)
SHORT_FALLBACK = {
    "seasonal_naive": None,
    "naive": None,
    "arima": {"naive": 1},
    "auto_arima": {"non_seasonal": 1, "naive": 0},
    "ets": {"non_seasonal": 0, "naive": 1},
    "naive2": {"short": 1, "non_positive": 0},
    "croston": {"naive": 1},
    "croston_sba": {"naive": 1},
    "tsb": {"naive": 1},
    "adida": {"naive": 1},
}
#: models with central intervals (statsforecast's own or conformal)
WITH_INTERVALS = {"auto_arima", "ets", "croston", "croston_sba", "tsb", "adida"}
CLASSICAL = sorted(SHORT_FALLBACK)


def _panel(seed: int = 0) -> list[np.ndarray]:
    """Two trending multiplicative-seasonal series (26 and 41 points) and a 2-point series."""
    rng = np.random.default_rng(seed)
    series = []
    for length in (26, 41):
        t = np.arange(length)
        series.append((50.0 + 0.5 * t) * PATTERN[t % SEASON] * rng.lognormal(0.0, 0.02, size=length))
    series.append(np.array([7.0, 9.0]))
    return series


def _build(compose_cfg, model: str):
    cfg = compose_cfg([f"model={model}", "data=retail_series"])
    dims = {"n_series": 3, "horizon": HORIZON, "season_length": SEASON}
    return instantiate_with_dims(cfg.model.net, dims)


@pytest.mark.parametrize("model", CLASSICAL)
def test_classical_forecaster_conformance(compose_cfg, model: str) -> None:
    net = _build(compose_cfg, model)
    histories = _panel()
    out = net.forecast(histories, HORIZON)
    assert out.shape == (len(histories), HORIZON)
    assert np.all(np.isfinite(out))

    # the short series is forecast (by a simpler model of the family) and counted
    expected = SHORT_FALLBACK[model]
    if expected is None:
        np.testing.assert_array_equal(out[2], 9.0)  # naive / seasonal naive shorter than a season: last value
    else:
        assert net.fallbacks == expected

    # no look-ahead: the forecast is a function of the history alone. Forecasting other data in between
    # (state carried over?) and then the same histories cut from series whose future was changed gives
    # the same numbers.
    net.forecast([h[::-1] * 3.0 for h in histories], HORIZON)
    rng = np.random.default_rng(1)
    full = [np.concatenate([h, rng.normal(1e3, 1e2, size=HORIZON)]) for h in histories]
    again = net.forecast([f[: len(h)] for f, h in zip(full, histories, strict=True)], HORIZON)
    np.testing.assert_allclose(again, out, rtol=1e-9, atol=1e-9)
    # the forecast of one series does not depend on which other series share its batch
    alone = net.forecast([histories[1]], HORIZON)
    np.testing.assert_allclose(alone[0], out[1], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("model", CLASSICAL)
def test_intervals_nested_around_the_point_forecast(compose_cfg, model: str) -> None:
    net = _build(compose_cfg, model)
    histories = _panel()[:2]
    point = net.forecast(histories, HORIZON)
    bands = net.forecast_intervals(histories, HORIZON, [95, 80])
    if model not in WITH_INTERVALS:
        assert bands == {}
        return
    assert sorted(bands) == ["hi_80", "hi_95", "lo_80", "lo_95"]
    for values in bands.values():
        assert values.shape == (2, HORIZON) and np.all(np.isfinite(values))
    tol = 1e-9
    assert np.all(bands["lo_95"] <= bands["lo_80"] + tol) and np.all(bands["lo_80"] <= point + tol)
    assert np.all(point <= bands["hi_80"] + tol) and np.all(bands["hi_80"] <= bands["hi_95"] + tol)
    assert np.all(bands["hi_95"] - bands["lo_95"] > 0)
    # predict fits once and gives the same point forecast and bands
    pred = net.predict({"history": histories}, HORIZON, levels=[80, 95])
    np.testing.assert_allclose(pred["y_hat"], point)
    for key, values in bands.items():
        np.testing.assert_allclose(pred[key], values)
    with pytest.raises(ValueError, match="strictly between 0 and 100"):
        net.forecast_intervals(histories, HORIZON, [100])


@pytest.mark.parametrize("model", ["auto_arima", "ets", "naive2", "naive"])
def test_model_runs_through_the_training_entry_point(compose_cfg, model: str) -> None:
    cfg = compose_cfg([f"model={model}", "data=retail_series", "data.source.series=[souvenirs]",
                       "data.backtest.n_windows=1", "eval.validate=true"])
    record = train(cfg)
    metrics = record["metrics"]
    for key in ("test/mase", "test/smape", "val/mase"):
        assert np.isfinite(metrics[key]) and metrics[key] >= 0.0, (key, metrics)
    forecasts = pd.read_parquet(Path(cfg.paths.output_dir) / "forecasts_test.parquet")
    assert len(forecasts) == 12 and np.all(np.isfinite(forecasts["y_hat"]))


def test_fallbacks_reach_the_run_record(compose_cfg) -> None:
    """The model's fallback counts are written to metrics.json (souvenirs is long and positive: no fallback;
    the counting itself is checked on short series above)."""
    cfg = compose_cfg(["model=naive2", "data=retail_series", "data.source.series=[souvenirs]",
                       "data.backtest.n_windows=1", "data.preprocess.min_series_length=0"])
    record = train(cfg)
    on_disk = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert on_disk["fallbacks"] == record["fallbacks"]
    assert record["fallbacks"] == {"short": 0, "non_positive": 0}
