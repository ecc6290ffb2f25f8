"""Time columns (interaction ``timestamp``, sales ``ds``) parsed value by value from real files: every ISO-8601
form and Unix seconds accepted, mixed within a column, and only the rows that really fail reported."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecomlab.data.builtin import FileSource
from ecomlab.data.bundle import DataValidationError, parse_times
from ecomlab.data.sources.panels import SalesFile

HEADER = "user_id,item_id,timestamp,weight\n"
# 2007-01-01T00:00:00Z in Unix seconds
T0 = 1_167_609_600


def load_times(tmp_path: Path, values: list[str], suffix: str = ".csv") -> np.ndarray:
    """The ``timestamp`` column the data contract makes of ``values``, one interaction each, read from a file."""
    frame = pd.DataFrame({"user_id": np.arange(len(values)), "item_id": 1, "timestamp": values, "weight": 1.0})
    path = tmp_path / f"inter{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    bundle = FileSource(interactions=path.name, data_dir=str(tmp_path)).load()
    return bundle.interactions.sort_values("user_id")["timestamp"].to_numpy()


def refusal(tmp_path: Path, text: str) -> str:
    (tmp_path / "inter.csv").write_text(HEADER + text)
    with pytest.raises(DataValidationError) as err:
        FileSource(interactions="inter.csv", data_dir=str(tmp_path)).load()
    return str(err.value)


def test_every_iso_form_and_unix_seconds_in_one_column(tmp_path: Path) -> None:
    forms = {
        "2007-01-01": T0,
        "2007-01-01 00:00:00": T0,
        "2007-01-01 10:20": T0 + 10 * 3600 + 20 * 60,
        "2007-01-01T10:20:30": T0 + 37230,
        "2007-01-01T10:20:30.75": T0 + 37230,  # fractions floored to the second
        "2007-01-01T10:20:30Z": T0 + 37230,
        "2007-01-01T10:20:30+02:00": T0 + 37230 - 7200,  # converted to UTC
        "2007-01-01T10:20:30-0530": T0 + 37230 + 5 * 3600 + 1800,
        "2007-01-01t10:20:30z": T0 + 37230,
        "2007-01-01T10:20:30,5": T0 + 37230,
        "2007-W01-2": T0 + 86400,  # ISO week date: Tuesday of week 1
        " 2007-01-03 ": T0 + 2 * 86400,
        str(T0 + 5): T0 + 5,  # digits only: Unix seconds
        f"{T0 + 7}.9": T0 + 7,
    }
    got = load_times(tmp_path, list(forms))
    assert got.tolist() == list(forms.values())


def test_a_column_mixing_dates_and_date_times(tmp_path: Path) -> None:
    """The audit's case: every value is a valid date, half of them with a time of day."""
    values = ["2007-01-01", "2007-01-01 00:00:00"] * 50
    assert (load_times(tmp_path, values) == T0).all()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_offsets_on_every_value_are_converted_to_utc(tmp_path: Path, suffix: str) -> None:
    # local midnights in Berlin across the daylight-saving change
    values = ["2007-03-24T00:00:00+01:00", "2007-03-25T00:00:00+01:00", "2007-03-26T00:00:00+02:00"]
    got = load_times(tmp_path, values, suffix)
    assert got.tolist() == [1174690800, 1174777200, 1174860000]


def test_one_bad_value_among_unix_seconds_is_the_only_one_reported(tmp_path: Path) -> None:
    """The audit's case: one "yesterday" at row 13 of 3,000 Unix seconds (an object column because of it)."""
    rows = [f"{u},{i},{T0 + 60 * (30 * u + i)},1\n" for u in range(100) for i in range(30)]
    rows[13] = "0,13,yesterday,1\n"
    message = refusal(tmp_path, "".join(rows))
    assert "column 'timestamp' has 1 missing or unparseable value(s); first rows [13]" in message
    assert "'yesterday'" in message and "inter.csv" in message


def test_bad_values_among_iso_dates_are_reported_by_row(tmp_path: Path) -> None:
    rows = [f"{u},1,2007-01-{u % 28 + 1:02d},1\n" for u in range(40)]
    rows[7], rows[31] = "7,1,2007-02-30,1\n", "31,1,31/01/2007,1\n"
    message = refusal(tmp_path, "".join(rows))
    assert re.search(r"has 2 missing or unparseable value\(s\); first rows \[7, 31\].*'2007-02-30', '31/01/2007'",
                     message)


