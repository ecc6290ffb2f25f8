"""Issue 9, concurrency: two processes building the same data cache at once leave one valid entry.

Two real processes (``spawn``) load the same small ``synthetic_shop`` through :func:`load_bundle`. The source
sleeps after generating, so both are past the "is there an entry?" check before either publishes: the race on
the final rename really happens on every run of this test, not only by chance.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

import pandas as pd

from ecomlab.data.bundle import DatasetBundle
from ecomlab.data.cache import load_bundle, read_bundle
from ecomlab.data.preprocess import Preprocess
from ecomlab.data.synthetic import SyntheticShop

# torch and Lightning stay out of this module: the spawned processes import it.

SHOP = {"n_users": 300, "n_items": 120, "seed": 5, "language": "mixed"}
PREPROCESS = {"user_k_core": 3, "item_k_core": 2}


class SlowKeyedShop:
    """The synthetic shop with a cache key, slowed down so that concurrent builds overlap."""

    def __init__(self, delay: float, **shop: Any) -> None:
        self.shop = SyntheticShop(**shop)
        self.delay = delay

    def cache_key(self) -> dict[str, Any]:
        return {**self.shop.args(), "files": []}

    def load(self) -> DatasetBundle:
        bundle = self.shop.load()
        time.sleep(self.delay)
        return bundle


def _worker(cache_dir: str, barrier: Any, queue: Any) -> None:
    try:
        barrier.wait(timeout=120)
        bundle, info = load_bundle(SlowKeyedShop(1.5, **SHOP), Preprocess(**PREPROCESS), cache_dir)
        queue.put((info["cache"], bundle, None))
    except Exception as err:  # reported to the parent, which fails the test with it
        queue.put((None, None, repr(err)))


def _same(a: DatasetBundle, b: DatasetBundle) -> None:
    for part in ("interactions", "item_text", "social", "sales"):
        pd.testing.assert_frame_equal(getattr(a, part), getattr(b, part), check_exact=True)
    assert a.user_map.raw.tolist() == b.user_map.raw.tolist()
    assert a.item_map.raw.tolist() == b.item_map.raw.tolist()
    assert a.meta == b.meta
    assert a.fingerprint() == b.fingerprint()


def test_two_processes_building_one_cache_leave_one_valid_entry(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(cache), barrier, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert [err for _, _, err in results] == [None, None]
    # the delay puts both past the lookup before either publishes: both build, one rename wins
    assert [state for state, _, _ in results] == ["miss", "miss"]
    (_, first, _), (_, second, _) = results
    _same(first, second)

    entries = sorted(cache.iterdir())
    assert [e.name.startswith("SlowKeyedShop-") for e in entries] == [True]  # one entry, no .tmp-/.trash- left
    assert sorted(p.name for p in entries[0].iterdir()) == [
        "bundle.json", "id_maps.json", "interactions.parquet", "item_text.parquet", "sales.parquet",
        "social.parquet"]
    _same(read_bundle(entries[0]), first)
    again, info = load_bundle(SlowKeyedShop(0.0, **SHOP), Preprocess(**PREPROCESS), cache)
    assert info["cache"] == "hit"
    _same(again, first)
