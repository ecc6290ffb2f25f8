"""Lightning callbacks of ecomlab's own.

:class:`TrainingOutcome` remembers why ``Trainer.fit`` returned (a limit, early stopping, the time cap) for the
run record. It has to look when training ends: the ``Trainer.validate`` / ``Trainer.test`` that follow load the
best checkpoint, and with it every callback's state from when that checkpoint was saved, which is before early
stopping fired.

:class:`RNGState` makes a resumed run exact. Lightning checkpoints hold weights, optimizer and loop state but
not the global random generators; training draws from them every epoch (the train loader's shuffle order,
the negatives sampled per fetch), so a run resumed from ``last.ckpt`` would otherwise start the next epoch
from the generators as ``seed_everything`` left them at start-up and train on different batches than the
run that was never interrupted.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch


class RNGState(pl.Callback):
    """Saves the torch, numpy and Python generator states with every checkpoint and restores them on resume.

    The states are stored as tensors and plain lists (no numpy objects), so the checkpoint still loads with
    ``torch.load(weights_only=True)``. CUDA generators are not kept: GPU runs are not bitwise repeatable anyway.
    """

    def state_dict(self) -> dict[str, Any]:
        name, keys, pos, has_gauss, cached = np.random.get_state()
        version, internal, gauss = random.getstate()
        return {"torch": torch.get_rng_state(), "numpy_keys": torch.from_numpy(keys.astype(np.int64)),
                "numpy": [str(name), int(pos), int(has_gauss), float(cached)],
                "python": [int(version), list(internal), gauss]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        name, pos, has_gauss, cached = state_dict["numpy"]
        np.random.set_state((name, state_dict["numpy_keys"].numpy().astype(np.uint32), pos, has_gauss, cached))
        version, internal, gauss = state_dict["python"]
        random.setstate((version, tuple(internal), gauss))


class RichProgressBar(pl.callbacks.RichProgressBar):
    """Lightning's rich progress bar counting epochs from 1: "Epoch 1/2" for the first of ``max_epochs=2``.

    Lightning's own bar shows the 0-based epoch over ``max_epochs - 1`` ("Epoch 0/1", then "Epoch 1/1"), which
    reads as a run of one epoch. Without an epoch cap (``max_epochs`` None or -1) it shows the epoch alone.
    """

    def _get_train_description(self, current_epoch: int) -> str:
        max_epochs = self.trainer.max_epochs
        description = f"Epoch {current_epoch + 1}" + (f"/{max_epochs}" if max_epochs not in (None, -1) else "")
        # as Lightning does: pad to the validation bar's description, or the two bars flicker
        return f"{description:{len(self.validation_description)}}"


def fit_limit(trainer: pl.Trainer) -> tuple[str, str] | None:
    """``(reason, detail)`` when the fit loop ended on a limit, checked in the loop's own order (``max_steps``,
    then ``max_epochs``); its counters are still right after ``validate`` / ``test``."""
    if trainer.max_steps not in (None, -1) and trainer.global_step >= trainer.max_steps:
        return "max_steps", f"max_steps={trainer.max_steps} reached"
    if trainer.max_epochs not in (None, -1) and trainer.current_epoch >= trainer.max_epochs:
        return "max_epochs", f"max_epochs={trainer.max_epochs} reached"
    return None


def _timer(trainer: pl.Trainer) -> pl.callbacks.Timer | None:
    return next((c for c in trainer.callbacks if isinstance(c, pl.callbacks.Timer)
                 and c.time_remaining() is not None), None)


def stop_reason(trainer: pl.Trainer) -> tuple[str, str]:
    """Why ``Trainer.fit`` returned, from the live trainer and callbacks: ``(reason, detail)`` with reason one of
    ``max_steps``, ``max_epochs``, ``early_stopping``, ``max_time`` or ``stopped`` (another stop request)."""
    limit = fit_limit(trainer)
    if limit:
        return limit
    for callback in trainer.early_stopping_callbacks:
        if callback.stopped_epoch or callback.stopping_reason.value:
            detail = callback.stopping_reason_message or f"stopped at epoch {callback.stopped_epoch}"
            return "early_stopping", " ".join(detail.split())
    timer = _timer(trainer)
    if timer is not None and (timer.time_remaining() or 0.0) <= 0:
        elapsed = timer.time_elapsed()
        duration = round(elapsed + (timer.time_remaining() or 0.0), 3)  # the two reads are microseconds apart
        return "max_time", f"max_time of {duration:g} s of training reached (stopped after {elapsed:.1f} s)"
    return "stopped", "a callback asked training to stop"


class TrainingOutcome(pl.Callback):
    """Records :func:`stop_reason` when training ends, for ``metrics.json`` (see the module docstring).

    Keeps no checkpoint state: a resumed run asks again when its own training ends.
    """

    def __init__(self) -> None:
        self.reason: tuple[str, str] | None = None

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.reason = stop_reason(trainer)


class ModelCheckpoint(pl.callbacks.ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` whose ``save_last`` writes ``last.ckpt`` after every validation.

    Lightning 2.6 rewrites ``last.ckpt`` only when a top-k checkpoint was saved in the same step, i.e. when the
    monitored metric improved; a run killed after some epochs without improvement then resumed from its best
    epoch and trained those epochs again (exactly, thanks to :class:`RNGState`, but for nothing).
    """

    def _save_last_too(self, trainer: pl.Trainer) -> None:
        # _should_skip_saving_checkpoint is true where this step was saved already (a new best: last too)
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):  # the default: validation runs before this hook
            self._save_last_too(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_too(trainer)
