"""ecomlab next to RecBole 1.2.1 in one run, on one machine and the identical data partition.

For each data set (LastFM HetRec 2011, MovieLens-small) and model (BPR, NeuMF, LightGCN) both frameworks train
the same number of epochs with the same hyperparameters, select the model on validation NDCG@10, and are
tested with full ranking over all items (K = 10). Measured: seconds per training epoch, seconds per full
evaluation pass, test Recall@10 / NDCG@10, and the ratio ecomlab / RecBole. Writes a Markdown table and a
JSON record (atomically).

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python scripts/bench_recbole.py          # full run (~25 min)
    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_recbole.py --quick            # smoke: 1 epoch, MovieLens
    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_recbole.py --profile-only     # where BPR's epoch goes

RecBole is a benchmark-only dependency (``pip install -e .[bench]``; see experiments/perf/README.md for the
``--no-deps`` install that keeps torch/numpy/scipy/pandas as they are).

Identical data: ``ecomlab-data convert ... to=recbole`` writes the data set as RecBole atomic files, and
this script writes ecomlab's own per-user 80/10/10 split next to it as ``<name>.train/.valid/.test.inter``,
which RecBole reads through ``benchmark_filename``, so both frameworks train and test on the same pairs.
The union of the three split files is checked against the converted ``.inter`` file, and the user, item and
interaction counts each framework sees are compared and written into the table.

Timing, both sides in-process with the same ``torch.set_num_threads``:

* ecomlab: the real ``ecomlab.train.train`` path (Hydra config -> RecDataModule -> RankingTask -> Lightning
  Trainer, checkpointing, CSV logger) with a callback that times each training epoch from its start to the
  end of its last batch (validation and checkpoint writes excluded) and each validation / test pass from
  ``on_*_start`` to ``on_*_end`` (metric computation included, checkpoint loading excluded).
* RecBole: ``Trainer._train_epoch`` and ``Trainer.evaluate`` wrapped by timers (same inclusions).

RecBole 1.2.1 needs three compatibility shims on current NumPy / SciPy / torch, applied here only
(:func:`apply_recbole_shims`): NumPy's removed aliases, ``scipy.sparse.dok_matrix._update`` (removed in
SciPy 1.17, used by its LightGCN), and ``torch.load(weights_only=False)`` for its own pickled checkpoint
(done here by loading the best checkpoint ourselves before ``evaluate(load_best_model=False)``).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import logging
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import scipy.sparse as sp
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from ecomlab.utils import atomic_write_json, atomic_write_text, config_dir

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("bench_recbole")


# --------------------------------------------------------------------------- what is compared
@dataclass(frozen=True)
class ModelSpec:
    """One model in both frameworks, with matching hyperparameters.

    ``recbole_batch_factor``: RecBole counts a pointwise (BCE) training batch in rows, positives and their
    negatives together, whereas ecomlab counts positives; NeuMF's RecBole batch is ``2048 * (1 + n_neg)`` rows
    so that both take the same optimizer steps over the same examples.
    """

    ecomlab_model: str
    ecomlab_overrides: tuple[str, ...]
    recbole_model: str
    recbole_params: dict[str, Any]
    recbole_batch_factor: int = 1
    #: RecBole's eval batch counts user x item pairs; None: the same 256 users per batch as ecomlab
    recbole_eval_pairs: int | None = None


MODELS: dict[str, ModelSpec] = {
    # ecomlab configs/model/bpr.yaml: lr 5e-3, reg 1e-4. RecBole's BPR has no regulariser (documented).
    "bpr": ModelSpec("bpr", ("model.optimizer.lr=5e-3",), "BPR",
                     {"embedding_size": 64, "learning_rate": 5e-3}),
    # NeuMF: GMF 64, MLP embeddings 64 -> hidden 64 -> 32 (ecomlab mlp_layers [128, 64, 32]), no dropout,
    # BCE with one sampled negative per positive, linear layers at PyTorch's default init as RecBole's are.
    # RecBole has no full-sort path for NeuMF: its full ranking scores every user-item pair through the MLP;
    # ~1e6 pairs per evaluation batch keeps memory bounded.
    "neumf": ModelSpec("neumf", ("model.optimizer.lr=1e-3", "model.net.dropout=0.0", "model.net.linear_init=torch"),
                       "NeuMF",
                       {"mf_embedding_size": 64, "mlp_embedding_size": 64, "mlp_hidden_size": [64, 32],
                        "dropout_prob": 0.0, "learning_rate": 1e-3},
                       recbole_batch_factor=2, recbole_eval_pairs=1_000_000),
    # LightGCN: 3 layers, lr 1e-2. ecomlab's regulariser is reg * sum of squared layer-0 norms / B; RecBole's
    # EmbLoss with require_pow is the same sum / B / 2, so its reg_weight is twice ecomlab's.
    "lightgcn": ModelSpec("lightgcn", ("model.optimizer.lr=1e-2", "model.net.n_layers=3",
                                       "model.net.reg_weight=1e-4"), "LightGCN",
                          {"embedding_size": 64, "n_layers": 3, "reg_weight": 2e-4, "require_pow": True,
                           "learning_rate": 1e-2}),
}

#: name in the table -> (ecomlab data config, extra overrides)
DATASETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "lastfm": ("lastfm-hetrec2011", ()),
    "movielens_small": ("movielens_small", ()),
}

TRAIN_BATCH = 2048
EVAL_USERS = 256  # ecomlab's data.eval_batch_size; RecBole's full-sort batch is this many users where possible
K = 10


@dataclass
class SideResult:
    """What one framework measured for one (data set, model)."""

    epoch_seconds: list[float]
    eval_seconds: list[float]
    test: dict[str, float]
    best_val_ndcg: float
    counts: dict[str, int]
    wall_seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"seconds_per_epoch": statistics.median(self.epoch_seconds) if self.epoch_seconds else None,
                "seconds_per_eval_pass": statistics.median(self.eval_seconds) if self.eval_seconds else None,
                "epoch_seconds": self.epoch_seconds, "eval_seconds": self.eval_seconds,
                "test": self.test, "best_val_ndcg@10": self.best_val_ndcg, "counts": self.counts,
                "wall_seconds": self.wall_seconds, **self.extra}


# --------------------------------------------------------------------------- ecomlab side
class EpochTimer(pl.Callback):
    """Seconds of each training epoch (start to end of its last batch) and of each evaluation pass.

    Validation runs inside Lightning's training epoch, after the last batch, and checkpoints are written
    after it; stopping the epoch clock at the last batch keeps both out of the training time. Sanity-check
    passes are not counted. The newest instance is kept in ``EpochTimer.latest`` because Hydra builds it.
    """

    latest: ClassVar[EpochTimer | None] = None

    def __init__(self) -> None:
        self.train_epochs: list[float] = []
        self.val_passes: list[float] = []
        self.test_passes: list[float] = []
        self._epoch_start = self._last_batch_end = self._eval_start = 0.0
        EpochTimer.latest = self

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_start = self._last_batch_end = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._last_batch_end = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.train_epochs.append(self._last_batch_end - self._epoch_start)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._eval_start = time.perf_counter()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.val_passes.append(time.perf_counter() - self._eval_start)

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._eval_start = time.perf_counter()

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.test_passes.append(time.perf_counter() - self._eval_start)


def _target(obj: type) -> str:
    """Hydra ``_target_`` of a class of this script, whether it runs as __main__ or is imported."""
    return f"{obj.__module__}.{obj.__qualname__}"


def compose_train_cfg(data: str, model: str, overrides: Sequence[str], out_dir: Path,
                      data_dir: str, cache_dir: str | None = None) -> DictConfig:
    """The config ``ecomlab-train data=<data> model=<model> <overrides>`` composes, writing into ``out_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=[f"data={data}", f"model={model}", *overrides], return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out_dir)
        cfg.paths.data_dir = data_dir
        cfg.paths.log_dir = str(out_dir / "logs")
        if cache_dir is not None:
            cfg.paths.cache_dir = cache_dir
        del cfg["hydra"]
    GlobalHydra.instance().clear()
    return cfg


