"""Benchmark: ItemKNN at catalogue scale (fit seconds, peak memory, full-ranking scoring speed).

Each size runs in a fresh process: ``synthetic_shop`` generates ``users x items`` with ``per_user`` interactions
per user (its popularity skew: a few items are bought by most users, most items by a handful), the
interactions become the ``[U, N]`` training matrix, and then

1. **fit** -- ``ItemKNN(k).fit``: the pruned item-item similarity (the closed-form "training");
2. **score** -- ``ItemKNN.forward`` over every user in batches of ``--eval-batch`` users (the score matrix an
   evaluation pass ranks; top-k and metrics are the same for every model and not timed here).

Memory: the process's peak resident set (``ru_maxrss``) after generation and after the fit; their difference is
what the fit added on top of the data.

    OMP_NUM_THREADS=1 python scripts/bench_itemknn.py --out experiments/perf/itemknn

The same script measures another checkout's ItemKNN when that tree comes first on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

GIB = 1024**3


def _maxrss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def measure(users: int, items: int, per_user: float, k: int, eval_batch: int, queue: Any) -> None:
    """One size in this (child) process; puts a result row on ``queue``."""
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp
    import torch

    import ecomlab
    from ecomlab.data.synthetic import SyntheticShop
    from ecomlab.models.base import RecTrainData
    from ecomlab.models.itemknn import ItemKNN

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    t0 = time.perf_counter()
    frame = SyntheticShop(n_users=users, n_items=items, interactions_per_user=per_user, seed=0).frames()["interactions"]
    u_codes, _ = pd.factorize(frame["user_id"])
    i_codes, i_ids = pd.factorize(frame["item_id"])
    train = sp.csr_matrix((np.ones(len(frame), np.float32), (u_codes, i_codes)), shape=(u_codes.max() + 1, len(i_ids)))
    del frame
    generate = time.perf_counter() - t0
    rss_data = _maxrss()
    model = ItemKNN(train.shape[1], k=k)
    t0 = time.perf_counter()
    model.fit(RecTrainData(train=train))
    fit = time.perf_counter() - t0
    rss_fit = _maxrss()
    t0 = time.perf_counter()
    with torch.no_grad():
        for start in range(0, train.shape[0], eval_batch):
            model(torch.arange(start, min(start + eval_batch, train.shape[0])))
    score = time.perf_counter() - t0
    queue.put({"users": int(train.shape[0]), "items": int(train.shape[1]), "interactions": int(train.nnz),
               "k": k, "similarity_nnz": int(model.similarity.nnz), "generate_seconds": round(generate, 2),
               "fit_seconds": round(fit, 2), "score_seconds": round(score, 2),
               "users_per_second": round(train.shape[0] / score), "peak_rss_data_gib": round(rss_data / GIB, 2),
               "peak_rss_fit_gib": round(rss_fit / GIB, 2),
               "ecomlab": str(Path(ecomlab.__file__).resolve().parent)})


def run_child(*args: Any) -> dict[str, Any]:
    ctx = mp.get_context("spawn")  # a fresh interpreter: ru_maxrss starts from zero
    queue = ctx.Queue()
    proc = ctx.Process(target=measure, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"size {args[:3]} failed with exit code {proc.exitcode}")
    return result


def render(rows: list[dict[str, Any]], command: str, machine: str) -> str:
    lines = ["# ItemKNN at catalogue scale: fit, memory and scoring", "", f"Command: `{command}`", "",
             f"Machine: {machine}", "",
             "Data: `synthetic_shop` (seed 0) at each size, every interaction a training pair (binarised). Fit: "
             "`ItemKNN(k).fit`, the pruned item-item similarity. Score: `ItemKNN.forward` over every user in "
             "batches. Peak RSS: the process's peak after generating the data and after the fit.", "",
             "| users | items | interactions | k | similarity nnz | fit s | score s (all users) | users / s "
             "| peak RSS data GiB | peak RSS fit GiB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['users']:,} | {r['items']:,} | {r['interactions']:,} | {r['k']} | {r['similarity_nnz']:,} "
                     f"| {r['fit_seconds']:.2f} | {r['score_seconds']:.2f} | {r['users_per_second']:,} "
                     f"| {r['peak_rss_data_gib']:.2f} | {r['peak_rss_fit_gib']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["20000x20000x40", "100000x100000x40"],
                        help="users x items x interactions per user")
    parser.add_argument("--k", type=int, default=100, help="neighbours per item (the model config's default)")
    parser.add_argument("--eval-batch", type=int, default=256, help="users per scoring batch (data.eval_batch_size)")
    parser.add_argument("--out", required=True, help="writes <out>.md and <out>.json")
    args = parser.parse_args()
    sizes = []
    for spec in args.sizes:
        try:
            users, items, per_user = spec.split("x")
            sizes.append((int(users), int(items), float(per_user)))
        except ValueError:
            parser.error(f"--sizes {spec!r}: expected USERSxITEMSxPER_USER, e.g. 100000x100000x40")
    rows = [run_child(users, items, per_user, args.k, args.eval_batch) for users, items, per_user in sizes]
    for row in rows:
        print(row, flush=True)
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             check=True).stdout.strip()
        if subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                          check=True).stdout.strip():
            rev += " with uncommitted changes"
    except (OSError, subprocess.CalledProcessError):
        rev = "unknown"
    import torch

    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
               f"{platform.python_version()}, torch {torch.__version__}, OMP_NUM_THREADS="
               f"{os.environ.get('OMP_NUM_THREADS', 'unset')}; ecomlab from {rows[0]['ecomlab']} (checkout at {rev})")
    command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    from ecomlab.utils import atomic_write_json, atomic_write_text

    atomic_write_text(Path(f"{args.out}.md"), render(rows, command, machine))
    atomic_write_json(Path(f"{args.out}.json"), {"command": command, "machine": machine, "rows": rows})


if __name__ == "__main__":
    main()
