"""Checkpoints that a kill cannot leave half-written, and the choice of the one a restarted run resumes from.

Lightning 2.6 saves a local checkpoint inside an fsspec "transaction": fsspec writes it to a
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
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO

log = logging.getLogger(__name__)

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


def _readable(path: Path) -> bool:
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, corrupt or holding objects: any reader error means unusable
        log.warning("cannot read checkpoint %s (%s: %s)", path, type(err).__name__, str(err)[:200])
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
        if _readable(last):
            return str(last)
        aside = last.with_name("last.ckpt.unreadable")
        os.replace(last, aside)
        log.warning("moved the unreadable %s aside to %s; resuming from an older checkpoint", last, aside.name)
    for path in sorted(folder.glob("epoch_*.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True):
        if path.is_file() and _readable(path):
            return str(path)
    return None


def checkpoint_mismatch(path: str | os.PathLike[str], module: torch.nn.Module) -> str | None:
    """Why ``module`` cannot take the weights of the checkpoint at ``path`` (missing or unexpected parameters,
    other shapes), in a few words naming the first differences; ``None`` when it can.

    Lightning would find the same with a size-mismatch traceback from ``load_state_dict`` (a run directory
    re-run with another ``embedding_dim``, say); this says it before any training starts.
    """
    state = torch.load(path, map_location="cpu", weights_only=True).get("state_dict", {})
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
