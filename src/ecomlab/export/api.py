"""``ecomlab.load(bundle)``: an exported model behind raw ids, with documented fallbacks.

    model = ecomlab.load("bundles/bpr_shop")
    model.recommend(["u17", "u42"], k=10)                 # raw user ids in, raw item ids out
    model.recommend(["new-user"], k=10, histories={"new-user": ["i3", "i9"]})
    model.similar_items(["i3"], k=5)
    ecomlab.load("bundles/ets_sales").forecast(history_df, horizon=12)

Loading verifies the manifest first (:mod:`ecomlab.export.manifest`): a changed, missing or unlisted file is
refused naming the file, and so is an unsigned or wrongly signed bundle whenever ``ECOMLAB_BUNDLE_KEY`` is set. A
bundle is data: the manifest names its runtime objects from a fixed table (:data:`RUNTIME_OBJECTS`), and the
model configs inside ``model/*.json`` may name only ecomlab's model classes, at every nesting level
(:func:`ecomlab.config_trust.check_targets`); anything else is refused with the file and key. Scores of known users are the trained model's ``net(users)``; the top ``k`` follow
the training tie policy (:func:`ecomlab.models.base.rank_topk`: equal scores rank the lower item index
first). Fallbacks, in order, each reported in the result's ``source``:

* ``"model"`` -- a user the model was trained on;
* ``"history"`` -- an unknown user with a history in ``histories``: the model's own history scoring when it
  has one (item-kNN, TF-IDF, the text two-tower's user tower), else the cosine between the mean of the
  history's unit item vectors and every item vector, :math:`s_i = \\cos(\\bar v_H, v_i)`;
* ``"popularity"`` -- an unknown user without (usable) history, or a model without item vectors: items by
  number of training users.

``exclude_seen`` removes a known user's interactions of the whole data set (train, validation, test) and an
unknown user's supplied history. History items unknown to the catalogue are ignored; unknown candidate or
query items are an error.
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from ecomlab.export.manifest import BundleIntegrityError, read_manifest
from ecomlab.models.base import rank_topk


@dataclass
class Recommendation:
    user_id: Any
    items: list[Any]
    scores: list[float]
    source: str  # model | history | popularity


@dataclass
class SimilarItems:
    item_id: Any
    items: list[Any]
    scores: list[float]
    source: str  # model | item_vectors | popularity


#: the runtime objects a manifest may name, by role: class path -> parameters that are bundle files. A bundle is
#: data: nothing else is ever imported or built from it (see :func:`_build`).
_RT, _FC = "ecomlab.export.runtime.", "ecomlab.export.forecasters."
RUNTIME_OBJECTS: dict[str, dict[str, tuple[str, ...]]] = {
    "scorer": {_RT + "OnnxScorer": ("path",), _RT + "TorchScriptScorer": ("path",), _RT + "DotScorer": ("path",),
               _RT + "TorchNetScorer": ("net", "weights"), _RT + "PopularityScorer": ("path",),
               _RT + "ItemKNNScorer": ("similarity", "train_rows"), _RT + "TfidfScorer": ("item_matrix", "train_rows"),
               _RT + "HybridScorer": ("item_matrix", "train_rows", "arrays", "weights", "knn", "neighbours")},
    "history": {_RT + "ProjectedMeanHistory": ("path", "item_vectors")},
    "item_encoder": {_RT + "ScratchTextEncoder": ("tokenizer", "weights"),
                     _RT + "GraphTextEncoder": ("tokenizer", "graph"),
                     _RT + "PretrainedTextEncoder": ("tokenizer", "graph"),
                     _RT + "TfidfTextEncoder": ("spec", "idf"), _RT + "E5TextEncoder": ("arrays",)},
    "forecaster": {_FC + "BundleForecaster": ("path",), _FC + "BundleLSTM": ("spec", "weights", "scaling", "graph"),
                   _FC + "BundleGBT": ("spec", "trees")},
}


def _build(manifest: Mapping[str, Any], role: str, root: Path) -> Any:
    """The runtime object of ``manifest[role]``: a class from :data:`RUNTIME_OBJECTS` (a fixed table, so a
    manifest can never make the loader import anything else), plain JSON scalars as arguments, and every file
    argument one of the bundle's own (hashed) files."""
    where = root / "manifest.json"
    entry = manifest.get(role)
    if not isinstance(entry, Mapping):
        raise BundleIntegrityError(f"{where}: key '{role}' = {entry!r}; expected a runtime object")
    target = entry.get("_target_")
    allowed = RUNTIME_OBJECTS[role]
    if target not in allowed:
        raise BundleIntegrityError(f"{where}: key '{role}._target_' = {target!r} is not one of ecomlab's {role} "
                                   f"runtime objects; refusing to build it")
    kwargs = {k: v for k, v in entry.items() if k != "_target_"}
    for key, value in kwargs.items():
        if not isinstance(value, str | int | float | bool) and value is not None:  # nested objects: never built
            raise BundleIntegrityError(f"{where}: key '{role}.{key}' holds a {type(value).__name__}; runtime "
                                       "objects take plain values only")
        if key in allowed[target] and value is not None and value not in manifest["files"]:
            raise BundleIntegrityError(f"{where}: key '{role}.{key}' = {value!r} is not a file of this bundle")
    module, name = str(target).rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    try:
        inspect.signature(cls).bind(root, **kwargs)
    except TypeError as err:
        raise BundleIntegrityError(f"{where}: key '{role}': {err} for {name}") from None
    return cls(root, **kwargs)


