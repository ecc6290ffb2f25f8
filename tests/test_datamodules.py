"""The Lightning data modules: recommendation (split -> CSR -> loaders) and forecasting (backtest windows).

Includes the chance-level check: a model that ranks at random must score what random ranking scores, computed
exactly per user from the candidate counts, while a real signal (planted popularity) must beat it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import pytorch_lightning as pl
import scipy.sparse as sp
import torch

from ecomlab.data.builtin import FileSource, MovieLensSmall, RetailSeries
from ecomlab.data.bundle import DataValidationError
from ecomlab.data.forecast_datamodule import ForecastDataModule
from ecomlab.data.preprocess import Preprocess
from ecomlab.data.rec_datamodule import RecDataModule, cells_mask, csr_entries
from ecomlab.data.sources.panels import SalesFile
from ecomlab.data.splits import ColdStartItemSplit, LeaveOneOutSplit, RatioSplit, RollingOrigin, TemporalSplit
from ecomlab.data.synthetic import SyntheticShop
from ecomlab.models.popularity import Popularity
from ecomlab.models.random import RandomRanker
from ecomlab.tasks.ranking import RankingTask

KEY = ["user_id", "item_id", "timestamp"]


@pytest.fixture(scope="module")
def small_dm() -> RecDataModule:
    dm = RecDataModule(SyntheticShop(n_users=200, n_items=100, seed=0), RatioSplit(ratios=(0.8, 0.1, 0.1), seed=0),
                       batch_size=512, eval_batch_size=64, num_negatives=4)
    dm.setup()
    return dm


def _binary(matrix: sp.csr_matrix) -> np.ndarray:
    return matrix.toarray() > 0


# --------------------------------------------------------------------------- recommendation


def test_dims(small_dm: RecDataModule) -> None:
    assert small_dm.dims == {"n_users": 200, "n_items": 100}
    for csr in (small_dm.train_csr, small_dm.val_csr, small_dm.test_csr):
        assert csr.shape == (200, 100)


def test_split_parts_are_disjoint_and_cover_the_data(small_dm: RecDataModule) -> None:
    bundle = small_dm.bundle
    parts = RatioSplit(ratios=(0.8, 0.1, 0.1), seed=0)(bundle.interactions, bundle.has_timestamps)
    assert parts.sizes() == small_dm.split_sizes
    assert min(parts.sizes().values()) > 0
    tagged = pd.concat([parts.train.assign(part="train"), parts.val.assign(part="val"),
                        parts.test.assign(part="test")], ignore_index=True)
    assert len(tagged) == len(bundle.interactions)
    assert not bundle.interactions.duplicated(KEY).any()
    assert not tagged.duplicated(KEY).any()  # no interaction row lands in two parts
    rows = bundle.interactions.merge(tagged, on=KEY + ["weight"], how="left", validate="one_to_one")
    assert rows["part"].notna().all()
    # the CSR matrices hold exactly their part's weights
    for name, csr in (("train", small_dm.train_csr), ("val", small_dm.val_csr), ("test", small_dm.test_csr)):
        frame = getattr(parts, name)
        assert csr.sum() == pytest.approx(frame["weight"].sum())
        assert set(zip(*csr.nonzero(), strict=True)) == set(zip(frame["user_id"], frame["item_id"], strict=True))


def test_sampled_negatives_are_never_training_positives(small_dm: RecDataModule) -> None:
    train = _binary(small_dm.train_csr)
    n_examples = 0
    for batch in map(small_dm.complete, small_dm.train_dataloader()):
        users, pos, neg = batch["users"].numpy(), batch["pos"].numpy(), batch["neg"].numpy()
        assert neg.shape == (len(users), 4)
        assert train[users, pos].all()
        assert not train[users[:, None], neg].any()
        assert ((neg >= 0) & (neg < 100)).all()
        n_examples += len(users)
    assert n_examples == small_dm.train_csr.nnz


@pytest.mark.parametrize("stage", ["val", "test"])
def test_eval_batches_mask_seen_items_and_hold_only_candidate_targets(small_dm: RecDataModule, stage: str) -> None:
    train, val, test = (_binary(m) for m in (small_dm.train_csr, small_dm.val_csr, small_dm.test_csr))
    seen, held_out = (train, val) if stage == "val" else (train | val, test)
    loader = small_dm.val_dataloader() if stage == "val" else small_dm.test_dataloader()
    users_seen = []
    for batch in map(small_dm.complete, loader):
        users = batch["users"].numpy()
        assert "exclude" not in batch and "target" not in batch, "full ranking carries cells, not [B, N] masks"
        exclude, target = (cells_mask(batch[key], len(users), 100).numpy() for key in ("exclude_at", "target_at"))
        assert (batch["n_target"].numpy() == target.sum(axis=1)).all()
        assert (exclude == seen[users]).all()
        assert not (target & exclude).any()
        assert (target == (held_out[users] & ~seen[users])).all()
        assert target.any(axis=1).all()  # only users with a target are evaluated
        users_seen.append(users)
    users = np.concatenate(users_seen)
    assert len(np.unique(users)) == len(users) == small_dm.protocol()[f"n_{stage}_users"]
    assert set(users) == set(np.flatnonzero((held_out & ~seen).any(axis=1)))


def test_forecasting_source_refused_by_rec_datamodule() -> None:
    dm = RecDataModule(RetailSeries(), RatioSplit())
    with pytest.raises(DataValidationError, match="retail_series.*no user-item interactions"):
        dm.setup()


# --------------------------------------------------------------------------- forecasting


def test_rec_only_sources_refused_by_forecast_datamodule(tmp_path: Path) -> None:
    (tmp_path / "inter.csv").write_text("user_id,item_id,timestamp,weight\nu1,i1,1,1\nu2,i2,2,1\n")
    for source in (FileSource("inter.csv", data_dir=str(tmp_path), name="my_shop"), MovieLensSmall()):
        dm = ForecastDataModule(source, RollingOrigin(horizon=12), season_length=12)
        with pytest.raises(DataValidationError, match="has no sales panel"):
            dm.setup()


@pytest.fixture(scope="module")
def retail_dm() -> ForecastDataModule:
    dm = ForecastDataModule(RetailSeries(), RollingOrigin(horizon=12, n_windows=3, step=12), season_length=12,
                            batch_size=5)
    dm.setup()
    return dm


def test_forecast_windows_end_at_the_cutoffs(retail_dm: ForecastDataModule) -> None:
    assert retail_dm.dims == {"n_series": 4, "horizon": 12, "season_length": 12, "input_size": 24, "n_futr": 0,
                              "n_hist": 0, "n_calendar": 2, "nonnegative": True}
    sales = retail_dm.bundle.sales
    batches = list(retail_dm.test_dataloader())
    assert [len(b["unique_id"]) for b in batches] == [5, 5, 2]
    seen = []
    for batch in batches:
        assert batch["future"].shape == (len(batch["unique_id"]), 12)
        for uid, window, history, future, future_ds in zip(batch["unique_id"], batch["window"], batch["history"],
                                                          batch["future"], batch["future_ds"], strict=True):
            series = sales[sales["unique_id"] == uid]
            y, ds = series["y"].to_numpy(), series["ds"].to_numpy()
            cutoff = len(y) - 12 * (3 - window)  # last window ends at the series' end, origins 12 apart
            np.testing.assert_array_equal(history, y[:cutoff])
            np.testing.assert_array_equal(future, y[cutoff:cutoff + 12])
            np.testing.assert_array_equal(future_ds, ds[cutoff:cutoff + 12])
            # history stops the month before the first forecast month
            last, first = pd.Timestamp(ds[cutoff - 1]), pd.Timestamp(future_ds[0])
            assert (first.year * 12 + first.month) - (last.year * 12 + last.month) == 1
            seen.append((uid, window))
    assert len(seen) == len(set(seen)) == 4 * 3
    assert retail_dm.protocol()["n_test_windows"] == 12
    assert retail_dm.protocol()["n_val_windows"] == 4


def test_forecast_validation_windows_precede_the_test_period(retail_dm: ForecastDataModule) -> None:
    for batch in retail_dm.val_dataloader():
        for uid, history, future_ds in zip(batch["unique_id"], batch["history"], batch["future_ds"], strict=True):
            n = int((retail_dm.bundle.sales["unique_id"] == uid).sum())
            assert len(history) == n - 48  # one validation window, 12 before the first test cutoff
            assert len(future_ds) == 12


def test_forecast_series_filter_and_too_short_series() -> None:
    one = ForecastDataModule(RetailSeries(), RollingOrigin(horizon=12, n_windows=3), season_length=12,
                             series=["souvenirs"])
    one.setup()
    assert one.dims["n_series"] == 1 and len(one.test_items) == 3
    unknown = ForecastDataModule(RetailSeries(), RollingOrigin(horizon=12), season_length=12, series=["nope"])
    with pytest.raises(DataValidationError, match="nope"):
        unknown.setup()
    # souvenirs has 84 months; 3 test + 1 val windows of 24 with 48 months of history need 144
    short = ForecastDataModule(RetailSeries(["souvenirs"]), RollingOrigin(horizon=24, n_windows=3), season_length=12)
    with pytest.raises(DataValidationError, match="souvenirs.*too short"):
        short.setup()


# --------------------------------------------------------------------------- chance level


@pytest.fixture(scope="module")
def shop_dm() -> RecDataModule:
    dm = RecDataModule(SyntheticShop(n_users=2000, n_items=300, seed=0), RatioSplit(ratios=(0.8, 0.1, 0.1), seed=0),
                       eval_batch_size=512)
    dm.setup()
    return dm


def _run_test(net: RandomRanker | Popularity, dm: RecDataModule) -> tuple[dict[str, float], RankingTask]:
    task = RankingTask(net, ks=[10, 20])
    task.prepare(dm.train_data())
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    (logged,) = trainer.test(task, datamodule=dm, verbose=False)
    return logged, task


def test_random_ranker_scores_chance_and_popularity_beats_it(shop_dm: RecDataModule) -> None:
    n_items = shop_dm.dims["n_items"]
    logged, task = _run_test(RandomRanker(n_items), shop_dm)
    per_user = task.per_user["test"]
    users = per_user["user"].to_numpy()
    assert len(users) == shop_dm.protocol()["n_test_users"] > 1000

    # exact expectation: K of the user's candidates (all items minus train + val items) are drawn at random
    seen = ((shop_dm.train_csr + shop_dm.val_csr) > 0).astype(np.int64)
    n_cand = n_items - np.asarray(seen.sum(axis=1)).ravel()[users]
    assert (n_cand > 0).all()
    for k in (10, 20):
        expected = float(np.mean(np.minimum(k, n_cand) / n_cand))
        values = per_user[f"recall@{k}"].to_numpy()
        se = values.std(ddof=1) / np.sqrt(len(values))
        recall = logged[f"test/recall@{k}"]
        assert recall == pytest.approx(values.mean(), abs=1e-6)
        assert abs(recall - expected) < 4 * se, (k, recall, expected, se)

    pop_logged, _ = _run_test(Popularity(n_items), shop_dm)
    values = per_user["recall@10"].to_numpy()
    se = values.std(ddof=1) / np.sqrt(len(values))
    assert pop_logged["test/recall@10"] > logged["test/recall@10"] + 4 * se


def test_full_ranking_metrics_equal_a_dense_numpy_evaluation(shop_dm: RecDataModule) -> None:
    """The cells-based evaluation (excluded and target cells as coordinates) against a from-scratch one:
    dense masks, a stable sort with ties to the lower item index, recall and NDCG by their formulas."""
    n_items = shop_dm.dims["n_items"]
    logged, task = _run_test(Popularity(n_items), shop_dm)
    per_user = task.per_user["test"].set_index("user")
    seen = ((shop_dm.train_csr + shop_dm.val_csr) > 0).toarray()
    target = (shop_dm.test_csr > 0).toarray() & ~seen
    users = np.flatnonzero(target.any(axis=1))
    assert sorted(per_user.index) == users.tolist()
    scores = task.net(torch.as_tensor(users)).numpy().astype(np.float64)  # [U, N]
    scores[seen[users]] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :10]  # [U, 10]: ties to the lower item index
    hits = np.take_along_axis(target[users], top, axis=1)  # [U, 10]
    n_rel = target[users].sum(axis=1)
    disc = 1 / np.log2(np.arange(2, 12))
    idcg = np.array([disc[: min(n, 10)].sum() for n in n_rel])
    np.testing.assert_allclose(per_user.loc[users, "recall@10"], hits.sum(axis=1) / n_rel, rtol=1e-6)
    np.testing.assert_allclose(per_user.loc[users, "ndcg@10"], (hits @ disc) / idcg, rtol=1e-6)
    assert logged["test/ndcg@10"] == pytest.approx(float(np.mean((hits @ disc) / idcg)), rel=1e-6)


# --------------------------------------------------------------------------- sampled evaluation


def test_sampled_evaluation_candidates_are_targets_plus_unseen_negatives() -> None:
    from ecomlab.data.rec_datamodule import RecDataModule
    from ecomlab.data.splits import LeaveOneOutSplit
    from ecomlab.data.synthetic import SyntheticShop

    dm = RecDataModule(SyntheticShop(n_users=120, n_items=150, seed=3), LeaveOneOutSplit(seed=0),
                       eval_negatives=50, seed=7)
    dm.setup()
    assert dm.metric_namespace == "sampled50"
    every = (dm.train_csr + dm.val_csr + dm.test_csr).toarray() > 0
    for batch in map(dm.complete, dm.test_dataloader()):
        candidates = ~batch["exclude"]
        targets = batch["target"]
        assert torch.equal(candidates & targets, targets)  # every target is a candidate
        negatives = candidates & ~targets
        assert (negatives.sum(dim=1) == 50).all()
        users = batch["users"].numpy()
        assert not (negatives.numpy() & every[users]).any(), "a sampled negative is one of the user's positives"
    again = RecDataModule(SyntheticShop(n_users=120, n_items=150, seed=3), LeaveOneOutSplit(seed=0),
                          eval_negatives=50, seed=7)
    again.setup()
    first = dm.complete(next(iter(dm.test_dataloader())))["exclude"]
    assert torch.equal(first, again.complete(next(iter(again.test_dataloader())))["exclude"]), "negatives are seeded"


def test_sampled_metrics_have_their_own_names(compose_cfg) -> None:
    from ecomlab.train import train

    cfg = compose_cfg(["model=bpr", "data=synthetic_shop", "data.source.n_users=100", "data.source.n_items=200",
                       "data.eval_negatives=99", "trainer.max_epochs=2", "data.batch_size=256"])
    record = train(cfg)
    assert record["monitor"] == "val/sampled99/ndcg@10"
    assert "test/sampled99/ndcg@10" in record["metrics"]
    assert not any(k.startswith("test/ndcg") for k in record["metrics"]), "never mixed with full ranking"
    assert record["protocol"]["candidates"].startswith("SAMPLED")
    assert record["checkpoint"], "checkpoint selection follows the namespaced validation metric"


def test_negative_sampler_is_exact_and_uniform_over_each_users_unseen_items() -> None:
    from ecomlab.data.rec_datamodule import NegativeSampler

    rng = np.random.default_rng(0)
    train = sp.random(40, 25, density=0.5, random_state=rng, format="csr")
    train.data[:] = 1.0
    seen = train.toarray() > 0
    neg = NegativeSampler(train, 3000)(torch.arange(40))  # [40, 3000]
    assert not seen[np.arange(40)[:, None], neg.numpy()].any(), "a negative is a training positive"
    for user in (0, 17, 39):
        unseen = np.flatnonzero(~seen[user])
        counts = np.bincount(neg[user].numpy(), minlength=25)[unseen]
        expected = 3000 / len(unseen)
        chi2 = ((counts - expected) ** 2 / expected).sum()
        assert chi2 < 3 * len(unseen) + 30, f"user {user}: counts {counts} far from uniform"


def test_training_batches_cover_each_interaction_once_and_shard_evenly() -> None:
    from ecomlab.data.rec_datamodule import PositiveBatches

    train = sp.random(60, 40, density=0.3, random_state=np.random.default_rng(1), format="csr")

    def keys(batches: Any) -> list[tuple[int, int]]:
        return [(int(u), int(i)) for b in batches for u, i in zip(b["users"], b["pos"], strict=True)]

    epoch0 = keys(PositiveBatches(train, 32, seed=5, epoch=lambda: 0))
    assert sorted(epoch0) == sorted(zip(*train.nonzero(), strict=True))  # every interaction exactly once
    assert keys(PositiveBatches(train, 32, seed=5, epoch=lambda: 0)) == epoch0, "an epoch's order is seeded"
    assert keys(PositiveBatches(train, 32, seed=5, epoch=lambda: 1)) != epoch0, "each epoch reshuffles"

    class Rank(PositiveBatches):  # a distributed run's share, as rank r of 2
        def __init__(self, r: int) -> None:
            super().__init__(train, 32, seed=5, epoch=lambda: 0)
            self.r = r

        def _shards(self) -> tuple[int, int]:
            return self.r, 2

    shares = [list(Rank(r)) for r in (0, 1)]
    assert len(shares[0]) == len(shares[1]) == len(Rank(0)), "every rank steps equally often"
    assert set(keys(shares[0]) + keys(shares[1])) == set(epoch0)


def test_training_windows_limited_to_the_latest_cut_points() -> None:
    dm = ForecastDataModule(RetailSeries(), RollingOrigin(horizon=12, n_windows=3, step=12), season_length=12,
                            batch_size=64, windows_per_epoch=4096, train_window_limit=5)
    dm.setup()
    loader = dm.train_dataloader()
    data = loader.dataset
    latest = dm.train_lengths - 12  # the last admissible cut point of each series
    assert np.bincount(data.series_index).tolist() == [5] * 4
    assert (data.cutoff > latest[data.series_index] - 5).all() and (data.cutoff <= latest[data.series_index]).all()
    batch = next(iter(loader))
    # the targets of every drawn window are the series' real values just before its first evaluation cutoff
    assert batch["outsample_y"].shape == (64, 12) and (batch["insample_mask"].sum(1) > 0).all()
    assert dm.protocol()["train_window_limit"] == 5


def test_series_sampling_weighs_every_series_equally() -> None:
    from test_forecast_pipeline import PanelSource

    rng = np.random.default_rng(0)
    frames = [pd.DataFrame({"unique_id": uid, "ds": pd.date_range("2000-01-01", periods=n, freq="MS"),
                            "y": rng.uniform(1, 2, n)}) for uid, n in (("long", 400), ("short", 40))]
    counts = {}
    for sampling in ("window", "series"):
        pl.seed_everything(0)
        dm = ForecastDataModule(PanelSource(pd.concat(frames)), RollingOrigin(horizon=6, n_windows=1, val_windows=0),
                                season_length=12, batch_size=1000, windows_per_epoch=4000, train_sampling=sampling)
        dm.setup()
        drawn = np.concatenate([b["series_index"].numpy() for b in dm.train_dataloader()])
        counts[sampling] = np.bincount(drawn, minlength=2) / len(drawn)  # series order: long, short
    assert counts["window"][1] < 0.1  # 28 of 416 cut points belong to the short series
    np.testing.assert_allclose(counts["series"], [0.5, 0.5], atol=0.03)


def test_window_sampling_options_are_checked() -> None:
    with pytest.raises(ValueError, match="train_window_limit=0"):
        ForecastDataModule(RetailSeries(), RollingOrigin(horizon=12), season_length=12, train_window_limit=0)
    with pytest.raises(ValueError, match="train_sampling='uniform'"):
        ForecastDataModule(RetailSeries(), RollingOrigin(horizon=12), season_length=12, train_sampling="uniform")


def test_min_train_carves_a_validation_window_out_of_short_series() -> None:
    backtest = RollingOrigin(horizon=18, n_windows=1, val_windows=1, min_train=12)
    val, test = backtest.windows(48)  # M3's shortest monthly series: 48 months
    assert val[0].cutoff == 12 and test[0].cutoff == 30 and backtest.describe()["min_train"] == 12
    with pytest.raises(DataValidationError, match="at least 36 observations"):
        RollingOrigin(horizon=18, n_windows=1, val_windows=1).windows(48)
    with pytest.raises(ValueError, match="min_train"):
        RollingOrigin(horizon=18, min_train=0)


def test_forecast_eval_batch_size_defaults_to_batch_size() -> None:
    common = {"source": RetailSeries(), "backtest": RollingOrigin(horizon=12, n_windows=3, step=12),
              "season_length": 12, "batch_size": 5}
    default = ForecastDataModule(**common)
    default.setup()
    assert [len(b["unique_id"]) for b in default.test_dataloader()] == [5, 5, 2]
    large = ForecastDataModule(**common, eval_batch_size=100)
    large.setup()
    assert [len(b["unique_id"]) for b in large.test_dataloader()] == [12]
    assert next(iter(large.train_dataloader()))["outsample_y"].shape[0] == 5
    with pytest.raises(ValueError, match="eval_batch_size=0"):
        ForecastDataModule(**common, eval_batch_size=0)


def test_csr_entries_with_a_host_count_equal_the_device_count() -> None:
    matrix = sp.random(30, 12, density=0.3, format="csr", random_state=0)
    indptr, indices = torch.as_tensor(matrix.indptr, dtype=torch.long), torch.as_tensor(matrix.indices, dtype=torch.long)
    rows = torch.tensor([4, 0, 29, 4, 17])
    total = int(np.diff(matrix.indptr)[rows.numpy()].sum())
    sized, counted = csr_entries(indptr, indices, rows, total), csr_entries(indptr, indices, rows)
    for a, b in zip(sized, counted, strict=True):
        assert torch.equal(a, b)
    batch_row, cols, counts = sized
    dense = matrix.toarray()[rows.numpy()] != 0
    assert counts.tolist() == dense.sum(1).tolist()
    assert dense[batch_row.numpy(), cols.numpy()].all() and len(cols) == dense.sum()


def test_evaluation_batches_carry_host_cell_counts() -> None:
    dm = RecDataModule(SyntheticShop(n_users=50, n_items=30, seed=0), RatioSplit(seed=0), eval_batch_size=8)
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    n_exclude, n_target = batch["n_cells"]
    done = dm.on_after_batch_transfer(batch, 0)
    assert len(done["exclude_at"][0]) == n_exclude and len(done["target_at"][0]) == n_target
    assert int(done["n_target"].sum()) == n_target


# --------------------------------------------------------------------------- data too small for the protocol


def _files_dm(tmp_path: Path, rows: str, split: Any, **kwargs: Any) -> RecDataModule:
    (tmp_path / "inter.csv").write_text("user_id,item_id,timestamp,weight\n" + rows)
    return RecDataModule(FileSource("inter.csv", data_dir=str(tmp_path)), split, **kwargs)


def test_a_one_row_data_set_is_refused_naming_the_minimum(tmp_path: Path) -> None:
    """The audit's case: one interaction trained nothing and evaluated nobody, and the run exited 0."""
    dm = _files_dm(tmp_path, "1,1,100,1\n", RatioSplit())
    with pytest.raises(DataValidationError) as err:
        dm.setup()
    message = str(err.value)
    for part in ("inter.csv", "too small for its split", "no user has a test item", "at least 3 interactions",
                 "data.split.min_interactions=3", "1 user(s), 1 item(s) and 1 interaction(s), at most 1 per user"):
        assert part in message, message


