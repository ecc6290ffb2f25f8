"""Two runs started at once never share a run directory, and a directory in use is refused, not interleaved."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from ecomlab.cli import (
    CLAIM_FILE,
    ClaimRunDir,
    RunDirInUseError,
    claim_run_dir,
    release_run_dir,
    unique_suffix,
)
from ecomlab.utils import config_dir

BIN = Path(sys.executable).parent
TINY = ["model=popularity", "data=synthetic_shop", "data.source.n_users=100", "data.source.n_items=50", "logger=[]",
        "eval.print_table=false"]
HOLDER = """
import sys, time
from ecomlab.cli import claim_run_dir
claim_run_dir(sys.argv[1])
print("claimed", flush=True)
time.sleep(600)
"""


def env_for(root: Path) -> dict[str, str]:
    env = {**os.environ, "ECOMLAB_ROOT": str(root), "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def hold(folder: Path) -> subprocess.Popen[str]:
    """Another process holding the claim on ``folder`` until it is killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "claimed"
    return proc


def test_default_run_and_sweep_dirs_carry_a_per_process_suffix(tmp_path: Path) -> None:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True)
    GlobalHydra.instance().clear()
    run_dir, sweep_dir = str(cfg.hydra.run.dir), str(cfg.hydra.sweep.dir)
    assert run_dir.endswith(f"_{unique_suffix()}") and sweep_dir.endswith(f"_{unique_suffix()}")
    assert unique_suffix().endswith(f"-{os.getpid()}")
    assert run_dir == str(cfg.hydra.run.dir), "resolving twice must name the same directory"
    other = subprocess.run([sys.executable, "-c", "from ecomlab.cli import unique_suffix; print(unique_suffix())"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert other != unique_suffix()


def test_a_directory_claimed_by_a_live_process_is_refused_and_freed_when_it_dies(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "run"
    holder = hold(folder)
    try:
        with pytest.raises(RunDirInUseError, match=rf"in use by another ecomlab process \(pid {holder.pid} "):
            claim_run_dir(folder)
        with pytest.raises(SystemExit) as exit_info:
            ClaimRunDir()._claim(str(folder))
        assert exit_info.value.code == 2
        # DDP ranks > 0 re-run the command into rank 0's directory; they must not be refused
        monkeypatch.setenv("LOCAL_RANK", "1")
        assert ClaimRunDir()._claim(str(folder)) is False
        monkeypatch.delenv("LOCAL_RANK")
    finally:
        holder.send_signal(signal.SIGKILL)  # the way a crashed run ends: no clean-up code runs
        holder.wait(timeout=30)
    # the kernel dropped the dead process's lock: a resumed run takes the directory over
    assert claim_run_dir(folder) is True
    assert json.loads((folder / CLAIM_FILE).read_text())["pid"] == os.getpid()
    assert claim_run_dir(folder) is False, "a second claim by the holder itself is a no-op"
    release_run_dir(folder)


@pytest.mark.slow  # two real training processes plus one refused one: ~50 s of start-up on 2 shared cores
def test_two_runs_started_at_once_get_two_directories_and_a_busy_one_is_refused(tmp_path: Path) -> None:
    procs = [subprocess.Popen([str(BIN / "ecomlab-train"), *TINY, f"paths.cache_dir={tmp_path}/cache{i}"],
                              cwd=tmp_path, env=env_for(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
    runs = sorted((tmp_path / "logs" / "train" / "runs").iterdir())
    assert len(runs) == 2, runs
    for run in runs:
        record = json.loads((run / "metrics.json").read_text())
        assert record["model"] == "popularity" and "test/ndcg@10" in record["metrics"]
        assert len((run / "train.log").read_text().splitlines()) >= 1
    assert json.loads((runs[0] / CLAIM_FILE).read_text())["pid"] != json.loads((runs[1] / CLAIM_FILE).read_text())["pid"]

    # a run told to write into a directory another live process holds stops before writing anything there
    busy = tmp_path / "busy"
    holder = hold(busy)
    try:
        started = time.monotonic()
        proc = subprocess.run([str(BIN / "ecomlab-train"), *TINY, f"hydra.run.dir={busy}"], cwd=tmp_path,
                              env=env_for(tmp_path), capture_output=True, text=True, timeout=300)
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"{busy} is in use by another ecomlab process (pid {holder.pid}" in proc.stderr
    assert "Traceback" not in proc.stderr and time.monotonic() - started < 300
    assert sorted(p.name for p in busy.iterdir()) == [CLAIM_FILE], "nothing but the holder's claim file"


def test_a_file_system_without_locks_runs_unguarded_with_a_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import errno
    import fcntl

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    assert claim_run_dir(tmp_path / "nfs_run") is False
    assert "concurrent runs into it are not detected" in caplog.text
