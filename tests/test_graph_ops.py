"""The shared sparse products: normalisation, the symmetric-matrix backward, a rectangular one with its transpose."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from ecomlab.models.graph_ops import csr_tensor, spmm, sym_norm_csr, sym_spmm


def _graph(n: int = 30, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    a = sp.random(n, n, density=0.15, random_state=rng, format="csr")
    a = ((a + a.T) > 0).astype(np.float32)
    a.setdiag(0)
    a[3, :] = 0  # an isolated node
    a[:, 3] = 0
    a.eliminate_zeros()
    return sp.csr_matrix(a)


def test_sym_norm_matches_its_formula_and_leaves_isolated_nodes_zero() -> None:
    a = _graph()
    deg = a.sum(axis=1).A.ravel()
    inv = np.where(deg > 0, deg, 1.0) ** -0.5 * (deg > 0)
    expected = np.diag(inv) @ a.toarray() @ np.diag(inv)
    got = sym_norm_csr(a).to_dense().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    assert not got[3].any() and not got[:, 3].any()


def test_sym_spmm_forward_and_gradient_equal_the_dense_products() -> None:
    adj = sym_norm_csr(_graph())
    dense = adj.to_dense().double()
    x = torch.randn(30, 5, dtype=torch.float32, requires_grad=True)
    weight = torch.randn(30, 5)
    (sym_spmm(adj, sym_spmm(adj, x)) * weight).sum().backward()  # two layers, like a propagation
    x_ref = x.detach().double().requires_grad_()
    (dense @ (dense @ x_ref) * weight.double()).sum().backward()
    torch.testing.assert_close(sym_spmm(adj, x).detach().double(), dense @ x.detach().double(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(x.grad.double(), x_ref.grad, rtol=1e-5, atol=1e-6)


def test_spmm_of_a_rectangular_matrix_backpropagates_through_its_transpose() -> None:
    rng = np.random.default_rng(1)
    a = sp.random(12, 30, density=0.2, random_state=rng, format="csr", dtype=np.float32)  # [m, n], m != n
    adj, adj_t = csr_tensor(a), csr_tensor(a.T)
    x = torch.randn(30, 4, requires_grad=True)
    weight = torch.randn(12, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the product stays in fp32
        out = spmm(adj, x, adj_t)  # [12, 30] @ [30, 4] -> [12, 4]
    assert out.dtype == torch.float32
    (out * weight).sum().backward()
    dense = torch.from_numpy(a.toarray()).double()
    x_ref = x.detach().double().requires_grad_()
    ((dense @ x_ref) * weight.double()).sum().backward()
    torch.testing.assert_close(out.detach().double(), dense @ x.detach().double(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(x.grad.double(), x_ref.grad, rtol=1e-5, atol=1e-6)
