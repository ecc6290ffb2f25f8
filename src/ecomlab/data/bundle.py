"""The data contract, written once.

Every dataset, built-in or loaded from files, becomes one :class:`DatasetBundle`:

* ``interactions`` -- ``(user_id, item_id, timestamp, weight)``; ids are contiguous ``int64`` indices,
  ``timestamp`` is Unix seconds (``int64``; read from Unix seconds or any ISO-8601 form, offsets converted to
  UTC), ``weight`` a non-negative ``float64`` (1.0 for plain implicit feedback, a count or a rating otherwise).
  A data set read from its own train / validation / test files adds ``part`` (``int8``: 0 train, 1 validation,
  2 test; set by the source from the file each row came from, never taken from a column of a user's file),
  which :class:`~ecomlab.data.splits.PredefinedSplit` follows.
* ``item_text`` -- optional ``(item_id, text)`` plus any extra item columns (e.g. ``category``).
* ``social`` -- optional ``(user_id, friend_id)`` edges between known users, as given (directed).
* ``sales`` -- optional long-format panel ``(unique_id, ds, y)`` plus optional covariate columns; ``ds`` is
  ``datetime64[ns]``, the local time a value names (a UTC offset is dropped, not applied).

Raw ids are remapped to contiguous indices; :class:`IdMap` keeps the way back.

Validation policy (applied by :func:`build_bundle`, documented here once):

=====================================  =======================================================
problem                                what happens
=====================================  =======================================================
missing required column                error (names the file and the missing column)
NaN / empty user or item id            error (file, column, first offending rows)
NaN / infinite / negative weight       error
unparseable, missing or out-of-range   error (count, first rows, sample values; see
timestamp / ``ds``                     :func:`parse_times` for the accepted forms)
duplicate ``(user, item, timestamp)``  ``policy.duplicates``: ``"drop"`` (default, counted warning,
                                       keeps the first row), ``"error"``. Without a timestamp column a
                                       repeated ``(user, item)`` is not known to be the same event: all
                                       rows are kept in file order (counted in ``meta``) for
                                       ``data.preprocess.duplicates`` (``keep_last`` = the last in the file)
social edge or text row with an id     ``policy.unknown_ids``: ``"drop"`` (default, counted
unknown to the interactions            warning) or ``"error"``
social self-loop / duplicate edge      dropped, counted warning
sales: missing column, NaN ``y``,      error
duplicate ``(unique_id, ds)``
=====================================  =======================================================

Every warning is also counted in ``bundle.meta["warnings"]`` so a run record shows what was dropped.
"""

from __future__ import annotations

import hashlib
import logging
import re
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

log = logging.getLogger(__name__)

INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp", "weight")
TEXT_COLUMNS = ("item_id", "text")
SOCIAL_COLUMNS = ("user_id", "friend_id")
SALES_COLUMNS = ("unique_id", "ds", "y")
#: the optional column of a predefined split: which part (train / validation / test) a row's file gave it
PART_COLUMN = "part"
PART_NAMES = ("train", "val", "test")
_PART_CODES = {"train": 0, "val": 1, "valid": 1, "validation": 1, "test": 2}
#: row numbers in messages count data rows from 0 (a CSV's header line is not counted)
ROWS = " (0-based data rows)"


class DataValidationError(ValueError):
    """Bad input data. The message names the file (or source), the column and the first offending rows."""


class DataWarning(UserWarning):
    """Rows dropped or repaired under the documented validation policy."""


@dataclass(frozen=True)
class ValidationPolicy:
    """What to do with recoverable problems; unrecoverable ones always raise :class:`DataValidationError`."""

    duplicates: Literal["drop", "error"] = "drop"
    unknown_ids: Literal["drop", "error"] = "drop"

    def __post_init__(self) -> None:
        for key, value in (("duplicates", self.duplicates), ("unknown_ids", self.unknown_ids)):
            if value not in ("drop", "error"):
                raise ValueError(f"ValidationPolicy.{key}={value!r}; expected 'drop' or 'error'")


