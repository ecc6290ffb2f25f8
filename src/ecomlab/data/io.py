"""Reading source files with errors that name the file and the problem."""

from __future__ import annotations

import codecs
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


def _refuse_binary(path: Path, encoding: str) -> None:
    """Text never holds NUL bytes (UTF-16/32 aside); without this check pandas calls a binary file ragged."""
    if codecs.lookup(encoding).name.startswith(("utf-16", "utf-32")):
        return
    with path.open("rb") as handle:
        offset = handle.read(1 << 16).find(b"\x00")
    if offset >= 0:
        raise DataValidationError(f"{path}: binary data (a NUL byte at offset {offset}), not CSV/TSV text; "
                                  "parquet files need a .parquet or .pq suffix")


def read_table(path: str | Path, hint: str = "", **kwargs: Any) -> pd.DataFrame:
    """CSV (``,``), TSV (``.tsv``/``.tab``/``.dat`` need ``sep``) or parquet; ``kwargs`` go to pandas."""
    path = require_file(path, hint)
    try:
        if path.suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path, **kwargs)
            # Arrow's allocator keeps the freed conversion buffers (about as much as the frame for millions of
            # rows); hand them back so they do not count against the rest of the pipeline
            pyarrow.default_memory_pool().release_unused()
            return frame
        kwargs.setdefault("sep", "\t" if path.suffix in (".tsv", ".tab") else ",")
        kwargs.setdefault("encoding", "utf-8")
        _refuse_binary(path, kwargs["encoding"])
        if kwargs.get("sep") not in (",", "\t", ";", "|") and "engine" not in kwargs:
            kwargs["engine"] = "python"  # multi-character separators such as MovieLens' "::"
        return pd.read_csv(path, **kwargs)
    except DataValidationError:
        raise
    except UnicodeDecodeError as err:
        raise DataValidationError(
            f"{path}: not valid {kwargs.get('encoding', 'utf-8').upper()} text ({err.reason}); "
            "pass the file's encoding (for example latin-1)") from err
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, ValueError) as err:
        raise DataValidationError(f"{path}: cannot be read as a table: {err}") from err
