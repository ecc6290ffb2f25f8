"""Benchmark: ecomlab's AutoARIMA / ETS against statsforecast's own StatsForecast loop, on identical M3 data.

Both sides forecast the same histories (the M3 monthly panel loaded through ecomlab's data module,
``data=m3-monthly``: the last 18 months of each series are the test window) with the same interval levels
(80 and 95 %), the same number of worker processes and the same statsforecast model classes:

* **ecomlab**: the model config (``model=ets`` / ``model=auto_arima``, ``model.net.n_jobs=N``) built into its
  ForecastTask and evaluated by a Lightning ``Trainer.test`` -- the loop a user's run goes through (batches
  of ``data.eval_batch_size`` series, the short-series fallback chain, the metric bookkeeping).
* **statsforecast**: ``StatsForecast(models=[AutoETS(season_length=12)] | [AutoARIMA(season_length=12)],
  freq="MS", n_jobs=N).forecast(df=histories, h=18, level=[80, 95])``.

Seconds are wall-clock fit-and-forecast time (data loading excluded on both sides). sMAPE (0-200) and MASE
(season 12) are computed for both from the returned point forecasts by the same functions
(``ecomlab.metrics.forecasting``), averaged over series. The two sides alternate (``--order``) so that a
change in the machine's load does not favour one of them systematically.

    OMP_NUM_THREADS=1 nice -n 5 python scripts/bench_statsforecast.py --models ets auto_arima \\
        --arima-max-series 300 --n-jobs 2 --out experiments/perf/statsforecast
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytorch_lightning as pl
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig

from ecomlab.metrics.forecasting import mase, mase_scale, smape
from ecomlab.train import build_task
from ecomlab.utils import atomic_write_json, atomic_write_text, config_dir

LEVELS = (80, 95)
#: ecomlab model config name -> statsforecast model class name
PEERS = {"ets": "AutoETS", "auto_arima": "AutoARIMA"}


def compose_cfg(model: str, data_dir: str, overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=config_dir(), version_base=None):
        return compose("train", overrides=["data=m3-monthly", f"paths.data_dir={data_dir}", f"model={model}",
                                           "paths.cache_dir=null", *overrides])


def subset(ids: list[str], max_series: int | None, seed: int) -> list[str] | None:
    """A seeded random subset of ``ids`` (sorted), or ``None`` for all of them."""
    if max_series is None or max_series >= len(ids):
        return None
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(np.asarray(ids, dtype=object), size=max_series, replace=False).tolist())


def histories(datamodule: Any) -> tuple[list[str], list[np.ndarray], list[np.ndarray], np.ndarray]:
    """``(ids, history ds, history y, future [B, h])`` of the test windows, in the data module's order."""
    ids, ds, ys, futures = [], [], [], []
    for s, w in datamodule.test_items:
        ids.append(s.unique_id)
        ds.append(s.ds[: w.cutoff])
        ys.append(s.y[: w.cutoff])
        futures.append(s.y[w.future_slice])
    return ids, ds, ys, np.stack(futures)  # B x [h] -> [B, h]


def score(y_hat: np.ndarray, future: np.ndarray, ys: list[np.ndarray], season: int) -> dict[str, float]:
    """Mean sMAPE (0-200) and MASE over series, by ecomlab's metric functions."""
    scale = np.array([mase_scale(y, season) for y in ys])  # [B]
    return {"smape": float(np.nanmean(smape(future, y_hat))),
            "mase": float(np.nanmean(mase(future, y_hat, scale=scale)))}


def cpu_seconds() -> float:
    """CPU seconds of this process and of its children (live ones via psutil, finished ones via os.times).

    On a shared machine wall seconds also count other jobs' work; CPU seconds count only this work.
    """
    import psutil

    me = psutil.Process()
    t = os.times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in me.children(recursive=True):
        try:
            c = child.cpu_times()
            total += c.user + c.system
        except psutil.Error:  # exited between listing and reading
            pass
    return total


def run_ecomlab(cfg: DictConfig, datamodule: Any) -> tuple[float, np.ndarray, dict[str, int]]:
    task = build_task(cfg.model, datamodule)
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    t0 = time.perf_counter()
    task.prepare(datamodule.train_data())
    trainer.test(task, datamodule=datamodule, verbose=False)
    seconds = time.perf_counter() - t0
    fc = task.forecasts["test"]
    order = {uid: i for i, (s, _) in enumerate(datamodule.test_items) for uid in [s.unique_id]}
    fc = fc.assign(_row=fc["unique_id"].map(order)).sort_values(["_row", "ds"], kind="stable")
    y_hat = fc["y_hat"].to_numpy().reshape(len(order), -1)  # [B * h] -> [B, h]
    return seconds, y_hat, dict(task.net.fallbacks)


def run_statsforecast(peer: str, ids: list[str], ds: list[np.ndarray], ys: list[np.ndarray], horizon: int,
                      season: int, freq: str, n_jobs: int) -> tuple[float, np.ndarray]:
    import statsforecast.models as sfm
    from statsforecast import StatsForecast

    frame = pd.DataFrame({"unique_id": np.repeat(np.asarray(ids, dtype=object), [len(y) for y in ys]),
                          "ds": np.concatenate(ds), "y": np.concatenate(ys)})
    sf = StatsForecast(models=[getattr(sfm, peer)(season_length=season)], freq=freq, n_jobs=n_jobs)
    t0 = time.perf_counter()
    out = sf.forecast(df=frame, h=horizon, level=list(LEVELS))
    seconds = time.perf_counter() - t0
    out = out.reset_index() if "unique_id" not in out.columns else out
    pos = {uid: i for i, uid in enumerate(ids)}
    out = out.assign(_row=out["unique_id"].map(pos)).sort_values(["_row", "ds"], kind="stable")
    return seconds, out[peer].to_numpy().reshape(len(ids), horizon)  # [B * h] -> [B, h]


