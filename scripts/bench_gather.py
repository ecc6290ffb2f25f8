"""Forward + backward seconds of an embedding-row gather, the way a training step looks rows up.

Three ways to take rows ``idx`` of an ``[N, d]`` trainable table and get the table's gradient back:
``nn.functional.embedding`` (what ``nn.Embedding`` calls; its dense backward sorts the indices once a batch has
more than 3,000 of them), ``index_select`` (``ecomlab.models.losses.rows``; backward = one zero-filled
``[N, d]`` gradient + ``index_add_``) and advanced indexing ``table[idx]`` (backward through
``index_put_(accumulate=True)``). Methods are interleaved, repeat by repeat, so that a busy machine slows them
alike; the table shows the median microseconds per gather (forward, ``backward``, gradient freed).

    OMP_NUM_THREADS=1 python scripts/bench_gather.py --out experiments/perf/gather.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from ecomlab.models.losses import rows
from ecomlab.utils import atomic_write_text

METHODS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "nn.Embedding (F.embedding)": lambda table, idx: F.embedding(idx, table),
    "index_select (rows)": rows,
    "table[idx]": lambda table, idx: table[idx],
}


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo where there is one, else what ``platform`` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def time_method(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], table: torch.Tensor, idx: torch.Tensor,
                grad: torch.Tensor, calls: int) -> float:
    """Mean seconds of ``calls`` forward + backward gathers."""
    t0 = time.perf_counter()
    for _ in range(calls):
        table.grad = None
        fn(table, idx).backward(grad)
    return (time.perf_counter() - t0) / calls


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[17_632, 100_000],
                        help="table sizes (17,632 = LastFM's items)")
    parser.add_argument("--lookups", type=int, nargs="+", default=[2_048, 4_096, 8_192])
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--calls", type=int, default=20, help="gathers per timed repeat")
    parser.add_argument("--out", default=None, help="write the Markdown table here")
    args = parser.parse_args(argv)

    generator = torch.Generator().manual_seed(0)
    lines = [
        "# Embedding-row gather: forward + backward microseconds",
        "",
        f"Command: `OMP_NUM_THREADS={torch.get_num_threads()} "
        + " ".join(["python", "scripts/bench_gather.py", *(sys.argv[1:] if argv is None else argv)]) + "`",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch thread(s), 1-minute load average {os.getloadavg()[0]:.2f} at the "
        f"start; {args.dim}-dim fp32 rows, uniform random indices, "
        f"median over {args.repeats} interleaved repeats of {args.calls} gathers each.",
        "",
        "| table rows | lookups | " + " | ".join(METHODS) + " | index_select / nn.Embedding |",
        "|---|---|" + "---|" * len(METHODS) + "---|",
    ]
    for n_rows in args.rows:
        table = torch.randn(n_rows, args.dim, generator=generator).requires_grad_()
        for n in args.lookups:
            idx = torch.randint(0, n_rows, (n,), generator=generator)
            grad = torch.randn(n, args.dim, generator=generator)
            for fn in METHODS.values():  # warm-up
                time_method(fn, table, idx, grad, 3)
            seconds: dict[str, list[float]] = {name: [] for name in METHODS}
            for _ in range(args.repeats):
                for name, fn in METHODS.items():
                    seconds[name].append(time_method(fn, table, idx, grad, args.calls))
            med = {name: statistics.median(v) * 1e6 for name, v in seconds.items()}
            ratio = med["index_select (rows)"] / med["nn.Embedding (F.embedding)"]
            lines.append(f"| {n_rows:,} | {n:,} | " + " | ".join(f"{v:.0f}" for v in med.values())
                         + f" | {ratio:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        atomic_write_text(Path(args.out), text)


if __name__ == "__main__":
    main()
