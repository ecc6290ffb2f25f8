"""Benchmark: the recommendation data pipeline at scale (seconds and peak memory per stage).

``synthetic_shop`` is generated at ``--n-interactions`` / ``--n-items`` (default 20 million and 200,000) and
written as a parquet file with raw string ids, as a shop's own export would be (``data=files``). A fresh
process then runs the pipeline a user's data goes through, stage by stage:

1. **load** -- ``ecomlab.data.io.read_table`` of the interactions file;
2. **validate** -- ``build_bundle`` (column, id, weight and timestamp checks, duplicate drop, id remapping);
3. **k-core** -- ``Preprocess(user_k_core=5, item_k_core=5)`` iterated to its fixed point, re-indexing;
4. **split ratio** -- ``RatioSplit((0.8, 0.1, 0.1))``, per user at random;
5. **split temporal** -- ``TemporalSplit(ratios=(0.8, 0.1, 0.1))``, global time cut-offs;
6. **cache write** -- the cache key (SHA-256 of the input file and settings) and ``save_bundle`` into a
   temporary directory published by rename, what ``load_bundle`` does on a miss;
7. **cache read** -- ``read_bundle`` of that entry, what ``load_bundle`` does on a hit.

Generation runs in its own process first and is reported but not counted in the pipeline total (a user's
real data never goes through it). Memory: the peak resident set (``ru_maxrss``) of each process, plus the
highest RSS a 5 ms psutil sampler saw during each stage (the sampler runs in a thread, so a stage that holds
the GIL for long may be under-sampled; the process peak is exact).

    OMP_NUM_THREADS=1 nice -n 5 python scripts/bench_data_scale.py --out experiments/perf/data_scale
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import queue as queue_module
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

GIB = 1024**3


class Sampler:
    """Highest RSS seen while each stage runs (a daemon thread polling psutil)."""

    def __init__(self, interval: float = 0.005) -> None:
        import psutil

        self.process = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)

    def reset(self) -> int:
        """The peak since the last reset; restarts from the current RSS."""
        peak = max(self.peak, self.process.memory_info().rss)
        self.peak = self.process.memory_info().rss
        return peak

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _maxrss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _cpu() -> float:
    """CPU seconds of this process so far: on a shared machine, wall seconds also count others' work."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def generate(args: dict[str, Any], path: str, queue: Any) -> None:
    """Child process: generate the shop and write its interactions with raw string ids."""
    from ecomlab.data.synthetic import SyntheticShop

    t0 = time.perf_counter()
    shop = SyntheticShop(n_users=args["n_users"], n_items=args["n_items"],
                         interactions_per_user=args["interactions_per_user"], seed=args["seed"])
    raw = shop.frames()["interactions"]
    seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    raw.to_parquet(path, index=False)
    queue.put({"generate": {"seconds": seconds, "cpu_seconds": _cpu(), "rows": len(raw), "peak_rss": _maxrss(),
                            "write_seconds": time.perf_counter() - t1}})


def pipeline(path: str, cache_dir: str, queue: Any) -> None:
    """Child process: the staged pipeline; puts one record per stage on ``queue``."""
    from ecomlab.data.builtin import FileSource
    from ecomlab.data.bundle import build_bundle
    from ecomlab.data.cache import _publish, cache_key, read_bundle, save_bundle
    from ecomlab.data.io import read_table
    from ecomlab.data.preprocess import Preprocess
    from ecomlab.data.splits import RatioSplit, TemporalSplit

    sampler = Sampler()
    out: dict[str, Any] = {}
    t_start = time.perf_counter()

    cpu = [_cpu()]

    def stage(name: str, t0: float, **extra: Any) -> None:
        cpu.append(_cpu())
        out[name] = {"seconds": time.perf_counter() - t0, "cpu_seconds": cpu[-1] - cpu[-2],
                     "stage_peak_rss": sampler.reset(), "process_peak_rss": _maxrss(), **extra}

    t0 = time.perf_counter()
    frame = read_table(path)
    stage("load", t0, rows=len(frame))
    t0 = time.perf_counter()
    bundle = build_bundle("synthetic_shop", frame, files={"interactions": path})
    del frame
    stage("validate", t0, users=bundle.n_users, items=bundle.n_items)
    preprocess = Preprocess(user_k_core=5, item_k_core=5)
    t0 = time.perf_counter()
    bundle = preprocess(bundle)
    stage("k_core", t0, rows=len(bundle.interactions), users=bundle.n_users, items=bundle.n_items,
          iterations=bundle.meta["preprocess"]["steps"].get("k_core_iterations"))
    t0 = time.perf_counter()
    split = RatioSplit((0.8, 0.1, 0.1), seed=0)(bundle.interactions, bundle.has_timestamps)
    stage("split_ratio", t0, **split.sizes())
    del split
    t0 = time.perf_counter()
    split = TemporalSplit(ratios=(0.8, 0.1, 0.1))(bundle.interactions, bundle.has_timestamps)
    stage("split_temporal", t0, **split.sizes())
    del split
    t0 = time.perf_counter()
    source = FileSource(interactions=path, data_dir="/")
    key = cache_key(source, preprocess)
    assert key is not None
    final = Path(cache_dir) / f"FileSource-{key[:20]}"
    tmp = Path(cache_dir) / f".tmp-{final.name}"
    save_bundle(bundle, tmp)
    published = _publish(tmp, final)
    stage("cache_write", t0, published=published)
    n_rows = len(bundle.interactions)
    del bundle
    t0 = time.perf_counter()
    cached = read_bundle(final)
    assert len(cached.interactions) == n_rows
    stage("cache_read", t0)
    sampler.stop()
    out["total"] = {"seconds": time.perf_counter() - t_start, "cpu_seconds": _cpu() - cpu[0],
                    "process_peak_rss": _maxrss()}
    queue.put(out)


