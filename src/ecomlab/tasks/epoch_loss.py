"""The training loss as both tasks log it: the example-weighted mean of each epoch, under ``train/loss``."""

from __future__ import annotations

import pytorch_lightning as pl
import torch


class EpochLoss:
    """Sums ``loss * batch size`` on the loss's device during an epoch and logs the mean once, at its end.

    ``self.log`` on every step costs about 10% of a small model's CPU epoch, and on a GPU it reads the value back
    to the host every step (a synchronisation), where this sum stays on the device until the epoch ends. The
    logged value is what ``on_epoch`` logging would give; under DDP the ranks' means are averaged (equal
    shares, as the samplers give them). torchmetrics' ``MeanMetric`` does the same at about 24 against 5 us
    per step on CPU.
    """

    def __init__(self) -> None:
        self.total: torch.Tensor | None = None
        self.count = 0

    def reset(self) -> None:
        self.total, self.count = None, 0

    def add(self, loss: torch.Tensor, n: int) -> None:
        weighted = loss.detach() * n
        self.total = weighted if self.total is None else self.total + weighted
        self.count += n

    def log(self, module: pl.LightningModule) -> None:
        if self.total is not None:  # at least one step this epoch
            module.log("train/loss", self.total / self.count, prog_bar=True, sync_dist=True)
