"""LightGCN: simplified graph convolution for collaborative filtering.

He, Deng, Wang, Li, Zhang, Wang, "LightGCN: Simplifying and Powering Graph Convolution Network for
Recommendation", SIGIR 2020. On the bipartite user-item graph with adjacency ``A`` (binarised training
interactions, both directions) and degree matrix ``D``, embeddings are smoothed without weights or
non-linearities and averaged over layers,

    E^(k+1) = D^-1/2 A D^-1/2 E^(k),        E = 1/(K+1) Σ_{k=0..K} E^(k),        ŷ_ui = <e_u, e_i>,

and only the layer-0 embeddings ``E^(0)`` are learned, with the BPR loss and L2 on the batch's layer-0 rows:

    L = -Σ ln σ(ŷ_ui - ŷ_uj) + λ (‖e⁰_u‖² + ‖e⁰_i‖² + ‖e⁰_j‖²) / B.

The graph is a PyG ``HeteroData`` (:func:`~ecomlab.models.graph_ops.interaction_graph`) flattened into one
undirected :class:`torch_geometric.EdgeIndex` with ``Â``'s values as edge weights, both non-persistent buffers
built in ``fit(data)``, so checkpoints hold only the layer-0 embeddings; each layer is PyG's ``LGConv`` fused into
one sparse product (:class:`~ecomlab.models.graph_ops.LightConv`). Evaluation propagates once: in eval mode the final embeddings are cached, and the cache is dropped on ``train()`` / ``eval()``, on every
training loss and whenever the embedding weights change in place (optimizer step, ``load_state_dict``).

``num_neighbors`` (e.g. ``[10, 10, 10]``, one cap per layer; ``null`` = full graph) trains on mini-batch
neighbourhoods instead (:mod:`~ecomlab.models.graph_sampling`, PyG's ``NodeLoader``): each step propagates over the
sampled neighbourhood of the batch's users and items only, an edge weighted by ``Â``'s value times
``deg(v) / sampled(v)`` for its target ``v`` (an unbiased estimate of the full sum; 1 when nothing was left out).
With ``-1`` caps the step equals full-graph training. Evaluation propagates over the full graph.
"""

from __future__ import annotations

import scipy.sparse as sp
import torch
from torch import Tensor, nn
from torch_geometric import EdgeIndex

from ecomlab.models.base import Recommender, RecTrainData
from ecomlab.models.graph_ops import LightConv, bipartite_adjacency, interaction_graph
from ecomlab.models.graph_sampling import neighbor_loader, sample_subgraph
from ecomlab.models.losses import bpr_loss, embedding_l2, positive_and_negative_rows, rows


