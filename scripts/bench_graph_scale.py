"""LightGCN training cost against graph size: full-graph propagation vs sampled mini-batch neighbourhoods.

For each number of interactions (synthetic: ``edges / 20`` users, ``edges / 50`` items, item popularity skewed
like a shop's, each user's items drawn without repeats) and each mode, a fresh process builds the model's graph
(``fit``: the PyG HeteroData, EdgeIndex, normalisation and, when sampling, the sampler's CSC), then times
``--steps`` training steps (loss, backward, fused Adam) at ``--batch`` with one negative each. The epoch time is
the median step time times the steps of one epoch (``ceil(edges / batch)``), stated as extrapolated; peak memory
is the process's maximum resident set size. Each process runs under an address-space limit (``--mem-gb``) so that
a size that does not fit fails with an allocation error instead of taking the shared machine's memory; such a row
says so. Writes a Markdown table and JSON (atomically).

    OMP_NUM_THREADS=1 python scripts/bench_graph_scale.py --edges 1e6 1e7 --out experiments/perf/graph_scale.md
    OMP_NUM_THREADS=1 python scripts/bench_graph_scale.py --edges 5e7 --mem-gb 16 \\
        --out experiments/perf/graph_scale_50m.md
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def synthetic_interactions(n_edges: int, seed: int = 0) -> Any:
    """An ``[edges / 20, edges / 50]`` CSR matrix with ``n_edges`` distinct user-item pairs, popular items first."""
    import numpy as np
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    n_users, n_items = max(n_edges // 20, 1), max(n_edges // 50, 1)
    users = rng.integers(0, n_users, int(n_edges * 1.1))
    items = (n_items * rng.random(int(n_edges * 1.1)) ** 2).astype(np.int64)  # skewed: density 1 / (2 sqrt(x))
    key = np.unique(users * n_items + items)  # distinct pairs
    rng.shuffle(key)
    key = np.sort(key[:n_edges])
    return sp.csr_matrix((np.ones(len(key), np.float32), (key // n_items, key % n_items)), shape=(n_users, n_items))


def measure(n_edges: int, mode: str, steps: int, batch: int, caps: list[int], dim: int) -> dict[str, Any]:
    """One size and mode, in this process."""
    import numpy as np
    import torch

    from ecomlab.models.base import RecTrainData
    from ecomlab.models.lightgcn import LightGCN

    torch.manual_seed(0)
    train = synthetic_interactions(n_edges)
    n_users, n_items = train.shape
    coo = train.tocoo()
    pairs_u, pairs_i = torch.from_numpy(coo.row.astype(np.int64)), torch.from_numpy(coo.col.astype(np.int64))
    net = LightGCN(n_users, n_items, embedding_dim=dim, n_layers=len(caps),
                   num_neighbors=caps if mode == "sampled" else None)
    t0 = time.perf_counter()
    net.fit(RecTrainData(train=train))
    fit_seconds = time.perf_counter() - t0
    del train, coo
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    times = []
    for _ in range(steps + 1):  # the first step warms caches and allocators; not timed
        pick = torch.randint(0, len(pairs_u), (batch,))
        b = {"users": pairs_u[pick], "pos": pairs_i[pick], "neg": torch.randint(0, n_items, (batch, 1))}
        t = time.perf_counter()
        loss = net.loss(b)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    step = statistics.median(times[1:])
    return {"edges": n_edges, "interactions": len(pairs_u), "mode": mode, "users": n_users, "items": n_items, "fit_seconds": round(fit_seconds, 2),
            "step_seconds": round(step, 4), "steps_timed": steps,
            "epoch_seconds_extrapolated": round(step * math.ceil(len(pairs_u) / batch), 1),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}


def run_child(args: argparse.Namespace, n_edges: int, mode: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", str(n_edges), mode, "--steps", str(args.steps), "--batch",
           str(args.batch), "--dim", str(args.dim), "--num-neighbors", *map(str, args.num_neighbors)]
    limit = int(args.mem_gb * 2**30)

    def cap_memory() -> None:  # runs in the child before exec
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    proc = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=cap_memory, timeout=args.timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode == 0 and lines:
        return json.loads(lines[-1])
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1][:160]
    return {"edges": n_edges, "mode": mode, "failed": f"exit {proc.returncode}: {tail}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edges", nargs="+", type=float, default=[1e6, 1e7])
    parser.add_argument("--modes", nargs="+", default=["full", "sampled"], choices=["full", "sampled"])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--num-neighbors", nargs="+", type=int, default=[10, 10, 10])
    parser.add_argument("--mem-gb", type=float, default=16.0)
    parser.add_argument("--timeout", type=int, default=3600)
    parser.add_argument("--out")
    parser.add_argument("--child", nargs=2, metavar=("EDGES", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(int(args.child[0]), args.child[1], args.steps, args.batch, args.num_neighbors,
                                 args.dim)), flush=True)
        return
    from ecomlab.utils import atomic_write_json, atomic_write_text

    results = []
    for n_edges in args.edges:
        for mode in args.modes:
            try:
                results.append(run_child(args, int(n_edges), mode))
            except subprocess.TimeoutExpired:
                results.append({"edges": int(n_edges), "mode": mode, "failed": f"over {args.timeout} s"})
            print(results[-1], flush=True)
    rows = []
    for r in results:
        if "failed" in r:
            rows.append(f"| {r['edges']:,} | {r['mode']} | | | | | failed: {r['failed']} |")
        else:
            rows.append(f"| {r['interactions']:,} | {r['mode']} | {r['users']:,} x {r['items']:,} | {r['fit_seconds']:.1f} | "
                        f"{r['step_seconds']:.3f} | {r['epoch_seconds_extrapolated']:,.0f} | {r['peak_rss_gb']:.2f} |")
    load = os.getloadavg()[0]
    text = (f"# LightGCN training cost against graph size: full graph vs sampled neighbourhoods\n\n"
            f"`{' '.join(['python', *sys.argv])}` on {platform.machine()}, {os.cpu_count()} cores, "
            f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, 1-minute load average at the end "
            f"{load:.2f}. {len(args.num_neighbors)} layers, d={args.dim}, batch {args.batch} with one negative; "
            f"sampled caps {args.num_neighbors}; median of {args.steps} timed steps; epoch = step x "
            f"ceil(edges / batch), extrapolated, not run; memory limit {args.mem_gb:g} GiB per process.\n\n"
            "| interactions | mode | users x items | fit s | s / step | s / epoch (extrapolated) | peak RSS GiB |\n"
            "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    print(text)
    if args.out:
        atomic_write_text(Path(args.out), text)
        atomic_write_json(Path(args.out).with_suffix(".json"), results)


if __name__ == "__main__":
    main()
