"""The two small interfaces every model implements; nothing here knows about training or datasets.

* :class:`Recommender` -- ``forward(users) -> [B, n_items]`` scores over the whole catalogue;
  ``recommend(users, k, exclude)`` on top of it; ``loss(batch)`` for models trained by gradient steps;
  ``fit(data)`` for closed-form (classical) models.
* :class:`Forecaster` -- ``forecast(histories, horizon) -> [B, h]`` point forecasts.

Models receive tensors and arrays (:class:`RecTrainData`), never the dataset bundle or data module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class RecTrainData:
    """What a closed-form recommender may fit on.

    ``train`` is the ``[n_users, n_items]`` CSR matrix of training interactions (values = weights);
    ``item_text`` is aligned with item indices (``None`` when the dataset has no text);
    ``social`` is an ``[E, 2]`` array of ``(user, friend)`` index pairs or ``None``.
    """

    train: sp.csr_matrix
    item_text: Sequence[str] | None = None
    social: np.ndarray | None = None
    #: the data set's name, for error messages that say which data lacks what a model needs
    name: str = "the data set"


class Recommender(nn.Module):
    """Scores every item for a batch of users."""

    #: ``True`` when the model learns by gradient steps on ``loss``; ``False`` when ``fit`` is closed-form.
    trainable: ClassVar[bool] = True

    def fit(self, data: RecTrainData) -> None:
        """Closed-form fit (classical models), or taking fixed inputs such as the interaction graph, social
        edges or item text (trained models). Called before training and before loading a checkpoint."""

    def forward(self, users: Tensor) -> Tensor:  # [B] -> [B, n_items]
        """Scores of every item for ``users``: a fresh tensor the caller owns (evaluation masks it in place), never
        a view of cached state."""
        raise NotImplementedError

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} is fitted in closed form and has no training loss")

    def param_groups(self) -> list[dict[str, Any]]:
        """Optimizer parameter groups; a group's ``lr_factor`` scales the optimizer's learning rate for it
        (e.g. a pretrained encoder fine-tuned at a tenth of the rate of the layers trained from scratch)."""
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    @torch.no_grad()
    def recommend(self, users: Tensor, k: int, exclude: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Top-``k`` ``(scores, items)`` per user, each ``[B, k]``; ``exclude`` is a ``[B, n_items]`` bool mask.

        Ties are broken towards the lower item index (``torch.topk`` on CPU and CUDA is not stable; see
        ``rank_topk`` for how the tie policy is enforced).
        """
        scores = self(users)  # [B, n_items]
        return rank_topk(scores, k, exclude)


def _members_with_ties(scores: Tensor, kth: Tensor, k: int) -> Tensor:
    """Each row's top-``k`` set in ascending item order: every item above ``kth`` plus the lowest-indexed items
    scoring exactly ``kth`` (a running count along the row picks them). ``[b, N], [b, 1] -> [b, k]``."""
    above = scores > kth  # [b, N]
    need = k - above.sum(dim=1, keepdim=True)  # [b, 1] items to take among those scoring exactly kth
    at_kth = scores == kth
    taken = above | (at_kth & (at_kth.cumsum(dim=1, dtype=torch.int32) <= need))  # exactly k per row
    return taken.nonzero()[:, 1].view(scores.shape[0], k)  # row-major: ascending item indices per row


#: columns per block of :func:`largest`'s first pass (a power of two: the block maxima vectorise best)
TOPK_BLOCK = 64


