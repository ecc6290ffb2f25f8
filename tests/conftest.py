"""Shared fixtures: compose real Hydra configs the way ``ecomlab-train`` does, inside a temp directory."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

# Every thread pool pinned to one thread, before numpy, torch or scikit-learn start theirs and for every
# subprocess a test starts: on a busy 2-core machine OpenMP teams of several spinning threads starved each
# other (a HistGradientBoosting fit in test_gbt_lags.py stalled for 14 minutes under load).
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS")
for _var in THREAD_VARS:
    os.environ[_var] = "1"

import pytest
import threadpoolctl
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from ecomlab.utils import config_dir

torch.set_num_threads(1)
torch.set_num_interop_threads(1)
_THREAD_LIMITS = threadpoolctl.threadpool_limits(limits=1)  # what loaded before the env vars took effect

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Entry points run in-process configure logging (Hydra's job logging) with handlers on the test's captured
    streams; left in place they write to closed files in later tests ("--- Logging error ---")."""
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in list(logging.root.manager.loggerDict))]
    saved = {lg.name: (list(lg.handlers), lg.level, lg.propagate) for lg in loggers}
    yield
    for lg in [logging.getLogger(), *(logging.getLogger(n) for n in list(logging.root.manager.loggerDict))]:
        handlers, level, propagate = saved.get(lg.name, ([], logging.NOTSET, True))
        for handler in lg.handlers[:]:
            if handler not in handlers:
                lg.removeHandler(handler)
        lg.setLevel(level)
        lg.propagate = propagate


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PL_DISABLE_FORK", "1")


@pytest.fixture
def in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A run's working directory and ``ECOMLAB_ROOT``: ``tmp_path`` (for in-process ``ecomlab-train`` runs)."""
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.setenv("ECOMLAB_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def compose_cfg(tmp_path: Path) -> Iterator[Callable[..., DictConfig]]:
    """``compose_cfg(overrides, config_name="train")`` -> a resolved-ready config writing into ``tmp_path``."""

    def _compose(overrides: list[str] | None = None, config_name: str = "train") -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose(config_name, overrides=list(overrides or []), return_hydra_config=True)
        HydraConfig().set_config(cfg)
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / "run")
            cfg.paths.log_dir = str(tmp_path / "logs")
            cfg.paths.data_dir = str(tmp_path / "data")
            cfg.paths.cache_dir = str(tmp_path / "cache")
            del cfg["hydra"]
        return cfg

    yield _compose
    GlobalHydra.instance().clear()
