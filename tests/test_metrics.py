"""Unit tests for ecomlab.metrics.ranking, ecomlab.metrics.forecasting and the scaled CRPS of
ecomlab.metrics.probabilistic (hand-computed values; RMSSE and scaled CRPS also against utilsforecast)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import torch

from ecomlab.metrics.forecasting import (
    FORECAST_METRICS,
    aggregate,
    mae,
    mase,
    mase_scale,
    per_series,
    rmse,
    rmsse,
    rmsse_scale,
    smape,
)
from ecomlab.metrics.probabilistic import scaled_crps
from ecomlab.metrics.ranking import (
    RANKING_METRICS,
    hit_at_k,
    item_coverage,
    map_at_k,
    metric_table,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    ranking_hits,
    recall_at_k,
)

LOG2_3 = math.log2(3)  # discount denominator of rank 2
ALL_FNS = [recall_at_k, precision_at_k, hit_at_k, ndcg_at_k, mrr_at_k, map_at_k]


def _t(rows: list[list[int]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.bool)


def _close(a: torch.Tensor, expected: list[float]) -> None:
    assert torch.allclose(a.double().cpu(), torch.tensor(expected, dtype=torch.float64), atol=1e-6), (
        a,
        expected,
    )


# ---------------------------------------------------------------------------------------------------
# ranking: hand-computed users
# ---------------------------------------------------------------------------------------------------
def test_single_relevant_item_fewer_than_k() -> None:
    # n_rel = 1, K = 5.
    # user 0: hit at rank 1 -> recall 1, precision 1/5, hit 1, NDCG 1/1 = 1, RR 1, AP = (1/1) * P@1 = 1
    # user 1: hit at rank 2 -> recall 1, precision 1/5, hit 1,
    #         NDCG = (1/log2(3)) / (1/log2(2)) = 1/log2(3) ~ 0.6309, RR 1/2, AP = (1/min(1,5)) * P@2 = 1/2
    hits = _t([[1, 0, 0, 0, 0], [0, 1, 0, 0, 0]])
    n_rel = torch.tensor([1, 1])
    _close(recall_at_k(hits, n_rel, 5), [1.0, 1.0])
    _close(precision_at_k(hits, n_rel, 5), [0.2, 0.2])
    _close(hit_at_k(hits, n_rel, 5), [1.0, 1.0])
    _close(ndcg_at_k(hits, n_rel, 5), [1.0, 1.0 / LOG2_3])
    _close(mrr_at_k(hits, n_rel, 5), [1.0, 0.5])
    _close(map_at_k(hits, n_rel, 5), [1.0, 0.5])
    # cut-off k=1 only sees rank 1
    _close(recall_at_k(hits, n_rel, 1), [1.0, 0.0])
    _close(ndcg_at_k(hits, n_rel, 1), [1.0, 0.0])


def test_user_without_hit_scores_zero() -> None:
    hits = _t([[0, 0, 0, 0, 0]])
    n_rel = torch.tensor([3])
    for fn in ALL_FNS:
        _close(fn(hits, n_rel, 5), [0.0])
        _close(fn(hits, n_rel, 2), [0.0])


def test_hits_at_ranks_1_and_3_with_two_relevant() -> None:
    hits = _t([[1, 0, 1, 0, 0]])
    n_rel = torch.tensor([2])
    # k = 5:
    #   recall = 2/2 = 1, precision = 2/5, hit = 1
    #   DCG  = 1/log2(2) + 1/log2(4) = 1 + 0.5 = 1.5
    #   IDCG = 1/log2(2) + 1/log2(3) = 1 + 0.63093 = 1.63093  (min(n_rel, k) = 2 terms)
    #   NDCG = 1.5 / 1.63093 = 0.91972
    #   RR   = 1/1 (first hit at rank 1)
    #   AP   = (1/min(2,5)) * (P@1*1 + P@3*1) = 0.5 * (1 + 2/3) = 0.83333
    idcg2 = 1.0 + 1.0 / LOG2_3
    _close(recall_at_k(hits, n_rel, 5), [1.0])
    _close(precision_at_k(hits, n_rel, 5), [0.4])
    _close(hit_at_k(hits, n_rel, 5), [1.0])
    _close(ndcg_at_k(hits, n_rel, 5), [1.5 / idcg2])
    assert abs(1.5 / idcg2 - 0.919721) < 1e-5
    _close(mrr_at_k(hits, n_rel, 5), [1.0])
    _close(map_at_k(hits, n_rel, 5), [0.5 * (1.0 + 2.0 / 3.0)])
    # k = 2: only the rank-1 hit is visible
    #   recall 1/2, precision 1/2, NDCG = 1 / IDCG@2 = 1/1.63093, AP = (1/2) * P@1 = 0.5
    _close(recall_at_k(hits, n_rel, 2), [0.5])
    _close(precision_at_k(hits, n_rel, 2), [0.5])
    _close(ndcg_at_k(hits, n_rel, 2), [1.0 / idcg2])
    _close(map_at_k(hits, n_rel, 2), [0.5])
    _close(mrr_at_k(hits, n_rel, 2), [1.0])


def test_first_hit_at_rank_3_mrr() -> None:
    # RR = 1/3; AP with n_rel=4, K=4: (1/4) * (P@3 + P@4) = (1/4) * (1/3 + 2/4) = 0.208333
    hits = _t([[0, 0, 1, 1]])
    n_rel = torch.tensor([4])
    _close(mrr_at_k(hits, n_rel, 4), [1.0 / 3.0])
    _close(map_at_k(hits, n_rel, 4), [0.25 * (1.0 / 3.0 + 0.5)])
    # DCG = 1/log2(4) + 1/log2(5); IDCG = sum_{j=1..4} 1/log2(j+1)
    dcg = 0.5 + 1.0 / math.log2(5)
    idcg = sum(1.0 / math.log2(j + 1) for j in range(1, 5))
    _close(ndcg_at_k(hits, n_rel, 4), [dcg / idcg])


def test_more_relevant_than_k() -> None:
    # n_rel = 10 > k = 3 and a perfect top-3: NDCG = AP = 1 (normalised by min(n_rel, k) = 3),
    # recall = 3/10, precision = 1
    hits = _t([[1, 1, 1, 0]])
    n_rel = torch.tensor([10])
    _close(ndcg_at_k(hits, n_rel, 3), [1.0])
    _close(map_at_k(hits, n_rel, 3), [1.0])
    _close(recall_at_k(hits, n_rel, 3), [0.3])
    _close(precision_at_k(hits, n_rel, 3), [1.0])


def _reference(hits: list[int], n_rel: int, k: int) -> dict[str, float]:
    """Straightforward loop implementation of the documented formulas."""
    h = hits[:k]
    n_hit = sum(h)
    dcg = sum(x / math.log2(j + 2) for j, x in enumerate(h))
    idcg = sum(1.0 / math.log2(j + 2) for j in range(min(n_rel, k)))
    first = next((j + 1 for j, x in enumerate(h) if x), None)
    ap = sum((sum(h[: j + 1]) / (j + 1)) * x for j, x in enumerate(h)) / min(n_rel, k)
    return {
        "recall": n_hit / n_rel,
        "precision": n_hit / k,
        "hit": float(n_hit > 0),
        "ndcg": dcg / idcg,
        "mrr": 0.0 if first is None else 1.0 / first,
        "map": ap,
    }


def test_against_loop_reference() -> None:
    g = torch.Generator().manual_seed(0)
    b, kk = 64, 8
    hits = torch.rand(b, kk, generator=g) < 0.3
    n_rel = hits.sum(1) + torch.randint(0, 4, (b,), generator=g)
    n_rel = torch.clamp(n_rel, min=1)
    for k in (1, 3, kk):
        for name, fn in RANKING_METRICS.items():
            got = fn(hits, n_rel, k)
            want = [_reference(hits[u].int().tolist(), int(n_rel[u]), k)[name] for u in range(b)]
            _close(got, want)


def test_float_and_bool_hits_agree_and_output_is_float() -> None:
    hits = _t([[1, 0, 1], [0, 1, 0]])
    n_rel = torch.tensor([2, 3])
    for fn in ALL_FNS:
        a = fn(hits, n_rel, 3)
        b = fn(hits.float(), n_rel.float(), 3)
        assert a.dtype.is_floating_point and a.shape == (2,)
        assert torch.allclose(a, b)
    assert ndcg_at_k(hits.double(), n_rel, 3).dtype == torch.float64


def test_registry_names() -> None:
    assert set(RANKING_METRICS) == {"recall", "precision", "hit", "ndcg", "mrr", "map"}
    assert set(FORECAST_METRICS) == {"mae", "rmse", "smape"}


@pytest.mark.parametrize("fn", ALL_FNS)
@pytest.mark.parametrize("k", [0, -1, 6])
def test_k_bounds(fn: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor], k: int) -> None:
    hits = _t([[1, 0, 0, 0, 0]])
    with pytest.raises(ValueError):
        fn(hits, torch.tensor([1]), k)


def test_zero_relevant_users_rejected() -> None:
    with pytest.raises(ValueError):
        recall_at_k(_t([[0, 0]]), torch.tensor([0]), 2)


def test_shape_errors() -> None:
    with pytest.raises(ValueError):
        recall_at_k(torch.zeros(5, dtype=torch.bool), torch.tensor([1]), 1)
    with pytest.raises(ValueError):
        recall_at_k(_t([[1, 0]]), torch.tensor([1, 1]), 1)


@pytest.mark.parametrize("dtype", [torch.bool, torch.float32, torch.float64])
def test_metric_table_equals_the_metric_functions(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    hits = (torch.rand(300, 20) < 0.25).to(dtype)
    hits[:5] = 0  # users without a hit
    hits[5:10] = 1  # users with every position a hit
    n_rel = torch.randint(1, 30, (300,))
    names, ks = list(RANKING_METRICS), [1, 3, 10, 20]
    table = metric_table(hits, n_rel, names, ks)
    expected = torch.stack([RANKING_METRICS[m](hits, n_rel, k) for m in names for k in ks], dim=1)  # name-major
    assert table.shape == (300, len(names) * len(ks)) and table.dtype == expected.dtype
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    torch.testing.assert_close(table, expected, atol=tol, rtol=tol)
    # a subset, in a different order
    sub = metric_table(hits, n_rel, ["ndcg", "recall"], [10])
    torch.testing.assert_close(sub, torch.stack([ndcg_at_k(hits, n_rel, 10), recall_at_k(hits, n_rel, 10)], 1))


def test_metric_table_checks_and_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    hits, n_rel = _t([[1, 0, 1], [0, 0, 0]]), torch.tensor([2, 0])
    with pytest.raises(ValueError, match="n_rel >= 1"):
        metric_table(hits, n_rel, ["recall"], [2])
    assert metric_table(hits, n_rel, ["precision"], [2], check=False).shape == (2, 1)  # no value check
    with pytest.raises(ValueError, match="unknown metric"):
        metric_table(hits, torch.tensor([2, 1]), ["nope"], [2])
    with pytest.raises(ValueError, match="k=4 exceeds"):
        metric_table(hits, torch.tensor([2, 1]), ["recall"], [4])
    # a metric re-bound in the registry is computed by its own function
    monkeypatch.setitem(RANKING_METRICS, "hit", lambda h, n, k: torch.full((h.shape[0],), float(k)))
    out = metric_table(hits, torch.tensor([2, 1]), ["hit", "recall"], [1, 2])
    torch.testing.assert_close(out[:, :2], torch.tensor([[1.0, 2.0], [1.0, 2.0]]))
    torch.testing.assert_close(out[:, 2:], torch.tensor([[0.5, 0.5], [0.0, 0.0]]))


def test_item_coverage() -> None:
    top = torch.tensor([[0, 1, 2], [1, 3, 4], [0, 5, 6]])
    # top-1: {0, 1} -> 2/10; top-2: {0,1,3,5} -> 4/10; top-3: {0..6} -> 7/10
    assert item_coverage(top, 10, 1) == pytest.approx(0.2)
    assert item_coverage(top, 10, 2) == pytest.approx(0.4)
    assert item_coverage(top, 10, 3) == pytest.approx(0.7)
    with pytest.raises(ValueError):
        item_coverage(top, 10, 4)
    with pytest.raises(ValueError):
        item_coverage(top, 10, 0)
    with pytest.raises(ValueError):
        item_coverage(top, 5, 3)  # id 6 out of range


def test_ranking_hits() -> None:
    target = torch.tensor([[False, True, False, True], [True, False, False, False]])
    top = torch.tensor([[3, 0, 1], [2, 0, 1]])
    hits = ranking_hits(top, target)  # [2, 4] gather [2, 3] -> [2, 3]
    assert hits.dtype == torch.bool
    assert hits.tolist() == [[True, False, True], [False, True, False]]
    # end to end: user 0 has 2 relevant, hits at ranks 1 and 3 -> AP@3 = 0.5 * (1 + 2/3)
    _close(map_at_k(hits, target.sum(1), 3), [0.5 * (1 + 2 / 3), 0.5])


def test_ranking_hits_from_target_cells_equal_the_mask() -> None:
    g = torch.Generator().manual_seed(7)
    target = torch.rand(50, 40, generator=g) < 0.1  # [B, N], some rows empty
    target[3] = False
    top = torch.rand(50, 40, generator=g).argsort(dim=1)[:, :10]  # [B, K]
    rows, items = target.nonzero().unbind(1)
    shuffled = torch.randperm(len(rows), generator=g)  # the cells need no order
    cells = ranking_hits(top, (rows[shuffled], items[shuffled]))
    assert cells.dtype == torch.bool
    assert torch.equal(cells, ranking_hits(top, target))
    assert not cells[3].any()
    nothing = ranking_hits(top, (torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)))
    assert nothing.shape == (50, 10) and not nothing.any()
    with pytest.raises(ValueError, match="coordinates"):
        ranking_hits(top, (rows, items[:-1]))


def _devices() -> list[object]:
    devs: list[object] = ["cpu"]
    devs.append(
        pytest.param(
            "cuda",
            marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")],
        )
    )
    return devs


@pytest.mark.parametrize("device", _devices())
def test_runs_on_device(device: str) -> None:
    hits = _t([[1, 0, 1, 0, 0]]).to(device)
    n_rel = torch.tensor([2], device=device)
    for fn in ALL_FNS:
        out = fn(hits, n_rel, 5)
        assert out.device.type == device
    _close(ndcg_at_k(hits, n_rel, 5), [1.5 / (1.0 + 1.0 / LOG2_3)])
    assert item_coverage(torch.tensor([[0, 1]], device=device), 4, 2) == pytest.approx(0.5)


def test_random_ranking_expected_recall_and_precision() -> None:
    # N items, R relevant, uniformly random ranking: |rel ∩ top-K| is hypergeometric with mean K*R/N,
    # so E[recall@K] = K/N and E[precision@K] = R/N.
    n_users, n_items, n_relevant, k = 20_000, 50, 5, 10
    g = torch.Generator().manual_seed(1234)
    rel_ids = torch.rand(n_users, n_items, generator=g).argsort(dim=1)[:, :n_relevant]  # [U, R]
    target = torch.zeros(n_users, n_items, dtype=torch.bool)
    target.scatter_(1, rel_ids, True)  # [U, N]
    top = torch.rand(n_users, n_items, generator=g).argsort(dim=1)[:, :k]  # [U, K]
    hits = ranking_hits(top, target)
    n_rel = target.sum(1)
    assert bool((n_rel == n_relevant).all())
    for fn, expected in ((recall_at_k, k / n_items), (precision_at_k, n_relevant / n_items)):
        vals = fn(hits, n_rel, k).double()
        se = vals.std().item() / math.sqrt(n_users)
        assert abs(vals.mean().item() - expected) < 3 * se, (fn.__name__, vals.mean().item(), expected, se)


# ---------------------------------------------------------------------------------------------------
# forecasting
# ---------------------------------------------------------------------------------------------------
Y = np.array([1.0, 2.0, 3.0, 4.0])
Y_HAT = np.array([2.0, 2.0, 1.0, 4.0])  # errors: -1, 0, 2, 0


def test_mae_rmse_smape_hand_values() -> None:
    assert mae(Y, Y_HAT) == pytest.approx(3 / 4)  # (1 + 0 + 2 + 0) / 4
    assert rmse(Y, Y_HAT) == pytest.approx(math.sqrt(5 / 4))  # sqrt((1 + 0 + 4 + 0) / 4)
    # sMAPE terms: 200*1/(1+2)=66.667, 0, 200*2/(3+1)=100, 0 -> mean 41.667
    assert smape(Y, Y_HAT) == pytest.approx((200 / 3 + 100) / 4)
    assert isinstance(mae(Y, Y_HAT), float)
    for name, fn in FORECAST_METRICS.items():
        assert fn(Y, Y) == pytest.approx(0.0), name


def test_smape_zero_over_zero_counts_as_zero() -> None:
    # terms: 0/0 -> 0, 200*|1-3|/(1+3) = 100 -> mean 50
    assert smape(np.array([0.0, 1.0]), np.array([0.0, 3.0])) == pytest.approx(50.0)
    assert smape(np.zeros(3), np.zeros(3)) == 0.0
    # upper bound 200 when signs are opposite / one side is 0
    assert smape(np.array([0.0]), np.array([5.0])) == pytest.approx(200.0)


def test_batched_metrics() -> None:
    y = np.stack([Y, np.zeros(4)])  # [2, 4]
    yh = np.stack([Y_HAT, np.ones(4)])
    np.testing.assert_allclose(mae(y, yh), [0.75, 1.0])
    np.testing.assert_allclose(rmse(y, yh), [math.sqrt(1.25), 1.0])
    np.testing.assert_allclose(smape(y, yh), [(200 / 3 + 100) / 4, 200.0])
    assert mae(y, yh).shape == (2,)
    with pytest.raises(ValueError):
        mae(Y, Y_HAT[:3])


def test_mase_season_12() -> None:
    # T = 14, m = 12: scale = mean(|x12 - x0|, |x13 - x1|) = mean(|2 - 0|, |7 - 1|) = 4
    insample = np.concatenate([np.arange(12.0), [2.0, 7.0]])
    assert mase_scale(insample, 12) == pytest.approx(4.0)
    # MAE = (|1-3| + |2-6|)/2 = 3 -> MASE = 3/4
    y, yh = np.array([1.0, 2.0]), np.array([3.0, 6.0])
    assert mase(y, yh, insample, 12) == pytest.approx(0.75)
    assert mase(y, yh, scale=4.0) == pytest.approx(0.75)
    # m = 1 on the same history gives a different scale: diffs 1 (x11), |2-11|=9, |7-2|=5
    assert mase_scale(insample, 1) == pytest.approx((11 * 1 + 9 + 5) / 13)


def test_mase_short_insample_falls_back_to_m1() -> None:
    # T = 3 <= m = 12 -> m = 1: scale = mean(|4-1|, |2-4|) = 2.5; MAE = 5 -> MASE = 2
    insample = np.array([1.0, 4.0, 2.0])
    assert mase_scale(insample, 12) == pytest.approx(2.5)
    assert mase(np.array([0.0]), np.array([5.0]), insample, 12) == pytest.approx(2.0)
    # T == m also falls back (no pair t, t-m exists)
    assert mase_scale(np.arange(12.0), 12) == pytest.approx(1.0)
    # a single observation: undefined scale -> NaN
    assert math.isnan(mase_scale(np.array([3.0]), 12))


def test_mase_zero_scale_is_nan() -> None:
    insample = np.full(24, 5.0)
    assert mase_scale(insample, 12) == 0.0
    assert math.isnan(mase(np.array([5.0]), np.array([6.0]), insample, 12))
    assert math.isnan(mase(np.array([5.0]), np.array([5.0]), insample, 12))


def test_mase_batched_and_argument_errors() -> None:
    insample = np.stack([np.array([1.0, 4.0, 2.0]), np.array([1.0, 1.0, 1.0])])  # scales 2.5, 0
    y = np.array([[0.0], [0.0]])
    yh = np.array([[5.0], [1.0]])
    out = mase(y, yh, insample, 12)
    assert out.shape == (2,)
    assert out[0] == pytest.approx(2.0) and math.isnan(out[1])
    np.testing.assert_allclose(mase_scale(insample, 1), [2.5, 0.0])
    with pytest.raises(ValueError):
        mase(y, yh)  # neither insample nor scale
    with pytest.raises(ValueError):
        mase(y, yh, insample, 12, scale=1.0)  # both
    with pytest.raises(ValueError):
        mase_scale(insample, 0)


def test_aggregate_two_series_two_windows() -> None:
    per_window = pd.DataFrame(
        {
            "unique_id": ["A", "A", "B", "B"],
            "window": [0, 1, 0, 1],
            "mae": [1.0, 3.0, 4.0, 8.0],  # A: 2, B: 6 -> 4
            "smape": [10.0, 20.0, 30.0, 50.0],  # A: 15, B: 40 -> 27.5
            "mase": [1.0, np.nan, 2.0, 4.0],  # A: 1 (NaN skipped), B: 3 -> 2
        }
    )
    ps = per_series(per_window)
    assert list(ps.columns) == ["unique_id", "mae", "smape", "mase"]
    assert ps["unique_id"].tolist() == ["A", "B"]
    np.testing.assert_allclose(ps["mae"], [2.0, 6.0])
    np.testing.assert_allclose(ps["smape"], [15.0, 40.0])
    np.testing.assert_allclose(ps["mase"], [1.0, 3.0])
    agg = aggregate(per_window)
    assert agg == pytest.approx({"mae": 4.0, "smape": 27.5, "mase": 2.0})


def test_aggregate_weights_series_equally() -> None:
    # A has 1 window (0), B has 3 windows (3, 3, 3): series mean = (0 + 3)/2 = 1.5, not the flat 9/4
    per_window = pd.DataFrame(
        {"unique_id": ["A", "B", "B", "B"], "window": [0, 0, 1, 2], "mae": [0.0, 3, 3, 3]}
    )
    assert aggregate(per_window) == pytest.approx({"mae": 1.5})
    # a metric that is NaN everywhere aggregates to NaN
    per_window["mase"] = np.nan
    assert math.isnan(aggregate(per_window)["mase"])
    with pytest.raises(ValueError):
        aggregate(per_window.drop(columns=["window"]))


def test_rmsse_m5_scale_drops_leading_zeros_by_hand() -> None:
    # active history from the first non-zero: [2, 0, 4, 1]; one-step diffs -2, 4, -3 -> scale (4+16+9)/3
    insample = np.array([0.0, 0.0, 2.0, 0.0, 4.0, 1.0])
    assert rmsse_scale(insample) == pytest.approx(29 / 3)
    # the whole history (leading zeros kept): diffs 0, 2, -2, 4, -3 -> (0+4+4+16+9)/5
    assert rmsse_scale(insample, drop_leading_zeros=False) == pytest.approx(33 / 5)
    # errors 1, -2, 0 -> MSE 5/3 -> RMSSE sqrt((5/3) / (29/3)) = sqrt(5/29)
    y, yh = np.array([1.0, 0.0, 3.0]), np.array([0.0, 2.0, 3.0])
    assert rmsse(y, yh, insample) == pytest.approx(math.sqrt(5 / 29))
    assert rmsse(y, yh, scale=29 / 3) == pytest.approx(math.sqrt(5 / 29))
    # season 2 on the active part [2, 0, 4, 1]: diffs 4-2, 1-0 -> (4+1)/2
    assert rmsse_scale(insample, 2) == pytest.approx(2.5)


def test_rmsse_degenerate_histories_and_batches() -> None:
    # all zero: no active history -> NaN scale and NaN RMSSE (skipped by the aggregation)
    assert math.isnan(rmsse_scale(np.zeros(5)))
    assert math.isnan(rmsse(np.array([0.0]), np.array([1.0]), np.zeros(5)))
    # a single non-zero value at the end: one active observation -> undefined
    assert math.isnan(rmsse_scale(np.array([0.0, 0.0, 3.0])))
    # a constant active history: zero scale -> NaN, like MASE
    assert math.isnan(rmsse(np.array([5.0]), np.array([6.0]), np.full(4, 5.0)))
    # rows keep their own start: [0, 1, 3] -> [1, 3]: 4; [2, 2, 5] -> (0 + 9) / 2
    batch = np.array([[0.0, 1.0, 3.0], [2.0, 2.0, 5.0]])
    np.testing.assert_allclose(rmsse_scale(batch), [4.0, 4.5])
    out = rmsse(np.array([[1.0], [2.0]]), np.array([[3.0], [5.0]]), batch)
    np.testing.assert_allclose(out, [math.sqrt(4 / 4), math.sqrt(9 / 4.5)])
    with pytest.raises(ValueError):
        rmsse(np.array([1.0]), np.array([1.0]))  # neither insample nor scale
    with pytest.raises(ValueError):
        rmsse_scale(batch, 0)


def test_rmsse_equals_utilsforecast() -> None:
    """Without the M5 leading-zero rule RMSSE is utilsforecast's (Nixtla's) ``rmsse``."""
    losses = pytest.importorskip("utilsforecast.losses")
    rng = np.random.default_rng(0)
    train, test, ours = [], [], {}
    for uid, season in (("a", 1), ("b", 1), ("c", 1)):
        history = rng.poisson(3.0, 30).astype(float)
        future = rng.poisson(3.0, 7).astype(float)
        forecast = future + rng.normal(0, 2, 7)
        train.append(pd.DataFrame({"unique_id": uid, "ds": np.arange(30), "y": history}))
        test.append(pd.DataFrame({"unique_id": uid, "ds": np.arange(30, 37), "y": future, "model": forecast}))
        ours[uid] = rmsse(future, forecast, scale=rmsse_scale(history, season, drop_leading_zeros=False))
    ref = losses.rmsse(pd.concat(test), models=["model"], seasonality=1, train_df=pd.concat(train))
    np.testing.assert_allclose(ref.set_index("unique_id")["model"].loc[list(ours)].to_numpy(),
                               list(ours.values()), rtol=1e-12)


def test_scaled_crps_by_hand_and_against_utilsforecast() -> None:
    y = np.array([2.0, 0.0, 4.0])
    quantiles = {0.1: np.array([1.0, 0.0, 1.0]), 0.5: np.array([2.0, 1.0, 3.0]), 0.9: np.array([3.0, 2.0, 6.0])}
    # pinball terms: q=0.1: u = 1, 0, 3 -> 0.1 + 0 + 0.3 = 0.4; q=0.5: u = 0, -1, 1 -> 0 + 0.5 + 0.5 = 1.0;
    # q=0.9: u = -1, -2, -2 -> 0.1 + 0.2 + 0.2 = 0.5 -> sum over levels and steps 1.9, mean over levels 1.9/3
    assert scaled_crps(y, quantiles) == pytest.approx(2 * (1.9 / 3) / 6.0)
    # a window of zero actuals has no scale
    assert math.isnan(scaled_crps(np.zeros(3), quantiles))
    batch = scaled_crps(np.stack([y, 2 * y]), {q: np.stack([v, 2 * v]) for q, v in quantiles.items()})
    np.testing.assert_allclose(batch, [2 * (1.9 / 3) / 6.0] * 2)  # scale-free: doubling everything keeps it

    losses = pytest.importorskip("utilsforecast.losses")
    levels = np.array([0.1, 0.5, 0.9])
    frame = pd.DataFrame({"unique_id": "a", "ds": np.arange(3), "y": y,
                          **{f"m_q{int(q * 100)}": quantiles[q] for q in levels}})
    ref = losses.scaled_crps(frame, models={"m": [f"m_q{int(q * 100)}" for q in levels]}, quantiles=levels)
    assert ref["m"].iloc[0] == pytest.approx(scaled_crps(y, quantiles), rel=1e-9)
