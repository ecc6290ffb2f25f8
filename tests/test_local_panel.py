"""Local (per-series) models at panel scale: no refit on validation windows nothing selects on, and a process
pool over series by default (real runs through the entry point on the built-in retail series)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from omegaconf import DictConfig

from ecomlab.train import train

SERIES = ["data=retail_series", "data.source.series=[souvenirs,a10]", "data.backtest.n_windows=1"]


@pytest.mark.parametrize("model", ["ets", "seasonal_naive", "gbt"])
def test_classical_models_skip_validation_unless_asked(compose_cfg: Callable[..., DictConfig], model: str) -> None:
    extra = ["model.net.max_iter=10"] if model == "gbt" else []
    record = train(compose_cfg([f"model={model}", *SERIES, *extra]))
    assert not any(k.startswith("val/") for k in record["metrics"]) and record["metrics"]["test/mase"] > 0
    validation = record["protocol"]["validation"]
    assert validation["evaluated"] is False and "eval.validate=true" in validation["why"]
    asked = train(compose_cfg([f"model={model}", *SERIES, *extra, "eval.validate=true"]))
    assert asked["metrics"]["val/mase"] > 0 and asked["protocol"]["validation"]["evaluated"] is True
    # skipping validation changes no test number
    assert asked["metrics"]["test/mase"] == pytest.approx(record["metrics"]["test/mase"], rel=1e-12)


def test_a_search_over_a_classical_model_still_gets_its_validation_metric(compose_cfg) -> None:
    record = train(compose_cfg(["model=seasonal_naive", *SERIES, "+optimized_metric=val/mase"]))
    assert np.isfinite(record["metrics"]["val/mase"]) and record["protocol"]["validation"]["evaluated"] is True


@pytest.mark.parametrize("model", ["ets", "auto_arima", "arima"])
def test_local_models_run_in_a_process_pool_by_default(compose_cfg, model: str) -> None:
    cfg = compose_cfg([f"model={model}", *SERIES])
    assert cfg.model.net.n_jobs == -1
