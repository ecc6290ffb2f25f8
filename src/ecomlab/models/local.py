"""Shared machinery of the per-series ("local") statsforecast models, AutoARIMA and ETS.

Each history is fitted on its own, so the panel is a map over series: serial for ``n_jobs == 1``, otherwise a
joblib process pool (``n_jobs=-1``: all cores). The statsforecast fits are plain numpy (no numba) and pickle
cheaply, so a process pool scales where threads would contend for the GIL.

Short-series policy (a series is never dropped; every fallback is counted)
--------------------------------------------------------------------------
A seasonal model with season length :math:`m > 1` needs at least two full seasons to estimate a seasonal
pattern, so each history of length :math:`T` is forecast by the first stage of this chain that succeeds:

1. the seasonal model, when :math:`T \\ge 2m`;
2. the same model family with :math:`m = 1` (non-seasonal), counted in ``fallbacks["non_seasonal"]``
   (reached when :math:`T < 2m` or the seasonal fit raises or gives non-finite values; with :math:`m = 1`
   this is the primary model and nothing is counted);
3. the naive forecast :math:`\\hat y_{T+h} = y_T` with its random-walk intervals (statsforecast ``Naive``),
   counted in ``fallbacks["naive"]`` (reached on tiny histories, e.g. ETS needs more points than it has
   parameters plus four, or when the fit raises or gives non-finite forecasts or interval bounds).

A stage "succeeds" when its point forecast and its interval bounds are finite. Intervals are always computed
while choosing the stage, so the point forecast of a series does not depend on whether intervals were asked
for. ``fallbacks`` counts series-windows cumulatively over every call since the model was built.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs

from ecomlab.models.base import Forecaster
from ecomlab.models.local_fit import SFModel, forecast_one, map_chunk

T = TypeVar("T")
R = TypeVar("R")

#: pool tasks per worker and call: few enough to amortise a task's round trip, enough to balance the load
CHUNKS_PER_WORKER = 4
#: at most this many series per task when a call holds many series, so the last tasks leave no worker idle long
SERIES_PER_CHUNK = 8


def check_histories(histories: Sequence[np.ndarray], horizon: int) -> list[np.ndarray]:
    """Histories as float64 1-D arrays; a clear error for an empty history or a horizon below 1.

    A missing value (NaN: a gap the data kept with ``data.preprocess.fill_gaps=nan``) takes the last observed
    value before it, and leading ones are dropped: the per-series models need complete histories, while the
    losses and metrics skip the missing points themselves.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    out = []
    for b, history in enumerate(histories):
        y = np.asarray(history, dtype=np.float64)
        if y.ndim == 1 and np.isnan(y).any():
            y = carry_forward(y)
        if y.ndim != 1 or y.size == 0:
            raise ValueError(f"history {b} must be a non-empty 1-D array with an observed value, got shape "
                             f"{np.shape(history)}")
        out.append(y)
    return out


def carry_forward(y: np.ndarray) -> np.ndarray:
    """``y`` with each NaN replaced by the last non-NaN value before it; leading NaNs are dropped."""
    observed = ~np.isnan(y)
    last = np.maximum.accumulate(np.where(observed, np.arange(y.size), -1))  # [T]: index of the last observation
    return y[last[last >= 0]]


def _fork_context() -> Any:
    """The ``fork`` start method where it is the platform's default (Linux before Python 3.14), else ``None``.

    Forked workers inherit the imported statsforecast; spawned (loky) workers import it again, which cost two
    workers 5.1 CPU seconds on the 2-core benchmark machine, the whole difference to statsforecast's own
    ``StatsForecast`` (which forks the same way) over the 1,428 M3 series (experiments/perf/statsforecast.md).
    The workers only run numpy/statsforecast code and never touch torch, so forking a process that holds
    torch is safe here.
    """
    if sys.platform.startswith("linux") and sys.version_info < (3, 14) \
            and mp.get_start_method(allow_none=True) in (None, "fork"):
        return mp.get_context("fork")
    return None


