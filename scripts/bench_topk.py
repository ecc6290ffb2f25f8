"""Milliseconds of the top-k step of a full-ranking pass: ``torch.topk`` against ``ecomlab.models.base.largest``
(the blockwise two-pass top-k that ``rank_topk`` uses on CPU), on ``[users, items]`` score matrices.

Both answers are checked to agree (same values; same items wherever the cut is not tied) before timing. The two
are interleaved, repeat by repeat, and the table gives medians.

    OMP_NUM_THREADS=1 python scripts/bench_topk.py --out experiments/perf/topk.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from ecomlab.models.base import TOPK_BLOCK, largest
from ecomlab.utils import atomic_write_text


def check(scores: torch.Tensor, k: int) -> None:
    values, items = largest(scores, k)
    want = torch.topk(scores, k, dim=1)
    if not torch.equal(values, want.values):
        raise AssertionError(f"largest() values differ from torch.topk for shape {tuple(scores.shape)}, k={k}")
    if not torch.equal(scores.gather(1, items), values):
        raise AssertionError("largest() returned items whose scores are not its values")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=256, help="rows (ecomlab's evaluation batch)")
    parser.add_argument("--items", type=int, nargs="+", default=[3_000, 6_170, 17_632, 50_000, 100_000],
                        help="columns (6,170: MovieLens-small's items; 17,632: LastFM's)")
    parser.add_argument("--k", type=int, nargs="+", default=[11, 21], help="topk's k (rank_topk asks K + 1)")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", default=None, help="write the Markdown table here")
    args = parser.parse_args(argv)

    generator = torch.Generator().manual_seed(0)
    lines = [
        "# Top-k of a score matrix: torch.topk vs the blockwise two-pass top-k (CPU)",
        "",
        f"Command: `OMP_NUM_THREADS={torch.get_num_threads()} "
        + " ".join(["python", "scripts/bench_topk.py", *(sys.argv[1:] if argv is None else argv)]) + "`",
        "",
        f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} torch thread(s), 1-minute "
        f"load average {os.getloadavg()[0]:.2f} at the start; {args.users} rows of uniform random fp32 scores; "
        f"blocks of {TOPK_BLOCK} columns; median ms over {args.repeats} interleaved repeats. `largest` takes the "
        "two-pass path for rows of at least 6 k blocks and calls torch.topk otherwise.",
        "",
        "| items | k | blocks | path | torch.topk ms | largest ms | largest / topk |",
        "|---|---|---|---|---|---|---|",
    ]
    for n_items in args.items:
        scores = torch.rand(args.users, n_items, generator=generator)
        for k in args.k:
            check(scores, k)
            times: dict[str, list[float]] = {"topk": [], "largest": []}
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                torch.topk(scores, k, dim=1)
                t1 = time.perf_counter()
                largest(scores, k)
                times["topk"].append(t1 - t0)
                times["largest"].append(time.perf_counter() - t1)
            topk_ms, largest_ms = (statistics.median(times[n]) * 1e3 for n in ("topk", "largest"))
            n_blocks = n_items // TOPK_BLOCK
            path = "two-pass" if n_blocks >= 6 * k else "topk"
            lines.append(f"| {n_items:,} | {k} | {n_blocks} | {path} | {topk_ms:.2f} | {largest_ms:.2f} | "
                         f"{largest_ms / topk_ms:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        atomic_write_text(Path(args.out), text)


if __name__ == "__main__":
    main()
