"""Lightning data module for recommendation: bundle -> split -> CSR matrices -> loaders.

Training batches are ``{"users": [B], "pos": [B], "neg": [B, n_neg]}`` with negatives sampled uniformly
from the items the user has not interacted with in training. Evaluation batches rank
all ``N`` items for ``{"users": [B]}``, with the user's training items (and, at test time, validation items)
excluded from the candidates: ``exclude_at`` and ``target_at`` hold the excluded and the target cells as
coordinates ``(rows [nnz], items [nnz])`` (dense ``exclude`` / ``target`` ``[B, N]`` bool masks where the
candidates are restricted), ``n_target`` ``[B]`` each user's number of targets. A held-out
item that is also excluded (a repeat interaction with an item already seen) cannot be ranked, so it is not a
target; users left without targets are not evaluated.

The loaders carry only indices; negatives and the cells or masks are made on the training device after the
batch is moved there (:meth:`RecDataModule.complete`, called by Lightning's ``on_after_batch_transfer``), so a
GPU run does no per-example host work and copies no ``[B, N]`` masks.

Sampled evaluation (``eval_negatives=N``, the NeuMF paper's protocol): each evaluated user ranks only their
held-out items plus ``N`` items drawn uniformly (seeded, once per stage) from the items the user never
interacted with. Its metrics are logged under their own namespace (``test/sampled100/ndcg@10``) so they are
never mixed with full-ranking numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import scipy.sparse as sp
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from ecomlab.data.bundle import BundleSource, DatasetBundle, DataValidationError
from ecomlab.data.cache import load_bundle
from ecomlab.data.loaders import loader_settings
from ecomlab.data.preprocess import Preprocess
from ecomlab.models.base import RecTrainData
from ecomlab.models.histories import csr_entries


class Splitter(Protocol):
    def __call__(self, interactions: pd.DataFrame, has_timestamps: bool = True, *, name: str = "") -> Any: ...

    def describe(self) -> dict[str, Any]: ...


def to_csr(frame: pd.DataFrame, n_users: int, n_items: int) -> sp.csr_matrix:
    """``[n_users, n_items]`` matrix of summed weights (repeat interactions add up)."""
    matrix = sp.csr_matrix(
        (frame["weight"].to_numpy(np.float32), (frame["user_id"].to_numpy(), frame["item_id"].to_numpy())),
        shape=(n_users, n_items),
    )
    matrix.sum_duplicates()
    return matrix


class PositiveBatches(IterableDataset):
    """The training interactions as ``{"users": [B], "pos": [B]}`` index batches, reshuffled every epoch.

    Batches are slices of one permutation per epoch, drawn from a generator seeded by ``(seed, epoch)``: no
    per-example Python work, the same order on every rank of a distributed run (each rank takes its own
    strided share, padded by wrap-around so all ranks step equally often) and after a resume (the epoch comes
    from the trainer). Negatives are drawn later on the training device (:class:`NegativeSampler`).
    """

    def __init__(self, train: sp.csr_matrix, batch_size: int, shuffle: bool = True, seed: int = 0,
                 epoch: Callable[[], int] | None = None) -> None:
        coo = train.tocoo()
        self.users = torch.as_tensor(coo.row, dtype=torch.long)
        self.items = torch.as_tensor(coo.col, dtype=torch.long)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self._epoch = epoch
        self._iterations = 0

    def _shards(self) -> tuple[int, int]:
        """``(index, count)`` of this process's share: distributed rank x data-loader worker."""
        rank, world = 0, 1
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return rank * workers + worker, world * workers

    def __len__(self) -> int:
        n_batches = -(-len(self.users) // self.batch_size)
        return -(-n_batches // self._shards()[1])

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        epoch = self._epoch() if self._epoch is not None else self._iterations
        self._iterations += 1
        n = len(self.users)
        if self.shuffle:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + epoch))
        else:
            order = torch.arange(n)
        batches = order.split(self.batch_size)
        shard, shards = self._shards()
        for b in range(shard, len(self) * shards, shards):
            idx = batches[b % len(batches)]
            yield {"users": self.users[idx], "pos": self.items[idx]}


class _PerDevice:
    """Host tensors with a lazily made copy per device (the batch's device decides where work runs)."""

    def __init__(self, **tensors: torch.Tensor) -> None:
        self._host = tensors
        self._copies: dict[torch.device, dict[str, torch.Tensor]] = {}

    def on(self, device: torch.device) -> dict[str, torch.Tensor]:
        if device not in self._copies:
            self._copies[device] = {k: v.to(device) for k, v in self._host.items()}
        return self._copies[device]