def ecomlab_overrides(spec: ModelSpec, epochs: int, val_every: int, seed: int) -> list[str]:
    """Overrides of the timed run: everything as ``ecomlab-train`` runs it, minus progress bars and early
    stopping (both frameworks train the same number of epochs), plus the epoch timer."""
    return [*spec.ecomlab_overrides, f"seed={seed}", f"data.batch_size={TRAIN_BATCH}",
            f"data.eval_batch_size={EVAL_USERS}", "data.num_negatives=1", "model.net.embedding_dim=64",
            f"trainer.max_epochs={epochs}", f"trainer.check_val_every_n_epoch={val_every}",
            "+trainer.enable_progress_bar=false", "callbacks.rich_progress_bar=null",
            "callbacks.early_stopping=null", f"+callbacks.bench_timer._target_={_target(EpochTimer)}",
            f"eval.ks=[{K}]", "eval.print_table=false"]


def run_ecomlab(cfg: DictConfig) -> SideResult:
    """Train and test through ``ecomlab.train.train`` (the ``ecomlab-train`` path) and read the timer."""
    from ecomlab.train import train

    EpochTimer.latest = None
    t0 = time.perf_counter()
    record = train(cfg)
    wall = time.perf_counter() - t0
    timer = EpochTimer.latest
    if timer is None:
        raise RuntimeError("the epoch timer callback was not built; check callbacks.bench_timer in the overrides")
    metrics = record["metrics"]
    protocol = record["protocol"]
    sizes = protocol["split_sizes"]
    data = protocol["data"]
    counts = {"users": int(data["n_users"]), "items": int(data["n_items"]), "train": int(sizes["train"]),
              "valid": int(sizes["val"]), "test": int(sizes["test"]),
              "eval_users_valid": int(protocol["n_val_users"]), "eval_users_test": int(protocol["n_test_users"])}
    return SideResult(epoch_seconds=timer.train_epochs, eval_seconds=timer.val_passes + timer.test_passes,
                      test={"recall@10": metrics[f"test/recall@{K}"], "ndcg@10": metrics[f"test/ndcg@{K}"]},
                      best_val_ndcg=metrics[f"val/ndcg@{K}"], counts=counts, wall_seconds=wall,
                      extra={"val_pass_seconds": timer.val_passes, "test_pass_seconds": timer.test_passes})


