"""Paired tests, effect sizes and Holm's correction against scipy and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ecomlab.report.significance import (
    cohens_dz,
    holm,
    mean_difference_ci,
    paired_comparison,
    paired_t_test,
    rank_biserial,
    wilcoxon_test,
)

RNG = np.random.default_rng(7)
BASE = RNG.uniform(0, 1, 40)
MODEL = BASE + RNG.normal(0.05, 0.1, 40)


def test_paired_t_and_wilcoxon_match_scipy() -> None:
    t, p = paired_t_test(BASE, MODEL)
    ref = stats.ttest_rel(MODEL, BASE)
    assert t == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
    w, pw = wilcoxon_test(BASE, MODEL)
    ref_w = stats.wilcoxon(MODEL - BASE)
    assert w == pytest.approx(ref_w.statistic) and pw == pytest.approx(ref_w.pvalue)


def test_effect_sizes_by_hand() -> None:
    d = MODEL - BASE
    mean, low, high = mean_difference_ci(BASE, MODEL)
    half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size)
    assert (mean, low, high) == pytest.approx((d.mean(), d.mean() - half, d.mean() + half))
    assert cohens_dz(BASE, MODEL) == pytest.approx(d.mean() / d.std(ddof=1))
    # the t statistic of paired data is d_z * sqrt(n)
    assert paired_t_test(BASE, MODEL)[0] == pytest.approx(cohens_dz(BASE, MODEL) * math.sqrt(d.size))


def test_rank_biserial_and_exact_wilcoxon_on_a_small_example() -> None:
    # d = [1, -2, 3, 4, 0]: the zero is dropped, ranks of |d| = 1, 2, 3, 4; W+ = 8, W- = 2
    a = np.zeros(5)
    b = np.array([1.0, -2.0, 3.0, 4.0, 0.0])
    assert rank_biserial(a, b) == pytest.approx((8 - 2) / 10)
    # exact null distribution of n = 4: P(W- <= 2) = |{}, {1}, {2}| / 2^4; two-sided doubles it
    statistic, p = wilcoxon_test(a, b)
    assert statistic == 2.0 and p == pytest.approx(2 * 3 / 16)


def test_known_result_every_user_improves() -> None:
    base = np.linspace(0.1, 0.5, 10)
    model = base + np.arange(1, 11) * 0.01  # ten distinct positive differences
    result = paired_comparison(base, model)
    assert result["rank_biserial"] == 1.0
    assert result["wilcoxon_p"] == pytest.approx(2 / 2**10)  # only the all-positive sign pattern is as extreme
    assert result["mean_diff"] == pytest.approx(0.055) and result["ci_low"] > 0
    assert result["n"] == 10 and result["t_p"] < 1e-3
    assert result["t_p"] == pytest.approx(stats.ttest_rel(model, base).pvalue)


def test_identical_values_give_no_evidence() -> None:
    x = np.array([0.1, 0.2, 0.3])
    assert wilcoxon_test(x, x) == (0.0, 1.0)
    assert paired_t_test(x, x) == (0.0, 1.0)
    assert rank_biserial(x, x) == 0.0
    assert math.isnan(cohens_dz(x, x))


def test_holm_by_hand() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.6, 0.5]) == pytest.approx([1.0, 1.0])  # capped at 1
    adjusted = holm([0.01, math.nan, 0.04])  # nan is not a comparison: m = 2
    assert adjusted[0] == pytest.approx(0.02) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.04)


def test_unpaired_input_is_refused() -> None:
    with pytest.raises(ValueError, match="equal length"):
        paired_comparison([1.0, 2.0], [1.0])