@dataclass(frozen=True)
class IdMap:
    """Contiguous index <-> raw id. ``raw[i]`` is the raw id of index ``i``."""

    raw: np.ndarray

    def __len__(self) -> int:
        return len(self.raw)

    def to_index(self, raw_ids: Any) -> np.ndarray:
        """Indices of ``raw_ids``; raises ``KeyError`` naming the first unknown id."""
        lookup = pd.Index(self.raw)
        idx = lookup.get_indexer(pd.Index(np.asarray(raw_ids, dtype=self.raw.dtype)))
        if (idx < 0).any():
            bad = np.asarray(raw_ids)[idx < 0][:5]
            raise KeyError(f"unknown ids: {bad.tolist()}")
        return idx.astype(np.int64)

    def to_raw(self, index: Any) -> np.ndarray:
        return self.raw[np.asarray(index, dtype=np.int64)]


@dataclass
class DatasetBundle:
    """One dataset in the contract's shape. See the module docstring for the columns."""

    name: str
    interactions: pd.DataFrame
    user_map: IdMap
    item_map: IdMap
    item_text: pd.DataFrame | None = None
    social: pd.DataFrame | None = None
    sales: pd.DataFrame | None = None
    has_timestamps: bool = True
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return len(self.user_map)

    @property
    def n_items(self) -> int:
        return len(self.item_map)

    def texts(self) -> list[str]:
        """Item text aligned with item indices ('' for items without text)."""
        out = [""] * self.n_items
        if self.item_text is not None:
            for i, t in zip(self.item_text["item_id"].to_numpy(), self.item_text["text"].to_numpy(), strict=True):
                out[int(i)] = str(t)
        return out

    def fingerprint(self) -> str:
        """SHA-256 over the canonical content of every part, so runs on different data never compare."""
        h = hashlib.sha256()
        for part_name in ("interactions", "item_text", "social", "sales"):
            part = getattr(self, part_name)
            h.update(part_name.encode())
            if part is not None:
                h.update(pd.util.hash_pandas_object(part, index=False).to_numpy().tobytes())
        h.update(pd.util.hash_array(self.user_map.raw.astype(str)).tobytes())
        h.update(pd.util.hash_array(self.item_map.raw.astype(str)).tobytes())
        return h.hexdigest()[:16]

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "n_interactions": len(self.interactions),
            "n_text": 0 if self.item_text is None else len(self.item_text),
            "n_social": 0 if self.social is None else len(self.social),
            "n_series": 0 if self.sales is None else int(self.sales["unique_id"].nunique()),
        }


class BundleSource(Protocol):
    """Anything with ``load()`` returning a bundle: built-in generators, file loaders."""

    def load(self) -> DatasetBundle: ...


# --------------------------------------------------------------------------- validation helpers


def _rows(mask: np.ndarray | pd.Series, limit: int = 5) -> list[int]:
    return np.flatnonzero(np.asarray(mask))[:limit].tolist()


def _sample(values: np.ndarray, limit: int = 5, width: int = 40) -> list[Any]:
    """The first ``limit`` offending values for a message, long strings cut (a one-line message stays short)."""
    return [v[:width] + "..." if isinstance(v, str) and len(v) > width else v for v in values[:limit].tolist()]


def require_columns(df: pd.DataFrame, columns: tuple[str, ...], where: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"{where}: missing column(s) {missing}; expected columns {list(columns)}, found {list(df.columns)}"
        )