# --------------------------------------------------------------------------- identical data
def convert_with_cli(data: str, out: Path, name: str, data_dir: str, cache_dir: str) -> Path:
    """``ecomlab-data convert data=<data> to=recbole out=<out> name=<name>``; returns the ``.inter`` path."""
    cli = Path(sys.executable).with_name("ecomlab-data")
    cmd = [str(cli), "convert", f"data={data}", "to=recbole", f"out={out}", f"name={name}",
           f"paths.data_dir={data_dir}", f"paths.cache_dir={cache_dir}", "+force=true",
           f"hydra.run.dir={out.parent / ('.convert-' + name)}"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return out / f"{name}.inter"


def write_split_files(cfg: DictConfig, out: Path, name: str) -> tuple[dict[str, int], dict[str, int]]:
    """ecomlab's own train/valid/test partition as ``<name>.{train,valid,test}.inter`` (raw ids, as the
    converter writes them); returns the interactions per file and the data module's ``dims``."""
    import hydra

    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("fit")
    bundle = datamodule.bundle
    sizes: dict[str, int] = {}
    for part, matrix in (("train", datamodule.train_csr), ("valid", datamodule.val_csr),
                         ("test", datamodule.test_csr)):
        coo = matrix.tocoo()
        frame = pd.DataFrame({"user_id": bundle.user_map.to_raw(coo.row.astype(np.int64)),
                              "item_id": bundle.item_map.to_raw(coo.col.astype(np.int64))})
        body = frame.to_csv(sep="\t", index=False, header=False, lineterminator="\n")
        atomic_write_text(out / f"{name}.{part}.inter", "user_id:token\titem_id:token\n" + body)
        sizes[part] = len(frame)
    return sizes, datamodule.dims


def check_split_matches_export(inter_path: Path, name: str) -> None:
    """The three split files hold exactly the converted ``.inter`` file's user-item pairs, each once."""
    def pairs(path: Path) -> pd.DataFrame:
        frame = pd.read_csv(path, sep="\t", dtype=str)
        frame.columns = [c.split(":")[0] for c in frame.columns]
        return frame[["user_id", "item_id"]]

    full = pairs(inter_path)
    parts = pd.concat([pairs(inter_path.with_name(f"{name}.{p}.inter")) for p in ("train", "valid", "test")])
    if parts.duplicated().any():
        raise ValueError(f"{inter_path.parent}: a user-item pair appears in two of the split files")
    merged = full.drop_duplicates().merge(parts, how="outer", indicator=True)
    if (merged["_merge"] != "both").any():
        bad = merged[merged["_merge"] != "both"].head(3).to_dict("records")
        raise ValueError(f"{inter_path}: the split files and the converted data differ, e.g. {bad}")


# --------------------------------------------------------------------------- RecBole side
def apply_recbole_shims() -> None:
    """Make RecBole 1.2.1 importable and runnable on NumPy 2 / SciPy >= 1.17, for this process only."""
    for alias, target in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
        if alias not in np.__dict__:
            setattr(np, alias, target)
    if not hasattr(sp.dok_matrix, "_update"):
        # RecBole's LightGCN fills its adjacency with dok._update(dict); SciPy 1.17 keeps entries in _dict.
        def _update(self: sp.dok_matrix, data: dict[tuple[int, int], float]) -> None:
            self._dict.update(data)

        sp.dok_matrix._update = _update


def recbole_available() -> bool:
    try:
        apply_recbole_shims()
        import recbole  # noqa: F401
    except ImportError:
        return False
    return True


def recbole_config(spec: ModelSpec, data_path: Path, name: str, n_items: int, epochs: int, val_every: int,
                   seed: int, workdir: Path) -> dict[str, Any]:
    eval_pairs = spec.recbole_eval_pairs or EVAL_USERS * (n_items + 1)  # +1: RecBole's padding item 0
    return {
        "data_path": str(data_path), "benchmark_filename": ["train", "valid", "test"],
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "load_col": {"inter": ["user_id", "item_id"]},
        "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "group_by": "user", "order": "RO", "mode": "full"},
        "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1, "alpha": 1.0, "dynamic": False,
                                  "candidate_num": 0},
        "epochs": epochs, "eval_step": val_every, "stopping_step": 10**6,
        "train_batch_size": TRAIN_BATCH * spec.recbole_batch_factor, "eval_batch_size": eval_pairs,
        # the six metrics ecomlab's RankingTask computes in every pass, so both evaluations do the same work
        "metrics": ["Recall", "NDCG", "Hit", "MRR", "Precision", "MAP"], "topk": [K],
        "valid_metric": f"NDCG@{K}",
        "use_gpu": False, "seed": seed, "reproducibility": True, "show_progress": False, "worker": 0,
        "checkpoint_dir": str(workdir / "saved"), "state": "WARNING", "log_wandb": False,
        **spec.recbole_params,
    }


def run_recbole(spec: ModelSpec, data_path: Path, name: str, n_items: int, epochs: int, val_every: int,
                seed: int, workdir: Path) -> SideResult:
    """Train RecBole's model on the exported split files and test its best validation checkpoint."""
    apply_recbole_shims()
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    t0 = time.perf_counter()
    workdir.mkdir(parents=True, exist_ok=True)
    # RecBole writes tensorboard logs relative to the working directory.
    with contextlib.chdir(workdir):
        config = Config(model=spec.recbole_model, dataset=name,
                        config_dict=recbole_config(spec, data_path, name, n_items, epochs, val_every, seed,
                                                   workdir))
        init_seed(config["seed"], config["reproducibility"])
        dataset = create_dataset(config)
        train_data, valid_data, test_data = data_preparation(config, dataset)
        init_seed(config["seed"], config["reproducibility"])
        model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
        epoch_seconds: list[float] = []
        eval_seconds: list[float] = []
        trainer._train_epoch = _timed(trainer._train_epoch, epoch_seconds)
        trainer.evaluate = _timed(trainer.evaluate, eval_seconds)
        best_valid, _ = trainer.fit(train_data, valid_data, verbose=False, saved=True, show_progress=False)
        # Shim 3: RecBole's checkpoint pickles its Config, so it loads only with weights_only=False; it is the
        # file this process just wrote.
        checkpoint = torch.load(trainer.saved_model_file, map_location="cpu", weights_only=False)
        model.load_state_dict(checkpoint["state_dict"])
        model.load_other_parameter(checkpoint.get("other_parameter"))
        test = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
    counts = {"users": int(dataset.user_num - 1), "items": int(dataset.item_num - 1),
              "train": int(train_data._dataset.inter_num), "valid": int(valid_data._dataset.inter_num),
              "test": int(test_data._dataset.inter_num)}
    return SideResult(epoch_seconds=epoch_seconds, eval_seconds=eval_seconds,
                      test={"recall@10": float(test[f"recall@{K}"]), "ndcg@10": float(test[f"ndcg@{K}"])},
                      best_val_ndcg=float(best_valid), counts=counts, wall_seconds=time.perf_counter() - t0,
                      extra={"eval_batch_pairs": int(config["eval_batch_size"]),
                             "train_batch_rows": int(config["train_batch_size"])})


