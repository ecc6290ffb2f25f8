"""Item-based k-nearest-neighbour collaborative filtering with shrunk cosine similarity.

Sarwar, Karypis, Konstan, Riedl, "Item-Based Collaborative Filtering Recommendation Algorithms", WWW 2001;
shrinkage as in Koren, "Factorization Meets the Neighborhood", KDD 2008. With :math:`r_i` the (binarised)
training column of item :math:`i` over users,

.. math::  \\mathrm{sim}(i, j) = \\frac{\\langle r_i, r_j \\rangle}
                                     {\\lVert r_i \\rVert \\lVert r_j \\rVert + h},
           \\qquad s_{u,j} = \\sum_{i \\in \\mathcal{N}_k(j)} r_{u,i} \\, \\mathrm{sim}(i, j),

where :math:`h` is ``shrink`` (it pulls similarities computed from few co-occurrences towards zero) and
:math:`\\mathcal{N}_k(j)` the ``k`` items most similar to :math:`j` (an item is not its own neighbour).
``normalize=False`` drops the denominator and uses raw co-occurrence counts
:math:`\\langle r_i, r_j \\rangle`.

Interactions are binarised (implicit feedback: a purchase or a liked movie counts once, whatever its weight).
Neighbours are pruned column by column: a block of columns of the item-item similarity is computed densely,
pruned with one ``argpartition`` and appended to a sparse matrix, so peak memory is ``n_items x block`` rather
than ``n_items^2``. Only positive similarities are kept. Ties at the k-th place are broken by ``argpartition``
(deterministic for the same data, not by index).

Like TF-IDF this model is refitted rather than checkpointed: the pruned similarity ``[N, N]`` and the training
rows live as plain scipy sparse attributes, and scoring needs the user's training row, which comes from the
data anyway. ``fit`` on the same data gives identical scores.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from ecomlab.models.base import Recommender, RecTrainData

#: similarity columns computed densely at once; ``n_items x _BLOCK`` float32 (9,066 items: 37 MiB)
_BLOCK = 1024


class ItemKNN(Recommender):
    """Scores item ``j`` by the user's training items among ``j``'s ``k`` most similar items."""

    trainable: ClassVar[bool] = False

    def __init__(self, n_items: int, k: int = 100, shrink: float = 10.0, normalize: bool = True) -> None:
        super().__init__()
        if n_items < 1:
            raise ValueError(f"n_items must be >= 1, got {n_items}")
        if k < 1:
            raise ValueError(f"k (neighbours per item) must be >= 1, got {k}")
        if shrink < 0:
            raise ValueError(f"shrink must be >= 0, got {shrink}")
        self.n_items, self.k, self.shrink, self.normalize = n_items, int(k), float(shrink), bool(normalize)
        self.similarity: sp.csr_matrix | None = None  # [N, N], column j holds the neighbours of item j
        self.train_rows: sp.csr_matrix | None = None  # [n_users, N] binarised training interactions

    def fit(self, data: RecTrainData) -> None:
        if data.train.shape[1] != self.n_items:
            raise ValueError(
                f"train matrix has {data.train.shape[1]} items, model was built for {self.n_items}")
        train = sp.csr_matrix(data.train, dtype=np.float32, copy=True)
        train.sum_duplicates()
        train.eliminate_zeros()
        train.data[:] = 1.0
        self.train_rows = train
        self.similarity = self._similarity(train)

    def _similarity(self, train: sp.csr_matrix) -> sp.csr_matrix:
        n = self.n_items
        k = min(self.k, n - 1)
        if k == 0:  # a one-item catalogue has no neighbours
            return sp.csr_matrix((n, n), dtype=np.float32)
        items_by_users = sp.csc_matrix(train.T)  # [n_users, N] -> [N, n_users]
        norms = np.sqrt(np.asarray(train.power(2).sum(axis=0), dtype=np.float32).ravel())  # [1, N] -> [N]
        rows, cols, vals = [], [], []
        for start in range(0, n, _BLOCK):  # a loop over item blocks, not over items or users
            stop = min(start + _BLOCK, n)
            block = np.asarray((items_by_users @ train[:, start:stop]).todense())  # [N, U] @ [U, b] -> [N, b]
            if self.normalize:
                block /= norms[:, None] * norms[None, start:stop] + self.shrink + 1e-12  # [N, 1] * [1, b]
            block[np.arange(start, stop), np.arange(stop - start)] = 0.0  # an item is not its own neighbour
            top = np.argpartition(-block, k - 1, axis=0)[:k]  # [k, b] row indices of the k largest
            top_vals = np.take_along_axis(block, top, axis=0)  # [k, b]
            keep = top_vals > 0
            rows.append(top[keep])
            cols.append(np.broadcast_to(np.arange(start, stop), top.shape)[keep])
            vals.append(top_vals[keep])
        rows_, cols_, vals_ = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
        return sp.csr_matrix((vals_, (rows_, cols_)), shape=(n, n), dtype=np.float32)

    def get_embedding(self) -> sp.csr_matrix:
        """The pruned item-item similarity ``[N, N]`` (column ``j``: the neighbours of item ``j``)."""
        if self.similarity is None:
            raise RuntimeError("ItemKNN.get_embedding called before fit")
        return self.similarity

    def forward(self, users: Tensor) -> Tensor:  # [B] -> [B, n_items]
        if self.similarity is None or self.train_rows is None:
            raise RuntimeError("ItemKNN.forward called before fit")
        idx = users.detach().cpu().numpy()
        scores = (self.train_rows[idx] @ self.similarity).toarray()  # [B, N] @ [N, N] -> [B, N]
        return torch.from_numpy(scores.astype(np.float32, copy=False)).to(users.device)
