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
Neighbours are pruned row by row of the sparse co-occurrence matrix :math:`R^\top R`, a block of items at a
time: each block's rows are laid out as a ``[b, w]`` matrix padded to its longest row (items are taken in order
of their co-occurrence bound, so rows in a block have similar lengths) and pruned with one ``topk``. Memory is
bounded by :data:`_BLOCK_CELLS` per block and work by the co-occurrences, never ``n_items^2``. Only positive
similarities are kept; ties at the k-th place go to the lower item index.

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

#: cells of one block's padded co-occurrence rows (float32 values + int32 columns: 128 MiB)
_BLOCK_CELLS = 1 << 24


def _top_positive(values: Tensor, columns: Tensor, k: int, sentinel: int) -> tuple[Tensor, Tensor, Tensor]:
    """Each row's ``k`` largest positive ``values`` ``[b, w]`` (padding: ``-inf``) as ``(row, column, value)``
    triples, ``columns`` ``[b, w]`` naming each cell's column; ties at the k-th place go to the lower column.
    ``sentinel`` is larger than every column."""
    b, w = values.shape
    k = min(k, w)
    top, at = torch.topk(values, min(k + 1, w), dim=1)  # [b, k + 1]
    kth = top[:, k - 1]  # [b]
    tied = (top[:, k] == kth) & (kth > 0) if w > k else torch.zeros(b, dtype=torch.bool)
    clear = ~tied  # topk's first k are the set: the (k + 1)-th is lower
    vals = top[clear, :k]  # [c, k]
    keep = vals > 0
    parts = [(torch.arange(b)[clear, None].expand(-1, k)[keep], columns[clear].gather(1, at[clear, :k])[keep],
              vals[keep])]
    if bool(tied.any()):  # every value above the k-th, then the lowest columns holding the k-th
        rows = tied.nonzero().squeeze(1)  # [t]
        v, c, cut = values[rows], columns[rows], kth[rows, None]  # [t, w], [t, w], [t, 1]
        above = v > cut  # [t, w]
        r, q = above.nonzero().unbind(1)
        parts.append((rows[r], c[r, q], v[r, q]))
        need = k - above.sum(dim=1, keepdim=True)  # [t, 1], >= 1
        lowest = torch.topk(torch.where(v == cut, c, sentinel), int(need.max()), dim=1, largest=False).values
        pick = torch.arange(lowest.shape[1]) < need  # [t, m]: the first need[t] of them
        parts.append((rows[:, None].expand_as(lowest)[pick], lowest[pick], cut.expand_as(lowest)[pick]))
    row, col, value = (torch.cat(cells) for cells in zip(*parts, strict=True))  # rows, columns, values
    return row, col, value


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
        by_item = sp.csr_matrix(train.T)  # [U, N] -> [N, U]
        norms = np.sqrt(np.diff(by_item.indptr)).astype(np.float32)  # binary columns: |r_i| = sqrt(#users)
        # item i co-occurs with at most min(N, sum of its users' history lengths) items
        bound = np.minimum(by_item @ np.diff(train.indptr).astype(np.int64), n)  # [N]
        order = np.argsort(bound, kind="stable")  # blocks of items with similar row lengths
        rows, cols, vals = [], [], []
        start = 0
        while start < n:  # a loop over item blocks, not over items or users
            # the most items whose padded rows fit the budget at the widest bound so far (bounds ascend)
            fits = np.arange(1, n - start + 1) * np.maximum(bound[order[start:]], 1) <= _BLOCK_CELLS
            items = order[start : start + max(1, int(np.count_nonzero(fits)))]  # [b]
            start += len(items)
            co = by_item[items] @ train  # [b, U] @ [U, N] -> [b, N], sparse co-occurrence counts
            if co.nnz == 0:
                continue
            lengths = np.diff(co.indptr)  # [b]
            row = np.repeat(np.arange(len(items)), lengths)  # [nnz]
            sim = co.data.astype(np.float32)  # [nnz]
            if self.normalize:
                sim /= norms[items][row] * norms[co.indices] + self.shrink
            sim[co.indices == items[row]] = 0.0  # an item is not its own neighbour
            width = int(lengths.max())
            at = np.arange(co.nnz) + np.repeat(np.arange(len(items)) * width - co.indptr[:-1], lengths)  # [nnz]
            padded = np.full(len(items) * width, -np.inf, dtype=np.float32)  # [b * w]
            padded[at] = sim
            columns = np.full(len(items) * width, n, dtype=np.int32)
            columns[at] = co.indices
            r, c, v = _top_positive(torch.from_numpy(padded).view(-1, width),  # [b * w] -> [b, w]
                                   torch.from_numpy(columns).view(-1, width), k, n)
            rows.append(c.numpy())  # row i of the similarity: item i is a neighbour of column j
            cols.append(items[r.numpy()])
            vals.append(v.numpy())
        if not vals:
            return sp.csr_matrix((n, n), dtype=np.float32)
        return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n),
                             dtype=np.float32)

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
