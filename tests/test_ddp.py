"""Distributed data parallel (``trainer=ddp``) on CPU: gloo processes train real models end to end.

The test metrics of a DDP run come from evaluation split across both ranks and gathered; re-evaluating the
same checkpoint in one process (``ecomlab-eval``) must give exactly the same numbers, and only rank 0 writes.
One model per path that distributed training treats differently: embedding tables (BPR), a sparse graph
buffer (LightGCN), and forecasting, whose evaluation rows are Python objects (the Student-t LSTM, with exact
interval quantiles).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel
from torch_geometric import EdgeIndex

from ecomlab.models.base import RecTrainData
from ecomlab.models.lightgcn import LightGCN
from ecomlab.tasks.forecasting import ForecastTask
from ecomlab.tasks.ranking import RankingTask

BIN = Path(sys.executable).parent
REC = ["data=synthetic_shop", "data.source.n_users=150", "data.source.n_items=80", "data.batch_size=128",
       "data.eval_batch_size=16"]
SALES = ["data=synthetic_sales", "data.source.n_users=150", "data.source.n_items=80", "data.windows_per_epoch=256"]
COMMON = ["trainer.max_epochs=3", "logger=[]", "eval.print_table=false", "callbacks.rich_progress_bar=null"]
CASES = {"bpr": ["model=bpr", *REC], "lightgcn": ["model=lightgcn", *REC], "lstm_deepar": ["model=lstm_deepar", *SALES]}


def _env(root: Path) -> dict[str, str]:
    env = {**os.environ, "ECOMLAB_ROOT": str(root), "OMP_NUM_THREADS": "1"}
    for var in ("RANK", "LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "HYDRA_FULL_ERROR"):
        env.pop(var, None)
    return env


@pytest.mark.slow  # two training processes plus one evaluation: about a minute per model on 2 cores
@pytest.mark.parametrize("model", list(CASES))
def test_ddp_training_on_two_cpu_processes_gathers_metrics_equal_to_one_process(tmp_path: Path, model: str) -> None:
    run = tmp_path / "ddp_run"
    train = subprocess.run(
        [str(BIN / "ecomlab-train"), *CASES[model], *COMMON, "trainer=ddp", "trainer.accelerator=cpu",
         "trainer.devices=2", f"hydra.run.dir={run}", f"paths.cache_dir={tmp_path}/cache"],
        cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=900)
    assert train.returncode == 0, train.stderr[-4000:]
    log = train.stdout + train.stderr
    assert "MEMBER: 1/2" in log and "MEMBER: 2/2" in log, "both ranks must have joined the process group"
    record = json.loads((run / "metrics.json").read_text())
    assert record["config"]["trainer"]["strategy"] == "ddp"
    ddp_metrics = {k: v for k, v in record["metrics"].items() if k.startswith("test/")}
    if record["protocol"]["task"] == "ranking":
        assert record["protocol"]["n_test_users"] > 16, "the test users must span several batches on both ranks"
        assert ddp_metrics["test/ndcg@10"] > 0
    else:
        assert {"test/mase", "test/coverage_80", "test/msql"} <= set(ddp_metrics)

    again = tmp_path / "eval_run"
    evaluated = subprocess.run(
        [str(BIN / "ecomlab-eval"), f"run_dir={run}", f"hydra.run.dir={again}"],
        cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert evaluated.returncode == 0, evaluated.stderr[-4000:]
    single = json.loads((again / "metrics.json").read_text())["metrics"]
    for key, value in ddp_metrics.items():
        assert single[key] == pytest.approx(value, abs=1e-6), f"{key}: DDP {value} vs one process {single[key]}"
    if record["protocol"]["task"] == "forecasting":  # rank 0's forecasts hold every test window once
        windows = pd.read_parquet(run / "forecasts_test.parquet").groupby(["unique_id", "window"]).size()
        assert len(windows) == record["protocol"]["n_test_windows"]
        assert (windows == record["protocol"]["backtest"]["horizon"]).all()
    # one record, written by rank 0 alone: no per-rank copies or leftovers beside it
    assert sorted(p.name for p in run.glob("metrics*.json")) == ["metrics.json"]


def test_ddp_wraps_a_graph_model_without_broadcasting_its_derived_graph(tmp_path: Path) -> None:
    """DDP broadcasts buffers from rank 0 when it wraps a model; LightGCN's adjacency (a PyG EdgeIndex with
    cached CSR/CSC) and its normalised weights need not be broadcast (every rank builds them in prepare()). The
    task's setup hook, which Lightning runs before wrapping, keeps them out."""
    train = sp.random(30, 20, density=0.2, format="csr", random_state=0, dtype=np.float32)
    task = RankingTask(LightGCN(30, 20, embedding_dim=8), optimizer=torch.optim.Adam)
    task.prepare(RecTrainData(train=train))
    task.setup("fit")
    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path}/store", rank=0, world_size=1)
    try:
        wrapped = DistributedDataParallel(task)
        assert isinstance(wrapped.module.net.adjacency, EdgeIndex)
        assert task._ddp_params_and_buffers_to_ignore == ["net.adjacency", "net.edge_weight"]
    finally:
        torch.distributed.destroy_process_group()


