"""Command-line error handling shared by the entry points.

Bad input (data, config, run directory) is the user's to fix: it exits with code 2 and one message, without a
traceback, unless ``HYDRA_FULL_ERROR=1`` is set. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import fcntl
import functools
import inspect
import io
import json
import logging
import os
import pickle
import re
import socket
import sys
import time
import warnings
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from hydra.errors import InstantiationException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ecomlab.data.bundle import DataValidationError

F = TypeVar("F", bound=Callable[..., Any])

#: errors that mean "your input is wrong", reported without a traceback
USER_ERRORS: tuple[type[BaseException], ...] = (DataValidationError, ValueError, FileNotFoundError,
                                                 OmegaConfBaseException, pickle.UnpicklingError)


def _message(err: BaseException) -> str:
    if isinstance(err, pickle.UnpicklingError):
        # torch.load(weights_only=True) refused a file holding Python objects; its message is a page of advice
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        detail = next((line for line in lines if "WeightsUnpickler error" in line), lines[0] if lines else "")
        return f"refused to load a checkpoint that holds more than weights (it could run code): {detail}"
    return str(err)


class _Progress:
    """Whether Hydra got as far as calling the task function (see :func:`config_errors_exit_2`)."""

    task_started = False


def mark_task_started() -> None:
    """For a task function not wrapped in :func:`user_errors_exit_2`: Hydra composed the config and the task
    runs, so its output goes straight through and an exit code is the task's own."""
    _Progress.task_started = True


