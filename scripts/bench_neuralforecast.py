"""NeuralForecast's LSTM, AutoLSTM and NHITS on a forecast-suite set, scored exactly like ecomlab's models.

    pip install -e .[bench-forecast]     # benchmark-only peers, never imported by ecomlab itself
    python scripts/bench_neuralforecast.py --suite experiments/forecast_suite/suite.yaml --set aus_retail \
        --model lstm --seed 0 --out logs/forecast_suite

The panel, its windows and the metrics are ecomlab's: the set's data module (the suite's data config and
protocol keys) gives the series; NeuralForecast fits on each series' observations before its first test cutoff
with the validation windows held out (``val_size`` = validation windows x step, the same training part and
validation windows ecomlab's networks get), then forecasts every test window from the history before its
cutoff without refitting, as ecomlab's global models do. The forecasts go through ``ForecastTask``'s own test
loop (a precomputed-forecast network), so MASE, sMAPE, RMSSE, MSQL, scaled CRPS, coverage and the non-negative
policy are computed by the same code as for every other row. The record is written in the suite's layout
(``<out>/<set>/nf_<model>/seed<s>/metrics.json`` + ``per_series_test.parquet``), so ``forecast_suite.py
report`` and ``ecomlab-compare --baseline ets`` read it like any run.

Settings, NeuralForecast's defaults except where ecomlab's must match for a like-for-like row: every model
gets the data module's ``input_size`` and horizon, short histories left-padded and masked
(``start_padding_enabled``, as ecomlab's networks do), an ``MQLoss`` with the 80/95% levels (median point
forecast, as ecomlab's quantile head), and the run's seed. LSTM: ecomlab's sizes (2 layers of 64, decoder 128),
budget (2,000 steps, batches of 64 windows) and validation every 100 steps; NeuralForecast's learning rate
(1e-3), robust scaler, no early stopping. AutoLSTM: NeuralForecast's default search space with the Optuna
backend (TPE seeded by the run's seed), ``--num-samples`` trials (default 8, as ecomlab's auto_lstm). NHITS: its
defaults (1,000 steps, windows of 1,024). Covariates are not passed (the LSTM rows of online retail use them).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate

from ecomlab.models.base import Forecaster
from ecomlab.tasks.forecasting import ForecastTask
from ecomlab.utils import atomic_write_json, atomic_write_parquet, atomic_write_text, config_dir, git_commit

LEVELS = [80, 95]


class Precomputed(Forecaster):
    """Hands ForecastTask's test loop forecasts made elsewhere, looked up by (unique_id, window)."""

    def __init__(self, forecasts: dict[tuple[str, int], dict[str, np.ndarray]]) -> None:
        super().__init__()
        self.table = forecasts

    def predict(self, batch: dict[str, Any], horizon: int, levels: Sequence[int] = ()) -> dict[str, np.ndarray]:
        rows = [self.table[(uid, int(w))] for uid, w in zip(batch["unique_id"], batch["window"], strict=True)]
        return {key: np.stack([r[key] for r in rows]) for key in rows[0]}  # [B, h] per key

    def forecast(self, histories: Sequence[np.ndarray], horizon: int) -> np.ndarray:
        raise NotImplementedError


def datamodule(overrides: list[str]) -> tuple[Any, str]:
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, "model=seasonal_naive"], return_hydra_config=True)
    HydraConfig().set_config(cfg)
    dm = instantiate(cfg.data)
    dm.setup("fit")
    return dm, str(cfg.hydra.runtime.choices["data"])


