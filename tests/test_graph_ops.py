"""The PyG graph layer: the training graphs as HeteroData, their normalised EdgeIndex adjacencies, the fused
LightGCN convolution (forward and gradient against dense products), and the rectangular product of the text
two-tower."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch_geometric import EdgeIndex
from torch_geometric.nn.conv import LGConv

from ecomlab.models.graph_ops import (
    INTERACTS,
    REV_INTERACTS,
    TRUSTS,
    LightConv,
    bipartite_adjacency,
    csr_tensor,
    friend_adjacency,
    interaction_graph,
    spmm,
)


def _train(n_users: int = 12, n_items: int = 18, seed: int = 0) -> sp.csr_matrix:
    a = sp.random(n_users, n_items, density=0.2, random_state=np.random.default_rng(seed), format="csr",
                  dtype=np.float32)
    a.data *= 5  # weights other than 1 still count as one edge
    a = a.tolil()
    a[:, 7] = 0  # an item nobody has: an isolated node
    return a.tocsr()


def _dense_norm(a: np.ndarray) -> np.ndarray:
    deg = a.sum(axis=1)
    inv = np.where(deg > 0, np.maximum(deg, 1e-12) ** -0.5, 0.0)
    return inv[:, None] * a * inv[None, :]


def test_interaction_graph_is_an_undirected_hetero_graph() -> None:
    train = _train()
    social = np.array([[0, 1], [1, 0], [2, 3], [4, 4], [5, 6], [5, 6]])  # both ways, one way, self-loop, repeat
    graph = interaction_graph(train, social)
    assert set(graph.node_types) == {"user", "item"}
    assert set(graph.edge_types) == {INTERACTS, REV_INTERACTS, TRUSTS}
    assert graph["user"].num_nodes == 12 and graph["item"].num_nodes == 18
    assert graph[INTERACTS].edge_index.shape[1] == train.nnz
    torch.testing.assert_close(graph[REV_INTERACTS].edge_index.flip(0).sort(dim=1).values,
                               graph[INTERACTS].edge_index.sort(dim=1).values)
    trusts = {tuple(e) for e in graph[TRUSTS].edge_index.T.tolist()}
    assert trusts == {(0, 1), (1, 0), (2, 3), (3, 2), (5, 6), (6, 5)}  # symmetric, no loop, no repeat
    assert TRUSTS not in interaction_graph(train).edge_types


def test_adjacencies_are_normalised_undirected_edge_indices() -> None:
    train = _train()
    index, weight = bipartite_adjacency(interaction_graph(train))
    assert isinstance(index, EdgeIndex) and index.is_undirected and index.is_sorted_by_col
    assert index.sparse_size() == (30, 30)
    binary = (train.toarray() != 0).astype(float)
    a = np.block([[np.zeros((12, 12)), binary], [binary.T, np.zeros((18, 18))]])
    dense = torch.sparse_coo_tensor(index.as_tensor(), weight, (30, 30)).to_dense().numpy()
    np.testing.assert_allclose(dense, _dense_norm(a), rtol=1e-6, atol=1e-7)
    assert not dense[12 + 7].any()  # the isolated item stays zero
    friends, fw = friend_adjacency(interaction_graph(train, np.array([[0, 1], [1, 2]])))
    assert friends.sparse_size() == (12, 12) and friends.is_undirected
    f = np.zeros((12, 12))
    f[0, 1] = f[1, 0] = f[1, 2] = f[2, 1] = 1
    np.testing.assert_allclose(torch.sparse_coo_tensor(friends.as_tensor(), fw, (12, 12)).to_dense().numpy(),
                               _dense_norm(f), rtol=1e-6)


def test_light_conv_forward_and_gradient_equal_the_dense_products() -> None:
    index, weight = bipartite_adjacency(interaction_graph(_train()))
    dense = torch.sparse_coo_tensor(index.as_tensor(), weight, (30, 30)).to_dense().double()
    conv = LightConv()
    x = torch.randn(30, 5, requires_grad=True)
    w = torch.randn(30, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the product stays in fp32
        out = conv(conv(x, index, weight), index, weight)  # two layers, like a propagation
    assert out.dtype == torch.float32
    (out * w).sum().backward()
    x_ref = x.detach().double().requires_grad_()
    ((dense @ (dense @ x_ref)) * w.double()).sum().backward()
    torch.testing.assert_close(out.detach().double(), dense @ (dense @ x.detach().double()), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(x.grad.double(), x_ref.grad, rtol=1e-5, atol=1e-6)
    # the same values as PyG's own LGConv (which gathers and scatters [E, d] messages)
    torch.testing.assert_close(conv(x, index, weight), LGConv(normalize=False)(x, index.as_tensor(), weight))


def test_light_conv_takes_the_fused_sparse_product(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the fused path LGConv materialises one message per edge: ~12x slower on LastFM (measured in
    experiments/perf/graph_pyg.md); the fused path is what keeps the PyG layer as fast as before."""
    index, weight = bipartite_adjacency(interaction_graph(_train()))
    calls = []
    original = EdgeIndex.matmul
    monkeypatch.setattr(EdgeIndex, "matmul", lambda *a, **k: calls.append(1) or original(*a, **k))
    LightConv()(torch.randn(30, 4), index, weight)
    assert calls == [1]


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
