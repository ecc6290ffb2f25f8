"""No read-backs from the device in the hot loops: every training step and all but one per evaluation batch.

On a GPU, an operation whose result size or value the host needs (``.item()``, ``bool(t)``, ``nonzero``,
boolean-mask indexing, ``unique``, ``repeat_interleave`` without ``output_size``) waits until the device has
finished all work queued before it, so the host can no longer run ahead and queue the next kernels. Such
operations, and tensors made from host data (``torch.tensor(...)``, a blocking copy to a GPU), are
device-independent names at PyTorch's dispatcher, so this test finds them on CPU: a
``TorchDispatchMode`` sees every aten operation of real Lightning training and validation loops, from the end of
one batch to the end of the next (loading, moving to the device, negative sampling or masks, the step, the
optimizer). Training steps, of recommenders and of forecasting networks, must have none. An evaluation batch has one: ``rank_topk`` reads back whether any row
has a NaN or a tie across the cut, which decides its exact path.
"""

from __future__ import annotations

import collections
import functools
import os
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hydra
import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from torch.utils._python_dispatch import TorchDispatchMode

import ecomlab
from ecomlab.data.rec_datamodule import RecDataModule
from ecomlab.data.splits import RatioSplit
from ecomlab.data.synthetic import SyntheticShop
from ecomlab.models.base import rank_topk
from ecomlab.models.social_gnn import SocialGNN
from ecomlab.models.text_two_tower import TextTwoTower
from ecomlab.tasks.ranking import RankingTask
from ecomlab.train import build_task
from ecomlab.utils import config_dir, instantiate_with_dims

#: operations whose output the host must read from the device before it can go on
READ_BACKS = {"aten::_local_scalar_dense", "aten::item", "aten::is_nonzero", "aten::nonzero", "aten::masked_select",
              "aten::_unique2", "aten::unique_dim", "aten::unique_consecutive", "aten::equal", "aten::bincount",
              "aten::argwhere",
              # a tensor made from host data (torch.tensor(...)): on a GPU a blocking copy from the host
              "aten::lift_fresh"}
#: models whose training steps take a smaller, host-sized form on CPU (no device to wait for) and a fixed-size one
#: elsewhere: audited in the form a GPU runs (the two are tested equal in the models' own tests)
DEVICE_FORMS = {
    "social_gnn_ssl": (SocialGNN, "info_nce"),  # masked [B, B] logits instead of the selected rows
    "social_gnn_xsimgcl": (SocialGNN, "info_nce"),
    "text_two_tower": (TextTwoTower, "towers"),  # every item and history sum instead of the batch's
    "text_two_tower_pretrained": (TextTwoTower, "towers"),
}
#: models whose scoring runs on the host (SciPy sparse products)
HOST_SIZED_SCORING = {"itemknn", "tfidf", "hybrid_content"}
#: models whose scores tie across the cut by design: rank_topk's exact tie path reads back more
TIED_SCORES = {"popularity"}
RANKING_MODELS = sorted(
    p.stem for p in (Path(config_dir()) / "model").glob("*.yaml")
    if OmegaConf.load(p).get("_target_") == "ecomlab.tasks.ranking.RankingTask"
)
#: frames issued by the package itself; a word match ("ecomlab" in the path) would also take this test file and
#: torch's own frames when the checkout (and its .venv) lives in a folder named ecomlab
PACKAGE_DIR = os.path.join(os.path.dirname(os.path.abspath(ecomlab.__file__)), "")
FORECAST_MODELS = sorted(
    p.stem for p in (Path(config_dir()) / "model").glob("*.yaml")
    if OmegaConf.load(p).get("_target_") == "ecomlab.tasks.forecasting.ForecastTask"
)


class ReadBacks(TorchDispatchMode):
    """Counts read-back operations while ``counting``, each with the ecomlab source line that issued it."""

    def __init__(self) -> None:
        super().__init__()
        self.counting = False
        self.seen: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if self.counting and self._reads_back(func, args, kwargs):
            stack = traceback.extract_stack()
            if func.overloadpacket._qualified_op_name == "aten::lift_fresh" and any(
                    "torch/utils/data/" in f.filename for f in stack):
                return func(*args, **kwargs)  # the loader's host-side batch, moved to the device by Lightning
            frames = [f for f in stack if f.filename.startswith(PACKAGE_DIR)]
            where = f"{frames[-1].name} ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else "?"
            self.seen[f"{func.overloadpacket._qualified_op_name} in {where}"] += 1
        return func(*args, **kwargs)

    @staticmethod
    def _reads_back(func: Any, args: tuple, kwargs: dict) -> bool:
        name = func.overloadpacket._qualified_op_name
        if name in READ_BACKS:
            return True
        if name == "aten::repeat_interleave" and func._overloadname in ("Tensor", "self_Tensor"):
            return kwargs.get("output_size") is None  # the output length is the sum of the repeats
        if name in ("aten::index", "aten::index_put", "aten::index_put_") and len(args) > 1:
            return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1] if i is not None)
        return False


class CountBetweenBatches(pl.Callback):
    """Counts from the end of a loop's first batch to the end of its ``batches``-th, so that the count covers
    whole batches (load, transfer, completion, step) and neither the loop's start-up nor its end."""

    def __init__(self, mode: ReadBacks, batches: int) -> None:
        self.mode, self.limit, self.batches = mode, batches, 0

    def _end(self) -> None:
        self.batches += 1
        self.mode.counting = self.batches < self.limit

    def on_train_batch_end(self, *args: Any) -> None:
        self._end()

    def on_validation_batch_end(self, *args: Any) -> None:
        self._end()

    def on_train_epoch_end(self, *args: Any) -> None:
        self.mode.counting = False

    def on_validation_epoch_end(self, *args: Any) -> None:
        self.mode.counting = False


