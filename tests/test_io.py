"""``ecomlab.data.io.read_table`` on real files: compressed CSV, encodings, repeated header names, fake parquet."""

from __future__ import annotations

import bz2
import gzip
import lzma
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from ecomlab.data.bundle import DataValidationError
from ecomlab.data.io import read_table

TEXT = "user_id,item_id,timestamp,weight\n1,10,100,1\n2,20,200,2.5\n"


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz", ".zip"])
def test_compressed_csv_is_read(tmp_path: Path, suffix: str) -> None:
    """A compressed CSV holds NUL bytes; the binary check used to refuse every one of them."""
    path = tmp_path / f"inter.csv{suffix}"
    if suffix == ".zip":
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("inter.csv", TEXT)
    else:
        path.write_bytes({".gz": gzip, ".bz2": bz2, ".xz": lzma}[suffix].compress(TEXT.encode()))
    plain = tmp_path / "plain.csv"
    plain.write_text(TEXT)
    pd.testing.assert_frame_equal(read_table(path), pd.read_csv(plain))


def test_compressed_tsv_takes_the_inner_suffix(tmp_path: Path) -> None:
    path = tmp_path / "inter.tsv.gz"
    path.write_bytes(gzip.compress(TEXT.replace(",", "\t").encode()))
    assert list(read_table(path).columns) == ["user_id", "item_id", "timestamp", "weight"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_utf16_and_utf32_text_is_named(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "inter.csv"
    path.write_bytes(TEXT.encode(encoding))
    with pytest.raises(DataValidationError, match=rf"{encoding.upper()} text .*save it as UTF-8"):
        read_table(path)
    # read as what it is when the caller names the encoding
    assert len(read_table(path, encoding=encoding)) == 2


def test_utf8_byte_order_mark_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "inter.csv"
    path.write_text(TEXT, encoding="utf-8-sig")
    assert list(read_table(path).columns)[0] == "user_id"


def test_a_repeated_header_name_is_refused_but_a_dotted_name_is_not(tmp_path: Path) -> None:
    path = tmp_path / "inter.csv"
    path.write_text("user_id,item_id,item_id\n1,2,3\n")
    with pytest.raises(DataValidationError, match=r"column name\(s\) \['item_id'\] appear more than once"):
        read_table(path)
    path.write_text("item_id,item_id.1\n1,2\n")  # two different names that only look like pandas' renaming
    assert list(read_table(path).columns) == ["item_id", "item_id.1"]


def test_csv_named_parquet_and_broken_archives(tmp_path: Path) -> None:
    fake = tmp_path / "inter.parquet"
    fake.write_text(TEXT)
    with pytest.raises(DataValidationError, match=r"not a parquet file .*starts with b'user_id,item_id"):
        read_table(fake)
    for suffix in (".gz", ".bz2", ".xz", ".zip"):
        broken = tmp_path / f"inter.csv{suffix}"
        broken.write_bytes(b"\x1f\x8b\x08 not really compressed")
        with pytest.raises(DataValidationError, match=rf"not a valid {suffix[1:]} file"):
            read_table(broken)
