"""GPU benchmark: training epochs, full-ranking evaluation and NeuMF throughput on the issue-8 workload.

    python scripts/bench_gpu.py --out experiments/perf/gpu.md            # one GPU, under 8 minutes on an H100
    python scripts/bench_gpu.py --quick --device cpu --out /tmp/gpu.md   # a tiny smoke run anywhere
    python scripts/bench_gpu.py --profile --out experiments/perf/gpu.md  # + where the time goes: gpu_profile.md

Workload: a random user-item graph of ``--users`` x ``--items`` with ``--interactions`` pairs (item popularity
Zipf-like, users uniform) plus ``--social`` random friend edges, split per user 80/10/10 by ecomlab's
``RatioSplit``; 64-dim embeddings, 3 layers. Every figure goes through ecomlab's real path: ``RecDataModule``
(index batches, negatives and masks made on the device), the ``RankingTask`` LightningModule and a Lightning
``Trainer`` (``bf16-mixed`` on CUDA). Rows:

* LightGCN / social GNN: seconds per training epoch at ``--gnn-batch`` (no validation inside the epoch);
* the text two-tower (scratch encoder; 8 random words per item from a 5,000-word vocabulary): seconds per epoch
  at ``--text-batch`` in each form of its training towers, every item and history sum at fixed sizes (the
  default off the CPU, no read-backs) and the batch's own items and histories sized on the host (the CPU's);
* NeuMF: training samples per second (a positive and each of its negatives are samples) at ``--mlp-batch``;
* full ranking: users per second of ``Trainer.validate`` over every validation user (fp32 score matrix,
  masks built on the device, top-20, the ranking metrics; once more for LightGCN with ``rank_topk``'s
  block-maximum top-k forced, which the CPU uses and the GPU has not been measured with), plus the bare kernel
  (scores + ``rank_topk``) on ``--eval-items`` items with fp32 and with bf16 scores (bf16 ties take the slower
  exact tie path).

Peak GPU memory is ``torch.cuda.max_memory_allocated`` per row. The table is written atomically.

``--profile`` then runs ``torch.profiler`` over ``--profile-steps`` training steps of LightGCN and of the social
GNN (at the first ``--gnn-batch``) and over one ``Trainer.validate`` of LightGCN, and writes the top operators by
device time (by CPU time without a GPU) next to the table, as ``<out>_profile.md``: a session with a GPU gets
the timings and the breakdown that decides the next change from one run.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch

import ecomlab.models.base as ecomlab_base
from ecomlab.data.bundle import DatasetBundle, build_bundle
from ecomlab.data.rec_datamodule import RecDataModule
from ecomlab.data.splits import RatioSplit
from ecomlab.models.base import rank_topk
from ecomlab.models.lightgcn import LightGCN
from ecomlab.models.neumf import NeuMF
from ecomlab.models.social_gnn import SocialGNN
from ecomlab.models.text_two_tower import TextTwoTower
from ecomlab.tasks.ranking import RankingTask
from ecomlab.utils import atomic_write_json, atomic_write_text


class RandomGraph:
    """An in-memory source: Zipf-like item popularity, uniform users, uniform friend pairs."""

    def __init__(self, n_users: int, n_items: int, n_interactions: int, n_social: int, seed: int = 0) -> None:
        self.n_users, self.n_items, self.n_interactions, self.n_social = n_users, n_items, n_interactions, n_social
        self.seed = seed

    def load(self) -> DatasetBundle:
        rng = np.random.default_rng(self.seed)
        popularity = 1.0 / np.arange(1, self.n_items + 1) ** 0.8
        # Draw extra pairs, drop repeats, keep the first n_interactions distinct ones.
        n_draw = int(self.n_interactions * 1.3)
        users = rng.integers(0, self.n_users, n_draw)
        items = rng.choice(self.n_items, n_draw, p=popularity / popularity.sum())
        keys = np.unique(users.astype(np.int64) * self.n_items + items)
        keys = rng.permutation(keys)[: self.n_interactions]
        frame = pd.DataFrame({"user_id": keys // self.n_items, "item_id": keys % self.n_items})
        a, b = rng.integers(0, self.n_users, (2, self.n_social))
        social = pd.DataFrame({"user_id": a[a != b], "friend_id": b[a != b]})
        words = rng.integers(0, 5000, (self.n_items, 8))  # [N, 8] word ids
        text = pd.DataFrame({"item_id": np.arange(self.n_items),
                             "text": [" ".join(f"w{w}" for w in row) for row in words]})
        return build_bundle("random_graph", frame, item_text=text, social=social)


class EpochTimer(pl.Callback):
    """Wall seconds of each training epoch, the device synchronised at both ends."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        _sync()
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        _sync()
        self.seconds.append(time.perf_counter() - self._t0)


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib() -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")