def _timed(fn: Callable[..., Any], into: list[float]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        into.append(time.perf_counter() - t0)
        return out

    return wrapper


# --------------------------------------------------------------------------- one comparison
@dataclass
class Plan:
    datasets: list[str]
    models: list[str]
    epochs: int
    val_every: int
    neumf_val_every: int
    seed: int
    threads: int
    data_dir: str
    cache_dir: str
    #: appended to ecomlab's overrides (e.g. ``compile=true``); the tables say so
    extra_overrides: tuple[str, ...] = ()


def run_plan(plan: Plan, workdir: Path) -> list[dict[str, Any]]:
    """Every (data set, model) in both frameworks, ecomlab first, one after the other."""
    rows: list[dict[str, Any]] = []
    for data_key in plan.datasets:
        data, data_overrides = DATASETS[data_key]
        export = workdir / "recbole_data"
        name = data_key
        cfg0 = compose_train_cfg(data, "bpr", [*data_overrides, f"seed={plan.seed}"], workdir / "unused",
                                 plan.data_dir, plan.cache_dir)
        inter = convert_with_cli(data, export / name, name, plan.data_dir, plan.cache_dir)
        split_sizes, dims = write_split_files(cfg0, export / name, name)
        check_split_matches_export(inter, name)
        n_items = int(dims["n_items"])
        for model_key in plan.models:
            spec = MODELS[model_key]
            val_every = plan.neumf_val_every if model_key == "neumf" else plan.val_every
            val_every = min(val_every, plan.epochs)
            log.info("%s / %s: ecomlab", data_key, model_key)
            cfg = compose_train_cfg(data, spec.ecomlab_model,
                                    [*data_overrides, *ecomlab_overrides(spec, plan.epochs, val_every, plan.seed),
                                     *plan.extra_overrides],
                                    workdir / "ecomlab" / data_key / model_key, plan.data_dir, plan.cache_dir)
            ours = run_ecomlab(cfg)
            log.info("%s / %s: RecBole", data_key, model_key)
            theirs = run_recbole(spec, export, name, n_items, plan.epochs, val_every, plan.seed,
                                 workdir / "recbole" / data_key / model_key)
            rows.append({"data": data_key, "model": model_key, "seed": plan.seed, "epochs": plan.epochs,
                         "val_every": val_every,
                         "split_files": split_sizes, "ecomlab": ours.summary(), "recbole": theirs.summary(),
                         "same_counts": same_counts(ours.counts, theirs.counts)})
            log.info("%s", format_row(rows[-1]))
    return rows


def same_counts(ours: dict[str, int], theirs: dict[str, int]) -> bool:
    return all(ours[k] == theirs[k] for k in ("users", "items", "train", "valid", "test"))


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _f(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def format_row(row: dict[str, Any]) -> str:
    ours, theirs = row["ecomlab"], row["recbole"]
    e_ratio = ratio(ours["seconds_per_epoch"], theirs["seconds_per_epoch"])
    v_ratio = ratio(ours["seconds_per_eval_pass"], theirs["seconds_per_eval_pass"])
    target = (e_ratio is not None and v_ratio is not None and e_ratio <= 0.5 and v_ratio <= 0.5
              and ours["test"]["ndcg@10"] >= theirs["test"]["ndcg@10"])
    return (f"| {row['data']} | {row['model']} | {_f(ours['seconds_per_epoch'])} | "
            f"{_f(theirs['seconds_per_epoch'])} | {_f(e_ratio)} | {_f(ours['seconds_per_eval_pass'])} | "
            f"{_f(theirs['seconds_per_eval_pass'])} | {_f(v_ratio)} | {ours['test']['recall@10']:.4f} | "
            f"{theirs['test']['recall@10']:.4f} | {ours['test']['ndcg@10']:.4f} | "
            f"{theirs['test']['ndcg@10']:.4f} | {'yes' if target else 'no'} |")


def ecomlab_source() -> str:
    """Which ecomlab code was measured: the package's folder, and the git commit when it is this checkout."""
    import ecomlab

    where = Path(ecomlab.__file__).resolve().parent
    if not where.is_relative_to(ROOT):
        return f"ecomlab {ecomlab.__version__} imported from {where} ({os.environ.get('ECOMLAB_BENCH_SOURCE', 'unlabelled')})"
    def git(*cmd: str) -> str:
        return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    dirty = git("status", "--porcelain", "--", "src/ecomlab", "configs")
    return (f"ecomlab {ecomlab.__version__} from this checkout at {git('rev-parse', '--short', 'HEAD')}"
            f"{' with uncommitted changes in src/ecomlab or configs' if dirty else ''}")


def format_min_row(row: dict[str, Any]) -> str:
    ours, theirs = row["ecomlab"], row["recbole"]
    cells = [row["data"], row["model"]]
    for key in ("epoch_seconds", "eval_seconds"):
        a = min(ours[key]) if ours[key] else None
        b = min(theirs[key]) if theirs[key] else None
        cells += [_f(a), _f(b), _f(ratio(a, b))]
    return "| " + " | ".join(cells) + " |"


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}, "
            f"numpy {np.__version__}")


def _seed_of(row: dict[str, Any], meta: dict[str, Any]) -> int:
    return int(row.get("seed", meta.get("seed", 0)))  # records written before --seeds had one seed in meta


def _spread(values: list[float | None]) -> str:
    """``median [min, max]`` of the values that exist."""
    xs = [x for x in values if x is not None]
    return f"{statistics.median(xs):.2f} [{min(xs):.2f}, {max(xs):.2f}]" if xs else "n/a"