def map_series(fn: Callable[..., R], items: Sequence[T], n_jobs: int, *args: Any) -> list[R]:
    """``[fn(item, *args) for item in items]``, across a process pool when ``n_jobs != 1``.

    The pool gets ``CHUNKS_PER_WORKER`` tasks per worker, or more so that no task holds more than
    ``SERIES_PER_CHUNK`` items, each a strided slice of the items (so slow and fast series mix within a chunk),
    not one task per item: a task's round trip costs about as much CPU as a small ETS fit, which made a pool of
    two slower than one process. Small tasks matter for large calls: workers take tasks as they free up, so
    the last task bounds how long one worker waits for the other. Workers are forked where that is the platform's
    default (see :func:`_fork_context`), else started by joblib's loky.
    """
    if n_jobs == 1 or len(items) <= 1:
        return [fn(item, *args) for item in items]
    workers = effective_n_jobs(n_jobs)
    n_chunks = min(len(items), max(workers * CHUNKS_PER_WORKER, -(-len(items) // SERIES_PER_CHUNK)))
    parts = [items[k::n_chunks] for k in range(n_chunks)]
    context = _fork_context()
    if context is None:
        chunks = Parallel(n_jobs=workers)(delayed(map_chunk)(fn, part, *args) for part in parts)
    else:
        with ProcessPoolExecutor(min(workers, n_chunks), mp_context=context) as pool:
            chunks = list(pool.map(map_chunk, [fn] * n_chunks, parts, *[[a] * n_chunks for a in args]))
    out: list[R] = [None] * len(items)  # type: ignore[list-item]
    for k, chunk in enumerate(chunks):
        out[k::n_chunks] = chunk
    return out


class StatsForecaster(Forecaster):
    """A per-series statsforecast model with the short-series fallback chain and central intervals.

    Subclasses build the model for a season length in :meth:`build`; ``season_length`` comes from the data
    module (``dims``). The point forecast is the model's mean, ``forecast_intervals`` its Gaussian intervals.
    """

    def __init__(self, season_length: int = 1, n_jobs: int = 1) -> None:
        super().__init__()
        if season_length < 1:
            raise ValueError(f"season_length must be >= 1, got {season_length}")
        if n_jobs == 0:
            raise ValueError("n_jobs must be 1 (serial), > 1 (processes) or negative (-1: all cores), not 0")
        self.season_length = int(season_length)
        self.n_jobs = int(n_jobs)
        #: series-windows forecast by a simpler model than configured (see the module docstring)
        self.fallbacks: dict[str, int] = {"non_seasonal": 0, "naive": 0}

    @property
    def seasonal(self) -> bool:
        """Whether the configured model has a seasonal stage (a fixed season ``N`` has none)."""
        return self.season_length > 1

    def build(self, season_length: int) -> SFModel:
        raise NotImplementedError

    def _run(self, histories: Sequence[np.ndarray], horizon: int,
             levels: Sequence[int]) -> dict[str, np.ndarray]:
        series = check_histories(histories, horizon)
        wanted = sorted({int(v) for v in levels})
        if any(not 0 < v < 100 for v in wanted):
            raise ValueError(f"interval levels must lie strictly between 0 and 100, got {list(levels)}")
        m = self.season_length
        seasonal = self.build(m) if self.seasonal else None
        results = map_series(forecast_one, series, self.n_jobs, horizon, wanted or [80], seasonal,
                             self.build(1), 2 * m)
        for _, kind in results:
            if kind is not None:
                self.fallbacks[kind] += 1
        keys = ["y_hat"] + [f"{side}_{v}" for v in wanted for side in ("lo", "hi")]
        if not results:
            return {k: np.empty((0, horizon)) for k in keys}
        return {k: np.stack([r[k] for r, _ in results]) for k in keys}  # B x [horizon] -> [B, horizon]

    def forecast(self, histories: Sequence[np.ndarray], horizon: int) -> np.ndarray:  # -> [B, horizon]
        return self._run(histories, horizon, ())["y_hat"]

    def forecast_intervals(self, histories: Sequence[np.ndarray], horizon: int,
                           levels: Sequence[int]) -> dict[str, np.ndarray]:
        out = self._run(histories, horizon, levels)
        del out["y_hat"]
        return out

    def predict(self, batch: dict[str, Any], horizon: int, levels: Sequence[int] = ()) -> dict[str, np.ndarray]:
        """Point forecasts and intervals from one fit per series (the base class would fit twice)."""
        return self._run(batch["history"], horizon, levels)