def _trainer(args: argparse.Namespace, epochs: int, callbacks: list[pl.Callback]) -> pl.Trainer:
    on_gpu = args.device == "cuda"
    return pl.Trainer(accelerator="gpu" if on_gpu else "cpu", devices=1, precision="bf16-mixed" if on_gpu else "32",
                      max_epochs=epochs, limit_val_batches=0, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks,
                      num_sanity_val_steps=0)


def _task(net: torch.nn.Module, lr: float) -> RankingTask:
    from functools import partial

    # fused Adam, as every model config of ecomlab sets it
    return RankingTask(net, ks=(10, 20), metrics=("recall", "ndcg"),
                       optimizer=partial(torch.optim.Adam, lr=lr, fused=True))


def time_training(name: str, net: torch.nn.Module, dm: RecDataModule, args: argparse.Namespace,
                  batch_size: int, num_negatives: int) -> dict[str, Any]:
    dm.batch_size, dm.num_negatives, dm.sampler = batch_size, num_negatives, None
    task = _task(net, 1e-3)
    task.prepare(dm.train_data())
    timer = EpochTimer()
    _reset_peak()
    _trainer(args, args.epochs, [timer]).fit(task, datamodule=dm)
    n_pos = dm.train_csr.nnz
    best = min(timer.seconds[1:] or timer.seconds)  # the first epoch carries kernel warm-up
    return {"row": name, "batch": batch_size, "epochs_timed": timer.seconds, "seconds_per_epoch": best,
            "samples_per_second": n_pos * (1 + num_negatives) / best, "peak_gib": _peak_gib(), "task": task}


@contextmanager
def towers_form(compact: bool) -> Iterator[None]:
    """``TextTwoTower.towers`` in the compact (host-sized) or the fixed-size form inside the block."""
    original = TextTwoTower.towers
    TextTwoTower.towers = functools.partialmethod(original, compact=compact)  # type: ignore[method-assign]
    try:
        yield
    finally:
        TextTwoTower.towers = original  # type: ignore[method-assign]


@contextmanager
def topk_rule(blockwise: bool | None) -> Iterator[None]:
    """``rank_topk`` with the block-maximum top-k forced on (``True``) or off (``False``) inside the block; ``None``
    keeps ``largest``'s own rule (block maxima on CPU only, until a GPU measurement says otherwise)."""
    original = ecomlab_base.largest
    if blockwise is not None:
        ecomlab_base.largest = lambda scores, k, _rule=None: original(scores, k, blockwise)
    try:
        yield
    finally:
        ecomlab_base.largest = original


def time_validation(name: str, task: RankingTask, dm: RecDataModule, args: argparse.Namespace,
                    blockwise: bool | None = None) -> dict[str, Any]:
    dm.eval_batch_size = args.eval_batch
    trainer = _trainer(args, 1, [])
    trainer.limit_val_batches = 1.0
    with topk_rule(blockwise):
        trainer.validate(task, datamodule=dm, verbose=False)  # warm-up (and the cached propagation)
        _reset_peak()
        _sync()
        t0 = time.perf_counter()
        metrics = trainer.validate(task, datamodule=dm, verbose=False)[0]
        _sync()
        seconds = time.perf_counter() - t0
    n_users = len(dm.eval_dataset("val"))
    return {"row": name, "users": n_users, "seconds": seconds, "users_per_second": n_users / seconds,
            "peak_gib": _peak_gib(), "val/ndcg@10": metrics.get("val/ndcg@10")}


def time_kernel(args: argparse.Namespace, dtype: torch.dtype, blockwise: bool | None = None,
                plain: bool = False) -> dict[str, Any]:
    """Bare score matrix + ecomlab's deterministic top-20 (``rank_topk``) over ``--eval-items`` items, all users;
    ``blockwise`` forces or forbids the block-maximum top-k (``ecomlab.models.base.largest``). ``plain``: the
    issue's reference instead, ``torch.topk(scores, 20)`` with no tie policy, on the same machine."""
    device = torch.device(args.device)
    users = torch.randn(args.users, 64, device=device, dtype=dtype)
    items = torch.randn(args.eval_items, 64, device=device, dtype=dtype)

    def run() -> None:
        for start in range(0, args.users, args.eval_batch):
            scores = users[start:start + args.eval_batch] @ items.T  # [B, d] @ [d, N] -> [B, N]
            if plain:
                torch.topk(scores, 20, dim=1)
            else:
                rank_topk(scores, 20, blockwise=blockwise)

    run()
    _reset_peak()
    _sync()
    t0 = time.perf_counter()
    run()
    _sync()
    seconds = time.perf_counter() - t0
    name = {torch.bfloat16: "bf16", torch.float32: "fp32 (TF32 matmul)"}[dtype]
    how = {None: "", True: ", block-maximum top-k", False: ", torch.topk"}[blockwise]
    what = "plain `torch.topk` (the issue's reference, no tie policy)" if plain else f"rank_topk{how}"
    return {"row": f"kernel: {name} scores + top-20, {what}, {args.eval_items:,} items", "users": args.users,
            "seconds": seconds, "users_per_second": args.users / seconds, "peak_gib": _peak_gib()}


