"""Predefined splits (issue 23 item 5): a data set's own train / validation / test files, followed row for row.

Real files on disk, read by the real sources (FileSource, RecBoleAtomic with benchmark_filename, the
LightGCN-format UserItemLists), split by PredefinedSplit, and one real training run per format.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecomlab.data.builtin import FileSource
from ecomlab.data.bundle import PART_COLUMN, DataValidationError
from ecomlab.data.preprocess import Preprocess
from ecomlab.data.sources.recbole import RecBoleAtomic
from ecomlab.data.sources.user_item_lists import UserItemLists
from ecomlab.data.splits import PredefinedSplit, RatioSplit


def _pairs(frame: pd.DataFrame, bundle_maps: tuple[np.ndarray, np.ndarray]) -> set[tuple[object, object]]:
    users, items = bundle_maps
    return set(zip(users[frame["user_id"].to_numpy()].tolist(), items[frame["item_id"].to_numpy()].tolist(),
                   strict=True))


def _shop(folder: Path) -> dict[str, pd.DataFrame]:
    """Train / val / test files of a small shop (users u0..u5, items i0..i7), one test pair also in train."""
    folder.mkdir(parents=True, exist_ok=True)
    train = pd.DataFrame({"user_id": ["u0", "u0", "u1", "u1", "u2", "u2", "u3", "u4", "u5", "u5"],
                          "item_id": ["i0", "i1", "i1", "i2", "i2", "i3", "i4", "i5", "i6", "i0"]})
    val = pd.DataFrame({"user_id": ["u0", "u1", "u2"], "item_id": ["i2", "i3", "i4"]})
    test = pd.DataFrame({"user_id": ["u0", "u1", "u3", "u5"], "item_id": ["i3", "i4", "i7", "i0"]})
    for name, frame in (("train", train), ("val", val), ("test", test)):
        frame.to_csv(folder / f"{name}.csv", index=False)
    return {"train": train, "val": val, "test": test}


def test_file_parts_are_followed_row_for_row(tmp_path: Path) -> None:
    given = _shop(tmp_path / "shop")
    source = FileSource(interactions={"train": "shop/train.csv", "val": "shop/val.csv", "test": "shop/test.csv"},
                        data_dir=str(tmp_path))
    bundle = source.load()
    assert bundle.meta["predefined_parts"] == {"train": 10, "val": 3, "test": 4}
    split = PredefinedSplit()(bundle.interactions, bundle.has_timestamps, name=bundle.name)
    maps = (bundle.user_map.raw, bundle.item_map.raw)
    for part in ("train", "val", "test"):
        got = getattr(split, part)
        assert len(got) == len(given[part])
        assert _pairs(got, maps) == set(zip(given[part]["user_id"], given[part]["item_id"], strict=True))
    # (u5, i0) is in train and in test: each file's event stays where its file put it
    assert ("u5", "i0") in _pairs(split.train, maps) and ("u5", "i0") in _pairs(split.test, maps)
    assert split.protocol["split"] == "predefined" and split.protocol["parts_given"] == ["train", "val", "test"]
    # the user's files name no part column of their own: only the file decides
    assert set(pd.read_csv(tmp_path / "shop" / "train.csv").columns) == {"user_id", "item_id"}


def test_a_part_column_in_a_single_file_is_not_taken_for_a_split(tmp_path: Path) -> None:
    """A shop's own column called 'part' (a part number) is ignored, not read as train/val/test."""
    pd.DataFrame({"user_id": [1, 1, 2], "item_id": [5, 6, 5], "part": ["A-17", "B-2", "A-17"]}).to_csv(
        tmp_path / "inter.csv", index=False)
    bundle = FileSource(interactions="inter.csv", data_dir=str(tmp_path)).load()
    assert PART_COLUMN not in bundle.interactions
    with pytest.raises(DataValidationError, match=r"does not say which part .*split files"):
        PredefinedSplit()(bundle.interactions, name=bundle.name)