def test_dates_outside_pandas_range_are_named(tmp_path: Path) -> None:
    message = refusal(tmp_path, "1,1,2007-01-01,1\n2,1,3000-01-01,1\n")
    assert "1 value(s) outside 1677-09-21 .. 2262-04-11" in message and "first rows [1]" in message
    message = refusal(tmp_path, f"1,1,{T0},1\n2,1,{T0 * 1000},1\n")  # milliseconds by mistake
    assert "Unix time(s) outside" in message and "first rows [1]" in message and "not milliseconds" in message


def test_true_false_is_no_time(tmp_path: Path) -> None:
    assert "true/false" in refusal(tmp_path, "1,1,True,1\n2,1,False,1\n")


def test_a_long_bad_value_is_cut_in_the_message(tmp_path: Path) -> None:
    message = refusal(tmp_path, "1,1,2007-01-01,1\n2,1," + "x" * 5000 + ",1\n")
    assert len(message) < 600 and "xxx..." in message


# --------------------------------------------------------------------------- sales ds


def load_sales(tmp_path: Path, ds: list[str]) -> pd.Series:
    frame = pd.DataFrame({"unique_id": "a", "ds": ds, "y": np.arange(len(ds), dtype=float)})
    frame.to_csv(tmp_path / "sales.csv", index=False)
    return SalesFile("sales.csv", data_dir=str(tmp_path)).load().sales["ds"]


def test_sales_ds_mixing_forms(tmp_path: Path) -> None:
    ds = load_sales(tmp_path, ["2020-01-01", "2020-02-01 00:00:00", "2020-03-01T00:00", "2020-04-01T00:00:00Z"])
    assert ds.tolist() == list(pd.date_range("2020-01-01", periods=4, freq="MS"))


def test_sales_ds_keeps_the_local_calendar_date(tmp_path: Path) -> None:
    """Daily sales stamped at local midnight keep their dates across a daylight-saving change (UTC would move
    them to 23:00 / 22:00 of the day before)."""
    ds = load_sales(tmp_path, ["2007-03-24T00:00:00+01:00", "2007-03-25T00:00:00+01:00",
                               "2007-03-26T00:00:00+02:00"])
    assert ds.tolist() == list(pd.date_range("2007-03-24", periods=3, freq="D"))
    mixed = load_sales(tmp_path, ["2007-03-24", "2007-03-25T00:00:00+01:00", "2007-03-26T00:00:00+02:00"])
    assert mixed.tolist() == list(pd.date_range("2007-03-24", periods=3, freq="D"))


def test_sales_ds_reports_only_the_bad_rows(tmp_path: Path) -> None:
    ds = [str(d.date()) for d in pd.date_range("2020-01-01", periods=30, freq="D")]
    ds[17] = "someday"
    with pytest.raises(DataValidationError, match=r"column 'ds' has 1 missing or unparseable.*first rows \[17\].*"
                                                  r"'someday'"):
        load_sales(tmp_path, ds)


def test_parse_times_keeps_sub_second_ns_and_treats_numbers_among_strings_as_seconds() -> None:
    col = pd.Series(["2007-01-01T00:00:00.123456789", T0 + 1, "2007-01-01"], dtype=object)
    got = parse_times(col, "frame", "t")
    assert got.tolist() == [T0 * 10**9 + 123456789, (T0 + 1) * 10**9, T0 * 10**9]


@pytest.mark.parametrize("values", [["2007-01-31", "2007-02-01"], ["2007-01-31", "2007-02-01 10:00:00"],
                                    ["2007-01-31T10:00:00+02:00", "2007-02-01T10:00:00Z"]])
def test_clean_columns_take_the_vectorised_arrow_pass(values: list[str]) -> None:
    """Whole-column forms go through Arrow's cast, not value by value (a date's "-31" once read as a UTC
    offset sent every date-only column down the slow path)."""
    from ecomlab.data.bundle import _arrow_times

    got = _arrow_times(np.array(values, dtype=object), wall_clock=False)
    assert got is not None
    want = pd.to_datetime(pd.Series(values), format="ISO8601", utc=True).dt.tz_localize(None)
    assert got.tolist() == want.to_numpy("datetime64[ns]").view(np.int64).tolist()
