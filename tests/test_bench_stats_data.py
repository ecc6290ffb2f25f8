"""Issue 8 part 2: the statsforecast comparison and the data pipeline at scale (the code they rely on).

* ``map_series`` hands strided chunks to the process pool: results must come back in item order.
* The pool's workers unpickle functions from ``ecomlab.models.local_fit``, which must not import torch.
* ``build_bundle``'s duplicate check packs (user, item, timestamp) into one int64 when it fits: it must mark
  exactly the rows pandas' ``duplicated`` marks, on both the packed and the fallback path.
* ``scripts/bench_data_scale.py`` runs end to end at a tiny size and reports every stage.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecomlab.data.bundle import DataValidationError, _duplicate_rows, build_bundle
from ecomlab.data.splits import user_major_order
from ecomlab.models import local
from ecomlab.models.local import map_series

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("n", [1, 3, 9, 37, 150])
@pytest.mark.parametrize("fork", [True, False])  # forked workers (Linux default) and joblib's loky
def test_map_series_keeps_item_order_across_the_pool(n: int, fork: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not fork:
        monkeypatch.setattr(local, "_fork_context", lambda: None)
    elif local._fork_context() is None:
        pytest.skip("fork is not this platform's default start method")
    items = list(range(-n, 0))
    assert map_series(abs, items, 2) == [abs(v) for v in items]
    assert map_series(abs, items, 1) == [abs(v) for v in items]


def test_large_calls_split_into_small_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers take tasks as they free up, so the last task bounds the idle time: no task over
    SERIES_PER_CHUNK items once a call holds more than workers x CHUNKS_PER_WORKER of them."""
    seen: list[int] = []

    def record(fn, part, *args):  # the pool's task function, run in-process here
        seen.append(len(part))
        return [fn(x, *args) for x in part]

    class InlinePool:  # the fork pool's interface, executing in order in this process
        def __init__(self, *args, **kwargs) -> None: ...
        def __enter__(self): return self
        def __exit__(self, *exc) -> None: ...
        def map(self, fn, *iterables): return [fn(*a) for a in zip(*iterables, strict=True)]

    monkeypatch.setattr(local, "map_chunk", record)
    monkeypatch.setattr(local, "ProcessPoolExecutor", InlinePool)
    monkeypatch.setattr(local, "_fork_context", lambda: object())
    items = list(range(1428))
    assert local.map_series(abs, items, 2) == items
    assert max(seen) <= local.SERIES_PER_CHUNK and sum(seen) == 1428
    seen.clear()
    local.map_series(abs, list(range(64)), 2)  # a batch of 64: 2 workers x 4 tasks of 8, as before
    assert seen == [8] * 8


def test_pool_worker_module_imports_no_torch() -> None:
    code = "import sys, ecomlab.models.local_fit; sys.exit(1 if 'torch' in sys.modules else 0)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"ecomlab.models.local_fit imports torch: {done.stderr[-2000:]}"


@pytest.mark.parametrize("ts_span", [10, 2**40])  # small range: packed int64 key; huge range: pandas fallback
def test_duplicate_rows_match_pandas(ts_span: int) -> None:
    rng = np.random.default_rng(0)
    n = 5000
    users, items = rng.integers(0, 50, n), rng.integers(0, 20, n)
    ts = rng.integers(0, 10, n) * (ts_span // 10) + 1_600_000_000
    expected = pd.DataFrame({"u": users, "i": items, "t": ts}).duplicated(keep="first").to_numpy()
    assert expected.any()
    np.testing.assert_array_equal(_duplicate_rows(users, items, ts), expected)
    unique = ~expected
    assert not _duplicate_rows(users[unique], items[unique], ts[unique]).any()


def test_blank_and_missing_ids_are_named_by_row() -> None:
    frame = pd.DataFrame({"user_id": ["a", " ", "b", None, "a"], "item_id": ["x", "y", "z", "x", "y"],
                          "timestamp": [1, 2, 3, 4, 5]})
    with pytest.raises(DataValidationError, match=r"'user_id' has 2 missing/empty id\(s\); first rows \[1, 3\]"):
        build_bundle("t", frame)


def test_bench_data_scale_runs_every_stage(tmp_path: Path) -> None:
    out = tmp_path / "scale"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_data_scale.py"), "--n-interactions", "4000",
                    "--n-items", "300", "--workdir", str(tmp_path), "--out", str(out)],
                   check=True, capture_output=True, text=True, timeout=300, env=env)
    record = json.loads(out.with_suffix(".json").read_text())
    stages = record["pipeline"]
    assert list(stages) == ["load", "validate", "k_core", "split_ratio", "split_temporal", "cache_write",
                            "cache_read", "total"]
    assert record["generate"]["rows"] == stages["load"]["rows"] > 3000
    split = stages["split_ratio"]
    assert split["train"] + split["val"] + split["test"] == stages["k_core"]["rows"]
    assert all(rec["process_peak_rss"] > 0 and rec["seconds"] >= 0 for rec in stages.values())
    assert "pipeline total" in out.with_suffix(".md").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["scale.json", "scale.md"]  # the temp workdir is gone


@pytest.mark.parametrize("high", [7, 70_000, 2**33])  # one digit, two 16-bit digits, lexsort fallback
def test_user_major_order_equals_lexsort(high: int) -> None:
    rng = np.random.default_rng(1)
    users = rng.integers(0, high, 20_000)
    key = rng.integers(0, 50, 20_000) / 50.0  # many ties: those must stay in row order, as in lexsort
    np.testing.assert_array_equal(user_major_order(users, key), np.lexsort((key, users)))


def test_bundle_does_not_alias_its_input_frame() -> None:
    frame = pd.DataFrame({"user_id": [1, 2, 3], "item_id": [4, 5, 6], "timestamp": [7, 8, 9],
                          "weight": [1.0, 2.0, 3.0]})
    bundle = build_bundle("t", frame)
    frame.loc[:, ["timestamp", "weight"]] = [[0, 0.0]] * 3
    assert bundle.interactions["timestamp"].tolist() == [7, 8, 9]
    assert bundle.interactions["weight"].tolist() == [1.0, 2.0, 3.0]
