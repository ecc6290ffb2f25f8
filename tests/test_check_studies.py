"""``scripts/check_studies.py``: a published row re-run from its README command must give the published numbers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "check_studies.py"
ENV = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}


def check(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          env=ENV, cwd=ROOT)


def copy_study(name: str, experiments: Path, as_name: str | None = None) -> Path:
    folder = experiments / (as_name or name)
    folder.mkdir(parents=True)
    for file in ("README.md", "results.csv"):
        shutil.copy(ROOT / "experiments" / name / file, folder / file)
    return folder


def test_every_study_names_a_row_to_re_run() -> None:
    listed = check("--list")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    studies = {p.parent.name for p in (ROOT / "experiments").glob("*/results.csv")}
    checked = {line.split(":", 1)[0] for line in listed.stdout.splitlines() if not line.startswith("note")}
    assert checked == studies, listed.stdout


@pytest.mark.parametrize(("block", "message"), [
    ("```bash check\necomlab-train -m experiment=baselines_rec\n```\n", "drop -m"),
    ("```bash check\npython -m ecomlab.train model=bpr\n```\n", "one ecomlab-train command"),
    ("```bash check rtol=3\necomlab-train model=bpr\n```\n", "unknown check option 'rtol=3'"),
])
def test_a_malformed_check_block_exits_2_with_one_line(tmp_path: Path, block: str, message: str) -> None:
    folder = copy_study("baselines_rec", tmp_path / "experiments")
    (folder / "README.md").write_text("# a study\n\n" + block)
    out = check("--experiments", str(tmp_path / "experiments"), "--list")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"error: {folder / 'README.md'}") and message in line


def test_a_commit_the_repository_does_not_have_fails(tmp_path: Path) -> None:
    folder = copy_study("baselines_rec", tmp_path / "experiments")
    results = pd.read_csv(folder / "results.csv", dtype={"git_commit": str})
    results["git_commit"] = "f" * 40
    results.to_csv(folder / "results.csv", index=False)
    out = check("--experiments", str(tmp_path / "experiments"), "--list")
    assert out.returncode == 1
    assert f"FAIL baselines_rec: git_commit {'f' * 40} of {len(results)} row(s) is not a commit" in out.stdout


@pytest.mark.slow  # one real run of the study's row per copy, ~30-60 s on the shared machine
def test_a_moved_number_is_seen(tmp_path: Path) -> None:
    experiments = tmp_path / "experiments"
    copy_study("baselines_forecast", experiments)
    moved = copy_study("baselines_forecast", experiments, "baselines_forecast_moved")
    results = pd.read_csv(moved / "results.csv", float_precision="round_trip", dtype={"git_commit": str})
    row = (results["model"] == "seasonal_naive") & (results["dataset"] == "synthetic_sales") & (results["seed"] == 1)
    assert row.sum() == 1
    published = float(results.loc[row, "test/mase"].iloc[0])
    results.loc[row, "test/mase"] = published * (1 + 1e-9)  # far below any printed digit of the summary
    results.to_csv(moved / "results.csv", index=False)
    out = check("--experiments", str(experiments), "--workdir", str(tmp_path / "runs"))
    assert out.returncode == 1, out.stdout + out.stderr
    lines = {line.split(":", 1)[0]: line for line in out.stdout.splitlines() if not line.startswith("note")}
    assert lines["OK   baselines_forecast"].endswith("metrics equal exactly")
    assert re.search(r"1 of \d+ metrics moved, e.g. test/mase published", lines["FAIL baselines_forecast_moved"])


@pytest.mark.slow  # every study's row (minutes); a study whose data folder is absent is skipped by the script
def test_every_published_study_reproduces_its_checked_row(tmp_path: Path) -> None:
    out = check("--workdir", str(tmp_path), timeout=3600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "FAIL" not in out.stdout
