"""Before and after the PyG graph layer, side by side in one run: seconds per training epoch and per evaluation
pass of the graph models on LastFM, each checkout run alternately (A B A B ...) so that a change in the
machine's load hits both alike.

Each ``--ref`` is checked out into a temporary ``git worktree`` and run with ``PYTHONPATH=<worktree>/src``
through :func:`bench_epoch_time.time_model` (``--epochs`` training epochs without validation, then one
validation and one test pass). Writes a Markdown table and the raw timings as JSON (atomically).

    OMP_NUM_THREADS=1 python scripts/bench_graph_pyg.py --refs b6489d8 16e944a --repeats 2 \\
        --models "lightgcn model.optimizer.lr=2e-3 data.num_negatives=4" \\
        "social_gnn_xsimgcl model.net.reg_weight=3e-3 data.num_negatives=4" \\
        --out experiments/perf/graph_pyg.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_epoch_time import time_model  # noqa: E402  -- a sibling script, not a package
from ecomlab.utils import atomic_write_json, atomic_write_text  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--refs", nargs=2, required=True, metavar=("BEFORE", "AFTER"))
    parser.add_argument("--models", nargs="+", required=True, help='"<model> [overrides...]" per entry')
    parser.add_argument("--experiment", default="lastfm_social")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    timings: dict[str, dict[str, list[dict[str, float]]]] = {m: {r: [] for r in args.refs} for m in args.models}
    shas = {}
    with tempfile.TemporaryDirectory() as tmp:
        trees = {}
        for ref in args.refs:
            tree = Path(tmp) / f"tree-{ref}"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), ref], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            shas[ref] = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], check=True,
                                       capture_output=True, text=True).stdout.strip()
            trees[ref] = tree
        try:
            for _ in range(args.repeats):
                for spec in args.models:
                    for ref in args.refs:  # alternate: load drifts hit both checkouts alike
                        env = {**os.environ, "PYTHONPATH": str(trees[ref] / "src")}
                        work = Path(tmp) / f"runs-{ref}"
                        timings[spec][ref].append(time_model(args.experiment, spec, args.epochs, args.data_dir,
                                                             work, env=env))
                        print(spec, ref, timings[spec][ref][-1], flush=True)
        finally:
            for tree in trees.values():
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)
    before, after = args.refs
    rows = []
    for spec in args.models:
        cells = []
        for key in ("seconds_per_epoch", "eval_seconds"):
            b, a = (statistics.median(t[key] for t in timings[spec][ref]) for ref in (before, after))
            cells += [f"{b:.2f}", f"{a:.2f}", f"{100 * (a / b - 1):+.0f}%"]
        rows.append(f"| {spec} | " + " | ".join(cells) + " |")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    text = (f"# Graph models before ({shas[before]}) and after ({shas[after]}) the PyG graph layer\n\n"
            f"`{' '.join(['python', *sys.argv])}` on {platform.machine()}, {os.cpu_count()} cores, "
            f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, 1-minute load average at the end "
            f"{load:.2f}. Median of {args.repeats} alternating runs per checkout; each run: {args.epochs} training "
            "epochs without validation, then one validation and one test pass (full ranking).\n\n"
            "| model | s/epoch before | s/epoch after | change | s/eval before | s/eval after | change |\n"
            "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    atomic_write_text(Path(args.out), text)
    atomic_write_json(Path(args.out).with_suffix(".json"), {"refs": shas, "timings": timings})
    print(text)


if __name__ == "__main__":
    main()