class NegativeSampler:
    """Uniform negatives among the items a user has not interacted with in training, drawn on the batch's device.

    Exact and without rejection: for user ``u`` with sorted training items ``p_0 < p_1 < ...`` draw
    ``r ~ U{0, ..., N - deg(u) - 1}``; the ``r``-th non-positive item is ``j = r + #{i : p_i - i <= r}``, since
    ``p_i - i`` counts the non-positives below ``p_i``. One ``searchsorted`` over the sorted keys
    ``u * N + (p_i - i)`` answers every draw of the batch at once: no loop, no host synchronisation.
    A user who has every item has no negative; they get item ``N - 1`` (a positive).
    """

    def __init__(self, train: sp.csr_matrix, num_negatives: int) -> None:
        binary = sp.csr_matrix(train != 0)
        binary.sort_indices()
        n_users, self.n_items = binary.shape
        self.num_negatives = num_negatives
        indptr = binary.indptr.astype(np.int64)
        deg = np.diff(indptr)
        rows = np.repeat(np.arange(n_users, dtype=np.int64), deg)
        rank_in_row = np.arange(binary.nnz, dtype=np.int64) - indptr[rows]
        keys = rows * self.n_items + (binary.indices.astype(np.int64) - rank_in_row)  # ascending
        self._index = _PerDevice(keys=torch.as_tensor(keys), indptr=torch.as_tensor(indptr),
                                 free=torch.as_tensor(self.n_items - deg))

    def __call__(self, users: torch.Tensor) -> torch.Tensor:
        index = self._index.on(users.device)
        free = index["free"][users].unsqueeze(1)  # [B, 1] non-positives per user
        draw = torch.rand(len(users), self.num_negatives, device=users.device, dtype=torch.float64)
        r = (draw * free).long().clamp(min=0).minimum((free - 1).clamp(min=0))  # [B, n_neg] in [0, free)
        query = users.unsqueeze(1) * self.n_items + r  # [B, n_neg]
        below = torch.searchsorted(index["keys"], query, right=True) - index["indptr"][users].unsqueeze(1)
        return (r + below).clamp(max=self.n_items - 1)


def cells_mask(cells: tuple[torch.Tensor, torch.Tensor], n_rows: int, n_cols: int) -> torch.Tensor:
    """Cells ``(rows [nnz], cols [nnz])`` as a dense ``[n_rows, n_cols]`` bool mask on the cells' device."""
    rows, cols = cells
    mask = torch.zeros(n_rows, n_cols, dtype=torch.bool, device=rows.device)
    mask[rows, cols] = True  # [B, N]
    return mask