def seeds_table(rows: list[dict[str, Any]], meta: dict[str, Any]) -> list[str]:
    """Per (data set, model) over the seeds: the paired NDCG@10 difference with a t interval, and the spread of
    both time ratios. Empty for a single seed."""
    seeds = sorted({_seed_of(r, meta) for r in rows})
    if len(seeds) < 2:
        return []
    from scipy import stats

    lines = [
        "## Across seeds",
        "",
        f"The same comparison repeated with seeds {', '.join(map(str, seeds))} (split, initialisation and "
        "sampling all change with the seed; each seed's pair ran back to back). NDCG@10 difference = ecomlab - "
        "RecBole on the same split, mean and 95% paired t interval over the seeds; verdict: *equal* when the "
        "interval spans 0, *better* / *worse* when it lies above / below. Ratios: median [min, max] over the "
        "seeds.",
        "",
        "| data | model | seeds | NDCG@10 ecomlab | NDCG@10 RecBole | difference [95% CI] | ecomlab >= RecBole "
        "| NDCG verdict | epoch ratio | eval ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    pairs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        pairs.setdefault((r["data"], r["model"]), []).append(r)
    for (data, model), group in pairs.items():
        ours = np.array([r["ecomlab"]["test"]["ndcg@10"] for r in group])
        theirs = np.array([r["recbole"]["test"]["ndcg@10"] for r in group])
        diff = ours - theirs
        n = len(diff)
        if n > 1:
            half = float(stats.t.ppf(0.975, n - 1) * diff.std(ddof=1) / np.sqrt(n))
        else:
            half = float("nan")
        low, high = diff.mean() - half, diff.mean() + half
        verdict = "better" if low > 0 else "worse" if high < 0 else "equal" if n > 1 else "-"
        e = [ratio(r["ecomlab"]["seconds_per_epoch"], r["recbole"]["seconds_per_epoch"]) for r in group]
        v = [ratio(r["ecomlab"]["seconds_per_eval_pass"], r["recbole"]["seconds_per_eval_pass"]) for r in group]
        lines.append(
            f"| {data} | {model} | {n} | {ours.mean():.4f} ± {ours.std(ddof=1) if n > 1 else 0:.4f} | "
            f"{theirs.mean():.4f} ± {theirs.std(ddof=1) if n > 1 else 0:.4f} | {diff.mean():+.4f} "
            f"[{low:+.4f}, {high:+.4f}] | {int((diff >= 0).sum())} of {n} | {verdict} | {_spread(e)} | {_spread(v)} |")
    return [*lines, ""]


def _extra_overrides_note(rows: list[dict[str, Any]], meta: dict[str, Any]) -> list[str]:
    """A paragraph naming ecomlab's extra overrides and its first epochs (where ``compile=true`` compiles),
    which the medians leave out; nothing without extra overrides."""
    extra = meta.get("ecomlab_extra_overrides") or []
    if not extra:
        return []
    lines = [f"**ecomlab ran with the extra overrides `{' '.join(extra)}`.** A median over the epochs barely "
             "feels one slow first epoch (compilation, with `compile=true`), so here are the first epoch and the "
             "sum over all epochs of each side:", "",
             "| data | model | seed | first epoch ecomlab | first epoch RecBole | all epochs ecomlab | all epochs "
             "RecBole | ratio of the sums |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ours, theirs = r["ecomlab"]["epoch_seconds"], r["recbole"]["epoch_seconds"]
        if ours and theirs:
            lines.append(f"| {r['data']} | {r['model']} | {_seed_of(r, meta)} | {ours[0]:.2f} | {theirs[0]:.2f} | "
                         f"{sum(ours):.2f} | {sum(theirs):.2f} | {sum(ours) / sum(theirs):.2f} |")
    return [*lines, ""]


def render(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    every = rows
    first = _seed_of(rows[0], meta) if rows else 0
    rows = [r for r in rows if _seed_of(r, meta) == first]
    lines = [
        "# ecomlab vs RecBole 1.2.1: seconds per epoch, per evaluation pass, and test metrics",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"Code: {meta['ecomlab_source']}; RecBole 1.2.1.",
        "",
        f"Machine: {meta['machine']}; torch threads {meta['threads']} for both frameworks "
        f"(OMP_NUM_THREADS={meta['omp_num_threads']}); 1-minute load average {meta['load_start']:.2f} at the "
        f"start and {meta['load_end']:.2f} at the end ("
        + ("other jobs shared the 2 cores, so absolute seconds are inflated; "
           if max(meta["load_start"], meta["load_end"]) > 1.5 else "the benchmark itself accounts for 1; ")
        + f"each pair ran back to back). Finished {meta['finished']}, {meta['wall_minutes']:.1f} min.",
        "",
        "Protocol (both): ecomlab's per-user random 80/10/10 split (seed "
        f"{first}), exported as RecBole `benchmark_filename` files, so both see the identical "
        f"partition; full ranking over all items excluding the user's train (test: train + valid) items; K = {K}; "
        f"embedding 64; batch {TRAIN_BATCH} positives with 1 uniform negative each; the same epochs, "
        "validation NDCG@10 every `val_every` epochs picks the checkpoint that is tested. Seconds are medians "
        "over the epochs and over all evaluation passes (validation passes + the test pass); ratio = "
        "ecomlab / RecBole. Target: ratio <= 0.5 for both times at NDCG@10 >= RecBole's.",
        "",
        *_extra_overrides_note(every, meta),
        "| data | model | s/epoch ecomlab | s/epoch RecBole | ratio | s/eval ecomlab | s/eval RecBole | ratio "
        "| Recall@10 ecomlab | Recall@10 RecBole | NDCG@10 ecomlab | NDCG@10 RecBole | target met |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *[format_row(r) for r in rows],
        "",
        *seeds_table(every, meta),
        "## Fastest epoch and pass",
        "",
        "On a shared machine single epochs are slowed at random by other jobs; the fastest epoch and evaluation "
        "pass of each side are then the least disturbed estimate of its speed.",
        "",
        "| data | model | min s/epoch ecomlab | min s/epoch RecBole | ratio | min s/eval ecomlab "
        "| min s/eval RecBole | ratio |",
        "|---|---|---|---|---|---|---|---|",
        *[format_min_row(r) for r in rows],
        "",
        "## Same data in both",
        "",
        "Users, items and train / valid / test interactions as each framework counted them after loading.",
        "",
        "| data | model | epochs | val every | ecomlab users / items / train / valid / test | RecBole | equal |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        c1, c2 = r["ecomlab"]["counts"], r["recbole"]["counts"]
        fmt = " / ".join(f"{c1[k]:,}" for k in ("users", "items", "train", "valid", "test"))
        fmt2 = " / ".join(f"{c2[k]:,}" for k in ("users", "items", "train", "valid", "test"))
        lines.append(f"| {r['data']} | {r['model']} | {r['epochs']} | {r['val_every']} | {fmt} | {fmt2} | "
                     f"{'yes' if r['same_counts'] else 'NO'} |")
    lines += [
        "",
        "## Settings that differ by necessity",
        "",
        "- Evaluation batches: ecomlab scores 256 users per batch; RecBole's full-sort batch is "
        "256 x (items + 1) user-item pairs (256 users) for BPR and LightGCN, and about 1,000,000 pairs for "
        "NeuMF, which RecBole scores pair by pair through the MLP (no full-sort path; one large batch runs "
        "out of memory).",
        "- NeuMF training batch: RecBole counts a pointwise batch in rows (positives + negatives), so its "
        f"`train_batch_size` is {2 * TRAIN_BATCH} to take the same {TRAIN_BATCH} positives + "
        f"{TRAIN_BATCH} negatives per step as ecomlab.",
        "- Regularisers: BPR: ecomlab adds 1e-4 x squared L2 of the batch embeddings, RecBole's BPR has "
        "none. LightGCN: the same objective (RecBole reg_weight 2e-4 with `require_pow`, which halves it).",
        "- Learning rates are ecomlab's model configs' (BPR 5e-3, NeuMF 1e-3, LightGCN 1e-2) in both.",
        "- NeuMF's linear layers start from PyTorch's default init in both (`model.net.linear_init=torch`; "
        "ecomlab's default is Glorot, the paper code's, which scored lower here and higher in the paper's "
        "4-negative setting: `experiments/neumf_init`).",
        "- Both compute the same six metrics at K = 10 in every pass (Recall, NDCG, Hit, MRR, Precision, MAP; "
        "ecomlab also item coverage).",
        "- ecomlab runs the whole `ecomlab.train.train` path (Lightning Trainer, checkpoints, CSV logger); "
        "RecBole its `Trainer.fit` (checkpoints, tensorboard writer).",
        "",
        f"Raw numbers (every epoch and pass): `{meta['json_name']}`.",
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- profile
#: (label, predicate on a cProfile key (file, line, function)); cumulative seconds of the matches. Unindented
#: parts do not overlap (Lightning runs training_step and backward inside the optimizer's closure, so the
#: optimizer's share is its update function alone); indented ones are inside the part above them.
PROFILE_PARTS: list[tuple[str, Callable[[tuple[str, int, str]], bool]]] = [
    ("DataLoader next batch (sampler + fetch + collate)",
     lambda k: k[0].endswith("torch/utils/data/dataloader.py") and k[2] == "__next__"),
    ("  TripletDataset.__getitems__ (index gather + negative sampling)",
     lambda k: "ecomlab/data/rec_datamodule.py" in k[0] and k[2] == "__getitems__"),
    ("    negative rejection check (_is_positive, searchsorted)",
     lambda k: "ecomlab/data/rec_datamodule.py" in k[0] and k[2] == "_is_positive"),
    ("  PositiveBatches.__iter__ (slices of one permutation)",
     lambda k: "ecomlab/data/rec_datamodule.py" in k[0] and k[2] == "__iter__"),
    ("  RandomSampler (shuffled indices)",
     lambda k: k[0].endswith("torch/utils/data/sampler.py") and k[2] == "__iter__"),
    ("batch to device + on_after_batch_transfer (negatives / masks built on the batch's device)",
     lambda k: k[0].endswith("pytorch_lightning/core/module.py") and k[2] == "_apply_batch_transfer_handler"),
    ("  NegativeSampler.__call__",
     lambda k: "ecomlab/data/rec_datamodule.py" in k[0] and k[2] == "__call__"),
    ("training_step (forward + loss + self.log)",
     lambda k: "ecomlab/tasks/ranking.py" in k[0] and k[2] == "training_step"),
    ("  net.loss (embedding lookups + BPR loss + L2)",
     lambda k: "ecomlab/models/" in k[0] and k[2] == "loss"),
    ("  LightningModule.log (train/loss)",
     lambda k: k[0].endswith("pytorch_lightning/core/module.py") and k[2] == "log"),
    ("backward (loss.backward)", lambda k: k[0].endswith("torch/_tensor.py") and k[2] == "backward"),
    ("zero_grad", lambda k: k[0].endswith("torch/optim/optimizer.py") and k[2] == "zero_grad"),
    ("Adam update (torch.optim.adam.adam, dense over all embedding rows)",
     lambda k: k[0].endswith("torch/optim/adam.py") and k[2] == "adam"),
]


def _built_run(data: str, model: str, epochs: int, seed: int, out_dir: Path, data_dir: str,
               cache_dir: str) -> tuple[DictConfig, Any, Any]:
    """``(cfg, data module, task)`` as ``ecomlab-train`` builds them for the timed runs (``epochs`` epochs, no
    validation inside), the data set up and the task prepared on its training data."""
    import hydra

    from ecomlab.train import build_task

    cfg = compose_train_cfg(data, model, [*ecomlab_overrides(MODELS[model], epochs, epochs + 1, seed), "logger=csv"],
                            out_dir, data_dir, cache_dir)
    pl.seed_everything(seed, workers=True)
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("fit")
    task = build_task(cfg.model, datamodule)
    task.prepare(datamodule.train_data())
    return cfg, datamodule, task


def profile_bpr_epoch(data: str, data_dir: str, cache_dir: str, workdir: Path, seed: int = 0,
                      epochs: int = 2) -> dict[str, Any]:
    """cProfile and torch.profiler of ``epochs`` BPR training epochs through ecomlab's Trainer (no validation);
    returns seconds by part and the top torch ops."""
    import hydra

    cfg, datamodule, task = _built_run(data, "bpr", epochs, seed, workdir / "profile", data_dir, cache_dir)
    timer = EpochTimer()
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=epochs, check_val_every_n_epoch=epochs + 1,
                         num_sanity_val_steps=0, limit_val_batches=0, enable_progress_bar=False,
                         enable_checkpointing=False, logger=hydra.utils.instantiate(cfg.logger.csv),
                         callbacks=[timer], enable_model_summary=False, log_every_n_steps=10)
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    trainer.fit(task, datamodule=datamodule)
    profiler.disable()
    fit_seconds = time.perf_counter() - t0
    stats = pstats.Stats(profiler)
    parts = []
    for label, match in PROFILE_PARTS:
        found = [v[3] for k, v in stats.stats.items() if match(k)]  # v[3]: cumulative time
        if found:  # parts of the other data path (before / after device-side batches) are absent
            parts.append({"part": label, "seconds": sum(found) / epochs})
    epoch = statistics.mean(timer.train_epochs)
    top_level = [p["seconds"] for p in parts if not p["part"].startswith(" ")]
    parts.append({"part": "rest: Lightning loop, hooks, logging, callbacks (epoch - parts above)",
                  "seconds": epoch - sum(top_level)})
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(15)
    # torch.profiler on one more epoch: which tensor ops the time is spent in
    trainer2 = pl.Trainer(accelerator="cpu", devices=1, max_epochs=1, limit_val_batches=0,
                          num_sanity_val_steps=0, enable_progress_bar=False, enable_checkpointing=False,
                          logger=False, enable_model_summary=False)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        trainer2.fit(task, datamodule=datamodule)
    ops = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)
    return {"data": data, "epochs": epochs, "seconds_per_epoch": epoch, "epoch_seconds": timer.train_epochs,
            "fit_seconds_profiled": fit_seconds, "batches_per_epoch": trainer.num_training_batches,
            "parts": parts, "cprofile_top_tottime": text.getvalue(), "torch_ops": ops}


def bare_loop_epochs(data: str, model: str, data_dir: str, cache_dir: str, workdir: Path, seed: int = 0,
                     epochs: int = 10, compiled: bool = False, fresh: bool = False) -> dict[str, Any]:
    """Seconds per epoch of the bare PyTorch step (``net.loss`` -> ``zero_grad`` -> ``backward`` -> optimizer
    step, the model config's optimizer) over one epoch's batches sampled beforehand: no Lightning, no loader, no
    negative sampling. What is left once the framework costs nothing; the median over ``epochs`` epochs.
    ``compiled``: the loss through ``torch.compile`` (what ``compile=true`` does), its compilation in the first,
    uncounted epoch (reported as ``first_epoch_seconds``). ``fresh``: every epoch draws its batches anew through
    the data module's loader and negative sampler (new order, new negatives, as training needs), still without
    Lightning."""
    _, datamodule, task = _built_run(data, model, 1, seed, workdir / f"bare_{model}", data_dir, cache_dir)
    optimizer = task.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    loader = datamodule.train_dataloader()  # iterated again per epoch: a new order each time
    batches = [datamodule.complete(b) for b in loader]
    task.net.train()
    loss_fn = torch.compile(task.net.loss) if compiled else task.net.loss
    seconds = []
    for _ in range(epochs + 1):  # the first epoch warms up allocator and caches (and compiles); not counted
        t0 = time.perf_counter()
        for batch in (map(datamodule.complete, loader) if fresh else batches):
            loss = loss_fn(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - t0)
    return {"model": model, "data": data, "optimizer": type(optimizer).__name__, "compiled": compiled, "fresh": fresh,
            "seconds_per_epoch": statistics.median(seconds[1:]), "epoch_seconds": seconds[1:],
            "first_epoch_seconds": seconds[0], "batches_per_epoch": len(batches)}


def render_profile(prof: dict[str, Any], meta: dict[str, Any]) -> str:
    epoch = prof["seconds_per_epoch"]
    lines = [
        f"# Where ecomlab's BPR training epoch goes ({prof['data']})",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"Code: {meta['ecomlab_source']}.",
        "",
        f"Machine: {meta['machine']}; torch threads {meta['threads']}; 1-minute load average "
        f"{meta['load_end']:.2f}. BPR (embedding 64, batch {TRAIN_BATCH}, 1 negative) trained "
        f"{prof['epochs']} epochs through a Lightning Trainer exactly as `ecomlab-train` builds the task and data "
        f"module (no validation, no checkpoints), under cProfile; {prof['batches_per_epoch']} batches per epoch. "
        f"Epoch time under cProfile: {epoch:.3f} s (cProfile adds overhead per Python call, so Python-heavy "
        "parts look larger than they are unprofiled). Seconds are cumulative (a part includes the indented "
        "parts below it) and per epoch.",
        "",
        "| part | seconds / epoch | share of epoch |",
        "|---|---|---|",
        *[f"| {p['part'].replace('  ', '&nbsp;&nbsp;')} | {p['seconds']:.3f} | {p['seconds'] / epoch:.0%} |"
          for p in prof["parts"]],
        "",
        *_render_bare(prof.get("bare", []), meta.get("recbole_epoch", {}), prof.get("bare_eval", []),
                      meta.get("recbole_eval", {})),
        "## cProfile: top functions by own time (both epochs)",
        "",
        "```",
        prof["cprofile_top_tottime"].strip(),
        "```",
        "",
        "## torch.profiler: top CPU ops by self time (one more epoch, not under cProfile)",
        "",
        "```",
        prof["torch_ops"].strip(),
        "```",
        "",
    ]
    return "\n".join(lines)


def bare_eval_pass(data: str, model: str, data_dir: str, cache_dir: str, workdir: Path, seed: int = 0,
                   passes: int = 10) -> dict[str, Any]:
    """Seconds of the bare full-ranking pass over the validation users: the network's score matrix, the
    training items masked, ``torch.topk`` (what RecBole's full-sort evaluation computes before its metrics),
    batches of ``EVAL_USERS`` users built beforehand; no metrics, no Lightning. Median over ``passes``."""
    _, datamodule, task = _built_run(data, model, 1, seed, workdir / f"bare_eval_{model}", data_dir, cache_dir)
    task.net.eval()
    batches = [datamodule.complete(b) for b in datamodule.val_dataloader()]
    seconds = []
    with torch.inference_mode():
        for _ in range(passes + 1):  # the first pass warms up; not counted
            t0 = time.perf_counter()
            for batch in batches:
                scores = task.net(batch["users"])  # [B, N]
                scores[batch["exclude_at"]] = float("-inf")  # RecBole's `scores[history_index] = -inf`
                torch.topk(scores, K, dim=1)
            seconds.append(time.perf_counter() - t0)
    return {"model": model, "data": data, "seconds_per_pass": statistics.median(seconds[1:]),
            "pass_seconds": seconds[1:], "users": sum(len(b["users"]) for b in batches)}


def _recbole_seconds(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """RecBole's median epoch and evaluation-pass seconds by ``"<data config>/<model>"`` (the first seed's)."""
    rows = [r for r in rows if r.get("seed", 0) == rows[0].get("seed", 0)] if rows else rows
    key = [f"{DATASETS[r['data']][0]}/{r['model']}" for r in rows]
    return {"recbole_epoch": {k: r["recbole"]["seconds_per_epoch"] for k, r in zip(key, rows, strict=True)},
            "recbole_eval": {k: r["recbole"]["seconds_per_eval_pass"] for k, r in zip(key, rows, strict=True)}}


def _render_bare(bare: list[dict[str, Any]], recbole_epoch: dict[str, float],
                 bare_eval: list[dict[str, Any]] | None = None, recbole_eval: dict[str, float] | None = None) -> list[str]:
    if not bare and not bare_eval:
        return []
    lines = [
        "## The same steps without the framework",
        "",
        "The bare PyTorch step loop (`net.loss`, `zero_grad`, `backward`, optimizer step; the model config's "
        "optimizer) over one epoch's batches sampled beforehand: no Lightning, no data loader, no negative "
        "sampling. Median over 10 epochs after one warm-up epoch. RecBole's epoch is the median in the "
        "comparison table; a ratio above 0.5 here means that halving RecBole's epoch needs a cheaper step than "
        "plain PyTorch's, whatever the framework around it costs. The `torch.compile` rows put the loss through "
        "`torch.compile` (ecomlab's `compile=true`); their first epoch, not counted, includes the compilation. "
        "Batches *fixed*: one epoch's batches sampled once and replayed (the step alone); *fresh*: every epoch "
        "draws new ones through the loader and the negative sampler, as training must (RecBole's epoch samples "
        "too).",
        "",
        "| data | model | optimizer | loss | batches | bare s/epoch | first epoch s | RecBole s/epoch "
        "| bare / RecBole |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for b in bare:
        theirs = recbole_epoch.get(f"{b['data']}/{b['model']}")
        ratio = f"{b['seconds_per_epoch'] / theirs:.2f}" if theirs else "-"
        theirs_text = f"{theirs:.3f}" if theirs else "- (not in this run)"
        first = b.get("first_epoch_seconds")
        lines.append(f"| {b['data']} | {b['model']} | {b['optimizer']} | "
                     f"{'torch.compile' if b.get('compiled') else 'eager'} | "
                     f"{'fresh' if b.get('fresh') else 'fixed'} | {b['seconds_per_epoch']:.3f} | "
                     f"{'-' if first is None else f'{first:.2f}'} | {theirs_text} | {ratio} |")
    if bare_eval:
        lines += [
            "",
            f"The bare full-ranking pass over the validation users ({EVAL_USERS} users per batch, batches built "
            "beforehand): the network's score matrix, the training items masked, `torch.topk` at K = 10, which "
            "RecBole's full-sort evaluation computes too; no metrics, no Lightning. Median over 10 passes after "
            "one warm-up pass.",
            "",
            "| data | model | users | bare s/pass | RecBole s/pass | bare / RecBole |",
            "|---|---|---|---|---|---|",
        ]
        for b in bare_eval:
            theirs = (recbole_eval or {}).get(f"{b['data']}/{b['model']}")
            ratio = f"{b['seconds_per_pass'] / theirs:.2f}" if theirs else "-"
            theirs_text = f"{theirs:.3f}" if theirs else "- (not in this run)"
            lines.append(f"| {b['data']} | {b['model']} | {b['users']:,} | {b['seconds_per_pass']:.3f} | "
                         f"{theirs_text} | {ratio} |")
    return [*lines, ""]


# --------------------------------------------------------------------------- main
def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


@contextlib.contextmanager
def _workdir(keep: str | None) -> Iterator[Path]:
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        yield Path(keep).resolve()
        return
    with tempfile.TemporaryDirectory(prefix="bench_recbole-") as tmp:
        yield Path(tmp)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--val-every", type=int, default=5, help="validation interval (BPR, LightGCN)")
    parser.add_argument("--neumf-val-every", type=int, default=None,
                        help="NeuMF's validation interval (default: once, after the last epoch; RecBole's NeuMF "
                        "evaluation scores every user-item pair through the MLP and takes minutes on LastFM)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="run the whole comparison once per seed; the first seed's run fills the main "
                        "tables (and the profile), all of them the across-seeds table")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads for both frameworks")
    parser.add_argument("--ecomlab-overrides", nargs="*", default=[], metavar="KEY=VALUE",
                        help="extra ecomlab-train overrides, e.g. compile=true (named in the tables)")
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--cache-dir", default=str(ROOT / ".cache" / "ecomlab"))
    parser.add_argument("--out", default=str(ROOT / "experiments" / "perf" / "recbole.md"))
    parser.add_argument("--profile-out", default=str(ROOT / "experiments" / "perf" / "recbole_profile.md"))
    parser.add_argument("--no-profile", action="store_true", help="skip the BPR epoch profile")
    parser.add_argument("--profile-only", action="store_true", help="only the BPR epoch profile")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 epoch, MovieLens-small, no profile")
    parser.add_argument("--workdir", default=None, help="keep runs and exports here (default: a temp dir)")
    parser.add_argument("--render-only", default=None, metavar="JSON",
                        help="rewrite --out from a JSON record this script wrote, measuring nothing")
    args = parser.parse_args(argv)
    if args.render_only:
        record = json.loads(Path(args.render_only).read_text())
        atomic_write_text(Path(args.out), render(record["rows"], record["meta"]))
        return
    if args.quick:
        args.datasets, args.epochs, args.no_profile = ["movielens_small"], 1, True
    # RecBole logs through the root logger; only this script's progress lines are wanted.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    os.environ.setdefault("PL_DISABLE_FORK", "1")
    torch.set_num_threads(args.threads)
    load_start, t0 = _load(), time.perf_counter()
    command = " ".join(["python", "scripts/bench_recbole.py", *(sys.argv[1:] if argv is None else argv)])
    env = " ".join(f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS", "PYTHONPATH") if k in os.environ)
    meta = {"command": f"{env} {command}".strip(),
            "machine": machine_line(), "ecomlab_source": ecomlab_source(), "threads": args.threads,
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"), "seed": args.seeds[0],
            "seeds": args.seeds, "ecomlab_extra_overrides": list(args.ecomlab_overrides),
            "load_start": load_start}
    with _workdir(args.workdir) as workdir:
        if not args.profile_only:
            if not recbole_available():
                raise SystemExit("RecBole is not installed: see experiments/perf/README.md (pip install "
                                 "--no-deps recbole==1.2.1 + its import-time dependencies)")
            rows = []
            for seed in args.seeds:
                plan = Plan(args.datasets, args.models, args.epochs, args.val_every,
                            args.neumf_val_every or args.epochs, seed,
                            args.threads, args.data_dir, args.cache_dir, tuple(args.ecomlab_overrides))
                rows += run_plan(plan, workdir / f"seed{seed}")
            out = Path(args.out)
            meta.update(load_end=_load(), finished=time.strftime("%Y-%m-%d %H:%M"),
                        wall_minutes=(time.perf_counter() - t0) / 60, json_name=out.with_suffix(".json").name)
            atomic_write_json(out.with_suffix(".json"), {"meta": meta, "rows": rows})
            atomic_write_text(out, render(rows, meta))
            print(render(rows, meta))
            meta.update(_recbole_seconds(rows))
        elif Path(args.out).with_suffix(".json").is_file():  # RecBole's seconds for the floors' ratios
            meta.update(_recbole_seconds(json.loads(Path(args.out).with_suffix(".json").read_text())["rows"]))
        if not args.no_profile:
            prof = profile_bpr_epoch(DATASETS["lastfm"][0], args.data_dir, args.cache_dir, workdir,
                                     seed=args.seeds[0])
            prof["bare"] = [bare_loop_epochs(DATASETS["lastfm"][0], m, args.data_dir, args.cache_dir, workdir,
                                             seed=args.seeds[0], compiled=c, fresh=f)
                            for m in ("bpr", "neumf") for c in (False, True) for f in (False, True)]
            prof["bare_eval"] = [bare_eval_pass(DATASETS[d][0], m, args.data_dir, args.cache_dir, workdir,
                                                seed=args.seeds[0]) for d in ("lastfm", "movielens_small")
                                 for m in ("bpr", "lightgcn")]
            meta.update(load_end=_load())
            atomic_write_text(Path(args.profile_out), render_profile(prof, meta))
            print(render_profile(prof, meta))


if __name__ == "__main__":
    main()
