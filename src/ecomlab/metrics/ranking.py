"""Top-K ranking metrics (per user), vectorised in torch.

Conventions (RecBole style)
---------------------------
* ``hits: Tensor[B, K]`` (bool or float): ``hits[u, j] = 1`` iff the item ranked at position ``j + 1``
  in user ``u``'s top-K list is relevant to ``u``. Ties / ranking have already been resolved by the
  caller; these functions only score the given 0/1 relevance pattern.
* ``n_rel: Tensor[B]`` (int or float): number of relevant items of each user (``|rel_u|``), counted over
  the whole catalogue, not only the top-K. It must be ``>= 1``: **users with zero relevant items must be
  excluded by the caller** (recall, NDCG and MAP are undefined for them); a ``ValueError`` is raised
  otherwise.
* ``k``: cut-off, ``1 <= k <= K``; only the first ``k`` columns of ``hits`` are used.

Every per-user function has the signature ``(hits, n_rel, k) -> Tensor[B]`` (floating point, on the
device of ``hits``; float64 inputs stay float64, everything else is returned in the default float
dtype). Average over users (``.mean()``) to get the usual dataset-level number.

All functions are pure and contain no Python loop over users, so they run on any device.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

__all__ = [
    "RANKING_METRICS",
    "hit_at_k",
    "item_coverage",
    "map_at_k",
    "metric_table",
    "mrr_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "ranking_hits",
    "recall_at_k",
]


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------
def _check_k(k: int, max_k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if k > max_k:
        raise ValueError(f"k={k} exceeds the number of ranked columns K={max_k}")


def _prepare(hits: Tensor, n_rel: Tensor, k: int, check: bool = True) -> tuple[Tensor, Tensor]:
    """Validate inputs; return ``(hits[:, :k] as float [B, k], n_rel as float [B])``. ``check=False`` skips
    the value check ``n_rel >= 1`` (shapes are always checked)."""
    if hits.dim() != 2:
        raise ValueError(f"hits must be 2-D [B, K], got shape {tuple(hits.shape)}")
    _check_k(k, hits.shape[1])
    if n_rel.dim() != 1 or n_rel.shape[0] != hits.shape[0]:
        raise ValueError(f"n_rel must have shape [B]=[{hits.shape[0]}], got {tuple(n_rel.shape)}")
    if check and n_rel.numel() > 0 and bool((n_rel < 1).any()):
        raise ValueError("every user needs n_rel >= 1; exclude users without relevant items")
    dtype = hits.dtype if hits.dtype == torch.float64 else torch.get_default_dtype()
    h = hits[:, :k].to(dtype)  # [B, K] -> [B, k]
    n = n_rel.to(device=h.device, dtype=dtype)  # [B]
    return h, n


def _discounts(k: int, like: Tensor) -> Tensor:
    """``1 / log2(j + 1)`` for ranks ``j = 1..k``; shape ``[k]``."""
    ranks = torch.arange(1, k + 1, device=like.device, dtype=like.dtype)  # [k]
    return 1.0 / torch.log2(ranks + 1.0)  # [k]


# --------------------------------------------------------------------------------------------------
# per-user metrics
# --------------------------------------------------------------------------------------------------
def recall_at_k(hits: Tensor, n_rel: Tensor, k: int) -> Tensor:
    """Recall@k per user.

    ``recall@k = |rel ∩ top-k| / |rel| = (sum_{j=1..k} hit_j) / n_rel``.

    Note that when ``n_rel > k`` the maximum attainable value is ``k / n_rel < 1``.
    """
    h, n = _prepare(hits, n_rel, k)
    return h.sum(dim=1) / n  # [B, k] -> [B]


def precision_at_k(hits: Tensor, n_rel: Tensor, k: int) -> Tensor:
    """Precision@k per user.

    ``precision@k = |rel ∩ top-k| / k = (sum_{j=1..k} hit_j) / k``.

    ``n_rel`` is not used by the formula (only validated), kept for a uniform signature.
    """
    h, _ = _prepare(hits, n_rel, k)
    return h.sum(dim=1) / k  # [B, k] -> [B]


def hit_at_k(hits: Tensor, n_rel: Tensor, k: int) -> Tensor:
    """Hit rate@k per user.

    ``hit@k = 1 if sum_{j=1..k} hit_j > 0 else 0``.
    """
    h, _ = _prepare(hits, n_rel, k)
    return (h.sum(dim=1) > 0).to(h.dtype)  # [B, k] -> [B]


def ndcg_at_k(hits: Tensor, n_rel: Tensor, k: int) -> Tensor:
    """NDCG@k per user (binary relevance).

    ``DCG@k  = sum_{j=1..k} hit_j / log2(j + 1)``

    ``IDCG@k = sum_{j=1..min(n_rel, k)} 1 / log2(j + 1)``

    ``NDCG@k = DCG@k / IDCG@k``
    """
    h, n = _prepare(hits, n_rel, k)
    disc = _discounts(k, h)  # [k]
    dcg = h @ disc  # [B, k] @ [k] -> [B]
    ideal_len = torch.clamp(n, max=float(k)).long()  # [B], values in 1..k
    idcg_table = torch.cumsum(disc, dim=0)  # [k]; idcg_table[m-1] = IDCG with m relevant in top-k
    idcg = idcg_table.gather(0, ideal_len - 1)  # [k] gather [B] -> [B]
    return dcg / idcg  # [B]


def mrr_at_k(hits: Tensor, n_rel: Tensor, k: int) -> Tensor:
    """Reciprocal rank@k per user (average it for MRR@k).

    ``RR@k = 1 / min{ j in 1..k : hit_j = 1 }``, and ``0`` if there is no hit in the top k.
    """
    h, _ = _prepare(hits, n_rel, k)
    ranks = torch.arange(1, k + 1, device=h.device, dtype=h.dtype)  # [k]
    # reciprocal rank where hit, 0 elsewhere; the max over columns is 1/first-hit-rank (0 if none)
    rr = h * (1.0 / ranks)  # [B, k] * [k] -> [B, k]
    return rr.max(dim=1).values  # [B, k] -> [B]


def map_at_k(hits: Tensor, n_rel: Tensor, k: int) -> Tensor:
    """Average precision@k per user (average it for MAP@k), RecBole's definition.

    ``AP@k = (1 / min(n_rel, k)) * sum_{j=1..k} P@j * hit_j``, with ``P@j = (sum_{i=1..j} hit_i) / j``.
    """
    h, n = _prepare(hits, n_rel, k)
    ranks = torch.arange(1, k + 1, device=h.device, dtype=h.dtype)  # [k]
    prec_at_j = torch.cumsum(h, dim=1) / ranks  # [B, k] / [k] -> [B, k]
    return (prec_at_j * h).sum(dim=1) / torch.clamp(n, max=float(k))  # [B, k] -> [B]


RANKING_METRICS: dict[str, Callable[[Tensor, Tensor, int], Tensor]] = {
    "recall": recall_at_k,
    "precision": precision_at_k,
    "hit": hit_at_k,
    "ndcg": ndcg_at_k,
    "mrr": mrr_at_k,
    "map": map_at_k,
}
"""Per-user metrics by name; each is ``fn(hits, n_rel, k) -> Tensor[B]``."""

#: the functions :func:`metric_table` has running-sum forms for (a name re-bound in RANKING_METRICS uses its own)
_FUNCTIONS = dict(RANKING_METRICS)


@functools.lru_cache(maxsize=32)
def _cuts(ks: tuple[int, ...], device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """``(ks - 1, ks)`` as ``[nk]`` int64 and ``dtype`` tensors on ``device``, made once per device: a copy from
    host data waits for the device to finish its queued work (a GPU synchronisation) on every call."""
    host = torch.tensor(ks)
    return (host - 1).to(device), host.to(device=device, dtype=dtype)


def metric_table(hits: Tensor, n_rel: Tensor, names: Sequence[str], ks: Sequence[int],
                 check: bool = True) -> Tensor:
    """Every metric ``name@k`` per user as the columns of one ``[B, len(names) * len(ks)]`` tensor, name-major
    (``names[0]@ks[0], names[0]@ks[1], ..., names[1]@ks[0], ...``).

    The values are those of ``RANKING_METRICS[name](hits, n_rel, k)`` (equal up to float rounding), computed
    from running sums over the ranked positions ``j = 1..max(ks)``, read at each cut ``k``:

    ``c_j = sum_{i<=j} hit_i``: recall ``c_k / n_rel``, precision ``c_k / k``, hit ``[c_k > 0]``;
    ``sum_{i<=j} hit_i / log2(i + 1)``: NDCG's DCG; ``max_{i<=j} hit_i / i``: RR;
    ``sum_{i<=j} hit_i c_i / i``: AP's numerator.

    About 40 tensor operations however many metrics and cuts, instead of about ten per pair; a metric without
    a running-sum form here (one added to :data:`RANKING_METRICS`) is computed by its function. ``check=False``
    skips the check ``n_rel >= 1``, which reads a value back from the device (a GPU synchronisation per call)
    and which a caller that only passes users with targets can leave out.
    """
    ks = [int(k) for k in ks]
    if not ks or not names:
        raise ValueError(f"metric_table needs at least one metric and one k; got names={list(names)}, ks={ks}")
    top = max(ks)
    h, n = _prepare(hits, n_rel, top, check)  # [B, K], [B]
    cut, kf = _cuts(tuple(ks), h.device, h.dtype)  # [nk] column of each cut, [nk] the cuts as numbers
    ranks = torch.arange(1, top + 1, device=h.device, dtype=h.dtype)  # [K]
    hits_so_far = torch.cumsum(h, dim=1)  # [B, K]
    at = hits_so_far[:, cut]  # [B, K] -> [B, nk]
    short = torch.minimum(n.unsqueeze(1), kf)  # min(n_rel, k): [B, 1] vs [nk] -> [B, nk]
    columns: dict[str, Callable[[], Tensor]] = {
        "recall": lambda: at / n.unsqueeze(1),
        "precision": lambda: at / kf,
        "hit": lambda: (at > 0).to(h.dtype),
        "ndcg": lambda: torch.cumsum(h / torch.log2(ranks + 1.0), dim=1)[:, cut]
        / torch.cumsum(1.0 / torch.log2(ranks + 1.0), dim=0)[short.long() - 1],  # DCG / IDCG: [B, nk]
        "mrr": lambda: torch.cummax(h / ranks, dim=1).values[:, cut],
        "map": lambda: torch.cumsum(hits_so_far / ranks * h, dim=1)[:, cut] / short,
    }
    blocks = []
    for name in names:
        if name in columns and RANKING_METRICS.get(name) is _FUNCTIONS[name]:
            blocks.append(columns[name]())  # [B, nk]
        elif name in RANKING_METRICS:
            blocks.append(torch.stack([RANKING_METRICS[name](hits, n_rel, k).to(h.dtype) for k in ks], dim=1))
        else:
            raise ValueError(f"unknown metric {name!r}; allowed {sorted(RANKING_METRICS)}")
    return torch.stack(blocks, dim=1).reshape(h.shape[0], len(names) * len(ks))  # [B, M, nk] -> [B, M * nk]


# --------------------------------------------------------------------------------------------------
# list-level helpers
# --------------------------------------------------------------------------------------------------
def item_coverage(top_items: Tensor, n_items: int, k: int) -> float:
    """Catalogue coverage of the top-k lists.

    ``coverage@k = |union_u top-k(u)| / n_items``, where ``top_items[u, :k]`` are the item ids
    (``0 <= id < n_items``) recommended to user ``u``.
    """
    if top_items.dim() != 2:
        raise ValueError(f"top_items must be 2-D [B, K], got shape {tuple(top_items.shape)}")
    _check_k(k, top_items.shape[1])
    if n_items < 1:
        raise ValueError(f"n_items must be >= 1, got {n_items}")
    distinct = torch.unique(top_items[:, :k])  # [B, K] -> [B, k] -> [U] (flattened, distinct ids)
    if distinct.numel() > 0 and (int(distinct[0]) < 0 or int(distinct[-1]) >= n_items):
        raise ValueError(
            f"item ids must lie in [0, {n_items}); got range [{int(distinct[0])}, {int(distinct[-1])}]"
        )
    return distinct.numel() / n_items


def ranking_hits(top_items: Tensor, target: Tensor | tuple[Tensor, Tensor]) -> Tensor:
    """Relevance of the ranked items: ``hits[u, j] = 1[(u, top_items[u, j]) is a target cell]``.

    ``top_items: Tensor[B, K]`` (long item ids). ``target`` is either a ``Tensor[B, N]`` bool mask (``True`` =
    relevant) or the relevant cells as coordinates ``(rows [nnz], items [nnz])``, as
    :func:`~ecomlab.models.base.rank_topk` takes ``exclude``: the coordinates cost ``O(nnz + B K log nnz)``
    instead of a ``[B, N]`` mask. Returns ``Tensor[B, K]`` bool. The matching ``n_rel`` is ``target.sum(1)``
    (for coordinates, the count of each row's cells).
    """
    if isinstance(target, tuple):
        rows, items = target
        if top_items.dim() != 2 or rows.shape != items.shape or rows.dim() != 1:
            raise ValueError(f"expected top_items [B, K] and target coordinates (rows [nnz], items [nnz]), got "
                             f"{tuple(top_items.shape)}, {tuple(rows.shape)} and {tuple(items.shape)}")
        if not len(rows):
            return torch.zeros(top_items.shape, dtype=torch.bool, device=top_items.device)
        # One sorted key per cell, row-major (row * 2^32 + item; no item id reaches 2^32): a membership test is a
        # binary search, and no width has to be read back from the device.
        keys = torch.sort((rows.long() << 32) + items.long()).values  # [nnz]
        batch_rows = torch.arange(top_items.shape[0], device=top_items.device).unsqueeze(1)  # [B, 1]
        query = (batch_rows << 32) + top_items.long()  # [B, 1] + [B, K] -> [B, K]
        found = torch.searchsorted(keys, query).clamp(max=len(keys) - 1)  # [B, K]
        return keys[found] == query
    if top_items.dim() != 2 or target.dim() != 2 or top_items.shape[0] != target.shape[0]:
        raise ValueError(
            f"expected top_items [B, K] and target [B, N], got {tuple(top_items.shape)} and {tuple(target.shape)}"
        )
    return target.gather(1, top_items.long()).bool()  # [B, N] gather [B, K] -> [B, K]
