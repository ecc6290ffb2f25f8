"""One contract for every recommender: each ``configs/model/*.yaml`` of the ranking task is checked alike.

Models are discovered from the config tree, so a model added later is covered without touching this file.
Everything runs on a tiny synthetic shop (which has item text and a friend graph for content and social
models): finite ``[B, n_items]`` scores, ``recommend`` honouring the exclusion mask, a training loss that goes
down on a repeated batch, and identical scores after a ``state_dict`` round trip (trained models) or a refit
on the same data (classical models).
"""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import OmegaConf

from ecomlab.data.rec_datamodule import RecDataModule
from ecomlab.data.splits import RatioSplit
from ecomlab.data.synthetic import SyntheticShop
from ecomlab.tasks.ranking import RankingTask
from ecomlab.utils import config_dir, instantiate_with_dims

RANKING_MODELS = sorted(
    p.stem for p in (Path(config_dir()) / "model").glob("*.yaml")
    if OmegaConf.load(p).get("_target_") == "ecomlab.tasks.ranking.RankingTask"
)
N_USERS, N_ITEMS = 60, 40


@pytest.fixture(scope="module")
def datamodule() -> RecDataModule:
    dm = RecDataModule(SyntheticShop(n_users=N_USERS, n_items=N_ITEMS, seed=0), RatioSplit(seed=0),
                       batch_size=64, eval_batch_size=32, num_negatives=2)
    dm.setup("fit")
    return dm


def _build(compose_cfg, model: str, dm: RecDataModule, seed: int) -> RankingTask:
    cfg = compose_cfg([f"model={model}", "data=synthetic_shop", f"data.source.n_users={N_USERS}",
                       f"data.source.n_items={N_ITEMS}"])
    torch.manual_seed(seed)
    try:
        net = instantiate_with_dims(cfg.model.net, dm.dims)
        task = hydra.utils.instantiate(cfg.model, net=net)
        task.prepare(dm.train_data())
    except Exception as err:
        # A model whose optional extra is not installed (e.g. sentence-transformers) is skipped, not failed.
        cause: BaseException | None = err
        while cause is not None and not isinstance(cause, ImportError):
            cause = cause.__cause__
        if cause is None:
            raise
        pytest.skip(f"{model}: optional dependency missing: {cause}")
    return task


def test_discovery_finds_the_ranking_models() -> None:
    assert {"popularity", "bpr", "itemknn", "neumf", "lightgcn"} <= set(RANKING_MODELS)


@pytest.mark.parametrize("model", RANKING_MODELS)
def test_recommender_conformance(compose_cfg, datamodule: RecDataModule, model: str) -> None:
    dm = datamodule
    task = _build(compose_cfg, model, dm, seed=0)
    net = task.net
    users = torch.arange(N_USERS)

    net.eval()
    with torch.no_grad():
        scores = net(users)
    assert scores.shape == (N_USERS, N_ITEMS)
    assert torch.isfinite(scores).all(), f"{model}: non-finite scores"

    # Half of the catalogue excluded per user, in a per-user pattern: exactly 20 candidates remain.
    exclude = (users[:, None] + torch.arange(N_ITEMS)[None, :]) % 2 == 0  # [U, 1] + [1, N] -> [U, N]
    top_scores, top_items = net.recommend(users, k=10, exclude=exclude)
    assert top_items.shape == (N_USERS, 10)
    assert not exclude.gather(1, top_items).any(), f"{model}: recommended an excluded item"
    assert torch.isfinite(top_scores).all()
    assert (top_scores[:, :-1] >= top_scores[:, 1:]).all(), f"{model}: top-k not sorted"

    if not net.trainable:
        again = _build(compose_cfg, model, dm, seed=1).net.eval()
        with torch.no_grad():
            assert torch.equal(again(users), scores), f"{model}: a refit on the same data scores differently"
        return

    # Trained models: the loss goes down on one repeated batch.
    torch.manual_seed(0)
    batch = dm.complete(next(iter(dm.train_dataloader())))
    optimizer = task.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    net.train()
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = net.loss(batch)
        assert loss.ndim == 0 and torch.isfinite(loss)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0], f"{model}: loss did not go down in 30 steps: {losses[0]} -> {losses[-1]}"

    # A checkpoint round trip: a fresh instance (other init), prepared on the data, loads identical scores.
    net.eval()
    with torch.no_grad():
        before = net(users)
    state = {k: v.clone() for k, v in task.state_dict().items()}
    other = _build(compose_cfg, model, dm, seed=123)
    other.load_state_dict(state)
    other.net.eval()
    with torch.no_grad():
        after = other.net(users)
    torch.testing.assert_close(after, before, rtol=0, atol=1e-6)