def largest(scores: Tensor, k: int, blockwise: bool | None = None) -> tuple[Tensor, Tensor]:
    """``torch.topk(scores, k, dim=1, sorted=True)`` for ``[B, N]`` scores: the same values, and the same items
    wherever the ``k``-th and ``(k+1)``-th values differ (with equal values at the cut either may be returned).

    On CPU, where ``topk`` costs about 25 ns per element of a long row, wide rows go in two passes: the maximum
    of each block of :data:`TOPK_BLOCK` columns (a vectorised reduction), then ``topk`` over the ``k`` blocks with
    the largest maxima (plus the columns after the last whole block). Exact: if the ``k`` chosen blocks have
    maxima ``>= m``, they hold ``k`` values ``>= m``, so no value in a block whose maximum is ``<= m`` can be
    among the ``k`` largest unless it equals the ``k``-th. NaN maxima rank first, as ``topk`` ranks NaN, so NaNs
    are found too. Rows of at least ``6 k`` blocks take this path; ``experiments/perf/topk.md``
    (``scripts/bench_topk.py``) has the timings. GPUs (not measured this way) and narrower rows use ``topk``.
    ``blockwise`` forces the choice (``None``: the rule above), e.g. to time both on a GPU
    (``scripts/bench_gpu.py``).
    """
    n_rows, n_cols = scores.shape
    n_blocks = n_cols // TOPK_BLOCK
    if blockwise is None:
        blockwise = scores.device.type == "cpu" and n_blocks >= 6 * k
    if not blockwise or n_blocks < k or not scores.is_contiguous():
        return torch.topk(scores, k, dim=1, sorted=True)
    head = scores[:, : n_blocks * TOPK_BLOCK].view(n_rows, n_blocks, TOPK_BLOCK)  # [B, C, b], a view
    blocks = torch.topk(head.amax(dim=2), k, dim=1, sorted=False).indices  # [B, C] -> [B, k]
    offsets = torch.arange(TOPK_BLOCK, device=scores.device)
    # whole blocks by (row, block) index: half the time of a gather with an index expanded over the block
    cand = head[torch.arange(n_rows, device=scores.device).unsqueeze(1), blocks]  # [B, k, b]
    cand = cand.view(n_rows, k * TOPK_BLOCK)  # [B, k, b] -> [B, k*b]
    cand_items = (blocks.unsqueeze(2) * TOPK_BLOCK + offsets).view(n_rows, k * TOPK_BLOCK)  # [B, k, b] -> [B, k*b]
    if n_blocks * TOPK_BLOCK < n_cols:  # the columns after the last whole block are always candidates
        tail = torch.arange(n_blocks * TOPK_BLOCK, n_cols, device=scores.device)
        cand = torch.cat([cand, scores[:, n_blocks * TOPK_BLOCK:]], dim=1)  # [B, k*b] ++ [B, t] -> [B, k*b + t]
        cand_items = torch.cat([cand_items, tail.expand(n_rows, -1)], dim=1)
    top = torch.topk(cand, k, dim=1, sorted=True)
    return top.values, cand_items.gather(1, top.indices)


def _clear_cut(top_values: Tensor, k: int) -> Tensor:
    """``[B]``: the ``(k+1)``-th of ``top_values`` ``[B, k+1]`` (or ``[B, k]``: nothing beyond) is below the
    ``k``-th, so ``topk``'s first ``k`` items are the top-``k`` set whatever its tie order."""
    if top_values.shape[1] <= k:
        return torch.ones(top_values.shape[0], dtype=torch.bool, device=top_values.device)
    return top_values[:, k] < top_values[:, k - 1]


def rank_topk(scores: Tensor, k: int, exclude: Tensor | tuple[Tensor, Tensor] | None = None,
              inplace: bool = False, blockwise: bool | None = None) -> tuple[Tensor, Tensor]:
    """Top-``k`` of ``scores`` ``[B, N]`` after masking ``exclude`` to ``-inf``: a ``[B, N]`` bool mask, or the
    excluded cells as coordinates ``(rows [nnz], items [nnz])``.

    ``blockwise`` picks how the ``k + 1`` largest are found (:func:`largest`; ``None``: its own rule).

    ``inplace=True`` masks ``scores`` itself (it must be a float tensor the caller owns, such as a network's
    fresh score matrix): it saves a copy of the ``[B, N]`` matrix, a quarter of a CPU full-ranking pass.

    Tie policy: among equal scores the lower item index ranks first (deterministic on every device).
    Excluded items never appear unless fewer than ``k`` items remain, in which case they carry ``-inf``.
    NaN scores rank last.

    ``torch.topk`` is not stable under ties, so its ``k + 1`` largest values only locate the k-th largest
    value ``v``: where the next value is below ``v`` (almost every row with fp32 scores) topk's ``k`` items are
    the set; rows with a tie across ``v`` take every item above ``v`` plus the lowest-indexed items at ``v``; a
    stable sort of the ``k`` members by score then orders them. No full sort and, on the common path, no pass
    over the row besides the masking and ``topk`` itself.
    """
    if not scores.is_floating_point():
        scores = scores.float()
    if isinstance(exclude, tuple):
        minus_inf = scores.new_full((), float("-inf"))  # made on the device: no host-to-device copy
        scores = (scores.index_put_ if inplace else scores.index_put)(exclude, minus_inf)
    elif exclude is not None:
        scores = (scores.masked_fill_ if inplace else scores.masked_fill)(exclude, float("-inf"))
    k = min(k, scores.shape[1])
    if k == 0:
        return scores[:, :0].float(), torch.zeros(scores.shape[0], 0, dtype=torch.long, device=scores.device)
    top_values, top_indices = largest(scores, min(k + 1, scores.shape[1]), blockwise)
    # topk ranks NaN first, so a row with a NaN has one in column 0. One read-back from the device per call
    # (a GPU synchronisation) decides both rare cases, NaN and a tie across the cut.
    clear = _clear_cut(top_values, k) & ~top_values[:, 0].isnan()  # [B]
    if bool(clear.all()):
        members = torch.sort(top_indices[:, :k], dim=1).values  # [B, k]
    else:
        if bool(top_values[:, 0].isnan().any()):  # rank NaN last, then search again
            scores = torch.nan_to_num(scores, nan=float("-inf"), posinf=float("inf"), neginf=float("-inf"))
            top_values, top_indices = largest(scores, min(k + 1, scores.shape[1]), blockwise)
        kth = top_values[:, k - 1 : k]  # [B, 1]
        exact = _clear_cut(top_values, k)  # [B]
        members = torch.empty_like(top_indices[:, :k])
        members[exact] = torch.sort(top_indices[exact, :k], dim=1).values
        members[~exact] = _members_with_ties(scores[~exact], kth[~exact], k)
    order = torch.sort(scores.gather(1, members), dim=1, descending=True, stable=True).indices  # [B, k]
    top_items = members.gather(1, order)
    return scores.gather(1, top_items).float(), top_items  # [B, k] each


