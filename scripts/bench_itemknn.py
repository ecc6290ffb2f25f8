"""Benchmark: ItemKNN at catalogue scale (fit seconds, peak memory, full-ranking scoring speed).

Each size runs in a fresh process: ``synthetic_shop`` generates ``users x items`` with ``per_user`` interactions
per user (its popularity skew: a few items are bought by most users, most items by a handful), the
interactions become the ``[U, N]`` training matrix, and then

1. **fit** -- ``ItemKNN(k).fit``: the pruned item-item similarity (the closed-form "training");
2. **score** -- ``ItemKNN.forward`` over every user in batches of ``--eval-batch`` users (the score matrix an
   evaluation pass ranks; top-k and metrics are the same for every model and not timed here).

Memory: the process's peak resident set (``ru_maxrss``) after generation and after the fit; their difference is
what the fit added on top of the data.

With ``--recbole`` (the ``bench`` extra), RecBole 1.2.1's ``ComputeSimilarity`` (what its ItemKNN runs when it is
built) prunes the same matrix with the same ``k`` and ``shrink`` in the same process, for sizes up to
``--recbole-max-items`` (it loops over items in Python and multiplies the whole matrix by each dense block of 100
columns, so it grows with ``items x interactions``). Its result is checked against ecomlab's: the largest
difference between the two matrices' column sums (equal when every item kept the same neighbour values).

    OMP_NUM_THREADS=1 python scripts/bench_itemknn.py --recbole --out experiments/perf/itemknn

The same script measures another checkout's ItemKNN when that tree comes first on ``PYTHONPATH``
(``--code-label`` names it in the table).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

GIB = 1024**3

# the process helpers of the data-scale benchmark, loaded from the sibling file (scripts/ is not a package)
_spec = importlib.util.spec_from_file_location("bench_data_scale", Path(__file__).resolve().parent / "bench_data_scale.py")
assert _spec is not None and _spec.loader is not None
_data_scale = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_data_scale)
_maxrss, run_child = _data_scale._maxrss, _data_scale.run_child  # peak RSS in bytes; one call in a fresh process


def measure(users: int, items: int, per_user: float, k: int, shrink: float, eval_batch: int, recbole: bool,
            queue: Any) -> None:
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
    train.data[:] = 1.0  # repeat purchases summed, then binarised: both frameworks get the same 0/1 matrix
    del frame
    generate = time.perf_counter() - t0
    rss_data = _maxrss()
    model = ItemKNN(train.shape[1], k=k, shrink=shrink)
    t0 = time.perf_counter()
    model.fit(RecTrainData(train=train))
    fit = time.perf_counter() - t0
    rss_fit = _maxrss()
    t0 = time.perf_counter()
    with torch.no_grad():
        for start in range(0, train.shape[0], eval_batch):
            model(torch.arange(start, min(start + eval_batch, train.shape[0])))
    score = time.perf_counter() - t0
    peer: dict[str, Any] = {"recbole_fit_seconds": None, "recbole_max_column_sum_difference": None}
    if recbole:
        from recbole.model.general_recommender.itemknn import ComputeSimilarity

        t0 = time.perf_counter()
        _, w_recbole = ComputeSimilarity(train, topk=k, shrink=shrink, method="item").compute_similarity()
        peer["recbole_fit_seconds"] = round(time.perf_counter() - t0, 2)
        diff = np.abs(np.asarray(w_recbole.sum(axis=0)) - np.asarray(model.similarity.sum(axis=0))).max()
        peer["recbole_max_column_sum_difference"] = float(f"{diff:.2e}")
    queue.put({**peer, "users": int(train.shape[0]), "items": int(train.shape[1]), "interactions": int(train.nnz),
               "k": k, "shrink": shrink, "similarity_nnz": int(model.similarity.nnz), "generate_seconds": round(generate, 2),
               "fit_seconds": round(fit, 2), "score_seconds": round(score, 2),
               "users_per_second": round(train.shape[0] / score), "peak_rss_data_gib": round(rss_data / GIB, 2),
               "peak_rss_fit_gib": round(rss_fit / GIB, 2),
               "ecomlab": str(Path(ecomlab.__file__).resolve().parent)})


def render(rows: list[dict[str, Any]], command: str, machine: str, code: str) -> str:
    lines = ["# ItemKNN at catalogue scale: fit, memory and scoring", "", f"Command: `{command}`", "",
             f"Machine: {machine}", "", f"Code: {code}", "",
             "Data: `synthetic_shop` (seed 0) at each size, every user-item pair a training pair (repeat purchases count once). Fit: "
             "`ItemKNN(k).fit`, the pruned item-item similarity. Score: `ItemKNN.forward` over every user in "
             "batches. Peak RSS: the process's peak after generating the data and after the fit.", "",
             "RecBole: `ComputeSimilarity(train, topk=k, shrink).compute_similarity('item')` on the same matrix "
             "(- where not run); column sums: the largest difference between the two pruned matrices' column sums.",
             "",
             "| users | items | user-item pairs | k | shrink | similarity nnz | fit s | score s (all users) | users / s "
             "| peak RSS data GiB | peak RSS fit GiB | RecBole fit s | fit ratio | column sums |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        theirs = r["recbole_fit_seconds"]
        peer = (f"{theirs:.2f} | {r['fit_seconds'] / theirs:.3f} | {r['recbole_max_column_sum_difference']:.1e}"
                if theirs else "- | - | -")
        lines.append(f"| {r['users']:,} | {r['items']:,} | {r['interactions']:,} | {r['k']} | {r['shrink']:g} "
                     f"| {r['similarity_nnz']:,} | {r['fit_seconds']:.2f} | {r['score_seconds']:.2f} "
                     f"| {r['users_per_second']:,} | {r['peak_rss_data_gib']:.2f} | {r['peak_rss_fit_gib']:.2f} "
                     f"| {peer} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["20000x20000x40", "100000x100000x40"],
                        help="users x items x interactions per user")
    parser.add_argument("--k", type=int, default=100, help="neighbours per item (the model config's default)")
    parser.add_argument("--shrink", type=float, default=10.0, help="similarity shrinkage (the model config's default)")
    parser.add_argument("--eval-batch", type=int, default=256, help="users per scoring batch (data.eval_batch_size)")
    parser.add_argument("--recbole", action="store_true", help="also time RecBole 1.2.1's similarity (bench extra)")
    parser.add_argument("--recbole-max-items", type=int, default=20_000, help="largest catalogue RecBole runs on")
    parser.add_argument("--code-label", help="what ecomlab code is measured (default: this checkout's commit)")
    parser.add_argument("--out", required=True, help="writes <out>.md and <out>.json")
    args = parser.parse_args()
    sizes = []
    for spec in args.sizes:
        try:
            users, items, per_user = spec.split("x")
            sizes.append((int(users), int(items), float(per_user)))
        except ValueError:
            parser.error(f"--sizes {spec!r}: expected USERSxITEMSxPER_USER, e.g. 100000x100000x40")
    rows = [run_child(measure, users, items, per_user, args.k, args.shrink, args.eval_batch,
                      args.recbole and items <= args.recbole_max_items) for users, items, per_user in sizes]
    for row in rows:
        print(row, flush=True)
    from ecomlab.utils import atomic_write_json, atomic_write_text, git_commit

    commit = git_commit() or "unknown"
    rev = commit[:7] + (" with uncommitted changes" if commit.endswith("-dirty") else "")
    import torch

    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
               f"{platform.python_version()}, torch {torch.__version__}, OMP_NUM_THREADS="
               f"{os.environ.get('OMP_NUM_THREADS', 'unset')}")
    code = f"ecomlab from {rows[0]['ecomlab']}: {args.code_label or f'this checkout at {rev}'}"
    command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    atomic_write_text(Path(f"{args.out}.md"), render(rows, command, machine, code))
    atomic_write_json(Path(f"{args.out}.json"), {"command": command, "machine": machine, "code": code, "rows": rows})


if __name__ == "__main__":
    main()
