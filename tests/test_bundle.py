"""The data contract's validation policy (see :mod:`ecomlab.data.bundle`), exercised on real files.

Every test writes CSV / parquet files into ``tmp_path`` and loads them with :class:`FileSource`, so the
whole path (reading, validation, id remapping) runs as it does for a user's own data. Row numbers in
error messages are 0-based data rows (the header is not counted).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecomlab.data.builtin import FileSource
from ecomlab.data.bundle import INTERACTION_COLUMNS, DatasetBundle, DataValidationError, DataWarning

HEADER = "user_id,item_id,timestamp,weight\n"
GOOD_ROWS = "u1,i1,100,1\nu1,i2,200,2\nu2,i1,300,1\nu3,i3,400,5\n"


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, interactions: str = "inter.csv", **kwargs: str) -> DatasetBundle:
    return FileSource(interactions, data_dir=str(tmp_path), **kwargs).load()


def load_error(tmp_path: Path, *fragments: str, interactions: str = "inter.csv", **kwargs: str) -> str:
    """Load, expect exactly a DataValidationError, check that its message holds every fragment."""
    with pytest.raises(DataValidationError) as info:
        load(tmp_path, interactions, **kwargs)
    assert type(info.value) is DataValidationError
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def load_quietly(tmp_path: Path, **kwargs: str) -> DatasetBundle:
    """Load, turning any DataWarning into an error (clean data drops nothing)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        return load(tmp_path, **kwargs)


# --------------------------------------------------------------------------- a clean file


def test_clean_csv_matches_the_contract(tmp_path: Path) -> None:
    path = write(tmp_path, "inter.csv", HEADER + GOOD_ROWS)
    bundle = load_quietly(tmp_path)
    inter = bundle.interactions
    assert tuple(inter.columns) == INTERACTION_COLUMNS
    assert [str(inter[c].dtype) for c in INTERACTION_COLUMNS] == ["int64", "int64", "int64", "float64"]
    assert inter["user_id"].tolist() == [0, 0, 1, 2]
    assert inter["item_id"].tolist() == [0, 1, 0, 2]
    assert inter["timestamp"].tolist() == [100, 200, 300, 400]
    assert inter["weight"].tolist() == [1.0, 2.0, 1.0, 5.0]
    assert (bundle.n_users, bundle.n_items) == (3, 3)
    assert bundle.has_timestamps
    assert bundle.meta["files"] == {"interactions": str(path)}
    assert "warnings" not in bundle.meta


def test_optional_weight_and_timestamp_columns(tmp_path: Path) -> None:
    write(tmp_path, "inter.csv", "user_id,item_id\nu1,i1\nu2,i2\n")
    bundle = load_quietly(tmp_path)
    assert bundle.interactions["weight"].tolist() == [1.0, 1.0]
    assert not bundle.has_timestamps


def test_tsv_and_parquet_give_the_same_bundle_as_csv(tmp_path: Path) -> None:
    write(tmp_path, "inter.csv", HEADER + GOOD_ROWS)
    write(tmp_path, "inter.tsv", (HEADER + GOOD_ROWS).replace(",", "\t"))
    pd.read_csv(tmp_path / "inter.csv").to_parquet(tmp_path / "inter.parquet")
    prints = {load(tmp_path, name).fingerprint() for name in ("inter.csv", "inter.tsv", "inter.parquet")}
    assert len(prints) == 1


# --------------------------------------------------------------------------- unreadable files


def test_missing_file(tmp_path: Path) -> None:
    load_error(tmp_path, str(tmp_path / "nope.csv"), "not found", interactions="nope.csv")


def test_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path, "inter.csv", "")
    assert path.stat().st_size == 0
    load_error(tmp_path, str(path), "empty")


def test_header_only(tmp_path: Path) -> None:
    path = write(tmp_path, "inter.csv", HEADER)
    load_error(tmp_path, str(path), "no interaction rows")


