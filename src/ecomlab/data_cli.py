"""``ecomlab-data``: look at, check, convert and fetch data sets.

    ecomlab-data describe data=synthetic_shop
    ecomlab-data validate data=files data.source.interactions=my_shop/interactions.csv
    ecomlab-data convert data=lastfm-hetrec2011 to=recbole out=exports/lastfm
    ecomlab-data download name=ml-100k dest=data

The first argument is the command; the rest are Hydra overrides of ``configs/data_tool.yaml`` (the data set
is any ``configs/data/<name>.yaml``). Data sets load exactly as ``ecomlab-train`` loads them: source, then
the config's preprocessing, through the parsed-data cache. Exit codes: 0 success; ``validate`` 1 when it found
warnings only; 2 for errors (bad data, bad arguments, a failed download), reported in one line without a
traceback unless ``HYDRA_FULL_ERROR=1``.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlparse
from urllib.request import Request, url2pathname, urlopen

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from ecomlab.archives import extract_zip
from ecomlab.cli import config_errors_exit_2, mark_task_started, user_errors_exit_2
from ecomlab.data.bundle import DatasetBundle, DataValidationError, DataWarning
from ecomlab.data.describe import describe_bundle, exit_code, quality_report
from ecomlab.utils import atomic_write_json, config_dir, sha256_file

COMMANDS = {
    "describe": "statistics of a data set: a table on screen and JSON (json_out=FILE, default in the run dir)",
    "validate": "quality report; exit 0 clean, 1 warnings only, 2 errors; JSON like describe",
    "convert": "write a data set as RecBole atomic files or ecomlab parquet: to=recbole|parquet out=DIR",
    "download": "fetch, verify (pinned SHA-256) and unpack a public archive: name=NAME dest=DIR [url=URL]",
}


class DownloadError(ValueError):
    """A download that cannot complete: unreachable, interrupted, wrong checksum, not a zip archive."""


# --------------------------------------------------------------------------- archives


@dataclass(frozen=True)
class Archive:
    """A public archive: where it is, its pinned SHA-256 and size, and the folder the data configs expect."""

    url: str
    sha256: str | None
    size: int | None
    folder: str
    marker: str | None  # a file every complete unpacked folder holds

    @property
    def filename(self) -> str:
        return PurePosixPath(urlparse(self.url).path).name or f"{self.folder}.zip"


_GROUPLENS = "https://files.grouplens.org/datasets"
# Checksums are copied from published sources, never computed here (this machine cannot reach GroupLens):
# * ml-100k, ml-1m, ml-latest-small: TensorFlow Datasets, tensorflow/datasets
#   tensorflow_datasets/url_checksums/movielens.txt (URL, size in bytes, sha256); the same three sha256 values
#   appear in ISG-Siegen/OmniRec src/omnirec/data_loaders/movielens_100k.py, movielens_small.py (1m) and
#   movielens_large.py (latest-small).
# * ml-latest: ISG-Siegen/OmniRec src/omnirec/data_loaders/movielens_large.py ("MovieLensLatest"). GroupLens
#   republishes ml-latest from time to time, so a mismatch may mean a newer release: check it, then pass
#   +sha256=<hex>.
# * hetrec2011-lastfm-2k: ISG-Siegen/OmniRec src/omnirec/data_loaders/hetrec_lastfm.py ("HetrecLastFM").
ARCHIVES: dict[str, Archive] = {
    "ml-100k": Archive(f"{_GROUPLENS}/movielens/ml-100k.zip",
                       "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229", 4924029,
                       "ml-100k", "u.data"),
    "ml-1m": Archive(f"{_GROUPLENS}/movielens/ml-1m.zip",
                     "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20", 5917549,
                     "ml-1m", "ratings.dat"),
    "ml-latest-small": Archive(f"{_GROUPLENS}/movielens/ml-latest-small.zip",
                               "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436", 978202,
                               "ml-latest-small", "ratings.csv"),
    "ml-latest": Archive(f"{_GROUPLENS}/movielens/ml-latest.zip",
                         "66a9e518c747d76b241d9a859b001a2619d3ed1672ceef599eb50daf73a7b4a3", None,
                         "ml-latest", "ratings.csv"),
    "hetrec2011-lastfm-2k": Archive(f"{_GROUPLENS}/hetrec2011/hetrec2011-lastfm-2k.zip",
                                    "6738f48195667ff03caaab4d32ca9a3133d8cc026b7c3cdaf6ce1010e913c59c", None,
                                    "lastfm-hetrec2011", "user_artists.dat"),
}
#: the data config / folder name works as well as the archive name
ALIASES = {"lastfm-hetrec2011": "hetrec2011-lastfm-2k"}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: ecomlab-data <command> [key=value ...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, text in COMMANDS.items()]
    lines += [
        "",
        "key=value arguments are Hydra overrides of configs/data_tool.yaml: data=<a configs/data name>,",
        "paths.data_dir=DIR, json_out=FILE, to=..., out=DIR (+force=true replaces it), name=..., dest=DIR,",
        "url=URL, +sha256=HEX. `ecomlab-data <command> --help` shows the composed config options.",
        "",
        "download archives: " + ", ".join(ARCHIVES) + " (from files.grouplens.org)",
        "",
        "examples:",
        "  ecomlab-data describe data=synthetic_shop",
        "  ecomlab-data validate data=files data.source.interactions=my_shop/interactions.csv",
        "  ecomlab-data convert data=synthetic_shop to=recbole out=exports/shop",
        "  ecomlab-data download name=ml-100k dest=data",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- loading


def _data_name(cfg: DictConfig) -> str:
    if HydraConfig.initialized():
        choice = HydraConfig.get().runtime.choices.get("data")
        if isinstance(choice, str):
            return choice
    return str(cfg.data.source.get("name") or "data")


def load(cfg: DictConfig) -> tuple[DatasetBundle, dict[str, Any]]:
    """The bundle exactly as the data module would load it: source, preprocessing, cache."""
    from ecomlab.data.cache import load_bundle  # the cache layer pulls in pyarrow; only load when needed

    source = instantiate(cfg.data.source)
    preprocess = instantiate(cfg.data.preprocess) if cfg.data.get("preprocess") is not None else None
    with warnings.catch_warnings():
        # dropped rows are counted in meta["warnings"] and shown by describe / validate
        warnings.simplefilter("ignore", DataWarning)
        return load_bundle(source, preprocess, cfg.data.get("cache_dir"))


def _json_path(cfg: DictConfig, default_name: str) -> Path:
    if cfg.get("json_out"):
        path = Path(cfg.json_out)
        if path.is_dir():
            raise ValueError(f"json_out={path} is a directory; give the JSON file's name (e.g. {path / default_name})")
        return path
    return Path(HydraConfig.get().runtime.output_dir) / default_name


# --------------------------------------------------------------------------- describe


def _fmt_spread(spread: dict[str, Any]) -> str:
    return f"min {spread['min']:,} / median {spread['median']:,} / max {spread['max']:,}"


def describe_table(stats: dict[str, Any]) -> Table:
    table = Table(title=f"data set: {stats['name']}", show_header=True)
    table.add_column("statistic", style="bold")
    table.add_column("value", overflow="fold")
    if stats["interactions"]:
        table.add_row("users", f"{stats['users']:,}")
        table.add_row("items", f"{stats['items']:,}")
        table.add_row("interactions", f"{stats['interactions']:,}")
        table.add_row("density", f"{stats['density']:.6f}")
        table.add_row("interactions per user", _fmt_spread(stats["interactions_per_user"]))
        table.add_row("interactions per item", _fmt_spread(stats["interactions_per_item"]))
        table.add_row("gini of item popularity", f"{stats['gini_item_popularity']:.4f}")
        w = stats["weight"]
        table.add_row("weight", "all 1.0" if w["all_ones"] else
                      f"min {w['min']:g} / mean {w['mean']:.3g} / max {w['max']:g}")
        tr = stats["time_range"]
        table.add_row("time range", f"{tr['start']} .. {tr['end']}" if tr else "no timestamps")
        text = stats["text"]
        table.add_row("items with text", "no item text" if text is None else
                      f"{text['items_with_text']:,} ({text['share_items_with_text']:.1%})")
    social = stats["social"]
    if social is not None:
        table.add_row("social edges", f"{social['edges']:,} ("
                      f"{'symmetric' if social['symmetric'] else 'directed, not symmetric'}; "
                      f"{social['users_with_friends']:,} users with an edge either way)")
    sales = stats["sales"]
    if sales is not None:
        table.add_row("sales series", f"{sales['series']:,} ({sales['observations']:,} observations)")
        table.add_row("series length", _fmt_spread(sales["length"]))
        table.add_row("frequency", str(sales["frequency"] or "irregular / unknown"))
        table.add_row("date range", f"{sales['date_range']['start']} .. {sales['date_range']['end']}")
    if stats["warnings"]:
        table.add_row("load warnings", ", ".join(f"{k}: {v}" for k, v in stats["warnings"].items()))
    return table


@user_errors_exit_2
def cmd_describe(cfg: DictConfig) -> int:
    bundle, info = load(cfg)
    stats = {**describe_bundle(bundle), "data": _data_name(cfg), "load": info}
    console = Console()
    console.print(describe_table(stats))
    path = _json_path(cfg, "describe.json")
    atomic_write_json(path, stats)
    console.print(f"wrote {path}")
    return 0


# --------------------------------------------------------------------------- validate


def report_table(report: dict[str, Any]) -> Table:
    table = Table(title=f"quality report: {report['data']}")
    table.add_column("severity", style="bold")
    table.add_column("check")
    table.add_column("count", justify="right")
    table.add_column("problem", overflow="fold")
    for p in report["problems"]:
        style = "red" if p["severity"] == "error" else "yellow"
        table.add_row(f"[{style}]{p['severity']}[/{style}]", p["check"],
                      "" if p["count"] is None else f"{p['count']:,}", p["message"])
    return table


@user_errors_exit_2
def cmd_validate(cfg: DictConfig) -> int:
    def _loader() -> DatasetBundle:
        try:
            return load(cfg)[0]
        except InstantiationException as err:  # a source that checks its files when it is built
            if isinstance(err.__cause__, DataValidationError | FileNotFoundError):
                raise err.__cause__ from None
            raise

    report = {"data": _data_name(cfg), **quality_report(_loader)}
    console = Console()
    if report["problems"]:
        console.print(report_table(report))
    summary = {"clean": "clean: no problems found",
               "warnings": f"{report['warnings']} warning(s), no errors",
               "errors": f"{report['errors']} error(s), {report['warnings']} warning(s)"}[report["status"]]
    console.print(f"{report['data']}: {summary}")
    path = _json_path(cfg, "validate.json")
    atomic_write_json(path, report)
    console.print(f"wrote {path}")
    return exit_code(report)


# --------------------------------------------------------------------------- convert


def _is_nonempty(path: Path) -> bool:
    return path.exists() and (not path.is_dir() or any(path.iterdir()))


@user_errors_exit_2
def cmd_convert(cfg: DictConfig) -> int:
    fmt = str(cfg.to)
    if fmt not in ("recbole", "parquet"):
        raise ValueError(f"to={fmt}; expected recbole or parquet")
    if not cfg.get("out"):
        raise ValueError("convert needs out=DIR (the folder to write)")
    out = Path(cfg.out)
    if _is_nonempty(out) and not cfg.get("force"):
        raise ValueError(f"{out} exists and is not empty; choose another out=DIR or pass +force=true to replace it")
    bundle, _ = load(cfg)
    name = str(cfg.get("name") or _data_name(cfg))
    out.parent.mkdir(parents=True, exist_ok=True)
    # Build next to out, then rename: a reader never sees a half-written folder, and a failed conversion
    # leaves the old one untouched.
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        staging = work / "new"
        if fmt == "recbole":
            from ecomlab.data.sources.recbole import export_recbole

            export_recbole(bundle, staging, name=name)
        else:
            from ecomlab.data.cache import save_bundle

            save_bundle(bundle, staging)
        if out.exists() or out.is_symlink():
            os.replace(out, work / "old")  # moved aside, deleted with the work folder
        os.replace(staging, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    files = sorted(p.name for p in out.iterdir())
    print(f"wrote {bundle.name} ({contents(bundle)}) as {fmt} to {out}: {', '.join(files)}")
    return 0


def contents(bundle: DatasetBundle) -> str:
    """What a bundle holds, in words: the parts it has, none it lacks (a sales panel has no users)."""
    parts = []
    if len(bundle.interactions):
        parts.append(f"{bundle.n_users:,} users, {bundle.n_items:,} items, "
                     f"{len(bundle.interactions):,} interactions")
    if bundle.item_text is not None:
        parts.append(f"{len(bundle.item_text):,} item texts")
    if bundle.social is not None:
        parts.append(f"{len(bundle.social):,} social edges")
    if bundle.sales is not None:
        parts.append(f"{bundle.sales['unique_id'].nunique():,} sales series, {len(bundle.sales):,} observations")
    return "; ".join(parts) or "nothing"


# --------------------------------------------------------------------------- download


def _resolve_archive(cfg: DictConfig) -> tuple[str, Archive]:
    name = cfg.get("name")
    if not name:
        raise ValueError(f"download needs name=...; known archives: {', '.join(ARCHIVES)}")
    name = str(name)
    sha = cfg.get("sha256")
    sha = None if sha is None else str(sha).strip().lower()
    if sha is not None and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha)):
        raise ValueError(f"+sha256={sha}: expected 64 hexadecimal digits")
    known = ARCHIVES.get(ALIASES.get(name, name))
    if known is None:
        if not (cfg.get("url") and sha):
            raise ValueError(f"unknown archive name={name}; known: {', '.join(ARCHIVES)} "
                             "(any other archive needs url=... and +sha256=...)")
        return name, Archive(str(cfg.url), sha, None, name, None)
    url = str(cfg.url) if cfg.get("url") else known.url
    size = known.size if url == known.url and sha is None else None
    return name, Archive(url, sha or known.sha256, size, known.folder, known.marker)


def _is_complete(folder: Path, archive: Archive) -> bool:
    if archive.marker is not None:
        return (folder / archive.marker).is_file()
    return folder.is_dir() and any(folder.iterdir())


class _Interrupted(Exception):
    """A transfer that stopped early (connection lost, fewer bytes than announced); fetch tries again."""


#: tries of one download before it is given up (each resumes where the previous one stopped)
ATTEMPTS = 3


def _copy(src: Any, part: Path, mode: str, expected: int | None) -> None:
    """Append (``ab``) or write (``wb``) ``src`` to ``part``; ``_Interrupted`` when fewer than ``expected``
    bytes arrive (``http.client`` returns a short body without an error when the server closes early)."""
    start = part.stat().st_size if mode == "ab" and part.exists() else 0
    try:
        with part.open(mode) as out:
            shutil.copyfileobj(src, out, 1 << 20)
    except (OSError, http.client.HTTPException) as err:
        raise _Interrupted(f"{type(err).__name__}: {err}") from err
    got = part.stat().st_size - start
    if expected is not None and got < expected:
        raise _Interrupted(f"the connection closed after {got:,} of {expected:,} bytes")


def fetch(url: str, part: Path, size: int | None = None, attempts: int = ATTEMPTS) -> None:
    """Download ``url`` into ``part``, continuing an existing partial file (HTTP Range, or a seek for file://).

    A transfer that stops early is resumed up to ``attempts`` times in all before it fails with
    :class:`DownloadError` (the caller deletes the partial file: a refused download leaves nothing behind).
    """
    for attempt in range(1, attempts + 1):
        try:
            _fetch_once(url, part, size)
            return
        except _Interrupted as err:
            kept = part.stat().st_size if part.exists() else 0
            if attempt == attempts:
                raise DownloadError(f"{url}: download interrupted {attempts} times, the last after {kept:,} "
                                    f"bytes ({err})") from None
            print(f"download interrupted after {kept:,} bytes ({err}); resuming ({attempt + 1}/{attempts})")


def _fetch_once(url: str, part: Path, size: int | None) -> None:
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:  # longer than the archive can be: start over
        part.unlink()
        have = 0
    if size is not None and have == size:
        return  # complete; the checksum decides whether it is right
    parsed = urlparse(url)
    if parsed.scheme == "file":
        src_path = Path(url2pathname(parsed.path))
        if not src_path.is_file():
            raise FileNotFoundError(f"{url}: no such file")
        total = src_path.stat().st_size
        if have > total:
            have = 0
        with src_path.open("rb") as src:
            src.seek(have)
            _copy(src, part, "ab" if have else "wb", total - have)
        return
    if parsed.scheme not in ("http", "https"):
        raise ValueError(f"url={url}: only http(s):// and file:// addresses are supported")
    headers = {"User-Agent": "ecomlab-data"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urlopen(Request(url, headers=headers), timeout=60)
    except HTTPError as err:
        if err.code == 416 and have:
            return  # nothing left to fetch: the partial file is already whole
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from err
    except (URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DownloadError(f"cannot download {url}: {reason}") from err
    with response:
        # A server that ignores Range answers 200 with the whole file: start over rather than append it.
        resumed = have and response.status == 206 and str(
            response.headers.get("Content-Range", "")).startswith(f"bytes {have}-")
        length = response.headers.get("Content-Length")
        _copy(response, part, "ab" if resumed else "wb", int(length) if str(length).isdigit() else None)


def unpack(archive_path: Path, dest: Path, folder: str) -> Path:
    """Unzip into a temp folder under ``dest``, then rename it (or its single top folder) to ``dest/folder``."""
    final = dest / folder
    work = Path(tempfile.mkdtemp(prefix=f".{folder}.unpack-", dir=dest))
    try:
        extract_zip(archive_path, work, DownloadError)
        shutil.rmtree(work / "__MACOSX", ignore_errors=True)  # resource forks of archives made on macOS
        entries = list(work.iterdir())
        # MovieLens zips hold one top folder (ml-100k/...); the LastFM zip has its files at the top level.
        root = entries[0] if len(entries) == 1 and entries[0].is_dir() else work
        try:
            os.rename(root, final)
        except OSError as err:
            raise DownloadError(f"cannot move the unpacked data to {final}: {err}") from err
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


@user_errors_exit_2
def cmd_download(cfg: DictConfig) -> int:
    name, archive = _resolve_archive(cfg)
    dest = Path(cfg.dest) if cfg.get("dest") else Path(cfg.paths.data_dir)
    if dest.exists() and not dest.is_dir():
        raise ValueError(f"dest={dest} is not a folder; name the folder that receives the data set")
    final = dest / archive.folder
    if final.exists():
        if _is_complete(final, archive):
            print(f"{name}: already present at {final}")
            return 0
        raise ValueError(f"{final} exists but is not a complete {name} folder"
                         + (f" (no {archive.marker})" if archive.marker else "")
                         + "; move it away and run again")
    if archive.sha256 is None:
        raise ValueError(f"{name}: no published SHA-256 is pinned for {archive.url}; check the archive and pass "
                         "+sha256=<hex> to download it")
    made_dest = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    # The partial file stays only while this process runs (or after it is killed, when the next run resumes it):
    # a refused download -- wrong checksum, a refused archive, a transfer that kept failing, Ctrl-C -- deletes it.
    part = dest / f".{archive.filename}.part"
    try:
        resume = part.stat().st_size if part.exists() else 0
        print(f"{name}: downloading {archive.url}" + (f" (resuming after {resume:,} bytes)" if resume else ""))
        fetch(archive.url, part, archive.size)
        actual = sha256_file(part)
        if actual != archive.sha256:
            raise DownloadError(f"{archive.url}: checksum mismatch: expected sha256 {archive.sha256}, "
                                f"got {actual}; deleted the download")
        size = part.stat().st_size
        try:
            unpack(part, dest, archive.folder)
        except DownloadError as err:  # name the archive the user gave, not the partial file deleted below
            raise DownloadError(str(err).replace(str(part), archive.url)) from None
        if not _is_complete(final, archive):
            shutil.rmtree(final, ignore_errors=True)
            raise DownloadError(f"{archive.url}: the archive does not contain {archive.marker}, so it is not "
                                f"{name}; nothing was kept")
    except BaseException:
        part.unlink(missing_ok=True)
        if made_dest:
            with contextlib.suppress(OSError):
                dest.rmdir()  # only if empty: the folder this command made for nothing
        raise
    part.unlink(missing_ok=True)
    print(f"{name}: {size:,} bytes, sha256 {actual} verified; unpacked to {final}")
    return 0


# --------------------------------------------------------------------------- entry point

HANDLERS: dict[str, Callable[[DictConfig], int]] = {
    "describe": cmd_describe,
    "validate": cmd_validate,
    "convert": cmd_convert,
    "download": cmd_download,
}


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help", "help"):
        print(usage())
        raise SystemExit(0)
    if not args or "=" in args[0]:
        print(f"error: a command is needed first ({', '.join(HANDLERS)}), then key=value arguments\n\n{usage()}",
              file=sys.stderr)
        raise SystemExit(2)
    command = args[0]
    if command not in HANDLERS:
        print(f"error: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        raise SystemExit(2)
    status = 0

    @hydra.main(config_path=config_dir(), config_name="data_tool", version_base="1.3")
    def _app(cfg: DictConfig) -> None:
        nonlocal status
        mark_task_started()
        status = HANDLERS[command](cfg)

    # Hydra parses sys.argv itself: hand it the overrides only, under a program name that shows the command.
    prog = f"{Path(sys.argv[0]).name if sys.argv else 'ecomlab-data'} {command}"
    saved = sys.argv
    sys.argv = [prog, *args[1:]]
    try:
        config_errors_exit_2(_app)()  # a mistyped key gets ecomlab's one-line did-you-mean
    except SystemExit as err:
        # Hydra exits 1 on a config it cannot compose (or a crash); 1 means "warnings only" for validate.
        raise SystemExit(2 if err.code == 1 else err.code) from None
    finally:
        sys.argv = saved
    raise SystemExit(status)


if __name__ == "__main__":
    main()
