"""Benchmark: top-10 serving latency of a LastFM-sized model, through the Python API and over HTTP.

    OMP_NUM_THREADS=1 python scripts/bench_serving.py --out experiments/serving

Trains BPR-MF (d=64) for one epoch on LastFM hetrec-2011 (1,892 users x 17,632 artists; ``--data synthetic``:
the synthetic shop at the same size when the LastFM files are absent), exports it through ``export_run`` as
ONNX, TorchScript and native bundles, then times ``recommend(users, k=10)`` (exclude seen items) for one user
and for a batch of 256 users: in process through ``ecomlab.load``, and over HTTP against a real
``ecomlab-serve`` subprocess (one keep-alive client, requests one after another). Latency percentiles are per
request; requests/s is the number of sequential requests completed per second.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

import ecomlab
from ecomlab.export.writer import export_run
from ecomlab.train import train
from ecomlab.utils import atomic_write_json, atomic_write_text, config_dir

DATA = {"lastfm": ["data=lastfm-hetrec2011"],
        "synthetic": ["data=synthetic_shop", "data.source.n_users=1892", "data.source.n_items=17632"]}


def train_bpr(root: Path, data: str, data_dir: str) -> Path:
    overrides = ["model=bpr", *DATA[data], "trainer.max_epochs=1", "logger=[]", "eval.print_table=false"]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(root / "run")
        cfg.paths.log_dir, cfg.paths.cache_dir = str(root / "logs"), str(root / "cache")
        cfg.paths.data_dir = data_dir
        del cfg["hydra"]
    train(cfg)
    return root / "run"


def timed(fn: Callable[[int], object], repeats: int, warmup: int = 5) -> np.ndarray:
    """Seconds per call of ``fn(i)`` over ``repeats`` calls after ``warmup`` untimed ones."""
    for i in range(warmup):
        fn(i)
    out = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        fn(i)
        out[i] = time.perf_counter() - t0
    return out


def row(path: str, fmt: str, batch: int, seconds: np.ndarray) -> dict[str, float | int | str]:
    p50, p95, p99 = np.percentile(seconds * 1e3, [50, 95, 99])
    rps = len(seconds) / seconds.sum()
    return {"path": path, "format": fmt, "batch": batch, "requests": len(seconds), "p50_ms": round(p50, 2),
            "p95_ms": round(p95, 2), "p99_ms": round(p99, 2), "requests_per_s": round(rps, 1),
            "users_per_s": round(rps * batch, 1)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_http(bundle: Path, fmt: str, batches: list[list[str]], singles: list[str], repeats: dict[int, int],
               workdir: Path) -> list[dict]:
    from bench_load import (  # one way to start and stop the server for both benchmarks
        start_server,
        stop_server,
    )

    port = free_port()
    server = start_server(bundle, port, workdir / f"serve_{fmt}", start_timeout=180)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:

            def post(users: list[str]) -> None:
                response = client.post("/recommend", json={"user_ids": users, "k": 10})
                response.raise_for_status()

            one = timed(lambda i: post([singles[i % len(singles)]]), repeats[1])
            many = timed(lambda i: post(batches[i % len(batches)]), repeats[256])
    finally:
        stop_server(server)
    return [row("HTTP", fmt, 1, one), row("HTTP", fmt, 256, many)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=sorted(DATA), default="lastfm")
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--single-repeats", type=int, default=1000)
    parser.add_argument("--batch-repeats", type=int, default=100)
    parser.add_argument("--formats", default="onnx,torchscript,native")
    parser.add_argument("--out", default=None, help="directory for README.md and results.json")
    args = parser.parse_args()
    repeats = {1: args.single_repeats, 256: args.batch_repeats}
    load_before = os.getloadavg()[0]
    rng = np.random.default_rng(0)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench_serving_") as tmp:
        root = Path(tmp)
        run_dir = train_bpr(root, args.data, args.data_dir)
        record = json.loads((run_dir / "metrics.json").read_text())
        for fmt in args.formats.split(","):
            t0 = time.perf_counter()
            bundle = export_run(run_dir, fmt, root / f"bundle_{fmt}")
            export_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            model = ecomlab.load(bundle)
            load_s = time.perf_counter() - t0
            users = model.users.raw.tolist()
            singles = [users[i] for i in rng.integers(0, len(users), size=args.single_repeats)]
            batches = [[users[i] for i in rng.choice(len(users), 256, replace=False)] for _ in range(20)]
            print(f"{fmt}: export {export_s:.2f} s, load {load_s:.2f} s, {model.n_users} users x {model.n_items} items",
                  flush=True)
            rows.append(row("Python API", fmt, 1, timed(lambda i, m=model, s=singles: m.recommend([s[i]], k=10), repeats[1])))
            rows.append(row("Python API", fmt, 256,
                            timed(lambda i, m=model, b=batches: m.recommend(b[i % len(b)], k=10),
                                  repeats[256])))
            rows += bench_http(bundle, fmt, batches, singles, repeats, root)
            rows[-4]["export_s"], rows[-4]["load_s"] = round(export_s, 2), round(load_s, 2)
            print("\n".join(json.dumps(r) for r in rows[-4:]), flush=True)
    load_after = os.getloadavg()[0]
    size = f"{model.n_users:,} users x {model.n_items:,} items, d=64"
    command = (f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')} python scripts/bench_serving.py "
               f"--data {args.data} --single-repeats {args.single_repeats} --batch-repeats {args.batch_repeats} "
               f"--formats {args.formats}" + (f" --out {args.out}" if args.out else ""))
    header = "| path | format | users per request | p50 ms | p95 ms | p99 ms | requests/s | users/s |"
    table = [header, "|---|---|---|---|---|---|---|---|"] + [
        f"| {r['path']} | {r['format']} | {r['batch']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | "
        f"{r['requests_per_s']} | {r['users_per_s']} |" for r in rows]
    text = "\n".join([
        "# Serving latency: top-10 recommendations from an exported bundle", "",
        f"Model: BPR-MF trained 1 epoch on `{record['dataset']}` ({size}; test ndcg@10 "
        f"{record['metrics'].get('test/ndcg@10', float('nan')):.4f}, the quality is not the point here), exported "
        "with `export_run` (= `ecomlab-export`) in each format and loaded with `ecomlab.load`.",
        "Each request: `recommend(user_ids, k=10)` with the users' seen items excluded (raw ids in and out). "
        "HTTP: `POST /recommend` to a real `ecomlab-serve` (granian) subprocess on localhost, one keep-alive "
        "client, requests one after another (closed loop, no concurrency); requests/s = completed requests "
        "per second of that loop. Single-user requests draw a random user each time; batches are 256 distinct "
        f"random users. {args.single_repeats} single-user and {args.batch_repeats} batch requests per row, "
        "after 5 warm-up requests.",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs, Python "
        f"{platform.python_version()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')} "
        "(onnxruntime intra-op threads follow it). The machine was shared: 1-minute load average "
        f"{load_before:.1f} at the start and {load_after:.1f} at the end, so these numbers are upper bounds "
        "for an idle machine.", "",
        f"Command: `{command}`", "", *table, "",
        "Export and load times (s): " + ", ".join(f"{r['format']} {r.get('export_s')} / {r.get('load_s')}"
                                                  for r in rows if "export_s" in r), "",
        "Concurrent clients (errors, p50/p95/p99 under load): `load_test.md`, written by `scripts/bench_load.py`.",
        ""])
    print(text)
    if args.out:
        atomic_write_json(Path(args.out) / "results.json", {"command": command, "model": size, "rows": rows})
        atomic_write_text(Path(args.out) / "README.md", text)


if __name__ == "__main__":
    main()
