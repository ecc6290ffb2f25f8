"""Export -> load -> parity for every exportable model, on tiny real runs (real configs, real trainers).

Parity: the loaded bundle (onnxruntime / TorchScript / native files) gives the in-memory model's scores within
1e-4 on the test users, and the same top-k lists up to the order of scores that tie within 1e-4.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

import ecomlab
from ecomlab.export import BundleIntegrityError, LoadedForecaster, LoadedRecommender
from ecomlab.export.writer import export_run, rebuild_run
from ecomlab.models.base import rank_topk
from ecomlab.train import train
from ecomlab.utils import config_dir

TINY_SHOP = ["data=synthetic_shop", "data.source.n_users=120", "data.source.n_items=60", "data.batch_size=256"]
TINY_SALES = ["data=retail_series", "data.source.series=[souvenirs,a10]", "data.backtest.n_windows=1"]
TOL = 1e-4


def train_run(out: Path, overrides: list[str]) -> Path:
    """One real tiny ``ecomlab-train`` run written to ``out``, composed like ``tests/conftest.py`` does."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, "logger=[]", "eval.print_table=false"], return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
        for key in ("log_dir", "data_dir", "cache_dir"):
            cfg.paths[key] = str(out.parent / key)
        del cfg["hydra"]
    train(cfg)
    GlobalHydra.instance().clear()
    return out


