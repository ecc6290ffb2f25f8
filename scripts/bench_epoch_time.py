"""Seconds per training epoch and per evaluation pass of each model of a study, on a quiet machine.

Each model trains for ``--epochs`` epochs without validation (so the fit time is training only), then the
runner's validation and test passes give the evaluation time. Writes a Markdown table (atomically).

    OMP_NUM_THREADS=1 python scripts/bench_epoch_time.py --experiment lastfm_social \\
        --models "bpr data.num_negatives=4" "neumf data.num_negatives=4" lightgcn \\
        "social_gnn_xsimgcl model.net.reg_weight=1e-3" --out experiments/lastfm_social/timing.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from ecomlab.utils import atomic_write_text


def time_model(experiment: str, spec: str, epochs: int, data_dir: str, workdir: Path,
               env: dict[str, str] | None = None) -> dict[str, float]:
    """Train ``spec`` (``"<model> [overrides...]"``) in ``workdir``; ``env`` replaces the environment (e.g. a
    ``PYTHONPATH`` naming another checkout's ``src``, as ``bench_graph_pyg.py`` does)."""
    model, *overrides = spec.split()
    run_dir = workdir / model
    train = Path(sys.executable).parent / "ecomlab-train"  # the console script of this interpreter's install
    cmd = [str(train), f"experiment={experiment}", f"paths.data_dir={data_dir}", f"model={model}",
           f"trainer.max_epochs={epochs}", f"trainer.check_val_every_n_epoch={epochs + 1}", "callbacks=none",
           "eval.print_table=false", f"hydra.run.dir={run_dir}", *overrides]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    record = json.loads((run_dir / "metrics.json").read_text())
    return {"seconds_per_epoch": record["fit_seconds"] / epochs,
            "eval_seconds": record["eval_seconds"] / 2}  # one validation + one test pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--models", nargs="+", required=True, help='"<model> [overrides...]" per entry')
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.models:
            timing = time_model(args.experiment, spec, args.epochs, args.data_dir, Path(tmp))
            rows.append(f"| {spec} | {timing['seconds_per_epoch']:.2f} | {timing['eval_seconds']:.2f} |")
            print(rows[-1], flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    text = (f"# {args.experiment}: seconds per epoch and per evaluation pass\n\n"
            f"`{' '.join(['python', *sys.argv])}` on {platform.machine()}, {os.cpu_count()} cores, "
            f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, 1-minute load average at the end "
            f"{load:.2f}. Training epochs: mean of {args.epochs} (no validation inside); evaluation: mean of "
            "one validation and one test pass (full ranking over all items).\n\n"
            "| model | seconds / epoch | seconds / evaluation pass |\n|---|---|---|\n" + "\n".join(rows) + "\n")
    atomic_write_text(Path(args.out), text)


if __name__ == "__main__":
    main()
