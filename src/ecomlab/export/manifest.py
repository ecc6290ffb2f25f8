"""The bundle manifest: what a bundle holds, and the SHA-256 of every file in it.

``manifest.json`` sits at the bundle root and lists every other file with its SHA-256 digest,

.. math::  \\mathrm{files}[p] = \\mathrm{SHA256}(\\mathrm{bytes}(p)) \\quad \\forall\\, p \\in \\mathrm{bundle}
           \\setminus \\{\\texttt{manifest.json}\\},

plus what loading needs to know (task, model, format, runtime objects by ``_target_``). Loading recomputes
every digest before reading anything: a changed, missing or unlisted file is refused with
:class:`BundleIntegrityError` naming the file, so a bundle that was edited by hand or copied half-way is never
served.

The digests catch accidents, not tampering: whoever can edit a file can re-hash it. Signed bundles close that.
With a secret key in the environment variable ``ECOMLAB_BUNDLE_KEY`` (at least 16 characters), ``ecomlab-export``
writes ``manifest.sig``, the HMAC-SHA256 of the exact bytes of ``manifest.json`` under that key,

.. math::  \\mathrm{sig} = \\mathrm{HMAC\\text{-}SHA256}(K, \\mathrm{bytes}(\\texttt{manifest.json})),

and whenever the variable is set, loading (``ecomlab.load``, ``ecomlab-serve``) refuses a bundle without a
signature or with one that differs (compared in constant time), before the manifest is parsed. The manifest
lists every other file's SHA-256, so the signature covers the whole bundle.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

from ecomlab.utils import sha256_file

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
#: the environment variable holding the bundle signing key
KEY_ENV = "ECOMLAB_BUNDLE_KEY"
#: shorter keys are refused: an HMAC is only as strong as its key
MIN_KEY_CHARS = 16
#: bumped when the bundle layout changes incompatibly
BUNDLE_VERSION = 1


class BundleIntegrityError(ValueError):
    """A bundle file does not match the manifest (changed, missing or unlisted), or the manifest is bad."""


def bundle_files(root: Path) -> list[str]:
    """Every file under ``root`` except the manifest and its signature, as sorted POSIX paths relative to
    ``root``."""
    names = (p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    return sorted(n for n in names if n not in (MANIFEST, SIGNATURE))


def bundle_key() -> bytes | None:
    """The signing key from ``ECOMLAB_BUNDLE_KEY`` (UTF-8 bytes), or None when the variable is unset."""
    value = os.environ.get(KEY_ENV)
    if value is None:
        return None
    if len(value) < MIN_KEY_CHARS:
        raise ValueError(f"{KEY_ENV} is set but holds {len(value)} characters; use a secret of at least "
                         f"{MIN_KEY_CHARS} (e.g. `openssl rand -hex 32`), or unset it to load unsigned bundles")
    return value.encode("utf-8")


def _hmac(key: bytes, data: bytes) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def sign_manifest(root: Path, key: bytes) -> None:
    """Write ``manifest.sig``: the HMAC-SHA256 of ``manifest.json``'s bytes under ``key``."""
    data = (root / MANIFEST).read_bytes()
    signature = {"algorithm": "HMAC-SHA256", "signed": MANIFEST, "hmac": _hmac(key, data)}
    (root / SIGNATURE).write_text(json.dumps(signature, indent=2) + "\n", encoding="utf-8")


def verify_signature(root: Path, data: bytes, key: bytes) -> None:
    """Refuse ``root`` unless ``manifest.sig`` holds the HMAC of the manifest bytes ``data`` under ``key``."""
    path = root / SIGNATURE
    if not path.is_file():
        raise BundleIntegrityError(f"{path}: missing; {KEY_ENV} is set, so only bundles signed with that key load "
                                   "(export the run again with the key set)")
    try:
        signature = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleIntegrityError(f"{path}: not valid JSON ({err})") from None
    given = signature.get("hmac") if isinstance(signature, dict) else None
    if not isinstance(given, str) or signature.get("algorithm") != "HMAC-SHA256":
        raise BundleIntegrityError(f"{path}: expected {{\"algorithm\": \"HMAC-SHA256\", \"hmac\": <hex>}}")
    if not hmac.compare_digest(given.encode("utf-8"), _hmac(key, data).encode("utf-8")):
        raise BundleIntegrityError(f"{path}: the HMAC-SHA256 signature does not match {MANIFEST} under "
                                   f"{KEY_ENV}; the bundle was changed after export or signed with another key")


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
    data = path.read_bytes()  # verified and parsed from one read: no swap between the two
    key = bundle_key()
    if key is not None:
        verify_signature(root, data, key)
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleIntegrityError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise BundleIntegrityError(f"{path}: no 'files' table; not an ecomlab bundle manifest")
    if manifest.get("ecomlab_bundle") != BUNDLE_VERSION:
        raise BundleIntegrityError(f"{path}: bundle version {manifest.get('ecomlab_bundle')!r}, this ecomlab reads "
                                   f"version {BUNDLE_VERSION}; re-export the run")
    listed: dict[str, str] = manifest["files"]
    for name, expected in sorted(listed.items()):
        if not isinstance(name, str) or Path(name).is_absolute() or ".." in Path(name).parts or "\\" in name:
            raise BundleIntegrityError(f"{path}: file name {name!r} leads outside the bundle")
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
