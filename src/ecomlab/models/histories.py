"""Users' training histories as tensors on the model's device: ragged gathers, membership and history sums.

With :math:`H \\in \\{0, 1\\}^{U \\times N}` the binary training matrix (:math:`H_{ui} = 1` iff user :math:`u`
interacted with item :math:`i`), a model that pools item vectors :math:`V \\in \\mathbb{R}^{N \\times d}` over
histories needs :math:`H V` (every user's sum, one sparse product at fixed sizes) or the rows of a batch of
users (:func:`csr_entries`, a ragged gather whose size only the data knows, unless the host counted it).
Membership :math:`H_{ui} = 1` is a binary search over the sorted keys :math:`uN + i`, so its output has the
query's shape: on a GPU nothing waits for the device.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from ecomlab.models.graph_ops import csr_tensor, spmm


def csr_entries(indptr: torch.Tensor, indices: torch.Tensor, rows: torch.Tensor,
                total: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The entries of rows ``rows`` of a CSR pattern as coordinates ``(batch_row [nnz_B], col [nnz_B])``, built on
    ``rows.device``, and each row's number of entries ``[len(rows)]``.

    ``total`` is ``nnz_B`` when the caller knows it (counted on the host): the output size is then not read back
    from the device, which on a GPU is a synchronisation per call.
    """
    start = indptr[rows]
    counts = indptr[rows + 1] - start  # [B]
    batch_row = torch.repeat_interleave(torch.arange(len(rows), device=rows.device), counts,
                                        output_size=total)  # [nnz_B]
    first = torch.repeat_interleave(start - (torch.cumsum(counts, 0) - counts), counts,
                                    output_size=len(batch_row))  # [nnz_B]
    cols = indices[first + torch.arange(len(batch_row), device=rows.device)]  # [nnz_B]
    return batch_row, cols, counts


class UserHistories(nn.Module):
    """:math:`H` in the forms its uses need, as non-persistent buffers (rebuilt by :meth:`fit`, never saved)."""

    indptr: Tensor | None
    items: Tensor | None
    matrix: Tensor | None
    matrix_t: Tensor | None
    keys: Tensor | None
    count: Tensor | None

    def __init__(self) -> None:
        super().__init__()
        for name in ("indptr", "items", "matrix", "matrix_t", "keys", "count"):
            self.register_buffer(name, None, persistent=False)
        self.n_items = 0

    def fit(self, train: sp.spmatrix, device: torch.device) -> None:
        """Histories from a ``[U, N]`` training matrix: any non-zero weight is one interaction."""
        hist = sp.csr_matrix(train != 0, dtype=np.float32)
        hist.sort_indices()
        n_users, self.n_items = hist.shape
        self.indptr = torch.from_numpy(hist.indptr.astype(np.int64)).to(device)  # [U + 1]
        self.items = torch.from_numpy(hist.indices.astype(np.int64)).to(device)  # [nnz]
        self.matrix, self.matrix_t = csr_tensor(hist).to(device), csr_tensor(hist.T).to(device)  # [U, N], [N, U]
        self.count = torch.from_numpy(np.diff(hist.indptr).astype(np.float32)).to(device)  # [U]
        # Keys sort as the CSR rows do; a sentinel above every key keeps a search's position inside the array.
        users = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(hist.indptr))  # [nnz]
        keys = np.append(users * self.n_items + hist.indices, n_users * self.n_items)  # [nnz + 1]
        self.keys = torch.from_numpy(keys).to(device)

    def gather(self, users: Tensor) -> tuple[Tensor, Tensor]:
        """The users' history items concatenated ``[sum of lengths]``, with bag offsets ``[B]``: sized by the
        data (a read-back on a GPU); :meth:`sums` is the fixed-size form."""
        _, items, lengths = csr_entries(self.indptr, self.items, users)  # type: ignore[arg-type]
        return items, torch.cumsum(lengths, 0) - lengths

    def contains(self, users: Tensor, items: Tensor) -> Tensor:
        """Whether each ``items`` entry is in the history of the ``users`` entry it broadcasts with (bool)."""
        query = users * self.n_items + items  # broadcast, e.g. [B, 1] and [1, M] -> [B, M]
        return self.keys[torch.searchsorted(self.keys, query)] == query  # type: ignore[index,arg-type]

    def mask(self, users: Tensor, items: Tensor) -> Tensor:
        """``[B, M]`` bool for distinct ``items``, as :meth:`contains` over ``users[:, None], items[None, :]``, in
        O(B h + N) for a batch's histories of length ``h`` rather than O(B M log nnz): the CPU's form (host-sized)."""
        rows, flat, _ = csr_entries(self.indptr, self.items, users)  # type: ignore[arg-type]  # [H] each
        column = torch.full((self.n_items,), -1, dtype=torch.long, device=users.device)  # [N]
        column[items] = torch.arange(len(items), device=users.device)
        hit = column[flat] >= 0
        mask = torch.zeros(len(users), len(items), dtype=torch.bool, device=users.device)  # [B, M]
        mask[rows[hit], column[flat[hit]]] = True
        return mask

    def sums(self, table: Tensor) -> Tensor:
        """:math:`H V`: every user's sum of history rows of ``table`` ``[N, d]`` -> ``[U, d]``, differentiable."""
        return spmm(self.matrix, table, self.matrix_t)  # type: ignore[arg-type]  # [U, N] @ [N, d] -> [U, d]
