"""What distributed data parallel (DDP) synchronises across ranks, beyond Lightning's defaults.

* Buffers: DDP broadcasts every buffer from rank 0 when it wraps the model and again before each forward.
  A network's non-persistent buffers are what ``fit(data)`` derives from the training data (normalised graphs,
  covariate statistics) or constants. Every rank builds the same ones before training, and checkpoints leave
  them out, so :func:`keep_derived_buffers_local` takes them out of the broadcasts. Broadcasting them would
  only copy what each rank already has, and fails outright for the graph models' sparse adjacencies
  (``Sparse CSR tensors do not have is_contiguous``).
* Python objects: :func:`gather_objects` collects each rank's evaluation rows, so every rank computes the
  metrics of the whole evaluation set, as one process would.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel


def keep_derived_buffers_local(module: nn.Module) -> list[str]:
    """Exclude ``module``'s non-persistent buffers from DDP's broadcasts; returns their names.

    Call it before DDP wraps ``module`` (a LightningModule's ``setup`` hook runs before). Names already
    excluded (``_ddp_params_and_buffers_to_ignore``) stay excluded.
    """
    persistent = set(module.state_dict(keep_vars=True))
    derived = [name for name, _ in module.named_buffers() if name not in persistent]
    ignored = sorted(set(getattr(module, "_ddp_params_and_buffers_to_ignore", [])) | set(derived))
    # torch's hook for names DDP must not synchronise (a static method it marks as a workaround, there since 1.8)
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(module, ignored)
    return derived


def world_size() -> int:
    """Processes in the default process group (1 outside a distributed run)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` in rank order (``[obj]`` outside a distributed run); every rank gets the list.

    Picklable Python objects (evaluation rows with string ids, data frames) where ``all_gather`` takes tensors.
    """
    n = world_size()
    if n == 1:
        return [obj]
    gathered: list[Any] = [None] * n
    torch.distributed.all_gather_object(gathered, obj)
    return gathered
