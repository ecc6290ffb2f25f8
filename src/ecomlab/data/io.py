"""Reading source files with errors that name the file and the problem."""

from __future__ import annotations

import bz2
import codecs
import gzip
import lzma
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow

from ecomlab.data.bundle import DataValidationError


def require_encoding(key: str, encoding: str) -> str:
    """``encoding`` if Python knows it; a ValueError naming the config key otherwise."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ValueError(f"{key}={encoding!r} is not a known text encoding") from None
    return encoding


def require_file(path: str | Path, hint: str = "") -> Path:
    """``path`` as a Path if it is a non-empty file; a clear ``DataValidationError`` otherwise."""
    path = Path(path)
    if not path.exists():
        raise DataValidationError(f"{path}: file not found" + (f"; {hint}" if hint else ""))
    if path.is_dir():
        raise DataValidationError(f"{path}: is a directory, expected a file")
    if path.stat().st_size == 0:
        raise DataValidationError(f"{path}: file is empty")
    return path


#: compressed text pandas opens by suffix, and the stdlib module that reads the head of one
_COMPRESSED = {".gz": gzip, ".bz2": bz2, ".xz": lzma}
_BOMS = {codecs.BOM_UTF32_LE: "UTF-32", codecs.BOM_UTF32_BE: "UTF-32", codecs.BOM_UTF16_LE: "UTF-16",
         codecs.BOM_UTF16_BE: "UTF-16"}


def _head(path: Path, size: int = 1 << 16) -> bytes:
    """The first ``size`` bytes of the text in ``path``: decompressed for ``.gz`` / ``.bz2`` / ``.xz`` / ``.zip``
    (the first member: pandas reads a zip of one file)."""
    module = _COMPRESSED.get(path.suffix)
    try:
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive, archive.open(archive.infolist()[0]) as handle:
                return handle.read(size)
        if module is None:
            with path.open("rb") as handle:
                return handle.read(size)
        with module.open(path, "rb") as handle:
            return handle.read(size)
    except (OSError, EOFError, IndexError, lzma.LZMAError, zipfile.BadZipFile, zlib.error) as err:
        raise DataValidationError(f"{path}: not a valid {path.suffix[1:]} file ({err}); the suffix says it is "
                                  "compressed") from None


def _refuse_binary(path: Path, encoding: str) -> None:
    """Text never holds NUL bytes (UTF-16/32 aside); without this check pandas calls a binary file ragged."""
    if codecs.lookup(encoding).name.startswith(("utf-16", "utf-32")):
        return
    head = _head(path)
    for bom, name in _BOMS.items():  # UTF-32 marks first: UTF-16's is a prefix of UTF-32 LE's
        if head.startswith(bom):
            raise DataValidationError(f"{path}: {name} text (it starts with a {name} byte-order mark); save it "
                                      "as UTF-8")
    offset = head.find(b"\x00")
    if offset >= 0:
        raise DataValidationError(f"{path}: binary data (a NUL byte at offset {offset}), not CSV/TSV text; "
                                  "parquet files need a .parquet or .pq suffix")


def _refuse_duplicate_columns(path: Path, frame: pd.DataFrame, kwargs: dict[str, Any]) -> None:
    """pandas renames a repeated header name ``x`` to ``x.1`` and reads on: the first ``x`` would be used
    silently. Only when such a name appears is the header line read again, as written."""
    names = [str(c) for c in frame.columns]
    suspects = [n for n in names if "." in n and n.rsplit(".", 1)[0] in names and n.rsplit(".", 1)[1].isdigit()]
    if not suspects or kwargs.get("header", "infer") is None or "names" in kwargs:
        return
    header_kwargs = {k: v for k, v in kwargs.items() if k in ("sep", "encoding", "engine", "quoting", "compression")}
    raw = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False, **header_kwargs)
    written = [str(v) for v in raw.iloc[0].tolist()]
    repeated = sorted({n for n in written if written.count(n) > 1})
    if repeated:
        raise DataValidationError(f"{path}: column name(s) {repeated} appear more than once in the header "
                                  f"{written}; each column needs its own name")


def _refuse_fake_parquet(path: Path, err: Exception) -> DataValidationError:
    with path.open("rb") as handle:
        head = handle.read(32)
    if not head.startswith(b"PAR1"):
        return DataValidationError(f"{path}: not a parquet file (it does not start with the PAR1 mark; it starts "
                                   f"with {head[:24]!r}); a CSV file needs a .csv suffix")
    return DataValidationError(f"{path}: cannot be read as parquet: {err}")


def read_table(path: str | Path, hint: str = "", **kwargs: Any) -> pd.DataFrame:
    """CSV (``,``), TSV (``.tsv``/``.tab``/``.dat`` need ``sep``) or parquet; ``kwargs`` go to pandas.

    CSV/TSV text may be compressed (``.gz``, ``.bz2``, ``.xz``, ``.zip``; pandas decompresses by suffix).
    """
    path = require_file(path, hint)
    if path.suffix in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(path, **kwargs)
        except (pyarrow.ArrowException, OSError, ValueError) as err:
            raise _refuse_fake_parquet(path, err) from err
        # Arrow's allocator keeps the freed conversion buffers (about as much as the frame for millions of
        # rows); hand them back so they do not count against the rest of the pipeline
        pyarrow.default_memory_pool().release_unused()
        return frame
    text_suffix = Path(path.stem).suffix if path.suffix in (*_COMPRESSED, ".zip") else path.suffix
    kwargs.setdefault("sep", "\t" if text_suffix in (".tsv", ".tab") else ",")
    kwargs.setdefault("encoding", "utf-8")
    try:
        _refuse_binary(path, kwargs["encoding"])
        if kwargs.get("sep") not in (",", "\t", ";", "|") and "engine" not in kwargs:
            kwargs["engine"] = "python"  # multi-character separators such as MovieLens' "::"
        frame = pd.read_csv(path, **kwargs)
        _refuse_duplicate_columns(path, frame, kwargs)
        return frame
    except DataValidationError:
        raise
    except UnicodeDecodeError as err:
        raise DataValidationError(
            f"{path}: not valid {kwargs.get('encoding', 'utf-8').upper()} text ({err.reason}); "
            "pass the file's encoding (for example latin-1)") from err
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, EOFError, ValueError,
            zipfile.BadZipFile, lzma.LZMAError, zlib.error) as err:
        raise DataValidationError(f"{path}: cannot be read as a table: {err}") from err
