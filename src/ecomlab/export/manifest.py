"""The bundle manifest: what a bundle holds, and the SHA-256 of every file in it.

``manifest.json`` sits at the bundle root and lists every other file with its SHA-256 digest,

.. math::  \\mathrm{files}[p] = \\mathrm{SHA256}(\\mathrm{bytes}(p)) \\quad \\forall\\, p \\in \\mathrm{bundle}
           \\setminus \\{\\texttt{manifest.json}\\},

plus what loading needs to know (task, model, format, runtime objects by ``_target_``). Loading recomputes
every digest before reading anything: a changed, missing or unlisted file is refused with
:class:`BundleIntegrityError` naming the file, so a bundle that was edited by hand or copied half-way is never
served.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ecomlab.utils import sha256_file

MANIFEST = "manifest.json"
#: bumped when the bundle layout changes incompatibly
BUNDLE_VERSION = 1


class BundleIntegrityError(ValueError):
    """A bundle file does not match the manifest (changed, missing or unlisted), or the manifest is bad."""


def bundle_files(root: Path) -> list[str]:
    """Every file under ``root`` except the manifest, as sorted POSIX paths relative to ``root``."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.name != MANIFEST)


def write_manifest(root: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Hash every file of ``root`` and write ``manifest.json`` (``meta`` plus ``files``); returns it."""
    manifest = {"ecomlab_bundle": BUNDLE_VERSION, **meta,
                "files": {name: sha256_file(root / name) for name in bundle_files(root)}}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    return manifest


def read_manifest(root: Path) -> dict[str, Any]:
    """The manifest of bundle ``root`` after checking every file against it."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"bundle={root}: no such directory (export one with ecomlab-export)")
    path = root / MANIFEST
    if not path.is_file():
        raise BundleIntegrityError(f"{path}: missing; {root} is not an ecomlab bundle (export one with ecomlab-export)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleIntegrityError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise BundleIntegrityError(f"{path}: no 'files' table; not an ecomlab bundle manifest")
    if manifest.get("ecomlab_bundle") != BUNDLE_VERSION:
        raise BundleIntegrityError(f"{path}: bundle version {manifest.get('ecomlab_bundle')!r}, this ecomlab reads "
                                   f"version {BUNDLE_VERSION}; re-export the run")
    listed: dict[str, str] = manifest["files"]
    for name, expected in sorted(listed.items()):
        file = root / name
        if not file.is_file():
            raise BundleIntegrityError(f"{file}: listed in the manifest but missing")
        if sha256_file(file) != expected:
            raise BundleIntegrityError(f"{file}: SHA-256 differs from the manifest; the file was modified "
                                       "after export, refusing to load it")
    unlisted = sorted(set(bundle_files(root)) - set(listed))
    if unlisted:
        raise BundleIntegrityError(f"{root / unlisted[0]}: not listed in the manifest (added after export); "
                                   f"unlisted files: {unlisted[:5]}")
    return manifest
