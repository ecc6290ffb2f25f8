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
"""

from __future__ import annotations

import scipy.sparse as sp
import torch
from torch import Tensor, nn

from ecomlab.models.base import Recommender, RecTrainData
from ecomlab.models.graph_ops import LightConv, bipartite_adjacency, interaction_graph
from ecomlab.models.losses import bpr_loss, embedding_l2, positive_and_negative_rows, rows


class LightGCN(Recommender):
    trainable = True
    adjacency: Tensor | None

    def __init__(self, n_users: int, n_items: int, embedding_dim: int = 64, n_layers: int = 3,
                 reg_weight: float = 1e-4) -> None:
        super().__init__()
        if min(n_users, n_items, embedding_dim) < 1:
            raise ValueError(
                f"n_users, n_items, embedding_dim must be >= 1; got {n_users}, {n_items}, {embedding_dim}")
        if n_layers < 0:
            raise ValueError(f"n_layers={n_layers}; expected >= 0 (0 = plain matrix factorisation)")
        if reg_weight < 0:
            raise ValueError(f"reg_weight={reg_weight}; expected >= 0")
        self.n_users, self.n_items, self.n_layers, self.reg_weight = n_users, n_items, n_layers, reg_weight
        self.user_emb = nn.Embedding(n_users, embedding_dim)
        self.item_emb = nn.Embedding(n_items, embedding_dim)
        nn.init.normal_(self.user_emb.weight, std=0.1)  # the authors' initialisation
        nn.init.normal_(self.item_emb.weight, std=0.1)
        self.conv = LightConv()  # no weights: LightGCN learns only E^(0)
        self.register_buffer("adjacency", None, persistent=False)  # [U + N, U + N] EdgeIndex, set by fit
        self.register_buffer("edge_weight", None, persistent=False)  # [E] values of D^-1/2 A D^-1/2
        self._cache: tuple[tuple[int, ...], Tensor, Tensor] | None = None

    def fit(self, data: RecTrainData) -> None:
        if data.train.shape != (self.n_users, self.n_items):
            raise ValueError(
                f"train matrix is {data.train.shape}, model was built for {(self.n_users, self.n_items)}")
        adjacency, weight = bipartite_adjacency(interaction_graph(sp.csr_matrix(data.train)))  # items follow users
        device = self.user_emb.weight.device
        self.adjacency, self.edge_weight = adjacency.to(device), weight.to(device)
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

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        users, pos, neg = batch["users"], batch["pos"], batch["neg"]
        self._cache = None
        user_final, item_final = self._propagate()
        ranking = bpr_loss(rows(user_final, users), *positive_and_negative_rows(item_final, pos, neg))
        u0 = rows(self.user_emb, users)  # [B, d]
        p0, n0 = positive_and_negative_rows(self.item_emb, pos, neg)  # [B, d], [B, n, d]
        return ranking + self.reg_weight * embedding_l2(u0, p0, n0)