def _to_log_files(message: str) -> None:
    """Append ``message`` to the run's log files (Hydra's ``train.log``), not to the console, which has it already.

    A refused run keeps its directory (Hydra made it, and the claim lives there); without this its ``train.log``
    would be empty and the directory would not say why the run stopped.
    """
    record = logging.LogRecord("ecomlab", logging.ERROR, __file__, 0, message.removeprefix("error: "), None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def user_errors_exit_2(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _Progress.task_started = True
        try:
            return fn(*args, **kwargs)
        except (*USER_ERRORS, InstantiationException) as err:
            cause = err.__cause__ if isinstance(err, InstantiationException) else err
            if os.environ.get("HYDRA_FULL_ERROR") == "1" or not isinstance(cause, USER_ERRORS):
                raise
            where = str(err).rsplit("full_key: ", 1)[-1].strip() if cause is not err else ""
            message = f"error: {_message(cause)}" + (f" (config key: {where})" if where else "")
            print(message, file=sys.stderr)
            _to_log_files(message)
            raise SystemExit(2) from None

    return wrapper  # type: ignore[return-value]


class _HeldStderr(io.TextIOBase):
    """``sys.stderr`` while Hydra composes: held back until the task starts, then written through.

    Hydra prints its composition errors itself, in several lines; holding them lets
    :func:`config_errors_exit_2` replace the one for a mistyped key by ecomlab's own one-line message. From the
    moment the task starts (or anything else ends the hold) every write goes straight through.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__()
        self.stream, self.held, self.holding = stream, [], True

    def write(self, text: str) -> int:
        if self.holding and _Progress.task_started:
            self.release()
        if self.holding:
            self.held.append(text)
        else:
            self.stream.write(text)
        return len(text)

    def flush(self) -> None:
        if not self.holding:
            self.stream.flush()

    def release(self, replace: str | None = None) -> None:
        """Stop holding: write what was held (or ``replace`` instead of it)."""
        if self.holding:
            self.holding = False
            self.stream.write("".join(self.held) if replace is None else replace)
            self.stream.flush()

    def text(self) -> str:
        return "".join(self.held)

    def __getattr__(self, name: str) -> Any:  # fileno, encoding, isatty, ... of the real stream
        return getattr(self.stream, name)


def _override_hint(held: str, config_name: str | None, argv: list[str]) -> str | None:
    """ecomlab's one-line message for Hydra's "Could not override 'KEY'" (a key not in the config, set without
    ``+``): the schema check's own "did you mean" for the key (:mod:`ecomlab.config_schema`), or, where the key is
    a real parameter that the YAML leaves out, how to set it. None when the held text is another error."""
    match = re.search(r"Could not override '([^']+)'", held)
    if match is None or not config_name:
        return None
    key = match.group(1)
    overrides = [a for a in argv if not a.startswith("-") and not a.startswith("hydra.")]
    bad = next((a for a in overrides if a.split("=", 1)[0] == key), None)
    if bad is None:
        return None
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from ecomlab.config_schema import did_you_mean, validate_config
    from ecomlab.utils import config_dir

    others = [o for o in overrides if o is not bad]

    def composed(extra: list[str]) -> DictConfig | None:
        GlobalHydra.instance().clear()
        try:
            with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
                return compose(config_name, overrides=[*others, *extra])
        except Exception:  # something else is wrong in the overrides: Hydra's own message says it better
            return None
        finally:
            GlobalHydra.instance().clear()

    added = composed([f"+{bad}"]) if config_name == "train" else None
    if added is not None:
        try:
            validate_config(added)
        except ValueError as err:
            line = next((ln.strip() for ln in str(err).splitlines() if ln.strip().startswith(f"{key}:")), None)
            if line:
                return f"error: {line}"
        else:
            return (f"error: {key} is not in the composed config (its value would be accepted); a key the config "
                    f"does not have is added with a leading +: +{bad}")
    cfg = composed([])
    if cfg is None:
        return None
    parent, _, leaf = key.rpartition(".")
    while parent and not isinstance(OmegaConf.select(cfg, parent), DictConfig):
        parent, _, _ = parent.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    keys = [str(k) for k in node] if isinstance(node, DictConfig) else []
    return (f"error: {key}: no such key in the config; {did_you_mean(leaf, keys)}"
            f"keys of {parent or 'the config'}: {', '.join(sorted(keys)) or '(none)'}")


def config_errors_exit_2(main: F) -> F:
    """Outermost wrapper of a ``@hydra.main`` entry point: a config Hydra cannot compose exits 2, not 1.

    Hydra reports an unknown ``data=``/``model=`` name, a misspelled key or a malformed override in one message
    without a traceback, but exits 1 -- the code it also uses for a crash inside the task. Which one it was
    shows in whether the task (wrapped in :func:`user_errors_exit_2`) was entered: before it, the config is
    the user's to fix (2); after it, the exit 1 is a bug and stays 1. A key set without ``+`` that the config
    does not have gets the schema check's "did you mean" in one line instead of Hydra's message.
    """
    try:
        config_name = inspect.getclosurevars(main).nonlocals.get("config_name")
    except TypeError:  # not a function made by hydra.main: no config to suggest keys from
        config_name = None

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _Progress.task_started = False
        held = _HeldStderr(sys.stderr)
        sys.stderr = held
        try:
            return main(*args, **kwargs)
        except SystemExit as err:
            if err.code == 1 and not _Progress.task_started:
                hint = None if os.environ.get("HYDRA_FULL_ERROR") == "1" else _safe_hint(held, config_name)
                held.release(replace=hint + "\n" if hint else None)
                raise SystemExit(2) from None
            raise
        finally:
            held.release()
            if sys.stderr is held:
                sys.stderr = held.stream
            # a run that stopped with an error skipped Hydra's end callbacks; entry points called in-process
            # (tests, notebooks) must not keep its directory claimed
            for folder in list(_HELD):
                release_run_dir(folder)

    return wrapper  # type: ignore[return-value]


def _safe_hint(held: _HeldStderr, config_name: str | None) -> str | None:
    try:
        return _override_hint(held.text(), config_name, sys.argv[1:])
    except Exception:  # the hint is a courtesy: Hydra's own message is still there to show
        logging.getLogger(__name__).debug("no hint for the override error", exc_info=True)
        return None


class _DropLightningTips(logging.Filter):
    """Lightning advertises cloud services at every trainer start; the run output is for results."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


def quiet_third_party() -> None:
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_DropLightningTips())
    # torch 2.13 deprecates LeafSpec checks that Lightning 2.6 still makes on every loop; harmless.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    # The recommendation training loader is an IterableDataset that shards itself by rank and worker.
    warnings.filterwarnings("ignore", message=r".*`IterableDataset` has `__len__` defined.*")


# --- run directories: unique names and an exclusive claim -------------------------------------------------------

#: computed once per process, so every resolution of ``hydra.run.dir`` in this process names the same directory
_UNIQUE = f"{datetime.now():%f}-{os.getpid()}"


def unique_suffix() -> str:
    """``<microseconds>-<pid>`` of this process: two processes started in the same second still differ (pid),
    and so do processes on two hosts sharing one file system (microseconds)."""
    return _UNIQUE


OmegaConf.register_new_resolver("ecomlab.unique", unique_suffix, replace=True)

CLAIM_FILE = ".ecomlab.lock"


class RunDirInUseError(RuntimeError):
    """Another live process holds the claim on a run (or sweep) directory."""


#: claims held by this process: directory -> open lock file (the lock lives as long as the file stays open)
_HELD: dict[str, Any] = {}


def claim_run_dir(folder: str | Path) -> bool:
    """Claim ``folder`` for this process; True if newly claimed, False if this process already held it.

    The claim is an exclusive ``flock`` on ``<folder>/.ecomlab.lock``. The kernel drops it when the holder exits,
    however it exits (SIGKILL included), so a killed run leaves no stale claim and resuming into its directory
    just works, while a second live process is refused before it writes anything there. The file itself is
    never deleted: unlinking a lock file lets a third process lock a fresh inode while a second still holds
    the old one.
    """
    key = os.path.abspath(folder)
    if key in _HELD:
        return False
    Path(key).mkdir(parents=True, exist_ok=True)
    handle = open(os.path.join(key, CLAIM_FILE), "a+", encoding="utf-8")  # noqa: SIM115 -- held open on purpose
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "{}"
        handle.close()
        try:
            who = json.loads(holder)
        except json.JSONDecodeError:
            who = {}
        raise RunDirInUseError(
            f"{key} is in use by another ecomlab process (pid {who.get('pid', '?')} on {who.get('host', '?')}, "
            f"since {who.get('started', '?')}); two runs must never write into one directory. Wait for it to "
            "finish, or choose another hydra.run.dir / hydra.sweep.dir") from None
    except OSError as err:  # a file system without locks (some network mounts): run unguarded, but say so
        handle.close()
        logging.getLogger(__name__).warning("cannot lock %s (%s); concurrent runs into it are not detected",
                                            key, err)
        return False
    # who holds it, for the message a refused process prints; written after the lock, so only the holder writes
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "started": time.strftime("%Y-%m-%d %H:%M:%S")}))
    handle.flush()
    _HELD[key] = handle
    return True


