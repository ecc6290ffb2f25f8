"""The optimizer (and optional scheduler) of a task, from the ``_partial_`` factories its config names."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., Any]


def configure_optimizers(optimizer: OptimizerFactory | None, scheduler: SchedulerFactory | None,
                         params: Iterable[torch.nn.Parameter], monitor: str) -> Any:
    """What ``LightningModule.configure_optimizers`` returns; ``monitor`` only matters for ReduceLROnPlateau."""
    if optimizer is None:
        return None
    opt = optimizer(params=params)
    if scheduler is None:
        return opt
    return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler(optimizer=opt), "monitor": monitor,
                                               "interval": "epoch"}}