@pytest.fixture(scope="module")
def datamodule() -> RecDataModule:
    dm = RecDataModule(SyntheticShop(n_users=120, n_items=80, seed=0), RatioSplit(seed=0), batch_size=64,
                       eval_batch_size=16, num_negatives=2)
    dm.setup("fit")
    return dm


def _task(compose_cfg, model: str, dm: RecDataModule) -> RankingTask:
    cfg = compose_cfg([f"model={model}", "data=synthetic_shop", "data.source.n_users=120", "data.source.n_items=80"])
    torch.manual_seed(0)
    try:
        net = instantiate_with_dims(cfg.model.net, dm.dims)
        task = hydra.utils.instantiate(cfg.model, net=net)
        task.prepare(dm.train_data())  # a pretrained text encoder loads here
    except ImportError as err:  # an optional extra (e.g. sentence-transformers) not installed
        pytest.skip(f"{model}: {err}")
    return task


@contextmanager
def _counted(batches: int) -> Iterator[tuple[ReadBacks, CountBetweenBatches]]:
    mode = ReadBacks()
    with mode:
        yield mode, CountBetweenBatches(mode, batches)


def _trainer(callback: pl.Callback, **kwargs: Any) -> pl.Trainer:
    return pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, num_sanity_val_steps=0, callbacks=[callback], **kwargs)


def _marked(models: list[str], scored_on_host: set[str]) -> list[Any]:
    return [pytest.param(m, marks=pytest.mark.xfail(strict=True, reason="scores on the host (SciPy)"))
            if m in scored_on_host else m for m in models]


@pytest.mark.parametrize("model", RANKING_MODELS)
def test_training_steps_do_not_read_back_from_the_device(compose_cfg, datamodule: RecDataModule, model: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    task = _task(compose_cfg, model, datamodule)
    if model in DEVICE_FORMS:
        owner, method = DEVICE_FORMS[model]
        monkeypatch.setattr(owner, method, functools.partialmethod(getattr(owner, method), compact=False))
    if not task.trainable:
        pytest.skip(f"{model} is fitted in closed form")
    with _counted(4) as (mode, callback):
        _trainer(callback, max_steps=4, limit_val_batches=0).fit(task, datamodule=datamodule)
    assert callback.batches == 4
    assert not mode.seen, f"{model}: read-backs in 3 training steps: {dict(mode.seen)}"


@pytest.mark.parametrize("model", _marked(RANKING_MODELS, HOST_SIZED_SCORING))
def test_an_evaluation_batch_reads_back_once(compose_cfg, datamodule: RecDataModule, model: str) -> None:
    task = _task(compose_cfg, model, datamodule)
    with _counted(5) as (mode, callback):
        _trainer(callback, limit_val_batches=5).validate(task, datamodule=datamodule, verbose=False)
    assert callback.batches == 5
    where = collections.Counter()
    for key, n in mode.seen.items():
        where[key.split(" (")[0]] += n
    outside = {key: n for key, n in where.items() if not key.endswith(("in rank_topk", "in _members_with_ties"))}
    assert not outside, f"{model}: read-backs outside rank_topk in 4 evaluation batches: {outside}"
    if model not in TIED_SCORES:
        assert where == {"aten::is_nonzero in rank_topk": 4}, (
            f"{model}: expected rank_topk's one read-back in each of 4 evaluation batches; got {dict(mode.seen)}")


@pytest.mark.parametrize("model", FORECAST_MODELS)
def test_forecaster_training_steps_do_not_read_back_from_the_device(compose_cfg, model: str) -> None:
    """The networks' training steps (forecast evaluation computes its metrics on the host by design)."""
    cfg = compose_cfg([f"model={model}", "data=synthetic_sales", "data.source.n_users=60", "data.source.n_items=30",
                       "data.windows_per_epoch=128", "data.batch_size=16"])
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("fit")
    task = build_task(cfg.model, datamodule)
    if not task.trainable:
        pytest.skip(f"{model} is not trained by gradient steps")
    task.prepare(datamodule.train_data())
    with _counted(4) as (mode, callback):
        _trainer(callback, max_steps=4, limit_val_batches=0).fit(task, datamodule=datamodule)
    assert callback.batches == 4
    assert not mode.seen, f"{model}: read-backs in 3 training steps: {dict(mode.seen)}"


def test_the_audit_sees_read_backs() -> None:
    """The mode catches what it is meant to catch (else the tests above could not fail)."""
    x = torch.tensor([3, 0, 2])
    mode = ReadBacks()
    with mode:
        mode.counting = True
        bool(x.any())
        x[x > 0]
        torch.repeat_interleave(torch.arange(3), x)
        torch.repeat_interleave(torch.arange(3), x, output_size=5)  # sized by the caller: no read-back
        rank_topk(torch.rand(4, 10), 3)
    ops = collections.Counter(key.split(" in ")[0] for key in mode.seen.elements())
    assert ops["aten::index"] == 1 and ops["aten::repeat_interleave"] == 1  # the sized one is not counted
    assert sum(ops.values()) == 4  # + bool(x.any()) and rank_topk's check, as is_nonzero or a scalar read
