"""RecBole atomic files: import any dataset in RecBole's format, and export a bundle to it.

RecBole (Zhao et al., "RecBole: Towards a Unified, Comprehensive and Efficient Framework for Recommendation
Algorithms", CIKM 2021; https://recbole.io/atomic_files.html) stores a dataset ``<name>`` as tab-separated
*atomic files* in a folder ``<name>/``. The first line names every column as ``name:type`` with type one of
``token`` (one categorical value), ``token_seq`` (space-separated tokens), ``float`` and ``float_seq``.

Mapping to the contract (:mod:`ecomlab.data.bundle`):

=================  ==========================================================================================
atomic file        contract part
=================  ==========================================================================================
``<name>.inter``   required. ``interactions``: ``user_field`` (default ``user_id``) -> user_id, ``item_field``
                   (default ``item_id``) -> item_id, ``timestamp_field`` (default ``timestamp``, optional) ->
                   timestamp (Unix seconds, fractions truncated), ``weight_field`` -> weight; by default the
                   first of ``rating``, ``weight``, ``count`` that is a ``float`` field, else weight 1.0. Other
                   fields are ignored (listed in ``meta["ignored_fields"]``).
``<name>.item``    optional. ``item_text``: ``text`` joins the ``text_fields`` with single spaces (default:
                   every ``token_seq`` field; without any, the first ``token`` field other than the item id).
                   The remaining fields become extra item columns (``token``/``token_seq``/``float_seq`` as
                   strings, ``float`` as float64); a field literally named ``text`` that is not a text field
                   is left out, as it would clash with the contract's column.
``<name>.user``    optional. User features are not part of the contract: only the field names and row count
                   are kept in ``meta["user_features"]``.
``<name>.<s>.inter``  with ``benchmark_filename: [s1, s2, s3]`` (RecBole's key of the same name): the data set's
                   own split, one file per part in RecBole's order (train, valid, test; two suffixes: train,
                   test), read instead of ``<name>.inter`` and followed by ``PredefinedSplit``
                   (``data=recbole-benchmark``).
``<name>.net``     optional. ``social``: ``source_id:token target_id:token`` (RecBole's social convention), or
                   ``user_id``/``friend_id``; edges are directed as given, other fields ignored.
=================  ==========================================================================================

Ids are tokens, i.e. strings. With ``id_dtype="auto"`` (default) an id space (users: ``.inter`` and ``.net``;
items: ``.inter`` and ``.item``) whose every value is a canonical decimal integer (``"42"``, not ``"042"``)
becomes ``int64``, so integer raw ids survive an export/import round trip and sort numerically;
``id_dtype="str"`` keeps them as strings. Files are read as RecBole reads them (pandas, tab separator, ``"``
quoting); empty cells are missing values.

:func:`export_recbole` writes ``<name>.inter`` (``user_id:token item_id:token rating:float
timestamp:float``; no timestamp column when the bundle has none), ``<name>.item`` (``item_id:token
text:token_seq`` plus the extra item columns: strings as ``token``, numbers as ``float``) and ``<name>.net``
(``source_id:token target_id:token``) with raw ids. Round trip: :class:`RecBoleAtomic` reads an export back
into an identical bundle (interactions, raw id maps, item columns, social edges, ``has_timestamps``), with
these documented exceptions:

* **Text normalisation.** A ``token_seq`` cell is split on spaces by RecBole, so every run of whitespace in
  ``text`` (tabs and newlines included) is written as one space and leading/trailing whitespace is removed;
  the imported text equals ``normalise_text(original)``.
* **Tokens are refused, not repaired.** An id or a string item column whose value contains a tab, newline or
  carriage return cannot be stored in a ``token`` cell; export raises :class:`DataValidationError` naming the
  column and the first rows.
* Integer extra item columns come back as float64 (RecBole has no integer type); ids other than strings and
  integers (e.g. floats) come back as strings.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ecomlab.data.bundle import (
    PART_NAMES,
    ROWS,
    DatasetBundle,
    DataValidationError,
    ValidationPolicy,
    build_bundle,
    stack_parts,
)
from ecomlab.data.io import read_table, require_file
from ecomlab.utils import atomic_write_text

__all__ = ["RecBoleAtomic", "export_recbole", "normalise_text", "read_atomic", "unify_ids", "RECBOLE_TYPES"]

RECBOLE_TYPES = ("token", "token_seq", "float", "float_seq")
_WEIGHT_FIELDS = ("rating", "weight", "count")
_SOCIAL_FIELDS = (("source_id", "target_id"), ("user_id", "friend_id"))
_CANONICAL_INT = re.compile(r"-?(0|[1-9][0-9]{0,17})")  # at most 18 digits: always fits int64
_BAD_TOKEN = re.compile(r"[\t\n\r]")
_WHITESPACE = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """The text as it survives a ``token_seq`` cell: whitespace runs -> one space, stripped."""
    return _WHITESPACE.sub(" ", str(text)).strip()


def parse_header(line: str, path: Path) -> dict[str, str]:
    """``{field name: type}`` from an atomic file's first line, in file order."""
    fields: dict[str, str] = {}
    for pos, spec in enumerate(line.rstrip("\r\n").split("\t")):
        name, colon, ftype = spec.rpartition(":")
        if not colon or not name:
            raise DataValidationError(
                f"{path}: header column {pos} {spec!r} is not 'name:type'; RecBole atomic headers look like "
                f"'user_id:token' with type one of {list(RECBOLE_TYPES)}")
        if ftype not in RECBOLE_TYPES:
            raise DataValidationError(
                f"{path}: header column {pos} {spec!r} has unknown type {ftype!r}; allowed types "
                f"{list(RECBOLE_TYPES)}")
        if name in fields:
            raise DataValidationError(f"{path}: header names field {name!r} twice")
        fields[name] = ftype
    return fields


