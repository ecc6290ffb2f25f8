"""Hybrid content recommender: lexical, semantic and collaborative scores fused by weights learned on validation.

A linear fusion of ranking features (Metzler & Croft, "Linear feature-based models for information retrieval",
Information Retrieval 2007), whose weights are found by coordinate ascent on NDCG@10 of a validation part
carved from the training data. With :math:`H_u` the user's training items, :math:`x_i` an item's L2-normalised
TF-IDF row and :math:`e_i` its centred, L2-normalised sentence embedding (multilingual-e5-small or MiniLM, frozen),

.. math::  s_{ui} = \\sum_k w^{c(i)}_k \\, s_k(u, i), \\qquad c(i) = \\text{cold if item } i
           \\text{ has no training interaction, else warm},

with the components :math:`s_k` (:data:`COMPONENTS`): ``lexical`` :math:`\\cos(\\sum_{j \\in H_u} x_j, x_i)`
(exactly :class:`~ecomlab.models.tfidf.TfidfContent`), ``lexical_max`` :math:`\\max_{j \\in H_u} x_j^\\top x_i`,
``semantic`` and ``semantic_max`` the same over :math:`e`, ``text_popularity`` a ridge regression (Hoerl &
Kennard, 1970) of :math:`\\log(1 + n_i)` on :math:`[x_i, e_i]` fitted on the warm items (how much a kind of item
sells, predicted for a new one from its text), for warm items only ``collaborative`` (item-kNN,
:class:`~ecomlab.models.itemknn.ItemKNN`, :math:`c_{ui} = \\sum_{j \\in H_u} \\mathrm{knn}_{ji}`) and
``popularity`` (the z-scored :math:`\\log(1 + n_i)`), and ``text_collaborative``, the collaborative score an
item borrows from its nearest warm neighbours by text (the kNN attribute-to-factor mapping of Gantner et al., "Learning
Attribute-to-Feature Mappings for Cold-Start Recommendations", ICDM 2010, applied to item-kNN scores):

.. math::  s_{ui} = \\frac{1}{\\sigma_u} \\sum_{n \\in N_k(i)} \\tilde t_{in} \\, c_{un}, \\qquad
           t_{in} = \\tfrac12 (x_i^\\top x_n + e_i^\\top e_n), \\qquad
           \\tilde t_{in} = \\frac{\\max(t_{in}, 0)}{\\sum_{m \\in N_k(i)} \\max(t_{im}, 0)},

:math:`N_k(i)` the ``text_neighbours`` warm items other than :math:`i` with the largest :math:`t_{in}` (TF-IDF
alone without an encoder) and :math:`\\sigma_u` the standard deviation of the user's row, so one weight fits
users with short and long histories. A new item thus reaches the users who bought what is bought with items
worded like it, which text similarity to the user's own items misses.

Learning the weights: ``fit`` holds out ``holdout_items`` of the items whole (their interactions are the cold
validation targets, ranked among themselves, as in :class:`~ecomlab.data.splits.ColdStartItemSplit`) and one
interaction of each user with at least 3 others (the warm targets, ranked among all warm items), fits the
components on the rest, and climbs NDCG@10 one weight at a time over :data:`GRID`. The cold search starts from
``lexical`` alone (weight 1, fixed as the scale), so on its validation the model is never below TF-IDF; the
warm search starts from ``collaborative`` alone (``lexical`` without it). Last, one scale for the cold items'
sum (``weights["mix"]["cold_scale"]``) is chosen on a mixed ranking with as many held-out items as the fitted
model will have cold ones, so that in a warm split the few items seen only in validation or test do not fill
every user's top 10 (they filled 66% of the top-10 slots on Amazon Office seed 1 before it, NDCG@10 0.019
against 0.034 after). The components are then refitted on
all training data. Nothing is trained by gradient: the model is refitted, not checkpointed, like TF-IDF.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.linear_model import Ridge
from sklearn.preprocessing import normalize
from torch import Tensor

from ecomlab.models.base import Recommender, RecTrainData
from ecomlab.models.itemknn import ItemKNN
from ecomlab.models.text_encoders import sentence_embeddings
from ecomlab.models.tfidf import TfidfContent

log = logging.getLogger(__name__)

COMPONENTS = ("lexical", "lexical_max", "semantic", "semantic_max", "text_popularity", "collaborative", "popularity",
              "text_collaborative")
WARM_ONLY = ("collaborative", "popularity")
#: the values each weight is searched over (scores are compared within a user, so one weight fixes the scale)
GRID = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)


@dataclass
class Parts:
    """What the fused scores are computed from; all numpy/scipy, so the exported runtime shares the code."""

    tfidf: sp.csr_matrix  #: [N, V] L2-normalised TF-IDF rows
    emb: np.ndarray | None  #: [N, p] centred unit sentence embeddings (None: no encoder)
    text_pop: np.ndarray  #: [N] z-scored predicted log-popularity
    pop: np.ndarray  #: [N] z-scored log-popularity of training counts, 0 for cold items
    knn: sp.csr_matrix | None  #: [N, N] item-kNN similarity (None: content only)
    cold: np.ndarray  #: [N] bool: no training interaction
    neighbours: sp.csr_matrix | None = None  #: [N, N] row-normalised weights of each item's nearest warm items by text


def text_neighbours(tfidf: sp.csr_matrix, emb: np.ndarray | None, warm: np.ndarray, k: int,
                    chunk: int = 1024) -> sp.csr_matrix:
    """``[N, N]``: row ``i`` holds :math:`\\tilde t_{in}` for the ``k`` warm items ``n != i`` most similar to ``i``
    by text (mean of the TF-IDF and embedding cosines; TF-IDF alone when ``emb`` is None), weights >= 0 summing to
    1 (an empty row when no neighbour is similar at all). Computed ``chunk`` rows at a time: memory ``chunk x N``."""
    n = tfidf.shape[0]
    k = min(k, int(warm.sum()))
    rows, cols, vals = [], [], []
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        sims = (tfidf[start:stop] @ tfidf.T).toarray()  # [c, V] @ [V, N] -> [c, N]
        if emb is not None:
            sims = 0.5 * sims + 0.5 * (emb[start:stop] @ emb.T)  # [c, p] @ [p, N] -> [c, N]
        sims[:, ~warm] = -np.inf
        sims[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # an item is not its own neighbour
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]  # [c, k]
        rows.append(np.repeat(np.arange(start, stop), k))
        cols.append(top.ravel())
        vals.append(np.take_along_axis(sims, top, 1).clip(0).ravel())  # -inf (too few warm items) -> 0
    out = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    out.eliminate_zeros()
    return normalize(out, norm="l1", axis=1)


def _max_over_history(rows: sp.csr_matrix, sims: Any) -> np.ndarray:
    """``max_{j in H_u} sims(j)`` per row of ``rows`` ``[B, N]``; ``sims(items [T]) -> [T, N]`` (0: no history)."""
    lengths = np.diff(rows.indptr)
    out = np.zeros((rows.shape[0], rows.shape[1]), dtype=np.float32)  # [B, N]
    if rows.nnz == 0:
        return out
    block = np.asarray(sims(rows.indices), dtype=np.float32)  # [T, N]: one row per history entry
    starts = rows.indptr[:-1][lengths > 0]
    out[lengths > 0] = np.maximum.reduceat(block, starts, axis=0)  # [T, N] -> [B', N]
    return out


def component_scores(rows: sp.csr_matrix, parts: Parts) -> dict[str, np.ndarray]:
    """Every component's ``[B, N]`` scores for users with (binary) history ``rows`` ``[B, N]``."""
    rows = sp.csr_matrix(rows != 0, dtype=np.float64)
    rows.sort_indices()
    x = parts.tfidf
    profile = normalize(rows @ x, norm="l2", axis=1)  # [B, N] @ [N, V] -> [B, V]
    out = {"lexical": (profile @ x.T).toarray().astype(np.float32),  # [B, V] @ [V, N] -> [B, N]
           "lexical_max": _max_over_history(rows, lambda items: (x[items] @ x.T).toarray())}  # [T, V] @ [V, N]
    n_b, n_items = rows.shape
    if parts.emb is not None:
        mean = normalize(rows @ parts.emb, norm="l2", axis=1)  # [B, N] @ [N, p] -> [B, p]
        out["semantic"] = (mean @ parts.emb.T).astype(np.float32)  # [B, p] @ [p, N] -> [B, N]
        out["semantic_max"] = _max_over_history(rows, lambda items: parts.emb[items] @ parts.emb.T)  # [T, p] @ [p, N]
    out["text_popularity"] = np.broadcast_to(parts.text_pop.astype(np.float32), (n_b, n_items))
    out["popularity"] = np.broadcast_to(parts.pop.astype(np.float32), (n_b, n_items))
    if parts.knn is not None:
        collaborative = rows @ parts.knn  # [B, N] @ [N, N] -> [B, N]
        out["collaborative"] = collaborative.toarray().astype(np.float32)
        if parts.neighbours is not None:
            borrowed = (collaborative @ parts.neighbours.T).toarray()  # [B, N] @ [N, N] -> [B, N]
            out["text_collaborative"] = (borrowed / (borrowed.std(axis=1, keepdims=True) + 1e-9)).astype(np.float32)
    return out


