"""The forecasting development suite (issue 22): every model with its defaults on every set, one command.

    python scripts/forecast_suite.py run --suite experiments/forecast_suite/suite.yaml --out logs/forecast_suite
    python scripts/forecast_suite.py run ... --sets m3_monthly --models lstm --seeds 0     # a part of it
    python scripts/forecast_suite.py run ... --models lstm --name lstm_robust --extra model.net.scaler=robust
    python scripts/forecast_suite.py report logs/forecast_suite --suite experiments/forecast_suite/suite.yaml \
        --out experiments/forecast_suite

``run`` trains and tests each (set, model, seed) cell with ``ecomlab-train`` (``python -m ecomlab.train``, so
``PYTHONPATH`` picks the code) into ``<out>/<set>/<name>/seed<s>``, one after another with one torch thread,
and keeps the command beside the run (``command.txt``, log in ``train.log.txt``). A cell whose directory already
holds a ``metrics.json`` is kept. ``--name``/``--extra`` run a variant of one model (an ablation) under its own
name, with the same overrides on every set.

``report`` reads every run record under the given directories (NeuralForecast peers written by
``scripts/bench_neuralforecast.py`` in the same layout included; ``--published runs.csv --published-models ...``
adds the rows of runs whose records are not at hand from an earlier report, named by their commit and command)
and writes ``runs.csv`` (one row per run, with its commit and command) and ``summary.md``: per set, each model's mean and standard deviation over seeds
of MASE, sMAPE, scaled CRPS, MSQL, RMSSE, 80/95% coverage and wall time (data + fit + evaluation seconds), its
rank by MASE and its MASE relative to seasonal naive; across sets, each model's geometric mean of relative
MASE; and per set the paired tests against ETS on per-series test values (``ecomlab-compare --baseline``,
written under ``compare/<set>/``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ecomlab.cli import user_errors_exit_2
from ecomlab.utils import atomic_write_text

METRICS = ["mase", "smape", "scaled_crps", "msql", "rmsse", "coverage_80", "coverage_95"]


def load_suite(path: Path) -> dict[str, Any]:
    suite = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key in ("sets", "models"):
        if not isinstance(suite.get(key), dict) or not suite[key]:
            raise ValueError(f"{path}: '{key}' must map names to entries")
    return suite


def _pick(names: Sequence[str] | None, available: dict[str, Any], what: str) -> list[str]:
    unknown = sorted(set(names or ()) - set(available))
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; the suite has {sorted(available)}")
    return list(names) if names else list(available)


def run(args: argparse.Namespace) -> None:
    suite = load_suite(args.suite)
    sets = _pick(args.sets, suite["sets"], "set(s)")
    models = _pick(args.models, suite["models"], "model(s)")
    if args.name and len(models) != 1:
        raise ValueError("--name names a variant of one model: give exactly one --models")
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    for set_name in sets:
        for model in models:
            entry = suite["models"][model]
            seeds = args.seeds if args.seeds is not None else entry.get("seeds", [0])
            for seed in seeds:
                run_dir = args.out / set_name / (args.name or model) / f"seed{seed}"
                if (run_dir / "metrics.json").exists():
                    print(f"kept   {run_dir} (delete it to run again)", flush=True)
                    continue
                command = [sys.executable, "-m", "ecomlab.train", *suite["sets"][set_name], *entry["overrides"],
                           *args.extra, f"seed={seed}", f"paths.data_dir={args.data_dir or suite['data_dir']}",
                           f"hydra.run.dir={run_dir}", "callbacks.rich_progress_bar=null", "eval.print_table=false"]
                run_dir.mkdir(parents=True, exist_ok=True)
                atomic_write_text(run_dir / "command.txt", shlex.join(command[2:]) + "\n")
                t0 = time.perf_counter()
                with open(run_dir / "train.log.txt", "w", encoding="utf-8") as log:
                    done = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
                status = "ok" if done.returncode == 0 else f"FAILED (exit {done.returncode}, see train.log.txt)"
                print(f"{status:6} {run_dir} ({time.perf_counter() - t0:.0f} s)", flush=True)


def collect(roots: Sequence[Path]) -> pd.DataFrame:
    """One row per run record ``<root>/<set>/<name>/seed<s>/metrics.json``."""
    rows = []
    for root in roots:
        for path in sorted(root.glob("*/*/seed*/metrics.json")):
            record = json.loads(path.read_text(encoding="utf-8"))
            command = path.parent / "command.txt"
            row = {"set": path.parents[2].name, "model": path.parents[1].name, "seed": record["seed"],
                   "wall_seconds": sum(float(record.get(k) or 0.0)
                                       for k in ("data_seconds", "fit_seconds", "eval_seconds")),
                   "git_commit": record.get("git_commit"),
                   "command": command.read_text(encoding="utf-8").strip() if command.exists() else record.get(
                       "command", ""),
                   "run_dir": str(path.parent)}
            row.update({m: record["metrics"].get(f"test/{m}", math.nan) for m in METRICS})
            rows.append(row)
    if not rows:
        raise FileNotFoundError(f"no run records under {', '.join(map(str, roots))}")
    return pd.DataFrame(rows)


def _cell(mean: float, std: float, n: int, digits: int) -> str:
    if math.isnan(mean):
        return "-"
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if n > 1 else "")


def summarise(runs: pd.DataFrame, reference: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (set, model): mean/std over seeds, rank by MASE, MASE relative to ``reference``; and across sets the
    geometric mean of relative MASE per model (over the sets it ran on)."""
    grouped = runs.groupby(["set", "model"])
    table = grouped[[*METRICS, "wall_seconds"]].mean()
    std = grouped[[*METRICS, "wall_seconds"]].std(ddof=1).add_suffix("_std")
    table = table.join(std).join(grouped.size().rename("n_runs")).reset_index()
    table["rank"] = table.groupby("set")["mase"].rank(method="min")
    ref = table[table["model"] == reference].set_index("set")["mase"]
    table["relative_mase"] = table["mase"] / table["set"].map(ref)
    rel = table.dropna(subset=["relative_mase"])
    geo = rel.groupby("model")["relative_mase"].agg(
        geomean=lambda v: float(math.exp(sum(math.log(x) for x in v) / len(v))), n_sets="size")
    geo = geo.join(rel.groupby("model")["rank"].mean().rename("mean_rank")).reset_index()
    return table, geo.sort_values("geomean")


