"""Nothing ecomlab loads can run code: checkpoints load with ``weights_only=True``, no pickle of files, and
``ecomlab-data download`` refuses archives whose entries would land outside the target folder.
"""

from __future__ import annotations

import ast
import hashlib
import re
import stat
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict

import ecomlab

SRC = Path(ecomlab.__file__).resolve().parent
#: calls that unpickle (or otherwise execute) file content
UNSAFE_CALLS = {"pickle.load", "pickle.loads", "pickle.Unpickler", "pd.read_pickle", "joblib.load", "dill.load", "cloudpickle.load",
                "marshal.load", "shelve.open", "yaml.load", "yaml.unsafe_load", "tarfile.open"}


def _calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value,
                                                                                            ast.Name):
            out.append((f"{node.func.value.id}.{node.func.attr}", node))
    return out


def _keyword(call: ast.Call, name: str) -> object:
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value.value if isinstance(kw.value, ast.Constant) else "<expr>"
    return "<absent>"


def test_source_audit_no_unsafe_loading() -> None:
    problems, torch_loads = [], 0
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = path.relative_to(SRC.parent)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                if any(n and n.split(".")[0] in ("dill", "cloudpickle", "shelve", "tarfile") for n in names) or (
                        isinstance(node, ast.ImportFrom) and node.module in ("pickle", "_pickle")
                        and {"load", "loads", "Unpickler"} & {a.name for a in node.names}):
                    problems.append(f"{where}:{node.lineno}: imports {names}")
        for name, call in _calls(tree):
            if name == "torch.load":
                torch_loads += 1
                if _keyword(call, "weights_only") is not True:
                    problems.append(f"{where}:{call.lineno}: torch.load without weights_only=True")
            elif name == "np.load" and _keyword(call, "allow_pickle") not in (False, "<absent>"):
                problems.append(f"{where}:{call.lineno}: np.load with allow_pickle")
            elif name in UNSAFE_CALLS:
                problems.append(f"{where}:{call.lineno}: {name}")
    assert not problems, "\n".join(problems)
    assert torch_loads >= 1, "the audit found no torch.load at all: is it looking at the right tree?"


class _Payload:
    """Unpickling this creates ``marker``: proof that a load executed code from the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


def test_lightning_checkpoint_loading_refuses_pickled_code(tmp_path: Path) -> None:
    """The loader ``Trainer.fit/validate/test(ckpt_path=...)`` go through (no weights_only given) refuses it."""
    from lightning_fabric.utilities.cloud_io import _load

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": _Payload(marker)}, evil)
    with pytest.raises(Exception, match="[Ww]eights only load failed"):
        _load(evil, map_location="cpu")
    assert not marker.exists()


def test_eval_refuses_checkpoint_with_pickled_code(compose_cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from ecomlab.eval import main
    from ecomlab.train import train

    cfg = compose_cfg(["model=bpr", "data=synthetic_shop", "data.source.n_users=80", "data.source.n_items=40",
                       "trainer.max_epochs=1"])
    with open_dict(cfg):
        cfg.eval.print_table = False
    train(cfg)
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": _Payload(marker)}, evil)

    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["ecomlab-eval", f"run_dir={cfg.paths.output_dir}", f"ckpt={evil}",
                                      f"hydra.run.dir={tmp_path}/eval"])
    GlobalHydra.instance().clear()
    with pytest.raises(SystemExit) as exc:
        main()
    GlobalHydra.instance().clear()
    err = capsys.readouterr().err
    assert exc.value.code == 2, err[-3000:]
    assert re.search(r"^error: refused to load a checkpoint that holds more than weights .*Unsupported global", err,
                     re.M), err[-3000:]
    assert "Traceback" not in err
    assert not marker.exists(), "loading the checkpoint executed code from it"
    assert not (tmp_path / "eval" / "metrics.json").exists()


# --------------------------------------------------------------------------- archive extraction

def _link(name: str, target: str) -> tuple[zipfile.ZipInfo, str]:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16  # how Info-ZIP stores a symbolic link
    return info, target


UNSAFE = {
    "dotdot": ("../evil.txt", "x"),
    "nested-dotdot": ("ml-100k/../../evil.txt", "x"),
    "absolute": ("/tmp/ecomlab-evil.txt", "x"),
    "windows-dotdot": ("ml-100k\\..\\..\\evil.txt", "x"),
    "windows-drive": ("C:/evil.txt", "x"),
    "symlink-out": _link("ml-100k/u.data", "/etc/passwd"),
    "symlink-relative": _link("ml-100k/up", "../../.."),
}


@pytest.mark.parametrize("case", list(UNSAFE))
def test_download_refuses_unsafe_archive(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from ecomlab.data_cli import main

    archive = tmp_path / "ml-100k.zip"
    entry, content = UNSAFE[case]
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ml-100k/u.data" if case != "symlink-out" else "ml-100k/README", "1\t1\t4\t1\n")
        zf.writestr(entry, content)
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    dest = tmp_path / "dest" / "data"
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.chdir(tmp_path)
    GlobalHydra.instance().clear()
    with pytest.raises(SystemExit) as exc:
        main(["download", "name=ml-100k", f"dest={dest}", f"url={archive.as_uri()}", f"+sha256={sha}",
              f"hydra.run.dir={tmp_path}/run"])
    GlobalHydra.instance().clear()
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    name = entry.filename if isinstance(entry, zipfile.ZipInfo) else entry
    assert re.search(r"refusing unsafe entry .* \((absolute path|path leads out|symbolic link)", err), err
    assert repr(name) in err and "Traceback" not in err
    assert not (dest / "ml-100k").exists()
    assert not dest.exists(), "a refused archive leaves nothing behind (no .part, no half-unpacked folder)"
    assert not [p for p in tmp_path.rglob("*evil*")] and not Path("/tmp/ecomlab-evil.txt").exists()