def _factorize_ids(df: pd.DataFrame, column: str, where: str, sort: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, uniques)`` of an id column; an error naming the rows of missing or empty (blank) ids.

    The blank test runs on the distinct ids only and reaches the rows through the codes, so a column of
    millions of rows costs one hash pass instead of a Python string operation per row.
    """
    col = df[column]
    codes, uniques = pd.factorize(col.to_numpy(), sort=sort)  # NaN / None -> code -1
    bad = codes < 0
    if not pd.api.types.is_numeric_dtype(col) and len(uniques):
        blank = pd.Series(uniques, dtype=object).astype(str).str.strip().eq("").to_numpy()
        if blank.any():
            bad = bad | (blank[codes] & (codes >= 0))
    if bad.any():
        raise DataValidationError(
            f"{where}: column '{column}' has {int(bad.sum())} missing/empty id(s); first rows {_rows(bad)}{ROWS}"
        )
    return codes.astype(np.int64, copy=False), np.asarray(uniques)


def _check_ids(df: pd.DataFrame, column: str, where: str) -> None:
    _factorize_ids(df, column, where)


def _duplicate_rows(users: np.ndarray, items: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Mask of rows repeating an earlier row's ``(user, item, timestamp)`` (codes >= 0; first kept).

    When the three fit one int64 (bit widths of the id counts and of the timestamp range), they are packed
    into one exact key: a sort tells whether any duplicate exists at all (usually none), and only then does
    a hash pass mark them. Otherwise pandas compares the three columns.
    """
    n = len(users)
    if n == 0:
        return np.zeros(0, dtype=bool)
    t0, t1 = int(ts.min()), int(ts.max())
    bits = [int(int(users.max())).bit_length(), int(int(items.max())).bit_length(), (t1 - t0).bit_length()]
    if sum(bits) > 63:
        return pd.DataFrame({"u": users, "i": items, "t": ts}).duplicated(keep="first").to_numpy()
    def packed() -> np.ndarray:  # [n] int64, injective; built in place to hold one temporary at a time
        key = users << (bits[1] + bits[2])
        key |= items << bits[2]
        key |= ts - t0
        return key

    key = packed()
    key.sort()
    if not (key[1:] == key[:-1]).any():
        return np.zeros(n, dtype=bool)
    return pd.Series(packed()).duplicated(keep="first").to_numpy()


def _warn(meta: dict[str, Any], key: str, count: int, message: str) -> None:
    if count:
        meta.setdefault("warnings", {})[key] = meta.get("warnings", {}).get(key, 0) + count
        warnings.warn(message, DataWarning, stacklevel=3)


def _numeric(df: pd.DataFrame, column: str, where: str) -> np.ndarray:
    values = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataValidationError(
            f"{where}: column '{column}' has {int(bad.sum())} non-numeric, NaN or infinite value(s); "
            f"first rows {_rows(bad)}{ROWS} (values {_sample(df[column].to_numpy()[bad])})"
        )
    return values


#: the instants pandas' ``datetime64[ns]`` holds, as Unix seconds (1677-09-21T00:12:44 .. 2262-04-11T23:47:16 UTC);
#: describe, the temporal splits and the forecasters all go through pandas, so nothing outside it is accepted
TIME_RANGE_S = (-9_223_372_036, 9_223_372_036)
_NAT = np.iinfo(np.int64).min
_NUMBER_TYPES = (int, float, np.integer, np.floating, np.bool_)
TIME_FORMS = ("expected Unix seconds or ISO-8601 dates/times (2007-01-31, 2007-01-31 13:45, "
              "2007-01-31T13:45:00.5+01:00, ...)")


def _iso_fallback(text: str, wall_clock: bool) -> int | None:
    """Nanoseconds of one ISO-8601 value pandas' vectorised parser refused (week dates, a comma before the
    fraction, lower-case ``t``/``z``, padding), or None; a date outside pandas' range gives ``_NAT + 1``."""
    try:
        when = datetime.fromisoformat(text.strip().upper())
    except ValueError:
        return None
    if when.tzinfo is not None:
        when = when.replace(tzinfo=None) if wall_clock else when.astimezone(UTC).replace(tzinfo=None)
    seconds = (when - datetime(1970, 1, 1)) // timedelta(seconds=1)
    if not TIME_RANGE_S[0] <= seconds <= TIME_RANGE_S[1]:
        return _NAT + 1
    return (when - datetime(1970, 1, 1)) // timedelta(microseconds=1) * 1000