def test_wrong_delimiter_reports_missing_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "inter.csv", (HEADER + GOOD_ROWS).replace(",", ";"))
    load_error(tmp_path, str(path), "missing column", "user_id", "item_id", "user_id;item_id")


def test_missing_column(tmp_path: Path) -> None:
    path = write(tmp_path, "inter.csv", "user_id,timestamp\nu1,1\n")
    message = load_error(tmp_path, str(path), "missing column")
    assert "['item_id']" in message


def test_non_utf8_bytes(tmp_path: Path) -> None:
    path = write(tmp_path, "inter.csv", (HEADER + "u1,caf").encode() + b"\xe9" + b",100,1\nu2,i2,200,1\n")
    load_error(tmp_path, str(path), "UTF-8")


# --------------------------------------------------------------------------- ids


@pytest.mark.parametrize("bad", ["", "   "])
def test_missing_or_blank_user_id(tmp_path: Path, bad: str) -> None:
    path = write(tmp_path, "inter.csv", HEADER + f"u1,i1,100,1\nu2,i1,200,1\n{bad},i2,300,1\n")
    load_error(tmp_path, str(path), "'user_id'", "first rows [2]")


def test_nan_item_id(tmp_path: Path) -> None:
    path = write(tmp_path, "inter.csv", HEADER + "u1,NaN,100,1\nu2,i1,200,1\nu3,,300,1\n")
    message = load_error(tmp_path, str(path), "'item_id'", "first rows [0, 2]")
    assert "2 missing" in message


def test_numeric_item_id_with_a_gap(tmp_path: Path) -> None:
    path = write(tmp_path, "inter.csv", HEADER + "1,10,100,1\n2,,200,1\n")
    load_error(tmp_path, str(path), "'item_id'", "first rows [1]")


def test_ids_are_remapped_contiguously_and_map_back(tmp_path: Path) -> None:
    rows = "zed,i9,1,1\nann,i3,2,1\nbob,i9,3,1\nann,i7,4,1\nzed,i3,5,1\n"
    write(tmp_path, "inter.csv", HEADER + rows)
    bundle = load_quietly(tmp_path)
    inter = bundle.interactions
    assert sorted(inter["user_id"].unique()) == list(range(bundle.n_users)) == [0, 1, 2]
    assert sorted(inter["item_id"].unique()) == list(range(bundle.n_items)) == [0, 1, 2]
    raw = pd.read_csv(tmp_path / "inter.csv")
    # the remapped frame points back at the raw rows, in order
    assert bundle.user_map.to_raw(inter["user_id"]).tolist() == raw["user_id"].tolist()
    assert bundle.item_map.to_raw(inter["item_id"]).tolist() == raw["item_id"].tolist()
    for id_map, ids in ((bundle.user_map, ["bob", "zed", "ann"]), (bundle.item_map, ["i7", "i9", "i3", "i3"])):
        idx = id_map.to_index(ids)
        assert idx.dtype == np.int64
        assert id_map.to_raw(idx).tolist() == ids
    with pytest.raises(KeyError, match="carl"):
        bundle.user_map.to_index(["ann", "carl"])


def test_numeric_ids_map_back(tmp_path: Path) -> None:
    write(tmp_path, "inter.csv", HEADER + "30,7,1,1\n10,7,2,1\n20,5,3,1\n")
    bundle = load_quietly(tmp_path)
    assert bundle.user_map.raw.tolist() == [10, 20, 30]
    assert bundle.interactions["user_id"].tolist() == [2, 0, 1]
    x = np.array([30, 10, 20, 20])
    assert bundle.user_map.to_raw(bundle.user_map.to_index(x)).tolist() == x.tolist()
    assert bundle.item_map.to_index([5, 7]).tolist() == [0, 1]


# --------------------------------------------------------------------------- weights


