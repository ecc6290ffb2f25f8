"""Preprocessing (:mod:`ecomlab.data.preprocess`): filters, k-core fixed point, duplicates, sales checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecomlab.data.bundle import DatasetBundle, DataValidationError, IdMap, build_bundle
from ecomlab.data.preprocess import Preprocess, infer_panel_freq
from ecomlab.data.synthetic import SyntheticShop


def _bundle(rows: list[tuple], *, text: dict | None = None, social: list[tuple] | None = None,
            sales: pd.DataFrame | None = None, name: str = "tiny") -> DatasetBundle:
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "weight"][: len(rows[0])])
    item_text = None if text is None else pd.DataFrame({"item_id": list(text), "text": list(text.values())})
    soc = None if social is None else pd.DataFrame(social, columns=["user_id", "friend_id"])
    return build_bundle(name, inter, item_text=item_text, social=soc, sales=sales)


def _raw_rows(bundle: DatasetBundle) -> list[tuple]:
    """Interactions in raw ids, so results are checked independently of the re-indexing."""
    inter = bundle.interactions
    return list(zip(bundle.user_map.to_raw(inter["user_id"]).tolist(), bundle.item_map.to_raw(inter["item_id"]).tolist(),
                    inter["timestamp"].tolist(), inter["weight"].tolist(), strict=True))


def _panel(spec: dict[str, pd.DatetimeIndex]) -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"unique_id": uid, "ds": ds, "y": np.arange(len(ds), dtype=float)})
                      for uid, ds in spec.items()], ignore_index=True)


def _sales_bundle(spec: dict[str, pd.DatetimeIndex], name: str = "panel") -> DatasetBundle:
    return build_bundle(name, None, sales=_panel(spec))


# --------------------------------------------------------------------------- settings


def test_defaults_change_nothing_but_record_counts() -> None:
    bundle = SyntheticShop(n_users=60, n_items=40, seed=1).load()
    out = Preprocess()(bundle)
    pd.testing.assert_frame_equal(out.interactions, bundle.interactions)
    pd.testing.assert_frame_equal(out.item_text, bundle.item_text)
    pd.testing.assert_frame_equal(out.social, bundle.social)
    assert out.fingerprint() == bundle.fingerprint()
    rec = out.meta["preprocess"]
    assert rec["settings"] == Preprocess().describe()
    assert rec["before"] == rec["after"]
    assert rec["after"]["n_interactions"] == len(bundle.interactions)
    assert out.meta["freq"] == "D"
    assert "preprocess" not in bundle.meta  # the input bundle is left alone


def test_describe_lists_every_setting() -> None:
    p = Preprocess(rating_threshold=4, binarize=True, user_k_core=5, item_k_core=3, duplicates="sum",
                   min_series_length=24, freq="MS", fill_gaps="nan", drop_irregular=True)
    assert p.describe() == {"rating_threshold": 4.0, "binarize": True, "user_k_core": 5, "item_k_core": 3,
                            "duplicates": "sum", "min_series_length": 24, "freq": "MS", "fill_gaps": "nan",
                            "drop_irregular": True}
    # the gap settings at their defaults are left out, so regular panels keep their records and cache keys
    assert set(Preprocess().describe()) == {"rating_threshold", "binarize", "user_k_core", "item_k_core",
                                            "duplicates", "min_series_length", "freq"}


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"duplicates": "first"}, "duplicates='first'"),
    ({"user_k_core": -1}, "user_k_core=-1"),
    ({"item_k_core": 2.5}, "item_k_core=2.5"),
    ({"min_series_length": True}, "min_series_length=True"),
    ({"rating_threshold": float("nan")}, "rating_threshold=nan"),
    ({"rating_threshold": "4"}, "rating_threshold='4'"),
    ({"freq": "fortnightly"}, "not a pandas frequency"),
    ({"fill_gaps": "interpolate"}, "fill_gaps='interpolate'; expected one of"),
    ({"drop_irregular": "yes"}, "drop_irregular='yes'; expected true or false"),
])
def test_bad_settings_are_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Preprocess(**kwargs)


# --------------------------------------------------------------------------- threshold and binarize


def test_rating_threshold_keeps_weights_at_or_above_it() -> None:
    rows = [("u1", "a", 1, 5.0), ("u1", "b", 2, 3.0), ("u2", "a", 3, 4.0), ("u2", "c", 4, 2.0), ("u3", "c", 5, 1.0)]
    out = Preprocess(rating_threshold=4.0)(_bundle(rows))
    assert sorted(_raw_rows(out)) == [("u1", "a", 1, 5.0), ("u2", "a", 3, 4.0)]
    assert out.meta["preprocess"]["steps"]["rating_threshold_dropped"] == 3
    # u3 and items b, c have nothing left: they leave the id maps
    assert out.user_map.raw.tolist() == ["u1", "u2"] and out.item_map.raw.tolist() == ["a"]


def test_binarize_sets_weights_to_one() -> None:
    rows = [("u1", "a", 1, 5.0), ("u1", "b", 2, 3.0), ("u2", "a", 3, 4.5)]
    out = Preprocess(rating_threshold=4.0, binarize=True)(_bundle(rows))
    assert out.interactions["weight"].tolist() == [1.0, 1.0]
    assert out.interactions["weight"].dtype == np.float64


# --------------------------------------------------------------------------- k-core


def _single_pass(frame: pd.DataFrame, user_k: int, item_k: int) -> pd.DataFrame:
    u = frame.groupby("user_id")["item_id"].transform("size")
    i = frame.groupby("item_id")["user_id"].transform("size")
    return frame[(u >= user_k) & (i >= item_k)]


def test_k_core_reaches_the_fixed_point_where_one_pass_does_not() -> None:
    # 2-core. Pass 1 drops only (C, z) (z has one user). That leaves C with one row, so pass 2 drops (C, y),
    # which leaves y with one user: pass 3 drops (A, y), leaving A with one row: pass 4 drops (A, x).
    # Pass 5 finds nothing more to drop.
    rows = [("A", "x", 1), ("A", "y", 2), ("B", "x", 3), ("B", "w", 4), ("D", "x", 5), ("D", "w", 6),
            ("C", "y", 7), ("C", "z", 8)]
    bundle = _bundle(rows)
    one_pass = _single_pass(bundle.interactions, 2, 2)
    assert len(one_pass) == 7  # only (C, z) went: a single pass is not a 2-core
    out = Preprocess(user_k_core=2, item_k_core=2)(bundle)
    kept = sorted((u, i) for u, i, _, _ in _raw_rows(out))
    assert kept == [("B", "w"), ("B", "x"), ("D", "w"), ("D", "x")]
    assert out.user_map.raw.tolist() == ["B", "D"]
    assert out.item_map.raw.tolist() == ["w", "x"]
    steps = out.meta["preprocess"]["steps"]
    assert steps["k_core_dropped"] == 4 and steps["k_core_iterations"] == 5
    users = out.interactions.groupby("user_id").size()
    items = out.interactions.groupby("item_id").size()
    assert users.min() >= 2 and items.min() >= 2


def _reference_k_core(rows: list[tuple], user_k: int, item_k: int) -> set[tuple]:
    """Plain-Python k-core: remove one offending row set at a time until nothing changes."""
    kept = set(rows)
    while True:
        u_count: dict = {}
        i_count: dict = {}
        for u, i, *_ in kept:
            u_count[u] = u_count.get(u, 0) + 1
            i_count[i] = i_count.get(i, 0) + 1
        bad = {r for r in kept if u_count[r[0]] < user_k or i_count[r[1]] < item_k}
        if not bad:
            return kept
        kept -= bad


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_k_core_matches_a_plain_python_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    rows = sorted({(f"u{u}", f"i{i}", int(t)) for u, i, t in zip(
        rng.zipf(1.6, n) % 60, rng.zipf(1.4, n) % 80, rng.integers(0, 10**6, n), strict=True)})
    out = Preprocess(user_k_core=3, item_k_core=4)(_bundle(rows))
    got = {(u, i, t) for u, i, t, _ in _raw_rows(out)}
    assert got == _reference_k_core(rows, 3, 4)
    assert out.interactions.groupby("user_id").size().min() >= 3
    assert out.interactions.groupby("item_id").size().min() >= 4


# --------------------------------------------------------------------------- duplicates


def _dup_bundle() -> DatasetBundle:
    # repeated pairs at distinct timestamps (build_bundle itself drops repeats at the same timestamp)
    rows = [("u1", "a", 30, 1.0), ("u1", "a", 10, 2.0), ("u1", "b", 5, 1.0), ("u2", "a", 7, 4.0),
            ("u1", "a", 20, 3.0), ("u2", "a", 9, 5.0)]
    return _bundle(rows)


def test_duplicates_keep_all_is_unchanged() -> None:
    bundle = _dup_bundle()
    out = Preprocess(duplicates="keep_all")(bundle)
    pd.testing.assert_frame_equal(out.interactions, bundle.interactions)


def test_duplicates_keep_last_keeps_the_latest_row_in_place() -> None:
    out = Preprocess(duplicates="keep_last")(_dup_bundle())
    assert _raw_rows(out) == [("u1", "a", 30, 1.0), ("u1", "b", 5, 1.0), ("u2", "a", 9, 5.0)]
    assert out.meta["preprocess"]["steps"]["duplicates_merged"] == 3


def test_duplicates_sum_adds_weights_and_keeps_the_latest_timestamp() -> None:
    out = Preprocess(duplicates="sum")(_dup_bundle())
    assert _raw_rows(out) == [("u1", "a", 30, 6.0), ("u1", "b", 5, 1.0), ("u2", "a", 9, 9.0)]


def test_duplicates_with_equal_timestamps_prefer_the_later_row() -> None:
    # build_bundle drops repeats at one timestamp, but a bundle made by hand (or without timestamps, all 0) may
    # still hold them: "latest" then falls back to row order
    inter = pd.DataFrame({"user_id": np.array([0, 0, 0]), "item_id": np.array([0, 1, 0]),
                          "timestamp": np.zeros(3, dtype=np.int64), "weight": [2.0, 1.0, 7.0]})
    bundle = DatasetBundle("tiny", inter, IdMap(np.array(["u1"], dtype=object)),
                           IdMap(np.array(["a", "b"], dtype=object)), has_timestamps=False)
    last = Preprocess(duplicates="keep_last")(bundle)
    assert [(u, i, w) for u, i, _, w in _raw_rows(last)] == [("u1", "b", 1.0), ("u1", "a", 7.0)]
    total = Preprocess(duplicates="sum")(bundle)
    assert [(u, i, w) for u, i, _, w in _raw_rows(total)] == [("u1", "b", 1.0), ("u1", "a", 9.0)]
    assert not total.has_timestamps


def test_threshold_applies_after_duplicates_are_merged() -> None:
    rows = [("u1", "a", 1, 5.0), ("u1", "a", 2, 2.0), ("u2", "a", 1, 2.0), ("u2", "a", 2, 2.0)]
    # keep_last: u1's latest rating of a is 2 -> dropped; sum: both pairs reach 4 -> kept
    with pytest.raises(DataValidationError, match="rating_threshold"):
        Preprocess(duplicates="keep_last", rating_threshold=4)(_bundle(rows))
    out = Preprocess(duplicates="sum", rating_threshold=4)(_bundle(rows))
    assert sorted(_raw_rows(out)) == [("u1", "a", 2, 7.0), ("u2", "a", 2, 4.0)]


# --------------------------------------------------------------------------- re-indexing


def test_reindex_keeps_raw_ids_and_filters_text_and_social() -> None:
    rows = [(10, 100, 1), (10, 101, 2), (11, 100, 3), (11, 101, 4), (12, 102, 5), (13, 100, 6), (13, 101, 7)]
    text = {100: "red shoe", 101: "blue shoe", 102: "green hat"}
    social = [(10, 11), (11, 12), (12, 13), (13, 10), (11, 13)]
    bundle = _bundle(rows, text=text, social=social)
    out = Preprocess(user_k_core=2, item_k_core=2)(bundle)
    # user 12 and item 102 leave; indices stay contiguous and in raw order
    assert out.user_map.raw.tolist() == [10, 11, 13] and out.user_map.raw.dtype == np.int64
    assert out.item_map.raw.tolist() == [100, 101]
    assert out.n_users == 3 and out.n_items == 2
    assert set(out.interactions["user_id"]) == {0, 1, 2} and set(out.interactions["item_id"]) == {0, 1}
    assert sorted((u, i) for u, i, _, _ in _raw_rows(out)) == sorted(
        (u, i) for u, i, _ in rows if u != 12 and i != 102)
    # item text follows its item
    assert out.texts() == ["red shoe", "blue shoe"]
    assert out.item_text["item_id"].dtype == np.int64
    # social edges touching user 12 are gone; the others map to the new indices
    edges = sorted(zip(out.user_map.to_raw(out.social["user_id"]).tolist(),
                       out.user_map.to_raw(out.social["friend_id"]).tolist(), strict=True))
    assert edges == [(10, 11), (11, 13), (13, 10)]
    steps = out.meta["preprocess"]["steps"]
    assert steps["item_text_dropped"] == 1 and steps["social_dropped"] == 2


def test_reindex_subsets_index_aligned_meta() -> None:
    bundle = SyntheticShop(n_users=80, n_items=60, seed=3).load()
    out = Preprocess(user_k_core=20, item_k_core=8)(bundle)
    assert out.n_items < bundle.n_items and out.n_users < bundle.n_users
    kept_items = bundle.item_map.to_index(out.item_map.raw)
    kept_users = bundle.user_map.to_index(out.user_map.raw)
    assert out.meta["item_category"] == [bundle.meta["item_category"][i] for i in kept_items]
    assert out.meta["user_taste"] == [bundle.meta["user_taste"][u] for u in kept_users]
    assert len(bundle.meta["item_category"]) == bundle.n_items  # input untouched
    # text still describes the same items
    old_text = dict(zip(bundle.item_text["item_id"], bundle.item_text["text"], strict=True))
    for new_i, text in zip(out.item_text["item_id"], out.item_text["text"], strict=True):
        assert old_text[kept_items[new_i]] == text


# --------------------------------------------------------------------------- empty results


def test_threshold_that_empties_the_data_names_dataset_and_filter() -> None:
    with pytest.raises(DataValidationError,
                       match=r"my_shop: no interactions left after data\.preprocess\.rating_threshold=9"):
        Preprocess(rating_threshold=9)(_bundle([("u", "i", 1, 5.0)], name="my_shop"))


def test_k_core_that_empties_the_data_names_dataset_and_filter() -> None:
    bundle = SyntheticShop(n_users=30, n_items=20, seed=0).load()
    with pytest.raises(DataValidationError, match="synthetic_shop: no interactions left after the k-core filter"):
        Preprocess(user_k_core=10_000)(bundle)


# --------------------------------------------------------------------------- sales


def test_min_series_length_drops_and_counts_short_series() -> None:
    bundle = _sales_bundle({"long_a": pd.date_range("2020-01-01", periods=12, freq="MS"),
                            "short": pd.date_range("2020-01-01", periods=4, freq="MS"),
                            "long_b": pd.date_range("2019-06-01", periods=20, freq="MS")})
    out = Preprocess(min_series_length=6)(bundle)
    assert sorted(out.sales["unique_id"].unique()) == ["long_a", "long_b"]
    steps = out.meta["preprocess"]["steps"]
    assert steps["short_series_dropped"] == 1 and steps["short_series"] == ["short"]
    assert out.meta["preprocess"]["before"]["n_series"] == 3 and out.meta["preprocess"]["after"]["n_series"] == 2
    assert out.meta["freq"] == "MS"
    with pytest.raises(DataValidationError,
                       match=r"panel: no sales series left after data\.preprocess\.min_series_length=50"):
        Preprocess(min_series_length=50)(bundle)


@pytest.mark.parametrize("freq", ["MS", "D", "W-SUN", "QS-JAN", "h"])
def test_freq_is_inferred_per_panel(freq: str) -> None:
    series = {"a": pd.date_range("2020-01-05", periods=10, freq=freq),
              "b": pd.date_range("2021-03-01", periods=7, freq=freq)}
    inferred = Preprocess()(_sales_bundle(series)).meta["freq"]
    # pandas may name an equivalent anchor (quarter starts in Jan/Apr/Jul/Oct: QS-JAN or QS-OCT, by version):
    # the inferred frequency must regenerate every series
    for dates in series.values():
        assert pd.date_range(dates[0], periods=len(dates), freq=inferred).equals(dates), (freq, inferred)


def test_retail_series_is_monthly() -> None:
    from ecomlab.data.builtin import RetailSeries

    assert Preprocess()(RetailSeries(series=("a10", "h02")).load()).meta["freq"] == "MS"


def test_a_series_with_a_gap_is_named_with_its_first_gap() -> None:
    gappy = pd.date_range("2020-01-01", periods=12, freq="MS").delete([5, 9])  # June and October missing
    bundle = _sales_bundle({"fine": pd.date_range("2020-01-01", periods=12, freq="MS"), "gappy": gappy})
    with pytest.raises(DataValidationError, match=r"panel: 1 of 2 sales series is not regular at freq 'MS' "
                                                  r"\('gappy'\); sales series 'gappy' is not regular at freq 'MS': "
                                                  r"first gap after 2020-05-01 .*next observation is 2020-07-01, "
                                                  r"expected 2020-06-01.*fill_gaps=zero, ffill or nan.*"
                                                  r"drop_irregular=true"):
        Preprocess()(bundle)


def test_an_irregular_panel_without_a_regular_series_still_names_the_gap() -> None:
    days = pd.DatetimeIndex(["2021-01-04", "2021-01-05", "2021-01-06", "2021-01-07", "2021-01-09", "2021-01-10"])
    with pytest.raises(DataValidationError, match=r"'shop' is not regular at freq 'D': first gap after 2021-01-07"):
        Preprocess()(_sales_bundle({"shop": days}))


def test_series_that_disagree_on_frequency_are_refused() -> None:
    bundle = _sales_bundle({"monthly": pd.date_range("2020-01-01", periods=12, freq="MS"),
                            "daily": pd.date_range("2020-01-01", periods=12, freq="D")})
    with pytest.raises(DataValidationError, match=r"disagree on their frequency \(D: \['daily'\]; MS: \['monthly'\]\)"):
        Preprocess()(bundle)


def test_given_freq_is_checked_not_inferred() -> None:
    weekly = {"a": pd.date_range("2020-01-05", periods=8, freq="W-SUN")}
    assert Preprocess(freq="W")(_sales_bundle(weekly)).meta["freq"] == "W-SUN"
    with pytest.raises(DataValidationError, match="'a' is not regular at freq 'D'"):
        Preprocess(freq="D")(_sales_bundle(weekly))


def test_short_series_are_checked_against_the_panel_freq() -> None:
    ok = {"long": pd.date_range("2020-01-01", periods=6, freq="MS"),
          "two": pd.DatetimeIndex(["2020-01-01", "2020-02-01"])}
    assert infer_panel_freq(_panel(ok)) == "MS"
    bad = {**ok, "two": pd.DatetimeIndex(["2020-01-01", "2020-03-01"])}
    with pytest.raises(DataValidationError, match="'two' is not regular"):
        infer_panel_freq(_panel(bad), name="panel")
    with pytest.raises(DataValidationError, match="every series has fewer than 3 observations"):
        infer_panel_freq(_panel({"two": ok["two"]}))