def parse_times(col: pd.Series, where: str, column: str, *, wall_clock: bool = False) -> np.ndarray:
    """Nanoseconds since 1970-01-01 (``int64``) of every value of a time column, checked value by value.

    Accepted: numbers (Unix seconds, fractions kept), and strings in any ISO-8601 form -- dates, date-times
    with or without seconds, a ``T`` or a space, fractional seconds, a UTC offset or ``Z``, week dates --
    mixed freely within one column. A string of digits only is Unix seconds, as in an all-numeric column
    (so a basic-format date such as ``20070131`` needs its dashes). Values with a UTC offset are converted
    to UTC (``wall_clock=False``: interaction times are instants) or keep the local time they name
    (``wall_clock=True``: a sales period is a calendar date of the shop, and converting local midnights to
    UTC would move them onto the previous day, by an hour more in summer). Values without an offset are read
    as UTC / as given.

    The column is parsed in one vectorised pass (pandas' ISO-8601 parser); only the values it refuses are
    looked at one by one, so a clean column of millions of rows costs one pass. A
    :class:`DataValidationError` reports the values that really fail: missing or unparseable ones (count,
    first rows, sample values), then values outside pandas' date range.
    """
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        local = col.dt.tz_localize(None) if wall_clock else col.dt.tz_convert("UTC").dt.tz_localize(None)
        ns = local.to_numpy("datetime64[ns]").view(np.int64)
    elif col.dtype.kind == "M":
        ns = col.to_numpy("datetime64[ns]").view(np.int64)
    elif col.dtype.kind == "b":
        raise DataValidationError(f"{where}: column '{column}' holds true/false values; {TIME_FORMS}")
    elif pd.api.types.is_numeric_dtype(col):
        seconds = _numeric(pd.DataFrame({column: col}), column, where)
        _check_time_range(seconds, col, where, column)
        return np.floor(seconds * 1e9).astype(np.int64) if col.dtype.kind == "f" else \
            col.to_numpy(np.int64) * 1_000_000_000
    else:
        ns = _parse_text_times(col, wall_clock)
    bad = ns == _NAT
    if bad.any():
        raise DataValidationError(
            f"{where}: column '{column}' has {int(bad.sum())} missing or unparseable value(s); first rows "
            f"{_rows(bad)}{ROWS} (values {_sample(col.to_numpy()[bad])}); {TIME_FORMS}")
    far = ns == _NAT + 1
    if far.any():
        raise DataValidationError(
            f"{where}: column '{column}' has {int(far.sum())} value(s) outside 1677-09-21 .. 2262-04-11, the range "
            f"pandas can hold; first rows {_rows(far)}{ROWS} (values {_sample(col.to_numpy()[far])})")
    return ns


def _check_time_range(seconds: np.ndarray, col: pd.Series, where: str, column: str) -> None:
    far = (seconds < TIME_RANGE_S[0]) | (seconds > TIME_RANGE_S[1])
    if far.any():
        raise DataValidationError(
            f"{where}: column '{column}' has {int(far.sum())} Unix time(s) outside {TIME_RANGE_S[0]} .. "
            f"{TIME_RANGE_S[1]} seconds (1677-09-21 .. 2262-04-11, the range pandas can hold); first rows "
            f"{_rows(far)}{ROWS} (values {_sample(col.to_numpy()[far])}); times are Unix seconds, not "
            "milliseconds")