def build_model(name: str, h: int, input_size: int, seed: int, num_samples: int) -> Any:
    from neuralforecast.auto import AutoLSTM
    from neuralforecast.losses.pytorch import MQLoss
    from neuralforecast.models import LSTM, NHITS

    # start_padding_enabled: histories shorter than the input window are left-padded and masked, as ecomlab's
    # networks do (without it NeuralForecast refuses panels whose shortest series is under input_size + val_size)
    quiet = {"enable_progress_bar": False, "logger": False, "enable_model_summary": False,
             "start_padding_enabled": True}
    loss = MQLoss(level=LEVELS)
    if name == "lstm":
        return LSTM(h=h, input_size=input_size, encoder_n_layers=2, encoder_hidden_size=64, decoder_hidden_size=128,
                    loss=loss, max_steps=2000, val_check_steps=100, windows_batch_size=64, random_seed=seed, **quiet)
    if name == "nhits":
        return NHITS(h=h, input_size=input_size, loss=loss, random_seed=seed, **quiet)
    if name == "auto_lstm":
        import optuna

        default = AutoLSTM.get_default_config(h=h, backend="optuna")

        def config(trial: optuna.Trial) -> dict[str, Any]:
            return {**default(trial), **quiet, "random_seed": seed}

        return AutoLSTM(h=h, loss=loss, config=config, backend="optuna", num_samples=num_samples,
                        search_alg=optuna.samplers.TPESampler(seed=seed))
    raise ValueError(f"--model {name!r}; expected lstm, auto_lstm or nhits")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", type=Path, required=True)
    parser.add_argument("--set", required=True)
    parser.add_argument("--model", required=True, choices=["lstm", "auto_lstm", "nhits"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-samples", type=int, default=8, help="AutoLSTM trials")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    suite = yaml.safe_load(args.suite.read_text(encoding="utf-8"))
    run_dir = args.out / args.set / f"nf_{args.model}" / f"seed{args.seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["scripts/bench_neuralforecast.py", *(argv if argv is not None else sys.argv[1:])])
    atomic_write_text(run_dir / "command.txt", command + "\n")

    t0 = time.perf_counter()
    dm, data_name = datamodule([*suite["sets"][args.set], f"paths.data_dir={args.data_dir or suite['data_dir']}"])
    h, bt = dm.backtest.horizon, dm.backtest
    freq = pd.infer_freq(pd.DatetimeIndex(max(dm.series, key=lambda s: len(s.y)).ds[-10:]))
    first_test = {s.unique_id: w.cutoff for s, w in dm.test_items if w.index == 0}
    fit_df = pd.concat([pd.DataFrame({"unique_id": s.unique_id, "ds": s.ds[: first_test[s.unique_id]],
                                      "y": s.y[: first_test[s.unique_id]]}) for s in dm.series], ignore_index=True)
    val_size = bt.val_windows * bt.step
    data_seconds = time.perf_counter() - t0

    from neuralforecast import NeuralForecast

    t0 = time.perf_counter()
    pl.seed_everything(args.seed)
    model = build_model(args.model, h, dm.input_size, args.seed, args.num_samples)
    nf = NeuralForecast(models=[model], freq=freq)
    nf.fit(df=fit_df, val_size=val_size)
    fit_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    alias = str(model)
    table: dict[tuple[str, int], dict[str, np.ndarray]] = {}
    for window in range(bt.n_windows):
        cut = {s.unique_id: (s, w.cutoff) for s, w in dm.test_items if w.index == window}
        context = pd.concat([pd.DataFrame({"unique_id": uid, "ds": s.ds[:c], "y": s.y[:c]})
                             for uid, (s, c) in cut.items()], ignore_index=True)
        out = nf.predict(df=context).sort_values(["unique_id", "ds"])
        for uid, part in out.groupby("unique_id", sort=False):
            entry = {"y_hat": part[f"{alias}-median"].to_numpy(np.float64)}
            for level in LEVELS:
                entry[f"lo_{level}"] = part[f"{alias}-lo-{level}"].to_numpy(np.float64)
                entry[f"hi_{level}"] = part[f"{alias}-hi-{level}"].to_numpy(np.float64)
            table[(str(uid), window)] = entry
    task = ForecastTask(Precomputed(table), season_length=dm.season_length, levels=LEVELS)
    task.prepare(dm.train_data())
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    (metrics,) = trainer.test(task, datamodule=dm, verbose=False)
    eval_seconds = time.perf_counter() - t0

    atomic_write_parquet(run_dir / "per_series_test.parquet", task.per_series["test"])
    record = {"model": f"nf_{args.model}", "dataset": data_name, "seed": args.seed,
              "metrics": {k: float(v) for k, v in metrics.items()}, "monitor": "val/mase",
              "protocol": dm.protocol(), "data_seconds": data_seconds, "fit_seconds": fit_seconds,
              "eval_seconds": eval_seconds, "git_commit": git_commit(), "command": command,
              "peer": {"library": "neuralforecast", "version": _version("neuralforecast"), "alias": alias,
                       "freq": freq, "val_size": val_size, "omp_threads": os.environ.get("OMP_NUM_THREADS")},
              "config": {}}
    atomic_write_json(run_dir / "metrics.json", record)
    print(json.dumps({"run_dir": str(run_dir), **{k: round(v, 4) for k, v in record["metrics"].items()},
                      "fit_seconds": round(fit_seconds, 1)}))


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


if __name__ == "__main__":
    main()
