"""Tests for the evaluation protocols in :mod:`ecomlab.data.splits`."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from ecomlab.data.bundle import DataValidationError, build_bundle
from ecomlab.data.splits import (
    BacktestWindow,
    ColdStartItemSplit,
    LeaveOneOutSplit,
    RatioSplit,
    RollingOrigin,
    Split,
    TemporalSplit,
    split_bundle,
)

T0 = 1_600_000_000


def make_frame(n_users: int = 200, seed: int = 0, lo: int = 3, hi: int = 40, n_items: int = 500) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    counts = rng.integers(lo, hi + 1, size=n_users)
    users = np.repeat(np.arange(n_users, dtype=np.int64), counts)
    n = len(users)
    frame = pd.DataFrame({
        "user_id": users,
        "item_id": rng.integers(0, n_items, size=n).astype(np.int64),
        # coarse timestamps so that ties occur
        "timestamp": (T0 + rng.integers(0, 1000, size=n) * 3600).astype(np.int64),
        "weight": np.ones(n),
    })
    frame = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    frame["row_id"] = np.arange(n, dtype=np.int64)
    return frame


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame()


SPLITTERS = [
    pytest.param(lambda seed: RatioSplit(ratios=(0.8, 0.1, 0.1), seed=seed), id="ratio"),
    pytest.param(lambda seed: LeaveOneOutSplit(seed=seed), id="loo"),
    pytest.param(lambda seed: TemporalSplit(ratios=(0.7, 0.15, 0.15)), id="temporal"),
]


def _ids(split: Split) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (split.train["row_id"].to_numpy(), split.val["row_id"].to_numpy(), split.test["row_id"].to_numpy())


# --------------------------------------------------------------------------- shared properties


@pytest.mark.parametrize("make", SPLITTERS)
def test_parts_disjoint_and_cover_input(make, frame: pd.DataFrame) -> None:
    split = make(0)(frame)
    train, val, test = _ids(split)
    all_ids = np.concatenate([train, val, test])
    assert len(all_ids) == len(frame)
    assert len(np.unique(all_ids)) == len(all_ids)  # disjoint
    assert set(all_ids) == set(frame["row_id"])      # union = input
    assert len(train) > 0 and len(val) > 0 and len(test) > 0
    for part in (split.train, split.val, split.test):
        assert list(part.columns) == list(frame.columns)
        assert part.index.equals(pd.RangeIndex(len(part)))
        assert (part.dtypes == frame.dtypes).all()
    # rows are unchanged: re-joining by row id reproduces the input
    joined = pd.concat([split.train, split.val, split.test]).sort_values("row_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(joined, frame.sort_values("row_id").reset_index(drop=True))


@pytest.mark.parametrize("make", SPLITTERS)
def test_deterministic_for_seed(make, frame: pd.DataFrame) -> None:
    a, b = make(0)(frame), make(0)(frame)
    for x, y in zip(_ids(a), _ids(b), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("make", SPLITTERS[:2])
def test_seed_changes_split(make, frame: pd.DataFrame) -> None:
    a, b = make(0)(frame), make(1)(frame)
    assert not np.array_equal(np.sort(_ids(a)[2]), np.sort(_ids(b)[2]))


def test_input_not_modified(frame: pd.DataFrame) -> None:
    before = frame.copy()
    for splitter in (RatioSplit(), LeaveOneOutSplit(), TemporalSplit(ratios=(0.8, 0.1, 0.1))):
        splitter(frame)
    pd.testing.assert_frame_equal(frame, before)


@pytest.mark.parametrize("splitter", [LeaveOneOutSplit(), TemporalSplit(ratios=(0.8, 0.1, 0.1)),
                                      TemporalSplit(val_start="2020-01-01", test_start="2020-06-01")])
def test_needs_timestamps(splitter, frame: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match="needs timestamps; shop has none"):
        splitter(frame, has_timestamps=False, name="shop")


def test_ratio_split_works_without_timestamps(frame: pd.DataFrame) -> None:
    split = RatioSplit()(frame, has_timestamps=False)
    assert len(split.train) + len(split.val) + len(split.test) == len(frame)


def test_split_bundle_uses_bundle_name() -> None:
    raw = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "x"]})
    bundle = build_bundle("tiny", raw)
    assert not bundle.has_timestamps
    with pytest.raises(DataValidationError, match="tiny has none"):
        split_bundle(LeaveOneOutSplit(), bundle)
    split = split_bundle(RatioSplit(min_interactions=1), bundle)
    assert split.sizes()["train"] + split.sizes()["val"] + split.sizes()["test"] == 3


def test_missing_column_raises(frame: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match="missing column"):
        LeaveOneOutSplit()(frame.drop(columns="timestamp"))


# --------------------------------------------------------------------------- RatioSplit


def test_ratio_split_proportions_per_user(frame: pd.DataFrame) -> None:
    split = RatioSplit(ratios=(0.8, 0.1, 0.1), seed=3)(frame)
    n = frame.groupby("user_id").size()
    parts = {k: getattr(split, k).groupby("user_id").size().reindex(n.index, fill_value=0)
             for k in ("train", "val", "test")}
    expected_test = np.maximum(np.floor(n * 0.1 + 0.5), 1)
    np.testing.assert_array_equal(parts["test"].to_numpy(), expected_test.to_numpy())
    np.testing.assert_array_equal(parts["val"].to_numpy(), expected_test.to_numpy())  # same ratio
    assert (parts["train"] >= 1).all()
    assert (parts["train"] + parts["val"] + parts["test"] == n).all()
    share = parts["train"] / n
    assert abs(share.mean() - 0.8) < 0.05
    assert abs(len(split.train) / len(frame) - 0.8) < 0.03


def test_ratio_split_small_users_stay_in_train() -> None:
    frame = pd.DataFrame({"user_id": np.array([0, 0, 1, 1, 1, 2], dtype=np.int64),
                          "item_id": np.arange(6, dtype=np.int64),
                          "timestamp": np.arange(6, dtype=np.int64), "weight": np.ones(6)})
    split = RatioSplit(min_interactions=3)(frame)
    assert set(split.val["user_id"]) | set(split.test["user_id"]) == {1}
    assert sorted(split.train["user_id"]) == [0, 0, 1, 2]
    # min_interactions=1 and a two-row user: train keeps one row, validation gives way to test
    split = RatioSplit(min_interactions=1)(frame)
    per_user = {k: getattr(split, k)["user_id"].value_counts().to_dict() for k in ("train", "val", "test")}
    assert per_user["train"][0] == 1 and per_user["test"][0] == 1 and 0 not in per_user["val"]
    assert per_user["train"][2] == 1 and 2 not in per_user["test"]


def test_ratio_split_zero_val(frame: pd.DataFrame) -> None:
    split = RatioSplit(ratios=(0.8, 0.0, 0.2))(frame)
    assert len(split.val) == 0
    assert list(split.val.columns) == list(frame.columns)
    assert split.test.groupby("user_id").size().min() >= 1


@pytest.mark.parametrize("ratios", [(0.8, 0.1), (0.8, 0.1, 0.2), (1.1, -0.05, -0.05), (0.0, 0.5, 0.5),
                                    (0.5, float("nan"), 0.5), "abc", 3])
def test_ratio_split_bad_ratios(ratios) -> None:
    with pytest.raises(ValueError, match="ratios"):
        RatioSplit(ratios=ratios)
    with pytest.raises(ValueError, match="ratios"):
        TemporalSplit(ratios=ratios)


@pytest.mark.parametrize("kwargs", [{"seed": -1}, {"seed": 1.5}, {"min_interactions": 0}])
def test_ratio_split_bad_args(kwargs) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RatioSplit(**kwargs)


def test_ratio_split_accepts_list_ratios_and_describes() -> None:
    splitter = RatioSplit(ratios=[0.7, 0.1, 0.2], seed=4)
    assert splitter.describe() == {"split": "ratio", "ratios": [0.7, 0.1, 0.2], "seed": 4, "min_interactions": 3}


def test_ratio_split_is_fast() -> None:
    big = make_frame(n_users=5000, seed=1, lo=3, hi=40, n_items=5000)  # ~100k rows
    assert len(big) > 90_000
    start = time.perf_counter()
    split = RatioSplit()(big)
    assert time.perf_counter() - start < 1.0
    assert len(split.train) + len(split.val) + len(split.test) == len(big)
    start = time.perf_counter()
    LeaveOneOutSplit()(big)
    assert time.perf_counter() - start < 1.0


# --------------------------------------------------------------------------- TemporalSplit


def _check_time_order(split: Split, val_start: int, test_start: int) -> None:
    assert split.train["timestamp"].max() < split.val["timestamp"].min()
    assert split.val["timestamp"].max() < split.test["timestamp"].min()
    assert (split.train["timestamp"] < val_start).all()
    assert split.val["timestamp"].between(val_start, test_start - 1).all()
    assert (split.test["timestamp"] >= test_start).all()


def test_temporal_split_ratios(frame: pd.DataFrame) -> None:
    split = TemporalSplit(ratios=(0.8, 0.1, 0.1))(frame)
    p = split.protocol
    assert p["split"] == "temporal" and p["ratios"] == [0.8, 0.1, 0.1]
    _check_time_order(split, p["val_start"], p["test_start"])
    assert abs(len(split.train) / len(frame) - 0.8) < 0.02
    assert abs(len(split.test) / len(frame) - 0.1) < 0.02
    # new users/items after the cut-off are kept, not dropped
    assert len(split.train) + len(split.val) + len(split.test) == len(frame)


def test_temporal_split_explicit_cutoffs(frame: pd.DataFrame) -> None:
    val_start, test_start = T0 + 600 * 3600, T0 + 800 * 3600
    by_int = TemporalSplit(val_start=val_start, test_start=test_start)(frame)
    _check_time_order(by_int, val_start, test_start)
    iso_val = pd.Timestamp(val_start, unit="s", tz="UTC").isoformat()
    iso_test = pd.Timestamp(test_start, unit="s").strftime("%Y-%m-%d %H:%M:%S")  # naive -> UTC
    by_iso = TemporalSplit(val_start=iso_val, test_start=iso_test)(frame)
    for x, y in zip(_ids(by_int), _ids(by_iso), strict=True):
        np.testing.assert_array_equal(x, y)
    assert by_iso.protocol["val_start"] == val_start and by_iso.protocol["test_start"] == test_start


def test_temporal_split_iso_date() -> None:
    splitter = TemporalSplit(val_start="2020-01-01", test_start="2020-02-01")
    assert splitter.val_start == 1577836800
    assert splitter.test_start == 1577836800 + 31 * 86400


def test_temporal_split_equal_cutoffs_empty_val(frame: pd.DataFrame) -> None:
    cut = T0 + 700 * 3600
    split = TemporalSplit(val_start=cut, test_start=cut)(frame)
    assert len(split.val) == 0 and len(split.test) > 0


@pytest.mark.parametrize("kwargs", [
    {"val_start": "2020-03-01", "test_start": "2020-01-01"},
    {"val_start": 200, "test_start": 100},
    {"val_start": "2020-01-01"},
    {},
    {"val_start": 1, "test_start": 2, "ratios": (0.8, 0.1, 0.1)},
    {"val_start": "not a date", "test_start": "2020-01-01"},
])
def test_temporal_split_bad_args(kwargs) -> None:
    with pytest.raises(ValueError):
        TemporalSplit(**kwargs)


def test_temporal_split_val_after_test_message() -> None:
    with pytest.raises(ValueError, match="val_start.*after.*test_start"):
        TemporalSplit(val_start=200, test_start=100)


# --------------------------------------------------------------------------- LeaveOneOutSplit


def test_leave_one_out_latest_held_out(frame: pd.DataFrame) -> None:
    split = LeaveOneOutSplit(seed=0)(frame)
    latest = frame.groupby("user_id")["timestamp"].max()
    n = frame.groupby("user_id").size()
    assert split.test["user_id"].is_unique and split.val["user_id"].is_unique
    assert set(split.test["user_id"]) == set(n.index[n >= 2])
    assert set(split.val["user_id"]) == set(n.index[n >= 3])
    test_ts = split.test.set_index("user_id")["timestamp"]
    assert (test_ts == latest.loc[test_ts.index]).all()
    # val is the latest among what is left, and train is never later than val
    val_ts = split.val.set_index("user_id")["timestamp"]
    train_max = split.train.groupby("user_id")["timestamp"].max()
    assert (train_max.loc[val_ts.index] <= val_ts).all()
    assert (val_ts <= test_ts.loc[val_ts.index]).all()


def test_leave_one_out_small_users_and_no_val() -> None:
    frame = pd.DataFrame({"user_id": np.array([0, 1, 1, 2, 2, 2], dtype=np.int64),
                          "item_id": np.arange(6, dtype=np.int64),
                          "timestamp": np.array([5, 1, 2, 1, 3, 2], dtype=np.int64), "weight": np.ones(6)})
    split = LeaveOneOutSplit()(frame)
    assert split.train["item_id"].tolist() == [0, 1, 3]
    assert split.val["item_id"].tolist() == [5]
    assert split.test["item_id"].tolist() == [2, 4]
    split = LeaveOneOutSplit(val=False)(frame)
    assert len(split.val) == 0
    assert split.test["item_id"].tolist() == [2, 4]
    assert split.train["item_id"].tolist() == [0, 1, 3, 5]


def test_leave_one_out_ties_broken_by_seed() -> None:
    n = 50
    frame = pd.DataFrame({"user_id": np.zeros(n, dtype=np.int64), "item_id": np.arange(n, dtype=np.int64),
                          "timestamp": np.full(n, T0, dtype=np.int64), "weight": np.ones(n)})
    held = {int(LeaveOneOutSplit(seed=s)(frame).test["item_id"].iloc[0]) for s in range(10)}
    assert len(held) > 1
    assert LeaveOneOutSplit(seed=3)(frame).test.equals(LeaveOneOutSplit(seed=3)(frame).test)


def test_leave_one_out_bad_args() -> None:
    with pytest.raises(ValueError, match="seed"):
        LeaveOneOutSplit(seed=-2)
    with pytest.raises(ValueError, match="val"):
        LeaveOneOutSplit(val="yes")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- RollingOrigin


def test_rolling_origin_hand_example() -> None:
    ro = RollingOrigin(horizon=3, n_windows=2, step=3, val_windows=1)
    val, test = ro.windows(24)
    assert [w.cutoff for w in test] == [18, 21]
    assert [w.cutoff for w in val] == [15]
    assert [w.index for w in test] == [0, 1] and [w.index for w in val] == [0]
    assert test[-1].end == 24
    assert test[0] == BacktestWindow(index=0, cutoff=18, horizon=3)
    y = np.arange(24)
    assert y[test[0].train_slice].tolist() == list(range(18))
    assert y[test[0].future_slice].tolist() == [18, 19, 20]
    assert ro.describe() == {"split": "rolling_origin", "horizon": 3, "n_windows": 2, "step": 3,
                             "val_windows": 1, "min_train": 6}


def test_rolling_origin_defaults_and_overlap() -> None:
    val, test = RollingOrigin(horizon=4).windows(40)
    assert [w.cutoff for w in test] == [28, 32, 36]
    assert [w.cutoff for w in val] == [24]
    val, test = RollingOrigin(horizon=4, n_windows=3, step=1, val_windows=2).windows(30)
    assert [w.cutoff for w in test] == [24, 25, 26]
    assert [w.cutoff for w in val] == [22, 23]
    val, test = RollingOrigin(horizon=2, n_windows=1, val_windows=0).windows(10)
    assert val == [] and [w.cutoff for w in test] == [8]


def test_rolling_origin_minimum_length() -> None:
    ro = RollingOrigin(horizon=3, n_windows=2, step=3, val_windows=1)
    assert ro.min_length() == 6 + 3 + 3 + 3
    val, _ = ro.windows(15)
    assert val[0].cutoff == 6  # exactly min_train of history
    with pytest.raises(DataValidationError, match="length 14.*need length >= 15"):
        ro.windows(14)
    with pytest.raises(DataValidationError, match="too short"):
        RollingOrigin(horizon=1, n_windows=1, val_windows=0).windows(4)  # min_train is 4 -> needs 5
    assert RollingOrigin(horizon=1, n_windows=1, val_windows=0).windows(5)[1][0].cutoff == 4


@pytest.mark.parametrize("kwargs", [
    {"horizon": 0}, {"horizon": 2, "n_windows": 0}, {"horizon": 2, "step": 0},
    {"horizon": 2, "val_windows": -1}, {"horizon": 2.5}, {"horizon": True},
])
def test_rolling_origin_bad_args(kwargs) -> None:
    with pytest.raises(ValueError):
        RollingOrigin(**kwargs)


def test_rolling_origin_bad_length() -> None:
    with pytest.raises(ValueError, match="series_length"):
        RollingOrigin(horizon=2).windows(-1)


# --------------------------------------------------------------------------- cold-start items


@pytest.mark.parametrize("seed", [0, 1])
def test_cold_start_items_are_disjoint_and_keep_all_their_interactions(frame: pd.DataFrame, seed: int) -> None:
    split = ColdStartItemSplit(ratios=(0.7, 0.15, 0.15), seed=seed)(frame)
    train, val, test = _ids(split)
    assert len(train) + len(val) + len(test) == len(frame)
    assert len(np.unique(np.concatenate([train, val, test]))) == len(frame)  # each row in exactly one part
    parts = {"train": split.train, "val": split.val, "test": split.test}
    items = {name: set(part["item_id"]) for name, part in parts.items()}
    assert items["train"].isdisjoint(items["val"]) and items["train"].isdisjoint(items["test"])
    assert items["val"].isdisjoint(items["test"])
    assert items["train"] | items["val"] | items["test"] == set(frame["item_id"])
    counts = frame.groupby("item_id").size()
    for part in parts.values():  # every interaction of a part's item is in that part
        assert (part.groupby("item_id").size() == counts.loc[part["item_id"].unique()].sort_index()).all()
    # the ratios count items, not interactions
    n = frame["item_id"].nunique()
    assert len(items["test"]) == int(np.floor(n * 0.15 + 0.5)) == split.protocol["n_items_test"]
    assert len(items["val"]) == int(np.floor(n * 0.15 + 0.5)) == split.protocol["n_items_val"]
    for part in parts.values():
        assert list(part.columns) == list(frame.columns) and part.index.equals(pd.RangeIndex(len(part)))


def test_cold_start_split_is_seeded_and_ignores_row_order(frame: pd.DataFrame) -> None:
    a = ColdStartItemSplit(seed=3)(frame)
    b = ColdStartItemSplit(seed=3)(frame.sample(frac=1.0, random_state=7), has_timestamps=False)
    assert set(a.test["item_id"]) == set(b.test["item_id"]) and set(a.val["item_id"]) == set(b.val["item_id"])
    c = ColdStartItemSplit(seed=4)(frame)
    assert set(a.test["item_id"]) != set(c.test["item_id"])


def test_cold_start_split_describe_and_small_inputs() -> None:
    splitter = ColdStartItemSplit(ratios=[0.8, 0.1, 0.1], seed=2)
    assert splitter.describe() == {"split": "cold_start_item", "ratios": [0.8, 0.1, 0.1], "seed": 2}
    tiny = pd.DataFrame({"user_id": [0, 0, 1, 1], "item_id": [5, 6, 6, 7]})
    split = splitter(tiny, has_timestamps=False, name="tiny")
    assert [split.protocol[f"n_items_{k}"] for k in ("train", "val", "test")] == [1, 1, 1]
    two = splitter(tiny[tiny["item_id"] != 7], name="two")  # train keeps one item, validation shrinks first
    assert [two.protocol[f"n_items_{k}"] for k in ("train", "val", "test")] == [1, 0, 1]
    with pytest.raises(ValueError, match="ratios"):
        ColdStartItemSplit(ratios=(0.5, 0.5))
    with pytest.raises(DataValidationError, match="empty has no interactions"):
        splitter(tiny.iloc[:0], name="empty")


def test_cold_start_split_ranks_held_out_items_and_content_beats_chance(compose_cfg) -> None:
    from ecomlab.train import train

    common = ["data=synthetic_shop", "data.source.n_users=300", "data.source.n_items=400", "data.source.language=en",
              "data.split._target_=ecomlab.data.splits.ColdStartItemSplit", "data.batch_size=256"]
    tfidf = train(compose_cfg(["model=tfidf", *common]))
    protocol = tfidf["protocol"]
    assert protocol["split"]["split"] == "cold_start_item"
    assert protocol["candidates"].startswith("held-out items of the split only")
    assert protocol["n_val_users"] > 0 and protocol["n_test_users"] > 0
    assert protocol["split"]["n_items_test"] == 40 and protocol["split"]["n_items_val"] == 40
    random = train(compose_cfg(["model=random", *common]))
    popularity = train(compose_cfg(["model=popularity", *common]))
    # Only content reaches a cold item: TF-IDF must beat chance; popularity has no signal on unseen items.
    assert tfidf["metrics"]["test/ndcg@10"] > 1.5 * random["metrics"]["test/ndcg@10"]
    assert popularity["metrics"]["test/coverage@10"] <= 10 / 400 + 1e-9
