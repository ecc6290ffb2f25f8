"""Conformalized forecast intervals: a network's intervals recalibrated on its validation windows.

Conformalized quantile regression (CQR; Romano, Patterson & Candès, NeurIPS 2019), per horizon step and scaled
so that series of any size share one calibration. For a central interval ``[lo, hi]`` at level ``l`` and the
validation points ``i`` of horizon step ``k`` (every series' validation windows), the nonconformity score is

.. math::  E_{ik} = \\max(lo_{ik} - y_{ik},\\; y_{ik} - hi_{ik}) / s_i,

with :math:`s_i` the series' MASE scale (in-sample seasonal-naive MAE of the history before the window), and the
offset is the :math:`\\lceil (n_k + 1) l \\rceil / n_k` empirical quantile :math:`Q_k` of the :math:`n_k` scores.
The calibrated interval is :math:`[lo - Q_k s, hi + Q_k s]`: wider where the validation windows were covered
less often than ``l``, narrower (``Q_k < 0``) where more often. If validation and test points are exchangeable it
covers with probability at least ``l`` (CQR, Theorem 1); across time that is an approximation, which is why the
suite reports test coverage.

Why: on the forecast suite the LSTM's quantile head gave 80% intervals that covered 82-87% of the test points
(experiments/forecast_suite). The point forecast is never changed. Bounds are kept around it and nested across levels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np


def conformal_offsets(y: np.ndarray, lo: np.ndarray, hi: np.ndarray, scale: np.ndarray, level: float) -> np.ndarray:
    """``Q_k`` ``[h]`` for one level (a percentage, e.g. 80) from validation targets and bounds ``[N, h]`` and
    the windows' scales ``[N]`` (the module's formula). Points with a missing target and windows whose scale is
    not a positive number are left out; a step with no point left gets 0 (no change)."""
    y, lo, hi = (np.asarray(a, dtype=np.float64) for a in (y, lo, hi))  # [N, h] each
    s = np.asarray(scale, dtype=np.float64)[:, None]  # [N] -> [N, 1]
    if not 0 < level < 100:
        raise ValueError(f"level={level}: a percentage in (0, 100)")
    scores = np.maximum(lo - y, y - hi) / np.where(np.isfinite(s) & (s > 0), s, np.nan)  # [N, h]
    offsets = np.zeros(y.shape[1])
    for k in range(y.shape[1]):
        e = np.sort(scores[:, k][np.isfinite(scores[:, k])])
        if e.size:
            # the ceil((n + 1) l)-th smallest score (finite-sample correction); past n, CQR's bound is infinite
            # and the largest score is used
            offsets[k] = float(e[min(e.size, math.ceil((e.size + 1) * level / 100)) - 1])
    return offsets


def calibrated(prediction: Mapping[str, np.ndarray], scale: np.ndarray,
               offsets: Mapping[int, Sequence[float]]) -> dict[str, np.ndarray]:
    """``prediction`` (``y_hat`` and ``lo_<level>`` / ``hi_<level>``, ``[B, h]``) with each calibrated level's bounds
    moved by ``offsets[level][k] * scale[b]``; a horizon longer than the offsets uses the last step's. Bounds stay
    on their side of ``y_hat`` and nested (a wider level never inside a narrower one). A window whose scale is not a
    positive number keeps its bounds."""
    out = {key: np.asarray(value, dtype=np.float64).copy() for key, value in prediction.items()}
    y_hat = out["y_hat"]  # [B, h]
    h = y_hat.shape[1]
    s = np.asarray(scale, dtype=np.float64)
    s = np.where(np.isfinite(s) & (s > 0), s, 0.0)[:, None]  # [B] -> [B, 1]
    levels = sorted(int(lv) for lv in offsets if f"lo_{int(lv)}" in out and f"hi_{int(lv)}" in out)
    for level in levels:
        q = np.asarray(offsets[level], dtype=np.float64)
        if q.size == 0:
            continue
        q = np.concatenate([q[:h], np.full(max(0, h - q.size), q[-1])])[None, :]  # [h] -> [1, h]
        out[f"lo_{level}"] = np.minimum(out[f"lo_{level}"] - q * s, y_hat)
        out[f"hi_{level}"] = np.maximum(out[f"hi_{level}"] + q * s, y_hat)
    bounds = sorted(int(key[3:]) for key in out if key.startswith("lo_") and f"hi_{key[3:]}" in out)
    for narrow, wide in zip(bounds, bounds[1:], strict=False):  # nested: every level around the one below it
        out[f"lo_{wide}"] = np.minimum(out[f"lo_{wide}"], out[f"lo_{narrow}"])
        out[f"hi_{wide}"] = np.maximum(out[f"hi_{wide}"], out[f"hi_{narrow}"])
    return out
