"""Published studies: ``experiments/<study>/`` with ``README.md``, ``results.csv`` and ``summary.md``.

``results.csv`` has one row per run: ``study, model, dataset, seed``, one column per test metric named as
logged (``test/ndcg@10``), then ``fit_seconds`` and ``eval_seconds``. ``summary.md`` gives mean and standard
deviation per model and dataset. Both are built only from the ``metrics.json`` records of finished runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from ecomlab.utils import atomic_write_text

ID_COLUMNS = ["study", "model", "dataset", "seed"]
TIME_COLUMNS = ["fit_seconds", "eval_seconds"]


def find_records(paths: Iterable[str | Path]) -> list[Path]:
    """Every ``metrics.json`` of a training run under the given run or sweep directories."""
    found: list[Path] = []
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such run or sweep directory")
        found += [path] if path.name == "metrics.json" else sorted(path.rglob("metrics.json"))
    return found


def collect_runs(paths: Iterable[str | Path], study: str) -> pd.DataFrame:
    rows = []
    for record_path in find_records(paths):
        record = json.loads(record_path.read_text(encoding="utf-8"))
        if "protocol" not in record:  # ecomlab-eval outputs are not training runs
            continue
        row = {"study": study, "model": record["model"], "dataset": record["dataset"], "seed": record["seed"]}
        row.update({k: v for k, v in record["metrics"].items() if k.startswith("test/")})
        row.update({k: record.get(k) for k in TIME_COLUMNS})
        rows.append(row)
    if not rows:
        raise FileNotFoundError("no finished runs (metrics.json) found under the given directories")
    frame = pd.DataFrame(rows)
    metric_cols = sorted(c for c in frame.columns if c.startswith("test/"))
    return frame[ID_COLUMNS + metric_cols + TIME_COLUMNS].sort_values(ID_COLUMNS[1:]).reset_index(drop=True)


def summarize(results: pd.DataFrame, metrics: Sequence[str] | None = None) -> str:
    """Markdown table: mean ± standard deviation over seeds per (dataset, model), with the run count."""
    metrics = list(metrics or [c for c in results.columns if c.startswith("test/")] + TIME_COLUMNS)
    grouped = results.groupby(["dataset", "model"], sort=True)
    mean, std, count = grouped[metrics].mean(), grouped[metrics].std(ddof=1), grouped.size()
    header = "| dataset | model | runs | " + " | ".join(metrics) + " |"
    lines = [header, "|" + "---|" * (3 + len(metrics))]
    for key in mean.index:
        cells = []
        for m in metrics:
            value, spread = mean.loc[key, m], std.loc[key, m]
            cells.append("" if pd.isna(value) else f"{value:.4f} ± {0.0 if pd.isna(spread) else spread:.4f}")
        lines.append(f"| {key[0]} | {key[1]} | {count.loc[key]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def publish_study(study: str, run_dirs: Iterable[str | Path], out_dir: str | Path,
                  metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Write ``results.csv`` and ``summary.md`` into ``out_dir`` (atomically); ``README.md`` is the author's."""
    out = Path(out_dir)
    results = collect_runs(run_dirs, study)
    atomic_write_text(out / "results.csv", results.to_csv(index=False))
    text = f"# {study}: summary\n\nMean ± standard deviation over seeds, test split.\n\n" + summarize(results, metrics)
    atomic_write_text(out / "summary.md", text)
    return results
