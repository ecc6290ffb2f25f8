"""Profile one full-ranking validation pass of a recommender on LastFM through Lightning's ``Trainer.validate``
(the data module and task built as ``ecomlab-train`` builds them, untrained weights): seconds per pass over
repeats, the cProfile top functions and torch.profiler's top CPU ops.

    OMP_NUM_THREADS=1 python scripts/profile_eval.py --model bpr
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import io
import pstats
import sys
import time
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch

from ecomlab.train import build_task

# the benchmark's own config composition, loaded from the sibling file (scripts/ is not a package)
_spec = importlib.util.spec_from_file_location("bench_recbole", Path(__file__).resolve().parent / "bench_recbole.py")
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bench  # its dataclasses look their module up there
_spec.loader.exec_module(bench)
MODELS, compose_train_cfg, ecomlab_overrides = bench.MODELS, bench.compose_train_cfg, bench.ecomlab_overrides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="bpr", choices=sorted(MODELS))
    parser.add_argument("--data", default="lastfm-hetrec2011")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--cache-dir", default=".cache/ecomlab")
    parser.add_argument("--workdir", default="/tmp/ecomlab_profile_eval")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cfg = compose_train_cfg(args.data, args.model, [*ecomlab_overrides(MODELS[args.model], 1, 2, 0), "logger=csv"],
                            Path(args.workdir), args.data_dir, args.cache_dir)
    pl.seed_everything(0)
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("fit")
    task = build_task(cfg.model, datamodule)
    task.prepare(datamodule.train_data())
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                         enable_model_summary=False)
    trainer.validate(task, datamodule=datamodule, verbose=False)  # warm-up
    seconds = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        trainer.validate(task, datamodule=datamodule, verbose=False)
        seconds.append(time.perf_counter() - t0)
    print(f"validation pass seconds ({args.model}, {args.data}): {', '.join(f'{s:.3f}' for s in sorted(seconds))}")
    profiler = cProfile.Profile()
    profiler.enable()
    trainer.validate(task, datamodule=datamodule, verbose=False)
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(15)
    print(text.getvalue())
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        trainer.validate(task, datamodule=datamodule, verbose=False)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
