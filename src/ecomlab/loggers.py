"""Lightning loggers adapted to ecomlab's metric names.

ecomlab logs metrics as ``val/ndcg@10``. TensorBoard summary names allow only ``[-/\\w.]``: tensorboardX
renames every other one itself and logs a line "Summary name ... is illegal" for each, 84 per ranking run.
:class:`TensorBoardLogger` renames them first, ``@`` to ``_at_`` (``val/ndcg_at_10``), so the event files read
well and the run output stays quiet; ``metrics.json`` keeps the ``@`` names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pytorch_lightning.loggers import TensorBoardLogger as _LightningTensorBoardLogger

_ILLEGAL = re.compile(r"[^-/\w.]")


def tensorboard_name(name: str) -> str:
    """A metric name TensorBoard accepts: ``@`` becomes ``_at_``, any other character outside ``[-/\\w.]`` ``_``."""
    return _ILLEGAL.sub("_", name.replace("@", "_at_"))


class TensorBoardLogger(_LightningTensorBoardLogger):
    """Lightning's TensorBoard logger with metric names made legal before they reach the event writer."""

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        super().log_metrics({tensorboard_name(k): v for k, v in metrics.items()}, step)