def run_child(target: Any, *args: Any) -> dict[str, Any]:
    ctx = mp.get_context("spawn")  # a fresh interpreter: its ru_maxrss is this stage's alone
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    while True:  # a child that dies (an exception, the OOM killer) puts nothing: do not wait for it forever
        try:
            result = queue.get(timeout=5)
            break
        except queue_module.Empty:
            if not proc.is_alive():
                raise RuntimeError(f"{target.__name__} exited with code {proc.exitcode}") from None
    proc.join()
    return result


def render(result: dict[str, Any], command: str, machine: str) -> str:
    gen, stages = result["generate"], result["pipeline"]
    rows = ["| stage | wall s | CPU s | peak RSS in stage (GiB) | process peak so far (GiB) | notes |",
            "|---|---|---|---|---|---|"]
    rows.append(f"| generate (own process, not in the total) | {gen['seconds']:.1f} | {gen['cpu_seconds']:.1f} | - | "
                f"{gen['peak_rss'] / GIB:.2f} "
                f"| {gen['rows']:,} rows; parquet write {gen['write_seconds']:.1f} s |")
    for name, rec in stages.items():
        if name == "total":
            continue
        notes = ", ".join(f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}" for k, v in rec.items()
                          if k not in ("seconds", "cpu_seconds", "stage_peak_rss", "process_peak_rss"))
        rows.append(f"| {name} | {rec['seconds']:.2f} | {rec['cpu_seconds']:.2f} | {rec['stage_peak_rss'] / GIB:.2f} | "
                    f"{rec['process_peak_rss'] / GIB:.2f} | {notes} |")
    total = stages["total"]
    rows.append(f"| **pipeline total** | **{total['seconds']:.1f}** | **{total['cpu_seconds']:.1f}** | - | "
                f"**{total['process_peak_rss'] / GIB:.2f}** | "
                "target < 60 s and < 4 GiB |")
    return (f"# Data pipeline at scale: synthetic_shop, {result['args']['n_interactions']:,} interactions, "
            f"{result['args']['n_items']:,} items\n\nCommand: `{command}`\n\nMachine: {machine}.\n\n"
            + "\n".join(rows) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-interactions", type=int, default=20_000_000)
    parser.add_argument("--n-items", type=int, default=200_000)
    parser.add_argument("--interactions-per-user", type=float, default=40.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default=None, help="where the source file and cache go (default: a temp dir)")
    parser.add_argument("--out", default=None, help="write <out>.md and <out>.json")
    args = parser.parse_args()
    gen_args = {"n_users": max(2, round(args.n_interactions / args.interactions_per_user)), "n_items": args.n_items,
                "interactions_per_user": args.interactions_per_user, "seed": args.seed,
                "n_interactions": args.n_interactions}
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        path = str(Path(tmp) / "interactions.parquet")
        result: dict[str, Any] = {"args": gen_args}
        result.update(run_child(generate, gen_args, path))
        result["pipeline"] = run_child(pipeline, path, str(Path(tmp) / "cache"))
        result["source_file_bytes"] = os.path.getsize(path)
    from ecomlab.utils import atomic_write_json, atomic_write_text

    command = " ".join(["python", *sys.argv])
    load = os.getloadavg()[0]
    machine = (f"{platform.machine()}, {os.cpu_count()} cores, "
               f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / GIB:.0f} GiB RAM, Python "
               f"{platform.python_version()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
               f"1-minute load average at the end {load:.2f}")
    text = render(result, command, machine)
    print(text)
    if args.out:
        atomic_write_text(Path(f"{args.out}.md"), text)
        atomic_write_json(Path(f"{args.out}.json"), {"command": command, "machine": machine, **result})


if __name__ == "__main__":
    main()
