"""Published studies: ``experiments/<study>/`` with ``README.md``, ``results.csv`` and ``summary.md``.

``results.csv`` has one row per run: ``study, model, dataset, seed``, the ``config_keys`` that tell variants
apart, one column per validation and per test metric named as logged (``val/ndcg@10``, ``test/ndcg@10``), then
``fit_seconds`` and ``eval_seconds``, and how the run went: ``epochs_run``, ``best_epoch`` (0-based, the tested
checkpoint's), ``stop_reason`` and ``git_commit``, the commit of the code that produced the row. ``summary.md``
gives mean and standard deviation per model and dataset. Both are built only from the ``metrics.json`` records of
finished runs, and only from runs of committed code: a record whose ``git_commit`` is missing or ``-dirty`` is
refused (``allow_uncommitted`` overrides), as is a row that would average runs configured differently beyond
their seed (:mod:`ecomlab.report.grouping`). ``ecomlab-compare`` (``ecomlab.compare``) builds on the same
records and adds protocol checks, significance tests, plots and a Markdown report.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from ecomlab.report.grouping import Member, check_groups, comparable_config, group_key
from ecomlab.utils import atomic_write_text

ID_COLUMNS = ["study", "model", "dataset", "seed"]
TIME_COLUMNS = ["fit_seconds", "eval_seconds"]
#: how each run went and which code ran it, from its run record (empty for records that predate a field)
RUN_COLUMNS = ["epochs_run", "best_epoch", "stop_reason", "git_commit"]


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


def uncommitted(commit: object) -> bool:
    """A run record's ``git_commit`` that names no commit: missing, or ``<sha>-dirty`` (uncommitted edits ran)."""
    return not isinstance(commit, str) or not commit or commit.endswith("-dirty")


def collect_runs(paths: Iterable[str | Path], study: str, config_keys: Sequence[str] = (),
                 allow_uncommitted: bool = False) -> pd.DataFrame:
    """One row per finished run; ``config_keys`` (dotted, e.g. ``model.optimizer.lr``) become columns that
    tell variants of one model apart. Refuses (``ValueError``) a run of uncommitted code unless
    ``allow_uncommitted``, and a row that would average runs configured differently beyond their seed."""
    rows = []
    groups: dict[tuple[object, ...], list[Member]] = {}
    for record_path in find_records(paths):
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{record_path}: not valid JSON ({err})") from err
        if "protocol" not in record:  # ecomlab-eval outputs are not training runs
            continue
        if not allow_uncommitted and uncommitted(record.get("git_commit")):
            raise ValueError(
                f"{record_path}: git_commit is {record.get('git_commit')!r}, not a commit; a published number must "
                "come from a run of committed code (run it from a clean checkout), or pass --allow-uncommitted")
        config = record.get("config", {})
        row = {"study": study, "model": record["model"], "dataset": record["dataset"], "seed": record["seed"]}
        # a list value (model.net.input_sizes) as its JSON text: a table cell, and a key pandas can group by
        row.update(dict(zip(config_keys, group_key(*(config_value(config, key) for key in config_keys)),
                            strict=True)))
        # validation metrics too: they are what picked a variant, so a reader must be able to check the choice
        row.update({k: v for k, v in record["metrics"].items() if k.startswith(("val/", "test/"))})
        row.update({k: record.get(k) for k in TIME_COLUMNS + RUN_COLUMNS})
        rows.append(row)
        group = group_key(row["dataset"], row["model"], *(row[k] for k in config_keys))
        groups.setdefault(group, []).append(Member(str(record_path.parent), int(record["seed"]),
                                                   comparable_config(config)))
    if not rows:
        raise FileNotFoundError("no finished runs (metrics.json) found under the given directories")
    check_groups(groups, config_keys)
    frame = pd.DataFrame(rows)
    for column in ("epochs_run", "best_epoch"):  # whole numbers, blank where a model has none
        frame[column] = pd.array(frame[column], dtype="Int64")
    metric_cols = [c for prefix in ("val/", "test/") for c in sorted(frame.columns) if c.startswith(prefix)]
    order = ID_COLUMNS[1:3] + list(config_keys) + ["seed"]
    columns = ID_COLUMNS + list(config_keys) + metric_cols + TIME_COLUMNS + RUN_COLUMNS
    return frame[columns].sort_values(order).reset_index(drop=True)


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


def commits_line(results: pd.DataFrame) -> str:
    """Which code produced the rows: ``commit abc1234 (all 9 runs)`` or each commit with its run count."""
    counts = results["git_commit"].fillna("unknown").value_counts(sort=False)
    if len(counts) == 1:
        return f"Code: commit {str(counts.index[0])[:12]} (all {len(results)} runs); each run's is in results.csv."
    return ("Code: commits " + ", ".join(f"{str(c)[:12]} ({n} run{'s' if n > 1 else ''})" for c, n in counts.items())
            + "; each run's is in results.csv.")


def publish_study(study: str, run_dirs: Iterable[str | Path], out_dir: str | Path,
                  metrics: Sequence[str] | None = None, config_keys: Sequence[str] = (),
                  allow_uncommitted: bool = False) -> pd.DataFrame:
    """Write ``results.csv`` and ``summary.md`` into ``out_dir`` (atomically); ``README.md`` is the author's."""
    out = Path(out_dir)
    results = collect_runs(run_dirs, study, config_keys, allow_uncommitted)
    shown = summary_metrics(results, metrics)
    unknown = [m for m in shown if m not in results.columns]
    if unknown:
        raise ValueError(f"unknown metric {', '.join(unknown)}; the runs have: "
                         + ", ".join(c for c in results.columns if c.startswith(("val/", "test/"))))
    atomic_write_text(out / "results.csv", results.to_csv(index=False))
    split = "validation and test splits" if any(m.startswith("val/") for m in shown) else "test split"
    text = (f"# {study}: summary\n\nMean ± standard deviation over seeds, {split}. {commits_line(results)}\n\n"
            + summarize(results, metrics, config_keys))
    atomic_write_text(out / "summary.md", text)
    return results