def _op_table(prof: torch.profiler.profile, on_gpu: bool, rows: int) -> str:
    averages = prof.key_averages()
    return averages.table(sort_by="self_device_time_total" if on_gpu else "self_cpu_time_total", row_limit=rows)


def _profiled(run: str, work: Callable[[], Any], args: argparse.Namespace) -> dict[str, Any]:
    """``work()`` under ``torch.profiler`` (CUDA kernels too on a GPU): wall seconds and the operator table."""
    on_gpu = args.device == "cuda"
    activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if on_gpu else [])
    with torch.profiler.profile(activities=activities) as prof:
        t0 = time.perf_counter()
        work()
        _sync()
        seconds = time.perf_counter() - t0
    return {"run": run, "seconds": seconds, "table": _op_table(prof, on_gpu, args.profile_rows)}


def profile_runs(tasks: dict[str, RankingTask], dm: RecDataModule, args: argparse.Namespace) -> list[dict[str, Any]]:
    """``torch.profiler`` over ``--profile-steps`` training steps of LightGCN and the social GNN through
    ``Trainer.fit`` (kernels warm from the timed rows), and over one ``Trainer.validate`` of LightGCN."""
    batch = args.gnn_batch[0]
    dm.batch_size, dm.num_negatives, dm.sampler = batch, 1, None
    out = []
    for name in ("LightGCN", "social GNN"):
        trainer = _trainer(args, 1, [])
        trainer.limit_train_batches = args.profile_steps
        out.append(_profiled(f"{name}: Trainer.fit, {args.profile_steps} steps at batch {batch:,}",
                             lambda: trainer.fit(tasks[name], datamodule=dm), args))  # noqa: B023 (called at once)
    dm.eval_batch_size = args.eval_batch
    trainer = _trainer(args, 1, [])
    trainer.limit_val_batches = 1.0
    out.append(_profiled(f"LightGCN: Trainer.validate, {len(dm.eval_dataset('val')):,} users in batches of "
                         f"{args.eval_batch:,}", lambda: trainer.validate(tasks["LightGCN"], datamodule=dm,
                                                                          verbose=False), args))
    return out


