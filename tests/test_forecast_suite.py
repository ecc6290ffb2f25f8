"""The forecast suite's report: per-set tables, ranks, MASE relative to seasonal naive, the geometric mean across
sets and the paired tests against the baseline, from real run records of real training runs."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest
from omegaconf import DictConfig, open_dict

from ecomlab.train import train

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "forecast_suite.py"
SETS = {"pair_a": ["data=retail_series", "data.source.series=[souvenirs,a10]"],
        "pair_b": ["data=retail_series", "data.source.series=[auscafe,h02]"]}


def load_suite_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("forecast_suite", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["forecast_suite"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_report_ranks_relative_mase_geometric_mean_and_paired_tests(
        tmp_path: Path, compose_cfg: Callable[..., DictConfig]) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(json.dumps({"data_dir": "data", "baseline": "naive", "reference": "seasonal_naive",
                                 "sets": SETS, "models": {m: {"overrides": [f"model={m}"]}
                                                          for m in ("seasonal_naive", "naive", "naive2")}}))
    runs = tmp_path / "runs"
    for set_name, overrides in SETS.items():
        for model in ("seasonal_naive", "naive", "naive2"):
            cfg = compose_cfg([*overrides, f"model={model}", "data.backtest.n_windows=2", "logger=[]",
                               "eval.print_table=false"])
            with open_dict(cfg):
                cfg.paths.output_dir = str(runs / set_name / model / "seed0")
            train(cfg)
            (runs / set_name / model / "seed0" / "command.txt").write_text(f"ecomlab.train model={model}\n")
    # an ablation: a variant of one of the suite's models, in its own directory (its records name model "naive")
    cfg = compose_cfg([*SETS["pair_a"], "model=naive", "model.monitor=val/smape", "data.backtest.n_windows=2",
                       "logger=[]", "eval.print_table=false"])
    with open_dict(cfg):
        cfg.paths.output_dir = str(runs / "pair_a" / "naive_variant" / "seed0")
    train(cfg)
    (runs / "pair_a" / "naive_variant" / "seed0" / "command.txt").write_text("ecomlab.train model=naive\n")
    out = tmp_path / "report"
    load_suite_script().main(["report", str(runs), "--suite", str(suite), "--out", str(out)])

    results = pd.read_csv(out / "runs.csv")
    assert len(results) == 7 and results["command"].str.startswith("ecomlab.train").all()
    mase = {(r.set, r.model): r.mase for r in results.itertuples()}
    table = pd.read_csv(out / "table.csv")
    for set_name in SETS:
        part = table[table["set"] == set_name].set_index("model")
        expected = pd.Series({m: mase[(set_name, m)] for m in part.index}).rank(method="min")
        assert (part["rank"] == expected).all()
        assert part.loc["seasonal_naive", "relative_mase"] == pytest.approx(1.0)
        assert part.loc["naive", "relative_mase"] == pytest.approx(
            mase[(set_name, "naive")] / mase[(set_name, "seasonal_naive")])
    summary = (out / "summary.md").read_text()
    geo = math.exp(sum(math.log(mase[(s, "naive")] / mase[(s, "seasonal_naive")]) for s in SETS) / len(SETS))
    assert f"| naive | {geo:.3f} | 2 |" in summary
    # the paired tests against the baseline, one comparison per set
    for set_name in SETS:
        assert (out / "compare" / set_name / "table.md").exists()
        assert f"[{set_name}](compare/{set_name}/table.md)" in summary

    # the ablation instead of the model it varies: its runs take the model's place in the paired tests
    out2 = tmp_path / "report2"
    load_suite_script().main(["report", str(runs), "--suite", str(suite), "--out", str(out2), "--compare-models",
                              "seasonal_naive", "naive2", "naive_variant"])
    summary2 = (out2 / "summary.md").read_text()
    assert "run directories seasonal_naive, naive2, naive_variant" in summary2
    compared = (out2 / "compare" / "pair_a" / "table.md").read_text()
    assert "| naive | 1 |" in compared  # the variant's runs, which record model naive
    # pair_b has no run of the baseline among the chosen directories: no table, and the summary says which exist
    assert not (out2 / "compare" / "pair_b").exists() and "[pair_b]" not in summary2


def test_published_rows_fill_in_runs_not_at_hand_and_refuse_unknown_models(tmp_path: Path) -> None:
    module = load_suite_script()
    published = tmp_path / "runs.csv"
    pd.DataFrame({"set": ["a", "a", "b", "a"], "model": ["nf_lstm", "nf_lstm", "nf_lstm", "ets"], "seed": [0, 1, 0, 0],
                  "git_commit": ["x"] * 4, "command": ["c"] * 4, "mase": [1.0, 2.0, 3.0, 4.0]}).to_csv(published,
                                                                                              index=False)
    collected = pd.DataFrame({"set": ["a"], "model": ["nf_lstm"], "seed": [1], "mase": [9.0], "run_dir": ["r"]})
    rows = module.published_rows(published, ["nf_lstm"], collected)
    # seed 1 on set a is at hand: the collected run wins; ets was not asked for
    assert sorted(zip(rows["set"], rows["seed"], rows["mase"], strict=True)) == [("a", 0, 1.0), ("b", 0, 3.0)]
    assert (rows["run_dir"] == "").all()
    with pytest.raises(ValueError, match=r"no rows of model\(s\) \['nf_nhits'\]"):
        module.published_rows(published, ["nf_nhits"], collected)
