"""What ``ecomlab-train`` leaves and says when a run is killed, refused or mistyped (issue 21, sections 1, 4, 6).

* the test process and its subprocesses run every thread pool with one thread (a busy machine cannot starve them);
* checkpoints are written atomically: a SIGKILL during a save leaves the previous checkpoint or the new one, never
  a truncated file and never a temp file outside the run (fsspec's transaction wrote one into the system temp
  folder and copied it over the target);
* a run resumed beside an unreadable ``last.ckpt`` writes a fresh ``last.ckpt``, not ``last-v1.ckpt``;
* resuming a directory with another model size, a planted checkpoint, a refused run's ``train.log``, a
  mistyped key without ``+``, TensorBoard metric names and the progress bar's epoch count.
"""

from __future__ import annotations

import os
import random
import re
import signal
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import threadpoolctl
import torch

from ecomlab.checkpoints import AtomicCheckpointIO, resume_checkpoint

TINY = ["data=synthetic_shop", "data.source.n_users=60", "data.source.n_items=40", "eval.print_table=false",
        "callbacks.rich_progress_bar=null"]


def run_train(tmp_path: Path, run_dir: Path, *args: str) -> int:
    """``ecomlab-train`` in-process (its real ``main`` with argv); returns the exit code (output: capsys)."""
    from hydra.core.global_hydra import GlobalHydra

    from ecomlab.train import main

    argv = [*args, f"hydra.run.dir={run_dir}", f"paths.cache_dir={tmp_path}/cache", f"paths.log_dir={tmp_path}/logs"]
    GlobalHydra.instance().clear()
    saved = sys.argv
    sys.argv = ["ecomlab-train", *argv]
    code = 0
    try:
        main()
    except SystemExit as err:
        code = 0 if err.code is None else int(err.code)
    finally:
        sys.argv = saved
        GlobalHydra.instance().clear()
    return code


# ---- section 1: thread pools ------------------------------------------------------------------------------------

def test_every_thread_pool_runs_one_thread() -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor

    # a fit loads scikit-learn's OpenMP runtime, the pool that stalled under load
    HistGradientBoostingRegressor(max_iter=2).fit([[0.0], [1.0], [2.0], [3.0]], [0.0, 1.0, 2.0, 3.0])
    assert torch.get_num_threads() == 1 and torch.get_num_interop_threads() == 1
    pools = threadpoolctl.threadpool_info()
    assert pools and all(p["num_threads"] == 1 for p in pools), pools
    child = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                           capture_output=True, text=True, timeout=120, check=True)
    assert child.stdout.strip() == "1"


# ---- atomic checkpoints -----------------------------------------------------------------------------------------

SAVER = textwrap.dedent("""
    import sys, torch
    from ecomlab.checkpoints import AtomicCheckpointIO
    io, target = AtomicCheckpointIO(), sys.argv[1]
    print("ready", flush=True)
    step = 0
    while True:
        step += 1
        io.save_checkpoint({"step": step, "w": torch.full((4_000_000,), float(step))}, target)
""")


@pytest.mark.slow
def test_a_kill_during_a_checkpoint_save_leaves_a_whole_checkpoint(tmp_path: Path) -> None:
    """SIGKILL a process that saves a 16 MB checkpoint in a loop, at random moments: the target always loads (its
    tensor holds one value throughout) and nothing lands in the system temp folder. Lightning's own
    ``TorchCheckpointIO`` fails this: empty or partial temp files in TMPDIR, and a truncated target."""
    temp, target = tmp_path / "systemp", tmp_path / "ckpt" / "last.ckpt"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    rng = random.Random(0)
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(target)], env=env, stdout=subprocess.PIPE,
                                text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        if target.exists():
            state = torch.load(target, map_location="cpu", weights_only=True)
            assert torch.equal(state["w"], torch.full_like(state["w"], float(state["step"])))
        left = [p.name for p in temp.iterdir() if p.is_file()]  # torch makes a folder of its own there
        assert not left, left
    resume_checkpoint(target.parent)
    assert sorted(p.name for p in target.parent.iterdir()) == ["last.ckpt"]


def test_atomic_checkpoint_io_replaces_and_cleans_up(tmp_path: Path) -> None:
    io, target = AtomicCheckpointIO(), tmp_path / "c" / "last.ckpt"
    io.save_checkpoint({"a": torch.ones(3)}, target)
    io.save_checkpoint({"a": torch.zeros(3)}, target)
    assert torch.equal(torch.load(target, weights_only=True)["a"], torch.zeros(3))
    with pytest.raises(TypeError):
        io.save_checkpoint({"a": torch.ones(1)}, target, storage_options={"x": 1})

    class Unsaveable:  # torch.save fails part-way: the old checkpoint stays and no temp file is left
        def __reduce__(self) -> tuple:
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError):
        io.save_checkpoint({"a": torch.ones(3), "b": Unsaveable()}, target)
    assert torch.equal(torch.load(target, weights_only=True)["a"], torch.zeros(3))
    assert sorted(p.name for p in target.parent.iterdir()) == ["last.ckpt"]


