"""Epinions as its own data set in run records and reports (Ciao and Epinions never share a table row)."""

from __future__ import annotations

import json
from pathlib import Path

from ecomlab.report.compare import load_runs


def _record(folder: Path, dataset: str, bundle: str, seed: int) -> None:
    folder.mkdir(parents=True)
    record = {"model": "lightgcn", "dataset": dataset, "seed": seed, "metrics": {"test/ndcg@10": 0.1 + seed},
              "monitor": "val/ndcg@10", "config": {"seed": seed},
              "protocol": {"task": "ranking", "data": {"name": bundle}, "split": {"seed": seed}}}
    (folder / "metrics.json").write_text(json.dumps(record))


def test_runs_of_two_data_sets_under_one_data_config_are_named_apart(tmp_path: Path) -> None:
    _record(tmp_path / "a", "ciao-tang2012", "ciao-tang2012", 0)
    _record(tmp_path / "b", "ciao-tang2012", "epinions-tang2012", 0)  # data.source.folder pointed elsewhere
    _record(tmp_path / "c", "epinions-tang2012", "epinions-tang2012", 1)
    _record(tmp_path / "d", "online-retail-uci", "online_retail_uci", 0)  # a bundle named unlike its config
    names = {run.path.name: run.dataset for run in load_runs([tmp_path])}
    assert names == {"a": "ciao-tang2012 (data=ciao-tang2012)", "b": "epinions-tang2012 (data=ciao-tang2012)",
                     "c": "epinions-tang2012", "d": "online-retail-uci"}
