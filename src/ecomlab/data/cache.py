"""On-disk cache of parsed and preprocessed bundles, so a large source is parsed once.

:func:`load_bundle` is what the data modules call::

    bundle, info = load_bundle(source, preprocess, cache_dir)   # info = {"cache": "hit", "key": ..., "seconds": ...}

* A source takes part when it has ``cache_key() -> dict`` (its parameters plus ``"files"``: the absolute paths of
  every input file it reads). The key is the SHA-256 of the source class, those parameters, the SHA-256 of every
  listed file's bytes (a directory counts as all files under it), ``preprocess.describe()`` and
  :data:`CACHE_FORMAT`. Editing a file, a parameter or the preprocessing therefore misses; moving nothing hits.
  Sources without ``cache_key`` (generators, data shipped in packages) and ``cache_dir=None`` give
  ``"cache": "off"``.
* An entry is a directory ``<cache_dir>/<SourceClass>-<key[:20]>/`` holding one parquet file per bundle part,
  ``id_maps.json`` (raw ids with their numpy dtype, so string and integer ids come back as they were) and
  ``bundle.json`` (name, ``has_timestamps``, ``meta``, row counts, format). :func:`save_bundle` /
  :func:`read_bundle` round-trip a bundle exactly, except that ``meta`` comes back as JSON values (numpy scalars
  and arrays become numbers and lists, tuples lists, keys strings); a miss returns the same JSON-normalised meta
  so that a miss and a later hit give equal bundles.
* Writes go to a temporary directory in ``cache_dir`` that is renamed into place, so no reader ever sees half an
  entry. If another process published the same entry meanwhile, this one's copy is discarded. An entry that
  cannot be read (a file missing, truncated or corrupt) is moved aside and rebuilt; a cache that cannot be
  written (read-only disk, meta that is not JSON) is logged and the bundle returned uncached. Neither ever fails
  the run.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecomlab.data.bundle import BundleSource, DatasetBundle, DataValidationError, IdMap
from ecomlab.data.preprocess import Preprocess

__all__ = ["CACHE_FORMAT", "cache_key", "load_bundle", "read_bundle", "save_bundle"]

log = logging.getLogger(__name__)

#: bump when the entry layout or the meaning of cached content changes; old entries then simply miss
CACHE_FORMAT = 1
PARTS = ("interactions", "item_text", "social", "sales")
_TMP_PREFIX = ".tmp-"
_TRASH_PREFIX = ".trash-"
#: temp directories older than this are leftovers of killed runs and are removed on the next miss
_STALE_SECONDS = 3600.0


# --------------------------------------------------------------------------- JSON


def jsonable(obj: Any, where: str = "meta") -> Any:
    """``obj`` as plain JSON values; numpy scalars/arrays, tuples, sets, paths and dates are converted."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v, f"{where}.{k}") for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, set | frozenset):
        return [jsonable(v, where) for v in sorted(obj, key=str)]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist(), where)
    if isinstance(obj, np.generic):
        return jsonable(obj.item(), where)
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, pd.Timestamp | _dt.date | np.datetime64):
        return pd.Timestamp(obj).isoformat()
    raise TypeError(f"{where}: {type(obj).__name__} is not JSON-serialisable; bundle meta must hold JSON values")


def _dump(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)


# --------------------------------------------------------------------------- save / read


def _write_json(path: Path, obj: Any) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(obj, indent=1))
        handle.flush()
        os.fsync(handle.fileno())


def _map_to_json(id_map: IdMap) -> dict[str, Any]:
    return {"dtype": id_map.raw.dtype.str, "values": jsonable(id_map.raw, "id map")}


def _map_from_json(obj: dict[str, Any]) -> IdMap:
    dtype = np.dtype(obj["dtype"])
    values = obj["values"]
    if dtype.kind == "O":
        raw = np.empty(len(values), dtype=object)  # element-wise, so str and int ids keep their Python type
        raw[:] = values
    else:
        raw = np.asarray(values, dtype=dtype)
    return IdMap(raw)