@pytest.fixture(scope="module")
def run_of(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``run_of(model)``: the run directory of a tiny run of ``model``, trained once per module."""
    root = tmp_path_factory.mktemp("runs")
    done: dict[str, Path] = {}

    def get(model: str) -> Path:
        if model not in done:
            data = {"seasonal_naive": TINY_SALES, "ets": TINY_SALES, "naive": TINY_SALES, "naive2": TINY_SALES,
                    "arima": TINY_SALES, "auto_arima": TINY_SALES,
                    "gbt": [*TINY_SALES, "model.net.max_iter=30"],
                    "lstm": [*TINY_SALES, "trainer.max_epochs=1", "data.windows_per_epoch=64",
                             "model.net.hidden_size=16", "model.net.mlp_size=32"],
                    "lstm_deepar": [*TINY_SALES, "trainer.max_epochs=1", "data.windows_per_epoch=64",
                                    "model.net.hidden_size=16"],
                    "lstm_ensemble": [*TINY_SALES, "trainer.max_epochs=1", "data.windows_per_epoch=64",
                                      "model.net.n_members=2", "model.net.input_sizes=[24,12]",
                                      "model.net.member.hidden_size=16", "model.net.member.mlp_size=32"]}.get(
                model, [*TINY_SHOP, "trainer.max_epochs=2"])
            done[model] = train_run(root / model, [f"model={model}", *data])
        return done[model]

    return get


def assert_same_topk(ref_scores: np.ndarray, ref_items: np.ndarray, got_scores: np.ndarray, got_items: np.ndarray) -> None:
    """Equal top-k lists, except that items whose scores tie within ``TOL`` may swap places."""
    np.testing.assert_allclose(got_scores, ref_scores, atol=TOL, rtol=0)
    differ = ref_items != got_items
    if differ.any():
        b, pos = np.nonzero(differ)
        # a swap is only allowed where the reference ranks equal-within-tolerance scores
        near = np.abs(ref_scores[b, pos] - got_scores[b, pos]) <= TOL
        assert near.all(), f"top-k differ beyond ties at rows {b[~near][:5]}"


REC_EXPORTS = [
    ("popularity", "native"), ("itemknn", "native"), ("tfidf", "native"),
    ("bpr", "onnx"), ("bpr", "torchscript"), ("bpr", "native"),
    ("lightgcn", "onnx"), ("social_gnn", "onnx"), ("social_gnn", "torchscript"),
    ("neumf", "onnx"), ("neumf", "torchscript"), ("neumf", "native"),
    ("text_two_tower", "onnx"), ("text_two_tower", "native"),
    ("gmf", "onnx"), ("mlp", "torchscript"), ("social_gnn_xsimgcl", "native"), ("diffnetpp", "onnx"),
]


@pytest.mark.parametrize(("model", "fmt"), REC_EXPORTS)
def test_exported_recommender_matches_in_memory_model(run_of, tmp_path: Path, model: str, fmt: str) -> None:
    bundle = export_run(run_of(model), fmt, tmp_path / "bundle")
    loaded = ecomlab.load(bundle)
    assert isinstance(loaded, LoadedRecommender)
    assert loaded.manifest["format"] == (fmt if model not in ("popularity", "itemknn", "tfidf") else "native")
    run = rebuild_run(run_of(model))
    users = run.datamodule.eval_dataset("test").users  # [U_test]
    assert len(users) > 10
    with torch.no_grad():
        ref = run.task.net(torch.as_tensor(users)).float()  # [U_test, N]
    np.testing.assert_allclose(loaded.scorer.scores(users), ref.numpy(), atol=TOL, rtol=0)

    seen = torch.as_tensor(loaded.seen[users].toarray() > 0)
    ref_scores, ref_items = rank_topk(ref, 10, seen)
    raw_users = run.datamodule.bundle.user_map.to_raw(users).tolist()
    recs = loaded.recommend(raw_users, k=10)
    assert [r.user_id for r in recs] == raw_users and {r.source for r in recs} == {"model"}
    got_items = np.array([run.datamodule.bundle.item_map.to_index(r.items) for r in recs])
    got_scores = np.array([r.scores for r in recs])
    assert_same_topk(ref_scores.numpy(), ref_items.numpy(), got_scores, got_items)

    card = (bundle / "README.md").read_text()
    assert f"# {model} on synthetic_shop" in card and "test/ndcg@10" in card
    metrics = json.loads((bundle / "metrics.json").read_text())
    assert metrics["metrics"]["test/ndcg@10"] == pytest.approx(run.record["metrics"]["test/ndcg@10"])
    assert metrics["protocol"]["split"]["split"] == "ratio"


def test_manifest_refuses_modified_missing_and_added_files(run_of, tmp_path: Path) -> None:
    bundle = export_run(run_of("bpr"), "onnx", tmp_path / "bundle")
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert set(manifest["files"]) >= {"model/scores.onnx", "data/users.parquet", "README.md", "config.yaml"}
    vectors = bundle / "model" / "item_vectors.npy"
    original = vectors.read_bytes()
    vectors.write_bytes(original[:-4] + b"\0\0\0\1")
    with pytest.raises(BundleIntegrityError, match=r"item_vectors\.npy: SHA-256 differs"):
        ecomlab.load(bundle)
    vectors.write_bytes(original)
    ecomlab.load(bundle)
    (bundle / "extra.txt").write_text("x")
    with pytest.raises(BundleIntegrityError, match=r"extra\.txt: not listed"):
        ecomlab.load(bundle)
    (bundle / "extra.txt").unlink()
    (bundle / "README.md").unlink()
    with pytest.raises(BundleIntegrityError, match=r"README\.md: listed in the manifest but missing"):
        ecomlab.load(bundle)
    with pytest.raises(FileNotFoundError, match="no such directory"):
        ecomlab.load(tmp_path / "nowhere")


def test_unknown_users_fall_back_to_history_or_popularity(run_of, tmp_path: Path) -> None:
    loaded = ecomlab.load(export_run(run_of("bpr"), "onnx", tmp_path / "bundle"))
    items = loaded.items.raw.tolist()
    recs = loaded.recommend(["stranger", "newcomer"], k=5, histories={"newcomer": [items[3], items[7], "not-an-item"]})
    assert [r.source for r in recs] == ["popularity", "history"]
    by_count = np.argsort(-loaded.popularity, kind="stable")[:5]
    assert recs[0].items == [items[i] for i in by_count]
    assert items[3] not in recs[1].items and items[7] not in recs[1].items and len(recs[1].items) == 5
    # the history fallback is the cosine of the mean history vector against every item vector
    mean = loaded.item_vectors[[3, 7]].mean(axis=0)
    expected = loaded.item_vectors @ (mean / np.linalg.norm(mean))
    assert recs[1].scores == pytest.approx(np.sort(np.delete(expected, [3, 7]))[::-1][:5].tolist(), abs=1e-5)
    only_unknown = loaded.recommend(["newcomer"], k=3, histories={"newcomer": ["not-an-item"]})
    assert only_unknown[0].source == "popularity"


@pytest.mark.parametrize("model", ["itemknn", "tfidf", "text_two_tower"])
def test_history_fallback_reproduces_the_model_for_a_known_history(run_of, tmp_path: Path, model: str) -> None:
    """Models that score a user from their items give an unknown user with user u's training history
    exactly u's scores."""
    loaded = ecomlab.load(export_run(run_of(model), "native", tmp_path / "bundle"))
    run = rebuild_run(run_of(model))
    train = run.datamodule.train_csr
    user = int(np.argmax(np.diff(train.indptr)))
    history = run.datamodule.bundle.item_map.to_raw(train[user].indices).tolist()
    stranger = loaded.recommend(["stranger"], k=8, histories={"stranger": history}, exclude_seen=False)[0]
    known = loaded.recommend([run.datamodule.bundle.user_map.to_raw([user])[0]], k=8, exclude_seen=False)[0]
    assert stranger.source == "history"
    assert stranger.scores == pytest.approx(known.scores, abs=1e-5)


def test_candidates_exclusion_and_similar_items(run_of, tmp_path: Path) -> None:
    loaded = ecomlab.load(export_run(run_of("itemknn"), "native", tmp_path / "bundle"))
    user, items = loaded.users.raw[0], loaded.items.raw.tolist()
    seen = {items[i] for i in loaded.seen[0].indices}
    assert not seen & set(loaded.recommend([user], k=20)[0].items)
    assert loaded.recommend([user], k=20, exclude_seen=False)[0].items  # seen items may come back
    only = loaded.recommend([user], k=10, candidates=items[:4], exclude_seen=False)[0]
    assert set(only.items) <= set(items[:4]) and len(only.items) == 4
    assert len(loaded.recommend([user], k=1000)[0].items) == loaded.n_items - len(seen)  # never an excluded item
    with pytest.raises(KeyError, match="unknown candidate item ids"):
        loaded.recommend([user], k=3, candidates=["nope"])
    with pytest.raises(ValueError, match="k=0"):
        loaded.recommend([user], k=0)
    similar = loaded.similar_items([items[0], items[1]], k=5)
    assert similar[0].source == "model" and items[0] not in similar[0].items
    column = loaded.scorer.similarity[:, 0].toarray().ravel()
    assert similar[0].scores[0] == pytest.approx(np.delete(column, 0).max())
    with pytest.raises(KeyError, match="unknown item ids"):
        loaded.similar_items(["nope"], k=2)


NEW_ITEM_TEXTS = ["红色 连衣裙 cotton dress", "完全没见过的词", "", "Blue SHIRT 纯棉T恤"]


@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "native"])
def test_text_two_tower_bundle_embeds_new_item_text(run_of, tmp_path: Path, fmt: str) -> None:
    """New item text -> the same unit vector from the bundle (tokenizer JSON + item tower graph / arrays) as
    from the in-memory model's item tower."""
    bundle = export_run(run_of("text_two_tower"), fmt, tmp_path / "bundle")
    loaded = ecomlab.load(bundle)
    encoder = {"onnx": "item_encoder.onnx", "torchscript": "item_encoder.pt", "native": "text_encoder.npz"}[fmt]
    assert f"model/{encoder}" in loaded.manifest["files"]
    texts = loaded.item_table["text"].fillna("").tolist()
    np.testing.assert_allclose(loaded.embed_items(texts), loaded.item_vectors, atol=1e-5)
    assert json.loads((bundle / "model" / "tokenizer.json").read_text())["vocab"]
    new = loaded.embed_items(NEW_ITEM_TEXTS)
    assert new.shape == (len(NEW_ITEM_TEXTS), loaded.item_vectors.shape[1])
    np.testing.assert_allclose(np.linalg.norm(new, axis=1), 1.0, rtol=1e-5)
    net = rebuild_run(run_of("text_two_tower")).task.net
    np.testing.assert_allclose(new, net.encode_texts(NEW_ITEM_TEXTS).numpy(), atol=TOL, rtol=0)


