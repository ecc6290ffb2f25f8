"""Benchmark: cold (parse + preprocess + cache write) and warm (cache hit) load time of every data config,
with the ``ecomlab-data describe`` statistics of each.

    python scripts/bench_data_load.py --data-dir ../shared/data --out experiments/datasets

Data configs whose files are absent are reported as skipped. Each config is loaded cold once (into a fresh
temporary cache) and warm ``--repeats`` times; the table gives the warm median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import hydra
import pandas as pd
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from ecomlab.data.bundle import DataValidationError
from ecomlab.data.cache import load_bundle
from ecomlab.data.describe import describe_bundle
from ecomlab.utils import atomic_write_json, atomic_write_text, config_dir

NEEDS_USER_FILES = {"files", "recbole", "sales-file"}


def load(name: str, data_dir: str, cache_dir: str) -> tuple[object, dict]:
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("data_tool", overrides=[f"data={name}"])
    with open_dict(cfg):
        cfg.data.source.data_dir = data_dir if "data_dir" in cfg.data.source else None
        if cfg.data.source.data_dir is None:
            del cfg.data.source["data_dir"]
    source = hydra.utils.instantiate(cfg.data.source)
    preprocess = hydra.utils.instantiate(cfg.data.preprocess) if cfg.data.get("preprocess") else None
    return load_bundle(source, preprocess, cache_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--out", default=None, help="folder for datasets.csv, describe.json and README table")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data_dir = str(Path(args.data_dir).resolve())
    names = sorted(p.stem for p in (Path(config_dir()) / "data").glob("*.yaml") if p.stem not in NEEDS_USER_FILES)
    rows, described = [], {}
    for name in names:
        with tempfile.TemporaryDirectory() as cache:
            t0 = time.perf_counter()
            try:
                bundle, info = load(name, data_dir, cache)
            except DataValidationError as err:
                print(f"{name}: skipped ({err})")
                continue
            cold = time.perf_counter() - t0
            warm_times, warm_info = [], info
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                _, warm_info = load(name, data_dir, cache)
                warm_times.append(time.perf_counter() - t0)
        stats = describe_bundle(bundle)
        described[name] = stats
        social = stats["social"] or {}
        sales = stats["sales"] or {}
        rows.append({
            "data": name, "users": stats["users"], "items": stats["items"], "interactions": stats["interactions"],
            "social_edges": social.get("edges", 0), "series": sales.get("series", 0),
            "cold_seconds": round(cold, 3), "warm_seconds": round(statistics.median(warm_times), 3),
            "warm_cache": warm_info["cache"],
        })
        print(rows[-1])
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    if args.out:
        out = Path(args.out)
        atomic_write_text(out / "datasets.csv", table.to_csv(index=False))
        atomic_write_json(out / "describe.json", described)
        md = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
        md += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
        atomic_write_text(out / "datasets.md", "\n".join(md) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("ECOMLAB_ROOT", ".")
    main()
