"""Seconds and peak memory of fine-tuning steps of the text two-tower model's sentence encoder on CPU (issue 24
asked for the cost of fine-tuning). Builds the data module and the network from the experiment's config as
``ecomlab-train`` does, then times ``loss.backward()`` and an Adam step on the first training batches, one thread.

    OMP_NUM_THREADS=1 python scripts/bench_finetune_step.py --steps 2 --out experiments/perf/finetune_step.md \\
        experiment=amazon_coldstart model=text_two_tower_pretrained model.net.finetune=true \\
        paths.data_dir=../shared/data
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from ecomlab.utils import atomic_write_json, atomic_write_text, config_dir, git_commit


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--out", required=True, help="a Markdown file; the JSON goes beside it")
    parser.add_argument("overrides", nargs="+", help="Hydra overrides, as for ecomlab-train")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=args.overrides)
    dm = instantiate(cfg.data)
    dm.setup()
    net = instantiate(cfg.model.net, **dm.dims)
    net.fit(dm.train_data())
    net.train()
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-3)
    batches = iter(dm.train_dataloader())
    steps = []
    for _ in range(args.steps):
        batch = dm.complete(next(batches))
        started = time.perf_counter()
        loss = net.loss(batch)
        forward = time.perf_counter() - started
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        steps.append({"positives": len(batch["users"]), "distinct_items": int(torch.unique(batch["pos"]).numel()),
                      "forward_s": round(forward, 1), "step_s": round(time.perf_counter() - started, 1)})
    per_epoch = len(dm.train_dataloader())
    mean_step = sum(s["step_s"] for s in steps) / len(steps)
    row = {"overrides": args.overrides, "steps": steps, "steps_per_epoch": per_epoch,
           "epoch_hours": round(mean_step * per_epoch / 3600, 2),
           "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
           "load_average": [round(x, 2) for x in os.getloadavg()], "commit": git_commit()}
    lines = [f"# Fine-tuning step cost on CPU\n\n`OMP_NUM_THREADS=1 python scripts/bench_finetune_step.py --steps "
             f"{args.steps} ... {' '.join(args.overrides)}` at {row['commit']}, {platform.machine()}, one thread, "
             f"load average {row['load_average']}, peak RSS {row['peak_rss_gb']} GB:\n",
             "| step | positives | distinct items | forward s | step s |", "|---|---|---|---|---|"]
    lines += [f"| {i} | {s['positives']} | {s['distinct_items']} | {s['forward_s']} | {s['step_s']} |"
              for i, s in enumerate(steps)]
    lines.append(f"\n{per_epoch} steps per epoch: **about {row['epoch_hours']} hours per epoch** at the mean step.\n")
    text = "\n".join(lines)
    atomic_write_text(Path(args.out), text)
    atomic_write_json(Path(args.out).with_suffix(".json"), row)
    print(text)


if __name__ == "__main__":
    main()