def test_tfidf_bundle_embeds_new_item_text_exactly(run_of, tmp_path: Path) -> None:
    bundle = export_run(run_of("tfidf"), "native", tmp_path / "bundle")
    loaded = ecomlab.load(bundle)
    spec = json.loads((bundle / "model" / "tfidf_vocabulary.json").read_text(encoding="utf-8"))
    assert spec["analyzer"] == "mixed" and spec["vocabulary"]
    net = rebuild_run(run_of("tfidf")).task.net
    new = loaded.embed_items(NEW_ITEM_TEXTS)  # CSR [n, V]
    expected = net.vectorizer.transform(NEW_ITEM_TEXTS)
    assert new.shape == expected.shape and new.nnz > 0
    np.testing.assert_allclose(new.toarray(), expected.toarray(), atol=1e-12, rtol=0)
    texts = loaded.item_table["text"].fillna("").tolist()
    np.testing.assert_allclose(loaded.embed_items(texts).toarray(), loaded.scorer.item_matrix.toarray(), atol=1e-12)
    with pytest.raises(ValueError, match="no item text encoder"):
        ecomlab.load(export_run(run_of("bpr"), "native", tmp_path / "bpr")).embed_items(["x"])


def test_failed_export_leaves_nothing_and_existing_out_is_refused(run_of, tmp_path: Path) -> None:
    out_parent = tmp_path / "bundles"
    with pytest.raises(ValueError, match="cannot be exported"):
        export_run(train_run(tmp_path / "random", ["model=random", *TINY_SHOP]), "onnx", out_parent / "random")
    assert not out_parent.exists() or not any(out_parent.iterdir()), list(out_parent.iterdir())
    bundle = export_run(run_of("popularity"), "onnx", out_parent / "pop")
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["format"] == "native" and "always written natively" in manifest["notes"][0]
    with pytest.raises(ValueError, match="already exists"):
        export_run(run_of("popularity"), "native", bundle)
    with pytest.raises(ValueError, match="format='pickle'"):
        export_run(run_of("popularity"), "pickle", out_parent / "other")
    assert sorted(p.name for p in out_parent.iterdir()) == ["pop"]


