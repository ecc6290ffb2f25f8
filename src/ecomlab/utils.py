"""Small shared helpers: config location, size injection, atomic writes, provenance."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import resource
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig


def config_dir() -> str:
    """Absolute path of the Hydra config tree: the repo's ``configs/`` (editable install) or a packaged copy."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent.parent / "configs", here / "configs"):
        if (candidate / "train.yaml").exists():
            return str(candidate)
    raise FileNotFoundError(f"ecomlab configs not found next to {here}; reinstall with `pip install -e .`")


def instantiate_with_dims(cfg: DictConfig, dims: Mapping[str, Any], **kwargs: Any) -> Any:
    """Instantiate ``cfg`` and pass every size in ``dims`` that the target's signature accepts.

    This is how ``n_users``, ``n_items`` or ``n_series`` reach a network from the data module instead of
    being copied into YAML. A size written explicitly in the config is an error, since it would silently
    disagree with the data.
    """
    target = hydra.utils.get_object(cfg["_target_"])
    params = inspect.signature(target).parameters
    clash = [k for k in dims if k in params and k in cfg]
    if clash:
        raise ValueError(f"{cfg['_target_']}: {clash} come from the data module; remove them from the config")
    injected = {k: v for k, v in dims.items() if k in params}
    return hydra.utils.instantiate(cfg, **injected, **kwargs)


def _umask_mode() -> int:
    """The mode a plain ``open(..., "w")`` would give; ``mkstemp`` alone would leave files at 0600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write to a temp file in the same directory, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, _umask_mode())
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def atomic_write_parquet(path: str | Path, frame: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, _umask_mode())
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def git_commit() -> str | None:
    """Commit of the ecomlab source tree, with ``-dirty`` when it has uncommitted changes."""
    root = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("-dirty" if dirty else "")


def peak_memory_mb() -> dict[str, float]:
    """Peak resident memory of this process (and peak CUDA allocation when a GPU was used)."""
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {"peak_rss_mb": round(rss_kb / (1024 if sys.platform != "darwin" else 1024**2), 1)}
    try:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            out["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    except ImportError:  # torch is a dependency; stay usable in a bare interpreter all the same
        pass
    return out


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (archives and bundle files can be large)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