def read_atomic(path: str | Path, hint: str = "") -> tuple[pd.DataFrame, dict[str, str]]:
    """One atomic file as ``(frame, {field: type})``; ``float`` fields numeric, everything else strings."""
    path = require_file(path, hint)
    with path.open(encoding="utf-8", errors="replace") as handle:
        fields = parse_header(handle.readline(), path)
        has_rows = bool(handle.readline())
    if not has_rows:
        return pd.DataFrame({name: pd.Series([], dtype=str) for name in fields}), fields
    # Without a header pandas counts fields from the first row and refuses later rows with more, where a header
    # would silently turn an extra leading column into the index. Every cell is read as a string first: ids
    # like "007" or "NA" must stay as written.
    frame = read_table(path, hint, sep="\t", header=None, skiprows=1, dtype=str, keep_default_na=False,
                       na_values=[""])
    if len(frame.columns) > len(fields):
        raise DataValidationError(
            f"{path}: data row 0 has {len(frame.columns)} tab-separated fields but the header names {len(fields)} "
            f"({list(fields)})")
    for missing in range(len(frame.columns), len(fields)):
        frame[missing] = pd.Series([np.nan] * len(frame), dtype=str)  # short rows: missing trailing cells
    frame.columns = list(fields)
    for name, ftype in fields.items():
        if ftype == "float":
            values = pd.to_numeric(frame[name], errors="coerce")
            bad = (values.isna() & frame[name].notna()).to_numpy()
            if bad.any():
                rows = np.flatnonzero(bad)[:5].tolist()
                raise DataValidationError(
                    f"{path}: float field {name!r} has {int(bad.sum())} non-numeric value(s); first rows "
                    f"{rows}{ROWS} (values {frame[name].to_numpy()[bad][:5].tolist()})")
            frame[name] = values.astype(np.float64)
    return frame, fields


def unify_ids(columns: list[pd.Series], id_dtype: str) -> list[pd.Series]:
    """Cast one id space to int64 when every value is a canonical integer (``id_dtype="auto"``)."""
    if id_dtype == "str" or any(c.isna().any() for c in columns):
        return columns  # missing ids stay strings/NaN so that build_bundle reports them with their rows
    values = pd.concat(columns, ignore_index=True).astype(str)
    if len(values) and values.str.fullmatch(_CANONICAL_INT).all():
        return [c.astype(np.int64) for c in columns]
    return columns


