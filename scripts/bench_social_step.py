"""The cost of the social models per training step against LightGCN's, at equal batch size, with a profile.

One process, one torch thread: the same training batches (negatives sampled once) go through each model's
``loss``, ``backward`` and an Adam step; the models take turns round by round so that load drifting on a shared
machine hits them alike, and each model's median step over the rounds is reported with its ratio to
LightGCN's. The last model's operators are profiled (``torch.profiler``, self CPU time) to show where its extra
time goes. Writes a Markdown table and JSON (atomically).

    OMP_NUM_THREADS=1 python scripts/bench_social_step.py --experiment lastfm_social --batch-size 2048 \\
        --data-dir ../shared/data --out experiments/perf/social_step.md

Each ``--models`` entry is ``"<model> [overrides...]"``, as in ``bench_graph_pyg.py``, e.g.
``"social_gnn_xsimgcl model.net.ssl_max_rows=null"`` (the same model without the contrastive row cap).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra import compose, initialize_config_dir

from ecomlab.utils import atomic_write_json, atomic_write_text, config_dir, git_commit, instantiate_with_dims

DEFAULT_MODELS = ("lightgcn", "social_gnn", "social_gnn_xsimgcl")


def step_times(experiment: str, models: list[str], batch_size: int, steps: int, rounds: int, data_dir: str,
               cache_dir: str, extra: list[str]) -> tuple[dict[str, list[float]], str, dict[str, int]]:
    """Milliseconds per step of each model in each round, the last model's profile table, and the data sizes."""
    base = [*([f"experiment={experiment}"] if experiment else []), f"paths.data_dir={data_dir}", f"paths.cache_dir={cache_dir}",
            f"data.batch_size={batch_size}", *extra]
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfgs = {}
        for spec in models:
            model, *overrides = spec.split()
            cfgs[spec] = compose("train", overrides=[*base, f"model={model}", *overrides])
    dm = hydra.utils.instantiate(cfgs[models[0]].data)
    dm.setup("fit")
    data = dm.train_data()
    batches = []
    for batch in dm.train_dataloader():
        batches.append(dm.complete(batch))
        if len(batches) == steps:
            break
    nets: dict[str, Any] = {}
    for name in models:
        torch.manual_seed(0)
        net = instantiate_with_dims(cfgs[name].model.net, dm.dims)
        net.fit(data)
        net.train()
        nets[name] = (net, torch.optim.Adam(net.parameters(), lr=1e-3))

    def run(name: str, part: list[dict[str, torch.Tensor]]) -> None:
        net, opt = nets[name]
        for batch in part:
            opt.zero_grad()
            net.loss(batch).backward()
            opt.step()

    for name in models:
        run(name, batches[:2])  # warm-up: first-call allocations and caches
    times: dict[str, list[float]] = {m: [] for m in models}
    for _ in range(rounds):
        for name in models:
            t0 = time.perf_counter()
            run(name, batches)
            times[name].append((time.perf_counter() - t0) / len(batches) * 1e3)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        run(models[-1], batches[: min(5, len(batches))])
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)
    return times, table, {**dm.dims, "n_train": int(data.train.nnz), "n_steps": len(batches)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="lastfm_social", help="'' for none (data from --extra)")
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), help='"<model> [overrides...]" per entry; the first is the reference')
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--cache-dir", default="logs/cache")
    parser.add_argument("--extra", nargs="*", default=[], help="overrides for every model")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    times, profile, sizes = step_times(args.experiment, args.models, args.batch_size, args.steps, args.rounds,
                                       args.data_dir, args.cache_dir, args.extra)
    ref = statistics.median(times[args.models[0]])
    rows = [{"model": m, "ms_per_step": round(statistics.median(t), 2), "rounds_ms": [round(x, 2) for x in t],
             "ratio": round(statistics.median(t) / ref, 2)} for m, t in times.items()]
    commit = git_commit()
    command = (f"OMP_NUM_THREADS=1 python scripts/bench_social_step.py --experiment {args.experiment} --models "
               f"{' '.join(args.models)} --batch-size {args.batch_size} --steps {args.steps} --rounds {args.rounds}"
               + (f" --extra {' '.join(args.extra)}" if args.extra else ""))
    lines = [f"# Training step cost of the social models ({args.experiment}, batch {args.batch_size})", "",
             f"Command: `{command}`  ", f"Commit: {commit}; {platform.machine()}, {platform.python_version()}, "
             f"torch {torch.__version__}, one thread; data {sizes}.", "",
             "A step = loss + backward + Adam step on the same batches for every model; median over the rounds.",
             "", "| model | ms per step | rounds (ms) | ratio to " + args.models[0] + " |", "|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['ms_per_step']} | {', '.join(map(str, r['rounds_ms']))} | {r['ratio']} |"
              for r in rows]
    lines += ["", f"Where {args.models[-1]}'s step goes (torch.profiler, self CPU time, 5 steps):", "", "```",
              profile.strip(), "```", ""]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, "\n".join(lines))
    atomic_write_json(out.with_suffix(".json"), {"command": command, "commit": commit, "sizes": sizes, "rows": rows})
    print("\n".join(lines[:len(lines) - len(profile.splitlines()) - 4]))


if __name__ == "__main__":
    main()