@pytest.mark.parametrize("bad", ["abc", "inf", "-inf", ""])
def test_bad_weight(tmp_path: Path, bad: str) -> None:
    path = write(tmp_path, "inter.csv", HEADER + f"u1,i1,100,1\nu2,i1,200,{bad}\nu3,i2,300,2\n")
    load_error(tmp_path, str(path), "'weight'", "first rows [1]")


def test_negative_weight(tmp_path: Path) -> None:
    path = write(tmp_path, "inter.csv", HEADER + "u1,i1,100,1\nu2,i1,200,2\nu3,i2,300,-0.5\n")
    load_error(tmp_path, str(path), "'weight'", "negative", "first rows [2]")


def test_zero_weight_is_allowed(tmp_path: Path) -> None:
    write(tmp_path, "inter.csv", HEADER + "u1,i1,100,0\n")
    assert load_quietly(tmp_path).interactions["weight"].tolist() == [0.0]


# --------------------------------------------------------------------------- timestamps


def test_unparseable_timestamp(tmp_path: Path) -> None:
    path = write(tmp_path, "inter.csv", HEADER + "u1,i1,2020-01-01,1\nu2,i1,yesterday,1\nu3,i2,2020-01-03,1\n")
    load_error(tmp_path, str(path), "'timestamp'", "first rows [1]", "yesterday")


def test_nan_timestamp(tmp_path: Path) -> None:
    path = write(tmp_path, "inter.csv", HEADER + "u1,i1,100,1\nu2,i1,,1\n")
    load_error(tmp_path, str(path), "'timestamp'", "first rows [1]")


def test_iso_dates_become_unix_seconds(tmp_path: Path) -> None:
    write(tmp_path, "inter.csv", HEADER + "u1,i1,2020-01-01,1\nu2,i1,2020-01-02,1\nu3,i2,2021-06-30,1\n")
    bundle = load_quietly(tmp_path)
    assert bundle.interactions["timestamp"].tolist() == [1577836800, 1577836800 + 86400, 1625011200]
    assert bundle.interactions["timestamp"].dtype == np.int64


def test_iso_datetimes_with_time_and_zone(tmp_path: Path) -> None:
    rows = "u1,i1,2020-01-01T00:00:30Z,1\nu2,i1,2020-01-01T01:00:00+01:00,1\n"
    write(tmp_path, "inter.csv", HEADER + rows)
    assert load_quietly(tmp_path).interactions["timestamp"].tolist() == [1577836830, 1577836800]


# --------------------------------------------------------------------------- duplicates


DUP_ROWS = "u1,i1,100,1\nu1,i1,100,3\nu2,i1,100,1\nu1,i1,200,1\nu2,i1,100,1\n"  # rows 1 and 4 repeat


def test_duplicates_are_dropped_and_counted(tmp_path: Path) -> None:
    write(tmp_path, "inter.csv", HEADER + DUP_ROWS)
    with pytest.warns(DataWarning, match="2 duplicate"):
        bundle = load(tmp_path)
    assert bundle.meta["warnings"] == {"duplicate_interactions": 2}
    inter = bundle.interactions
    assert len(inter) == 3
    # the first of each duplicate group is kept (weight 1, not 3); same user+item at another time is no duplicate
    assert inter[["user_id", "item_id", "timestamp", "weight"]].values.tolist() == [
        [0, 0, 100, 1.0], [1, 0, 100, 1.0], [0, 0, 200, 1.0]]


def test_duplicates_refused_on_request(tmp_path: Path) -> None:
    path = write(tmp_path, "inter.csv", HEADER + DUP_ROWS)
    load_error(tmp_path, str(path), "2 duplicate", "user_id", "item_id", "timestamp", "first rows [1, 4]",
               duplicates="error")


def test_bad_policy_value(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="duplicates"):
        FileSource("inter.csv", data_dir=str(tmp_path), duplicates="keep")


# --------------------------------------------------------------------------- social edges


