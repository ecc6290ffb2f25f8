"""scikit-learn histogram gradient boosting as plain arrays, and its prediction re-implemented in numpy.

A fitted ``HistGradientBoostingRegressor`` predicts

.. math::  \\hat y(x) = b + \\sum_{t=1}^{T} v_t\\big(\\mathrm{leaf}_t(x)\\big),

with the baseline :math:`b` (``_baseline_prediction``) and the leaf values :math:`v_t` of its ``T`` trees
(identity link: squared-error or quantile loss). :func:`hgb_arrays` writes every tree's node table
(``est._predictors[i][0].nodes``: feature, threshold, children, missing-value direction, leaf value) into flat
arrays, together with the categorical bitsets (``raw_left_cat_bitsets`` per tree, the known categories from
``_bin_mapper``), so a bundle holds them as ``.npz`` -- no pickle. :class:`NumpyHGB` walks the trees exactly as
scikit-learn's ``_predict_from_raw_data`` does, for all samples and trees at once:

* numerical split: left iff :math:`x_f \\le \\theta` (thresholds are the raw ``num_threshold`` values);
* NaN: the node's ``missing_go_to_left``;
* categorical split: left iff the category is in the node's left bitset; a category in neither the left
  bitset nor the feature's known categories (unseen in training), or a negative one, goes where NaN goes.

Leaf values are added tree by tree in float64 in scikit-learn's order, so predictions agree to the last bits
(the parity tests hold them to 1e-4 relative through whole recursive forecasts).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: node fields copied from scikit-learn's PREDICTOR_RECORD_DTYPE (the others -- gain, count, depth, bin
#: threshold -- are training statistics prediction never reads)
_FIELDS = {"value": np.float64, "feature_idx": np.int64, "num_threshold": np.float64,
           "missing_go_to_left": np.bool_, "left": np.int64, "right": np.int64, "is_leaf": np.bool_,
           "is_categorical": np.bool_, "bitset_idx": np.int64}


def hgb_arrays(est: Any) -> dict[str, np.ndarray]:
    """The arrays :class:`NumpyHGB` predicts from, for a fitted single-output ``HistGradientBoostingRegressor``."""
    if est.n_trees_per_iteration_ != 1:
        raise ValueError(f"expected one tree per iteration (regression), got {est.n_trees_per_iteration_}")
    link = type(est._loss.link).__name__
    if link != "IdentityLink":
        raise ValueError(f"loss {est.loss!r} has a {link}; only identity-link losses are exported")
    trees = [predictors[0] for predictors in est._predictors]
    sizes = np.array([len(t.nodes) for t in trees], dtype=np.int64)
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)  # [T] first node of each tree
    n_bitsets = np.array([len(t.raw_left_cat_bitsets) for t in trees], dtype=np.int64)
    bitset_start = np.concatenate([[0], np.cumsum(n_bitsets)[:-1]]).astype(np.int64)  # [T]
    nodes = np.concatenate([t.nodes for t in trees])  # [sum nodes] structured
    offset = np.repeat(start, sizes)  # [sum nodes]: local child / bitset indices -> global ones
    out = {name: nodes[name].astype(dtype) for name, dtype in _FIELDS.items()}
    out["left"] += offset
    out["right"] += offset
    out["bitset_idx"] += np.repeat(bitset_start, sizes)
    raw_bitsets = [t.raw_left_cat_bitsets for t in trees if len(t.raw_left_cat_bitsets)]
    out["raw_left_cat_bitsets"] = (np.concatenate(raw_bitsets) if raw_bitsets
                                   else np.zeros((0, 8), np.uint32)).astype(np.uint32)  # [n_splits, 8]
    known, f_idx_map = est._bin_mapper.make_known_categories_bitsets()
    out["known_cat_bitsets"], out["f_idx_map"] = known.astype(np.uint32), f_idx_map.astype(np.int64)
    out["tree_start"] = start
    out["baseline"] = np.asarray(est._baseline_prediction, np.float64).reshape(1)
    out["n_features"] = np.array([est.n_features_in_], np.int64)
    out.update(_encoder_arrays(est))
    return out


def _encoder_arrays(est: Any) -> dict[str, np.ndarray]:
    """The input encoding of an estimator with categorical features: scikit-learn (>= 1.4) puts an
    ``OrdinalEncoder`` in front (categorical columns first, encoded as the index of the value among the sorted
    training categories, unknown values as NaN), then the numerical columns in their original order."""
    pre = getattr(est, "_preprocessor", None)
    n = int(est.n_features_in_)
    if pre is None:
        return {"column_order": np.arange(n, dtype=np.int64), "n_categorical": np.zeros(1, np.int64),
                "category_values": np.zeros(0), "category_start": np.zeros(1, np.int64)}
    names = [name for name, _, _ in pre.transformers_]
    if names[:2] != ["encoder", "numerical"]:
        raise ValueError(f"unexpected HistGradientBoosting preprocessor layout {names}; cannot export it")
    encoder = pre.named_transformers_["encoder"]
    cat_columns = np.flatnonzero(np.asarray(pre.transformers_[0][2], bool))
    num_columns = np.flatnonzero(np.asarray(pre.transformers_[1][2], bool))
    categories = [np.asarray(c, np.float64) for c in encoder.categories_]  # [n_c] sorted per column
    if any(np.isnan(c[:-1]).any() for c in categories if len(c)):
        raise ValueError("NaN inside the known categories of a HistGradientBoosting feature; cannot export it")
    categories = [c[~np.isnan(c)] for c in categories]  # NaN (missing) encodes to NaN anyway
    return {"column_order": np.concatenate([cat_columns, num_columns]).astype(np.int64),
            "n_categorical": np.array([len(cat_columns)], np.int64),
            "category_values": np.concatenate(categories) if categories else np.zeros(0),
            "category_start": np.concatenate([[0], np.cumsum([len(c) for c in categories])]).astype(np.int64)}


def _in_bitset(bitsets: np.ndarray, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` (0..255) in bitset ``rows`` of ``bitsets [R, 8]`` (32-bit words), elementwise."""
    word = bitsets[rows, values // 32]
    return ((word >> (values % 32).astype(np.uint32)) & 1).astype(bool)


class NumpyHGB:
    """``predict(X [n, F]) -> [n]`` from the arrays of :func:`hgb_arrays`; see the module docstring."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.a = {k: np.asarray(v) for k, v in arrays.items()}
        self.n_features = int(self.a["n_features"][0])

    def predict(self, X: np.ndarray) -> np.ndarray:
        a = self.a
        X = np.asarray(X, np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected X of shape [n, {self.n_features}], got {X.shape}")
        X = self._encode(X)
        node = np.broadcast_to(a["tree_start"], (len(X), len(a["tree_start"]))).copy()  # [n, T] root of each tree
        rows, cols = np.nonzero(~a["is_leaf"][node])
        while len(rows):
            nd = node[rows, cols]  # [m] internal nodes being visited
            x = X[rows, a["feature_idx"][nd]]  # [m]
            missing = a["missing_go_to_left"][nd]
            nan = np.isnan(x)
            with np.errstate(invalid="ignore"):
                left = np.where(nan, missing, x <= a["num_threshold"][nd])
            cat = a["is_categorical"][nd] & ~nan
            if cat.any():
                xc, nc = x[cat], nd[cat]
                valid = xc >= 0
                v = np.where(valid, xc, 0).astype(np.int64) & 255  # scikit-learn casts to uint8
                in_left = _in_bitset(a["raw_left_cat_bitsets"], a["bitset_idx"][nc], v)
                known = _in_bitset(a["known_cat_bitsets"], a["f_idx_map"][a["feature_idx"][nc]], v)
                left[cat] = np.where(valid & in_left, True, np.where(valid & known, False, missing[cat]))
            node[rows, cols] = np.where(left, a["left"][nd], a["right"][nd])
            still = ~a["is_leaf"][node[rows, cols]]
            rows, cols = rows[still], cols[still]
        values = a["value"][node]  # [n, T]
        out = np.full(len(X), a["baseline"][0])
        for t in range(values.shape[1]):  # tree by tree, in scikit-learn's summation order
            out += values[:, t]
        return out

    def _encode(self, X: np.ndarray) -> np.ndarray:
        """Raw ``[n, F]`` -> the trees' input columns (see :func:`_encoder_arrays`)."""
        a = self.a
        X = X[:, a["column_order"]]  # [n, F]: categorical columns first
        start = a["category_start"]
        for j in range(int(a["n_categorical"][0])):
            known = a["category_values"][start[j]: start[j + 1]]  # sorted
            x = X[:, j]
            pos = np.clip(np.searchsorted(known, x), 0, max(len(known) - 1, 0))
            hit = (len(known) > 0) & (known[pos] == x) if len(known) else np.zeros(len(x), bool)
            X[:, j] = np.where(hit, pos, np.nan)  # unseen or missing -> NaN, as the encoder's unknown_value
        return X
