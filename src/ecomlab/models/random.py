"""Random ranker: the chance-level reference every metric is read against.

Scores are i.i.d. uniform,

.. math::  s_{u,i} \\sim \\mathcal{U}(0, 1),

drawn afresh on every call, so the expected value of any ranking metric equals its value under a uniformly
random permutation of the catalogue (e.g. :math:`\\mathbb{E}[\\text{HR@}k] = k / N` for one held-out item
among :math:`N` candidates). A model that ranks at random must score what this model scores.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from ecomlab.models.base import Recommender, RecTrainData


class RandomRanker(Recommender):
    """Uniform random scores from a generator re-seeded by :meth:`fit`, so a fit-then-evaluate run repeats."""

    trainable: ClassVar[bool] = False

    def __init__(self, n_items: int, seed: int = 0) -> None:
        super().__init__()
        if n_items <= 0:
            raise ValueError(f"n_items must be positive, got {n_items}")
        self.n_items = n_items
        self.seed = seed
        # CPU generator: a CUDA generator would tie the stream to the device and break cross-device repeats.
        self._generator = torch.Generator().manual_seed(seed)

    def fit(self, data: RecTrainData) -> None:
        if data.train.shape[1] != self.n_items:
            raise ValueError(
                f"train matrix has {data.train.shape[1]} items, model was built for {self.n_items}"
            )
        # Re-seeding here (not only in __init__) makes every fit start the same random stream.
        self._generator = torch.Generator().manual_seed(self.seed)

    def forward(self, users: Tensor) -> Tensor:  # [B] -> [B, n_items]
        scores = torch.rand((users.shape[0], self.n_items), generator=self._generator)  # [B, n_items]
        return scores.to(users.device)
