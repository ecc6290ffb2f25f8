"""Re-run one published row of each study and compare it with the study's ``results.csv``.

    python scripts/check_studies.py                      # every study under experiments/
    python scripts/check_studies.py amazon_coldstart     # some of them
    python scripts/check_studies.py --list               # the checks, without running them

A study names the row to re-run in its ``README.md``, as a fenced block whose info string starts with
``bash check`` and which holds one ``ecomlab-train`` command (the README's own command narrowed to one run,
normally the study's cheapest)::

    ```bash check
    ecomlab-train experiment=amazon_coldstart paths.data_dir=../shared/data model=tfidf seed=0
    ```

Words after ``check`` set the comparison: ``atol=X`` allows an absolute difference of X per metric (default 0:
exact, as for the deterministic classical models; seeded CPU runs with one torch thread repeat bit for bit on
one machine, so a trained row may be exact too), ``gpu`` skips the check where no CUDA device is present.

The command runs from the repository root, with one torch thread (``OMP_NUM_THREADS=1``, as the studies ran),
into a fresh run directory and a fresh data cache (a cached parse could hide a changed loader), through this
interpreter (``python -m ecomlab.train``, so ``PYTHONPATH`` picks the code). Its ``metrics.json`` is matched to
the ``results.csv`` row of the same model, dataset, seed and variant columns, and every validation and test
metric of that row is compared (the re-run evaluates its validation windows, ``eval.validate=true``, since a
classical forecaster otherwise skips them and changes no test number by it). The row's ``git_commit`` must name a commit of this repository.

A check whose data folder (``paths.data_dir=...``, or ``--data-dir``) is absent is skipped. Exit code 0: every
check that ran matched; 1: a published number moved, or a re-run failed; 2: bad input (an unknown study, a
malformed check block).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ecomlab.report.study import config_value

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```bash check(?P<options>[^\n]*)\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)
#: results.csv columns that are not variant keys, metrics or run facts
ID_COLUMNS = ("study", "model", "dataset", "seed")
RUN_COLUMNS = ("fit_seconds", "eval_seconds", "epochs_run", "best_epoch", "stop_reason", "git_commit")


class CheckError(ValueError):
    """A study folder or check block that cannot be checked as written."""


@dataclass
class Check:
    study: str
    readme: Path
    overrides: list[str]
    atol: float = 0.0
    gpu: bool = False
    index: int = 0

    @property
    def command(self) -> str:
        return shlex.join(["ecomlab-train", *self.overrides])


def parse_checks(study_dir: Path) -> list[Check]:
    """The ``bash check`` blocks of ``study_dir/README.md``."""
    readme = study_dir / "README.md"
    checks = []
    for match in BLOCK.finditer(readme.read_text(encoding="utf-8")):
        options = match["options"].split()
        lines = [line.split("#", 1)[0].rstrip() for line in match["body"].splitlines()]
        words = shlex.split(" ".join(line.rstrip("\\") for line in lines if line.strip()))
        if not words or words[0] != "ecomlab-train" or "ecomlab-train" in words[1:]:
            raise CheckError(f"{readme}: a `bash check` block must hold one ecomlab-train command, got {words!r}")
        if {"-m", "--multirun"} & set(words):
            raise CheckError(f"{readme}: a `bash check` block re-runs one row; drop -m / --multirun")
        check = Check(study_dir.name, readme, words[1:], index=len(checks))
        for option in options:
            if option == "gpu":
                check.gpu = True
            elif option.startswith("atol="):
                try:
                    check.atol = float(option[5:])
                except ValueError:
                    raise CheckError(f"{readme}: check option {option!r}: expected atol=<number>") from None
            else:
                raise CheckError(f"{readme}: unknown check option {option!r}; expected atol=<number> or gpu")
        checks.append(check)
    return checks


def _same_key(published: Any, rerun: Any) -> bool:
    """A variant column's value in results.csv against the re-run config's (NaN there: the key was absent)."""
    if published is None or (isinstance(published, float) and math.isnan(published)):
        return rerun is None
    try:
        return float(published) == float(rerun)
    except (TypeError, ValueError):
        return str(published) == str(rerun)


def _same(published: float, rerun: float | None, atol: float) -> bool:
    if rerun is None:
        return math.isnan(published)
    if math.isnan(published) or math.isnan(rerun):
        return math.isnan(published) and math.isnan(rerun)
    return published == rerun if atol == 0 else abs(published - rerun) <= atol


def published_row(results: pd.DataFrame, record: dict[str, Any], results_path: Path) -> pd.Series:
    """The one results.csv row of the re-run's model, dataset, seed and variant columns."""
    metric_start = next((i for i, c in enumerate(results.columns) if c.startswith(("val/", "test/"))),
                        len(results.columns))
    keys = [c for c in results.columns[:metric_start] if c not in ID_COLUMNS]
    chosen = results[(results["model"] == record["model"]) & (results["dataset"] == record["dataset"])
                     & (results["seed"] == record["seed"])]
    for key in keys:
        chosen = chosen[[_same_key(v, config_value(record.get("config", {}), key)) for v in chosen[key]]]
    if len(chosen) != 1:
        variant = ", ".join(f"{k}={config_value(record.get('config', {}), k)!r}" for k in keys)
        raise CheckError(f"{results_path}: {len(chosen)} rows for model {record['model']}, dataset "
                         f"{record['dataset']}, seed {record['seed']}{', ' + variant if variant else ''}; "
                         "the check block must re-run exactly one published row")
    return chosen.iloc[0]


