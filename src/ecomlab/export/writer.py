"""Writing a bundle from a finished run: rebuild the trained model, write its files, hash them, publish.

    bundle/
      manifest.json          SHA-256 of every other file; task, model, format, runtime objects
      manifest.sig           HMAC-SHA256 of manifest.json, when ECOMLAB_BUNDLE_KEY was set at export
      README.md              the model card
      config.yaml            the run's composed config
      metrics.json           test metrics, protocol, provenance of the run
      model/                 scoring files (see ecomlab.export.recommenders / ecomlab.export.forecasters)
      data/users.parquet     index -> raw user id (recommenders)
      data/items.parquet     index -> raw item id, text and item columns (recommenders)
      data/seen.npz          every known interaction, train + val + test [U, N] (excluded at serving time)
      data/item_counts.npy   training users per item: the popularity fallback for unknown users

The run is rebuilt exactly as ``ecomlab-eval`` does (same config, data, split and seed; trained models load
the chosen checkpoint, classical ones refit deterministically). Everything is written into a temporary
sibling of ``out`` that is renamed into place only once complete: a failed export leaves no bundle.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from omegaconf import OmegaConf

import ecomlab
from ecomlab.eval import LoadedRun, RunDirError, load_run, load_run_weights
from ecomlab.export.card import model_card
from ecomlab.export.forecasters import export_forecaster
from ecomlab.export.manifest import bundle_key, sign_manifest, write_manifest
from ecomlab.export.recommenders import ExportContext, export_recommender

FORMATS = ("onnx", "torchscript", "native")


#: a run brought back by ``ecomlab.eval.load_run``, with the trained weights loaded and in eval mode
RebuiltRun = LoadedRun


def rebuild_run(run_dir: str | Path, ckpt: str = "best", trust_config: bool = False) -> RebuiltRun:
    run = load_run(run_dir, ckpt, arg="run", trust_config=trust_config)
    if run.task.trainable:
        if run.checkpoint is None:
            raise RunDirError(f"run={run_dir}: a trained model without a best checkpoint; pass ckpt=last or a path")
        load_run_weights(run)
    run.task.eval()
    return run


def _write_id_data(run: RebuiltRun, root: Path) -> dict[str, int]:
    dm = run.datamodule
    bundle = dm.bundle
    (root / "data").mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"raw_id": bundle.user_map.raw}).to_parquet(root / "data" / "users.parquet", index=False)
    items = pd.DataFrame({"raw_id": bundle.item_map.raw})
    if bundle.item_text is not None:  # text and any item columns (category, ...) by item index
        meta = bundle.item_text.drop_duplicates("item_id").set_index("item_id")
        items = items.join(meta, how="left")
    items.to_parquet(root / "data" / "items.parquet", index=False)
    seen = sp.csr_matrix(dm.train_csr + dm.val_csr + dm.test_csr, dtype=np.float32)
    sp.save_npz(root / "data" / "seen.npz", seen)
    train = sp.csr_matrix(dm.train_csr)
    train.eliminate_zeros()
    counts = np.bincount(train.indices, minlength=bundle.n_items).astype(np.int64)  # [N] distinct users
    np.save(root / "data" / "item_counts.npy", counts, allow_pickle=False)
    return {"n_users": bundle.n_users, "n_items": bundle.n_items}


def _write_contents(run: RebuiltRun, fmt: str, root: Path, run_dir: Path) -> dict[str, Any]:
    cfg, record, task = run.cfg, run.record, run.task
    net_config = OmegaConf.to_container(cfg.model.net, resolve=True)
    assert isinstance(net_config, dict)
    meta: dict[str, Any] = {
        "task": task.kind, "model": record.get("model"), "dataset": record.get("dataset"),
        "model_class": f"{type(task.net).__module__}.{type(task.net).__qualname__}",
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "ecomlab_version": ecomlab.__version__, "torch_version": torch.__version__,
        "source_run": str(run_dir.resolve()), "checkpoint": run.checkpoint,
    }
    if task.kind == "ranking":
        ctx = ExportContext(root=root, fmt=fmt, net_config=net_config, dims=dict(run.datamodule.dims),
                            data=run.datamodule.train_data())
        exported = export_recommender(task.net, ctx)
        meta.update(_write_id_data(run, root))
        meta.update({k: v for k, v in asdict(exported).items() if v is not None})
        meta["has_item_vectors"] = (root / "model" / "item_vectors.npy").exists()
    else:
        meta.update(export_forecaster(task, run.datamodule, fmt, root, net_config))
    meta["requested_format"] = fmt
    (root / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True), encoding="utf-8")
    metrics = {"model": record.get("model"), "dataset": record.get("dataset"), "seed": record.get("seed"),
               "metrics": {k: v for k, v in record.get("metrics", {}).items() if k.startswith("test/")},
               "protocol": record.get("protocol"), "data_fingerprint": record.get("data_fingerprint"),
               "git_commit": record.get("git_commit"), "finished_at": record.get("finished_at")}
    (root / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str) + "\n", encoding="utf-8")
    (root / "README.md").write_text(model_card(meta, metrics, task.net), encoding="utf-8")
    return meta


def export_run(run_dir: str | Path, fmt: str, out: str | Path, ckpt: str = "best", trust_config: bool = False) -> Path:
    """Export the run in ``run_dir`` as a bundle at ``out`` (which must not exist yet); returns ``out``. With
    ``ECOMLAB_BUNDLE_KEY`` set the manifest is signed (:func:`ecomlab.export.manifest.sign_manifest`)."""
    if fmt not in FORMATS:
        raise ValueError(f"format={fmt!r}; expected one of {list(FORMATS)}")
    out = Path(out)
    if out.exists():
        raise ValueError(f"out={out}: already exists; choose a new bundle directory (bundles are never overwritten)")
    key = bundle_key()  # an empty key is refused before any work
    run = rebuild_run(run_dir, ckpt, trust_config)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        meta = _write_contents(run, fmt, tmp, Path(run_dir))
        write_manifest(tmp, meta)
        if key is not None:
            sign_manifest(tmp, key)
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; a bundle is as readable as any directory
        os.rename(tmp, out)  # atomic on one file system; refuses if out appeared meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
