"""Evaluation protocols: how interactions (and sales series) are divided into train / validation / test.

Every recommendation splitter is a small frozen configuration object that Hydra can build
(``_target_: ecomlab.data.splits.RatioSplit``) and that is called on the interactions frame of a
:class:`~ecomlab.data.bundle.DatasetBundle`::

    split = RatioSplit(ratios=(0.8, 0.1, 0.1), seed=0)(bundle.interactions, bundle.has_timestamps)
    split = split_bundle(splitter, bundle)          # the same, with the dataset name in error messages

The result is a :class:`Split` with three frames (``train``, ``val``, ``test``) that have exactly the input's
columns (extra columns travel along), a fresh ``RangeIndex`` and the input's row order within each part.
Every input row lands in exactly one part, so the parts are disjoint and their union is the input.
``splitter.describe()`` gives the configuration for run records; ``split.protocol`` holds the same plus
anything resolved from the data (e.g. the time cut-offs a ratio-based temporal split chose).

Protocols
---------
:class:`RatioSplit` -- per-user random split.
    Each user's interactions are shuffled with a seeded random key and cut into test / val / train by the
    ratios. For a user with ``n`` interactions: ``n_test = round(n * r_test)`` but at least 1 (when
    ``r_test > 0``), ``n_val = round(n * r_val)`` but at least 1 (when ``r_val > 0``), and the rest goes to
    train, which always keeps at least one interaction (validation is shrunk first, then test, to make
    room). Rounding is half-up. Users with fewer than ``min_interactions`` interactions keep *all* of them
    in train: they are trained on but never evaluated. ``r_val = 0`` gives an empty validation frame.
    Ignores timestamps, so it works for datasets without them.

:class:`TemporalSplit` -- global time cut-offs.
    Rows with ``timestamp < val_start`` go to train, ``val_start <= timestamp < test_start`` to val,
    ``timestamp >= test_start`` to test. The cut-offs are given explicitly (ISO date strings, read as UTC,
    or Unix seconds) or placed at timestamp quantiles by ``ratios``. Users and items that first appear after
    a cut-off are *kept* in val / test; the evaluation only scores users who have train interactions, and
    unseen items simply cannot be recommended by models that need training data for them. Needs timestamps.

:class:`LeaveOneOutSplit` -- per-user latest interactions.
    Each user's latest interaction goes to test and the second latest to val (when ``val=True`` and the
    user has at least 3 interactions); the rest is train. Users with one interaction are train only, users
    with two get train + test. Equal timestamps are ordered by a seeded random key, so which of several
    simultaneous "latest" interactions is held out depends on ``seed`` only. Needs timestamps.

:class:`ColdStartItemSplit` -- whole items held out (cold-start items, for content models).
    The distinct items are shuffled with a seeded random key and divided into train / val / test items by the
    ratios, with the same counting rules as :class:`RatioSplit` applied to the number of items: ``n_test =
    round(n_items * r_test)`` but at least 1 (when ``r_test > 0``), likewise ``n_val``, and train keeps at least
    one item (validation is shrunk first, then test). Every interaction of a val (test) item goes to val
    (test), so val and test items have no training interactions at all: only models that score items from
    content (e.g. item text) can recommend them. Users keep whatever part their interactions fall into; the
    evaluation scores users with held-out interactions, ranking all items. Ignores timestamps.

:class:`PredefinedSplit` -- the parts a data set's own files give.
    Benchmarks often ship their split (RecBole's ``benchmark_filename``, the LightGCN and DiffNet releases):
    the source reads each file and marks its rows with the ``part`` column (``data=split-files``,
    ``data=recbole-benchmark``, ``data=user-item-lists``), and this split follows it row for row. A release
    without a validation file gets none (the last epoch is tested) unless ``val_ratio`` carves one from train
    per user, with :class:`RatioSplit`'s rules. Ignores timestamps.

:class:`RollingOrigin` -- backtest windows for forecasting.
    A series of length ``L`` is evaluated on ``n_windows`` test windows: window ``i`` trains on
    ``y[:cutoff]`` and forecasts ``y[cutoff:cutoff + horizon]``. The last test window ends at the end of
    the series and consecutive origins are ``step`` apart (default ``step = horizon``, i.e. non-overlapping
    futures). The ``val_windows`` validation windows come immediately before the first test window with the
    same step: validation window ``i`` has ``cutoff = first_test_cutoff - (val_windows - i) * step``. When
    ``step >= horizon`` every validation future ends at or before the first test cutoff, so tuning never
    sees test data; with ``step < horizon`` validation futures overlap the start of the test period
    (documented, allowed). The earliest window must keep at least ``min_train`` observations of history
    (default ``max(2 * horizon, 4)``; lower it, e.g. to one season, to carve a validation window out of
    short series such as M3's).

    **Protocol from the data.** ``horizon`` (and so ``step`` and ``min_train``) may be left ``None``: the data
    module then calls :meth:`RollingOrigin.resolved` with the default of the panel's frequency
    (:data:`FREQUENCY_DEFAULTS`: season length / horizon hourly 24/48, daily 7/28, weekly 52/13, monthly 12/18,
    quarterly 4/8, yearly 1/6; :func:`resolve_protocol` does the same for the season length and says what it
    inferred and from what). An explicit value always wins.

Determinism: every random choice comes from ``numpy.random.default_rng(seed)`` drawn once per call over the
rows in input order, so the same frame (same row order) and seed give the same split. :class:`ColdStartItemSplit`
draws over the distinct item ids in sorted order instead, so its item assignment ignores row order.
"""