@pytest.mark.slow
def test_resume_beside_an_unreadable_last_ckpt(in_tmp: Path) -> None:
    run_dir = in_tmp / "run"
    assert run_train(in_tmp, run_dir, "model=bpr", *TINY, "trainer.max_epochs=2") == 0
    ckpts = run_dir / "checkpoints"
    last = ckpts / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])  # what a kill mid-write did before saves were atomic
    (ckpts / ".last.ckpt.tmp-99999").write_bytes(b"")  # and what a kill of an atomic save leaves
    assert run_train(in_tmp, run_dir, "model=bpr", *TINY, "trainer.max_epochs=3") == 0
    names = sorted(p.name for p in ckpts.iterdir())
    assert "last.ckpt" in names and "last.ckpt.unreadable" in names, names
    assert not [n for n in names if re.search(r"-v\d+\.ckpt$|\.tmp-", n)], names
    assert torch.load(last, map_location="cpu", weights_only=True)["epoch"] == 2


# ---- refusals ---------------------------------------------------------------------------------------------------

def test_resume_with_another_model_size_is_refused(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = in_tmp / "run"
    assert run_train(in_tmp, run_dir, "model=bpr", *TINY, "trainer.max_epochs=1") == 0
    (run_dir / "metrics.json").unlink()  # an unfinished run of that config
    capsys.readouterr()
    code = run_train(in_tmp, run_dir, "model=bpr", *TINY, "trainer.max_epochs=2", "model.net.embedding_dim=8")
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "last.ckpt" in errors[0] and "[40, 64] in the checkpoint, [40, 8] now" in errors[0]
    assert not (run_dir / "metrics.json").exists()


class _Payload:
    """A pickled object that creates a marker file when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def test_a_planted_checkpoint_runs_no_code(in_tmp: Path) -> None:
    run_dir, marker = in_tmp / "run", in_tmp / "pwned"
    (run_dir / "checkpoints").mkdir(parents=True)
    torch.save({"state_dict": {}, "payload": _Payload(marker)}, run_dir / "checkpoints" / "last.ckpt")
    assert run_train(in_tmp, run_dir, "model=bpr", *TINY, "trainer.max_epochs=1") == 0
    assert not marker.exists()
    assert (run_dir / "checkpoints" / "last.ckpt.unreadable").exists()


def test_a_refused_run_says_why_in_its_log(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = in_tmp / "run"
    code = run_train(in_tmp, run_dir, "model=popularity", "data=files", "data.source.interactions=absent.csv")
    assert code == 2
    log = (run_dir / "train.log").read_text()
    assert re.search(r"\[ERROR\] - .*absent\.csv: file not found", log), log
    assert capsys.readouterr().err.count("absent.csv: file not found") == 1  # once on the console too


@pytest.mark.parametrize(("override", "expected"), [
    ("data.source.n_userz=5", r"^error: data\.source\.n_userz: not a parameter of ecomlab\.data\.synthetic\."
                              r"SyntheticShop; did you mean n_users\?"),
    ("trainer.max_epochz=3", r"^error: trainer\.max_epochz: .*did you mean max_epochs"),
    ("model.net.embeding_dim=3", r"^error: model\.net\.embeding_dim: .*did you mean embedding_dim\?"),
    ("nothing.here=1", r"^error: nothing\.here: no such key in the config; keys of the config: callbacks, "),
    ("callbacks.none_such=null", r"^error: callbacks\.none_such is not in the composed config .*"
                                 r"\+callbacks\.none_such=null"),
])
def test_a_mistyped_key_without_plus_gets_did_you_mean(override: str, expected: str, in_tmp: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    code = run_train(in_tmp, in_tmp / "run", "model=bpr", "data=synthetic_shop", override)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and re.search(expected, lines[0]), err
    assert "Could not override" not in err


# ---- loggers and progress ---------------------------------------------------------------------------------------

def _event_tags(folder: Path) -> set[str]:
    """Scalar tags of every TensorBoard event file under ``folder`` (TFRecord framing, tensorboardX's protobuf)."""
    from tensorboardX.proto import event_pb2

    tags: set[str] = set()
    for path in folder.rglob("events.out.tfevents.*"):
        data, pos = path.read_bytes(), 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
            tags |= {v.tag for v in event.summary.value}
            pos += 12 + length + 4
    return tags


def test_tensorboard_metric_names_are_legal(in_tmp: Path, caplog: pytest.LogCaptureFixture) -> None:
    run_dir = in_tmp / "run"
    with caplog.at_level("INFO"):
        assert run_train(in_tmp, run_dir, "model=bpr", *TINY, "trainer.max_epochs=1", "logger=tensorboard") == 0
    assert not [r for r in caplog.records if "is illegal" in r.getMessage()]
    tags = _event_tags(run_dir / "tensorboard")
    # the test metrics are written last and flushed when the run ends (the fit's event file may still be open)
    assert "test/recall_at_20" in tags and "test/ndcg_at_10" in tags, sorted(tags)
    assert all(re.fullmatch(r"[-/\w.]+", t) for t in tags), sorted(tags)


def test_progress_bar_counts_epochs_from_one() -> None:
    import pytorch_lightning as pl

    from ecomlab.callbacks import RichProgressBar

    for max_epochs, first, last in [(2, "Epoch 1/2", "Epoch 2/2"), (-1, "Epoch 1", "Epoch 5")]:
        bar = RichProgressBar()
        trainer = pl.Trainer(max_epochs=max_epochs, callbacks=[bar], logger=False, enable_checkpointing=False)
        bar.setup(trainer, pl.LightningModule(), stage="fit")
        assert bar._get_train_description(0).strip() == first
        assert bar._get_train_description(1 if max_epochs == 2 else 4).strip() == last


def test_the_readme_output_folders_are_git_ignored() -> None:
    """The README writes bundles/, exports/ and reports/ into the checkout; none of them may show up in git."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    readme = (root / "README.md").read_text(encoding="utf-8")
    for folder in ("bundles", "exports", "reports"):
        assert re.search(rf"[ =]{folder}/\w", readme), f"the README no longer writes into {folder}/"
        probe = subprocess.run(["git", "check-ignore", "-q", f"{folder}/some_output/file.json"], cwd=root,
                               timeout=30)
        assert probe.returncode == 0, f"{folder}/ is not in .gitignore"


def test_eval_of_a_run_without_a_checkpoint_is_refused(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A model trained without checkpointing recorded no weights: re-evaluating it must not test untrained ones."""
    from hydra.core.global_hydra import GlobalHydra

    from ecomlab.eval import main

    run_dir = in_tmp / "run"
    no_bar = [a for a in TINY if not a.startswith("callbacks.")]
    assert run_train(in_tmp, run_dir, "model=bpr", *no_bar, "trainer.max_epochs=1", "callbacks=none",
                     "+trainer.enable_checkpointing=false") == 0
    capsys.readouterr()
    GlobalHydra.instance().clear()
    saved, sys.argv = sys.argv, ["ecomlab-eval", f"run_dir={run_dir}", f"hydra.run.dir={in_tmp}/eval"]
    try:
        with pytest.raises(SystemExit) as exc:
            main()
    finally:
        sys.argv = saved
        GlobalHydra.instance().clear()
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "Traceback" not in err
    assert re.search(r"^error: .*metrics\.json: this trained run records no checkpoint", err, re.M), err
    assert not (in_tmp / "eval" / "metrics.json").exists()


def test_last_ckpt_is_written_after_every_validation(in_tmp: Path) -> None:
    """With a learning rate of 1e-30 (no change in float32) the metric never improves after epoch 0; ``last.ckpt`` must still be the latest
    epoch (Lightning 2.6 rewrote it only on improvement, so a killed run redid every epoch since its best)."""
    run_dir = in_tmp / "run"
    assert run_train(in_tmp, run_dir, "model=bpr", *TINY, "trainer.max_epochs=3", "model.optimizer.lr=1e-30",
                     "callbacks.early_stopping=null") == 0
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    best = sorted(p.name for p in (run_dir / "checkpoints").glob("epoch_*.ckpt"))
    assert last["epoch"] == 2 and best == ["epoch_000.ckpt"], (last["epoch"], best)


def test_a_monitor_the_evaluation_does_not_log_is_refused_before_training() -> None:
    """eval.ks=[5] with the default monitor val/ndcg@10 failed after the first epoch inside Lightning's
    EarlyStopping; now the task refuses it, naming both keys."""
    from ecomlab.models.popularity import Popularity
    from ecomlab.tasks.ranking import RankingTask

    with pytest.raises(ValueError, match=r"model.monitor=val/ndcg@10 is not logged.*eval.ks=\[5\]; add 10"):
        RankingTask(Popularity(n_items=4), ks=[5])
    with pytest.raises(ValueError, match=r"model.monitor=val/novelty@5 is not logged"):
        RankingTask(Popularity(n_items=4), ks=[5], monitor="val/novelty@5")
    assert RankingTask(Popularity(n_items=4), ks=[5], monitor="val/coverage@5").monitor == "val/coverage@5"