def commit_problems(results: pd.DataFrame) -> tuple[list[str], int]:
    """Rows whose ``git_commit`` is not a clean commit of this repository, and the count of rows naming none."""
    if "git_commit" not in results.columns:
        return [], len(results)
    if subprocess.run(["git", "rev-parse", "--git-dir"], cwd=ROOT, capture_output=True).returncode != 0:
        return [], 0  # an unpacked archive, not a checkout: there is no history to look the commits up in
    commits = results["git_commit"].dropna().astype(str)
    problems = []
    for commit in sorted(set(commits)):
        known = subprocess.run(["git", "cat-file", "-e", f"{commit.removesuffix('-dirty')}^{{commit}}"], cwd=ROOT,
                               capture_output=True).returncode == 0
        if commit.endswith("-dirty") or not known:
            rows = (commits == commit).sum()
            problems.append(f"git_commit {commit} of {rows} row(s) is "
                            + ("uncommitted code" if known else "not a commit of this repository"))
    return problems, int(results["git_commit"].isna().sum())


def run_check(check: Check, workdir: Path, data_dir: str | None) -> tuple[str, str]:
    """``(status, message)``: status ``ok``, ``skip`` or ``fail``."""
    overrides = list(check.overrides)
    if data_dir is not None:
        overrides = [o for o in overrides if not o.startswith("paths.data_dir=")] + [f"paths.data_dir={data_dir}"]
    given = next((o.split("=", 1)[1] for o in overrides if o.startswith("paths.data_dir=")), None)
    if given is not None and not (ROOT / given).is_dir():
        return "skip", f"data folder {given} not found"
    if check.gpu:
        import torch

        if not torch.cuda.is_available():
            return "skip", "needs a CUDA GPU"
    results_path = check.readme.parent / "results.csv"
    results = pd.read_csv(results_path, float_precision="round_trip", dtype={"git_commit": str})
    run_dir = workdir / f"{check.study}_{check.index}"
    if run_dir.exists():  # a finished run there would be skipped by ecomlab-train, not re-run
        raise CheckError(f"{run_dir} exists; give an empty --workdir")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "ecomlab.train", *overrides, f"hydra.run.dir={run_dir}",
         f"paths.cache_dir={workdir / 'cache'}", "eval.print_table=false",
         # published rows carry validation metrics, which classical forecasters skip unless asked
         "eval.validate=true"],
        cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return "fail", f"the re-run exited {done.returncode}: {tail}"
    record = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    row = published_row(results, record, results_path)
    metrics = [c for c in results.columns if c.startswith(("val/", "test/")) and not pd.isna(row[c])]
    moved = [(m, float(row[m]), record["metrics"].get(m)) for m in metrics
             if not _same(float(row[m]), record["metrics"].get(m), check.atol)]
    rule = "exactly" if check.atol == 0 else f"within {check.atol:g}"
    published_at = row.get("git_commit")
    published_at = "an unrecorded commit" if pd.isna(published_at) else str(published_at)[:12]
    rerun_at = str(record.get("git_commit"))
    rerun_at = rerun_at[:12] + ("-dirty" if rerun_at.endswith("-dirty") else "")
    what = (f"{record['model']} on {record['dataset']}, seed {record['seed']} (published at {published_at}, "
            f"re-run at {rerun_at}, {seconds:.0f} s)")
    if moved:
        name, old, new = moved[0]
        return "fail", (f"{what}: {len(moved)} of {len(metrics)} metrics moved, e.g. {name} published {old!r}, "
                        f"re-run {new!r}")
    return "ok", f"{what}: {len(metrics)} metrics equal {rule}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("studies", nargs="*", help="study folder names (default: every one with a results.csv)")
    parser.add_argument("--experiments", type=Path, default=ROOT / "experiments", help="the studies' folder")
    parser.add_argument("--data-dir", default=None, help="paths.data_dir for every check (default: the README's)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the re-runs here (default: a temp folder)")
    parser.add_argument("--list", action="store_true", help="print the checks and commit problems, run nothing")
    args = parser.parse_args(argv)
    try:
        names = args.studies or sorted(p.parent.name for p in args.experiments.glob("*/results.csv"))
        checks: dict[str, list[Check]] = {}
        for name in names:
            folder = args.experiments / name
            if not (folder / "results.csv").is_file() or not (folder / "README.md").is_file():
                raise CheckError(f"{folder}: not a published study (README.md and results.csv expected)")
            checks[name] = parse_checks(folder)
    except CheckError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    failed = False
    with tempfile.TemporaryDirectory(prefix="check_studies_") as tmp:
        workdir = args.workdir or Path(tmp)
        for name, study_checks in checks.items():
            results = pd.read_csv(args.experiments / name / "results.csv", dtype={"git_commit": str})
            problems, unrecorded = commit_problems(results)
            for problem in problems:
                failed = True
                print(f"FAIL {name}: {problem}")
            if unrecorded:
                print(f"note {name}: {unrecorded} of {len(results)} rows name no git_commit (their runs' commits "
                      "were not recorded)")
            if not study_checks:
                print(f"note {name}: no `bash check` block in its README; nothing re-run")
            for check in study_checks:
                if args.list:
                    print(f"{name}: {check.command}" + (f"  (atol {check.atol:g})" if check.atol else "  (exact)"))
                    continue
                try:
                    status, message = run_check(check, workdir, args.data_dir)
                except CheckError as err:
                    print(f"error: {err}", file=sys.stderr)
                    return 2
                failed |= status == "fail"
                print(f"{status.upper():4} {name}: {message}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