def _parse_text_times(col: pd.Series, wall_clock: bool) -> np.ndarray:
    """``int64`` nanoseconds of a text column; ``_NAT`` where a value is missing or unparseable, ``_NAT + 1``
    where it is outside pandas' range (see :func:`parse_times`).

    Three passes, each over fewer values: Arrow's strict ISO-8601 cast of the whole column (no offsets, or an
    offset on every value; it takes the column whole or not at all), else pandas' lenient ISO-8601 parser,
    and for the values that refused, numbers (Unix seconds) and Python's ``datetime.fromisoformat`` one by one.
    """
    values = col.to_numpy(dtype=object)
    fast = _arrow_times(values, wall_clock)
    if fast is not None:
        return fast
    ns = _pandas_times(col, wall_clock)
    all_text = pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty")
    if not all_text:
        # pandas reads a number among strings as nanoseconds: numbers go through the per-value pass
        is_number = np.fromiter((isinstance(v, _NUMBER_TYPES) for v in values), dtype=bool, count=len(values))
        ns[is_number] = _NAT
    # A digit string that parsed is a year (2007) or a basic-format date (20070131) to pandas, Unix seconds
    # here; only values at a midnight can be either, so the per-value look stays off most date-times.
    midnight = np.flatnonzero((ns != _NAT) & (ns % 86_400_000_000_000 == 0))
    digits = np.fromiter((type(v) is str and v.isdigit() for v in values[midnight]), dtype=bool,
                         count=len(midnight))
    ns[midnight[digits]] = _NAT
    failed = np.flatnonzero(ns == _NAT)
    if not len(failed):
        return ns
    subset = values[failed]
    seconds = pd.to_numeric(pd.Series(subset, dtype=object), errors="coerce").to_numpy(np.float64)
    if not all_text:  # true / false are no times
        seconds[np.fromiter((isinstance(v, bool | np.bool_) for v in subset), dtype=bool, count=len(subset))] = np.nan
    finite = np.isfinite(seconds)
    in_range = finite & (seconds >= TIME_RANGE_S[0]) & (seconds <= TIME_RANGE_S[1])
    ns[failed[in_range]] = np.floor(seconds[in_range] * 1e9).astype(np.int64)
    ns[failed[finite & ~in_range]] = _NAT + 1
    for i in failed[np.isnan(seconds)]:
        if isinstance(values[i], str):
            parsed = _iso_fallback(values[i], wall_clock)
            if parsed is not None:
                ns[i] = parsed
    return ns


#: a UTC offset (or Z) ending a value, which a wall-clock reading drops (applied only where every value has one)
_OFFSET = r"(?:Z|[+-]\d{2}(?::?\d{2})?)$"
#: a time of day followed by a UTC offset (a date's own "-31" is not one)
_TIME_WITH_OFFSET = re.compile(r"[T ]\d{2}(?::?\d{2}){0,2}(?:[.,]\d+)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$")