def compare_with_baseline(roots: Sequence[Path], sets: Sequence[str], baseline: str, out: Path,
                          models: Sequence[str], absent: dict[str, Any] | None = None) -> dict[str, str]:
    """``ecomlab-compare --baseline`` per set (paired on per-series test values); the table's path per set.

    Only the suite's own models and the NeuralForecast peers (``nf_*``) take part: an ablation's runs record
    the model they vary (``lstm``), so beside the default's runs they would make one row of two configurations,
    which ``ecomlab-compare`` refuses; ablations are read against the default in the summary tables. ``absent``
    (the suite's ``absent_defaults``) names config keys added after some runs and the value those runs had."""
    written = {}
    for set_name in sets:
        dirs = [str(d) for root in roots if (root / set_name).is_dir() for d in sorted((root / set_name).iterdir())
                if d.is_dir() and (d.name in models or d.name.startswith("nf_"))]
        target = out / "compare" / set_name
        command = [sys.executable, "-m", "ecomlab.compare", *dirs, "--baseline", baseline, "--metrics",
                   "test/mase", "test/smape", "--allow-mixed-protocols", "--out", str(target),
                   *(["--absent", *(f"{k}={json.dumps(v)}" for k, v in absent.items())] if absent else [])]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode == 0:
            written[set_name] = str(target / "table.md")
        else:
            print(f"compare {set_name}: {done.stderr.strip().splitlines()[-1:]} ", file=sys.stderr)
    return written