class IdIndex:
    """Raw id <-> index; JSON clients may send ``12`` for ``"12"`` or the reverse, so keys are normalised."""

    def __init__(self, raw: np.ndarray) -> None:
        self.raw = raw
        self.numeric = raw.dtype.kind in "iu"
        self.lookup = {self.key(v): i for i, v in enumerate(raw.tolist())}

    def key(self, value: Any) -> Any:
        if not self.numeric:
            return str(value)
        try:
            return int(value) if float(value) == int(float(value)) else None
        except (TypeError, ValueError, OverflowError):
            return None

    def get(self, value: Any) -> int | None:
        return self.lookup.get(self.key(value))

    def indices(self, values: Sequence[Any], what: str) -> np.ndarray:
        idx = [self.get(v) for v in values]
        unknown = [v for v, i in zip(values, idx, strict=True) if i is None]
        if unknown:
            raise KeyError(f"unknown {what} ids: {unknown[:5]}" + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""))
        return np.asarray(idx, dtype=np.int64)

    def to_raw(self, index: np.ndarray) -> list[Any]:
        return self.raw[index].tolist()


def _as_list(ids: Any) -> list[Any]:
    return [ids] if isinstance(ids, (str, int, np.integer)) else list(ids)


def _top(scores: np.ndarray, exclude: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    values, items = rank_topk(torch.from_numpy(np.ascontiguousarray(scores, dtype=np.float32)), k,
                              torch.from_numpy(exclude))
    return values.numpy(), items.numpy()  # [B, k] each


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k={k!r}; expected an integer >= 1")
    return int(k)


class LoadedRecommender:
    """A recommender bundle ready to serve; see the module docstring for ids and fallbacks."""

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        self.root, self.manifest = root, manifest
        self.scorer = _build(manifest, "scorer", root)
        self.history_encoder = _build(manifest, "history", root) if manifest.get("history") else None
        self.item_encoder = _build(manifest, "item_encoder", root) if manifest.get("item_encoder") else None
        self.users = IdIndex(pd.read_parquet(root / "data" / "users.parquet")["raw_id"].to_numpy())
        self.item_table = pd.read_parquet(root / "data" / "items.parquet")
        self.items = IdIndex(self.item_table["raw_id"].to_numpy())
        self.seen = sp.load_npz(root / "data" / "seen.npz").tocsr()  # [U, N]
        self.popularity = np.load(root / "data" / "item_counts.npy", allow_pickle=False).astype(np.float32)  # [N]
        vectors = root / "model" / "item_vectors.npy"
        self.item_vectors = np.load(vectors, allow_pickle=False) if manifest.get("has_item_vectors") else None
        self.n_users, self.n_items = len(self.users.raw), len(self.items.raw)

    # ---- recommendations ----------------------------------------------------------------------------------
    def recommend(self, user_ids: Any, k: int = 10, exclude_seen: bool = True, candidates: Sequence[Any] | None = None,
                  histories: Mapping[Any, Sequence[Any]] | None = None) -> list[Recommendation]:
        """Top-``k`` raw item ids and scores per raw user id (a batch); unknown users fall back, see above."""
        k, user_ids = _check_k(k), _as_list(user_ids)
        allowed = None
        if candidates is not None:
            allowed = np.zeros(self.n_items, dtype=bool)
            allowed[self.items.indices(_as_list(candidates), "candidate item")] = True
        by_key = {self.users.key(u): h for u, h in (histories or {}).items()}
        scores = np.empty((len(user_ids), self.n_items), dtype=np.float32)  # [B, N]
        exclude = np.zeros((len(user_ids), self.n_items), dtype=bool)  # [B, N]
        sources = ["model"] * len(user_ids)
        known = [(b, i) for b, i in enumerate(self.users.get(u) for u in user_ids) if i is not None]
        if known:
            rows, idx = map(np.asarray, zip(*known, strict=True))
            scores[rows] = self.scorer.scores(idx)
            if exclude_seen:
                exclude[rows] = self.seen[idx].toarray() > 0
        unknown = [b for b in range(len(user_ids)) if self.users.get(user_ids[b]) is None]
        if unknown:
            history_rows = self._history_rows([by_key.get(self.users.key(user_ids[b])) for b in unknown])
            for b, source, row in zip(unknown, *self._fallback_scores(history_rows), strict=True):
                scores[b], sources[b] = row, source
            if exclude_seen:
                exclude[unknown] = history_rows.toarray() > 0
        if allowed is not None:
            exclude |= ~allowed[None, :]  # [B, N] | [1, N]
        values, items = _top(scores, exclude, k)
        return [self._result(user_ids[b], values[b], items[b], sources[b], Recommendation) for b in range(len(user_ids))]

    def _history_rows(self, histories: list[Sequence[Any] | None]) -> sp.csr_matrix:
        """``[b, N]`` binary rows of the supplied histories; items unknown to the catalogue are ignored."""
        rows, cols = [], []
        for b, history in enumerate(histories):
            idx = [i for i in (self.items.get(v) for v in _as_list(history or [])) if i is not None]
            rows += [b] * len(idx)
            cols += idx
        data = np.ones(len(rows), dtype=np.float32)
        matrix = sp.csr_matrix((data, (rows, cols)), shape=(len(histories), self.n_items))
        matrix.sum_duplicates()
        matrix.data[:] = 1.0
        return matrix

    def _fallback_scores(self, rows: sp.csr_matrix) -> tuple[list[str], np.ndarray]:
        """Sources and ``[b, N]`` scores for unknown users with history ``rows`` (see the module docstring)."""
        has_history = np.diff(rows.indptr) > 0
        scores = np.tile(self.popularity, (rows.shape[0], 1))  # [b, N]
        sources = ["popularity"] * rows.shape[0]
        if not has_history.any():
            return sources, scores
        picked = rows[has_history]
        by_history = self.scorer.history_scores(picked)
        if by_history is None and self.history_encoder is not None:
            by_history = self.history_encoder.history_scores(picked)
        if by_history is None and self.item_vectors is not None:
            mean = picked @ self.item_vectors  # [b, N] @ [N, d] -> [b, d]
            mean /= np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
            by_history = mean @ self.item_vectors.T  # [b, d] @ [d, N] -> [b, N]
        if by_history is not None:
            scores[has_history] = by_history
            sources = ["history" if h else "popularity" for h in has_history]
        return sources, scores

    def _result(self, query: Any, values: np.ndarray, items: np.ndarray, source: str, kind: type) -> Any:
        keep = np.isfinite(values)  # excluded items only come back as -inf when fewer than k remain
        return kind(query, self.items.to_raw(items[keep]), [float(v) for v in values[keep]], source)

    # ---- items --------------------------------------------------------------------------------------------
    def similar_items(self, item_ids: Any, k: int = 10) -> list[SimilarItems]:
        """The ``k`` items most similar to each raw item id: the model's own item-item scores (item-kNN,
        TF-IDF), else cosine of item vectors, else (popularity) the most popular items."""
        k, item_ids = _check_k(k), _as_list(item_ids)
        idx = self.items.indices(item_ids, "item")
        scores, source = self.scorer.similar_scores(idx), "model"
        if scores is None and self.item_vectors is not None:
            scores, source = self.item_vectors[idx] @ self.item_vectors.T, "item_vectors"  # [B, d] @ [d, N]
        if scores is None:
            scores, source = np.tile(self.popularity, (len(idx), 1)), "popularity"
        exclude = np.zeros(scores.shape, dtype=bool)
        exclude[np.arange(len(idx)), idx] = True  # an item is not similar to itself
        values, items = _top(scores, exclude, k)
        return [self._result(item_ids[b], values[b], items[b], source, SimilarItems) for b in range(len(idx))]

    def embed_items(self, texts: Sequence[str]) -> np.ndarray | sp.csr_matrix:
        """Embeddings of new item texts, without retraining (text models): the text two-tower's unit vectors
        ``[n, d]`` in the space of ``model/item_vectors.npy`` (scratch encoder: tokenizer JSON + the item tower
        graph or arrays); TF-IDF's L2-normalised rows ``[n, V]`` as a CSR matrix in the bundle's vocabulary (the
        space of ``model/tfidf_items.npz``). Either way ``embed_items(t) @ item_matrix.T`` is the cosine of the
        new item with every catalogue item."""
        if self.item_encoder is None:
            raise ValueError(f"this bundle ({self.manifest['model']}) has no item text encoder")
        return self.item_encoder.encode(list(texts))

    def card(self) -> dict[str, Any]:
        return model_card_json(self.root, self.manifest)


class LoadedForecaster:
    """A forecaster bundle: ``forecast(history_df, horizon=None, covariates=None)``."""

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        self.root, self.manifest = root, manifest
        self.forecaster = _build(manifest, "forecaster", root)

    def forecast(self, history_df: pd.DataFrame, horizon: int | None = None, covariates: pd.DataFrame | None = None,
                 levels: Sequence[int] | None = None) -> pd.DataFrame:
        return self.forecaster.forecast(history_df, horizon, covariates, levels)

    def card(self) -> dict[str, Any]:
        return model_card_json(self.root, self.manifest)


def model_card_json(root: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest (without digests), the test metrics and the model card text, for ``GET /model``."""
    meta = {k: v for k, v in manifest.items() if k != "files"}
    return {**meta, "files": sorted(manifest["files"]),
            "metrics": json.loads((root / "metrics.json").read_text(encoding="utf-8")),
            "model_card": (root / "README.md").read_text(encoding="utf-8")}


def load(bundle: str | Path) -> LoadedRecommender | LoadedForecaster:
    """Load an exported bundle after verifying every file against its manifest."""
    root = Path(bundle)
    manifest = read_manifest(root)
    if manifest.get("task") == "ranking":
        return LoadedRecommender(root, manifest)
    if manifest.get("task") == "forecasting":
        return LoadedForecaster(root, manifest)
    raise BundleIntegrityError(f"{root / 'manifest.json'}: unknown task {manifest.get('task')!r}")
