"""Social graph recommendation: LightGCN propagation fused with social diffusion, optional contrastive term.

SocialLGN (Liao, Zhou, Xie, Wang, Cheng, "SocialLGN: Light Graph Convolution Network for Social
Recommendation", Information Sciences 2022), in the line of DiffNet (Wu et al., SIGIR 2019). Per layer ``k``
items aggregate their users and users aggregate both their items and their friends, without weights or
non-linearities (He et al., LightGCN, SIGIR 2020):

.. math::  e_i^{(k+1)} = \\sum_{u \\in N_i} \\tfrac{e_u^{(k)}}{\\sqrt{|N_i||N_u|}}, \\quad
           e_{u,I}^{(k+1)} = \\sum_{i \\in N_u} \\tfrac{e_i^{(k)}}{\\sqrt{|N_u||N_i|}}, \\quad
           e_{u,S}^{(k+1)} = \\sum_{v \\in F_u} \\tfrac{e_v^{(k)}}{\\sqrt{|F_u||F_v|}},

.. math::  e_u^{(k+1)} = \\mathrm{fuse}(e_{u,I}^{(k+1)}, e_{u,S}^{(k+1)}), \\qquad
           e = \\tfrac{1}{K+1} \\sum_{k=0}^{K} e^{(k)}, \\qquad \\hat y_{ui} = e_u^\\top e_i,

with ``fuse`` = L2-normalised sum (SocialLGN, ``fusion="normalize"``), plain ``"sum"`` or ``"mean"``. The
friend graph ``F`` is symmetrised (friendship is undirected) and symmetrically normalised; layers beyond
``social_layers`` propagate interactions only. Training: BPR with L2 on the layer-0 embeddings of the batch,
plus, when ``ssl_weight > 0``, an InfoNCE term between each batch user's interaction view
:math:`z_{u,I} = \\mathrm{mean}_k e_{u,I}^{(k)}` and social view :math:`z_{u,S}` (the cross-view
self-supervision of MHCN, Yu et al., WWW 2021, and SEPT, Yu et al., KDD 2021), other batch users as negatives:

.. math::  L_{ssl} = -\\tfrac{1}{|B|}\\sum_{u \\in B} \\log
           \\frac{\\exp(\\cos(z_{u,I}, z_{u,S})/\\tau)}{\\sum_{v \\in B} \\exp(\\cos(z_{u,I}, z_{v,S})/\\tau)}.

``ssl_view="noise"`` instead contrasts two noisy views of the same propagation, as in XSimGCL (Yu, Xia, Chen,
Cui, Nguyen, Yin, "XSimGCL: Towards Extremely Simple Graph Contrastive Learning for Recommendation", TKDE
2023): during training every layer's output gets a random direction of length ``noise_eps`` in its own
orthant, :math:`e^{(k)} \\leftarrow e^{(k)} + \\epsilon\\,\\mathrm{sign}(e^{(k)}) \\odot
\\bar\\Delta`, and the InfoNCE above pairs each batch user's (and item's) final embedding with its layer-1
embedding (``cl_layer``), which spreads the embeddings more uniformly. Evaluation propagates without noise.
Both InfoNCE terms cost ``O(n^2 d)`` in the batch's ``n`` distinct rows; ``ssl_max_rows`` contrasts a random
subset of at most that many of them (the rest of the batch still trains the ranking loss), so that a large
batch does not make the contrastive term dominate the step.

Graphs: a PyG ``HeteroData`` (:func:`~ecomlab.models.graph_ops.interaction_graph`) as undirected ``EdgeIndex``
buffers; both diffusions are PyG's ``LGConv`` fused into one sparse product. ``social_conv`` (Hydra, ``_partial_``)
swaps the friend diffusion for any PyG convolution (GCNConv, SAGEConv, GATConv, GATv2Conv; one per social layer,
``in_channels = out_channels = embedding_dim``, one head), learned and checkpointed, outside the L2 term.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn.conv import MessagePassing

from ecomlab.models.base import Recommender, RecTrainData
from ecomlab.models.graph_ops import LightConv, bipartite_adjacency, friend_adjacency, interaction_graph
from ecomlab.models.losses import bpr_loss, embedding_l2, positive_and_negative_rows, rows

FUSIONS = ("normalize", "sum", "mean")
SSL_VIEWS = ("social", "noise")


def first_occurrences(ids: Tensor) -> Tensor:
    """``[n]`` bool: ``ids[j]`` is the first occurrence of its value, found by a stable sort (sizes stay fixed)."""
    ordered, perm = torch.sort(ids, stable=True)  # [n] each
    first = torch.ones_like(ordered, dtype=torch.bool)
    first[1:] = ordered[1:] != ordered[:-1]
    return torch.empty_like(first).scatter_(0, perm, first)  # back to batch order


class SocialGNN(Recommender):
    trainable = True

    def __init__(self, n_users: int, n_items: int, embedding_dim: int = 64, n_layers: int = 3,
                 social_layers: int | None = None, fusion: str = "normalize", reg_weight: float = 1e-4,
                 ssl_weight: float = 0.0, ssl_temperature: float = 0.2, ssl_view: str = "social",
                 noise_eps: float = 0.1, cl_layer: int = 1, ssl_max_rows: int | None = None,
                 social_conv: Callable[..., MessagePassing] | None = None) -> None:
        super().__init__()
        if n_users < 1 or n_items < 1 or embedding_dim < 1:
            raise ValueError(f"n_users, n_items, embedding_dim must be >= 1; got {n_users}, {n_items}, {embedding_dim}")
        social_layers = n_layers if social_layers is None else social_layers
        if n_layers < 1 or not 0 <= social_layers <= n_layers:
            raise ValueError(f"n_layers={n_layers}, social_layers={social_layers}; need n_layers >= 1 and "
                             "0 <= social_layers <= n_layers")
        if ssl_view not in SSL_VIEWS:
            raise ValueError(f"ssl_view={ssl_view!r}; expected one of {SSL_VIEWS}")
        if ssl_view == "noise" and not (noise_eps > 0 and 1 <= cl_layer <= n_layers):
            raise ValueError(f"ssl_view='noise' needs noise_eps > 0 and 1 <= cl_layer <= n_layers={n_layers}; "
                             f"got noise_eps={noise_eps}, cl_layer={cl_layer}")
        if ssl_weight > 0 and ssl_view == "social" and social_layers == 0:
            raise ValueError("ssl_weight > 0 contrasts the interaction and social views; social_layers=0 has none")
        if ssl_max_rows is not None and ssl_max_rows < 2:
            raise ValueError(f"ssl_max_rows={ssl_max_rows}: an InfoNCE term needs at least 2 rows (null: all)")
        if fusion not in FUSIONS:
            raise ValueError(f"fusion={fusion!r}; expected one of {FUSIONS}")
        if reg_weight < 0 or ssl_weight < 0 or ssl_temperature <= 0:
            raise ValueError(f"reg_weight={reg_weight}, ssl_weight={ssl_weight} must be >= 0 and "
                             f"ssl_temperature={ssl_temperature} > 0")
        self.n_users, self.n_items, self.n_layers, self.social_layers = n_users, n_items, n_layers, social_layers
        self.fusion, self.reg_weight = fusion, reg_weight
        self.ssl_weight, self.ssl_temperature = ssl_weight, ssl_temperature
        self.ssl_view, self.noise_eps, self.cl_layer = ssl_view, noise_eps, cl_layer
        self.ssl_max_rows = ssl_max_rows
        self.user_emb = nn.Embedding(n_users, embedding_dim)
        self.item_emb = nn.Embedding(n_items, embedding_dim)
        nn.init.normal_(self.user_emb.weight, std=0.1)
        nn.init.normal_(self.item_emb.weight, std=0.1)
        self.conv = LightConv()
        # one learned convolution per social layer, or None: the parameter-free LightConv with Â's weights
        self.social_convs = None if social_conv is None else nn.ModuleList(
            social_conv(in_channels=embedding_dim, out_channels=embedding_dim) for _ in range(social_layers))
        # Derived from the data in fit(); rebuilt, never checkpointed.
        self.register_buffer("ui_graph", None, persistent=False)  # [U+I, U+I] EdgeIndex, undirected
        self.register_buffer("ui_weight", None, persistent=False)  # [E] normalised weights of ui_graph
        self.register_buffer("social_graph", None, persistent=False)  # [U, U] EdgeIndex of the friend graph
        self.register_buffer("social_weight", None, persistent=False)  # [E_s] its normalised weights
        self.register_buffer("has_friends", None, persistent=False)  # [U] bool
        self._cache: tuple[tuple[int, ...], Tensor, Tensor] | None = None

    def fit(self, data: RecTrainData) -> None:
        if data.social is None or len(data.social) == 0:
            raise ValueError("SocialGNN needs social edges (user_id, friend_id) in the data set's `social` part; "
                             f"data set '{data.name}' has none: pick data with a friend graph (e.g. data=synthetic_shop, "
                             "or data=files with data.source.social=<edges file>)")
        train = sp.csr_matrix(data.train)
        if train.shape != (self.n_users, self.n_items):
            raise ValueError(f"train matrix is {train.shape}; SocialGNN was built for ({self.n_users}, {self.n_items})")
        edges = np.asarray(data.social, dtype=np.int64)
        if edges.ndim != 2 or edges.shape[1] != 2:
            raise ValueError(f"social edges must be an [E, 2] array of (user, friend) indices; got {edges.shape}")
        if edges.min() < 0 or edges.max() >= self.n_users:
            raise ValueError(f"social edges hold user indices in [{edges.min()}, {edges.max()}], outside "
                             f"[0, {self.n_users}); map friend ids with the same user index as interactions")
        graph = interaction_graph(train, edges)  # undirected: friendship is mutual, duplicates merged
        device = self.user_emb.weight.device
        self.ui_graph, self.ui_weight = (t.to(device) for t in bipartite_adjacency(graph))
        self.social_graph, self.social_weight = (t.to(device) for t in friend_adjacency(graph))
        self.has_friends = self.social_graph.get_indptr().diff() > 0  # [U] from the cached CSC
        self._drop_cache()

    def train(self, mode: bool = True) -> SocialGNN:
        self._drop_cache()  # weights may change after this call
        return super().train(mode)

    def _drop_cache(self) -> None:
        self._cache = None

    def _propagate(self, noise: bool = False, views: bool = False) -> tuple[Tensor, Tensor, Tensor | None,
                                                                          Tensor | None, Tensor, Tensor]:
        """Final ``(users [U, d], items [I, d])``, the per-view user means ``(z_I [U, d], z_S [U, d])`` (only with
        ``views``, else ``None``) and the ``cl_layer`` outputs ``(users [U, d], items [I, d])``; ``noise`` perturbs
        every layer (XSimGCL)."""
        if self.ui_graph is None or self.social_graph is None:
            raise RuntimeError("SocialGNN needs fit(data) before use: the graphs are built from the training data")
        users, items = self.user_emb.weight, self.item_emb.weight
        # Running sums rather than stacked layers: no [K+1, n, d] copies, and fewer operations per step (a GPU
        # step at batch 8,192 is bound by the host's operator launches).
        sum_u, sum_i, cl_u, cl_i = users, items, users, items
        sum_view_i: Tensor | None = None
        sum_view_s: Tensor | None = None
        for k in range(self.n_layers):
            both = torch.cat([users, items])  # [U, d] + [I, d] -> [U+I, d]
            # split, not two slices: its backward is one concatenation, a slice's a zero-filled [U+I, d] each
            from_items, items = self.conv(both, self.ui_graph, self.ui_weight).split(
                [self.n_users, self.n_items])  # [U+I, U+I] @ [U+I, d] -> [U, d], [I, d]
            if views:
                sum_view_i = from_items if sum_view_i is None else sum_view_i + from_items
            if k < self.social_layers:
                from_friends = self._diffuse(k, users)  # [U, d] -> [U, d]
                if views:
                    sum_view_s = from_friends if sum_view_s is None else sum_view_s + from_friends
                users = self._fuse(from_items, from_friends)
            else:
                users = from_items
            if noise:
                users, items = self._perturb(users), self._perturb(items)
            sum_u, sum_i = sum_u + users, sum_i + items
            if k + 1 == self.cl_layer:
                cl_u, cl_i = users, items
        z_i = z_s = None
        if views and sum_view_i is not None:
            z_i = sum_view_i / self.n_layers  # mean over the K layers' interaction views
            z_s = sum_view_s / self.social_layers if sum_view_s is not None else torch.zeros_like(z_i)
        return sum_u / (self.n_layers + 1), sum_i / (self.n_layers + 1), z_i, z_s, cl_u, cl_i

    def _diffuse(self, k: int, users: Tensor) -> Tensor:
        """Layer ``k``'s friend diffusion of ``users`` ``[U, d]``."""
        if self.social_convs is None:
            return self.conv(users, self.social_graph, self.social_weight)  # [U, U] @ [U, d] -> [U, d]
        # a plain [2, E] tensor: PyG's self-loop handling of an EdgeIndex fails under Lightning's inference mode
        return self.social_convs[k](users, self.social_graph.as_tensor())

    def _perturb(self, emb: Tensor) -> Tensor:
        """``e + eps * sign(e) * unit(u)``, ``u ~ U(0, 1)^d``: a random direction in the orthant of ``e``."""
        direction = F.normalize(torch.rand_like(emb), dim=1)  # [n, d]
        return emb + self.noise_eps * torch.sign(emb) * direction

    def _fuse(self, from_items: Tensor, from_friends: Tensor) -> Tensor:
        both = from_items + from_friends
        return F.normalize(both, dim=1) if self.fusion == "normalize" else both if self.fusion == "sum" else both / 2

    def get_embedding(self) -> tuple[Tensor, Tensor]:
        """Final ``([n_users, d], [n_items, d])``; computed once per evaluation (cached outside training)."""
        # In-place weight updates (optimizer step, load_state_dict) bump the versions: a stale cache is never used.
        key = (*(p._version for p in self.parameters()), self.user_emb.weight.data_ptr())  # a learned conv's too
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1], self._cache[2]
        users, items, *_ = self._propagate()
        if not self.training and not torch.is_grad_enabled():
            self._cache = (key, users, items)
        return users, items

    def forward(self, users: Tensor) -> Tensor:  # [B] -> [B, n_items]
        user_final, item_final = self.get_embedding()
        return user_final[users] @ item_final.T  # [B, d] @ [d, N] -> [B, N]

    def info_nce(self, a: Tensor, b: Tensor, ids: Tensor, keep: Tensor, compact: bool | None = None) -> Tensor:
        """InfoNCE pairing ``a[ids[n]]`` with ``b[ids[n]]`` (tables ``[*, d]``) over the ``n`` that ``keep`` ``[n]``
        selects; the other selected rows are the negatives, the loss their mean (0 with fewer than two). With more
        than ``ssl_max_rows`` rows, a uniformly random subset of that many kept rows is contrasted.

        On a GPU the rows are masked rather than selected, so no size is read back from the device (a
        synchronisation per step). With ``compact`` (``None``: on CPU, where nothing waits) they are selected
        first: a smaller matrix, the same value.
        """
        compact = a.device.type == "cpu" if compact is None else compact
        if self.ssl_max_rows is not None and len(ids) > self.ssl_max_rows:
            # kept rows get a uniform key, the others -1, so the top keys are a random subset of the kept rows
            # (all of them when fewer are kept), with no size read back from the device
            key = torch.rand(len(ids), device=ids.device).masked_fill(~keep, -1.0)  # [n]
            chosen = key.topk(self.ssl_max_rows).indices  # [n] -> [m]
            ids, keep = ids[chosen], keep[chosen]
        if compact:
            ids = ids[keep]  # [m]
            if len(ids) < 2:
                return a.new_zeros(())
        logits = F.normalize(a[ids], dim=1) @ F.normalize(b[ids], dim=1).T / self.ssl_temperature  # [n, n]
        if compact:
            return F.cross_entropy(logits, torch.arange(len(ids), device=logits.device))
        # the dtype's lowest value, not -inf: a row with nothing kept stays finite, and so do its zero gradients
        logits = logits.masked_fill(~keep.unsqueeze(0), torch.finfo(logits.dtype).min)  # [n, n]
        per_row = torch.logsumexp(logits, dim=1) - logits.diagonal()  # [n]
        n_kept = keep.sum()
        total = torch.where(keep, per_row, torch.zeros_like(per_row)).sum()
        return torch.where(n_kept > 1, total / n_kept.clamp(min=1), torch.zeros_like(total))

    def ssl_loss(self, users: Tensor, z_i: Tensor, z_s: Tensor) -> Tensor:
        """InfoNCE between the interaction and social views of the distinct batch users that have friends."""
        keep = first_occurrences(users) & self.has_friends[users]  # a repeated user would be its own negative
        return self.info_nce(z_i, z_s, users, keep)

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        users, pos, neg = batch["users"], batch["pos"], batch["neg"]
        noisy = self.ssl_weight > 0 and self.ssl_view == "noise"
        contrast_views = self.ssl_weight > 0 and not noisy
        user_final, item_final, z_i, z_s, user_cl, item_cl = self._propagate(noise=noisy, views=contrast_views)
        ranking = bpr_loss(rows(user_final, users), *positive_and_negative_rows(item_final, pos, neg))
        u0 = rows(self.user_emb, users)  # [B, d]
        p0, n0 = positive_and_negative_rows(self.item_emb, pos, neg)  # [B, d], [B, n_neg, d]
        total = ranking + self.reg_weight * embedding_l2(u0, p0, n0)
        if noisy:
            # distinct users and positive items, as XSimGCL; a repeat would be its own negative
            total = total + self.ssl_weight * (self.info_nce(user_final, user_cl, users, first_occurrences(users))
                                               + self.info_nce(item_final, item_cl, pos, first_occurrences(pos)))
        elif contrast_views and z_i is not None and z_s is not None:
            total = total + self.ssl_weight * self.ssl_loss(users, z_i, z_s)
        return total