FORECAST_EXPORTS = [("seasonal_naive", "onnx"), ("ets", "onnx"), ("gbt", "onnx"), ("lstm", "onnx"),
                    ("naive", "native"), ("naive2", "native"), ("arima", "native"), ("auto_arima", "native"),
                    ("lstm", "torchscript"), ("lstm", "native"), ("lstm_deepar", "onnx"),
                    ("lstm_deepar", "torchscript"), ("lstm_ensemble", "onnx"), ("lstm_ensemble", "native")]


@pytest.mark.parametrize(("model", "fmt"), FORECAST_EXPORTS)
def test_exported_forecaster_matches_backtest_forecasts(run_of, tmp_path: Path, model: str, fmt: str) -> None:
    """Served forecasts (point + interval bounds) equal the run's test forecasts within 1e-4 relative; the
    LSTMs through onnxruntime / TorchScript graphs, ``lstm_deepar`` with its Student-t quantiles computed
    after the graph by the same code."""
    run_dir = run_of(model)
    loaded = ecomlab.load(export_run(run_dir, fmt, tmp_path / "bundle"))
    assert isinstance(loaded, LoadedForecaster)
    graph = {"onnx": "model/lstm.onnx", "torchscript": "model/lstm.pt"}.get(fmt)
    if model.startswith("lstm"):
        assert loaded.manifest["format"] == fmt and (graph is None or graph in loaded.manifest["files"])
        assert ("model/weights.npz" in loaded.manifest["files"]) == (fmt == "native")
    test = pd.read_parquet(run_dir / "forecasts_test.parquet")
    run = rebuild_run(run_dir)
    history = []
    for series in run.datamodule.series:
        cutoff = np.flatnonzero(pd.DatetimeIndex(series.ds) == test.loc[test.unique_id == series.unique_id, "ds"].min())[0]
        history.append(pd.DataFrame({"unique_id": series.unique_id, "ds": series.ds[:cutoff], "y": series.y[:cutoff]}))
    got = loaded.forecast(pd.concat(history), horizon=12)
    merged = test.merge(got, on=["unique_id", "ds"], suffixes=("", "_served"))
    assert len(merged) == len(test) == len(got)
    for column in [c for c in ("y_hat", "lo_80", "hi_80", "lo_95", "hi_95") if c in test.columns]:
        np.testing.assert_allclose(merged[f"{column}_served"], merged[column], rtol=TOL)
    one = loaded.forecast(history[-1], horizon=12)  # a batch of one series (graphs: dynamic batch axis)
    # every column, intervals too: quantiles are exact (no draws), so a series' forecast ignores its batch
    pd.testing.assert_frame_equal(one, got.loc[got.unique_id == history[-1].unique_id.iloc[0]]
                                  .reset_index(drop=True), rtol=TOL)
    assert ("lo_80" in got.columns) == ("lo_80" in test.columns), "the bundle serves intervals iff the run had them"
    if "lo_80" in test.columns:
        assert {"lo_80", "hi_80", "q0.1", "q0.9", "q0.975"} <= set(got.columns)
        np.testing.assert_allclose(got["q0.1"], got["lo_80"])
    with pytest.raises(ValueError, match="missing column"):
        loaded.forecast(pd.DataFrame({"unique_id": ["a"], "y": [1.0]}))
    assert loaded.card()["task"] == "forecasting"


