"""What each trained recommender writes into a bundle, chosen by the network's class.

``export_recommender(net, ctx)`` writes the model files under ``ctx.root / "model"`` and returns the
manifest entries that tell :mod:`ecomlab.export.runtime` how to score:

=====================  ==============================================  ====================================
model                  onnx / torchscript                              native (and every classical model)
=====================  ==============================================  ====================================
BPR, LightGCN,         graph ``E_U[u] E_I^T`` over the final           ``embeddings.npz``, numpy dot
social GNN             (propagated) embeddings
text two-tower         the same with ``E_U = q_u / tau``; plus the     ``embeddings.npz``; the scratch
                       user tower (unknown users with a history) and   item encoder as ``text_encoder.npz``
                       the scratch item encoder (new item text) as a
                       graph over padded token ids + tokenizer JSON
NeuMF / GMF / MLP      the scoring network over all items              state dict ``.npz`` + net config
popularity             --                                              ``item_scores.npy``
item-kNN               --                                              similarity + training rows ``.npz``
TF-IDF                 --                                              TF-IDF matrix + training rows ``.npz``;
                                                                       vocabulary JSON + idf ``.npy`` (new
                                                                       item text)
=====================  ==============================================  ====================================

Classical models are sparse closed-form fits: they are always written natively (scipy ``.npz``, never
pickle), whatever format was asked for. ``item_vectors.npy`` (unit rows) backs ``similar_items`` and the
history fallback of models that have item embeddings. The random baseline has nothing to export.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from ecomlab.export.graphs import (
    EmbeddingScorer,
    NeuMFScorer,
    PretrainedItemEncoder,
    ScratchItemEncoder,
    write_graph,
    write_text_encoder,
)
from ecomlab.export.runtime import (
    E5TextEncoder,
    GraphTextEncoder,
    PretrainedTextEncoder,
    ScratchTextEncoder,
    ScratchTokenizer,
    TfidfTextEncoder,
)
from ecomlab.models.base import Recommender, RecTrainData
from ecomlab.models.bpr import BPRMF
from ecomlab.models.diffnetpp import DiffNetPP
from ecomlab.models.hybrid_content import HybridContent
from ecomlab.models.itemknn import ItemKNN
from ecomlab.models.lightgcn import LightGCN
from ecomlab.models.neumf import NeuMF
from ecomlab.models.popularity import Popularity
from ecomlab.models.social_gnn import SocialGNN
from ecomlab.models.text_two_tower import TextTwoTower
from ecomlab.models.tfidf import TfidfContent

RUNTIME = "ecomlab.export.runtime."
GRAPH_FILES = {"onnx": "model/scores.onnx", "torchscript": "model/scores.pt"}
GRAPH_SCORERS = {"onnx": RUNTIME + "OnnxScorer", "torchscript": RUNTIME + "TorchScriptScorer"}


@dataclass
class ExportContext:
    root: Path  # the bundle directory being written
    fmt: str  # requested: onnx | torchscript | native
    net_config: dict[str, Any]  # the run's resolved ``model.net`` config
    dims: dict[str, int]  # sizes from the data module
    data: RecTrainData


@dataclass
class Exported:
    format: str  # what was written (classical models: always native)
    scorer: dict[str, Any]
    history: dict[str, Any] | None = None
    item_encoder: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def _path(ctx: ExportContext, name: str) -> Path:
    path = ctx.root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _unit_rows(x: Tensor | np.ndarray) -> np.ndarray:
    x = np.asarray(x.detach().cpu().float() if isinstance(x, Tensor) else x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)  # [N, d]


def _save_item_vectors(ctx: ExportContext, vectors: np.ndarray) -> None:
    np.save(_path(ctx, "model/item_vectors.npy"), vectors.astype(np.float32), allow_pickle=False)


def _graph(ctx: ExportContext, module: torch.nn.Module) -> dict[str, Any]:
    write_graph(module, ctx.fmt, _path(ctx, GRAPH_FILES[ctx.fmt]))
    return {"_target_": GRAPH_SCORERS[ctx.fmt], "path": GRAPH_FILES[ctx.fmt]}


def _embedding_scorer(ctx: ExportContext, users: Tensor, items: Tensor) -> dict[str, Any]:
    if ctx.fmt != "native":
        return _graph(ctx, EmbeddingScorer(users, items))
    np.savez(_path(ctx, "model/embeddings.npz"), users=users.detach().cpu().float().numpy(),
             items=items.detach().cpu().float().numpy())
    return {"_target_": RUNTIME + "DotScorer", "path": "model/embeddings.npz"}


@functools.singledispatch
def export_recommender(net: Recommender, ctx: ExportContext) -> Exported:
    raise ValueError(f"{type(net).__name__} cannot be exported: it has no trained state to serve "
                     "(the random baseline is a chance-level reference)")


@export_recommender.register(BPRMF)
@export_recommender.register(LightGCN)
@export_recommender.register(SocialGNN)
@export_recommender.register(DiffNetPP)
def _embedding_model(net: Recommender, ctx: ExportContext) -> Exported:
    with torch.no_grad():
        users, items = net.get_embedding()  # final embeddings: propagation happens here, once
    _save_item_vectors(ctx, _unit_rows(items))
    return Exported(ctx.fmt, _embedding_scorer(ctx, users, items))


@export_recommender.register(TextTwoTower)
def _text_two_tower(net: TextTwoTower, ctx: ExportContext) -> Exported:
    with torch.no_grad():
        items, users = net.tables()  # [N, d] unit vectors from item text, [U, d] pooled histories
        users = users / net.temperature
    _save_item_vectors(ctx, items.numpy())
    np.savez(_path(ctx, "model/user_tower.npz"), user_proj=net.user_proj.weight.detach().numpy())
    history = {"_target_": RUNTIME + "ProjectedMeanHistory", "path": "model/user_tower.npz",
               "item_vectors": "model/item_vectors.npy", "temperature": net.temperature}
    exported = Exported(ctx.fmt, _embedding_scorer(ctx, users, items), history=history)
    if net.encoder == "scratch":
        exported.item_encoder = _scratch_encoder(net, ctx)
    elif ctx.fmt != "native":
        exported.item_encoder = _pretrained_encoder(net, ctx)
    else:
        exported.notes.append("pretrained text encoder, format=native: the bundle holds the item vectors of the "
                              "exported catalogue only; export with format=onnx or torchscript to include the "
                              "sentence encoder and its tokenizer for new item text")
    return exported


def _pretrained_encoder(net: TextTwoTower, ctx: ExportContext) -> dict[str, Any]:
    """The sentence transformer + projection as one graph, its fast tokenizer as JSON; checked against the
    model's item vectors of the catalogue."""
    from ecomlab.models.text_encoders import load_sentence_transformer

    st = net.st if net.st is not None else load_sentence_transformer(net.model_dir)  # type: ignore[arg-type]
    backend = getattr(st.tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ValueError(f"{net.model_dir}: the sentence transformer has no fast (tokenizers) tokenizer; its "
                         "text encoder cannot be exported")
    backend.save(str(_path(ctx, "model/tokenizer.json")))
    graph = {"onnx": "model/item_encoder.onnx", "torchscript": "model/item_encoder.pt"}[ctx.fmt]
    was_training = st.training
    write_text_encoder(PretrainedItemEncoder(st, net.item_proj), ctx.fmt, _path(ctx, graph))
    st.train(was_training)
    entry = {"_target_": RUNTIME + "PretrainedTextEncoder", "tokenizer": "model/tokenizer.json", "graph": graph,
             "runtime": ctx.fmt, "max_seq_length": net.max_seq_length,
             "pad_id": int(st.tokenizer.pad_token_id), "pad_token": str(st.tokenizer.pad_token)}
    _check_encoder(net, ctx, entry)
    return entry


def _check_encoder(net: TextTwoTower, ctx: ExportContext, entry: dict[str, Any]) -> None:
    texts = ["" if t is None else str(t) for t in ctx.data.item_text or []]
    with torch.no_grad():
        expected = net.get_embedding().cpu().numpy()  # [N, d]
    got = _instantiate_encoder(ctx.root, entry).encode(texts)
    if not np.allclose(got, expected, atol=1e-5):
        raise RuntimeError(f"the exported item text encoder differs from the model's item vectors by "
                           f"{float(np.abs(got - expected).max()):.3g}; not writing a bundle that disagrees")


def _scratch_encoder(net: TextTwoTower, ctx: ExportContext) -> dict[str, Any]:
    """Tokenizer vocabulary (JSON) + the item tower: an ONNX / TorchScript graph over padded token ids, or
    (native) token embeddings and projection as ``.npz``; checked against the model's own item vectors."""
    texts = ["" if t is None else str(t) for t in ctx.data.item_text or []]
    assert net.tokens is not None  # fitted
    spec = {"vocab": net.tokens.vocab,
            "cjk_ngram_range": list(net.analyzer.cjk_ngram_range), "hash_buckets": net.hash_buckets,
            "max_vocab": net.max_vocab, "char_ngram_range": list(net.char_ngram_range)}
    _path(ctx, "model/tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    tokenizer = ScratchTokenizer(ctx.root, "model/tokenizer.json")
    ids = np.concatenate([tokenizer.token_ids(t) for t in texts])  # [T]
    if not np.array_equal(ids, net.tok_ids.cpu().numpy()):  # the bundle must tokenise as the model did
        raise RuntimeError("TextTwoTower tokenisation changed: the exported vocabulary does not reproduce the "
                           "model's token ids: tokenizer.json does not round-trip ecomlab.models.text_tokens")
    if ctx.fmt == "native":
        np.savez(_path(ctx, "model/text_encoder.npz"), token_emb=net.token_emb.weight.detach().numpy(),
                 proj_w=net.item_proj.weight.detach().numpy(), proj_b=net.item_proj.bias.detach().numpy())
        entry = {"_target_": RUNTIME + "ScratchTextEncoder", "tokenizer": "model/tokenizer.json",
                 "weights": "model/text_encoder.npz"}
    else:
        graph = {"onnx": "model/item_encoder.onnx", "torchscript": "model/item_encoder.pt"}[ctx.fmt]
        write_text_encoder(ScratchItemEncoder(net.token_emb.weight, net.item_proj), ctx.fmt, _path(ctx, graph))
        entry = {"_target_": RUNTIME + "GraphTextEncoder", "tokenizer": "model/tokenizer.json", "graph": graph,
                 "runtime": ctx.fmt}
    _check_encoder(net, ctx, entry)
    return entry


def _instantiate_encoder(root: Path, entry: dict[str, Any]) -> Any:
    cls = {"ScratchTextEncoder": ScratchTextEncoder, "GraphTextEncoder": GraphTextEncoder,
           "PretrainedTextEncoder": PretrainedTextEncoder, "E5TextEncoder": E5TextEncoder,
           "TfidfTextEncoder": TfidfTextEncoder}[entry["_target_"].rsplit(".", 1)[1]]
    return cls(root, **{k: v for k, v in entry.items() if k != "_target_"})


@export_recommender.register(NeuMF)
def _neumf(net: NeuMF, ctx: ExportContext) -> Exported:
    parts = [_unit_rows(item) for _, item in net.get_embedding().values()]
    _save_item_vectors(ctx, _unit_rows(np.concatenate(parts, axis=1)))  # [N, d] ++ [N, h] -> [N, d + h]
    if ctx.fmt != "native":
        return Exported(ctx.fmt, _graph(ctx, NeuMFScorer(net)))
    # the checkpoint's weights replace whatever pre-trained runs the constructor read: do not read them again
    config = {**ctx.net_config, "pretrained_gmf": None, "pretrained_mlp": None}
    dims = {k: v for k, v in ctx.dims.items() if k in ("n_users", "n_items")}
    _path(ctx, "model/net.json").write_text(json.dumps({"config": config, "dims": dims}, indent=2), encoding="utf-8")
    np.savez(_path(ctx, "model/weights.npz"), **{k: v.detach().cpu().numpy() for k, v in net.state_dict().items()})
    return Exported("native", {"_target_": RUNTIME + "TorchNetScorer", "net": "model/net.json",
                               "weights": "model/weights.npz"})


def _classical_note(ctx: ExportContext) -> list[str]:
    if ctx.fmt == "native":
        return []
    return [f"format={ctx.fmt} was asked for; classical models are sparse closed-form fits and are always "
            "written natively (numpy/scipy .npz)"]


@export_recommender.register(Popularity)
def _popularity(net: Popularity, ctx: ExportContext) -> Exported:
    np.save(_path(ctx, "model/item_scores.npy"), net.item_scores.numpy(), allow_pickle=False)
    return Exported("native", {"_target_": RUNTIME + "PopularityScorer", "path": "model/item_scores.npy"},
                    notes=_classical_note(ctx))


@export_recommender.register(ItemKNN)
def _itemknn(net: ItemKNN, ctx: ExportContext) -> Exported:
    sp.save_npz(_path(ctx, "model/similarity.npz"), sp.csr_matrix(net.get_embedding()))
    sp.save_npz(_path(ctx, "model/train_rows.npz"), sp.csr_matrix(net.train_rows))
    return Exported("native", {"_target_": RUNTIME + "ItemKNNScorer", "similarity": "model/similarity.npz",
                               "train_rows": "model/train_rows.npz"}, notes=_classical_note(ctx))


@export_recommender.register(TfidfContent)
def _tfidf(net: TfidfContent, ctx: ExportContext) -> Exported:
    sp.save_npz(_path(ctx, "model/tfidf_items.npz"), sp.csr_matrix(net.item_matrix))
    sp.save_npz(_path(ctx, "model/train_rows.npz"), sp.csr_matrix(net.train_rows))
    return Exported("native", {"_target_": RUNTIME + "TfidfScorer", "item_matrix": "model/tfidf_items.npz",
                               "train_rows": "model/train_rows.npz",
                               "uniform": net.profile_weighting == "uniform"},
                    item_encoder=_tfidf_encoder(net, ctx), notes=_classical_note(ctx))


#: TfidfVectorizer settings that shape ``transform`` with a fixed vocabulary (min_df, max_features, max_df and
#: smooth_idf only matter when fitting; the idf they produced is stored as is)
_TFIDF_PARAMS = ("lowercase", "ngram_range", "norm", "sublinear_tf", "use_idf", "binary", "strip_accents",
                 "token_pattern")


def _tfidf_encoder(net: TfidfContent, ctx: ExportContext) -> dict[str, Any]:
    """Vocabulary and settings (JSON) + idf (``.npy``): enough to TF-IDF-embed new item text exactly."""
    vectorizer = net.vectorizer
    assert vectorizer is not None, "TfidfContent is fitted before export"
    params = vectorizer.get_params()
    if params.get("preprocessor") or params.get("tokenizer") or params.get("stop_words"):
        raise ValueError("TF-IDF with a custom preprocessor, tokenizer or stop words cannot be exported as JSON")
    spec = {"analyzer": net.analyzer, "cjk_ngram_range": list(net.ngram_range),
            "params": {k: list(v) if isinstance(v, tuple) else v for k, v in params.items() if k in _TFIDF_PARAMS},
            "vocabulary": {str(tok): int(col) for tok, col in vectorizer.vocabulary_.items()}}
    _path(ctx, "model/tfidf_vocabulary.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    np.save(_path(ctx, "model/tfidf_idf.npy"), vectorizer.idf_.astype(np.float64), allow_pickle=False)
    entry = {"_target_": RUNTIME + "TfidfTextEncoder", "spec": "model/tfidf_vocabulary.json",
             "idf": "model/tfidf_idf.npy"}
    texts = ["" if t is None else str(t) for t in ctx.data.item_text or []]
    got = _instantiate_encoder(ctx.root, entry).encode(texts)
    if abs(got - net.item_matrix).max() > 1e-12:
        raise RuntimeError("the exported TF-IDF vocabulary and idf do not reproduce the model's item matrix")
    return entry


@export_recommender.register(HybridContent)
def _hybrid_content(net: HybridContent, ctx: ExportContext) -> Exported:
    """Every part of the fused score as arrays (TF-IDF rows, sentence embeddings, predicted and observed
    popularity, item-kNN, text neighbours) + the learned weights as JSON, scored by the model's own numpy function
    (:func:`ecomlab.models.hybrid_content.fused_scores`); always native."""
    parts = net.parts
    assert parts is not None and net.train_rows is not None, "HybridContent is fitted before export"
    sp.save_npz(_path(ctx, "model/tfidf_items.npz"), sp.csr_matrix(parts.tfidf))
    sp.save_npz(_path(ctx, "model/train_rows.npz"), sp.csr_matrix(net.train_rows))
    arrays = {"text_pop": parts.text_pop, "pop": parts.pop, "cold": parts.cold}
    if parts.emb is not None:
        arrays.update(emb=parts.emb, emb_mean=net.emb_mean)
        _save_item_vectors(ctx, parts.emb)
    np.savez(_path(ctx, "model/hybrid_parts.npz"), **arrays)
    _path(ctx, "model/hybrid_weights.json").write_text(json.dumps(net.weights, indent=2), encoding="utf-8")
    scorer = {"_target_": RUNTIME + "HybridScorer", "item_matrix": "model/tfidf_items.npz",
              "train_rows": "model/train_rows.npz", "arrays": "model/hybrid_parts.npz",
              "weights": "model/hybrid_weights.json", "knn": None}
    if parts.knn is not None:
        sp.save_npz(_path(ctx, "model/knn.npz"), sp.csr_matrix(parts.knn))
        scorer["knn"] = "model/knn.npz"
    if parts.neighbours is not None:
        sp.save_npz(_path(ctx, "model/text_neighbours.npz"), sp.csr_matrix(parts.neighbours))
        scorer["neighbours"] = "model/text_neighbours.npz"
    if net.encoder == "e5":
        encoder = {"_target_": RUNTIME + "E5TextEncoder", "arrays": "model/hybrid_parts.npz"}
        sample = ["" if t is None else str(t) for t in (ctx.data.item_text or [])][:64]
        got = E5TextEncoder(ctx.root, "model/hybrid_parts.npz").encode(sample)
        if not np.allclose(got, parts.emb[: len(sample)], atol=1e-5):  # type: ignore[index]
            raise RuntimeError("the exported multilingual-e5-small encoder does not reproduce the model's item "
                               f"embeddings (max difference {float(np.abs(got - parts.emb[: len(sample)]).max()):.3g})")
        notes = [] if ctx.fmt == "native" else [f"format={ctx.fmt} was asked for; the hybrid content model's fused "
                                                 "scores are numpy/scipy arrays and are always written natively"]
    else:
        encoder = _tfidf_encoder(net.lexical, ctx)
        notes = _classical_note(ctx)
        if net.encoder is not None:
            notes.append("sentence-transformers encoder: embed_items gives the TF-IDF rows of new item text; the "
                         "bundle holds the sentence embeddings of the exported catalogue only")
    return Exported("native", scorer, item_encoder=encoder, notes=notes)