from __future__ import annotations

import datetime as _dt
import numbers
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries import offsets
from pandas.tseries.frequencies import to_offset

from ecomlab.data.bundle import PART_COLUMN, DatasetBundle, DataValidationError, require_columns

__all__ = [
    "BacktestWindow",
    "ColdStartItemSplit",
    "FREQUENCY_DEFAULTS",
    "LeaveOneOutSplit",
    "PredefinedSplit",
    "RatioSplit",
    "RollingOrigin",
    "Split",
    "TemporalSplit",
    "frequency_family",
    "resolve_protocol",
    "split_bundle",
]

TRAIN, VAL, TEST = 0, 1, 2


# --------------------------------------------------------------------------- result


@dataclass(frozen=True, eq=False)
class Split:
    """Train / validation / test interactions (same columns as the input, index reset)."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    protocol: dict[str, Any] = field(default_factory=dict)
    #: per stage ("val", "test"), the item indices that may be ranked; a missing stage ranks every item.
    #: Cold-start splits rank only their held-out items, as cold-start protocols do.
    candidates: dict[str, np.ndarray] = field(default_factory=dict)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def summary(self) -> dict[str, Any]:
        """Protocol plus part sizes, for run records."""
        return {**self.protocol, **{f"n_{k}": v for k, v in self.sizes().items()}}


def take_rows(frame: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """``frame.loc[mask].reset_index(drop=True)`` with one copy of the data instead of two (``rows``: a mask
    or positions)."""
    rows = np.flatnonzero(rows) if rows.dtype == bool else rows
    out = frame.take(rows)
    out.index = pd.RangeIndex(len(out))
    return out


def _make_split(interactions: pd.DataFrame, part: np.ndarray, protocol: dict[str, Any]) -> Split:
    frames = [take_rows(interactions, part == code) for code in (TRAIN, VAL, TEST)]
    return Split(train=frames[0], val=frames[1], test=frames[2], protocol=protocol)


def split_bundle(splitter: RatioSplit | TemporalSplit | LeaveOneOutSplit | ColdStartItemSplit | PredefinedSplit,
                 bundle: DatasetBundle) -> Split:
    """Apply ``splitter`` to ``bundle.interactions`` (passes ``has_timestamps`` and the dataset name)."""
    return splitter(bundle.interactions, bundle.has_timestamps, name=bundle.name)


# --------------------------------------------------------------------------- argument checks


def _check_int(owner: str, key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        raise ValueError(f"{owner}.{key}={value!r}; expected an integer >= {minimum}")
    return int(value)


def _check_ratios(owner: str, ratios: Any) -> tuple[float, float, float]:
    """Three non-negative numbers summing to 1 (abs tol 1e-6) with a positive train share."""
    try:
        values = tuple(float(r) for r in ratios)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}.ratios={ratios!r}; expected 3 numbers (train, val, test)") from None
    shown = list(values)
    if len(values) != 3:
        raise ValueError(f"{owner}.ratios={shown}; expected exactly 3 numbers (train, val, test)")
    if not all(np.isfinite(values)) or min(values) < 0:
        raise ValueError(f"{owner}.ratios={shown}; every ratio must be a finite number >= 0")
    if abs(sum(values) - 1.0) > 1e-6:
        raise ValueError(f"{owner}.ratios={shown}; ratios must sum to 1 (they sum to {sum(values):.6g})")
    if values[0] <= 0:
        raise ValueError(f"{owner}.ratios={shown}; the train ratio must be > 0")
    return values  # type: ignore[return-value]


def _check_holds_out(owner: str, ratios: tuple[float, float, float]) -> None:
    """A split that holds nothing out evaluates nothing: every run on it would end with empty metrics."""
    if ratios[1] <= 0 and ratios[2] <= 0:
        raise ValueError(f"{owner}.ratios={list(ratios)}; the validation and test ratios are both 0, so nothing "
                         "would be evaluated; give the test part (or the validation part) a share")


def _check_frame(owner: str, interactions: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    if not isinstance(interactions, pd.DataFrame):
        raise TypeError(f"{owner}: expected a pandas DataFrame of interactions, got {type(interactions).__name__}")
    require_columns(interactions, columns, f"{owner} on {name}")


def _require_timestamps(owner: str, has_timestamps: bool, name: str) -> None:
    if not has_timestamps:
        raise DataValidationError(
            f"{owner} needs timestamps; {name} has none (use RatioSplit for datasets without timestamps)"
        )


def _to_unix_seconds(owner: str, key: str, value: Any) -> int:
    """Unix seconds from an int, an integral float, a digit string, an ISO date string or a date object."""
    if isinstance(value, bool):
        raise ValueError(f"{owner}.{key}={value!r}; expected an ISO date string or Unix seconds")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    if isinstance(value, str | _dt.date | pd.Timestamp | np.datetime64):
        try:
            ts = pd.Timestamp(value)
        except (TypeError, ValueError):
            ts = pd.NaT
        if ts is not pd.NaT and not pd.isna(ts):
            ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
            return int(ts.value // 10**9)  # .value is always nanoseconds
    raise ValueError(f"{owner}.{key}={value!r}; expected an ISO date string (read as UTC) or Unix seconds")


# --------------------------------------------------------------------------- per-user grouping


def _group_ranks(users: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows sorted by ``order`` (user-major): rank within the user and the user's row count."""
    sorted_users = users[order]
    n = len(sorted_users)
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = sorted_users[1:] != sorted_users[:-1]
    starts = np.flatnonzero(new_group)
    counts = np.diff(np.append(starts, n))
    group = np.cumsum(new_group) - 1
    rank = np.arange(n) - starts[group]
    return rank, counts[group]