def _gather_rank(rank: int, store: str, out: str) -> None:
    """One rank of a 2-process gather: the windows 0-6 dealt out strided and padded, as DistributedSampler does
    (rank 0: 0, 2, 4, 6; rank 1: 1, 3, 5, 0)."""
    torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        positions = [0, 2, 4, 6] if rank == 0 else [1, 3, 5, 0]
        rows = [{"unique_id": f"s{p // 2}", "window": p % 2, "mae": float(p)} for p in positions]
        windows = [(p, r, pd.DataFrame({"unique_id": [r["unique_id"]], "y_hat": [r["mae"]]}))
                   for p, r in zip(positions, rows, strict=True)]
        pd.DataFrame([row for _, row, _ in ForecastTask._gathered(windows)]).to_json(f"{out}.{rank}.json")
    finally:
        torch.distributed.destroy_process_group()


def test_forecast_evaluation_rows_gather_once_each_in_data_set_order(tmp_path: Path) -> None:
    mp.spawn(_gather_rank, args=(str(tmp_path / "store"), str(tmp_path / "rows")), nprocs=2)
    for rank in (0, 1):  # both ranks hold the whole evaluation: they log the same metrics
        rows = pd.read_json(tmp_path / f"rows.{rank}.json")
        assert rows["mae"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        assert rows["unique_id"].tolist() == ["s0", "s0", "s1", "s1", "s2", "s2", "s3"]


@pytest.mark.slow  # two training processes: ~30 s on 2 cores
def test_ddp_over_two_nodes_on_one_machine_writes_on_node_zero_only(tmp_path: Path) -> None:
    """``trainer.num_nodes=2``: two launches of ``ecomlab-train`` form one process group the way two cluster
    nodes do (``NODE_RANK``, ``MASTER_ADDR``/``MASTER_PORT``, as SLURM or a launcher sets them)."""
    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = [str(BIN / "ecomlab-train"), *CASES["bpr"], *COMMON, "trainer=ddp", "trainer.accelerator=cpu",
            "trainer.devices=1", "trainer.num_nodes=2", f"paths.cache_dir={tmp_path}/cache"]
    env = {**_env(tmp_path), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    nodes = [subprocess.Popen([*args, f"hydra.run.dir={tmp_path}/node{rank}"], cwd=tmp_path,
                              env={**env, "NODE_RANK": str(rank)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for rank in (1, 0)]
    logs = [node.communicate(timeout=900)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(log[-3000:] for log in logs)
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in logs[0] and "GLOBAL_RANK: 0, MEMBER: 1/2" in logs[1]
    record = json.loads((tmp_path / "node0" / "metrics.json").read_text())
    assert record["config"]["trainer"]["num_nodes"] == 2 and record["metrics"]["test/ndcg@10"] > 0
    assert not (tmp_path / "node1" / "metrics.json").exists() and not (tmp_path / "node1" / "checkpoints").exists()
