"""Benchmark: time to generate the built-in synthetic shop (target: default size in under 5 s).

    python scripts/bench_synthetic.py --repeats 5 --out experiments/perf/synthetic_generation.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

from ecomlab.data.synthetic import SyntheticShop
from ecomlab.utils import atomic_write_text

SIZES = [(1000, 500), (5000, 2000), (20000, 5000)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=None, help="write a Markdown table here")
    args = parser.parse_args()
    rows = ["| users | items | interactions | sales rows | median s | max s |", "|---|---|---|---|---|---|"]
    for n_users, n_items in SIZES:
        times, bundle = [], None
        for seed in range(args.repeats):
            t0 = time.perf_counter()
            bundle = SyntheticShop(n_users=n_users, n_items=n_items, seed=seed).load()
            times.append(time.perf_counter() - t0)
        assert bundle is not None and bundle.sales is not None
        rows.append(f"| {n_users} | {n_items} | {len(bundle.interactions)} | {len(bundle.sales)} | "
                    f"{statistics.median(times):.3f} | {max(times):.3f} |")
    text = (f"# Synthetic shop generation time\n\nMachine: {platform.machine()}, {os.cpu_count()} cores; "
            f"{args.repeats} seeds per size; `SyntheticShop(...).load()` including validation and id remapping.\n"
            f"Command: `python scripts/bench_synthetic.py --repeats {args.repeats}`\n\n" + "\n".join(rows) + "\n")
    print(text)
    if args.out:
        atomic_write_text(args.out, text)


if __name__ == "__main__":
    main()
