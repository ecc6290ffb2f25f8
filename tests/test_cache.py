"""The bundle cache (:mod:`ecomlab.data.cache`): exact round trips, keys, damaged entries, concurrent writers."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ecomlab.data import cache as cache_mod
from ecomlab.data.builtin import FileSource
from ecomlab.data.bundle import DatasetBundle, DataValidationError, build_bundle
from ecomlab.data.cache import cache_key, jsonable, load_bundle, read_bundle, save_bundle
from ecomlab.data.preprocess import Preprocess
from ecomlab.data.synthetic import SyntheticShop

# The data modules (torch, Lightning) and Hydra are imported inside the tests that use them: the concurrent-writer
# test's spawned processes import this module, and should not spend their time importing torch.


def assert_bundles_equal(a: DatasetBundle, b: DatasetBundle, *, meta: bool = True) -> None:
    assert a.name == b.name and a.has_timestamps == b.has_timestamps
    for part in ("interactions", "item_text", "social", "sales"):
        x, y = getattr(a, part), getattr(b, part)
        assert (x is None) == (y is None), part
        if x is not None:
            pd.testing.assert_frame_equal(x, y, check_dtype=True, check_exact=True, check_index_type=True)
            assert list(x.dtypes) == list(y.dtypes), part
    for attr in ("user_map", "item_map"):
        x, y = getattr(a, attr).raw, getattr(b, attr).raw
        assert x.dtype == y.dtype, attr
        assert x.tolist() == y.tolist(), attr
        assert [type(v) for v in x.tolist()] == [type(v) for v in y.tolist()], attr
    if meta:
        assert a.meta == b.meta
    assert a.fingerprint() == b.fingerprint()


def _entries(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.iterdir()) if cache_dir.exists() else []


def _write_shop(folder: Path, n_rows: int = 400, seed: int = 0) -> FileSource:
    """Interactions (string ids), item text and social edges as CSV files, read back by a FileSource."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    users = rng.integers(0, max(n_rows // 10, 5), n_rows)
    items = rng.integers(0, max(n_rows // 20, 5), n_rows)
    pd.DataFrame({"user_id": [f"u{u:05d}" for u in users], "item_id": [f"i{i:05d}" for i in items],
                  "timestamp": 1_600_000_000 + np.arange(n_rows), "weight": rng.integers(1, 6, n_rows)}
                 ).to_csv(folder / "inter.csv", index=False)
    uniq_items = sorted({f"i{i:05d}" for i in items})
    pd.DataFrame({"item_id": uniq_items, "text": [f"thing {i}" for i in uniq_items]}).to_csv(
        folder / "items.csv", index=False)
    uniq_users = sorted({f"u{u:05d}" for u in users})
    pd.DataFrame({"user_id": uniq_users[:-1], "friend_id": uniq_users[1:]}).to_csv(folder / "social.csv", index=False)
    return FileSource("inter.csv", item_text="items.csv", social="social.csv", data_dir=str(folder), name="shop")


# --------------------------------------------------------------------------- save / read round trip


def test_round_trip_is_exact_on_the_synthetic_shop(tmp_path: Path) -> None:
    bundle = SyntheticShop(n_users=120, n_items=80, seed=2).load()
    assert bundle.social is not None and bundle.sales is not None and bundle.item_text is not None
    save_bundle(bundle, tmp_path / "entry")
    back = read_bundle(tmp_path / "entry")
    assert_bundles_equal(bundle, back, meta=False)
    assert back.meta == jsonable(bundle.meta)
    assert back.sales["ds"].dtype == bundle.sales["ds"].dtype


def test_round_trip_keeps_integer_and_string_raw_ids_apart(tmp_path: Path) -> None:
    ints = build_bundle("ints", pd.DataFrame({"user_id": [3, 1, 2], "item_id": [10, 20, 10], "timestamp": [1, 2, 3]}))
    strs = build_bundle("strs", pd.DataFrame({"user_id": ["003", "01", "2"], "item_id": ["10", "20", "10"]}))
    for bundle in (ints, strs):
        save_bundle(bundle, tmp_path / bundle.name)
        back = read_bundle(tmp_path / bundle.name)
        assert_bundles_equal(bundle, back)
    assert read_bundle(tmp_path / "ints").user_map.raw.dtype == np.int64
    assert read_bundle(tmp_path / "strs").user_map.raw.tolist() == ["003", "01", "2"]
    assert not read_bundle(tmp_path / "strs").has_timestamps


def test_round_trip_of_a_sales_only_bundle(tmp_path: Path) -> None:
    sales = pd.DataFrame({"unique_id": ["a"] * 5, "ds": pd.date_range("2020-01-01", periods=5, freq="MS"),
                          "y": np.arange(5.0), "promo": [0, 1, 0, 0, 1]})
    bundle = Preprocess()(build_bundle("panel", None, sales=sales))
    save_bundle(bundle, tmp_path / "p")
    back = read_bundle(tmp_path / "p")
    assert_bundles_equal(bundle, back)
    assert back.meta["freq"] == "MS" and back.n_users == 0


def test_meta_is_stored_as_json(tmp_path: Path) -> None:
    bundle = build_bundle("m", pd.DataFrame({"user_id": [1], "item_id": [2]}),
                          meta={"arr": np.arange(3), "scalar": np.float32(0.5), "tup": (1, "a"), 7: "x",
                                "when": pd.Timestamp("2020-01-01")})
    save_bundle(bundle, tmp_path / "m")
    meta = read_bundle(tmp_path / "m").meta
    assert meta["arr"] == [0, 1, 2] and meta["scalar"] == 0.5 and meta["tup"] == [1, "a"] and meta["7"] == "x"
    assert meta["when"] == "2020-01-01T00:00:00"
    json.loads((tmp_path / "m" / "bundle.json").read_text())  # plain JSON on disk
    with pytest.raises(TypeError, match=r"meta\.bad: object is not JSON-serialisable"):
        jsonable({"bad": object()})


def test_read_bundle_names_a_missing_file(tmp_path: Path) -> None:
    save_bundle(SyntheticShop(n_users=30, n_items=20, seed=0).load(), tmp_path / "e")
    (tmp_path / "e" / "social.parquet").unlink()
    with pytest.raises(DataValidationError, match="social.parquet"):
        read_bundle(tmp_path / "e")


# --------------------------------------------------------------------------- load_bundle


def test_second_load_is_a_hit_and_equal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = _write_shop(tmp_path / "data")
    pre = Preprocess(user_k_core=2, duplicates="sum")
    caplog.set_level("INFO", logger="ecomlab.data.cache")
    first, info1 = load_bundle(source, pre, tmp_path / "cache")
    second, info2 = load_bundle(source, pre, tmp_path / "cache")
    assert info1["cache"] == "miss" and info2["cache"] == "hit"
    assert info1["key"] == info2["key"] and len(info1["key"]) == 64 and info2["seconds"] >= 0
    assert_bundles_equal(first, second)
    assert "data cache miss" in caplog.text and "data cache hit" in caplog.text
    # same content as without any cache
    plain = pre(source.load())
    assert_bundles_equal(plain, second, meta=False)
    assert second.meta["preprocess"] == jsonable(plain.meta["preprocess"])
    assert [p.name for p in _entries(tmp_path / "cache")] == [f"FileSource-{info1['key'][:20]}"]


def test_changed_file_bytes_or_preprocess_miss(tmp_path: Path) -> None:
    source = _write_shop(tmp_path / "data")
    cache = tmp_path / "cache"
    _, base = load_bundle(source, Preprocess(), cache)
    assert load_bundle(source, Preprocess(), cache)[1]["cache"] == "hit"
    _, other_pre = load_bundle(source, Preprocess(item_k_core=2), cache)
    assert other_pre["cache"] == "miss" and other_pre["key"] != base["key"]
    _, no_pre = load_bundle(source, None, cache)
    assert no_pre["cache"] == "miss" and no_pre["key"] not in (base["key"], other_pre["key"])
    # one byte of one file changes: a miss with a new key, and the new content is what comes back
    path = tmp_path / "data" / "items.csv"
    path.write_text(path.read_text().replace("thing", "thinG", 1))
    bundle, changed = load_bundle(source, Preprocess(), cache)
    assert changed["cache"] == "miss" and changed["key"] != base["key"]
    assert "thinG" in bundle.item_text["text"].iloc[0]
    assert len(_entries(cache)) == 4


def test_source_parameters_are_part_of_the_key(tmp_path: Path) -> None:
    source = _write_shop(tmp_path / "data")
    strict = FileSource("inter.csv", item_text="items.csv", social="social.csv", data_dir=str(tmp_path / "data"),
                        name="shop", unknown_ids="error")
    assert cache_key(source) != cache_key(strict)
    assert cache_key(source) == cache_key(_write_shop(tmp_path / "data"))  # same bytes rewritten: same key


def test_sources_without_a_key_or_without_cache_dir_are_not_cached(tmp_path: Path) -> None:
    bundle, info = load_bundle(SyntheticShop(n_users=30, n_items=20, seed=0), Preprocess(), tmp_path / "cache")
    assert info["cache"] == "off" and info["key"] is None
    assert "preprocess" in bundle.meta
    assert not (tmp_path / "cache").exists()
    _, info = load_bundle(_write_shop(tmp_path / "data"), None, None)
    assert info["cache"] == "off"


@pytest.mark.parametrize("damage", ["delete_part", "delete_header", "truncate_parquet", "garble_json"])
def test_a_damaged_entry_is_rebuilt(tmp_path: Path, damage: str) -> None:
    source = _write_shop(tmp_path / "data")
    cache = tmp_path / "cache"
    good, info = load_bundle(source, Preprocess(), cache)
    entry = cache / f"FileSource-{info['key'][:20]}"
    if damage == "delete_part":
        (entry / "interactions.parquet").unlink()
    elif damage == "delete_header":
        (entry / "bundle.json").unlink()
    elif damage == "truncate_parquet":
        data = (entry / "item_text.parquet").read_bytes()
        (entry / "item_text.parquet").write_bytes(data[: len(data) // 2])
    else:
        (entry / "id_maps.json").write_text("{not json")
    rebuilt, info2 = load_bundle(source, Preprocess(), cache)
    assert info2["cache"] == "miss"
    assert_bundles_equal(good, rebuilt)
    assert load_bundle(source, Preprocess(), cache)[1]["cache"] == "hit"
    assert [p.name for p in _entries(cache)] == [entry.name]  # no temp or trash directories left


def test_an_unwritable_cache_does_not_fail_the_load(tmp_path: Path) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache directory should be")
    bundle, info = load_bundle(_write_shop(tmp_path / "data"), None, blocker)
    assert info["cache"] == "miss" and bundle.n_users > 0


class _OddMeta:
    """A source whose meta cannot be written as JSON: it is loaded, but not cached."""

    def __init__(self, source: FileSource) -> None:
        self.source = source

    def cache_key(self) -> dict[str, Any]:
        return self.source.cache_key()

    def load(self) -> DatasetBundle:
        bundle = self.source.load()
        bundle.meta["thing"] = object()
        return bundle


def test_meta_that_is_not_json_is_loaded_but_not_cached(tmp_path: Path) -> None:
    bundle, info = load_bundle(_OddMeta(_write_shop(tmp_path / "data")), None, tmp_path / "cache")
    assert info["cache"] == "miss" and bundle.n_users > 0
    assert _entries(tmp_path / "cache") == []  # neither an entry nor a temp directory


def test_a_missing_input_file_raises_the_sources_own_error(tmp_path: Path) -> None:
    source = FileSource("nope.csv", data_dir=str(tmp_path))
    with pytest.raises(DataValidationError, match="nope.csv: file not found"):
        load_bundle(source, Preprocess(), tmp_path / "cache")


def test_publish_discards_its_copy_when_another_writer_won(tmp_path: Path) -> None:
    bundle = build_bundle("t", pd.DataFrame({"user_id": [1, 2], "item_id": [3, 4]}))
    final = save_bundle(bundle, tmp_path / "final")
    mine = save_bundle(bundle, tmp_path / ".tmp-mine")
    assert cache_mod._publish(mine, final) is False
    assert not mine.exists()
    assert_bundles_equal(read_bundle(final), bundle)


def _load_worker(folder: str, cache_dir: str, barrier: Any, queue: Any) -> None:
    try:
        source = FileSource("inter.csv", item_text="items.csv", social="social.csv", data_dir=folder, name="shop")
        barrier.wait(timeout=120)
        bundle, info = load_bundle(source, Preprocess(duplicates="sum"), cache_dir)
        queue.put((info["cache"], bundle.fingerprint(), None))
    except Exception as err:  # reported to the parent, which fails the test with it
        queue.put((None, None, repr(err)))


def test_concurrent_writers_both_succeed_and_leave_one_entry(tmp_path: Path) -> None:
    source = _write_shop(tmp_path / "data", n_rows=50_000, seed=1)
    cache = tmp_path / "cache"
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_load_worker, args=(str(tmp_path / "data"), str(cache), barrier, queue))
             for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert [err for _, _, err in results] == [None, None]
    assert "miss" in [state for state, _, _ in results]
    expected = Preprocess(duplicates="sum")(source.load()).fingerprint()
    assert [fp for _, fp, _ in results] == [expected, expected]
    entries = _entries(cache)
    assert len(entries) == 1 and entries[0].name.startswith("FileSource-")  # no temp directories left
    assert sorted(p.name for p in entries[0].iterdir()) == [
        "bundle.json", "id_maps.json", "interactions.parquet", "item_text.parquet", "social.parquet"]
    bundle, info = load_bundle(source, Preprocess(duplicates="sum"), cache)
    assert info["cache"] == "hit" and bundle.fingerprint() == expected


# --------------------------------------------------------------------------- data modules


def test_rec_datamodule_loads_through_the_cache(tmp_path: Path) -> None:
    from ecomlab.data.rec_datamodule import RecDataModule
    from ecomlab.data.splits import RatioSplit

    source = _write_shop(tmp_path / "data", n_rows=2000)
    pre = Preprocess(user_k_core=3, item_k_core=3)

    def setup() -> RecDataModule:
        dm = RecDataModule(source, RatioSplit(), preprocess=pre, cache_dir=str(tmp_path / "cache"))
        dm.setup()
        return dm

    first, second = setup(), setup()
    p1, p2 = first.protocol(), second.protocol()
    assert p1["data_cache"]["cache"] == "miss" and p2["data_cache"]["cache"] == "hit"
    assert p1["preprocess"] == pre.describe()
    assert p1["data_fingerprint"] == p2["data_fingerprint"]
    assert p1["split_sizes"] == p2["split_sizes"]
    assert first.bundle.interactions.groupby("user_id").size().min() >= 3
    plain = RecDataModule(source, RatioSplit())
    plain.setup()
    assert plain.protocol()["preprocess"] is None and plain.protocol()["data_cache"]["cache"] == "off"


def test_forecast_datamodule_records_preprocess_and_freq(tmp_path: Path) -> None:
    from ecomlab.data.forecast_datamodule import ForecastDataModule
    from ecomlab.data.splits import RollingOrigin

    (tmp_path / "inter.csv").write_text("user_id,item_id\nu1,i1\n")
    spec = {"long": 60, "short": 10}
    pd.concat([pd.DataFrame({"unique_id": uid, "ds": pd.date_range("2015-01-01", periods=n, freq="MS"),
                             "y": np.arange(n, dtype=float)}) for uid, n in spec.items()]
              ).to_csv(tmp_path / "sales.csv", index=False)
    source = FileSource("inter.csv", sales="sales.csv", data_dir=str(tmp_path))
    pre = Preprocess(min_series_length=24)
    dm = ForecastDataModule(source, RollingOrigin(horizon=6, n_windows=2), season_length=12, preprocess=pre,
                            cache_dir=str(tmp_path / "cache"))
    dm.setup()
    protocol = dm.protocol()
    assert protocol["preprocess"] == pre.describe() and protocol["data_cache"]["cache"] == "miss"
    assert protocol["n_series"] == 1 and dm.bundle.meta["freq"] == "MS"
    assert dm.bundle.meta["preprocess"]["steps"]["short_series"] == ["short"]


def test_files_config_caches_under_paths_cache_dir(compose_cfg, tmp_path: Path) -> None:
    import hydra

    _write_shop(tmp_path / "data" / "shop")
    overrides = ["data=files", "model=popularity", "data.source.interactions=shop/inter.csv",
                 "data.source.item_text=shop/items.csv", "data.preprocess.user_k_core=2",
                 f"paths.cache_dir={tmp_path / 'cache'}"]
    infos = []
    for _ in range(2):
        dm = hydra.utils.instantiate(compose_cfg(overrides).data)
        dm.setup()
        infos.append(dm.protocol()["data_cache"]["cache"])
        assert dm.protocol()["preprocess"]["user_k_core"] == 2
    assert infos == ["miss", "hit"]
    assert len(_entries(tmp_path / "cache")) == 1