class RecBoleAtomic:
    """A RecBole atomic dataset ``<data_dir>/<folder>/<name>.{inter,item,user,net}``; see the module docstring."""

    def __init__(self, data_dir: str, folder: str, name: str | None = None,
                 text_fields: list[str] | None = None, user_field: str = "user_id", item_field: str = "item_id",
                 weight_field: str | None = None, timestamp_field: str = "timestamp",
                 id_dtype: Literal["auto", "str"] = "auto", duplicates: str = "drop",
                 unknown_ids: str = "drop", benchmark_filename: list[str] | None = None) -> None:
        if id_dtype not in ("auto", "str"):
            raise ValueError(f"RecBoleAtomic.id_dtype={id_dtype!r}; expected 'auto' or 'str'")
        if benchmark_filename is not None and not 2 <= len(benchmark_filename) <= 3:
            raise ValueError(f"RecBoleAtomic.benchmark_filename={list(benchmark_filename)!r}; expected the suffixes "
                             "of 2 or 3 files, in RecBole's order train, valid(, test), e.g. [train, valid, test]")
        self.benchmark_filename = None if benchmark_filename is None else [str(b) for b in benchmark_filename]
        self.data_dir, self.folder = str(data_dir), str(folder)
        self.name = name or Path(self.folder).name
        self.text_fields = list(text_fields) if text_fields is not None else None
        self.user_field, self.item_field = user_field, item_field
        self.weight_field, self.timestamp_field = weight_field, timestamp_field
        self.id_dtype = id_dtype
        self.policy = ValidationPolicy(duplicates=duplicates, unknown_ids=unknown_ids)  # type: ignore[arg-type]

    @property
    def directory(self) -> Path:
        return Path(self.data_dir) / self.folder

    def path(self, suffix: str) -> Path:
        return self.directory / f"{self.name}.{suffix}"

    def _inter_files(self) -> dict[str, Path]:
        """``{part: file}`` of the interactions: ``<name>.inter``, or with ``benchmark_filename`` one
        ``<name>.<suffix>.inter`` per part, in RecBole's order (train, valid, test; two files: train, test)."""
        if self.benchmark_filename is None:
            return {"all": self.path("inter")}
        parts = PART_NAMES if len(self.benchmark_filename) == 3 else ("train", "test")
        return {part: self.path(f"{suffix}.inter") for part, suffix in zip(parts, self.benchmark_filename, strict=True)}

    def _present(self) -> dict[str, Path]:
        present = {f"inter.{part}": path for part, path in self._inter_files().items()}
        return present | {s: self.path(s) for s in ("item", "user", "net") if self.path(s).exists()}

    def cache_key(self) -> dict[str, Any]:
        return {"data_dir": str(Path(self.data_dir).resolve()), "folder": self.folder, "name": self.name,
                "text_fields": self.text_fields, "user_field": self.user_field, "item_field": self.item_field,
                "weight_field": self.weight_field, "timestamp_field": self.timestamp_field,
                "id_dtype": self.id_dtype, "duplicates": self.policy.duplicates,
                "unknown_ids": self.policy.unknown_ids, "benchmark_filename": self.benchmark_filename,
                "files": [str(p.resolve()) for p in self._present().values()]}

    def load(self) -> DatasetBundle:
        hint = (f"a RecBole dataset needs {self.name}.inter in {self.directory}; set paths.data_dir to the folder "
                f"holding {self.folder}/ and data.source.name to the atomic files' name")
        inter_files = self._inter_files()
        inter_path = next(iter(inter_files.values()))
        if self.benchmark_filename is None:
            inter, inter_fields = read_atomic(inter_path, hint)
            files, part = {"interactions": str(inter_path)}, None
        else:
            inter, inter_fields, part, where = self._benchmark(inter_files, hint)
            files = {"interactions": where}
        meta: dict[str, Any] = {"format": "recbole_atomic", "inter_fields": inter_fields}
        for field, role in ((self.user_field, "user_field"), (self.item_field, "item_field")):
            if field not in inter_fields:
                raise DataValidationError(
                    f"{inter_path}: no field {field!r} ({role}); the file has {list(inter_fields)}; set "
                    f"data.source.{role} to one of them")
        frame = pd.DataFrame({"user_id": inter[self.user_field], "item_id": inter[self.item_field]})
        weight = self._weight_field(inter_path, inter_fields)
        if weight is not None:
            frame["weight"] = inter[weight]
        if self.timestamp_field in inter_fields:
            if inter_fields[self.timestamp_field] != "float":
                raise DataValidationError(f"{inter_path}: timestamp field {self.timestamp_field!r} is "
                                          f"{inter_fields[self.timestamp_field]}, expected float (Unix seconds)")
            frame["timestamp"] = inter[self.timestamp_field]
        used = {self.user_field, self.item_field, weight, self.timestamp_field}
        meta["weight_field"] = weight
        meta["ignored_fields"] = [f for f in inter_fields if f not in used]

        item_text = self._items(meta, files)
        social = self._social(files)
        self._users(meta, files)

        user_cols = unify_ids([frame["user_id"]] + ([] if social is None else [social["user_id"],
                                                                                  social["friend_id"]]),
                               self.id_dtype)
        frame["user_id"] = user_cols[0]
        if social is not None:
            social["user_id"], social["friend_id"] = user_cols[1], user_cols[2]
        item_cols = unify_ids([frame["item_id"]] + ([] if item_text is None else [item_text["item_id"]]),
                               self.id_dtype)
        frame["item_id"] = item_cols[0]
        if item_text is not None:
            item_text["item_id"] = item_cols[1]
        return build_bundle(self.name, frame, item_text=item_text, social=social, policy=self.policy,
                            files=files, meta=meta, part=part)

    def _benchmark(self, inter_files: dict[str, Path],
                   hint: str) -> tuple[pd.DataFrame, dict[str, str], np.ndarray, str]:
        """The benchmark files' rows in order, each marked with its part; every file must have the same fields."""
        frames, first = [], None
        for part, path in inter_files.items():
            frame, fields = read_atomic(path, hint.replace(f"{self.name}.inter", path.name))
            if first is not None and fields != first[1]:
                raise DataValidationError(f"{path}: fields {list(fields)} differ from {first[0]}'s {list(first[1])}; "
                                          "the benchmark files of one data set share their header")
            first = first or (path, fields)
            frames.append((part, path, frame))
        assert first is not None
        inter, part_names, where = stack_parts(frames)
        return inter, first[1], part_names, where

    def _weight_field(self, path: Path, fields: dict[str, str]) -> str | None:
        if self.weight_field is not None:
            if fields.get(self.weight_field) != "float":
                floats = [f for f, t in fields.items() if t == "float"]
                raise DataValidationError(f"{path}: weight_field {self.weight_field!r} is not a float field; "
                                          f"float fields: {floats}")
            return self.weight_field
        return next((f for f in _WEIGHT_FIELDS if fields.get(f) == "float"), None)

    def _items(self, meta: dict[str, Any], files: dict[str, str]) -> pd.DataFrame | None:
        path = self.path("item")
        if not path.exists():
            return None
        items, fields = read_atomic(path)
        files["item_text"] = str(path)
        if self.item_field not in fields:
            raise DataValidationError(f"{path}: no item id field {self.item_field!r}; the file has {list(fields)}")
        others = [f for f in fields if f != self.item_field]
        if self.text_fields is not None:
            unknown = [f for f in self.text_fields if f not in others]
            if unknown:
                raise DataValidationError(f"{path}: text_fields {unknown} are not fields of the file; "
                                          f"allowed: {others}")
            text_fields = list(self.text_fields)
        else:
            text_fields = [f for f in others if fields[f] == "token_seq"]
            if not text_fields:
                text_fields = [f for f in others if fields[f] == "token"][:1]
        meta["text_fields"] = text_fields
        if text_fields:
            parts = items[text_fields].astype(object).where(items[text_fields].notna(), "")
            text = parts.astype(str).agg(" ".join, axis=1).map(normalise_text)
        else:
            text = pd.Series([""] * len(items), index=items.index)
        out = pd.DataFrame({"item_id": items[self.item_field], "text": text.astype(str)})
        for f in others:
            if f not in text_fields and f != "text":
                out[f] = items[f]
        return out

    def _social(self, files: dict[str, str]) -> pd.DataFrame | None:
        path = self.path("net")
        if not path.exists():
            return None
        net, fields = read_atomic(path)
        files["social"] = str(path)
        for source, target in _SOCIAL_FIELDS:
            if source in fields and target in fields:
                return pd.DataFrame({"user_id": net[source], "friend_id": net[target]})
        raise DataValidationError(
            f"{path}: social edges need fields 'source_id:token target_id:token' (or 'user_id'/'friend_id'); "
            f"the file has {list(fields)}")

    def _users(self, meta: dict[str, Any], files: dict[str, str]) -> None:
        path = self.path("user")
        if not path.exists():
            return
        users, fields = read_atomic(path)
        files["user_features"] = str(path)
        # The contract has no user table; record what was there so a run record shows it was seen.
        meta["user_features"] = {"fields": fields, "n_rows": len(users), "note": "not part of the data contract"}


