"""Lightning data module for recommendation: bundle -> split -> CSR matrices -> loaders.

Training batches are ``{"users": [B], "pos": [B], "neg": [B, n_neg]}`` with negatives sampled uniformly
from the items the user has not interacted with in training. Evaluation batches are
``{"users": [B], "exclude": [B, N] bool, "target": [B, N] bool}``: full ranking over all ``N`` items, with
the user's training items (and, at test time, validation items) excluded from the candidates. A held-out
item that is also excluded (a repeat interaction with an item already seen) cannot be ranked, so it is not a
target; users left without targets are not evaluated.

Sampled evaluation (``eval_negatives=N``, the NeuMF paper's protocol): each evaluated user ranks only their
held-out items plus ``N`` items drawn uniformly (seeded, once per stage) from the items the user never
interacted with. Its metrics are logged under their own namespace (``test/sampled100/ndcg@10``) so they are
never mixed with full-ranking numbers.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import scipy.sparse as sp
import torch
from torch.utils.data import DataLoader, Dataset

from ecomlab.data.bundle import BundleSource, DatasetBundle, DataValidationError
from ecomlab.data.cache import load_bundle
from ecomlab.data.preprocess import Preprocess
from ecomlab.models.base import RecTrainData


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


class TripletDataset(Dataset):
    """One example per training interaction; negatives drawn per fetch, so every epoch sees fresh ones."""

    def __init__(self, train: sp.csr_matrix, num_negatives: int) -> None:
        coo = train.tocoo()
        self.users = torch.as_tensor(coo.row, dtype=torch.long)
        self.items = torch.as_tensor(coo.col, dtype=torch.long)
        self.n_items = train.shape[1]
        self.num_negatives = num_negatives
        # Sorted user*N+item keys make "is (u, j) a training positive?" one searchsorted call.
        self.keys = torch.as_tensor(np.sort(coo.row.astype(np.int64) * self.n_items + coo.col))

    def __len__(self) -> int:
        return len(self.users)

    def _is_positive(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        keys = users * self.n_items + items
        pos = torch.searchsorted(self.keys, keys).clamp_max(len(self.keys) - 1)
        return self.keys[pos] == keys

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        users, pos = self.users[idx], self.items[idx]
        rep_users = users.unsqueeze(1).expand(-1, self.num_negatives)  # [B] -> [B, n_neg]
        neg = torch.randint(0, self.n_items, rep_users.shape)
        for _ in range(20):  # rejection sampling; users who bought nearly everything are vanishingly rare
            clash = self._is_positive(rep_users, neg)
            if not clash.any():
                break
            neg[clash] = torch.randint(0, self.n_items, (int(clash.sum()),))
        return {"users": users, "pos": pos, "neg": neg}

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([index]).items()}


def _identity(batch: Any) -> Any:
    return batch


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
    """Users with at least one target item; batches carry dense exclusion and target masks."""

    def __init__(self, exclude: sp.csr_matrix, target: sp.csr_matrix, candidates: np.ndarray | None = None,
                 negatives: int | None = None, seen: sp.csr_matrix | None = None, seed: int = 0) -> None:
        # Targets are held-out items among the candidates: an excluded (already seen) item can never be hit.
        target = (target > 0).astype(np.float32)
        target = sp.csr_matrix(target - target.multiply(exclude > 0))
        self.blocked: np.ndarray | None = None
        if candidates is not None:
            self.blocked = np.ones(target.shape[1], dtype=bool)
            self.blocked[candidates] = False
            target = sp.csr_matrix(target.multiply(~self.blocked[None, :]))
        target.eliminate_zeros()
        self.exclude, self.target = exclude, target
        self.users = np.flatnonzero(np.diff(target.indptr) > 0)
        self.negatives: np.ndarray | None = None
        if negatives:
            every_positive = seen if seen is not None else (exclude + target).tocsr()
            self.negatives = sample_unseen(every_positive, self.users, negatives, seed)  # [U, n]

    def __len__(self) -> int:
        return len(self.users)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        rows = np.asarray(indices)
        users = self.users[rows]
        exclude = self.exclude[users].toarray() > 0  # [B, N]
        if self.blocked is not None:
            exclude |= self.blocked[None, :]  # [B, N] | [1, N] -> [B, N]
        if self.negatives is not None:
            # Sampled protocol: only the user's targets and sampled negatives are candidates.
            exclude[:] = True
            exclude[np.arange(len(users))[:, None], self.negatives[rows]] = False  # [B, n] cells
            exclude &= ~(self.target[users].toarray() > 0)
        return {
            "users": torch.as_tensor(users, dtype=torch.long),
            "exclude": torch.as_tensor(exclude),
            "target": torch.as_tensor(self.target[users].toarray() > 0),  # [B, N]
        }

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([index]).items()}


class RecDataModule(pl.LightningDataModule):
    """Recommendation data: a source (built-in or files), preprocessing, a splitter and loader settings.

    The bundle is loaded through :func:`ecomlab.data.cache.load_bundle`: ``preprocess`` is applied after the
    source and the result is cached under ``cache_dir`` (``None``: no cache) for sources with ``cache_key()``.
    """

    kind = "ranking"


    def __init__(self, source: BundleSource, split: Splitter, batch_size: int = 2048,
                 eval_batch_size: int = 256, num_negatives: int = 1, num_workers: int = 0,
                 preprocess: Preprocess | None = None, cache_dir: str | None = None,
                 eval_negatives: int | None = None, seed: int = 0) -> None:
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
        self.bundle = bundle

    @property
    def has_validation(self) -> bool:
        """Every split of a ranking data set has a validation part."""
        return True

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

    def _loader(self, dataset: Dataset, batch_size: int, shuffle: bool) -> DataLoader:
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=self.num_workers,
                          collate_fn=_identity, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(TripletDataset(self.train_csr, self.num_negatives), self.batch_size, shuffle=True)

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
                               every, self.seed)
        seen = (self.train_csr + self.val_csr).tocsr()
        return EvalDataset(seen, self.test_csr, self.candidates.get("test"), self.eval_negatives, every,
                           self.seed + 1)

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
