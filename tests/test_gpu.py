"""GPU path: the same recipes on `trainer=gpu` (bf16 autocast). Skipped without CUDA (see conftest)."""

from __future__ import annotations

import functools
import warnings

import pytest
import torch

from ecomlab.models.base import rank_topk
from ecomlab.train import train


@pytest.mark.gpu
@pytest.mark.parametrize("model", ["bpr", "lightgcn", "social_gnn", "neumf", "text_two_tower"])
def test_ranking_models_train_and_evaluate_on_gpu(compose_cfg, model: str) -> None:
    cfg = compose_cfg([f"model={model}", "trainer=gpu", "data=synthetic_shop", "data.source.n_users=200",
                       "data.source.n_items=150", "trainer.max_epochs=2", "data.batch_size=256"])
    record = train(cfg)
    assert 0.0 <= record["metrics"]["test/ndcg@10"] <= 1.0
    assert "peak_cuda_mb" in record


@pytest.mark.gpu
@pytest.mark.parametrize("model", ["lstm", "lstm_deepar"])
def test_forecasters_train_and_evaluate_on_gpu(compose_cfg, model: str) -> None:
    """The LSTM with its quantile head, and the Student-t one, whose quantiles SciPy computes on the host."""
    cfg = compose_cfg([f"model={model}", "trainer=gpu", "data=synthetic_sales", "data.source.n_users=150",
                       "data.source.n_items=80", "data.windows_per_epoch=256", "trainer.max_epochs=2"])
    record = train(cfg)
    metrics = record["metrics"]
    assert metrics["test/mase"] > 0 and 0.0 <= metrics["test/coverage_80"] <= metrics["test/coverage_95"] <= 1.0


@pytest.mark.gpu
def test_rank_topk_on_gpu_matches_cpu() -> None:
    scores = torch.randint(0, 5, (64, 300)).float()
    exclude = torch.rand(64, 300) < 0.2
    cpu = rank_topk(scores, 20, exclude)
    gpu = rank_topk(scores.cuda(), 20, exclude.cuda())
    assert torch.equal(cpu[1], gpu[1].cpu())


@pytest.mark.gpu
def test_device_side_negatives_and_masks_equal_the_cpu_ones() -> None:
    from ecomlab.data.rec_datamodule import RecDataModule
    from ecomlab.data.splits import RatioSplit
    from ecomlab.data.synthetic import SyntheticShop

    dm = RecDataModule(SyntheticShop(n_users=300, n_items=200, seed=1), RatioSplit(seed=0), num_negatives=3)
    dm.setup()
    for loader in (dm.val_dataloader(), dm.test_dataloader()):
        for batch in loader:
            on_cpu = dm.complete(batch)
            on_gpu = dm.complete({k: v.cuda() if torch.is_tensor(v) else v for k, v in batch.items()})
            for key in ("exclude_at", "target_at"):  # cells (rows, items), built on the batch's device
                assert all(part.is_cuda for part in on_gpu[key])
                assert all(torch.equal(a, b.cpu()) for a, b in zip(on_cpu[key], on_gpu[key], strict=True))
            assert torch.equal(on_cpu["n_target"], on_gpu["n_target"].cpu())
    train = torch.as_tensor(dm.train_csr.toarray() > 0)
    batch = next(iter(dm.train_dataloader()))
    done = dm.complete({k: v.cuda() for k, v in batch.items()})
    assert done["neg"].is_cuda and done["neg"].shape == (len(batch["users"]), 3)
    assert not train[batch["users"].unsqueeze(1), done["neg"].cpu()].any(), "a negative is a training positive"


@pytest.mark.gpu
def test_an_evaluation_batch_synchronises_once_on_gpu() -> None:
    """CUDA's own detector (``torch.cuda.set_sync_debug_mode``) agrees with ``tests/test_device_sync.py``: completing
    a full-ranking batch on the device, scoring, ranking and the metrics synchronise once (``rank_topk``'s check
    for NaN and ties), so the host can queue the next batch's kernels while the device works."""
    from ecomlab.data.rec_datamodule import RecDataModule
    from ecomlab.data.splits import RatioSplit
    from ecomlab.data.synthetic import SyntheticShop
    from ecomlab.models.lightgcn import LightGCN
    from ecomlab.tasks.ranking import RankingTask

    dm = RecDataModule(SyntheticShop(n_users=300, n_items=200, seed=1), RatioSplit(seed=0), eval_batch_size=64)
    dm.setup()
    net = LightGCN(dm.dims["n_users"], dm.dims["n_items"], 32, 2)
    task = RankingTask(net, optimizer=functools.partial(torch.optim.Adam, lr=1e-3)).cuda()
    task.prepare(dm.train_data())
    task.eval()
    batch = next(iter(dm.val_dataloader()))
    batch = {k: v.cuda() if torch.is_tensor(v) else v for k, v in batch.items()}
    with torch.no_grad():
        task._evaluate(dm.complete(batch), "val")  # warm-up: index copies, cached propagation, cut tensors
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            task._evaluate(dm.complete(batch), "val")
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [str(w.message) for w in caught if "synchroniz" in str(w.message)]
    assert len(syncs) == 1, syncs


@pytest.mark.gpu
@pytest.mark.parametrize("model", ["bpr", "lightgcn", "social_gnn", "social_gnn_ssl", "text_two_tower"])
def test_a_training_step_does_not_synchronise_on_gpu(compose_cfg, model: str) -> None:
    """CUDA's own detector agrees with ``tests/test_device_sync.py`` for training: sampling the negatives on the
    device, the loss (the fixed-size forms off the CPU), backward and fused Adam never wait for the device."""
    import hydra

    from ecomlab.utils import instantiate_with_dims

    cfg = compose_cfg([f"model={model}", "data=synthetic_shop", "data.source.n_users=200", "data.source.n_items=150",
                       "data.batch_size=128"])
    dm = hydra.utils.instantiate(cfg.data)
    dm.setup("fit")
    task = hydra.utils.instantiate(cfg.model, net=instantiate_with_dims(cfg.model.net, dm.dims)).cuda()
    task.prepare(dm.train_data())
    optimizer = task.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    batches = iter(dm.train_dataloader())

    def step(host_batch: dict[str, torch.Tensor]) -> None:
        batch = dm.complete({k: v.cuda(non_blocking=True) for k, v in host_batch.items()})
        loss = task.net.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step({k: v.pin_memory() for k, v in next(batches).items()})  # warm-up: Adam's moments, the sampler
    pinned = {k: v.pin_memory() for k, v in next(batches).items()}  # as the GPU loaders pin them
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            step(pinned)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [str(w.message) for w in caught if "synchroniz" in str(w.message)]
    assert not syncs, syncs
