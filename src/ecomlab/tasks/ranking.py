"""LightningModule for every recommender: training steps, full-ranking evaluation, optimizers.

The wrapped network (:class:`~ecomlab.models.base.Recommender`) only maps tensors to scores. This module
owns everything else, so a new model is one network file plus one config.

Evaluation: for each batch of users the network scores all items; excluded items (training, and at test
time validation, interactions) are masked; the top ``max(ks)`` are ranked with a deterministic tie policy
(lower item index first); per-user metrics are kept (a torchmetrics ``Metric``, so they gather across
devices) and logged as means, e.g. ``val/ndcg@10``. Users without target items are not evaluated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import pytorch_lightning as pl
import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from ecomlab.metrics.ranking import RANKING_METRICS, item_coverage, metric_table, ranking_hits
from ecomlab.models.base import Recommender, RecTrainData, rank_topk
from ecomlab.tasks.distributed import keep_derived_buffers_local
from ecomlab.tasks.epoch_loss import EpochLoss
from ecomlab.tasks.optim import OptimizerFactory, SchedulerFactory, configure_optimizers


class PerUserRows(Metric):
    """An evaluation's per-user rows: user ids ``[B]``, metric values ``[B, M]``, ranked items ``[B, K]``.

    One update per batch and one gather per state across processes (concatenated in rank order), however many
    metrics. Ids stay int64, so they are exact at any catalogue size (a float32 ``CatMetric`` holds integers
    exactly only up to 2^24), and nothing is checked for NaN: every metric is finite by construction (``n_rel
    >= 1``), and a NaN check would synchronise the device on every batch.
    """

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        for name in ("users", "values", "items"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, users: Tensor, values: Tensor, items: Tensor) -> None:
        self.users.append(users)
        self.values.append(values)
        self.items.append(items)

    def compute(self) -> tuple[Tensor, Tensor, Tensor]:
        return dim_zero_cat(self.users), dim_zero_cat(self.values), dim_zero_cat(self.items)


class RankingTask(pl.LightningModule):
    #: which models and data modules fit together; checked before anything is loaded
    kind = "ranking"

    def __init__(self, net: Recommender, ks: Sequence[int] = (5, 10, 20),
                 metrics: Sequence[str] = ("recall", "ndcg", "hit", "mrr", "precision", "map"),
                 optimizer: OptimizerFactory | None = None, scheduler: SchedulerFactory | None = None,
                 monitor: str = "val/ndcg@10", mode: str = "max") -> None:
        super().__init__()
        ks = sorted({int(k) for k in ks})
        if not ks or ks[0] < 1:
            raise ValueError(f"ks={list(ks)}; every K must be an integer >= 1")
        unknown = [m for m in metrics if m not in RANKING_METRICS]
        if unknown:
            raise ValueError(f"metrics={list(metrics)}: unknown {unknown}; allowed {sorted(RANKING_METRICS)}")
        if mode not in ("min", "max"):
            raise ValueError(f"mode={mode!r}; expected 'min' or 'max'")
        name, _, k = monitor.rpartition("/")[2].partition("@")
        if monitor.startswith("val/") and k.isdigit() and (name not in [*metrics, "coverage"] or int(k) not in ks):
            # early stopping and checkpointing would fail after the first epoch on a metric nobody logs
            raise ValueError(f"model.monitor={monitor} is not logged: the evaluation computes {list(metrics)} at "
                             f"eval.ks={ks}; add {k} to eval.ks or monitor one of them (e.g. model.monitor="
                             f"val/{metrics[0] if name not in metrics else name}@{ks[-1]})")
        if net.trainable and optimizer is None:
            raise ValueError(f"{type(net).__name__} is trained by gradient steps: its model config needs an optimizer")
        self.net = net
        self.ks, self.metric_names = ks, list(metrics)
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.monitor, self.mode = monitor, mode
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        #: the columns of the per-user table, in the order of the rows the evaluation stores
        self._columns = ["user"] + [f"{m}@{k}" for m in self.metric_names for k in ks]
        self._store = torch.nn.ModuleDict({stage: PerUserRows() for stage in ("val", "test")})
        #: per-user metric values of the last evaluation, by stage ("val" / "test")
        self.per_user: dict[str, pd.DataFrame] = {}
        self.namespace = ""
        self._epoch_loss = EpochLoss()

    def set_metric_namespace(self, namespace: str) -> None:
        """Log under ``val/<namespace>/...`` (e.g. ``sampled100``) and monitor the same-named metric."""
        if namespace and not self.namespace:
            stage, _, name = self.monitor.partition("/")
            self.monitor = f"{stage}/{namespace}/{name}"
        self.namespace = namespace

    @property
    def trainable(self) -> bool:
        return self.net.trainable

    def prepare(self, data: RecTrainData) -> None:
        """Hand the network its fixed inputs before training or evaluation.

        Classical models fit here in closed form; trained models take what they need beyond ids (the
        normalised interaction graph, social edges, item text) and otherwise keep ``fit`` a no-op. A cut-off
        larger than the catalogue is refused here, before any training, rather than at the first evaluation.
        """
        n_items = data.train.shape[1]
        if self.ks[-1] > n_items:
            fits = [k for k in self.ks if k <= n_items]
            raise ValueError(f"eval.ks={self.ks}: K={self.ks[-1]} is larger than the {n_items} items of this data "
                             f"set; rank at most {n_items}" + (f", e.g. eval.ks={fits} with model.monitor="
                                                               f"val/ndcg@{fits[-1]}" if fits else ""))
        self.net.fit(data)

    def setup(self, stage: str) -> None:
        keep_derived_buffers_local(self)  # graphs built by prepare() on every rank; DDP cannot broadcast them

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self.net.loss(batch)
        self._epoch_loss.add(loss, len(batch["users"]))  # logged once per epoch
        return loss

    def on_train_epoch_start(self) -> None:
        self._epoch_loss.reset()

    def on_train_epoch_end(self) -> None:
        self._epoch_loss.log(self)

    def _evaluate(self, batch: dict[str, Tensor], stage: str) -> None:
        # Scores in fp32 even under bf16 autocast: bf16's 8-bit mantissa creates ties that reorder the ranking.
        with torch.autocast(device_type=batch["users"].device.type, enabled=False):
            scores = self.net(batch["users"])  # [B, N]
        self._n_items = scores.shape[1]
        # the network's scores are a fresh matrix (Recommender.forward's contract): mask it in place, at the
        # excluded cells' coordinates where the batch has them (full ranking) and by a mask otherwise
        exclude = batch["exclude_at"] if "exclude_at" in batch else batch["exclude"]
        target = batch["target_at"] if "target_at" in batch else batch["target"]
        _, top_items = rank_topk(scores, self.ks[-1], exclude, inplace=scores.is_floating_point())  # [B, K]
        hits = ranking_hits(top_items, target)  # [B, K]
        n_rel = batch["n_target"] if "n_target" in batch else batch["target"].sum(dim=1)  # [B]
        # Every evaluated user has a target (n_rel >= 1 by construction): the check would read back from the device.
        values = metric_table(hits, n_rel, self.metric_names, self.ks, check=False)  # [B, M]
        self._store[stage].update(batch["users"], values, top_items)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def _finish(self, stage: str) -> None:
        store = self._store[stage]
        if store.update_count == 0:  # e.g. no users with targets in a tiny fast_dev_run
            return
        users, values, ranked = store.compute()  # [U], [U, M], [U, K]: every rank's rows (DDP), in rank order
        n_items = self._n_items
        table = pd.DataFrame(values.cpu().numpy(), columns=self._columns[1:])
        table.insert(0, "user", users.cpu().numpy())
        # A distributed sampler pads the ranks' shares with repeated users; each user counts once, so the
        # metrics equal the single-process ones.
        first = ~table["user"].duplicated().to_numpy()
        table = table[first].reset_index(drop=True)
        self.per_user[stage] = table
        prefix = f"{stage}/{self.namespace}/" if self.namespace else f"{stage}/"
        logged = {f"{prefix}{key}": float(table[key].mean()) for key in self._columns[1:]}
        ranked = ranked[torch.as_tensor(first, device=ranked.device)]
        for k in self.ks:
            logged[f"{prefix}coverage@{k}"] = item_coverage(ranked, n_items, min(k, ranked.shape[1]))
        self.log_dict(logged, sync_dist=False)
        store.reset()

    def on_validation_epoch_end(self) -> None:
        self._finish("val")

    def on_test_epoch_end(self) -> None:
        self._finish("test")

    def configure_optimizers(self) -> Any:
        return configure_optimizers(self.optimizer_factory, self.scheduler_factory, self.net.param_groups(),
                                    self.monitor)
