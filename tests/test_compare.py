"""``ecomlab-compare`` on runs trained in the test: grouping, protocol checks, significance, outputs, CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict
from scipy import stats

from ecomlab.compare import main, run
from ecomlab.report.compare import ProtocolMismatch, check_protocols, load_runs
from ecomlab.train import train
from ecomlab.utils import config_dir

SHOP = ["data=synthetic_shop", "data.source.n_users=120", "data.source.n_items=60", "data.batch_size=256",
        "trainer.max_epochs=2", "eval.print_table=false"]
SERIES = ["data=retail_series", "data.source.series=[souvenirs,a10]", "data.backtest.n_windows=2",
          "eval.print_table=false"]


def make_runs(root: Path, plan: Sequence[tuple[str, list[str], int]]) -> Path:
    """Train each ``(model, data overrides, seed)`` for real into ``root/runs/<model>_s<seed>``."""
    for model, data, seed in plan:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose("train", overrides=[f"model={model}", f"seed={seed}", *data], return_hydra_config=True)
        HydraConfig().set_config(cfg)
        with open_dict(cfg):
            cfg.paths.output_dir = str(root / "runs" / f"{model}_s{seed}")
            for key in ("log_dir", "data_dir", "cache_dir"):
                cfg.paths[key] = str(root / key)
            del cfg["hydra"]
        train(cfg)
    GlobalHydra.instance().clear()
    return root / "runs"


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    os.environ.setdefault("PL_DISABLE_FORK", "1")
    plan = [(m, SHOP, s) for m in ("popularity", "bpr") for s in (0, 1)]
    plan += [("seasonal_naive", SERIES, 0), ("seasonal_naive", SERIES, 1), ("arima", SERIES, 0)]
    return make_runs(tmp_path_factory.mktemp("compare"), plan)


def record(runs_dir: Path, name: str) -> dict:
    return json.loads((runs_dir / name / "metrics.json").read_text())


def test_table_is_the_mean_and_std_of_the_run_metrics(runs_dir: Path, tmp_path: Path) -> None:
    result = run([str(runs_dir), "--metrics", "test/ndcg@10", "test/mase", "fit_seconds", "--out", str(tmp_path)])
    table = result["table"].set_index(["dataset", "model"])
    for model, dataset, metric in [("bpr", "synthetic_shop", "test/ndcg@10"),
                                   ("popularity", "synthetic_shop", "test/ndcg@10"),
                                   ("seasonal_naive", "retail_series", "test/mase"),
                                   ("bpr", "synthetic_shop", "fit_seconds")]:
        values = [record(runs_dir, f"{model}_s{s}")[metric] if "/" not in metric else
                  record(runs_dir, f"{model}_s{s}")["metrics"][metric] for s in (0, 1)]
        row = table.loc[(dataset, model)]
        assert row["runs"] == 2 and row["seeds"] == "0,1"
        assert row[metric] == pytest.approx(np.mean(values))
        assert row[f"{metric}_std"] == pytest.approx(np.std(values, ddof=1))
    assert np.isnan(table.loc[("retail_series", "arima"), "test/ndcg@10"])  # a metric of the other task: blank
    single = table.loc[("retail_series", "arima")]  # one run: its value, no spread
    assert single["runs"] == 1 and np.isnan(single["test/mase_std"])
    assert single["test/mase"] == pytest.approx(record(runs_dir, "arima_s0")["metrics"]["test/mase"])


def test_best_per_column_follows_the_metric_direction(runs_dir: Path) -> None:
    table = run([str(runs_dir), "--metrics", "test/ndcg@10", "test/mase", "test/smape"])["table"]
    for dataset, part in table.groupby("dataset"):
        for metric, pick in (("test/ndcg@10", "idxmax"), ("test/mase", "idxmin"), ("test/smape", "idxmin")):
            values = part[metric].dropna()
            if values.empty:
                assert not part[f"{metric}_best"].any()
                continue
            best = getattr(values, pick)()
            assert part.loc[best, f"{metric}_best"] and part[f"{metric}_best"].sum() == 1, (dataset, metric)


def test_outputs_exist_and_parse(runs_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run([str(runs_dir), "--metrics", "test/ndcg@10", "test/recall@10", "--baseline", "popularity",
         "--out", str(out)])
    csv = pd.read_csv(out / "table.csv")
    assert {"dataset", "model", "runs", "test/ndcg@10", "test/ndcg@10_std", "test/ndcg@10_best"} <= set(csv.columns)
    assert len(csv) == 4
    tex = (out / "table.tex").read_text()
    assert tex.startswith("\\begin{tabular}") and tex.rstrip().endswith("\\end{tabular}")
    assert "test/ndcg@10" in tex and "\\textbf{" in tex and "synthetic\\_shop" in tex and "$\\pm$" in tex
    md = (out / "table.md").read_text()
    assert "| synthetic_shop | bpr | 2 |" in md and "**" in md
    saved = json.loads((out / "compare.json").read_text())  # strict JSON: no NaN
    assert {"runs", "table", "significance", "protocol", "metrics", "command"} <= set(saved)
    assert len(saved["runs"]) == 7 and saved["baseline"] == ["popularity"]
    assert {s["metric"] for s in saved["significance"]} == {"test/ndcg@10", "test/recall@10"}


def test_significance_pairs_seed_averaged_per_user_values(runs_dir: Path) -> None:
    result = run([str(runs_dir), "--metrics", "test/ndcg@10", "--baseline", "popularity"])
    (entry,) = result["significance"]
    assert (entry["model"], entry["baseline"], entry["seeds"]) == ("bpr", "popularity", [0, 1])

    def per_user(model: str) -> pd.Series:
        frames = [pd.read_parquet(runs_dir / f"{model}_s{s}" / "per_user_test.parquet") for s in (0, 1)]
        both = pd.concat(frames)
        return both["ndcg@10"].astype(np.float64).groupby(both["user"]).mean()

    base, model = per_user("popularity").align(per_user("bpr"), join="inner")
    assert entry["n"] == len(base)
    assert entry["wilcoxon_p"] == pytest.approx(stats.wilcoxon(model - base).pvalue)
    assert entry["t_p"] == pytest.approx(stats.ttest_rel(model, base).pvalue)
    assert entry["t_p_holm"] == pytest.approx(entry["t_p"])  # a single comparison: Holm changes nothing
    assert entry["mean_diff"] == pytest.approx((model - base).mean())


def test_mixed_protocols_are_refused_naming_the_key(runs_dir: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(runs_dir / "popularity_s0", runs / "popularity_s0")
    shutil.copytree(runs_dir / "bpr_s0", runs / "bpr_s0")
    path = runs / "bpr_s0" / "metrics.json"
    changed = json.loads(path.read_text())
    changed["protocol"]["ks"] = [10]
    path.write_text(json.dumps(changed))
    with pytest.raises(ProtocolMismatch, match=r"protocol key 'ks': \[10\] in .*bpr_s0 but \[5, 10, 20\] in "):
        check_protocols(load_runs([runs]))
    mismatches = check_protocols(load_runs([runs]), allow_mixed=True)
    assert [m["key"] for m in mismatches] == ["ks"]
    result = run([str(runs), "--metrics", "test/ndcg@10", "--allow-mixed-protocols"])
    assert result["protocol_mismatches"][0]["values"] == [[10], [5, 10, 20]]
    with pytest.raises(SystemExit) as exit_info:
        main([str(runs), "--metrics", "test/ndcg@10"])
    assert exit_info.value.code == 2


def test_same_seed_must_share_the_data_but_other_seeds_may_differ(runs_dir: Path, tmp_path: Path) -> None:
    # seeds 0 and 1 split synthetic_shop differently (split sizes differ): accepted
    check_protocols(load_runs([runs_dir]))
    runs = tmp_path / "runs"
    shutil.copytree(runs_dir / "seasonal_naive_s0", runs / "seasonal_naive_s0")
    shutil.copytree(runs_dir / "seasonal_naive_s1", runs / "seasonal_naive_s1")
    path = runs / "seasonal_naive_s1" / "metrics.json"
    changed = json.loads(path.read_text())
    changed["protocol"]["data_fingerprint"] = "0000000000000000"
    path.write_text(json.dumps(changed))
    # forecasting data does not depend on the seed: a different fingerprint is a different data set
    with pytest.raises(ProtocolMismatch, match="data_fingerprint"):
        check_protocols(load_runs([runs]))


def test_glob_patterns_and_config_keys(runs_dir: Path) -> None:
    result = run([f"{runs_dir}/popularity_s*", f"{runs_dir}/bpr_s*", "--metrics", "test/ndcg@10",
                  "--group-by", "model", "dataset", "model.optimizer.lr"])
    table = result["table"]
    assert list(table["model"]) == ["bpr", "popularity"] and "model.optimizer.lr" in table.columns
    assert table["model.optimizer.lr"].notna().sum() == 1  # popularity has no optimizer


def test_default_metrics_are_test_metrics_at_the_monitor_k(runs_dir: Path) -> None:
    names = [m["name"] for m in run([str(runs_dir)])["metrics"]]
    assert "test/ndcg@10" in names and "test/mase" in names
    assert all(n.startswith("test/") for n in names) and "test/ndcg@20" not in names


@pytest.mark.parametrize(
    ("args", "message"),
    [(["{empty}"], "no finished runs"), (["{missing}"], "no such run or sweep directory"),
     (["{runs}", "--metrics", "test/nope@10"], "unknown metric test/nope@10"),
     (["{runs}", "--baseline", "nobody"], "unknown baseline 'nobody'"),
     (["{runs}", "--plots", "bars"], "--plots needs a folder")],
)
def test_bad_input_exits_2_with_a_message(runs_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          args: list[str], message: str) -> None:
    (tmp_path / "empty").mkdir()
    paths = {"empty": tmp_path / "empty", "missing": tmp_path / "missing", "runs": runs_dir}
    with pytest.raises(SystemExit) as exit_info:
        main([a.format(**paths) for a in args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_subprocess_exits_2_without_a_traceback(tmp_path: Path) -> None:
    tool = str(Path(sys.executable).parent / "ecomlab-compare")
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    bad = subprocess.run([tool, str(tmp_path / "nothing")], capture_output=True, text=True, timeout=120, env=env)
    assert bad.returncode == 2 and "error:" in bad.stderr and "Traceback" not in bad.stderr
    assert "nothing: no such run or sweep directory" in bad.stderr


def test_report_links_existing_plots(runs_dir: Path, tmp_path: Path) -> None:
    report = tmp_path / "report"
    run([str(runs_dir), "--metrics", "test/ndcg@10", "test/mase", "--baseline", "popularity", "seasonal_naive",
         "--report", str(report), "--series", "a10", "--title", "Tiny study", "--plots", "bars", "forecast"])
    text = (report / "README.md").read_text()
    assert text.startswith("# Tiny study") and "## Significance" in text and "## Protocol" in text
    links = [line.split("(", 1)[1].rstrip(")") for line in text.splitlines() if line.startswith("![")]
    assert links and all((report / link).stat().st_size > 0 for link in links)
    assert "forecast_retail_series_a10.png" in links
    for name in ("table.md", "table.csv", "table.tex", "compare.json"):
        assert (report / name).exists()


def test_runs_configured_differently_are_not_averaged(runs_dir: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The auditor's case: one seed trained for 2 and for 3 epochs is not '2 runs, mean ± std'."""
    runs = tmp_path / "runs"
    make_runs(tmp_path, [("bpr", [*SHOP, "trainer.max_epochs=3"], 0)])
    shutil.move(runs / "bpr_s0", runs / "bpr_s0_e3")
    shutil.copytree(runs_dir / "bpr_s0", runs / "bpr_s0_e2")
    with pytest.raises(SystemExit) as exit_info:
        main([str(runs), "--metrics", "test/ndcg@10"])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: runs of model bpr on dataset synthetic_shop differ in config key "
                           "trainer.max_epochs")
    assert f"2 in {runs / 'bpr_s0_e2'}" in line and f"3 in {runs / 'bpr_s0_e3'}" in line
    assert "--config-keys trainer.max_epochs" in line
    # split into variants, each its own row of one run
    table = run([str(runs), "--metrics", "test/ndcg@10", "--config-keys", "trainer.max_epochs"])["table"]
    assert list(table["trainer.max_epochs"]) == [2, 3] and list(table["runs"]) == [1, 1]