def release_run_dir(folder: str | Path) -> None:
    handle = _HELD.pop(os.path.abspath(folder), None)
    if handle is not None:
        handle.close()  # closing the last descriptor drops the flock


def _distributed_worker() -> bool:
    """True in a process Lightning's DDP launcher (or torchrun) started for a rank other than 0."""
    return any(os.environ.get(var, "0") != "0" for var in ("RANK", "LOCAL_RANK", "NODE_RANK"))


class ClaimRunDir(Callback):
    """Hydra callback (``configs/hydra/default.yaml``): a run claims ``hydra.run.dir`` and a study its
    ``hydra.sweep.dir`` before Hydra writes anything into them (``.hydra/``, the log), each job its own
    directory as well; a directory claimed by another live process stops this one with exit code 2."""

    def __init__(self) -> None:
        self._jobs: list[str] = []

    @staticmethod
    def _claim(folder: str) -> bool:
        if _distributed_worker():
            return False  # the DDP launcher re-runs the command for ranks > 0 in rank 0's (claimed) directory
        try:
            return claim_run_dir(folder)
        except RunDirInUseError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._claim(str(config.hydra.run.dir))

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        release_run_dir(str(config.hydra.run.dir))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._claim(str(config.hydra.sweep.dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        release_run_dir(str(config.hydra.sweep.dir))

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        # a job of a study also guards its own directory against a single run resumed into it meanwhile
        folder = str(config.hydra.runtime.output_dir)
        if self._claim(folder):
            self._jobs.append(folder)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        folder = str(config.hydra.runtime.output_dir)
        if folder in self._jobs:
            self._jobs.remove(folder)
            release_run_dir(folder)
