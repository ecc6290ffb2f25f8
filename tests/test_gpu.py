"""GPU path: the same recipes on `trainer=gpu` (bf16 autocast). Skipped without CUDA (see conftest)."""

from __future__ import annotations

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
def test_rank_topk_on_gpu_matches_cpu() -> None:
    scores = torch.randint(0, 5, (64, 300)).float()
    exclude = torch.rand(64, 300) < 0.2
    cpu = rank_topk(scores, 20, exclude)
    gpu = rank_topk(scores.cuda(), 20, exclude.cuda())
    assert torch.equal(cpu[1], gpu[1].cpu())
