"""The graph layer of the graph recommenders, on torch-geometric (PyG).

* :func:`interaction_graph` holds the training data as a PyG :class:`~torch_geometric.data.HeteroData`: node
  types ``user`` and ``item``, edge types ``(user, interacts, item)``, ``(item, rev_interacts, user)`` and,
  with a friend graph, ``(user, trusts, user)`` made undirected (PyG's ``ToUndirected``; self-loops removed).
* :func:`bipartite_adjacency` / :func:`friend_adjacency` turn it into a :class:`torch_geometric.EdgeIndex`
  (sorted by column, flagged undirected, with its CSR/CSC cached) plus the symmetric normalisation
  :math:`\\hat A = D^{-1/2} A D^{-1/2}` as edge weights (PyG's ``gcn_norm``, no self-loops; isolated nodes stay
  zero).
* :class:`LightConv` is PyG's :class:`~torch_geometric.nn.conv.LGConv` with its message passing fused into one
  sparse-dense product over the ``EdgeIndex`` (``EdgeIndex.matmul``, whose backward reuses the cached CSR),
  instead of LGConv's gather of ``[E, d]`` messages and scatter, which is ~12x slower on CPU.

:func:`spmm` / :func:`csr_tensor` remain for a rectangular, non-graph product: the text two-tower's
user-history matrix (``models/histories.py``).
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch
import torch_geometric.transforms as T
from torch import Tensor
from torch_geometric import EdgeIndex
from torch_geometric.data import HeteroData
from torch_geometric.nn.conv import LGConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import remove_self_loops

INTERACTS = ("user", "interacts", "item")
REV_INTERACTS = ("item", "rev_interacts", "user")
TRUSTS = ("user", "trusts", "user")


def interaction_graph(train: sp.spmatrix, social: np.ndarray | None = None) -> HeteroData:
    """The ``[U, N]`` training matrix (any non-zero weight is one edge) and the ``[E, 2]`` ``(user, friend)``
    pairs as an undirected :class:`HeteroData` (users and items; interacts, rev_interacts, trusts)."""
    coo = sp.coo_matrix(train)
    coo.sum_duplicates()
    nz = coo.data != 0
    graph = HeteroData()
    graph["user"].num_nodes, graph["item"].num_nodes = coo.shape
    # [2, E] int64: row = user, col = item
    graph[INTERACTS].edge_index = torch.from_numpy(np.vstack([coo.row[nz], coo.col[nz]]).astype(np.int64))
    if social is not None:
        edges = torch.from_numpy(np.asarray(social, dtype=np.int64).reshape(-1, 2).T.copy())  # [E, 2] -> [2, E]
        graph[TRUSTS].edge_index = remove_self_loops(edges)[0]
    return T.ToUndirected()(graph)  # adds rev_interacts; trusts both ways, duplicates merged


def _normalised(edge_index: Tensor, n: int) -> tuple[EdgeIndex, Tensor]:
    index = EdgeIndex(edge_index, sparse_size=(n, n), is_undirected=True).sort_by("col")[0]
    index, weight = gcn_norm(index, None, n, add_self_loops=False)  # D^-1/2 A D^-1/2 as [E] weights
    index.fill_cache_()  # CSR and CSC once here, not in the first training step
    return index, weight


def bipartite_adjacency(graph: HeteroData) -> tuple[EdgeIndex, Tensor]:
    """The user-item graph as one undirected ``[U + N, U + N]`` ``EdgeIndex`` (items follow users) and its
    normalised edge weights ``[E]``."""
    both = graph.edge_type_subgraph([INTERACTS, REV_INTERACTS]).to_homogeneous(add_node_type=False,
                                                                              add_edge_type=False)
    return _normalised(both.edge_index, graph["user"].num_nodes + graph["item"].num_nodes)  # isolated ones too


def friend_adjacency(graph: HeteroData) -> tuple[EdgeIndex, Tensor]:
    """The undirected friend graph ``[U, U]`` and its normalised edge weights (empty without ``trusts``)."""
    n = graph["user"].num_nodes
    edges = graph[TRUSTS].edge_index if TRUSTS in graph.edge_types else torch.zeros(2, 0, dtype=torch.long)
    return _normalised(edges, n)


class LightConv(LGConv):
    """LGConv (``x' = Â x`` for pre-normalised edge weights) fused into one ``EdgeIndex`` sparse product.

    Runs in fp32 even under bf16 autocast: sparse kernels do not mix dtypes.
    """

    SUPPORTS_FUSED_EDGE_INDEX = True  # LGConv itself leaves it False and falls back to gather + scatter

    def __init__(self) -> None:
        super().__init__(normalize=False)  # weights come normalised from gcn_norm, once per graph

    def message_and_aggregate(self, edge_index: Tensor, x: Tensor, edge_weight: Tensor | None) -> Tensor:
        if not isinstance(edge_index, EdgeIndex):
            return super().message_and_aggregate(edge_index, x)
        with torch.autocast(device_type=x.device.type, enabled=False):
            # Â^T x = Â x (flow source -> target); [n, n] @ [n, d] -> [n, d]
            return edge_index.matmul(x.float(), input_value=edge_weight, transpose=True)


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
    backward multiplies by ``adj_t``, the same matrix transposed as its own CSR tensor ``[n, m]`` (the text
    two-tower's history matrix; the graph models use :class:`LightConv`)."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        return _SpMM.apply(adj, adj_t, x.to(adj.dtype))