def test_duplicates_are_merged_within_a_part_only(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    pd.DataFrame({"user_id": [1, 1, 1, 2], "item_id": [7, 7, 8, 7], "weight": [1.0, 2.0, 1.0, 1.0]}).to_csv(
        folder / "train.csv", index=False)
    pd.DataFrame({"user_id": [1, 2], "item_id": [7, 8]}).to_csv(folder / "test.csv", index=False)
    with pytest.raises(DataValidationError, match=r"test\.csv: columns \['user_id', 'item_id'\] differ"):
        FileSource(interactions={"train": "d/train.csv", "test": "d/test.csv"}, data_dir=str(tmp_path)).load()
    pd.DataFrame({"user_id": [1, 2], "item_id": [7, 8], "weight": 1.0}).to_csv(folder / "test.csv", index=False)
    bundle = FileSource(interactions={"train": "d/train.csv", "test": "d/test.csv"}, data_dir=str(tmp_path)).load()
    merged = Preprocess(duplicates="sum")(bundle)
    split = PredefinedSplit()(merged.interactions, name=merged.name)
    # user 1 x item 7: two train rows summed into one, the test row left in test
    assert len(split.train) == 3 and len(split.test) == 2
    pair = split.train[(split.train["user_id"] == 0) & (split.train["item_id"] == 0)]
    assert pair["weight"].tolist() == [3.0]
    assert split.protocol["parts_given"] == ["train", "test"]


def test_bad_part_keys_and_a_second_validation_part_are_refused(tmp_path: Path) -> None:
    _shop(tmp_path / "shop")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['trian'\]"):
        FileSource(interactions={"trian": "shop/train.csv", "test": "shop/test.csv"}, data_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"train and at least one of the others"):
        FileSource(interactions={"train": "shop/train.csv"}, data_dir=str(tmp_path))
    bundle = FileSource(interactions={"train": "shop/train.csv", "valid": "shop/val.csv", "test": "shop/test.csv"},
                        data_dir=str(tmp_path)).load()
    with pytest.raises(DataValidationError, match=r"give a validation part already.*val_ratio=0.2"):
        PredefinedSplit(val_ratio=0.2)(bundle.interactions, name=bundle.name)
    with pytest.raises(ValueError, match=r"val_ratio=1.5"):
        PredefinedSplit(val_ratio=1.5)


def test_recbole_benchmark_files(tmp_path: Path) -> None:
    folder = tmp_path / "bench"
    folder.mkdir()
    header = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    rows = {"train": ["1\t10\t4\t100", "1\t11\t5\t101", "2\t10\t3\t102", "2\t12\t4\t103", "3\t11\t2\t104"],
            "valid": ["1\t12\t4\t200", "2\t11\t5\t201"],
            "test": ["1\t13\t3\t300", "3\t12\t4\t301"]}
    for suffix, lines in rows.items():
        (folder / f"bench.{suffix}.inter").write_text(header + "\n".join(lines) + "\n", encoding="utf-8")
    source = RecBoleAtomic(data_dir=str(tmp_path), folder="bench", benchmark_filename=["train", "valid", "test"])
    bundle = source.load()
    split = PredefinedSplit()(bundle.interactions, bundle.has_timestamps, name=bundle.name)
    assert split.sizes() == {"train": 5, "val": 2, "test": 2}
    maps = (bundle.user_map.raw, bundle.item_map.raw)
    assert _pairs(split.test, maps) == {(1, 13), (3, 12)}
    assert split.val["weight"].tolist() == [4.0, 5.0] and bundle.has_timestamps
    assert len(source.cache_key()["files"]) == 3
    # a benchmark file with other fields than the first is named
    (folder / "bench.test.inter").write_text("user_id:token\titem_id:token\n1\t13\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"bench\.test\.inter: fields .* differ"):
        source.load()
    with pytest.raises(ValueError, match=r"2 or 3 files"):
        RecBoleAtomic(data_dir=str(tmp_path), folder="bench", benchmark_filename=["train"])


def _lists(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.txt").write_text("0 0 1 2 3 4 5\n1 1 2 3 4 5\n2 0 2 4 6\n3 7\n", encoding="utf-8")
    (folder / "test.txt").write_text("0 6 7\n1 0\n2 1 3\n3\n", encoding="utf-8")


def test_lightgcn_lists_with_a_carved_validation_part(tmp_path: Path) -> None:
    _lists(tmp_path / "gowalla-tiny")
    source = UserItemLists(data_dir=str(tmp_path), folder="gowalla-tiny")
    bundle = source.load()
    assert not bundle.has_timestamps and bundle.meta["predefined_parts"] == {"train": 16, "val": 0, "test": 5}
    assert bundle.user_map.raw.dtype == np.int64 and bundle.item_map.raw.tolist() == list(range(8))
    plain = PredefinedSplit()(bundle.interactions, bundle.has_timestamps, name=bundle.name)
    assert plain.sizes() == {"train": 16, "val": 0, "test": 5}
    splitter = PredefinedSplit(val_ratio=0.2, seed=3)
    carved = splitter(bundle.interactions, bundle.has_timestamps, name=bundle.name)
    assert splitter.parts() == ("val", "test") and PredefinedSplit().parts() == ("val", "test")
    # the test part is the test file's, untouched; validation comes only out of train, per user
    maps = (bundle.user_map.raw, bundle.item_map.raw)
    assert _pairs(carved.test, maps) == _pairs(plain.test, maps)
    assert _pairs(carved.train, maps) | _pairs(carved.val, maps) == _pairs(plain.train, maps)
    expected_val = RatioSplit((0.8, 0.2, 0.0), seed=3)(plain.train).sizes()["val"]
    assert len(carved.val) == expected_val > 0
    # without a carved part, the split says only test is held out, so training runs unmonitored
    no_val = PredefinedSplit()
    no_val(bundle.interactions, name=bundle.name)
    assert no_val.parts() == ("test",)


def test_list_files_with_string_ids_and_a_bad_line(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "train.txt").write_text("alice a b\nbob b c\n", encoding="utf-8")
    (folder / "test.txt").write_text("alice c\n\nbob a\n", encoding="utf-8")
    bundle = UserItemLists(data_dir=str(tmp_path), folder="s").load()
    assert sorted(bundle.user_map.raw.tolist()) == ["alice", "bob"] and len(bundle.interactions) == 6
    (folder / "test.txt").write_text("alice c\nbob \x07\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"test\.txt: line 2 holds a non-printable token"):
        UserItemLists(data_dir=str(tmp_path), folder="s").load()


@pytest.mark.parametrize("val_ratio", [0.0, 0.25])
def test_training_on_a_lightgcn_release(compose_cfg, val_ratio: float) -> None:
    from ecomlab.train import train

    cfg = compose_cfg(["data=user-item-lists", "data.source.folder=tiny", f"data.split.val_ratio={val_ratio}",
                       "model=bpr", "trainer.max_epochs=2", "data.batch_size=8", "eval.ks=[5]",
                       "model.monitor=val/ndcg@5"])
    _lists(Path(cfg.paths.data_dir) / "tiny")
    record = train(cfg)
    assert record["protocol"]["split"]["split"] == "predefined"
    assert record["protocol"]["split_sizes"]["test"] == 5
    assert record["metrics"]["test/ndcg@5"] >= 0
    has_val = any(k.startswith("val/") for k in record["metrics"])
    assert has_val == (val_ratio > 0), "no validation file and nothing carved: nothing is monitored"


def test_training_on_split_files(compose_cfg) -> None:
    from ecomlab.train import train

    cfg = compose_cfg(["data=split-files", "model=popularity", "eval.ks=[5]", "model.monitor=val/ndcg@5",
                       "data.source.interactions={train: shop/train.csv, val: shop/val.csv, test: shop/test.csv}"])
    _shop(Path(cfg.paths.data_dir) / "shop")
    record = train(cfg)
    assert record["protocol"]["split_sizes"] == {"train": 10, "val": 3, "test": 4}
    assert "val/ndcg@5" in record["metrics"] and "test/ndcg@5" in record["metrics"]