# --------------------------------------------------------------------------- export


def _check_tokens(values: pd.Series, column: str, where: str) -> None:
    strings = values.dropna().astype(str)
    bad = strings.str.contains(_BAD_TOKEN)
    if bad.any():
        rows = strings.index[bad.to_numpy()][:5].tolist()
        raise DataValidationError(
            f"{where}: column {column!r} has {int(bad.sum())} value(s) with a tab, newline or carriage return, "
            f"which a RecBole token cannot hold; first rows {rows}{ROWS} (values "
            f"{strings[bad].head(5).tolist()}); clean them before exporting")


def _header(frame: pd.DataFrame, types: dict[str, str]) -> str:
    return "\t".join(f"{c}:{types[c]}" for c in frame.columns)


def _render(frame: pd.DataFrame, types: dict[str, str]) -> str:
    body = frame.to_csv(sep="\t", index=False, header=False, lineterminator="\n")
    return _header(frame, types) + "\n" + body


def export_recbole(bundle: DatasetBundle, out_dir: str | Path, name: str) -> dict[str, Path]:
    """Write ``bundle`` as RecBole atomic files ``<out_dir>/<name>.{inter,item,net}``; see the module docstring.

    Every file is rendered (and every token checked) before any is written; each is written to a temp file
    and renamed. A ``<name>.item``/``<name>.net`` left by an earlier export is removed when the bundle has no
    such part, so that importing the folder gives back exactly this bundle.
    """
    where = f"export_recbole({bundle.name!r})"
    if len(bundle.interactions) == 0:
        raise DataValidationError(f"{where}: the bundle has no interactions; RecBole needs a .inter file")
    if not name or _BAD_TOKEN.search(name) or "/" in name:
        raise ValueError(f"export_recbole: name={name!r}; expected a plain file name")
    out = Path(out_dir)
    inter = bundle.interactions
    inter_frame = pd.DataFrame({"user_id": bundle.user_map.to_raw(inter["user_id"]),
                                "item_id": bundle.item_map.to_raw(inter["item_id"]),
                                "rating": inter["weight"].to_numpy(np.float64)})
    types = {"user_id": "token", "item_id": "token", "rating": "float", "timestamp": "float"}
    if bundle.has_timestamps:
        inter_frame["timestamp"] = inter["timestamp"].to_numpy(np.int64)
    _check_tokens(inter_frame["user_id"], "user_id", where)
    _check_tokens(inter_frame["item_id"], "item_id", where)
    texts = {"inter": _render(inter_frame, types)}

    if bundle.item_text is not None:
        item = bundle.item_text
        item_frame = pd.DataFrame({"item_id": bundle.item_map.to_raw(item["item_id"]),
                                   "text": item["text"].fillna("").astype(str).map(normalise_text)})
        item_types = {"item_id": "token", "text": "token_seq"}
        for column in item.columns:
            if column in ("item_id", "text"):
                continue
            if _BAD_TOKEN.search(str(column)) or ":" in str(column):
                raise DataValidationError(f"{where}: item column name {column!r} cannot be a RecBole field name")
            values = item[column]
            if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
                item_frame[column] = values.astype(np.float64).to_numpy()
                item_types[column] = "float"
            else:
                _check_tokens(values, str(column), where)
                item_frame[column] = values.to_numpy()
                item_types[column] = "token"
        _check_tokens(item_frame["item_id"], "item_id", where)
        texts["item"] = _render(item_frame, item_types)

    if bundle.social is not None:
        net_frame = pd.DataFrame({"source_id": bundle.user_map.to_raw(bundle.social["user_id"]),
                                  "target_id": bundle.user_map.to_raw(bundle.social["friend_id"])})
        texts["net"] = _render(net_frame, {"source_id": "token", "target_id": "token"})

    written: dict[str, Path] = {}
    for suffix, text in texts.items():
        path = out / f"{name}.{suffix}"
        atomic_write_text(path, text)
        written[suffix] = path
    for suffix in ("item", "net"):
        if suffix not in texts:
            (out / f"{name}.{suffix}").unlink(missing_ok=True)
    return written