class LightGCN(Recommender):
    trainable = True
    adjacency: Tensor | None

    def __init__(self, n_users: int, n_items: int, embedding_dim: int = 64, n_layers: int = 3,
                 reg_weight: float = 1e-4, num_neighbors: list[int] | None = None) -> None:
        super().__init__()
        if min(n_users, n_items, embedding_dim) < 1:
            raise ValueError(
                f"n_users, n_items, embedding_dim must be >= 1; got {n_users}, {n_items}, {embedding_dim}")
        if n_layers < 0:
            raise ValueError(f"n_layers={n_layers}; expected >= 0 (0 = plain matrix factorisation)")
        if reg_weight < 0:
            raise ValueError(f"reg_weight={reg_weight}; expected >= 0")
        if num_neighbors is not None and (len(num_neighbors) != n_layers or any(k == 0 or k < -1 for k in num_neighbors)):
            raise ValueError(f"num_neighbors={list(num_neighbors)}; expected one cap per layer ({n_layers}), each "
                             ">= 1 or -1 (all), or null for full-graph training")
        self.n_users, self.n_items, self.n_layers, self.reg_weight = n_users, n_items, n_layers, reg_weight
        self.num_neighbors = None if num_neighbors is None else [int(k) for k in num_neighbors]
        self.loader = None  # PyG NodeLoader of sampled neighbourhoods, set by fit when num_neighbors is set
        self.user_emb = nn.Embedding(n_users, embedding_dim)
        self.item_emb = nn.Embedding(n_items, embedding_dim)
        nn.init.normal_(self.user_emb.weight, std=0.1)  # the authors' initialisation
        nn.init.normal_(self.item_emb.weight, std=0.1)
        self.conv = LightConv()  # no weights: LightGCN learns only E^(0)
        self.register_buffer("adjacency", None, persistent=False)  # [U + N, U + N] EdgeIndex, set by fit
        self.register_buffer("edge_weight", None, persistent=False)  # [E] values of D^-1/2 A D^-1/2
        self.register_buffer("degree", None, persistent=False)  # [U + N], for sampled training only
        self._cache: tuple[tuple[int, ...], Tensor, Tensor] | None = None

    def fit(self, data: RecTrainData) -> None:
        if data.train.shape != (self.n_users, self.n_items):
            raise ValueError(
                f"train matrix is {data.train.shape}, model was built for {(self.n_users, self.n_items)}")
        adjacency, weight = bipartite_adjacency(interaction_graph(sp.csr_matrix(data.train)))  # items follow users
        device = self.user_emb.weight.device
        self.adjacency, self.edge_weight = adjacency.to(device), weight.to(device)
        if self.num_neighbors is not None:  # the sampler works on the host; sampled ids move to the device
            self.loader = neighbor_loader(adjacency.as_tensor(), adjacency.sparse_size(0), self.num_neighbors,
                                          edge_weight=weight)
            self.degree = adjacency.get_indptr().diff().to(device)  # [U + N] full-graph degrees
        self._cache = None

    def train(self, mode: bool = True) -> LightGCN:
        self._cache = None
        return super().train(mode)

    def _propagate(self) -> tuple[Tensor, Tensor]:
        if self.adjacency is None:
            raise RuntimeError("LightGCN needs the interaction graph: call fit(data) (RankingTask.prepare)")
        layer = torch.cat([self.user_emb.weight, self.item_emb.weight])  # [U, d] ++ [N, d] -> [U + N, d]
        total = layer
        for _ in range(self.n_layers):  # a loop over layers, not over nodes
            layer = self.conv(layer, self.adjacency, self.edge_weight)  # [U + N, U + N] @ [U + N, d] -> [U + N, d]
            total = total + layer
        final = total / (self.n_layers + 1)
        return final[: self.n_users], final[self.n_users :]  # [U + N, d] -> [U, d], [N, d]

    def get_embedding(self) -> tuple[Tensor, Tensor]:
        """Final (layer-averaged) ``([n_users, d], [n_items, d])``; cached in eval mode."""
        if self.training:
            self._cache = None
            return self._propagate()
        # Parameter versions change on every in-place update, so a stale cache is never used.
        key = (self.user_emb.weight._version, self.item_emb.weight._version, id(self.adjacency),
               self.user_emb.weight.data_ptr())
        if self._cache is None or self._cache[0] != key:
            with torch.no_grad():
                self._cache = (key, *self._propagate())
        return self._cache[1], self._cache[2]

    def forward(self, users: Tensor) -> Tensor:
        user_final, item_final = self.get_embedding()
        return user_final[users] @ item_final.T  # [B, d] @ [d, N] -> [B, N]

    def _sampled(self, nodes: Tensor) -> Tensor:
        """Final embeddings ``[S, d]`` of the distinct nodes ``nodes`` ``[S]`` (users, then ``U + item``) from
        their sampled neighbourhood."""
        sub = sample_subgraph(self.loader, nodes.cpu())
        n_id = sub.n_id.to(nodes.device)  # [M], the seeds first
        is_user = n_id < self.n_users
        layer = torch.where(is_user.unsqueeze(1), rows(self.user_emb, n_id.clamp(max=self.n_users - 1)),
                            rows(self.item_emb, (n_id - self.n_users).clamp(min=0)))  # [M, d], two gathers
        edges = sub.edge_index.to(nodes.device)  # [2, E_s] local, neighbour -> sampled-for
        sampled = torch.bincount(edges[1], minlength=len(n_id)).clamp(min=1)  # [M]
        weight = sub.edge_weight.to(nodes.device) * (self.degree[n_id] / sampled)[edges[1]]  # [E_s]
        index, perm = EdgeIndex(edges, sparse_size=(len(n_id), len(n_id))).sort_by("col")
        weight = weight[perm] if perm is not None else weight
        total = layer
        for _ in range(self.n_layers):
            layer = self.conv(layer, index, weight)  # [M, M] @ [M, d] -> [M, d]
            total = total + layer
        return total[: len(nodes)] / (self.n_layers + 1)  # [M, d] -> [S, d]

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        users, pos, neg = batch["users"], batch["pos"], batch["neg"]
        self._cache = None
        if self.loader is None:
            user_final, item_final = self._propagate()
            ranking = bpr_loss(rows(user_final, users), *positive_and_negative_rows(item_final, pos, neg))
        else:
            nodes = torch.cat([users, self.n_users + pos, self.n_users + neg.flatten()])  # [B (2 + n)]
            distinct, where = torch.unique(nodes, return_inverse=True)  # [S], [B (2 + n)]
            final = self._sampled(distinct)[where]  # [S, d] -> [B (2 + n), d]
            u, p, n = final.split([len(users), len(pos), neg.numel()])
            ranking = bpr_loss(u, p, n.view(*neg.shape, -1))  # [B n, d] -> [B, n, d]
        u0 = rows(self.user_emb, users)  # [B, d]
        p0, n0 = positive_and_negative_rows(self.item_emb, pos, neg)  # [B, d], [B, n, d]
        return ranking + self.reg_weight * embedding_l2(u0, p0, n0)