def test_seeds_and_run_directories_may_differ_within_a_row(runs_dir: Path) -> None:
    # bpr seeds 0 and 1: different seed-derived keys (data.seed, data.split.seed) and output paths, one row
    runs = load_runs([runs_dir])
    bpr = [r for r in runs if r.model == "bpr"]
    assert {r.config["data.split.seed"] for r in bpr} == {0, 1}
    assert {r.config["callbacks.model_checkpoint.dirpath"] for r in bpr} == {"<paths.output_dir>/checkpoints"}
    assert run([str(runs_dir), "--metrics", "test/ndcg@10"])["table"].set_index("model").loc["bpr", "runs"] == 2


def test_a_list_valued_config_key_splits_rows(runs_dir: Path) -> None:
    table = run([str(runs_dir), "--metrics", "test/ndcg@10", "--config-keys", "eval.ks"])["table"]
    assert set(table["eval.ks"]) == {"[5, 10, 20]"} and table.set_index("model").loc["bpr", "runs"] == 2


def test_absent_gives_the_value_of_a_key_added_after_a_run(runs_dir: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A run made before a config key existed lacks it; ``--absent KEY=VALUE`` says what it had, so it averages
    with runs that set the key to that value and not with runs that set another one."""
    runs = tmp_path / "runs"
    for name, seed, value in (("old_s0", 0, None), ("new_s1", 1, 7)):
        shutil.copytree(runs_dir / "bpr_s0", runs / name)
        record = json.loads((runs / name / "metrics.json").read_text())
        config = {**record["config"], "seed": seed, **({} if value is None else {"added_key": value})}
        (runs / name / "metrics.json").write_text(json.dumps({**record, "seed": seed, "config": config}))
    with pytest.raises(SystemExit):
        main([str(runs), "--metrics", "test/ndcg@10"])
    assert "differ in config key added_key" in capsys.readouterr().err
    table = run([str(runs), "--metrics", "test/ndcg@10", "--absent", "added_key=7"])["table"]
    assert list(table["runs"]) == [2]
    with pytest.raises(SystemExit):  # absent means 8: the old run is not the new one's configuration
        main([str(runs), "--metrics", "test/ndcg@10", "--absent", "added_key=8"])
    with pytest.raises(SystemExit) as exit_info:
        main([str(runs), "--metrics", "test/ndcg@10", "--absent", "added_key"])
    assert exit_info.value.code == 2 and "expected KEY=VALUE" in capsys.readouterr().err
