"""Most-popular baseline: every user gets the same ranking by training popularity.

Score of item :math:`i` (identical for all users :math:`u`):

.. math::  s_{u,i} = \\sum_{v} \\mathbb{1}[r_{v,i} \\neq 0]  \\quad\\text{or, weighted,}\\quad  s_{u,i} = \\sum_v r_{v,i}

i.e. the number of distinct training users who interacted with ``i`` (or the sum of their interaction
weights). Despite its simplicity this is the reference any personalised recommender has to beat.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from ecomlab.models.base import Recommender, RecTrainData


class Popularity(Recommender):
    """Ranks items by how many training users interacted with them (or by summed interaction weight)."""

    trainable: ClassVar[bool] = False
    item_scores: Tensor

    def __init__(self, n_items: int, weighted: bool = False) -> None:
        super().__init__()
        if n_items <= 0:
            raise ValueError(f"n_items must be positive, got {n_items}")
        self.n_items = n_items
        self.weighted = weighted
        # A buffer (not a plain attribute) so that a checkpoint restores the fitted counts.
        self.register_buffer("item_scores", torch.zeros(n_items, dtype=torch.float32))

    def fit(self, data: RecTrainData) -> None:
        train = sp.csr_matrix(data.train, copy=True)
        if train.shape[1] != self.n_items:
            raise ValueError(f"train matrix has {train.shape[1]} items, model was built for {self.n_items}")
        # Duplicate (user, item) entries must count once and explicit zeros not at all.
        train.sum_duplicates()
        train.eliminate_zeros()
        if self.weighted:
            scores = np.asarray(train.sum(axis=0), dtype=np.float64).ravel()  # [1, n_items] -> [n_items]
        else:
            scores = np.bincount(train.indices, minlength=self.n_items).astype(np.float64)  # [n_items]
        self.item_scores.copy_(torch.from_numpy(scores).to(self.item_scores))

    def forward(self, users: Tensor) -> Tensor:  # [B] -> [B, n_items]
        # A real copy rather than ``expand``: callers mask seen items in place, which an expanded view forbids.
        scores = self.item_scores.to(users.device)
        return scores.unsqueeze(0).repeat(users.shape[0], 1)  # [n_items] -> [B, n_items]
