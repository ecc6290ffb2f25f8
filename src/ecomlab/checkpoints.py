"""Checkpoints: read only as local files of weights, written so that a kill cannot leave half of one, and the
choice of the one a restarted run resumes from.

**Reading** (:func:`read_checkpoint`): local files only, weights only, one clear error each.

``torch.load(weights_only=True)`` refuses a file that pickles Python objects (it could run code); that refusal
is re-raised as is, and :mod:`ecomlab.cli` reports it. Everything else that makes a file unusable -- truncated
(``OSError 22`` or a zip without its central directory), empty, not a PyTorch file, a Lightning checkpoint of
another model -- is a :class:`CheckpointError` naming the file, so the command line exits 2 with one line.

**Writing and resuming.** Lightning 2.6 saves a local checkpoint inside an fsspec "transaction": fsspec writes it to a
``tempfile.mkstemp()`` file in the system temp folder and then ``shutil.move``\\ s it over the target. Across
file systems that move is a copy, so a kill during it truncates ``last.ckpt`` in place, and a kill before it
leaves a (possibly empty) temp file outside the run that nothing ever removes. :class:`AtomicCheckpointIO`
writes next to the target instead and renames over it, the same pattern as
:func:`ecomlab.utils.atomic_write_text`: the target is always either the previous complete checkpoint or the
new complete one, and the only thing a kill can leave is a ``.<name>.tmp-<pid>`` file in the checkpoint folder,
which :func:`resume_checkpoint` removes when the run starts again (the run directory is claimed by one process
at a time, see :func:`ecomlab.cli.claim_run_dir`, so no live writer owns such a file then).
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO
from torch import nn

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read, or whose weights do not fit the model."""


def is_url(value: str) -> bool:
    """``http://``, ``s3://``, ``file://`` ...: fsspec (and so Lightning) would fetch these; ecomlab never does."""
    return "://" in value


def _summary(err: BaseException) -> str:
    text = " ".join(str(err).split())
    first = text.split(". ", 1)[0]  # torch's reader errors go on with a paragraph of advice
    return f"{type(err).__name__}: {first[:200]}" if first else type(err).__name__


def checkpoint_value(path: str | Path | None, key: str) -> Any:
    """One top-level entry of a local checkpoint (``epoch``, ``global_step``), memory-mapped so the weights are not
    read, as data only; ``None`` when there is no such file or entry, or the file cannot be read."""
    if not path or not Path(path).is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True).get(key)
    except Exception:  # noqa: BLE001 -- unreadable: the caller says what it can without it
        return None


def read_checkpoint(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, after checking ``path`` is a local file."""
    if is_url(str(path)):
        raise CheckpointError(f"{path}: a URL; checkpoints are read from local files only")
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Weights only load failed" in str(err):
            raise  # a file carrying pickled objects: reported by ecomlab.cli as refused, not as unreadable
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({_summary(err)})") from None
    except Exception as err:  # noqa: BLE001 -- weights_only runs no code: whatever failed, the file is unusable
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint, truncated or another kind of file "
                              f"({_summary(err)})") from None


def lightning_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of the Lightning checkpoint at ``path``."""
    ckpt = read_checkpoint(path)
    state = ckpt.get("state_dict") if isinstance(ckpt, Mapping) else None
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: not a Lightning checkpoint (no state_dict)")
    return dict(state)


def load_weights(module: nn.Module, path: str | Path) -> None:
    """Load the Lightning checkpoint at ``path`` into ``module`` (strict); a checkpoint of another model (other
    keys or shapes) is a :class:`CheckpointError` naming the file and the first difference."""
    state = lightning_state_dict(path)
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        detail = lines[1] if len(lines) > 1 else (lines[0] if lines else "")
        raise CheckpointError(f"{path}: its weights do not fit this run's {type(module).__name__} "
                              f"({detail[:300]}); a checkpoint of another model or data set?") from None


# ---- writing and resuming ---------------------------------------------------------------------------------------

TEMP_MARK = ".tmp-"


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` into a temp file beside the target, fsync, then ``os.replace`` over it."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike[str],
                        storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options (got {storage_options!r})")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}{TEMP_MARK}{os.getpid()}")
        try:
            with open(tmp, "wb") as handle:
                torch.save(checkpoint, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete what a killed :class:`AtomicCheckpointIO` save left in ``folder``; returns the removed paths."""
    removed = [p for p in folder.glob(f".*.ckpt{TEMP_MARK}*") if p.is_file()]
    for path in removed:
        path.unlink(missing_ok=True)
    if removed:
        log.info("removed %d temp file(s) of an interrupted checkpoint save in %s", len(removed), folder)
    return removed


def checkpoint_readable(path: Path) -> bool:
    try:
        read_checkpoint(path)
    except (CheckpointError, pickle.UnpicklingError) as err:  # truncated, corrupt, or holding objects
        log.warning("cannot read checkpoint %s (%s)", path, str(err).splitlines()[0][:300])
        return False
    return True


def resume_checkpoint(folder: Path) -> str | None:
    """The checkpoint a restarted run continues from: ``last.ckpt``, or when it cannot be read (a checkpoint
    written before saves were atomic, a full disk), the newest readable ``epoch_*.ckpt``; ``None`` starts afresh.

    An unreadable ``last.ckpt`` is renamed to ``last.ckpt.unreadable`` (kept, not deleted) so that the resumed
    run writes its next ``last.ckpt`` under that name again: Lightning would otherwise step around the existing
    file to ``last-v1.ckpt`` while ``ckpt=last`` went on naming the broken one.
    """
    if not folder.is_dir():
        return None
    remove_stale_temps(folder)
    last = folder / "last.ckpt"
    if last.is_file():
        if checkpoint_readable(last):
            return str(last)
        aside = last.with_name("last.ckpt.unreadable")
        os.replace(last, aside)
        log.warning("moved the unreadable %s aside to %s; resuming from an older checkpoint", last, aside.name)
    for path in sorted(folder.glob("epoch_*.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True):
        if path.is_file() and checkpoint_readable(path):
            return str(path)
    return None


def checkpoint_mismatch(path: str | os.PathLike[str], module: torch.nn.Module) -> str | None:
    """Why ``module`` cannot take the weights of the checkpoint at ``path`` (missing or unexpected parameters,
    other shapes), in a few words naming the first differences; ``None`` when it can.

    Lightning would find the same with a size-mismatch traceback from ``load_state_dict`` (a run directory
    re-run with another ``embedding_dim``, say); this says it before any training starts.
    """
    state = lightning_state_dict(path)
    ours = module.state_dict()
    problems = [f"{k}: {list(v.shape)} in the checkpoint, {list(ours[k].shape)} now"
                for k, v in state.items() if k in ours and tuple(v.shape) != tuple(ours[k].shape)]
    missing, unexpected = sorted(set(ours) - set(state)), sorted(set(state) - set(ours))
    if missing:
        problems.append(f"missing {', '.join(missing[:3])}" + (f" and {len(missing) - 3} more" if len(missing) > 3 else ""))
    if unexpected:
        problems.append(f"unexpected {', '.join(unexpected[:3])}"
                        + (f" and {len(unexpected) - 3} more" if len(unexpected) > 3 else ""))
    return "; ".join(problems[:3]) if problems else None
