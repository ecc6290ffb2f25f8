"""The data contract, written once.

Every dataset, built-in or loaded from files, becomes one :class:`DatasetBundle`:

* ``interactions`` -- ``(user_id, item_id, timestamp, weight)``; ids are contiguous ``int64`` indices,
  ``timestamp`` is Unix seconds (``int64``), ``weight`` a non-negative ``float64`` (1.0 for plain implicit
  feedback, a count or a rating otherwise).
* ``item_text`` -- optional ``(item_id, text)`` plus any extra item columns (e.g. ``category``).
* ``social`` -- optional ``(user_id, friend_id)`` edges between known users, as given (directed).
* ``sales`` -- optional long-format panel ``(unique_id, ds, y)`` plus optional covariate columns.

Raw ids are remapped to contiguous indices; :class:`IdMap` keeps the way back.

Validation policy (applied by :func:`build_bundle`, documented here once):

=====================================  =======================================================
problem                                what happens
=====================================  =======================================================
missing required column                error (names the file and the missing column)
NaN / empty user or item id            error (file, column, first offending rows)
NaN / infinite / negative weight       error
unparseable or NaN timestamp           error
duplicate ``(user, item, timestamp)``  ``policy.duplicates``: ``"drop"`` (default, counted warning,
                                       keeps the first row), ``"error"``
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
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp", "weight")
TEXT_COLUMNS = ("item_id", "text")
SOCIAL_COLUMNS = ("user_id", "friend_id")
SALES_COLUMNS = ("unique_id", "ds", "y")
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
            f"first rows {_rows(bad)}{ROWS} (values {df[column].to_numpy()[bad][:5].tolist()})"
        )
    return values


def _timestamps(df: pd.DataFrame, where: str) -> np.ndarray:
    col = df["timestamp"]
    if col.dtype.kind in "iu":  # plain integers are finite: skip the float round trip (2 copies per row)
        return col.to_numpy(dtype=np.int64)
    if pd.api.types.is_numeric_dtype(col):
        return _numeric(df, "timestamp", where).astype(np.int64)
    parsed = pd.to_datetime(col, errors="coerce", utc=True)
    bad = parsed.isna().to_numpy()
    if bad.any():
        raise DataValidationError(
            f"{where}: column 'timestamp' has {int(bad.sum())} unparseable value(s); first rows {_rows(bad)}{ROWS} "
            f"(values {col.to_numpy()[bad][:5].tolist()}); expected Unix seconds or ISO dates"
        )
    return parsed.dt.as_unit("s").astype("int64").to_numpy()


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
) -> DatasetBundle:
    """Validate raw frames against the contract, remap ids and return the bundle.

    ``interactions`` needs ``user_id`` and ``item_id``; ``timestamp`` and ``weight`` are optional (missing
    ``weight`` means 1.0; missing ``timestamp`` sets ``has_timestamps=False`` and temporal splits refuse it).
    ``files`` names the origin of each part (``{"interactions": "data/x/ratings.csv"}``) for error messages.
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

    # copy=False: the four arrays are the bundle's own, so the frame keeps them instead of copying them
    frame = pd.DataFrame({"user_id": user_codes, "item_id": item_codes, "timestamp": _own(ts),
                          "weight": _own(weight)}, copy=False)
    dup = _duplicate_rows(user_codes, item_codes, ts)
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
    ds = pd.to_datetime(out["ds"], errors="coerce")
    bad = ds.isna().to_numpy()
    if bad.any():
        raise DataValidationError(
            f"{where}: column 'ds' has {int(bad.sum())} unparseable date(s); first rows {_rows(bad)}{ROWS}"
        )
    out["ds"] = ds
    out["y"] = _numeric(out, "y", where)
    dup = out.duplicated(["unique_id", "ds"]).to_numpy()
    if dup.any():
        raise DataValidationError(
            f"{where}: {int(dup.sum())} duplicate (unique_id, ds) row(s); first rows {_rows(dup)}{ROWS}"
        )
    return out.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