def published_rows(path: Path, models: Sequence[str], collected: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``models`` in a published ``runs.csv`` (runs whose records are not at hand, e.g. the
    NeuralForecast peers of an earlier session), except any (set, model, seed) the collected runs hold."""
    published = pd.read_csv(path)
    unknown = sorted(set(models) - set(published["model"]))
    if unknown:
        raise ValueError(f"{path}: no rows of model(s) {unknown}; it has {sorted(published['model'].unique())}")
    rows = published[published["model"].isin(models)].copy()
    have = set(zip(collected["set"], collected["model"], collected["seed"], strict=True))
    rows = rows[[(r.set, r.model, r.seed) not in have for r in rows.itertuples()]]
    rows["run_dir"] = ""  # no per-series values: these runs take no part in the paired tests
    return rows


def report(args: argparse.Namespace) -> None:
    suite = load_suite(args.suite)
    runs = collect(args.runs)
    if args.published:
        runs = pd.concat([runs, published_rows(args.published, args.published_models, runs)], ignore_index=True)
    table, geo = summarise(runs, suite.get("reference", "seasonal_naive"))
    args.out.mkdir(parents=True, exist_ok=True)
    runs.drop(columns=["run_dir"]).to_csv(args.out / "runs.csv", index=False)
    lines = ["# Forecast suite: results", "",
             f"Generated by `python scripts/forecast_suite.py report {' '.join(map(str, args.runs))} --suite "
             f"{args.suite} --out {args.out}"
             + (f" --published {args.published} --published-models {' '.join(args.published_models)}"
                if args.published else "") + f"` from {len(runs)} runs; commits: "
             f"{', '.join(sorted({str(c)[:7] for c in runs['git_commit']}))}. Test windows only; mean ± std over "
             "seeds; rank by MASE within the set; relative MASE = MASE / seasonal naive's MASE on the set.", ""]
    for set_name, part in table.groupby("set", sort=False):
        lines += [f"## {set_name}", "",
                  "| model | runs | MASE | rel. MASE | rank | sMAPE | scaled CRPS | MSQL | RMSSE | cov. 80 | "
                  "cov. 95 | wall s |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for _, r in part.sort_values("mase").iterrows():
            n = int(r["n_runs"])
            cells = [_cell(r[m], r[f"{m}_std"], n, 3 if m != "smape" else 2) for m in METRICS]
            lines.append(f"| {r['model']} | {n} | {cells[0]} | {r['relative_mase']:.3f} | {int(r['rank'])} | "
                         + " | ".join(cells[1:]) + f" | {_cell(r['wall_seconds'], r['wall_seconds_std'], n, 0)} |")
        lines.append("")
    lines += ["## Across sets: geometric mean of MASE relative to seasonal naive", "",
              "| model | geometric mean | sets | mean rank |", "|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['geomean']:.3f} | {int(r['n_sets'])} | {r['mean_rank']:.2f} |"
              for _, r in geo.iterrows()]
    if not args.no_compare:
        taking_part = list(args.compare_models or suite["models"])
        tables = compare_with_baseline(args.runs, sorted(table["set"].unique()), suite.get("baseline", "ets"),
                                       args.out, taking_part, suite.get("absent_defaults"))
        lines += ["", f"Paired tests against {suite.get('baseline', 'ets')} per set (Wilcoxon and paired t on "
                  "per-series test values, Holm-corrected) of the run directories "
                  f"{', '.join(taking_part)} (an ablation appears under the model it varies): " + ", ".join(
                      f"[{s}]({Path(p).relative_to(args.out)})" for s, p in tables.items())]
    atomic_write_text(args.out / "summary.md", "\n".join(lines) + "\n")
    table.to_csv(args.out / "table.csv", index=False)
    print(f"{len(runs)} runs -> {args.out}/runs.csv, {args.out}/summary.md")


@user_errors_exit_2
def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train and test every (set, model, seed) cell")
    r.add_argument("--suite", type=Path, required=True)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--sets", nargs="+")
    r.add_argument("--models", nargs="+")
    r.add_argument("--seeds", nargs="+", type=int)
    r.add_argument("--name", help="run directory name of a variant of one model (an ablation)")
    r.add_argument("--extra", nargs="*", default=[], help="overrides added to every cell (a variant's)")
    r.add_argument("--data-dir", help="paths.data_dir (default: the suite's data_dir)")
    p = sub.add_parser("report", help="tables, ranks, geometric means and paired tests")
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--suite", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--no-compare", action="store_true", help="skip the paired tests")
    p.add_argument("--published", type=Path, help="a published runs.csv to take --published-models' rows from")
    p.add_argument("--published-models", nargs="+", default=[],
                   help="models whose rows come from --published (their run records are not at hand); they "
                        "take no part in the paired tests")
    p.add_argument("--compare-models", nargs="+",
                   help="run directory names in the paired tests (default: the suite's models); name an ablation "
                        "instead of the model it varies to test it against the baseline")
    args = parser.parse_args(argv)
    run(args) if args.command == "run" else report(args)


if __name__ == "__main__":
    main()