def test_the_smallest_data_each_split_evaluates(tmp_path: Path) -> None:
    """Just enough passes; one interaction less is refused with the number the message gives."""
    three = "1,1,100,1\n1,2,200,1\n1,3,300,1\n"
    # RatioSplit evaluates users with min_interactions=3; leave-one-out tests a user with 2, validates with 3
    for split, stage in ((RatioSplit(), "test"), (LeaveOneOutSplit(), "val")):
        dm = _files_dm(tmp_path, three, split)
        dm.setup()
        assert len(dm.eval_dataset("val")) == len(dm.eval_dataset("test")) == 1
        with pytest.raises(DataValidationError, match=f"no user has a {stage} item.*at least 3 interactions"):
            _files_dm(tmp_path, three[:20], split).setup()
    # a user whose three interactions are one item has nothing to hold out that was not trained on
    with pytest.raises(DataValidationError, match="no user has a test item"):
        _files_dm(tmp_path, "1,1,100,1\n1,1,200,1\n1,1,300,1\n", RatioSplit()).setup()
    with pytest.raises(DataValidationError, match="test part needs at least 2 distinct items"):
        _files_dm(tmp_path, "1,1,100,1\n2,1,200,1\n", ColdStartItemSplit()).setup()
    late = TemporalSplit(val_start="2030-01-01", test_start="2031-01-01")
    with pytest.raises(DataValidationError, match=r"no user has a test item.*data\.split\.test_start=2031-01-01"):
        _files_dm(tmp_path, three, late).setup()
    early = TemporalSplit(val_start="1960-01-01", test_start="1960-01-02")
    with pytest.raises(DataValidationError, match=r"the train part is empty.*before data\.split\.val_start=1960"):
        _files_dm(tmp_path, three, early).setup()


