"""``DataLoader`` settings shared by the data modules.

Their datasets assemble whole batches in ``__getitems__`` (one indexing operation per batch, no per-example
collation), so the loaders pass batches through as they are; worker processes, when there are any, stay alive
across epochs; host memory is pinned when the trainer runs on a GPU, so copies to the device can overlap.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.accelerators import CUDAAccelerator


def pass_through(batch: Any) -> Any:
    """The collate function: the dataset already returned the batch."""
    return batch


def loader_settings(num_workers: int, pin_memory: bool | None, trainer: pl.Trainer | None) -> dict[str, Any]:
    """``DataLoader`` keyword arguments: ``collate_fn``, ``num_workers``, ``persistent_workers`` and
    ``pin_memory`` (``None``: pinned exactly when ``trainer`` runs on a GPU)."""
    if pin_memory is None:
        pin_memory = trainer is not None and isinstance(trainer.accelerator, CUDAAccelerator)
    return {"collate_fn": pass_through, "num_workers": num_workers, "persistent_workers": num_workers > 0,
            "pin_memory": pin_memory}