def fused_scores(rows: sp.csr_matrix, parts: Parts, weights: dict[str, dict[str, float]]) -> np.ndarray:
    """``s = sum_k w^{c(i)}_k s_k`` ``[B, N]`` with ``weights = {"cold": {...}, "warm": {...}}``, the cold items'
    sum times ``weights["mix"]["cold_scale"]`` (1 when absent), which puts the two kinds on one scale."""
    comps = component_scores(rows, parts)
    out = np.zeros((rows.shape[0], rows.shape[1]), dtype=np.float32)  # [B, N]
    for kind, columns in (("cold", parts.cold), ("warm", ~parts.cold)):
        for name, w in weights[kind].items():
            if w and name in comps:
                out[:, columns] += np.float32(w) * comps[name][:, columns]
    scale = weights.get("mix", {}).get("cold_scale", 1.0)
    if scale != 1.0:
        out[:, parts.cold] *= np.float32(scale)
    return out


def ndcg_at(scores: np.ndarray, targets: np.ndarray, k: int = 10) -> float:
    """Mean NDCG@k of ``scores`` ``[B, M]`` against binary ``targets`` ``[B, M]`` (rows with a target)."""
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # [B, k] unordered
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable"), 1)
    discount = 1.0 / np.log2(np.arange(2, k + 2))  # [k]
    dcg = (np.take_along_axis(targets, top, 1) * discount).sum(1)
    ideal = np.cumsum(discount)[np.minimum(targets.sum(1), k) - 1]
    return float((dcg / ideal).mean())