def sample_unseen(seen: sp.csr_matrix, users: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``[len(users), n]`` items drawn uniformly without replacement from each user's unseen items.

    Vectorised rejection sampling: draw, reject seen items and within-row repeats, redraw the rejected.
    """
    n_items = seen.shape[1]
    unseen = n_items - np.diff(seen.indptr)[users]
    if len(users) and unseen.min() < n:
        bad = users[unseen < n][:5].tolist()
        raise DataValidationError(f"eval_negatives={n}: users {bad} have fewer than {n} unseen items")
    rng = np.random.default_rng(seed)
    keys = np.sort(seen.tocoo().row.astype(np.int64) * n_items + seen.tocoo().col)
    out = rng.integers(0, n_items, size=(len(users), n))
    for _ in range(100):
        flat = users[:, None].astype(np.int64) * n_items + out  # [U, n]
        pos = np.searchsorted(keys, flat).clip(max=max(len(keys) - 1, 0))
        clash = keys[pos] == flat if len(keys) else np.zeros_like(out, dtype=bool)
        ordered = np.sort(out, axis=1)  # [U, n]; a repeat within a row is a second rejection reason
        dup_sorted = np.zeros_like(clash)
        dup_sorted[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
        order = np.argsort(out, axis=1, kind="stable")
        dup = np.zeros_like(clash)
        np.put_along_axis(dup, order, dup_sorted, axis=1)
        bad = clash | dup
        if not bad.any():
            return out
        out[bad] = rng.integers(0, n_items, size=int(bad.sum()))
    raise RuntimeError("sampling evaluation negatives did not converge; lower eval_negatives")


class EvalDataset(Dataset):
    """Users with at least one target item.

    A batch leaves the loader as ``{"users": [B], "stage": str, "n_cells": (excluded, target)}`` (the batch's
    cell counts, from the host; plus ``"negatives": [B, n]`` under sampled evaluation); :meth:`complete` then
    builds its excluded and target cells (or dense ``[B, N]`` masks) from CSR index tensors on the batch's device,
    so a GPU evaluation copies user indices to the device, not masks.
    """

    def __init__(self, exclude: sp.csr_matrix, target: sp.csr_matrix, candidates: np.ndarray | None = None,
                 negatives: int | None = None, seen: sp.csr_matrix | None = None, seed: int = 0,
                 stage: str = "val") -> None:
        # Targets are held-out items among the candidates: an excluded (already seen) item can never be hit.
        target = (target > 0).astype(np.float32)
        target = sp.csr_matrix(target - target.multiply(exclude > 0))
        self.blocked: np.ndarray | None = None
        if candidates is not None:
            self.blocked = np.ones(target.shape[1], dtype=bool)
            self.blocked[candidates] = False
            target = sp.csr_matrix(target.multiply(~self.blocked[None, :]))
        target.eliminate_zeros()
        exclude = sp.csr_matrix(exclude > 0)
        exclude.eliminate_zeros()
        exclude.sort_indices()
        target.sort_indices()
        self.exclude, self.target, self.stage = exclude, target, stage
        self._cells_per_user = (np.diff(exclude.indptr), np.diff(target.indptr))  # [U] each, host-side counts
        self.n_items = target.shape[1]
        self.users = np.flatnonzero(np.diff(target.indptr) > 0)
        self.negatives: np.ndarray | None = None
        if negatives:
            every_positive = seen if seen is not None else (exclude + target).tocsr()
            self.negatives = sample_unseen(every_positive, self.users, negatives, seed)  # [U, n]
        blocked = torch.as_tensor(self.blocked if self.blocked is not None else np.zeros(0, dtype=bool))
        self._index = _PerDevice(
            exclude_ptr=torch.as_tensor(exclude.indptr.astype(np.int64)),
            exclude_idx=torch.as_tensor(exclude.indices.astype(np.int64)),
            target_ptr=torch.as_tensor(target.indptr.astype(np.int64)),
            target_idx=torch.as_tensor(target.indices.astype(np.int64)),
            blocked=blocked)

    def __len__(self) -> int:
        return len(self.users)

    def __getitems__(self, indices: list[int]) -> dict[str, Any]:
        rows = np.asarray(indices)
        users = self.users[rows]
        # the batch's excluded and target cell counts, so that complete() sizes its coordinates without a
        # read-back from the device
        n_cells = tuple(int(per_user[users].sum()) for per_user in self._cells_per_user)
        batch: dict[str, Any] = {"users": torch.as_tensor(users, dtype=torch.long), "stage": self.stage,
                                 "n_cells": n_cells}
        if self.negatives is not None:
            batch["negatives"] = torch.as_tensor(self.negatives[rows], dtype=torch.long)  # [B, n]
        return batch

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.__getitems__([index])

    def complete(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Add what ranking the batch needs, on the device of ``batch["users"]``, and the target counts
        ``n_target`` ``[B]``.

        Full ranking over the whole catalogue gets the excluded and the target cells as coordinates,
        ``exclude_at`` and ``target_at`` (``(rows [nnz], items [nnz])``, rows in batch order): a few thousand
        cells instead of two ``[B, N]`` masks, whose zero-fill and scatter cost a quarter of a LastFM pass on
        CPU and two ``B x N``-byte buffers per batch on a GPU. Restricted candidates (``candidates`` or sampled
        negatives) get dense ``exclude`` and ``target`` ``[B, N]`` bool masks. :func:`cells_mask` turns
        coordinates into the mask.
        """
        users = batch["users"]
        index = self._index.on(users.device)
        n_exclude, n_target_cells = batch.get("n_cells", (None, None))  # host counts (None: read from the device)
        rows, cols, _ = csr_entries(index["exclude_ptr"], index["exclude_idx"], users, n_exclude)  # [nnz_B] each
        t_rows, t_cols, n_target = csr_entries(index["target_ptr"], index["target_idx"], users, n_target_cells)
        if not len(index["blocked"]) and "negatives" not in batch:
            return {**batch, "exclude_at": (rows, cols), "target_at": (t_rows, t_cols), "n_target": n_target}
        exclude = cells_mask((rows, cols), len(users), self.n_items)  # [B, N]
        target = cells_mask((t_rows, t_cols), len(users), self.n_items)  # [B, N]
        if len(index["blocked"]):
            exclude |= index["blocked"].unsqueeze(0)  # [B, N] | [1, N] -> [B, N]
        if "negatives" in batch:
            # Sampled protocol: only the user's targets and sampled negatives are candidates.
            exclude.fill_(True)
            exclude.scatter_(1, batch["negatives"], False)  # [B, n] cells
            exclude &= ~target
        return {**batch, "exclude": exclude, "target": target, "n_target": n_target}


class RecDataModule(pl.LightningDataModule):
    """Recommendation data: a source (built-in or files), preprocessing, a splitter and loader settings.

    The bundle is loaded through :func:`ecomlab.data.cache.load_bundle`: ``preprocess`` is applied after the
    source and the result is cached under ``cache_dir`` (``None``: no cache) for sources with ``cache_key()``.
    """

    kind = "ranking"


    def __init__(self, source: BundleSource, split: Splitter, batch_size: int = 2048,
                 eval_batch_size: int = 256, num_negatives: int = 1, num_workers: int = 0,
                 preprocess: Preprocess | None = None, cache_dir: str | None = None,
                 eval_negatives: int | None = None, seed: int = 0, pin_memory: bool | None = None) -> None:
        super().__init__()
        if batch_size < 1 or eval_batch_size < 1 or num_negatives < 1 or num_workers < 0:
            raise ValueError("batch_size, eval_batch_size and num_negatives must be >= 1, num_workers >= 0; got "
                             f"{batch_size}, {eval_batch_size}, {num_negatives}, {num_workers}")
        if eval_negatives is not None and eval_negatives < 1:
            raise ValueError(f"eval_negatives={eval_negatives}; expected null (full ranking) or an integer >= 1")
        self.eval_negatives, self.seed = eval_negatives, seed
        self.source, self.splitter = source, split
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_negatives, self.num_workers = num_negatives, num_workers
        self.preprocess, self.cache_dir = preprocess, cache_dir
        self.cache_info: dict[str, Any] = {}
        self.bundle: DatasetBundle | None = None
        #: ``None``: pin host memory exactly when the trainer runs on a GPU
        self.pin_memory = pin_memory
        self.sampler: NegativeSampler | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.bundle is not None:
            return
        bundle, self.cache_info = load_bundle(self.source, self.preprocess, self.cache_dir)
        if bundle.n_users == 0 or len(bundle.interactions) == 0:
            raise DataValidationError(
                f"data set '{bundle.name}' has no user-item interactions, so it cannot train or evaluate a "
                "recommender; pick a recommendation data config (e.g. data=movielens_small)")
        parts = self.splitter(bundle.interactions, bundle.has_timestamps, name=bundle.name)
        n_u, n_i = bundle.n_users, bundle.n_items
        self.train_csr = to_csr(parts.train, n_u, n_i)
        self.val_csr = to_csr(parts.val, n_u, n_i)
        self.test_csr = to_csr(parts.test, n_u, n_i)
        self.split_sizes = {"train": len(parts.train), "val": len(parts.val), "test": len(parts.test)}
        self.split_protocol = parts.protocol
        self.candidates: dict[str, np.ndarray] = dict(parts.candidates)
        self._eval_sets: dict[str, EvalDataset] = {}
        self._check_size(bundle, parts)
        self.bundle = bundle

    def _split_parts(self) -> tuple[str, ...]:
        """The held-out parts the splitter makes by design (a custom splitter without ``parts()``: both)."""
        parts = getattr(self.splitter, "parts", None)
        return tuple(parts()) if callable(parts) else ("val", "test")

    def _check_size(self, bundle: DatasetBundle, parts: Any) -> None:
        """Refuse data too small for the split: a run on it would train on nothing or end with empty metrics."""
        requirement = getattr(self.splitter, "requirement", None)
        per_user = np.bincount(bundle.interactions["user_id"].to_numpy(), minlength=bundle.n_users)
        origin = bundle.meta.get("files", {}).get("interactions")
        span = ""
        if bundle.has_timestamps:
            ts = bundle.interactions["timestamp"].to_numpy()
            span = (f"; timestamps {pd.Timestamp(int(ts.min()), unit='s').isoformat()} .. "
                    f"{pd.Timestamp(int(ts.max()), unit='s').isoformat()}")

        def refuse(stage: str, problem: str) -> DataValidationError:
            need = requirement(stage) if callable(requirement) else f"{type(self.splitter).__name__} made none"
            return DataValidationError(
                f"data set '{bundle.name}'" + (f" ({origin})" if origin else "") + f" is too small for its split: "
                f"{problem}; {need}. It has {bundle.n_users:,} user(s), {bundle.n_items:,} item(s) and "
                f"{len(bundle.interactions):,} interaction(s), at most {int(per_user.max()):,} per user{span}; add "
                "data or change data.split")

        if len(parts.train) == 0:
            raise refuse("train", "the train part is empty")
        for stage in sorted(self._split_parts(), key=("test", "val").index):
            if len(self.eval_dataset(stage)) == 0:
                raise refuse(stage, f"no user has a {stage} item to rank (one not among the items the user "
                                    "trained on)")

    @property
    def has_validation(self) -> bool:
        """Whether the split holds out a validation part (``setup`` made sure it has users to rank); without
        one, nothing is monitored and the last epoch's weights are tested."""
        return "val" in self._split_parts()

    @property
    def dims(self) -> dict[str, int]:
        """Sizes the models take from the data, never from hand-written YAML."""
        assert self.bundle is not None, "call setup() first"
        return {"n_users": self.bundle.n_users, "n_items": self.bundle.n_items}

    def train_data(self) -> RecTrainData:
        assert self.bundle is not None, "call setup() first"
        social = None
        if self.bundle.social is not None:
            social = self.bundle.social[["user_id", "friend_id"]].to_numpy(np.int64)
        text = self.bundle.texts() if self.bundle.item_text is not None else None
        return RecTrainData(train=self.train_csr, item_text=text, social=social, name=self.bundle.name)

    def _loader(self, dataset: Dataset, batch_size: int | None, shuffle: bool) -> DataLoader:
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle,
                          **loader_settings(self.num_workers, self.pin_memory, self.trainer))

    def train_dataloader(self) -> DataLoader:
        batches = PositiveBatches(self.train_csr, self.batch_size, shuffle=True, seed=self.seed,
                                  epoch=(lambda: self.trainer.current_epoch) if self.trainer is not None else None)
        return self._loader(batches, None, shuffle=False)

    def complete(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Finish a loader batch on its device: training batches get ``neg`` ``[B, n_neg]`` (sampled there),
        evaluation batches their ``exclude`` / ``target`` masks. Lightning calls it after moving the batch;
        code that iterates the loaders itself calls it on each batch."""
        if "stage" in batch and "n_target" not in batch:
            return self.eval_dataset(batch["stage"]).complete(batch)
        if "pos" in batch and "neg" not in batch:
            if self.sampler is None:
                self.sampler = NegativeSampler(self.train_csr, self.num_negatives)
            return {**batch, "neg": self.sampler(batch["users"])}
        return batch

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return self.complete(batch) if isinstance(batch, dict) else batch

    @property
    def metric_namespace(self) -> str:
        """'' for full ranking; 'sampled<N>' for sampled evaluation, so its metrics never share a name."""
        return f"sampled{self.eval_negatives}" if self.eval_negatives else ""

    def eval_dataset(self, stage: str) -> EvalDataset:
        """Users of ``stage`` ("val" / "test") with their exclusion masks, targets and candidate items.

        Built once per stage: every validation epoch, the test loop and the run record's user counts share it
        (and so share the sampled negatives under sampled evaluation).
        """
        if stage not in self._eval_sets:
            self._eval_sets[stage] = self._build_eval_dataset(stage)
        return self._eval_sets[stage]

    def _build_eval_dataset(self, stage: str) -> EvalDataset:
        every = (self.train_csr + self.val_csr + self.test_csr).tocsr() if self.eval_negatives else None
        if stage == "val":
            return EvalDataset(self.train_csr, self.val_csr, self.candidates.get("val"), self.eval_negatives,
                               every, self.seed, stage="val")
        seen = (self.train_csr + self.val_csr).tocsr()
        return EvalDataset(seen, self.test_csr, self.candidates.get("test"), self.eval_negatives, every,
                           self.seed + 1, stage="test")

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.eval_dataset("val"), self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.eval_dataset("test"), self.eval_batch_size, shuffle=False)

    def protocol(self) -> dict[str, Any]:
        assert self.bundle is not None, "call setup() first"
        return {
            "task": "ranking",
            "split": self.split_protocol,
            "preprocess": self.preprocess.describe() if self.preprocess is not None else None,
            "data_cache": self.cache_info,
            "eval_negatives": self.eval_negatives,
            "candidates": (f"SAMPLED: each user's held-out items + {self.eval_negatives} unseen items drawn "
                           "uniformly (seeded); " if self.eval_negatives else "")
            + ("held-out items of the split only (cold start); " if self.candidates else "all items; ")
            + "val excludes the user's train items, test excludes train and val items; "
            "held-out items among the excluded ones are not targets",
            "split_sizes": self.split_sizes,
            "n_val_users": len(self.eval_dataset("val")),
            "n_test_users": len(self.eval_dataset("test")),
            "data_fingerprint": self.bundle.fingerprint(),
            "data": self.bundle.summary(),
            "data_warnings": self.bundle.meta.get("warnings", {}),
        }
