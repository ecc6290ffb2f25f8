"""DiffNet++-style attention social recommender: influence and interest diffusion with graph attention.

Wu, Li, Hong, Wang, Fu, Wang, "DiffNet++: A Neural Influence and Interest Diffusion Network for Social
Recommendation", TKDE 2020. Each layer ``k`` diffuses over the friend graph ``S`` and the user-item graph ``R``
with attention at two levels. Node level: a user ``a`` aggregates its friends (influence) and its items
(interest), an item ``i`` its users, each neighbour weighted by graph attention (GAT, Velickovic et al. 2018,
PyG's :class:`~torch_geometric.nn.conv.GATConv`: :math:`\\alpha_{ab} = \\mathrm{softmax}_b(\\mathrm{LeakyReLU}
(a^\\top [W p_a \\| W p_b]))`):

.. math::  \\tilde p^{k+1}_{aS} = \\sum_{b \\in S_a} \\alpha^{k+1}_{ab} W p^k_b, \\quad
           \\tilde p^{k+1}_{aI} = \\sum_{i \\in R_a} \\beta^{k+1}_{ai} W v^k_i, \\quad
           v^{k+1}_i = v^k_i + \\sum_{a \\in R_i} \\eta^{k+1}_{ia} W p^k_a.

Graph level: a second attention mixes the two views per user,
:math:`\\gamma_{a\\cdot} = \\mathrm{softmax}(\\mathrm{MLP}([p^k_a \\| \\tilde p^{k+1}_{aS}]),
\\mathrm{MLP}([p^k_a \\| \\tilde p^{k+1}_{aI}]))` and :math:`p^{k+1}_a = p^k_a + \\gamma_{a1} \\tilde p^{k+1}_{aS}
+ \\gamma_{a2} \\tilde p^{k+1}_{aI}`. The prediction joins every layer,
:math:`\\hat r_{ai} = [p^0_a \\| \\dots \\| p^K_a]^\\top [v^0_i \\| \\dots \\| v^K_i]`, trained with BPR and L2 on
the batch's layer-0 rows (the paper's free embeddings; it also fuses user and item features, left out here).
The graphs come from a PyG ``HeteroData`` (:func:`~ecomlab.models.graph_ops.interaction_graph`; friendship made
undirected) as non-persistent buffers built in ``fit``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn
from torch_geometric.nn.conv import GATConv

from ecomlab.models.base import Recommender, RecTrainData
from ecomlab.models.graph_ops import INTERACTS, REV_INTERACTS, TRUSTS, interaction_graph
from ecomlab.models.losses import bpr_loss, embedding_l2, positive_and_negative_rows, rows


class DiffNetPP(Recommender):
    trainable = True

    def __init__(self, n_users: int, n_items: int, embedding_dim: int = 64, n_layers: int = 2,
                 reg_weight: float = 1e-4, negative_slope: float = 0.2) -> None:
        super().__init__()
        if min(n_users, n_items, embedding_dim, n_layers) < 1:
            raise ValueError(f"n_users, n_items, embedding_dim, n_layers must be >= 1; got {n_users}, {n_items}, "
                             f"{embedding_dim}, {n_layers}")
        if reg_weight < 0:
            raise ValueError(f"reg_weight={reg_weight}; expected >= 0")
        self.n_users, self.n_items, self.n_layers, self.reg_weight = n_users, n_items, n_layers, reg_weight
        d = embedding_dim
        self.user_emb = nn.Embedding(n_users, d)
        self.item_emb = nn.Embedding(n_items, d)
        nn.init.normal_(self.user_emb.weight, std=0.1)
        nn.init.normal_(self.item_emb.weight, std=0.1)

        def gat(bipartite: bool) -> GATConv:  # one head, no self-loops: a node's own embedding enters via p^k
            return GATConv((d, d) if bipartite else d, d, heads=1, add_self_loops=False,
                           negative_slope=negative_slope)

        self.influence = nn.ModuleList(gat(False) for _ in range(n_layers))  # friends -> user
        self.interest = nn.ModuleList(gat(True) for _ in range(n_layers))  # items -> user
        self.item_update = nn.ModuleList(gat(True) for _ in range(n_layers))  # users -> item
        # graph-level attention: one score per (user, view), softmax over the two views
        self.view_score = nn.ModuleList(nn.Sequential(nn.Linear(2 * d, d), nn.ReLU(), nn.Linear(d, 1))
                                        for _ in range(n_layers))
        self.register_buffer("user_item", None, persistent=False)  # [2, E] user -> item
        self.register_buffer("item_user", None, persistent=False)  # [2, E] item -> user
        self.register_buffer("friends", None, persistent=False)  # [2, E_s] undirected friend edges
        self._cache: tuple[tuple[int, ...], Tensor, Tensor] | None = None

    def fit(self, data: RecTrainData) -> None:
        if data.social is None or len(data.social) == 0:
            raise ValueError("DiffNetPP needs social edges (user_id, friend_id) in the data set's `social` part; "
                             f"data set '{data.name}' has none: pick data with a friend graph")
        train = sp.csr_matrix(data.train)
        if train.shape != (self.n_users, self.n_items):
            raise ValueError(f"train matrix is {train.shape}; DiffNetPP was built for ({self.n_users}, {self.n_items})")
        edges = np.asarray(data.social, dtype=np.int64)
        if edges.ndim != 2 or edges.shape[1] != 2 or edges.min() < 0 or edges.max() >= self.n_users:
            raise ValueError(f"social edges must be an [E, 2] array of user indices in [0, {self.n_users}); "
                             f"got shape {edges.shape}")
        graph = interaction_graph(train, edges)
        device = self.user_emb.weight.device
        self.user_item = graph[INTERACTS].edge_index.to(device)
        self.item_user = graph[REV_INTERACTS].edge_index.to(device)
        self.friends = graph[TRUSTS].edge_index.to(device)
        self._cache = None

    def train(self, mode: bool = True) -> DiffNetPP:
        self._cache = None
        return super().train(mode)

    def _propagate(self) -> tuple[Tensor, Tensor]:
        """``[U, (K+1) d]`` and ``[I, (K+1) d]``: every layer's embeddings side by side."""
        if self.user_item is None:
            raise RuntimeError("DiffNetPP needs fit(data) before use: the graphs are built from the training data")
        p, v = self.user_emb.weight, self.item_emb.weight
        users, items = [p], [v]
        sizes = (self.n_items, self.n_users)
        for k in range(self.n_layers):
            social = self.influence[k](p, self.friends)  # [U, d]; 0 + bias for a user without friends
            interest = self.interest[k]((v, p), self.item_user, size=sizes)  # [I, d], [U, d] -> [U, d]
            v = v + self.item_update[k]((p, v), self.user_item, size=sizes[::-1])  # [U, d], [I, d] -> [I, d]
            views = torch.stack([social, interest], dim=1)  # 2 x [U, d] -> [U, 2, d]
            own = p.unsqueeze(1).expand_as(views)  # [U, d] -> [U, 2, d]
            gamma = torch.softmax(self.view_score[k](torch.cat([own, views], dim=2)), dim=1)  # [U, 2, 2d] -> [U, 2, 1]
            p = p + (gamma * views).sum(dim=1)  # [U, 2, d] -> [U, d]
            users.append(p)
            items.append(v)
        return torch.cat(users, dim=1), torch.cat(items, dim=1)  # (K+1) x [n, d] -> [n, (K+1) d]

    def get_embedding(self) -> tuple[Tensor, Tensor]:
        """Final ``([U, (K+1) d], [I, (K+1) d])``; computed once per evaluation (cached outside training)."""
        key = (*(p._version for p in self.parameters()), self.user_emb.weight.data_ptr())
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1], self._cache[2]
        users, items = self._propagate()
        if not self.training and not torch.is_grad_enabled():
            self._cache = (key, users, items)
        return users, items

    def forward(self, users: Tensor) -> Tensor:  # [B] -> [B, n_items]
        user_final, item_final = self.get_embedding()
        return user_final[users] @ item_final.T  # [B, (K+1) d] @ [(K+1) d, N] -> [B, N]

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        users, pos, neg = batch["users"], batch["pos"], batch["neg"]
        self._cache = None
        user_final, item_final = self._propagate()
        ranking = bpr_loss(rows(user_final, users), *positive_and_negative_rows(item_final, pos, neg))
        u0 = rows(self.user_emb, users)  # [B, d]
        p0, n0 = positive_and_negative_rows(self.item_emb, pos, neg)  # [B, d], [B, n_neg, d]
        return ranking + self.reg_weight * embedding_l2(u0, p0, n0)
