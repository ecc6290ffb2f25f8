"""Paired significance tests and effect sizes for comparing a model against a baseline on the same units.

A unit is a test user (ranking) or a test series (forecasting); ``a`` holds the baseline's per-unit metric
values and ``b`` the model's, aligned so that ``a[i]`` and ``b[i]`` belong to the same unit. With the
differences ``d_i = b_i - a_i`` (``i = 1..n``):

* paired t-test: ``t = mean(d) / (s_d / sqrt(n))`` with ``s_d`` the sample standard deviation (``ddof=1``),
  ``n - 1`` degrees of freedom (``scipy.stats.ttest_rel``);
* 95% confidence interval of the mean difference: ``mean(d) +- t_{0.975, n-1} * s_d / sqrt(n)``;
* Cohen's ``d_z = mean(d) / s_d`` (the standardised mean of the paired differences);
* Wilcoxon signed-rank test on ``d`` (``scipy.stats.wilcoxon``, zero differences dropped: Wilcoxon's
  method), two-sided;
* matched-pairs rank-biserial correlation ``r = (W+ - W-) / (W+ + W-)``, where ``W+`` (``W-``) is the sum of
  the ranks of ``|d_i|`` over the positive (negative) non-zero differences (Kerby 2014); ``r`` lies in
  ``[-1, 1]``: 1 when every unit improves;
* Holm's step-down correction over ``m`` p-values sorted ascending ``p_(1) <= ... <= p_(m)``:
  ``p'_(j) = min(1, max_{i <= j} (m - i + 1) p_(i))`` (``statsmodels.stats.multitest.multipletests``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests


def _differences(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired values need two 1-d arrays of equal length, got shapes {a.shape} and {b.shape}")
    return b - a


def mean_difference_ci(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray,
                       confidence: float = 0.95) -> tuple[float, float, float]:
    """``(mean(d), low, high)``: the mean paired difference ``b - a`` and its t-based confidence interval."""
    d = _differences(a, b)
    mean = float(d.mean()) if d.size else math.nan
    if d.size < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size))
    return mean, mean - half, mean + half


def cohens_dz(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Cohen's ``d_z = mean(d) / sd(d)`` of the paired differences ``d = b - a`` (nan when ``sd(d) = 0``)."""
    d = _differences(a, b)
    if d.size < 2:
        return math.nan
    sd = float(d.std(ddof=1))
    return float(d.mean()) / sd if sd > 0 else math.nan


def rank_biserial(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation ``(W+ - W-) / (W+ + W-)`` of ``d = b - a``, zeros dropped."""
    d = _differences(a, b)
    d = d[d != 0]
    if d.size == 0:
        return 0.0
    ranks = stats.rankdata(np.abs(d))  # average ranks for ties, as the Wilcoxon statistic uses
    w_plus, w_minus = float(ranks[d > 0].sum()), float(ranks[d < 0].sum())
    return (w_plus - w_minus) / (w_plus + w_minus)


def wilcoxon_test(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """``(statistic, p)`` of the two-sided Wilcoxon signed-rank test on ``b - a``; ``p = 1`` when every
    difference is zero (no evidence of any difference), nan for fewer than one pair."""
    d = _differences(a, b)
    if d.size == 0:
        return math.nan, math.nan
    if not np.any(d != 0):
        return 0.0, 1.0
    result = stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided")
    return float(result.statistic), float(result.pvalue)


def paired_t_test(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """``(t, p)`` of the two-sided paired t-test of ``b`` against ``a``; ``p = 1`` when all differences are
    equal to zero, nan when fewer than two pairs or a constant non-zero difference."""
    d = _differences(a, b)
    if d.size < 2:
        return math.nan, math.nan
    if not np.any(d != 0):
        return 0.0, 1.0
    result = stats.ttest_rel(np.asarray(b, dtype=np.float64), np.asarray(a, dtype=np.float64))
    return float(result.statistic), float(result.pvalue)


def paired_comparison(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray,
                      confidence: float = 0.95) -> dict[str, Any]:
    """Every test and effect size of the model ``b`` against the baseline ``a`` on paired units."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    mean, low, high = mean_difference_ci(a, b, confidence)
    w_stat, w_p = wilcoxon_test(a, b)
    t_stat, t_p = paired_t_test(a, b)
    return {
        "n": int(a.size),
        "baseline_mean": float(a.mean()) if a.size else math.nan,
        "model_mean": float(b.mean()) if b.size else math.nan,
        "mean_diff": mean,
        "ci_low": low,
        "ci_high": high,
        "confidence": confidence,
        "cohens_dz": cohens_dz(a, b),
        "wilcoxon_stat": w_stat,
        "wilcoxon_p": w_p,
        "rank_biserial": rank_biserial(a, b),
        "t_stat": t_stat,
        "t_p": t_p,
    }


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values in the input order; nan p-values stay nan and do not count towards ``m``."""
    p = np.asarray(pvalues, dtype=np.float64)
    adjusted = np.full(p.shape, np.nan)
    finite = ~np.isnan(p)
    if finite.any():
        adjusted[finite] = multipletests(p[finite], method="holm")[1]
    return [float(x) for x in adjusted]