def test_social_unknown_users_self_loops_and_repeats_are_dropped(tmp_path: Path) -> None:
    write(tmp_path, "inter.csv", HEADER + GOOD_ROWS)
    edges = "user_id,friend_id\nu1,u2\nu2,u1\nu1,ghost\nghost,u3\nu3,u3\nu1,u2\nu2,u3\n"
    write(tmp_path, "social.csv", edges)
    with pytest.warns(DataWarning):
        bundle = load(tmp_path, social="social.csv")
    assert bundle.meta["warnings"] == {"unknown_social_users": 2, "social_self_loops": 1,
                                       "duplicate_social_edges": 1}
    u = bundle.user_map.to_index
    expected = [[int(u([a])[0]), int(u([b])[0])] for a, b in (("u1", "u2"), ("u2", "u1"), ("u2", "u3"))]
    assert bundle.social.values.tolist() == expected  # directed, as given
    assert bundle.social.dtypes.tolist() == [np.int64, np.int64]


def test_social_unknown_users_refused_on_request(tmp_path: Path) -> None:
    write(tmp_path, "inter.csv", HEADER + GOOD_ROWS)
    path = write(tmp_path, "social.csv", "user_id,friend_id\nu1,u2\nu2,u3\nu1,ghost\n")
    load_error(tmp_path, str(path), "'friend_id'", "first rows [2]", "ghost", social="social.csv",
               unknown_ids="error")


def test_social_missing_column(tmp_path: Path) -> None:
    write(tmp_path, "inter.csv", HEADER + GOOD_ROWS)
    path = write(tmp_path, "social.csv", "user_id,friend\nu1,u2\n")
    load_error(tmp_path, str(path), "missing column", "friend_id", social="social.csv")


def test_social_empty_id(tmp_path: Path) -> None:
    write(tmp_path, "inter.csv", HEADER + GOOD_ROWS)
    path = write(tmp_path, "social.csv", "user_id,friend_id\nu1,u2\n,u3\n")
    load_error(tmp_path, str(path), "'user_id'", "first rows [1]", social="social.csv")


# --------------------------------------------------------------------------- item text


TEXT = "item_id,text,category\ni3,red mug,home\ni1,blue shirt,apparel\ni99,ghost item,none\n"


def test_texts_are_aligned_and_unknown_items_dropped(tmp_path: Path) -> None:
    write(tmp_path, "inter.csv", HEADER + GOOD_ROWS)
    write(tmp_path, "text.csv", TEXT)
    with pytest.warns(DataWarning, match="item_id"):
        bundle = load(tmp_path, item_text="text.csv")
    assert bundle.meta["warnings"] == {"unknown_text_items": 1}
    texts = bundle.texts()
    assert len(texts) == bundle.n_items
    by_raw = dict(zip(bundle.item_map.raw.tolist(), texts, strict=True))
    assert by_raw == {"i1": "blue shirt", "i2": "", "i3": "red mug"}
    # extra columns travel along, remapped to indices
    text = bundle.item_text.set_index("item_id")
    assert text.loc[int(bundle.item_map.to_index(["i3"])[0]), "category"] == "home"


def test_text_unknown_items_refused_on_request(tmp_path: Path) -> None:
    write(tmp_path, "inter.csv", HEADER + GOOD_ROWS)
    path = write(tmp_path, "text.csv", TEXT)
    load_error(tmp_path, str(path), "'item_id'", "first rows [2]", "i99", item_text="text.csv",
               unknown_ids="error")


def test_text_missing_column(tmp_path: Path) -> None:
    write(tmp_path, "inter.csv", HEADER + GOOD_ROWS)
    path = write(tmp_path, "text.csv", "item_id,title\ni1,shirt\n")
    load_error(tmp_path, str(path), "missing column", "'text'", item_text="text.csv")


# --------------------------------------------------------------------------- sales panel


SALES = "unique_id,ds,y,price\nb,2020-02-01,3,1.5\na,2020-01-01,1,2.0\na,2020-02-01,2,2.0\nb,2020-01-01,4,1.5\n"


