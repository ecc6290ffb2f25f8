"""Reading checkpoints a user points ecomlab at: local files only, weights only, one clear error each.

``torch.load(weights_only=True)`` refuses a file that pickles Python objects (it could run code); that refusal
is re-raised as is, and :mod:`ecomlab.cli` reports it. Everything else that makes a file unusable -- truncated
(``OSError 22`` or a zip without its central directory), empty, not a PyTorch file, a Lightning checkpoint of
another model -- is a :class:`CheckpointError` naming the file, so the command line exits 2 with one line.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read, or whose weights do not fit the model."""


def is_url(value: str) -> bool:
    """``http://``, ``s3://``, ``file://`` ...: fsspec (and so Lightning) would fetch these; ecomlab never does."""
    return "://" in value


def _summary(err: BaseException) -> str:
    text = " ".join(str(err).split())
    first = text.split(". ", 1)[0]  # torch's reader errors go on with a paragraph of advice
    return f"{type(err).__name__}: {first[:200]}" if first else type(err).__name__


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
