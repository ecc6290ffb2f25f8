"""Published studies: ``experiments/<study>/`` with ``README.md``, ``results.csv`` and ``summary.md``.

``results.csv`` has one row per run: ``study, model, dataset, seed``, one column per validation and per test
metric named as logged (``val/ndcg@10``, ``test/ndcg@10``), then ``fit_seconds`` and ``eval_seconds``. ``summary.md`` gives mean and standard
deviation per model and dataset. Both are built only from the ``metrics.json`` records of finished runs.
``ecomlab-compare`` (``ecomlab.compare``) builds on the same records and adds protocol checks, significance
tests, plots and a Markdown report.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from ecomlab.utils import atomic_write_text

ID_COLUMNS = ["study", "model", "dataset", "seed"]
TIME_COLUMNS = ["fit_seconds", "eval_seconds"]


def expand_inputs(patterns: Iterable[str | Path]) -> list[Path]:
    """Existing paths as given; anything else is a glob pattern (``**`` allowed) that must match something."""
    paths: list[Path] = []
    for pattern in map(str, patterns):
        if Path(pattern).exists():
            paths.append(Path(pattern))
            continue
        matches = sorted(glob.glob(pattern, recursive=True))
        if not matches:
            raise FileNotFoundError(f"{pattern}: no such run or sweep directory (and no glob match)")
        paths += map(Path, matches)
    return paths


def find_records(paths: Iterable[str | Path]) -> list[Path]:
    """Every ``metrics.json`` under the given run or sweep directories (or glob patterns of them)."""
    found: list[Path] = []
    for path in expand_inputs(paths):
        found += [path] if path.name == "metrics.json" else sorted(path.rglob("metrics.json"))
    return found


def config_value(config: dict, dotted: str) -> object:
    """The value at a dotted key (``model.optimizer.lr``) of a nested config; None when absent."""
    node: object = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def collect_runs(paths: Iterable[str | Path], study: str, config_keys: Sequence[str] = ()) -> pd.DataFrame:
    """One row per finished run; ``config_keys`` (dotted, e.g. ``model.optimizer.lr``) become columns that
    tell variants of one model apart."""
    rows = []
    for record_path in find_records(paths):
        record = json.loads(record_path.read_text(encoding="utf-8"))
        if "protocol" not in record:  # ecomlab-eval outputs are not training runs
            continue
        row = {"study": study, "model": record["model"], "dataset": record["dataset"], "seed": record["seed"]}
        row.update({key: config_value(record.get("config", {}), key) for key in config_keys})
        # validation metrics too: they are what picked a variant, so a reader must be able to check the choice
        row.update({k: v for k, v in record["metrics"].items() if k.startswith(("val/", "test/"))})
        row.update({k: record.get(k) for k in TIME_COLUMNS})
        rows.append(row)
    if not rows:
        raise FileNotFoundError("no finished runs (metrics.json) found under the given directories")
    frame = pd.DataFrame(rows)
    metric_cols = [c for prefix in ("val/", "test/") for c in sorted(frame.columns) if c.startswith(prefix)]
    order = ID_COLUMNS[1:3] + list(config_keys) + ["seed"]
    return frame[ID_COLUMNS + list(config_keys) + metric_cols + TIME_COLUMNS].sort_values(order).reset_index(
        drop=True)


def summary_metrics(results: pd.DataFrame, metrics: Sequence[str] | None = None) -> list[str]:
    """The columns a summary shows: ``metrics``, or by default every test metric and the time columns."""
    return list(metrics or [c for c in results.columns if c.startswith("test/")] + TIME_COLUMNS)


def summarize(results: pd.DataFrame, metrics: Sequence[str] | None = None,
              config_keys: Sequence[str] = ()) -> str:
    """Markdown table: mean ± standard deviation over seeds per (dataset, model, *config_keys), with the run
    count."""
    metrics = summary_metrics(results, metrics)
    keys = ["dataset", "model", *config_keys]
    grouped = results.groupby(keys, sort=True, dropna=False)
    mean, std, count = grouped[metrics].mean(), grouped[metrics].std(ddof=1), grouped.size()
    header = "| " + " | ".join(keys) + " | runs | " + " | ".join(metrics) + " |"
    lines = [header, "|" + "---|" * (len(keys) + 1 + len(metrics))]
    # positional: a config key a model lacks is NaN, and .loc cannot look up a NaN inside a MultiIndex tuple
    for row, key in enumerate(mean.index):
        key = key if isinstance(key, tuple) else (key,)
        cells = []
        for m in metrics:
            value, spread = mean[m].iloc[row], std[m].iloc[row]
            if pd.isna(value):
                cells.append("")
            else:  # one run has no spread to show
                cells.append(f"{value:.4f}" if count.iloc[row] == 1 else f"{value:.4f} ± {spread:.4f}")
        names = " | ".join("" if pd.isna(k) else str(k) for k in key)
        lines.append(f"| {names} | {count.iloc[row]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def publish_study(study: str, run_dirs: Iterable[str | Path], out_dir: str | Path,
                  metrics: Sequence[str] | None = None, config_keys: Sequence[str] = ()) -> pd.DataFrame:
    """Write ``results.csv`` and ``summary.md`` into ``out_dir`` (atomically); ``README.md`` is the author's."""
    out = Path(out_dir)
    results = collect_runs(run_dirs, study, config_keys)
    atomic_write_text(out / "results.csv", results.to_csv(index=False))
    shown = summary_metrics(results, metrics)
    split = "validation and test splits" if any(m.startswith("val/") for m in shown) else "test split"
    text = (f"# {study}: summary\n\nMean ± standard deviation over seeds, {split}.\n\n"
            + summarize(results, metrics, config_keys))
    atomic_write_text(out / "summary.md", text)
    return results