def _arrow_times(values: np.ndarray, wall_clock: bool) -> np.ndarray | None:
    """Nanoseconds if Arrow's strict ISO-8601 cast takes every value (all without an offset, or all with
    one), else None. pandas parses values with an offset one by one (4-15 s per million); Arrow does not.

    A cast Arrow refuses costs about as much as one it takes, so the form is chosen on the first value and
    tried on a probe of 1,000 values before the whole column.
    """
    try:
        strings = pa.array(values, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None  # not all strings
    if strings.null_count or not len(strings):
        return None
    with_offset = _TIME_WITH_OFFSET.search(str(values[0])) is not None
    stamp = pa.timestamp("ns", tz="UTC") if with_offset else pa.timestamp("ns")
    try:
        strings.slice(0, 1000).cast(stamp)
        stamps = strings.cast(stamp)
    except pa.ArrowInvalid:
        return None
    if with_offset and wall_clock:
        stamps = pc.replace_substring_regex(strings, _OFFSET, "").cast(pa.timestamp("ns"))
    return stamps.cast(pa.int64()).to_numpy(zero_copy_only=False).copy()


def _pandas_times(col: pd.Series, wall_clock: bool) -> np.ndarray:
    """One pass of pandas' ISO-8601 parser; ``_NAT`` where it refused a value."""
    try:
        with warnings.catch_warnings():
            # with wall_clock, values with different UTC offsets come back as Timestamps one by one (handled
            # below); pandas announces that this will raise one day, which the except below also handles
            warnings.simplefilter("ignore", FutureWarning)
            parsed = pd.to_datetime(col, format="ISO8601", errors="coerce", utc=not wall_clock)
    except (ValueError, TypeError, OverflowError):
        return np.full(len(col), _NAT, dtype=np.int64)  # every value goes through the per-value pass
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_localize(None)
    if parsed.dtype.kind == "M":
        return parsed.to_numpy("datetime64[ns]").view(np.int64).copy()
    return np.fromiter((_NAT if pd.isna(t) else pd.Timestamp(t).tz_localize(None).value for t in parsed),
                       dtype=np.int64, count=len(parsed))


def _timestamps(df: pd.DataFrame, where: str) -> np.ndarray:
    """Unix seconds (``int64``, fractions floored) of the interactions' ``timestamp`` column; see :func:`parse_times`."""
    col = df["timestamp"]
    if col.dtype.kind in "iu":  # plain integers are finite: skip the float round trip (2 copies per row)
        if len(col) and (col.min() < TIME_RANGE_S[0] or col.max() > TIME_RANGE_S[1]):
            _check_time_range(col.to_numpy(np.float64), col, where, "timestamp")
        return col.to_numpy(dtype=np.int64)
    return parse_times(col, where, "timestamp") // 1_000_000_000


def build_bundle(
    name: str,
    interactions: pd.DataFrame | None,
    item_text: pd.DataFrame | None = None,
    social: pd.DataFrame | None = None,
    sales: pd.DataFrame | None = None,
    *,
    policy: ValidationPolicy | None = None,
    files: dict[str, str] | None = None,
    meta: dict[str, Any] | None = None,
    part: Any = None,
) -> DatasetBundle:
    """Validate raw frames against the contract, remap ids and return the bundle.

    ``interactions`` needs ``user_id`` and ``item_id``; ``timestamp`` and ``weight`` are optional (missing
    ``weight`` means 1.0; missing ``timestamp`` sets ``has_timestamps=False`` and temporal splits refuse it).
    ``files`` names the origin of each part (``{"interactions": "data/x/ratings.csv"}``) for error messages.
    ``part`` (one name per interaction row: train, val/valid/validation, test) is a predefined split's part of
    each row; it becomes the ``part`` column that :class:`~ecomlab.data.splits.PredefinedSplit` follows.
    A forecasting-only source passes ``interactions=None`` and a ``sales`` panel.
    """
    policy = policy or ValidationPolicy()
    files = files or {}
    meta = dict(meta or {})
    if interactions is None:
        if sales is None:
            raise DataValidationError(f"{name}: a dataset needs interactions, a sales panel or both")
        empty = pd.DataFrame({"user_id": np.zeros(0, np.int64), "item_id": np.zeros(0, np.int64),
                              "timestamp": np.zeros(0, np.int64), "weight": np.zeros(0)})
        meta.setdefault("files", files)
        return DatasetBundle(name=name, interactions=empty, user_map=IdMap(np.zeros(0, np.int64)),
                             item_map=IdMap(np.zeros(0, np.int64)), sales=validate_sales(
                                 sales, files.get("sales", f"{name}:sales")), has_timestamps=False, meta=meta)
    where = files.get("interactions", f"{name}:interactions")
    require_columns(interactions, ("user_id", "item_id"), where)
    if len(interactions) == 0:
        raise DataValidationError(f"{where}: no interaction rows")
    index = interactions.index
    plain = isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1
    inter = interactions if plain else interactions.reset_index(drop=True)  # no copy of a plain frame
    # sorted codes: index k is the k-th smallest raw id; dropping duplicates below removes no id entirely
    user_codes, user_raw = _factorize_ids(inter, "user_id", where, sort=True)
    item_codes, item_raw = _factorize_ids(inter, "item_id", where, sort=True)
    weight = _numeric(inter, "weight", where) if "weight" in inter else np.ones(len(inter))
    if (weight < 0).any():
        bad = weight < 0
        raise DataValidationError(
            f"{where}: column 'weight' has {int(bad.sum())} negative value(s); first rows {_rows(bad)}{ROWS}; "
            "weights must be >= 0"
        )
    has_ts = "timestamp" in inter
    ts = _timestamps(inter, where) if has_ts else np.zeros(len(inter), dtype=np.int64)

    columns = {"user_id": user_codes, "item_id": item_codes, "timestamp": _own(ts), "weight": _own(weight)}
    if part is not None and len(part) != len(inter):
        raise ValueError(f"{where}: {len(part)} part names for {len(inter)} interaction rows")
    parts = None if part is None else _parts(pd.Series(np.asarray(part)), where)
    if parts is not None:
        columns[PART_COLUMN] = parts
        meta["predefined_parts"] = {name: int((parts == code).sum()) for code, name in enumerate(PART_NAMES)}
    # copy=False: the arrays are the bundle's own, so the frame keeps them instead of copying them
    frame = pd.DataFrame(columns, copy=False)
    # with predefined parts, a repeat in another part is that part's own event (the files say so)
    dup = (_duplicate_rows(user_codes, item_codes, ts) if parts is None else
           pd.DataFrame({"u": user_codes, "i": item_codes, "t": ts, "p": parts}).duplicated(keep="first").to_numpy())
    if dup.any() and not has_ts and policy.duplicates != "error":
        # all-zero times would make every repeat a "duplicate event" and keep the first; file order is the only time
        meta["repeated_pairs_without_timestamps"] = int(dup.sum())
        dup = np.zeros_like(dup)
    if dup.any():
        if policy.duplicates == "error":
            raise DataValidationError(
                f"{where}: {int(dup.sum())} duplicate (user_id, item_id, timestamp) row(s); first rows {_rows(dup)}{ROWS}"
            )
        _warn(meta, "duplicate_interactions", int(dup.sum()),
              f"{where}: dropped {int(dup.sum())} duplicate (user_id, item_id, timestamp) row(s)")
        keep = np.flatnonzero(~dup)
        frame = frame.take(keep)
        frame.index = pd.RangeIndex(len(frame))
    user_map, item_map = IdMap(user_raw), IdMap(item_raw)

    text_frame = None
    if item_text is not None:
        twhere = files.get("item_text", f"{name}:item_text")
        require_columns(item_text, TEXT_COLUMNS, twhere)
        text_frame = item_text.reset_index(drop=True)
        _check_ids(text_frame, "item_id", twhere)
        text_frame = _remap(text_frame, "item_id", item_map, policy, twhere, meta, "unknown_text_items")
        text_frame["text"] = text_frame["text"].fillna("").astype(str)
        dup_t = text_frame.duplicated("item_id", keep="first").to_numpy()
        _warn(meta, "duplicate_text_rows", int(dup_t.sum()), f"{twhere}: kept the first of duplicate item_id rows")
        text_frame = text_frame.loc[~dup_t].reset_index(drop=True)

    social_frame = None
    if social is not None:
        swhere = files.get("social", f"{name}:social")
        require_columns(social, SOCIAL_COLUMNS, swhere)
        social_frame = social[list(SOCIAL_COLUMNS)].reset_index(drop=True)
        for col in SOCIAL_COLUMNS:
            _check_ids(social_frame, col, swhere)
        social_frame = _remap(social_frame, "user_id", user_map, policy, swhere, meta, "unknown_social_users")
        social_frame = _remap(social_frame, "friend_id", user_map, policy, swhere, meta, "unknown_social_users")
        loops = (social_frame["user_id"] == social_frame["friend_id"]).to_numpy()
        dup_s = social_frame.duplicated(keep="first").to_numpy() & ~loops
        _warn(meta, "social_self_loops", int(loops.sum()), f"{swhere}: dropped {int(loops.sum())} self-loop edge(s)")
        _warn(meta, "duplicate_social_edges", int(dup_s.sum()), f"{swhere}: dropped {int(dup_s.sum())} duplicate edge(s)")
        social_frame = social_frame.loc[~(loops | dup_s)].reset_index(drop=True)

    sales_frame = validate_sales(sales, files.get("sales", f"{name}:sales")) if sales is not None else None
    meta.setdefault("files", files)
    return DatasetBundle(name=name, interactions=frame, user_map=user_map, item_map=item_map,
                         item_text=text_frame, social=social_frame, sales=sales_frame,
                         has_timestamps=has_ts, meta=meta)


def check_part_files(files: Any) -> dict[str, str]:
    """``{part: file}`` of a predefined split, checked: train is needed, the other keys name parts."""
    parts = {str(k): str(v) for k, v in dict(files).items()}
    unknown = sorted(set(parts) - set(_PART_CODES))
    if unknown or "train" not in parts or len(parts) < 2:
        raise ValueError(
            f"data.source.interactions={parts}: one file per part of a predefined split, with keys train, val "
            f"(or valid) and test; train and at least one of the others are needed"
            + (f" (unknown key(s) {unknown})" if unknown else ""))
    return parts


def stack_parts(frames: list[tuple[str, Any, pd.DataFrame]]) -> tuple[pd.DataFrame, np.ndarray, str]:
    """The ``(part, path, frame)`` files of a predefined split as one frame (rows in the given order), each row's
    part name for :func:`build_bundle`'s ``part``, and the ``where`` of messages, whose row numbers count
    through the files in that order."""
    part = np.repeat(np.array([name for name, _, _ in frames], dtype=object), [len(f) for _, _, f in frames])
    where = " + ".join(f"{path} ({name})" for name, path, _ in frames)
    return (pd.concat([f for _, _, f in frames], ignore_index=True), part,
            where + " (rows counted through the files in this order)")


def _parts(part: pd.Series, where: str) -> np.ndarray:
    """Part names as codes 0 / 1 / 2 (train / validation / test); unknown names refused with their rows."""
    codes = part.astype("string").str.strip().str.lower().map(_PART_CODES)
    bad = codes.isna().to_numpy()
    if bad.any():
        raise DataValidationError(
            f"{where}: {int(bad.sum())} row(s) name no part; first rows {_rows(bad)}{ROWS} (values "
            f"{_sample(part.to_numpy()[bad])}); expected train, val (or valid, validation) or test")
    return codes.to_numpy(dtype=np.int8)


def _own(values: np.ndarray) -> np.ndarray:
    """``values``, copied if it is a view (e.g. of the caller's frame), so the bundle never aliases its input."""
    return values if values.flags.owndata else values.copy()


def _remap(df: pd.DataFrame, column: str, id_map: IdMap, policy: ValidationPolicy, where: str,
           meta: dict[str, Any], key: str) -> pd.DataFrame:
    raw = df[column].to_numpy()
    lookup = pd.Index(id_map.raw)
    try:
        idx = lookup.get_indexer(pd.Index(raw.astype(id_map.raw.dtype)))
    except (TypeError, ValueError):
        idx = lookup.get_indexer(pd.Index(raw))
    unknown = idx < 0
    if unknown.any():
        if policy.unknown_ids == "error":
            raise DataValidationError(
                f"{where}: column '{column}' has {int(unknown.sum())} id(s) not in the interactions; "
                f"first rows {_rows(unknown)}{ROWS} (ids {raw[unknown][:5].tolist()})"
            )
        _warn(meta, key, int(unknown.sum()),
              f"{where}: dropped {int(unknown.sum())} row(s) whose '{column}' is not in the interactions")
    out = df.loc[~unknown].copy()
    out[column] = idx[~unknown].astype(np.int64)
    return out.reset_index(drop=True)


def validate_sales(sales: pd.DataFrame, where: str) -> pd.DataFrame:
    """Check a long-format panel ``(unique_id, ds, y, *covariates)``; returns it sorted by series and time."""
    require_columns(sales, SALES_COLUMNS, where)
    if len(sales) == 0:
        raise DataValidationError(f"{where}: the sales panel has no rows")
    out = sales.reset_index(drop=True).copy()
    _check_ids(out, "unique_id", where)
    out["unique_id"] = out["unique_id"].astype(str)
    out["ds"] = parse_times(out["ds"], where, "ds", wall_clock=True).view("datetime64[ns]")
    out["y"] = _numeric(out, "y", where)
    dup = out.duplicated(["unique_id", "ds"]).to_numpy()
    if dup.any():
        raise DataValidationError(
            f"{where}: {int(dup.sum())} duplicate (unique_id, ds) row(s); first rows {_rows(dup)}{ROWS}"
        )
    return out.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
