"""Studies as cluster jobs: the SLURM launcher preset composes from the trainer's size, and submitit really
runs a multirun's jobs (its local executor: the same pickled job spec, run in its own process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import hydra
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from ecomlab.utils import config_dir

pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="needs ecomlab[cluster]")


def test_slurm_preset_takes_its_allocation_from_the_trainer() -> None:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4",
                                          "trainer.num_nodes=2", "hydra.launcher.partition=gpu"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 4, 4)
    assert launcher.partition == "gpu"
    assert hydra.utils.get_class(launcher._target_).__name__ == "SlurmLauncher"


@pytest.mark.slow  # submitit starts one process per job: ~40 s
def test_a_multirun_runs_as_submitit_jobs(tmp_path: Path) -> None:
    env = {**os.environ, "ECOMLAB_ROOT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ecomlab-train"), "-m", "hydra/launcher=submitit_local",
         "hydra.launcher.timeout_min=10", "model=popularity,random", "data=synthetic_shop",
         "data.source.n_users=80", "data.source.n_items=40", "logger=[]", "eval.print_table=false",
         f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    records = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/metrics.json"))]
    assert sorted(r["model"] for r in records) == ["popularity", "random"]
    assert list(sweep.glob(".submitit/*/*_result.pkl")), "the jobs ran through submitit"