def test_a_split_without_validation_trains_unmonitored(compose_cfg) -> None:
    """ratios with no validation share: nothing to monitor, so no early stopping (it crashed on the missing
    val metric), and the test metrics of the last epoch."""
    from ecomlab.train import train

    cfg = compose_cfg(["model=bpr", "data=synthetic_shop", "data.source.n_users=40", "data.source.n_items=30",
                       "data.split.ratios=[0.9,0,0.1]", "trainer.max_epochs=1"])
    record = train(cfg)
    assert record["metrics"]["test/ndcg@10"] >= 0 and not any(k.startswith("val/") for k in record["metrics"])
    with pytest.raises(ValueError, match=r"validation and test ratios are both 0"):
        RatioSplit(ratios=(1.0, 0.0, 0.0))


def test_forecast_series_too_short_name_the_backtest_keys(tmp_path: Path) -> None:
    frame = pd.DataFrame({"unique_id": ["a"] * 30 + ["b"], "ds": list(pd.date_range("2020-01-01", periods=30,
                                                                                     freq="MS")) + ["2020-01-01"],
                          "y": np.arange(31.0)})
    frame.to_csv(tmp_path / "sales.csv", index=False)
    dm = ForecastDataModule(SalesFile("sales.csv", data_dir=str(tmp_path)), RollingOrigin(horizon=3, n_windows=2),
                            season_length=12, preprocess=Preprocess(freq="MS"))
    with pytest.raises(DataValidationError) as err:
        dm.setup()
    message = str(err.value)
    for part in ("series 'b' (1 observation(s)) too short", "(1 of 2 series)", "data.backtest.horizon",
                 "data.backtest.n_windows", "data.backtest.min_train", "need length >= 15",
                 "data.preprocess.min_series_length=15"):
        assert part in message, message