def test_sales_panel_is_parsed_and_sorted(tmp_path: Path) -> None:
    write(tmp_path, "inter.csv", HEADER + GOOD_ROWS)
    write(tmp_path, "sales.csv", SALES)
    sales = load_quietly(tmp_path, sales="sales.csv").sales
    assert sales["unique_id"].tolist() == ["a", "a", "b", "b"]
    assert sales["ds"].dt.strftime("%Y-%m-%d").tolist() == ["2020-01-01", "2020-02-01"] * 2
    assert sales["y"].tolist() == [1.0, 2.0, 4.0, 3.0]
    assert sales["price"].tolist() == [2.0, 2.0, 1.5, 1.5]  # covariates travel along


def test_sales_missing_column(tmp_path: Path) -> None:
    write(tmp_path, "inter.csv", HEADER + GOOD_ROWS)
    path = write(tmp_path, "sales.csv", "unique_id,ds,sales\na,2020-01-01,1\n")
    message = load_error(tmp_path, str(path), "missing column", sales="sales.csv")
    assert "['y']" in message


@pytest.mark.parametrize("bad", ["", "NaN", "lots"])
def test_sales_bad_y(tmp_path: Path, bad: str) -> None:
    write(tmp_path, "inter.csv", HEADER + GOOD_ROWS)
    path = write(tmp_path, "sales.csv", f"unique_id,ds,y\na,2020-01-01,1\na,2020-02-01,{bad}\n")
    load_error(tmp_path, str(path), "'y'", "first rows [1]", sales="sales.csv")


def test_sales_duplicate_series_date(tmp_path: Path) -> None:
    write(tmp_path, "inter.csv", HEADER + GOOD_ROWS)
    rows = "unique_id,ds,y\na,2020-01-01,1\nb,2020-01-01,1\na,2020-02-01,2\na,2020-01-01,5\n"
    path = write(tmp_path, "sales.csv", rows)
    load_error(tmp_path, str(path), "duplicate (unique_id, ds)", "first rows [3]", sales="sales.csv")


def test_sales_unparseable_date(tmp_path: Path) -> None:
    write(tmp_path, "inter.csv", HEADER + GOOD_ROWS)
    path = write(tmp_path, "sales.csv", "unique_id,ds,y\na,2020-01-01,1\na,someday,2\n")
    load_error(tmp_path, str(path), "'ds'", "first rows [1]", sales="sales.csv")


def test_sales_empty_series_id(tmp_path: Path) -> None:
    write(tmp_path, "inter.csv", HEADER + GOOD_ROWS)
    path = write(tmp_path, "sales.csv", "unique_id,ds,y\na,2020-01-01,1\n,2020-02-01,2\n")
    load_error(tmp_path, str(path), "'unique_id'", "first rows [1]", sales="sales.csv")


# --------------------------------------------------------------------------- fingerprint


def test_fingerprint_is_stable_and_content_sensitive(tmp_path: Path) -> None:
    write(tmp_path, "inter.csv", HEADER + GOOD_ROWS)
    write(tmp_path, "text.csv", TEXT.replace("i99,ghost item,none\n", ""))
    first = load_quietly(tmp_path, item_text="text.csv").fingerprint()
    assert load_quietly(tmp_path, item_text="text.csv").fingerprint() == first
    assert len(first) == 16
    write(tmp_path, "inter.csv", HEADER + GOOD_ROWS.replace("u3,i3,400,5", "u3,i3,400,4"))
    assert load_quietly(tmp_path, item_text="text.csv").fingerprint() != first
    write(tmp_path, "inter.csv", HEADER + GOOD_ROWS)
    assert load_quietly(tmp_path, item_text="text.csv").fingerprint() == first
    write(tmp_path, "text.csv", TEXT.replace("i99,ghost item,none\n", "").replace("red mug", "red cup"))
    assert load_quietly(tmp_path, item_text="text.csv").fingerprint() != first
