"""``seed=`` fixes every source of randomness: two CPU runs with one seed give identical ``metrics.json`` values.

Each run is a real ``train()`` on tiny synthetic data (data generation, split, negative sampling /
training windows, initialisation all follow the seed) with the real Lightning trainer, each into its own
output directory so no run is skipped as already finished.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig, open_dict

from ecomlab.train import train

TINY_SHOP = ["data=synthetic_shop", "data.source.n_users=120", "data.source.n_items=60", "data.batch_size=256",
             "trainer.max_epochs=2"]
TINY_SALES = ["data=synthetic_sales", "data.source.n_users=60", "data.source.n_items=12", "+data.source.n_days=300",
              "data.windows_per_epoch=64", "data.batch_size=32", "model.net.hidden_size=8", "model.net.n_layers=1",
              "model.net.mlp_size=16", "trainer.max_epochs=2"]
RUNS = {
    "bpr": ["model=bpr", *TINY_SHOP],
    "lightgcn": ["model=lightgcn", *TINY_SHOP],
    "lstm": ["model=lstm", *TINY_SALES],
}


@pytest.fixture
def restore_determinism() -> Iterator[None]:
    """``torch.use_deterministic_algorithms`` is process-wide: leave it as the test found it."""
    before = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(before)


def run_metrics(compose_cfg: Callable[..., DictConfig], tmp_path: Path, overrides: list[str],
                name: str) -> dict[str, object]:
    cfg = compose_cfg(overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / name)
        cfg.eval.print_table = False
    train(cfg)
    return json.loads((tmp_path / name / "metrics.json").read_text())


@pytest.mark.parametrize("enforce", [True, False], ids=["deterministic", "default"])
@pytest.mark.parametrize("model", list(RUNS))
def test_same_seed_same_metrics(model: str, enforce: bool, compose_cfg: Callable[..., DictConfig], tmp_path: Path,
                                restore_determinism: None) -> None:
    """On CPU the seed alone makes a run repeatable; ``deterministic=true`` additionally enforces it."""
    torch.use_deterministic_algorithms(False)
    overrides = [*RUNS[model], f"deterministic={str(enforce).lower()}"]
    first = run_metrics(compose_cfg, tmp_path, [*overrides, "seed=3"], "a")
    second = run_metrics(compose_cfg, tmp_path, [*overrides, "seed=3"], "b")
    other = run_metrics(compose_cfg, tmp_path, [*overrides, "seed=4"], "c")

    test_keys = [k for k in first["metrics"] if k.startswith("test/")]
    assert test_keys, first["metrics"]
    assert first["metrics"] == second["metrics"], "same seed, different metrics"
    assert first["data_fingerprint"] == second["data_fingerprint"]
    assert any(first["metrics"][k] != other["metrics"][k] for k in test_keys), "the seed changes nothing"
    assert first["deterministic_algorithms"] is enforce and second["deterministic_algorithms"] is enforce


def test_record_states_when_determinism_is_not_enforced(compose_cfg: Callable[..., DictConfig], tmp_path: Path,
                                                        restore_determinism: None) -> None:
    torch.use_deterministic_algorithms(False)
    record = run_metrics(compose_cfg, tmp_path, ["model=popularity", *TINY_SHOP, "deterministic=false"], "p")
    assert record["deterministic_algorithms"] is False