def bench_model(model: str, args: argparse.Namespace) -> dict[str, Any]:
    max_series = args.arima_max_series if model == "auto_arima" else args.max_series
    base = compose_cfg(model, args.data_dir, [])
    dm_all = instantiate(base.data)
    dm_all.setup("test")
    chosen = subset([s.unique_id for s in dm_all.series], max_series, args.seed)
    overrides = [f"model.net.n_jobs={args.n_jobs}"]
    if chosen is not None:
        overrides.append(f"+data.series=[{','.join(chosen)}]" if "series" not in base.data
                         else f"data.series=[{','.join(chosen)}]")
    cfg = compose_cfg(model, args.data_dir, overrides)
    t0 = time.perf_counter()
    datamodule = instantiate(cfg.data)
    datamodule.setup("test")
    load_seconds = time.perf_counter() - t0
    ids, ds, ys, future = histories(datamodule)
    season, horizon = int(datamodule.dims["season_length"]), future.shape[1]  # null in the config: inferred
    freq = str(cfg.data.preprocess.freq)

    result: dict[str, Any] = {"model": model, "peer": PEERS[model], "n_series": len(ids),
                              "subset_seed": args.seed if chosen is not None else None,
                              "subset": chosen, "load_seconds": round(load_seconds, 2)}
    for side in args.order.split(","):
        cpu0 = cpu_seconds()
        if side == "ecomlab":
            seconds, y_hat, fallbacks = run_ecomlab(cfg, datamodule)
            result["ecomlab"] = {"seconds": round(seconds, 2), **score(y_hat, future, ys, season),
                                 "fallbacks": fallbacks}
        else:
            seconds, y_hat = run_statsforecast(PEERS[model], ids, ds, ys, horizon, season, freq, args.n_jobs)
            result["statsforecast"] = {"seconds": round(seconds, 2), **score(y_hat, future, ys, season)}
        result[side]["cpu_seconds"] = round(cpu_seconds() - cpu0, 2)
        print(f"{model} {side}: {result[side]}", flush=True)
    e, s = result["ecomlab"], result["statsforecast"]
    result["ratio"] = {k: e[k] / s[k] for k in ("seconds", "cpu_seconds", "smape", "mase")}
    return result


def table(results: list[dict[str, Any]]) -> str:
    rows = ["| model (peer) | series | ecomlab wall s | statsforecast wall s | wall ratio | ecomlab CPU s "
            "| statsforecast CPU s | CPU ratio | ecomlab sMAPE | statsforecast sMAPE | sMAPE ratio | ecomlab MASE "
            "| statsforecast MASE | MASE ratio |", "|---" * 14 + "|"]
    for r in results:
        e, s, q = r["ecomlab"], r["statsforecast"], r["ratio"]
        rows.append(f"| {r['model']} ({r['peer']}) | {r['n_series']} | {e['seconds']:.1f} | {s['seconds']:.1f} | "
                    f"{q['seconds']:.3f} | {e['cpu_seconds']:.1f} | {s['cpu_seconds']:.1f} | {q['cpu_seconds']:.3f} | "
                    f"{e['smape']:.3f} | {s['smape']:.3f} | {q['smape']:.4f} | "
                    f"{e['mase']:.4f} | {s['mase']:.4f} | {q['mase']:.4f} |")
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["ets", "auto_arima"], choices=sorted(PEERS))
    parser.add_argument("--max-series", type=int, default=None,
                        help="seeded random subset of this many series (default: all 1,428)")
    parser.add_argument("--arima-max-series", type=int, default=None,
                        help="subset size for auto_arima only (default: --max-series)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the series subset")
    parser.add_argument("--n-jobs", type=int, default=2, help="worker processes, the same for both sides")
    parser.add_argument("--order", default="ecomlab,statsforecast",
                        help="which side runs first, e.g. statsforecast,ecomlab")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--out", default=None, help="write <out>.md and <out>.json")
    args = parser.parse_args()
    if args.arima_max_series is None:
        args.arima_max_series = args.max_series
    if sorted(args.order.split(",")) != ["ecomlab", "statsforecast"]:
        parser.error("--order must name ecomlab and statsforecast once each")
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")

    results: list[dict[str, Any]] = []
    for model in args.models:  # written after each model, so a long run stopped midway keeps what finished
        results.append(bench_model(model, args))
        write(args, results, done=len(results) == len(args.models))


def write(args: argparse.Namespace, results: list[dict[str, Any]], done: bool) -> None:
    import statsforecast

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    command = " ".join(["python", *sys.argv])
    machine = (f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}, statsforecast "
               f"{statsforecast.__version__}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
               f"1-minute load average when written {load:.2f}")
    status = "" if done else f"**Partial**: {len(results)} of {len(args.models)} models finished.\n\n"
    text = (f"# ecomlab vs statsforecast on M3 monthly (horizon 18, levels 80/95)\n\n"
            f"Command: `{command}`\n\nMachine: {machine}.\n\n{status}" + table(results) +
            "\nRatios are ecomlab / statsforecast (below 1: ecomlab faster or more accurate). "
            "Subsets (if any) are listed in the JSON file.\n")
    print(text, flush=True)
    if args.out:
        atomic_write_text(Path(f"{args.out}.md"), text)
        atomic_write_json(Path(f"{args.out}.json"), {"command": command, "machine": machine, "complete": done,
                                                     "results": results})


if __name__ == "__main__":
    main()
