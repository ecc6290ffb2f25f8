"""rank_topk: the exact tie policy (lower item index first) on its fast path and its fallback."""

from __future__ import annotations

import pytest
import torch

from ecomlab.models.base import TOPK_BLOCK, largest, rank_topk


def reference(scores: torch.Tensor, k: int, exclude: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    scores = scores.float()
    if exclude is not None:
        scores = scores.masked_fill(exclude, float("-inf"))
    values, items = torch.sort(scores, dim=1, descending=True, stable=True)
    return values[:, :k], items[:, :k]


@pytest.mark.parametrize("tied", [True, False])
def test_matches_a_stable_full_sort(tied: bool) -> None:
    g = torch.Generator().manual_seed(0)
    for _ in range(150):
        b, n, k = (int(torch.randint(1, hi, (1,), generator=g)) for hi in (12, 50, 60))
        scores = torch.randint(0, 4, (b, n), generator=g).float() if tied else torch.rand(b, n, generator=g)
        exclude = torch.rand(b, n, generator=g) < 0.3
        got, want = rank_topk(scores, k, exclude), reference(scores, k, exclude)
        assert torch.equal(got[1], want[1]) and torch.equal(got[0], want[0])


def test_hand_example_with_ties_at_the_cut() -> None:
    scores = torch.tensor([[0.5, 0.9, 0.5, 0.5, 0.1]])
    _, items = rank_topk(scores, 3)
    assert items.tolist() == [[1, 0, 2]]  # items 0, 2, 3 tie at 0.5; the lower indices win the two places
    _, items = rank_topk(scores, 3, exclude=torch.tensor([[False, True, False, False, False]]))
    assert items.tolist() == [[0, 2, 3]]


def test_bf16_ties_nan_and_fewer_candidates_than_k() -> None:
    g = torch.Generator().manual_seed(1)
    scores = (torch.randn(40, 300, generator=g) * 3).to(torch.bfloat16)  # bf16: many exact ties
    exclude = torch.rand(40, 300, generator=g) < 0.5
    got, want = rank_topk(scores, 20, exclude), reference(scores, 20, exclude)
    assert torch.equal(got[1], want[1]) and torch.equal(got[0], want[0])
    nan_row = torch.tensor([[0.2, float("nan"), 0.7, float("inf")]])
    assert rank_topk(nan_row, 4)[1].tolist() == [[3, 2, 0, 1]]  # NaN ranks last
    few = rank_topk(torch.tensor([[0.3, 0.1, 0.2]]), 3, torch.tensor([[False, True, True]]))
    assert few[1].tolist() == [[0, 1, 2]] and few[0][0, 1:].isinf().all()


def test_inplace_masking_gives_the_same_ranking_and_masks_the_callers_tensor() -> None:
    torch.manual_seed(0)
    scores = torch.randn(8, 50)
    exclude = torch.rand(8, 50) < 0.3
    expected = rank_topk(scores.clone(), 5, exclude)
    owned = scores.clone()
    got = rank_topk(owned, 5, exclude, inplace=True)
    torch.testing.assert_close(got[0], expected[0])
    assert torch.equal(got[1], expected[1])
    assert torch.isneginf(owned[exclude]).all() and torch.equal(owned[~exclude], scores[~exclude])
    untouched = scores.clone()
    rank_topk(untouched, 5, exclude)
    assert torch.equal(untouched, scores)


def test_excluded_cells_as_coordinates_rank_like_the_dense_mask() -> None:
    torch.manual_seed(1)
    scores = torch.randn(6, 40)
    exclude = torch.rand(6, 40) < 0.4
    dense = rank_topk(scores, 7, exclude)
    coords = rank_topk(scores, 7, tuple(exclude.nonzero().T))
    torch.testing.assert_close(coords[0], dense[0])
    assert torch.equal(coords[1], dense[1])


@pytest.mark.parametrize("kind", ["distinct", "tied", "masked", "nan"])
def test_blockwise_largest_equals_topk_on_wide_rows(kind: str) -> None:
    """Rows wide enough for the two-pass path (and widths that leave a partial last block): the same values as
    torch.topk, and the same items wherever the cut is not tied; rank_topk then equals a stable full sort."""
    g = torch.Generator().manual_seed(1)
    for n in (6 * 11 * TOPK_BLOCK, 6 * 11 * TOPK_BLOCK + 37, 20_011):
        scores = torch.rand(16, n, generator=g)
        if kind == "tied":
            scores = torch.randint(0, 50, (16, n), generator=g).float()
        elif kind == "masked":  # whole blocks at -inf, as excluded items leave them
            scores[:, : n // 2] = float("-inf")
        elif kind == "nan":
            scores[3, 5 * TOPK_BLOCK + 2] = float("nan")
        k = 11
        values, items = largest(scores, k)
        want = torch.topk(scores, k, dim=1, sorted=True)
        torch.testing.assert_close(values, want.values, rtol=0, atol=0, equal_nan=True)
        assert torch.equal(scores.gather(1, items).nan_to_num(-1.0), values.nan_to_num(-1.0))  # real items
        untied = values[:, k - 1] > torch.topk(scores, k + 1, dim=1).values[:, k]
        assert torch.equal(items[untied].sort(1).values, want.indices[untied].sort(1).values)
        exclude = torch.rand(16, n, generator=g) < 0.1
        # rank_topk ranks NaN last: the reference sorts with NaN as -inf
        got, ref = rank_topk(scores, 10, exclude), reference(scores.nan_to_num(nan=float("-inf")), 10, exclude)
        assert torch.equal(got[1], ref[1]) and torch.equal(got[0], ref[0])


def test_blockwise_largest_is_only_used_where_it_applies() -> None:
    narrow = torch.rand(4, 6 * 11 * TOPK_BLOCK - 1)  # fewer blocks than 6 k: plain topk
    values, items = largest(narrow, 11)
    want = torch.topk(narrow, 11, dim=1)
    assert torch.equal(values, want.values) and torch.equal(items, want.indices)
    strided = torch.rand(20_000, 4).T  # not contiguous: plain topk, same answer
    values, items = largest(strided, 11)
    want = torch.topk(strided, 11, dim=1)
    assert torch.equal(values, want.values) and torch.equal(items, want.indices)


def test_blockwise_choice_can_be_forced_either_way() -> None:
    """What bench_gpu times on a GPU: the block path forced on rows the rule leaves to topk, and topk forced on
    rows the rule would split, both exact."""
    g = torch.Generator().manual_seed(2)
    scores = torch.randint(0, 30, (12, 20 * TOPK_BLOCK + 5), generator=g).float()  # 20 blocks < 6 x 11, ties
    exclude = torch.rand(scores.shape, generator=g) < 0.2
    want = reference(scores, 10, exclude)
    for blockwise in (True, False, None):
        got = rank_topk(scores, 10, exclude, blockwise=blockwise)
        assert torch.equal(got[1], want[1]) and torch.equal(got[0], want[0])
    values, _ = largest(torch.rand(3, 5 * TOPK_BLOCK), 11, blockwise=True)  # fewer blocks than k: topk
    assert values.shape == (3, 11)