class HybridContent(Recommender):
    """Fused lexical + semantic (+ collaborative) scores; see the module docstring."""

    trainable: ClassVar[bool] = False

    def __init__(self, n_users: int, n_items: int, encoder: str | None = "e5", model_dir: str | None = None,
                 max_seq_length: int = 128, cache_dir: str | None = None, collaborative: bool = True,
                 knn_k: int = 100, text_neighbours: int = 10, ridge_alpha: float = 1.0, holdout_items: float = 0.1,
                 max_val_users: int = 3000,
                 rounds: int = 2, seed: int = 0) -> None:
        super().__init__()
        if encoder not in (None, "e5", "sentence-transformers"):
            raise ValueError(f"encoder={encoder!r}; expected null, 'e5' or 'sentence-transformers'")
        if (not 0 < holdout_items < 1 or max_val_users < 1 or rounds < 1 or knn_k < 1 or ridge_alpha <= 0
                or text_neighbours < 0):
            raise ValueError(f"holdout_items={holdout_items} must be in (0, 1), max_val_users={max_val_users}, "
                             f"rounds={rounds}, knn_k={knn_k} >= 1, text_neighbours={text_neighbours} >= 0, "
                             f"ridge_alpha={ridge_alpha} > 0")
        self.n_users, self.n_items = n_users, n_items
        self.encoder, self.model_dir, self.max_seq_length, self.cache_dir = encoder, model_dir, max_seq_length, cache_dir
        self.collaborative, self.knn_k, self.ridge_alpha = collaborative, knn_k, ridge_alpha
        self.text_neighbours = text_neighbours
        self.holdout_items, self.max_val_users, self.rounds, self.seed = holdout_items, max_val_users, rounds, seed
        self.lexical = TfidfContent(n_items)  # the TF-IDF baseline's own settings: its scores are a component
        self.parts: Parts | None = None
        self.train_rows: sp.csr_matrix | None = None
        self.weights: dict[str, dict[str, float]] = {}
        self.validation: dict[str, Any] = {}  # NDCG@10 of the fit's own validation, before and after the search

    def _parts(self, train: sp.csr_matrix, texts: list[str], emb: np.ndarray | None) -> Parts:
        self.lexical.fit(RecTrainData(train=train, item_text=texts))
        x = self.lexical.item_matrix
        counts = np.asarray((train != 0).sum(axis=0)).ravel()
        warm = counts > 0
        features = x if emb is None else sp.hstack([x, sp.csr_matrix(emb)]).tocsr()  # [N, V] ++ [N, p]
        predicted = Ridge(alpha=self.ridge_alpha).fit(features[warm], np.log1p(counts[warm])).predict(features)
        z = lambda v: (v - v[warm].mean()) / max(float(v[warm].std()), 1e-12)  # noqa: E731
        pop = np.where(warm, z(np.log1p(counts.astype(np.float64))), 0.0)
        knn = neighbours = None
        if self.collaborative:
            model = ItemKNN(self.n_items, k=self.knn_k)
            model.fit(RecTrainData(train=train))
            knn = sp.csr_matrix(model.get_embedding(), dtype=np.float64)
            if self.text_neighbours > 0 and warm.any():
                neighbours = text_neighbours(x, emb, warm, self.text_neighbours)
        return Parts(x, emb, z(predicted).astype(np.float32), pop.astype(np.float32), knn, ~warm, neighbours)

    def fit(self, data: RecTrainData) -> None:
        if data.item_text is None or not any(str(t or "").strip() for t in data.item_text):
            raise ValueError(f"HybridContent needs item text; data set '{data.name}' has none")
        texts = ["" if t is None else str(t) for t in data.item_text]
        train = sp.csr_matrix(data.train != 0, dtype=np.float32)
        if train.shape != (self.n_users, self.n_items) or len(texts) != self.n_items:
            raise ValueError(f"expected {self.n_items} item texts and a ({self.n_users}, {self.n_items}) train matrix; "
                             f"got {len(texts)} texts and {train.shape}")
        emb = None
        if self.encoder is not None:
            raw = sentence_embeddings(self.encoder, texts, self.model_dir, self.max_seq_length, self.cache_dir)
            self.emb_mean = raw.mean(axis=0)  # [p]; centring removes the direction every embedding shares
            emb = normalize(raw - self.emb_mean).astype(np.float32)  # [N, p]
        self.weights = self._learn_weights(train, texts, emb)
        log.info("HybridContent weights %s; validation NDCG@10 %s", self.weights, self.validation)
        self.parts = self._parts(train, texts, emb)
        self.train_rows = train

    def _learn_weights(self, train: sp.csr_matrix, texts: list[str], emb: np.ndarray | None) -> dict[str, dict[str, float]]:
        rng = np.random.default_rng(self.seed)
        counts = np.asarray(train.sum(axis=0)).ravel()
        items = np.flatnonzero(counts > 0)
        cold = np.sort(rng.choice(items, size=max(1, round(self.holdout_items * len(items))), replace=False))
        keep = np.ones(self.n_items, dtype=bool)
        keep[cold] = False
        rest = sp.csr_matrix(train @ sp.diags(keep.astype(np.float32)))  # cold columns emptied
        rest.eliminate_zeros()
        # one warm interaction of each user with >= 3 others: column position drawn within the row
        lengths = np.diff(rest.indptr)
        users = np.flatnonzero(lengths >= 4)
        picked = rest.indptr[users] + (rng.random(len(users)) * lengths[users]).astype(np.int64)
        warm_targets = sp.csr_matrix((np.ones(len(users)), (users, rest.indices[picked])), shape=train.shape)
        rest.data[picked] = 0
        rest.eliminate_zeros()
        parts = self._parts(rest, texts, emb)
        searches = {"cold": (train[:, cold], cold, "lexical")}
        if self.collaborative:
            searches["warm"] = (warm_targets, np.flatnonzero(~parts.cold), "collaborative")
        weights, self.validation = {}, {}
        for kind, (targets, candidates, anchor) in searches.items():
            targets = sp.csr_matrix(targets)
            if kind == "warm":  # a user's own remaining items are not candidates: mask them below
                targets = targets[:, candidates]
            who = np.flatnonzero((np.diff(targets.indptr) > 0) & (np.diff(rest.indptr) > 0))
            who = np.sort(rng.permutation(who)[: self.max_val_users])
            chunks = [component_scores(rest[c], parts) for c in np.array_split(who, -(-len(who) // 256))]
            comps = {k: np.concatenate([c[k][:, candidates] for c in chunks]) for k in chunks[0]}  # [n, M] each
            if kind == "warm":
                seen = rest[who][:, candidates].toarray() > 0  # [n, M]
                comps = {k: np.where(seen, -1e9, v) for k, v in comps.items()}
            weights[kind], self.validation[kind] = self._search(comps, targets[who].toarray() > 0, anchor, kind)
        weights.setdefault("warm", weights["cold"])
        if self.collaborative:
            n_cold = self.n_items - len(items)  # cold items the fitted model will rank
            weights["mix"], self.validation["mix"] = self._search_cold_scale(
                rest, parts, weights, train, warm_targets, cold, n_cold, rng)
        return weights

    def _search_cold_scale(self, rest: sp.csr_matrix, parts: Parts, weights: dict[str, dict[str, float]],
                           train: sp.csr_matrix, warm_targets: sp.csr_matrix, held_out: np.ndarray, n_cold: int,
                           rng: np.random.Generator, draws: int = 3) -> tuple[dict[str, float], dict[str, float]]:
        """The cold and warm weights are each learned on a ranking of one kind of item, so their sums have unrelated
        scales, and where both kinds compete (a warm split with a few items seen only in validation or test) a
        handful of cold items can fill every user's top 10. The cold sum is multiplied by the value of :data:`GRID`
        (0 excluded: it would erase the cold ranking) with the best mean NDCG@10 over ``draws`` mixed rankings:
        the warm targets and those of ``min(n_cold, len(held_out))`` held-out items, drawn at random, ranked among
        the warm items and the drawn ones, as many cold items as the fitted model will rank."""
        m = min(n_cold, len(held_out))
        if m == 0:  # no cold item will compete with warm ones
            return {"cold_scale": 1.0}, {"cold_items": 0}
        who = np.flatnonzero((np.diff(warm_targets.indptr) > 0) & (np.diff(rest.indptr) > 0))
        who = np.sort(rng.permutation(who)[: self.max_val_users])
        unit = {**weights, "mix": {"cold_scale": 1.0}}
        fused = np.concatenate([fused_scores(rest[c], parts, unit) for c in np.array_split(who, -(-len(who) // 256))])
        fused[rest[who].toarray() > 0] = -np.inf  # [n, N]: a user's own items are not candidates
        warm_hits = warm_targets[who].toarray() > 0  # [n, N]
        history = train[who]
        totals = dict.fromkeys((v for v in GRID if v > 0), 0.0)
        n = draws if m < len(held_out) else 1  # all held-out items drawn: one draw is every draw
        for _ in range(n):
            drawn = rng.choice(held_out, size=m, replace=False)
            hidden = np.zeros(self.n_items, dtype=bool)
            hidden[np.setdiff1d(held_out, drawn)] = True
            hits = warm_hits.copy()
            hits[:, drawn] |= history[:, drawn].toarray() > 0
            for value in totals:
                scores = np.where(parts.cold, fused * np.float32(value), fused)  # [n, N]
                scores[:, hidden] = -np.inf
                totals[value] += ndcg_at(scores, hits)
        best = max(totals, key=lambda v: (totals[v], v == 1.0))  # ties: keep the sums as they are
        return {"cold_scale": best}, {"unscaled": totals[1.0] / n, "fused": totals[best] / n, "cold_items": m,
                                      "users": len(who)}

    def _search(self, comps: dict[str, np.ndarray], targets: np.ndarray, anchor: str, kind: str
                ) -> tuple[dict[str, float], dict[str, float]]:
        """Coordinate ascent of NDCG@10 over :data:`GRID`, one weight at a time, ``anchor`` fixed at 1."""
        names = [k for k in COMPONENTS if k in comps and (kind == "warm" or k not in WARM_ONLY)]
        weights = {k: float(k == anchor) for k in names}
        fused = lambda w: sum(v * comps[k] for k, v in w.items() if v)  # noqa: E731  # [n, M]
        best = start = ndcg_at(fused(weights), targets)
        for _ in range(self.rounds):
            for name in (k for k in names if k != anchor):
                for value in GRID:
                    trial = {**weights, name: value}
                    score = ndcg_at(fused(trial), targets)
                    if score > best + 1e-9:
                        best, weights = score, trial
        return weights, {f"{anchor}_only": start, "fused": best, "users": len(targets)}

    def forward(self, users: Tensor) -> Tensor:  # [B] -> [B, n_items]
        if self.parts is None or self.train_rows is None:
            raise RuntimeError("HybridContent.forward called before fit")
        rows = self.train_rows[users.detach().cpu().numpy()]
        return torch.from_numpy(fused_scores(rows, self.parts, self.weights)).to(users.device)
