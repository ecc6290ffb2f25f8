"""The optimizer (and optional scheduler) of a task, from the ``_partial_`` factories its config names."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., Any]


def configure_optimizers(optimizer: OptimizerFactory | None, scheduler: SchedulerFactory | None,
                         params: Iterable[torch.nn.Parameter] | list[dict[str, Any]], monitor: str) -> Any:
    """What ``LightningModule.configure_optimizers`` returns; ``monitor`` only matters for ReduceLROnPlateau.

    ``params`` may be parameter groups; a group's ``lr_factor`` multiplies the learning rate the optimizer
    config gives it (before any scheduler records its initial rates).
    """
    if optimizer is None:
        return None
    opt = optimizer(params=params)
    for group in opt.param_groups:
        group["lr"] = group["lr"] * group.get("lr_factor", 1.0)
    if scheduler is None:
        return opt
    return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler(optimizer=opt), "monitor": monitor,
                                               "interval": "epoch"}}