@dataclass(frozen=True)
class ForecastTrainData:
    """What a global forecaster may fit on: every series' observations before its first evaluation cutoff.

    Lists are aligned by series index (the same index the evaluation batches carry as ``series_index``);
    ``covariates[s]`` is a frame of the covariate columns aligned with ``y[s]`` (``None`` without covariates):
    the known-future columns ``futr_columns`` first, then the past-only ``hist_columns``.
    ``calendar[s]`` is the ``[T_s, n_calendar]`` array of calendar features aligned with ``y[s]`` (``None``
    when the data module derives none). ``static`` is the ``[S, n_static]`` integer array of static covariate
    codes (one shared code space over the ``static_columns``; ``None`` without static covariates).
    ``nonnegative``: no training value is below zero (sales, demand, counts), so forecasts should not be either:
    the evaluation clips them at zero and a model may pick a law with non-negative support.
    """

    unique_id: Sequence[str]
    ds: Sequence[np.ndarray]
    y: Sequence[np.ndarray]
    season_length: int
    covariates: Sequence[Any] | None = None
    calendar: Sequence[np.ndarray] | None = None
    futr_columns: tuple[str, ...] = ()
    hist_columns: tuple[str, ...] = ()
    static: np.ndarray | None = None
    static_columns: tuple[str, ...] = ()
    nonnegative: bool = False


class Forecaster(nn.Module):
    """Multi-step forecasts from a batch of histories of possibly different lengths.

    Per-series (local) models implement ``forecast``, refitting on every history they are given. Global models
    (one network or tree ensemble across a panel) also implement ``fit_panel``, called once before training
    and evaluation with :class:`ForecastTrainData`, and may override ``predict`` to use the whole evaluation
    batch (series index, dates, covariates). Intervals are optional: ``forecast_intervals`` returns ``{}`` for
    point forecasters.
    """

    trainable: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()
        #: series-windows forecast by a simpler model than configured (short history, failed fit), by reason;
        #: cumulative over every call (validation and test), written to the run record. Never a silent drop.
        self.fallbacks: dict[str, int] = {}

    def fit_panel(self, data: ForecastTrainData) -> None:
        """Fit on the training part of the panel (global models); local models refit per history instead."""

    def forecast(self, histories: Sequence[np.ndarray], horizon: int) -> np.ndarray:  # -> [B, horizon]
        raise NotImplementedError

    def forecast_intervals(self, histories: Sequence[np.ndarray], horizon: int,
                           levels: Sequence[int]) -> dict[str, np.ndarray]:
        """Central prediction intervals ``{"lo_80": [B, h], "hi_80": [B, h], ...}``; ``{}`` when the model
        gives point forecasts only."""
        return {}

    def predict(self, batch: dict[str, Any], horizon: int, levels: Sequence[int] = ()) -> dict[str, np.ndarray]:
        """``{"y_hat": [B, h]}`` (point forecast = median for probabilistic models), plus ``lo_<level>`` and
        ``hi_<level>`` ``[B, h]`` entries for each of ``levels`` the model can give."""
        out = {"y_hat": self.forecast(batch["history"], horizon)}
        if levels:
            out.update(self.forecast_intervals(batch["history"], horizon, levels))
        return out