def render_profile(runs: list[dict[str, Any]], header: list[str], on_gpu: bool) -> str:
    """The profile tables under ``header`` (the benchmark table's command and device lines)."""
    order = "self device (GPU) time" if on_gpu else "self CPU time (no GPU: device columns are empty)"
    lines = ["# Where the GPU benchmark's time goes (issue 8)", "", *header,
             f"Each run under `torch.profiler` (which adds host overhead, so its seconds exceed the table's); "
             f"operators by {order}.", ""]
    for run in runs:
        lines += [f"## {run['run']}", "", f"{run['seconds']:.3f} s under the profiler.", "", "```",
                  run["table"].strip(), "```", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--interactions", type=int, default=5_000_000)
    parser.add_argument("--social", type=int, default=1_000_000)
    parser.add_argument("--eval-items", type=int, default=100_000)
    parser.add_argument("--gnn-batch", type=int, nargs="+", default=[8192, 65536])
    parser.add_argument("--mlp-batch", type=int, default=65536)
    parser.add_argument("--text-batch", type=int, default=8192)
    parser.add_argument("--eval-batch", type=int, default=8192)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of every row")
    parser.add_argument("--profile", action="store_true",
                        help="also profile training steps and a validation pass into <out>_profile.md")
    parser.add_argument("--profile-steps", type=int, default=20, help="training steps per profiled run")
    parser.add_argument("--profile-rows", type=int, default=25, help="operators per profile table")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.quick:
        args.users, args.items, args.interactions, args.social, args.eval_items = 2000, 1000, 40_000, 5000, 2000
        args.gnn_batch, args.mlp_batch, args.eval_batch, args.profile_steps = [4096], 8192, 512, 3
        args.text_batch = 1024
    torch.set_float32_matmul_precision("high")
    pl.seed_everything(0)

    t0 = time.perf_counter()
    dm = RecDataModule(RandomGraph(args.users, args.items, args.interactions, args.social), RatioSplit(seed=0))
    dm.setup()
    data_seconds = time.perf_counter() - t0
    n_u, n_i = dm.dims["n_users"], dm.dims["n_items"]
    print(f"data: {n_u} users, {n_i} items, {dm.train_csr.nnz} train pairs, setup {data_seconds:.1f} s", flush=True)

    rows: list[dict[str, Any]] = []
    tasks: dict[str, RankingTask] = {}
    for batch in args.gnn_batch:
        for name, net in (("LightGCN", LightGCN(n_u, n_i, 64, 3)), ("social GNN", SocialGNN(n_u, n_i, 64, 3))):
            row = time_training(f"{name} epoch, batch {batch:,}", net, dm, args, batch, 1)
            tasks[name] = row.pop("task")
            rows.append(row)
            print(row, flush=True)
    row = time_training(f"NeuMF epoch, batch {args.mlp_batch:,}, 4 negatives",
                        NeuMF(n_u, n_i, embedding_dim=64, mlp_layers=[128, 64, 32]), dm, args, args.mlp_batch, 4)
    tasks["NeuMF"] = row.pop("task")
    rows.append(row)
    print(row, flush=True)
    evals = [time_validation(f"Trainer.validate, {name}, {n_i:,} items", tasks[name], dm, args)
             for name in ("LightGCN", "NeuMF")]
    evals.append(time_validation(f"Trainer.validate, LightGCN, {n_i:,} items, block-maximum top-k forced",
                                 tasks["LightGCN"], dm, args, blockwise=True))
    evals += [time_kernel(args, torch.bfloat16, plain=True), time_kernel(args, torch.float32, plain=True),
              time_kernel(args, torch.float32, blockwise=False), time_kernel(args, torch.float32, blockwise=True),
              time_kernel(args, torch.bfloat16)]
    for row in evals:
        print(row, flush=True)
    # Last, after the targets' rows: which form of the text two-tower's towers a GPU should run by default.
    for compact, form in ((False, "every item and history, fixed sizes"), (True, "the batch's, sized on the host")):
        name = f"text two-tower epoch ({form}), batch {args.text_batch:,}"
        try:
            with towers_form(compact):
                row = time_training(name, TextTwoTower(n_u, n_i, embedding_dim=64), dm, args, args.text_batch, 1)
            row.pop("task")
        except Exception as err:  # noqa: BLE001 - a comparison row: its failure must not lose the rows above
            row = {"row": name, "batch": args.text_batch, "error": f"{type(err).__name__}: {err}",
                   "seconds_per_epoch": float("nan"), "samples_per_second": float("nan"), "peak_gib": float("nan")}
        rows.append(row)
        print(row, flush=True)

    device = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or platform.machine()
    header = [f"Command: `{' '.join(['python', *sys.argv])}`", "",
              f"Device: {device}; torch {torch.__version__}, Lightning {pl.__version__}; precision "
              f"{'bf16-mixed' if args.device == 'cuda' else '32'}; {os.cpu_count()} host cores.", ""]
    lines = [
        "# GPU benchmark (issue 8)", "", *header,
        f"Workload: {n_u:,} users, {n_i:,} items, {dm.train_csr.nnz:,} training pairs (80% of "
        f"{args.interactions:,}), {args.social:,} random friend pairs; 64-dim embeddings, 3 layers. Data set-up "
        f"(generate, validate, split) {data_seconds:.1f} s, not in the rows. Epoch rows: the fastest of "
        f"{args.epochs} epochs (the first carries warm-up); each epoch goes through `Trainer.fit` with negatives "
        "sampled on the device.", "",
        "| training | batch | seconds / epoch | samples / s | peak GPU GiB |", "|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['row']} | {r['batch']:,} | failed: {r['error']} | | |")
            continue
        lines.append(f"| {r['row']} | {r['batch']:,} | {r['seconds_per_epoch']:.2f} | "
                     f"{r['samples_per_second'] / 1e6:.1f} M | {r['peak_gib']:.2f} |")
    lines += ["", "| full-ranking evaluation | users | seconds | users / s | peak GPU GiB |", "|---|---|---|---|---|"]
    for r in evals:
        lines.append(f"| {r['row']} | {r['users']:,} | {r['seconds']:.3f} | {r['users_per_second'] / 1e6:.2f} M | "
                     f"{r['peak_gib']:.2f} |")
    out = Path(args.out)
    atomic_write_text(out, "\n".join(lines) + "\n")
    atomic_write_json(out.with_suffix(".json"), {"device": device, "args": vars(args), "data_seconds": data_seconds,
                                                 "training": rows, "evaluation": evals})
    print("\n".join(lines))
    if args.profile:  # after the table is safely written
        profile_out = out.with_name(f"{out.stem}_profile.md")
        atomic_write_text(profile_out, render_profile(profile_runs(tasks, dm, args), header, args.device == "cuda"))
        print(f"profile: {profile_out}")


if __name__ == "__main__":
    main()