def _round_half_up(x: np.ndarray) -> np.ndarray:
    return np.floor(x + 0.5).astype(np.int64)


def user_major_order(users: np.ndarray, key: np.ndarray) -> np.ndarray:
    """``np.lexsort((key, users))``: rows by user, then by ``key``, ties in row order.

    For non-negative integer users below 2**32 it is computed as a stable sort by ``key`` followed by a
    two-pass (16-bit digits) radix sort by user: numpy's stable sort of 16-bit integers is a radix sort, so
    this is about twice as fast as ``lexsort`` on tens of millions of rows, with the identical result.
    """
    users = np.asarray(users)
    if (users.dtype.kind not in "iu" or len(users) == 0 or int(users.min()) < 0
            or int(users.max()) >= 2**32):
        return np.lexsort((key, users))
    order = np.argsort(key, kind="stable")
    for shift in (0, 16):  # least significant digit first: each stable pass keeps the previous order on ties
        digit = ((users[order] >> shift) & 0xFFFF).astype(np.uint16)
        order = order[np.argsort(digit, kind="stable")]
    return order


# --------------------------------------------------------------------------- recommendation splitters


class RatioSplit:
    """Per-user random split by ``ratios = (train, val, test)``; see the module docstring."""

    def __init__(self, ratios: Iterable[float] = (0.8, 0.1, 0.1), seed: int = 0, min_interactions: int = 3) -> None:
        self.ratios = _check_ratios("RatioSplit", ratios)
        _check_holds_out("RatioSplit", self.ratios)
        self.seed = _check_int("RatioSplit", "seed", seed, 0)
        self.min_interactions = _check_int("RatioSplit", "min_interactions", min_interactions, 1)

    def describe(self) -> dict[str, Any]:
        return {"split": "ratio", "ratios": list(self.ratios), "seed": self.seed,
                "min_interactions": self.min_interactions}

    def __call__(self, interactions: pd.DataFrame, has_timestamps: bool = True, *,
                 name: str = "the dataset") -> Split:
        _check_frame("RatioSplit", interactions, ("user_id",), name)
        return _make_split(interactions, self._codes(interactions["user_id"].to_numpy()), self.describe())

    def _codes(self, users: np.ndarray) -> np.ndarray:
        """The part code (train / val / test) of each row of ``users``."""
        n = len(users)
        order = user_major_order(users, np.random.default_rng(self.seed).random(n))
        # per user (a run of equal ids in sorted order): its row count; everything below is per user, not per row
        sorted_users = users[order]
        new_user = np.ones(n, dtype=bool)
        new_user[1:] = sorted_users[1:] != sorted_users[:-1]
        del sorted_users
        starts = np.flatnonzero(new_user)
        count = np.diff(np.append(starts, n))

        n_test, n_val = self._held_out(count)

        # in sorted order each user's rows are test (lowest keys), validation, then train: one run each
        runs = np.stack([n_test, n_val, count - n_test - n_val], axis=1).ravel()  # [U, 3] -> [3U]
        codes = np.tile(np.array([TEST, VAL, TRAIN], dtype=np.int8), len(count))  # [3U]
        part = np.empty(n, dtype=np.int8)
        part[order] = np.repeat(codes, runs)  # [n] in sorted order -> row order
        return part

    def _held_out(self, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(n_test, n_val)`` per user of ``count`` interactions; see the module docstring."""
        _, r_val, r_test = self.ratios
        n_test = _round_half_up(count * r_test)
        n_val = _round_half_up(count * r_val)
        if r_test > 0:
            n_test = np.maximum(n_test, 1)
        if r_val > 0:
            n_val = np.maximum(n_val, 1)
        n_test = np.minimum(n_test, count - 1)          # train keeps at least one row ...
        n_val = np.clip(n_val, 0, count - 1 - n_test)    # ... shrinking validation first
        evaluated = count >= self.min_interactions
        return np.where(evaluated, n_test, 0), np.where(evaluated, n_val, 0)

    def parts(self) -> tuple[str, ...]:
        """The held-out parts this split makes when the data is large enough."""
        _, r_val, r_test = self.ratios
        return tuple(stage for stage, share in (("val", r_val), ("test", r_test)) if share > 0)

    def requirement(self, stage: str) -> str:
        """What a user needs to have an interaction in ``stage`` (for the message when nobody has one)."""
        counts = np.arange(1, 1001)
        n_test, n_val = self._held_out(counts)
        held = n_test if stage == "test" else n_val
        least = int(counts[held > 0][0]) if (held > 0).any() else None
        return (f"RatioSplit puts interactions of a user in the {stage} part only when the user has at least "
                f"{least} interactions, one of them with an item not among the user's others "
                f"(data.split.min_interactions={self.min_interactions}, data.split.ratios={list(self.ratios)})")

    def __repr__(self) -> str:
        return f"RatioSplit(ratios={self.ratios}, seed={self.seed}, min_interactions={self.min_interactions})"


class TemporalSplit:
    """Global time cut-offs ``val_start <= test_start``; see the module docstring.

    Give either both cut-offs (ISO date strings read as UTC, or Unix seconds) or ``ratios``; with ``ratios``
    the cut-offs are the timestamps at the ``r_train`` and ``r_train + r_val`` quantiles of all rows (ties at
    a cut-off all go to the later part, so the shares are approximate on data with many equal timestamps).
    """

    def __init__(self, val_start: str | int | None = None, test_start: str | int | None = None,
                 ratios: Iterable[float] | None = None) -> None:
        given = (val_start is not None, test_start is not None)
        if ratios is not None:
            if any(given):
                raise ValueError(
                    f"TemporalSplit: give either val_start/test_start or ratios, not both "
                    f"(val_start={val_start!r}, test_start={test_start!r}, ratios={ratios!r})"
                )
            self.ratios: tuple[float, float, float] | None = _check_ratios("TemporalSplit", ratios)
            self.val_start: int | None = None
            self.test_start: int | None = None
        else:
            if not all(given):
                raise ValueError(
                    f"TemporalSplit: give both val_start and test_start, or ratios "
                    f"(val_start={val_start!r}, test_start={test_start!r})"
                )
            self.ratios = None
            self.val_start = _to_unix_seconds("TemporalSplit", "val_start", val_start)
            self.test_start = _to_unix_seconds("TemporalSplit", "test_start", test_start)
            if self.val_start > self.test_start:
                raise ValueError(
                    f"TemporalSplit.val_start={val_start!r} ({self.val_start}) is after "
                    f"test_start={test_start!r} ({self.test_start}); expected val_start <= test_start"
                )

    def describe(self) -> dict[str, Any]:
        return {"split": "temporal", "val_start": self.val_start, "test_start": self.test_start,
                "ratios": None if self.ratios is None else list(self.ratios)}

    def cutoffs(self, timestamps: np.ndarray) -> tuple[int, int]:
        """The ``(val_start, test_start)`` used for these timestamps (Unix seconds)."""
        if self.ratios is None:
            assert self.val_start is not None and self.test_start is not None
            return self.val_start, self.test_start
        ts = np.sort(np.asarray(timestamps, dtype=np.int64))
        if len(ts) == 0:
            raise DataValidationError("TemporalSplit: no interactions to place ratio cut-offs on")
        r_train, r_val, _ = self.ratios

        def at(share: float) -> int:
            k = int(np.floor(len(ts) * share + 0.5))
            return int(ts[k]) if k < len(ts) else int(ts[-1]) + 1

        return at(r_train), at(r_train + r_val)

    def __call__(self, interactions: pd.DataFrame, has_timestamps: bool = True, *,
                 name: str = "the dataset") -> Split:
        _require_timestamps("TemporalSplit", has_timestamps, name)
        _check_frame("TemporalSplit", interactions, ("timestamp",), name)
        ts = interactions["timestamp"].to_numpy(dtype=np.int64)
        val_start, test_start = self.cutoffs(ts)
        part = np.full(len(ts), TRAIN, dtype=np.int8)
        part[ts >= val_start] = VAL
        part[ts >= test_start] = TEST
        protocol = {**self.describe(), "val_start": val_start, "test_start": test_start,
                    "val_start_iso": _iso(val_start), "test_start_iso": _iso(test_start)}
        return _make_split(interactions, part, protocol)

    def parts(self) -> tuple[str, ...]:
        """The held-out parts this split makes when the data reaches its cut-offs."""
        if self.ratios is not None:
            return ("val", "test") if self.ratios[1] > 0 else ("test",)
        return ("val", "test") if self.val_start != self.test_start else ("test",)

    def requirement(self, stage: str) -> str:
        """What the data needs to have interactions in ``stage`` (or ``train``)."""
        if self.ratios is not None:
            return (f"TemporalSplit cuts at the timestamp quantiles data.split.ratios={list(self.ratios)}, so the "
                    f"{stage} part needs interactions at later times than the earlier parts")
        cut = {"train": ("before", "val_start", self.val_start), "val": ("from", "val_start", self.val_start),
               "test": ("from", "test_start", self.test_start)}[stage]
        return (f"TemporalSplit's {stage} part holds the interactions {cut[0]} data.split.{cut[1]}="
                f"{_iso(cut[2] or 0)}")

    def __repr__(self) -> str:
        return f"TemporalSplit(val_start={self.val_start}, test_start={self.test_start}, ratios={self.ratios})"


def _iso(seconds: int) -> str:
    return pd.Timestamp(seconds, unit="s", tz="UTC").isoformat()


class LeaveOneOutSplit:
    """Per-user latest interaction to test, second latest to val; see the module docstring."""

    def __init__(self, seed: int = 0, val: bool = True) -> None:
        self.seed = _check_int("LeaveOneOutSplit", "seed", seed, 0)
        if not isinstance(val, bool | np.bool_):
            raise ValueError(f"LeaveOneOutSplit.val={val!r}; expected true or false")
        self.val = bool(val)

    def describe(self) -> dict[str, Any]:
        return {"split": "leave_one_out", "seed": self.seed, "val": self.val}

    def __call__(self, interactions: pd.DataFrame, has_timestamps: bool = True, *,
                 name: str = "the dataset") -> Split:
        _require_timestamps("LeaveOneOutSplit", has_timestamps, name)
        _check_frame("LeaveOneOutSplit", interactions, ("user_id", "timestamp"), name)
        users = interactions["user_id"].to_numpy()
        ts = interactions["timestamp"].to_numpy(dtype=np.int64)
        key = np.random.default_rng(self.seed).random(len(users))
        # user-major, latest first; equal timestamps in seeded random order
        order = np.lexsort((key, -ts, users))
        rank, count = _group_ranks(users, order)
        part_sorted = np.full(len(users), TRAIN, dtype=np.int8)
        part_sorted[(rank == 0) & (count >= 2)] = TEST
        if self.val:
            part_sorted[(rank == 1) & (count >= 3)] = VAL
        part = np.empty(len(users), dtype=np.int8)
        part[order] = part_sorted
        return _make_split(interactions, part, self.describe())

    def parts(self) -> tuple[str, ...]:
        return ("val", "test") if self.val else ("test",)

    def requirement(self, stage: str) -> str:
        least = 2 if stage == "test" else 3
        return (f"LeaveOneOutSplit holds out a user's latest interaction for test and the one before for "
                f"validation (data.split.val={str(self.val).lower()}), so the {stage} part needs users with at "
                f"least {least} interactions, the held-out one with an item not among the user's earlier ones")

    def __repr__(self) -> str:
        return f"LeaveOneOutSplit(seed={self.seed}, val={self.val})"


class ColdStartItemSplit:
    """Whole items to train / val / test by ``ratios = (train, val, test)``; see the module docstring."""

    def __init__(self, ratios: Iterable[float] = (0.8, 0.1, 0.1), seed: int = 0) -> None:
        self.ratios = _check_ratios("ColdStartItemSplit", ratios)
        _check_holds_out("ColdStartItemSplit", self.ratios)
        self.seed = _check_int("ColdStartItemSplit", "seed", seed, 0)

    def describe(self) -> dict[str, Any]:
        return {"split": "cold_start_item", "ratios": list(self.ratios), "seed": self.seed}

    def item_parts(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(distinct items sorted, part code of each)`` for the item ids in ``items``."""
        unique = np.unique(items)
        n = len(unique)
        _, r_val, r_test = self.ratios
        n_test = int(_round_half_up(np.array([n * r_test]))[0])
        n_val = int(_round_half_up(np.array([n * r_val]))[0])
        if r_test > 0:
            n_test = max(n_test, 1)
        if r_val > 0:
            n_val = max(n_val, 1)
        n_test = max(min(n_test, n - 1), 0)          # train keeps at least one item ...
        n_val = max(min(n_val, n - 1 - n_test), 0)    # ... shrinking validation first
        order = np.argsort(np.random.default_rng(self.seed).random(n), kind="stable")
        codes = np.full(n, TRAIN, dtype=np.int8)
        codes[order[:n_test]] = TEST
        codes[order[n_test:n_test + n_val]] = VAL
        return unique, codes

    def __call__(self, interactions: pd.DataFrame, has_timestamps: bool = True, *,
                 name: str = "the dataset") -> Split:
        _check_frame("ColdStartItemSplit", interactions, ("item_id",), name)
        items = interactions["item_id"].to_numpy()
        if len(items) == 0:
            raise DataValidationError(f"ColdStartItemSplit: {name} has no interactions to split")
        unique, codes = self.item_parts(items)
        part = codes[np.searchsorted(unique, items)]
        protocol = {**self.describe(), "n_items_train": int((codes == TRAIN).sum()),
                    "n_items_val": int((codes == VAL).sum()), "n_items_test": int((codes == TEST).sum())}
        split = _make_split(interactions, part, protocol)
        candidates = {"val": unique[codes == VAL].astype(np.int64), "test": unique[codes == TEST].astype(np.int64)}
        return Split(train=split.train, val=split.val, test=split.test, protocol=protocol, candidates=candidates)

    def parts(self) -> tuple[str, ...]:
        _, r_val, r_test = self.ratios
        return tuple(stage for stage, share in (("val", r_val), ("test", r_test)) if share > 0)

    def requirement(self, stage: str) -> str:
        least = 3 if stage == "val" and "test" in self.parts() else 2  # one train item, then test, then val
        return (f"ColdStartItemSplit holds out whole items (data.split.ratios={list(self.ratios)}; train keeps at "
                f"least one item, validation shrinks first), so the {stage} part needs at least {least} distinct "
                "items")

    def __repr__(self) -> str:
        return f"ColdStartItemSplit(ratios={self.ratios}, seed={self.seed})"


class PredefinedSplit:
    """The train / validation / test parts as the data set's own files give them; see the module docstring.

    ``val_ratio > 0`` carves a validation part from the train part per user (:class:`RatioSplit`'s rules,
    ``seed``) for releases that ship only train and test files (LightGCN's); it is refused when the files
    give a validation part already.
    """

    def __init__(self, val_ratio: float = 0.0, seed: int = 0, min_interactions: int = 3) -> None:
        if not isinstance(val_ratio, numbers.Real) or isinstance(val_ratio, bool) or not 0.0 <= val_ratio < 1.0:
            raise ValueError(f"PredefinedSplit.val_ratio={val_ratio!r}; expected a number in [0, 1)")
        self.val_ratio = float(val_ratio)
        self.seed = _check_int("PredefinedSplit", "seed", seed, 0)
        self.min_interactions = _check_int("PredefinedSplit", "min_interactions", min_interactions, 1)
        #: the held-out parts of the last split made (the files decide; before a split, both)
        self._given: tuple[str, ...] = ("val", "test")

    def describe(self) -> dict[str, Any]:
        return {"split": "predefined", "val_ratio": self.val_ratio, "seed": self.seed,
                "min_interactions": self.min_interactions}

    def __call__(self, interactions: pd.DataFrame, has_timestamps: bool = True, *,
                 name: str = "the dataset") -> Split:
        if PART_COLUMN not in interactions:
            raise DataValidationError(
                f"PredefinedSplit: {name} does not say which part each interaction belongs to; read it from "
                "its split files (data=split-files with data.source.interactions={train: ..., val: ..., test: "
                "...}, data=recbole-benchmark, or data=user-item-lists) or choose another data.split")
        part = interactions[PART_COLUMN].to_numpy().astype(np.int8)  # a copy: carving writes into it
        given = {stage for stage, code in (("val", VAL), ("test", TEST)) if (part == code).any()}
        if self.val_ratio > 0:
            if "val" in given:
                raise DataValidationError(
                    f"PredefinedSplit: {name}'s files give a validation part already; data.split.val_ratio="
                    f"{self.val_ratio:g} would carve a second one from train (set it to 0)")
            train_rows = np.flatnonzero(part == TRAIN)
            carve = RatioSplit((1.0 - self.val_ratio, self.val_ratio, 0.0), self.seed, self.min_interactions)
            users = interactions["user_id"].to_numpy()[train_rows]
            carved = carve._codes(users)  # [n_train] codes of the train rows
            part[train_rows[carved == VAL]] = VAL
            given.add("val")
        self._given = tuple(stage for stage in ("val", "test") if stage in given)
        protocol = {**self.describe(), "parts_given": ["train", *self._given]}
        return _make_split(interactions, part, protocol)

    def parts(self) -> tuple[str, ...]:
        """The held-out parts the files gave (plus a carved validation part); both before the first split."""
        return self._given

    def requirement(self, stage: str) -> str:
        carve = (f"; data.split.val_ratio={self.val_ratio:g} carves validation from train for users with at "
                 f"least {self.min_interactions} train interactions" if self.val_ratio > 0 else "")
        return (f"PredefinedSplit takes the {stage} part from the data set's own {stage} file, whose users must "
                f"also have train interactions and whose items must not all be among those users' train items"
                f"{carve}")

    def __repr__(self) -> str:
        return f"PredefinedSplit(val_ratio={self.val_ratio}, seed={self.seed})"


# --------------------------------------------------------------------------- forecasting backtests


@dataclass(frozen=True)
class BacktestWindow:
    """One forecast origin: train on ``y[:cutoff]``, forecast ``y[cutoff:cutoff + horizon]``.

    ``index`` counts within its own list (validation or test), 0 = earliest.
    """

    index: int
    cutoff: int
    horizon: int

    @property
    def end(self) -> int:
        """One past the last forecast position."""
        return self.cutoff + self.horizon

    @property
    def train_slice(self) -> slice:
        return slice(0, self.cutoff)

    @property
    def future_slice(self) -> slice:
        return slice(self.cutoff, self.end)


class RollingOrigin:
    """Rolling-origin backtest windows; see the module docstring.

    ``horizon=None`` leaves the horizon to the data's frequency: such a backtest has to be
    :meth:`resolved` before it cuts windows (the data module does it at setup).
    """

    def __init__(self, horizon: int | None = None, n_windows: int = 3, step: int | None = None,
                 val_windows: int = 1, min_train: int | None = None) -> None:
        self.horizon = None if horizon is None else _check_int("RollingOrigin", "horizon", horizon, 1)
        self.n_windows = _check_int("RollingOrigin", "n_windows", n_windows, 1)
        #: the configured values; ``None`` ones follow the horizon
        self.step_arg = None if step is None else _check_int("RollingOrigin", "step", step, 1)
        self.min_train_arg = None if min_train is None else _check_int("RollingOrigin", "min_train", min_train, 1)
        self.val_windows = _check_int("RollingOrigin", "val_windows", val_windows, 0)

    @property
    def step(self) -> int:
        """Distance between consecutive origins (default: the horizon, so futures do not overlap)."""
        return self.step_arg if self.step_arg is not None else self._horizon()

    @property
    def min_train(self) -> int:
        """Observations of history the earliest window must keep (default ``max(2 * horizon, 4)``)."""
        return self.min_train_arg if self.min_train_arg is not None else max(2 * self._horizon(), 4)

    def _horizon(self) -> int:
        if self.horizon is None:
            raise ValueError("RollingOrigin(horizon=None) follows the data's frequency: call resolved(horizon) "
                             "first (the forecasting data module does it at setup)")
        return self.horizon

    def resolved(self, horizon: int) -> RollingOrigin:
        """This backtest with ``horizon`` where none was given (an explicit horizon is kept)."""
        return RollingOrigin(self.horizon if self.horizon is not None else horizon, self.n_windows, self.step_arg,
                             self.val_windows, self.min_train_arg)

    def min_length(self) -> int:
        """Shortest series these windows fit on."""
        return self.min_train + (self.n_windows + self.val_windows - 1) * self.step + self._horizon()

    def windows(self, series_length: int) -> tuple[list[BacktestWindow], list[BacktestWindow]]:
        """``(validation windows, test windows)``, each earliest first."""
        length = _check_int("RollingOrigin", "series_length", series_length, 0)
        if length < self.min_length():
            raise DataValidationError(f"RollingOrigin: series of length {length} is too short; {self.needs()}")
        horizon, step = self._horizon(), self.step
        last_cutoff = length - horizon
        first_test = last_cutoff - (self.n_windows - 1) * step
        test = [BacktestWindow(i, first_test + i * step, horizon) for i in range(self.n_windows)]
        val = [BacktestWindow(i, first_test - (self.val_windows - i) * step, horizon)
               for i in range(self.val_windows)]
        return val, test

    def needs(self) -> str:
        """The shortest series these windows fit on, and why, naming the config keys."""
        return (f"{self.n_windows} test window(s) (data.backtest.n_windows) and {self.val_windows} validation "
                f"window(s) (data.backtest.val_windows) of horizon {self._horizon()} (data.backtest.horizon), "
                f"{self.step} apart (data.backtest.step), after at least {self.min_train} observations of history "
                f"(data.backtest.min_train), need length >= {self.min_length()}")

    def describe(self) -> dict[str, Any]:
        if self.horizon is None:
            return {"split": "rolling_origin", "horizon": None, "n_windows": self.n_windows, "step": self.step_arg,
                    "val_windows": self.val_windows, "min_train": self.min_train_arg}
        return {"split": "rolling_origin", "horizon": self.horizon, "n_windows": self.n_windows,
                "step": self.step, "val_windows": self.val_windows, "min_train": self.min_train}

    def __repr__(self) -> str:
        if self.horizon is None:
            return (f"RollingOrigin(horizon=None, n_windows={self.n_windows}, step={self.step_arg}, "
                    f"val_windows={self.val_windows}, min_train={self.min_train_arg})")
        return (f"RollingOrigin(horizon={self.horizon}, n_windows={self.n_windows}, step={self.step}, "
                f"val_windows={self.val_windows}, min_train={self.min_train})")


# --------------------------------------------------------------------------- protocol from the frequency

#: frequency family -> (season length, horizon) a forecasting protocol takes when the config leaves them null;
#: the season is the cycle a seasonal model and MASE's scale use (a day of hours, a week of days, a year of
#: weeks, months or quarters), the horizon a common planning span (M4's for hourly, weekly, quarterly, yearly)
FREQUENCY_DEFAULTS: dict[str, tuple[int, int]] = {
    "hourly": (24, 48), "daily": (7, 28), "weekly": (52, 13), "monthly": (12, 18), "quarterly": (4, 8),
    "yearly": (1, 6),
}
#: season lengths that are a real cycle of each family (1: no season); any other gets a warning
NATURAL_SEASONS: dict[str, tuple[int, ...]] = {
    "hourly": (1, 24, 168), "daily": (1, 7, 365), "weekly": (1, 52), "monthly": (1, 12), "quarterly": (1, 4),
    "yearly": (1,),
}
_FAMILIES: tuple[tuple[str, tuple[type, ...]], ...] = (
    ("hourly", (offsets.Hour,)),
    ("daily", (offsets.Day,)),
    ("weekly", (offsets.Week,)),
    ("monthly", (offsets.MonthBegin, offsets.MonthEnd, offsets.BusinessMonthBegin, offsets.BusinessMonthEnd)),
    ("quarterly", (offsets.QuarterBegin, offsets.QuarterEnd, offsets.BQuarterBegin, offsets.BQuarterEnd)),
    ("yearly", (offsets.YearBegin, offsets.YearEnd, offsets.BYearBegin, offsets.BYearEnd)),
)


def frequency_family(freq: str | None) -> str | None:
    """``"hourly"`` .. ``"yearly"`` for a pandas frequency of one such step (any anchor: ``W-MON``, ``QS-OCT``,
    ``ME``); ``None`` for anything else (minutes, business days, multiples such as ``2W``)."""
    if freq is None:
        return None
    try:
        offset = to_offset(freq)
    except ValueError:
        return None
    if offset.n != 1:
        return None
    return next((name for name, kinds in _FAMILIES if isinstance(offset, kinds)), None)


def resolve_protocol(freq: str | None, season_length: int | None,
                     backtest: RollingOrigin) -> tuple[int, RollingOrigin, dict[str, Any]]:
    """``(season_length, backtest, record)`` with every ``None`` taken from the frequency's defaults.

    ``record`` says, for the run record, which values were inferred and from what frequency, and lists the
    warnings: overlapping test windows (``step < horizon``: consecutive futures share points, so windows are
    not independent) and a season that is no cycle of the frequency (say 12 on weekly data). A ``None`` that
    the frequency cannot fill (an unknown or irregular frequency) is a :class:`DataValidationError` naming the
    key to set.
    """
    family = frequency_family(freq)
    missing = [key for key, value in (("data.season_length", season_length),
                                      ("data.backtest.horizon", backtest.horizon)) if value is None]
    if missing and family is None:
        raise DataValidationError(
            f"{', '.join(missing)} follow(s) the data's frequency when null, but freq={freq!r} is none of "
            f"{list(FREQUENCY_DEFAULTS)}; set {' and '.join(missing)}")
    default_season, default_horizon = FREQUENCY_DEFAULTS[family] if family else (None, None)
    record: dict[str, Any] = {"freq": freq, "frequency": family, "inferred": [], "warnings": []}
    if season_length is None:
        season_length = default_season
        record["inferred"].append("season_length")
    if backtest.horizon is None:
        backtest = backtest.resolved(default_horizon)  # type: ignore[arg-type]
        record["inferred"].append("horizon")
        if backtest.step_arg is None:
            record["inferred"].append("step")
    assert season_length is not None and backtest.horizon is not None
    record.update(season_length=season_length, horizon=backtest.horizon, step=backtest.step)
    if backtest.step < backtest.horizon:
        record["warnings"].append(
            f"data.backtest.step={backtest.step} < horizon={backtest.horizon}: consecutive forecast windows "
            "overlap, so their errors are not independent (step = horizon, or null, avoids it)")
    if family is not None and season_length not in NATURAL_SEASONS[family]:
        record["warnings"].append(
            f"data.season_length={season_length} is no cycle of {family} data (freq {freq}; "
            f"natural: {', '.join(map(str, NATURAL_SEASONS[family]))}); seasonal models and MASE's scale use "
            f"{season_length} (null: {default_season})")
    return int(season_length), backtest, record