def save_bundle(bundle: DatasetBundle, directory: str | Path) -> Path:
    """Write ``bundle`` into ``directory`` (created): parquet per part, ``id_maps.json``, ``bundle.json`` last."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    header = {
        "format": CACHE_FORMAT,
        "name": bundle.name,
        "has_timestamps": bool(bundle.has_timestamps),
        "parts": {},
        "meta": jsonable(bundle.meta),
    }
    for part in PARTS:
        frame = getattr(bundle, part)
        if frame is None:
            continue
        frame.to_parquet(directory / f"{part}.parquet", index=False)
        header["parts"][part] = len(frame)
    _write_json(directory / "id_maps.json", {"user_map": _map_to_json(bundle.user_map),
                                             "item_map": _map_to_json(bundle.item_map)})
    _write_json(directory / "bundle.json", header)  # last: its presence marks a complete entry
    return directory


def read_bundle(directory: str | Path) -> DatasetBundle:
    """The bundle saved in ``directory``; ``DataValidationError`` naming the file if anything is missing or bad."""
    directory = Path(directory)
    path = directory / "bundle.json"
    try:
        header = json.loads(path.read_text(encoding="utf-8"))
        if header.get("format") != CACHE_FORMAT:
            raise DataValidationError(f"{path}: cache format {header.get('format')!r}, expected {CACHE_FORMAT}")
        path = directory / "id_maps.json"
        maps = json.loads(path.read_text(encoding="utf-8"))
        user_map, item_map = _map_from_json(maps["user_map"]), _map_from_json(maps["item_map"])
        frames: dict[str, pd.DataFrame | None] = {}
        for part in PARTS:
            path = directory / f"{part}.parquet"
            if part not in header["parts"]:
                frames[part] = None
                continue
            frame = pd.read_parquet(path)
            if len(frame) != header["parts"][part]:
                raise DataValidationError(f"{path}: {len(frame)} rows, bundle.json says {header['parts'][part]}")
            frames[part] = frame
    except DataValidationError:
        raise
    except Exception as err:  # pyarrow, json and numpy each raise their own kinds on damaged files
        raise DataValidationError(f"{path}: cannot read cached bundle: {err}") from err
    inter = frames["interactions"]
    if inter is None:
        raise DataValidationError(f"{directory}: cached bundle has no interactions part")
    return DatasetBundle(name=header["name"], interactions=inter, user_map=user_map, item_map=item_map,
                         item_text=frames["item_text"], social=frames["social"], sales=frames["sales"],
                         has_timestamps=header["has_timestamps"], meta=header["meta"])


# --------------------------------------------------------------------------- key


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    if path.is_dir():  # a folder of files counts as all of them, by relative name and content
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(str(child.relative_to(path)).encode())
            h.update(_file_digest(child).encode())
        return h.hexdigest()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_key(source: BundleSource, preprocess: Preprocess | None = None) -> str | None:
    """SHA-256 hex key of ``source`` + its files' content + ``preprocess``; ``None`` if the source has no key.

    Raises ``OSError`` if a listed file cannot be read.
    """
    method = getattr(source, "cache_key", None)
    if method is None:
        return None
    params = dict(method())
    files = [str(f) for f in params.pop("files", [])]
    payload = {
        "format": CACHE_FORMAT,
        "source": f"{type(source).__module__}.{type(source).__qualname__}",
        "params": jsonable(params, "cache_key()"),
        "files": [[f, _file_digest(Path(f))] for f in files],
        "preprocess": preprocess.describe() if preprocess is not None else None,
    }
    return hashlib.sha256(_dump(payload).encode()).hexdigest()


# --------------------------------------------------------------------------- load


def _build(source: BundleSource, preprocess: Preprocess | None) -> DatasetBundle:
    bundle = source.load()
    return preprocess(bundle) if preprocess is not None else bundle


def _discard(path: Path) -> None:
    """Move ``path`` out of the way atomically, then delete it; a concurrent process may have done it already."""
    trash = path.parent / f"{_TRASH_PREFIX}{uuid.uuid4().hex}"
    try:
        os.rename(path, trash)
    except OSError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def _remove_stale(cache_dir: Path) -> None:
    now = time.time()
    for child in cache_dir.iterdir():
        if child.name.startswith((_TMP_PREFIX, _TRASH_PREFIX)):
            try:
                if now - child.stat().st_mtime > _STALE_SECONDS:
                    shutil.rmtree(child, ignore_errors=True)
            except OSError:
                pass


def _publish(tmp: Path, final: Path) -> bool:
    """Rename ``tmp`` to ``final``; ``False`` (and ``tmp`` removed) if another writer got there first."""
    try:
        os.rename(tmp, final)  # atomic; fails on a non-empty existing directory
        return True
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if final.exists():
            return False
        raise


def load_bundle(source: BundleSource, preprocess: Preprocess | None = None,
                cache_dir: str | Path | None = None) -> tuple[DatasetBundle, dict[str, Any]]:
    """``(bundle, info)``: the preprocessed bundle of ``source``, from the cache when possible.

    ``info = {"cache": "hit" | "miss" | "off", "key": <sha256 hex or None>, "seconds": <load time>}``.
    """
    t0 = time.perf_counter()

    def info(state: str, key: str | None) -> dict[str, Any]:
        return {"cache": state, "key": key, "seconds": round(time.perf_counter() - t0, 4)}

    key = None
    if cache_dir is not None:
        try:
            key = cache_key(source, preprocess)
        except OSError:
            # an unreadable input: let the source raise its own error (it names the file and how to get it)
            bundle = _build(source, preprocess)
            log.info("data cache off for %s: an input file cannot be hashed", type(source).__name__)
            return bundle, info("off", None)
    if key is None:
        return _build(source, preprocess), info("off", None)

    root = Path(cache_dir)
    final = root / f"{type(source).__name__}-{key[:20]}"
    if final.exists():
        try:
            bundle = read_bundle(final)
            log.info("data cache hit: %s", final)
            return bundle, info("hit", key)
        except DataValidationError as err:
            log.warning("data cache entry %s is unusable (%s); rebuilding it", final, err)
            _discard(final)

    bundle = _build(source, preprocess)
    tmp = root / f"{_TMP_PREFIX}{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        _remove_stale(root)
        bundle.meta = jsonable(bundle.meta)  # what a later hit will read back
        save_bundle(bundle, tmp)
        if _publish(tmp, final):
            log.info("data cache miss: wrote %s", final)
        else:
            log.info("data cache miss: %s was written meanwhile by another run; kept that one", final)
    except Exception as err:  # a cache that cannot be written must not fail the run
        log.warning("data cache: cannot write %s (%s); continuing without the cache", final, err)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return bundle, info("miss", key)
