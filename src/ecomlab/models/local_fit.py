"""The per-series work of :mod:`ecomlab.models.local`, in a module that imports no torch.

A process-pool worker unpickles :func:`forecast_one` by importing this module; keeping it free of torch (and
of ``ecomlab.models.base``) saves every fresh worker the seconds a torch import costs, which is what made a
parallel run slower than statsforecast's own forked pool (see ``experiments/perf/statsforecast.md``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from statsforecast.models import Naive

#: statsforecast model objects expose ``forecast(y, h, level=...) -> {"mean", "lo-80", "hi-80", ...}``
SFModel = Any


def map_chunk(fn: Callable[..., Any], items: Sequence[Any], *args: Any) -> list[Any]:
    """``[fn(item, *args) for item in items]``: one pool task (lives here so a worker imports no torch)."""
    return [fn(item, *args) for item in items]


def try_fit(model: SFModel, y: np.ndarray, horizon: int, levels: list[int]) -> dict[str, np.ndarray] | None:
    """One statsforecast fit; ``None`` when it raises or leaves a non-finite value."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # overflow / 0-division inside a candidate fit is routine: such a candidate loses on the criterion
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            raw = model.forecast(y, horizon, level=levels)
        # statsforecast raises bare Exception ("no model able to be fitted"), NotImplementedError ("tiny
        # datasets"), IndexError, ValueError or LinAlgError on degenerate input: each means "no usable fit"
        except Exception:
            return None
    out = {"y_hat": np.asarray(raw["mean"], dtype=np.float64)}  # [horizon]
    for level in levels:
        out[f"lo_{level}"] = np.asarray(raw[f"lo-{level}"], dtype=np.float64)  # [horizon]
        out[f"hi_{level}"] = np.asarray(raw[f"hi-{level}"], dtype=np.float64)  # [horizon]
    return out if all(np.all(np.isfinite(v)) for v in out.values()) else None


def forecast_one(y: np.ndarray, horizon: int, levels: list[int], seasonal: SFModel | None,
                 non_seasonal: SFModel, min_seasonal: int) -> tuple[dict[str, np.ndarray], str | None]:
    """Forecast one series through the fallback chain; returns ``(arrays, fallback kind or None)``."""
    if seasonal is not None and y.size >= min_seasonal:
        out = try_fit(seasonal, y, horizon, levels)
        if out is not None:
            return out, None
    out = try_fit(non_seasonal, y, horizon, levels)
    if out is not None:
        return out, "non_seasonal" if seasonal is not None else None
    naive = try_fit(Naive(), y, horizon, levels)
    if naive is None:  # a non-finite last value or a one-point history's undefined spread
        last = np.full(horizon, y[-1])
        naive = {"y_hat": last, **{f"{side}_{lv}": last for lv in levels for side in ("lo", "hi")}}
    return naive, "naive"
