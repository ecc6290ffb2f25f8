"""Lightning callbacks of ecomlab's own.

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