@pytest.mark.slow  # two console-script subprocesses: ~25 s on the shared 2-core machine
def test_export_cli_exit_codes(run_of, tmp_path: Path) -> None:
    tool = Path(sys.executable).parent / "ecomlab-export"
    common = [f"hydra.run.dir={tmp_path}/hydra"]
    ok = subprocess.run([str(tool), f"run={run_of('bpr')}", "format=torchscript", f"out={tmp_path}/b", *common],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "format torchscript" in ok.stdout and (tmp_path / "b" / "model" / "scores.pt").exists()
    bad = subprocess.run([str(tool), f"run={tmp_path}/missing", f"out={tmp_path}/c", *common],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "not a finished ecomlab run" in bad.stderr and not (tmp_path / "c").exists()


def test_export_and_serve_configs_compose(compose_cfg) -> None:
    cfg = compose_cfg(["run=/some/run", "out=/some/bundle"], config_name="export")
    assert (cfg.run, cfg.format, cfg.out, cfg.ckpt) == ("/some/run", "onnx", "/some/bundle", "best")
    cfg = compose_cfg(["bundle=/some/bundle", "port=9000"], config_name="serve")
    assert (cfg.bundle, cfg.host, cfg.port) == ("/some/bundle", "127.0.0.1", 9000)


def test_gbt_bundle_stores_trees_without_pickle_and_serves_new_series(run_of, tmp_path: Path) -> None:
    bundle = export_run(run_of("gbt"), "native", tmp_path / "bundle")
    with np.load(bundle / "model" / "trees.npz", allow_pickle=False) as arrays:  # plain arrays only
        assert "m0_num_threshold" in arrays.files and arrays["calibration_errors"].shape[1] == 12
    loaded = ecomlab.load(bundle)
    run = rebuild_run(run_of("gbt"))
    series = run.datamodule.series[0]
    history = pd.DataFrame({"unique_id": "brand-new", "ds": series.ds[:-12], "y": series.y[:-12]})
    got = loaded.forecast(history, levels=[80])
    assert len(got) == 12 and np.isfinite(got[["y_hat", "lo_80", "hi_80"]].to_numpy()).all()
    assert (got["lo_80"] <= got["y_hat"]).all() and (got["y_hat"] <= got["hi_80"]).all()
    longer = loaded.forecast(history, horizon=15, levels=[])  # recursive: any horizon, point forecasts
    assert len(longer) == 15 and "lo_80" not in longer.columns
    with pytest.raises(ValueError, match="calibrated|horizon 12"):
        loaded.forecast(history, horizon=15)


def test_numpy_tree_predictor_matches_scikit_learn() -> None:
    """Categorical (known, unseen, negative, missing) and numerical splits with NaN, bit for bit."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    from ecomlab.export.trees import NumpyHGB, hgb_arrays

    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 4))
    X[:, 3] = rng.integers(0, 20, len(X))
    X[rng.random(len(X)) < 0.1, 0] = np.nan
    y = 2 * X[:, 1] + np.sin(X[:, 3]) + np.nan_to_num(X[:, 0]) + rng.normal(size=len(X)) * 0.1
    est = HistGradientBoostingRegressor(max_iter=40, categorical_features=[3], random_state=0).fit(X, y)
    test = rng.normal(size=(400, 4))
    test[:, 3] = rng.integers(-2, 25, len(test))  # negative and unseen categories too
    test[:5, 3] = np.nan
    test[rng.random(len(test)) < 0.2, 0] = np.nan
    np.testing.assert_array_equal(NumpyHGB(hgb_arrays(est)).predict(test), est.predict(test))


@pytest.mark.slow  # loads all-MiniLM-L6-v2 (~10 s) and exports it to ONNX (~5 s) on the shared 2-core machine
def test_pretrained_text_two_tower_bundle_embeds_new_item_text(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("all_minilm_l6_v2")
    run = train_run(tmp_path / "run", ["model=text_two_tower_pretrained", *TINY_SHOP, "trainer.max_epochs=1"])
    loaded = ecomlab.load(export_run(run, "onnx", tmp_path / "bundle"))
    assert {"model/item_encoder.onnx", "model/tokenizer.json"} <= set(loaded.manifest["files"])
    texts = loaded.item_table["text"].fillna("").tolist()
    np.testing.assert_allclose(loaded.embed_items(texts), loaded.item_vectors, atol=1e-5)
    net = rebuild_run(run).task.net
    np.testing.assert_allclose(loaded.embed_items(NEW_ITEM_TEXTS), net.encode_texts(NEW_ITEM_TEXTS).numpy(),
                               atol=TOL, rtol=0)


@pytest.mark.parametrize(("fmt", "calibrate"), [("onnx", False), ("native", False), ("onnx", True)])
def test_exported_lstm_with_covariates_matches_backtest_forecasts(tmp_path_factory: pytest.TempPathFactory,
                                                                 fmt: str, calibrate: bool) -> None:
    """synthetic_sales has known-future promo and price columns: the served forecast, given the history's
    covariates and the planned ones over the horizon, equals the run's test forecasts (with conformally
    calibrated intervals too: the bundle carries the run's offsets)."""
    run_dir = train_run(tmp_path_factory.mktemp("cov") / "lstm", [
        "model=lstm", "data=synthetic_sales", "data.source.n_users=150", "data.source.n_items=40",
        "data.backtest.n_windows=1", "trainer.max_epochs=1", "data.windows_per_epoch=64",
        "model.net.hidden_size=16", "model.net.mlp_size=32", f"model.calibrate={str(calibrate).lower()}"])
    bundle = export_run(run_dir, fmt, tmp_path_factory.mktemp("cov_bundle") / "b")
    loaded = ecomlab.load(bundle)
    offsets = json.loads((Path(bundle) / "model" / "lstm.json").read_text())["interval_offsets"]
    assert (set(offsets) == {"80", "95"}) if calibrate else offsets == {}
    test = pd.read_parquet(run_dir / "forecasts_test.parquet")
    run = rebuild_run(run_dir)
    futr = run.datamodule.futr_covariates
    assert futr == ["promo", "price"]
    history, planned = [], []
    for s in run.datamodule.series:
        ds = pd.DatetimeIndex(s.ds)
        cutoff = np.flatnonzero(ds == test.loc[test.unique_id == s.unique_id, "ds"].min())[0]
        h = int((test.unique_id == s.unique_id).sum())
        cov = pd.DataFrame(s.covariates, columns=futr)
        history.append(pd.DataFrame({"unique_id": s.unique_id, "ds": ds[:cutoff], "y": s.y[:cutoff],
                                     **{c: cov[c].to_numpy()[:cutoff] for c in futr}}))
        planned.append(pd.DataFrame({"unique_id": s.unique_id, "ds": ds[cutoff:cutoff + h],
                                     **{c: cov[c].to_numpy()[cutoff:cutoff + h] for c in futr}}))
    got = loaded.forecast(pd.concat(history), covariates=pd.concat(planned))
    merged = test.merge(got, on=["unique_id", "ds"], suffixes=("", "_served"))
    assert len(merged) == len(test) == len(got)
    for column in ("y_hat", "lo_80", "hi_95"):
        np.testing.assert_allclose(merged[f"{column}_served"], merged[column], rtol=TOL)
    # the planned promotions matter: serving without them is refused, not silently zero-filled
    with pytest.raises(ValueError, match="known-future covariates"):
        loaded.forecast(pd.concat(history))
