"""Benchmark: parsing a time column of 1 million rows, before and after per-value ISO-8601 parsing.

``before`` is the parser the data contract used until issue 21 (one ``pandas.to_datetime(errors="coerce",
utc=True)`` call, whose format pandas guesses from the first value), copied here so both run on the same
machine in the same process; ``after`` is :func:`ecomlab.data.bundle.parse_times` as the loaders call it
(``_timestamps`` for interactions, ``wall_clock=True`` for a sales ``ds``). Columns, each ``--rows`` long
and read from a CSV into an object column as ``read_csv`` gives it:

* ``datetime`` -- ``2007-01-31 13:45:12`` for every row;
* ``date`` -- ``2007-01-31`` for every row (the per-value check for digit-only strings runs on all of them);
* ``mixed`` -- dates and date-times alternating (``before`` refuses half the rows);
* ``iso_t_offset`` -- ``2007-01-31T13:45:12.250+02:00``;
* ``unix_text_one_bad`` -- Unix seconds as text with one ``yesterday`` (the audit's case: ``before`` reports
  every row, ``after`` reports the one; both times are to the error).

Each timing is the best of ``--repeats`` runs (seconds).

    OMP_NUM_THREADS=1 python scripts/bench_timestamps.py --out experiments/perf/timestamps
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecomlab.data.bundle import DataValidationError, _timestamps, parse_times
from ecomlab.utils import atomic_write_json, atomic_write_text, git_commit


def before(col: pd.Series) -> np.ndarray:
    """The contract's timestamp parser before issue 21 (bundle._timestamps' text branch)."""
    parsed = pd.to_datetime(col, errors="coerce", utc=True)
    bad = parsed.isna().to_numpy()
    if bad.any():
        raise DataValidationError(f"{int(bad.sum())} unparseable value(s)")
    return parsed.dt.as_unit("s").astype("int64").to_numpy()


def columns(rows: int) -> dict[str, pd.Series]:
    rng = np.random.default_rng(0)
    seconds = rng.integers(1_100_000_000, 1_600_000_000, rows)
    when = pd.to_datetime(seconds, unit="s")
    datetime_ = when.strftime("%Y-%m-%d %H:%M:%S")
    date = when.strftime("%Y-%m-%d")
    mixed = np.where(np.arange(rows) % 2 == 0, date, datetime_)
    offset = (when.strftime("%Y-%m-%dT%H:%M:%S") + ".250+02:00")
    unix = seconds.astype(str).astype(object)
    unix[13] = "yesterday"
    raw = {"datetime": datetime_, "date": date, "mixed": mixed, "iso_t_offset": offset, "unix_text_one_bad": unix}
    # through read_csv, so each column is the object column of str a user's file gives
    return {name: pd.read_csv(io.StringIO("t\n" + "\n".join(map(str, values)) + "\n"), dtype={"t": object})["t"]
            for name, values in raw.items()}


def best(fn: Callable[[], Any], repeats: int) -> tuple[float, str]:
    times, outcome = [], ""
    for _ in range(repeats):
        t0 = time.perf_counter()
        try:
            fn()
            outcome = "parsed"
        except DataValidationError as err:
            outcome = "refused: " + str(err)[:120]
        times.append(time.perf_counter() - t0)
    return min(times), outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="write OUT.json and OUT.md")
    args = parser.parse_args()
    results = []
    for name, col in columns(args.rows).items():
        frame = pd.DataFrame({"timestamp": col})
        row = {"column": name, "rows": len(col)}
        for label, fn in (("before", lambda c=col: before(c)),
                          ("after", lambda f=frame: _timestamps(f, "bench")),
                          ("after_ds", lambda c=col: parse_times(c, "bench", "ds", wall_clock=True))):
            seconds, outcome = best(fn, args.repeats)
            row[f"{label}_s"], row[f"{label}_outcome"] = round(seconds, 4), outcome
        results.append(row)
        print(json.dumps(row), flush=True)
    record = {"commit": git_commit(), "python": sys.version.split()[0], "pandas": pd.__version__,
              "machine": platform.machine(), "processor": platform.processor(), "rows": args.rows,
              "repeats": args.repeats, "results": results}
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.out.with_suffix(".json"), record)
        lines = [f"# Parsing a time column of {args.rows:,} rows (best of {args.repeats}, seconds)", "",
                 f"commit {record['commit']}, pandas {record['pandas']}, Python {record['python']}, "
                 f"{record['machine']}; `OMP_NUM_THREADS=1 python scripts/bench_timestamps.py --out "
                 "experiments/perf/timestamps`. One process, one thread; on a shared machine the best of the "
                 "repeats is the least disturbed run.", "",
                 "`before` is the parser until issue 21 (pandas guessing one format from the first value), "
                 "`after` the per-value parser (Arrow's strict ISO-8601 cast, else pandas' ISO8601 parser, then "
                 "the refused values one by one). `unix_text_one_bad` times the refusal: `before` reported all "
                 "rows, `after` row 13 alone.", "",
                 "| column | before | after (timestamp) | after (ds) | before says | after says |",
                 "|---|---:|---:|---:|---|---|"]
        lines += [f"| {r['column']} | {r['before_s']:.3f} | {r['after_s']:.3f} | {r['after_ds_s']:.3f} | "
                  f"{r['before_outcome'][:60]} | {r['after_outcome'][:60]} |" for r in results]
        atomic_write_text(args.out.with_suffix(".md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
