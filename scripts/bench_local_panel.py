"""Benchmark: per-series ("local") models at panel scale -- the process pool over series and the skipped
validation refit (issue 22, item 7).

Each setting is one real ``ecomlab-train`` run in a fresh process on the same data and model, differing only in
``model.net.n_jobs`` (1: serial; -1: a process pool over all cores) and ``eval.validate`` (true: the validation
window is forecast too, as before issue 22; null: skipped, since nothing selects on it). The settings alternate
over ``--repeats`` rounds so that a change in the machine's load does not favour one of them. Reported per run:
wall seconds of the whole process, the run record's ``eval_seconds`` (fits and forecasts of every window), the
CPU seconds of the process and its children, and the test MASE, which must be the same for every setting (the
fits are deterministic; a difference is reported as an error).

    OMP_NUM_THREADS=1 nice -n 5 python scripts/bench_local_panel.py --data tourism-monthly --model ets \\
        --data-dir ../shared/data --repeats 2 --out experiments/perf/local_panel
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ecomlab.utils import atomic_write_json, atomic_write_text

#: (label, n_jobs, eval.validate) -- the first is the behaviour before issue 22, the last the new default
SETTINGS = [("serial, with validation", 1, "true"), ("serial, no validation", 1, "null"),
            ("pool, with validation", -1, "true"), ("pool, no validation (default)", -1, "null")]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(args: argparse.Namespace, n_jobs: int, validate: str, run_dir: Path) -> dict[str, Any]:
    command = [str(Path(sys.executable).parent / "ecomlab-train"), f"data={args.data}", f"model={args.model}",
               f"paths.data_dir={args.data_dir}", f"model.net.n_jobs={n_jobs}", f"eval.validate={validate}",
               f"hydra.run.dir={run_dir}", "logger=csv", "eval.print_table=false", *args.overrides]
    cpu0, t0 = children_cpu(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - t0
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr[-2000:]}")
    record = json.loads((run_dir / "metrics.json").read_text())
    return {"wall_seconds": round(wall, 2), "eval_seconds": round(record["eval_seconds"], 2),
            "cpu_seconds": round(children_cpu() - cpu0, 2), "test_mase": record["metrics"]["test/mase"],
            "val_mase": record["metrics"].get("val/mase"), "n_series": record["protocol"]["n_series"],
            "git_commit": record["git_commit"]}


def table(result: dict[str, Any]) -> str:
    lines = [f"# {result['model']} on {result['data']}: process pool and skipped validation", "",
             f"Command: `{result['command']}`", "",
             f"Machine: {result['machine']}, {result['cpus']} CPUs, load average {result['load_before']} before "
             f"and {result['load_after']} after (1, 5, 15 min); git commit {result['git_commit']}.", "",
             "| setting | n_jobs | eval.validate | wall s (median) | eval s (median) | CPU s (median) | test MASE |",
             "|---|---|---|---|---|---|---|"]
    for row in result["settings"]:
        lines.append(f"| {row['label']} | {row['n_jobs']} | {row['validate']} | {row['wall_median']:.1f} | "
                     f"{row['eval_median']:.1f} | {row['cpu_median']:.1f} | {row['test_mase']:.6f} |")
    base = result["settings"][0]["eval_median"]
    lines += ["", "Speed-up of the evaluation (fits and forecasts) against the first row: " + ", ".join(
        f"{row['label']} {base / row['eval_median']:.2f}x" for row in result["settings"][1:]), ""]
    return "\n".join(lines)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="tourism-monthly")
    parser.add_argument("--model", default="ets")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=None, help="write <out>.json and <out>.md")
    parser.add_argument("overrides", nargs="*", help="more ecomlab-train overrides")
    args = parser.parse_args(argv)
    load_before = [round(x, 2) for x in os.getloadavg()]
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in SETTINGS}
    with tempfile.TemporaryDirectory(prefix="bench_local_") as tmp:
        for r in range(args.repeats):
            for label, n_jobs, validate in SETTINGS if r % 2 == 0 else SETTINGS[::-1]:
                out = run(args, n_jobs, validate, Path(tmp) / f"{r}_{n_jobs}_{validate}")
                runs[label].append(out)
                print(f"{label}: {out}", flush=True)
    mases = {round(o["test_mase"], 12) for rows in runs.values() for o in rows}
    if len(mases) != 1:
        raise RuntimeError(f"the settings disagree on the test MASE: {sorted(mases)}")
    settings = [{"label": label, "n_jobs": n_jobs, "validate": validate, "runs": runs[label],
                 "wall_median": median([o["wall_seconds"] for o in runs[label]]),
                 "eval_median": median([o["eval_seconds"] for o in runs[label]]),
                 "cpu_median": median([o["cpu_seconds"] for o in runs[label]]),
                 "test_mase": runs[label][0]["test_mase"]} for label, n_jobs, validate in SETTINGS]
    result = {"data": args.data, "model": args.model, "repeats": args.repeats, "settings": settings,
              "command": "OMP_NUM_THREADS=1 nice -n 5 python scripts/bench_local_panel.py " + " ".join(
                  argv if argv is not None else sys.argv[1:]),
              "machine": platform.platform(), "cpus": os.cpu_count(), "load_before": load_before,
              "load_after": [round(x, 2) for x in os.getloadavg()],
              "git_commit": settings[0]["runs"][0]["git_commit"]}
    if args.out:
        atomic_write_json(Path(f"{args.out}.json"), result)
        atomic_write_text(Path(f"{args.out}.md"), table(result))
    print(table(result))
    return result


if __name__ == "__main__":
    main()
