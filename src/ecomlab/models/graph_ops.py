"""Sparse graph operations shared by the graph recommenders (LightGCN, the social GNN) and the text two-tower.

The graph models propagate with symmetrically normalised adjacencies :math:`\\hat A = D^{-1/2} A D^{-1/2}` of undirected
graphs, so :math:`\\hat A^\\top = \\hat A`. :func:`sym_spmm` uses that in its backward pass,
:math:`\\partial L / \\partial X = \\hat A^\\top G = \\hat A G`: one more CSR product with the same matrix,
where ``torch.sparse.mm``'s generic backward transposes (re-sorts) the sparse matrix on every call, which
dominates a training step on large graphs. :func:`spmm` does the same for a matrix that is not symmetric (the
two-tower's user-history matrix :math:`H`), with its transpose built once in ``fit``.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor


def sym_norm_csr(adj: sp.spmatrix) -> Tensor:
    """``D^-1/2 A D^-1/2`` of a square, symmetric adjacency as a torch CSR tensor (isolated nodes stay zero)."""
    adj = sp.csr_matrix(adj, dtype=np.float32)
    if adj.shape[0] != adj.shape[1]:
        raise ValueError(f"adjacency must be square; got {adj.shape}")
    deg = np.asarray(adj.sum(axis=1)).ravel()  # [n, n] -> [n]
    inv_sqrt = np.zeros_like(deg)
    inv_sqrt[deg > 0] = deg[deg > 0] ** -0.5
    norm = sp.diags(inv_sqrt) @ adj @ sp.diags(inv_sqrt)  # [n, n]
    return csr_tensor(norm)


def csr_tensor(matrix: sp.spmatrix) -> Tensor:
    """A SciPy sparse matrix as a float32 torch CSR tensor with sorted column indices."""
    csr = sp.csr_matrix(matrix, dtype=np.float32)
    csr.sort_indices()
    with warnings.catch_warnings():  # torch flags CSR as beta; sparse CSR @ dense is all we use
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(torch.from_numpy(csr.indptr.astype(np.int64)),
                                       torch.from_numpy(csr.indices.astype(np.int64)),
                                       torch.from_numpy(csr.data), size=csr.shape, check_invariants=True)


class _SpMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, adj: Tensor, adj_t: Tensor, x: Tensor) -> Tensor:
        ctx.save_for_backward(adj_t)
        return torch.sparse.mm(adj, x)  # [m, n] @ [n, d] -> [m, d]

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple[None, None, Tensor]:
        (adj_t,) = ctx.saved_tensors
        return None, None, torch.sparse.mm(adj_t, grad.contiguous())  # A^T G: [n, m] @ [m, d] -> [n, d]


def spmm(adj: Tensor, x: Tensor, adj_t: Tensor) -> Tensor:
    """``adj @ x`` for a sparse ``adj`` ``[m, n]`` and dense ``x`` ``[n, d]``, differentiable in ``x``; its
    backward multiplies by ``adj_t``, the same matrix transposed as its own CSR tensor ``[n, m]``.

    Runs in ``adj``'s dtype (fp32) even under bf16 autocast: sparse kernels do not mix dtypes.
    """
    with torch.autocast(device_type=x.device.type, enabled=False):
        return _SpMM.apply(adj, adj_t, x.to(adj.dtype))


def sym_spmm(adj: Tensor, x: Tensor) -> Tensor:
    """``adj @ x`` for a symmetric sparse ``adj`` ``[n, n]`` (its own transpose) and dense ``x`` ``[n, d]``."""
    return spmm(adj, x, adj)
