"""Losses shared by several recommenders (pure functions on tensors)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def bpr_loss(user: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
    """Bayesian personalised ranking: ``-mean ln σ(<u, q_i> - <u, q_j>)`` over every sampled negative.

    ``user`` and ``pos`` are ``[B, d]``, ``neg`` is ``[B, n_neg, d]``.
    """
    pos_score = (user * pos).sum(-1, keepdim=True)  # [B, d] -> [B, 1]
    # a broadcast product, not einsum: einsum lowers to a batched matmul of B 1 x d by d x n_neg products, which
    # costs ~3x more on CPU for the few negatives used here (forward and both backward products)
    neg_score = (user.unsqueeze(1) * neg).sum(-1)  # [B, 1, d] * [B, n_neg, d] -> [B, n_neg]
    return -F.logsigmoid(pos_score - neg_score).mean()


def embedding_l2(user: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
    """``(‖p_u‖² + ‖q_i‖² + mean_j ‖q_j‖²) / B``: L2 on the batch's (layer-0) embeddings, per example."""
    return (user.pow(2).sum() + pos.pow(2).sum() + neg.pow(2).sum() / neg.shape[1]) / len(user)


def rows(table: Tensor | torch.nn.Embedding, idx: Tensor) -> Tensor:
    """Rows ``idx`` (any shape ``[*S]``) of an ``[N, d]`` table or ``nn.Embedding`` -> ``[*S, d]``.

    Gathered with ``index_select``, whose backward is one zero-filled ``[N, d]`` gradient and an ``index_add_``.
    ``nn.Embedding``'s dense backward sorts the indices once a batch has more than 3,000 of them, and advanced
    indexing (``table[idx]``) accumulates through ``index_put_``. On one CPU core, forward + backward take
    0.57-0.83 of ``nn.Embedding``'s time (``scripts/bench_gather.py``, ``experiments/perf/gather.md``).
    """
    if isinstance(table, torch.nn.Embedding):
        if table.max_norm is not None or table.padding_idx is not None or table.scale_grad_by_freq:
            # those options live in F.embedding; a plain row gather would silently drop them
            raise ValueError("rows() gathers plain embedding rows; call the nn.Embedding itself when it sets "
                             "max_norm, padding_idx or scale_grad_by_freq")
        table = table.weight
    flat = table.index_select(0, idx.reshape(-1))  # [prod(S), d]
    return flat.view(*idx.shape, table.shape[1])  # [prod(S), d] -> [*S, d]


def positive_and_negative_rows(items: Tensor | torch.nn.Embedding, pos: Tensor, neg: Tensor) -> tuple[Tensor, Tensor]:
    """Rows of ``items`` (an ``[N, d]`` table or ``nn.Embedding``) for ``pos`` ``[B]`` and ``neg`` ``[B, n]``.

    One gather for both: its backward scatters into the ``[N, d]`` table once per step, not twice (the dense
    table-sized gradient is what dominates a CPU training step of an embedding model).
    """
    idx = torch.cat([pos.unsqueeze(1), neg], dim=1)  # [B, 1 + n]
    both = rows(items, idx)  # [B, 1 + n, d]
    return both[:, 0], both[:, 1:]  # [B, d], [B, n, d]
