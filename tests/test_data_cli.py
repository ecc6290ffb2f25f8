"""``ecomlab-data`` as a user runs it (real subprocesses, real files) and the pure functions behind it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hydra.utils import instantiate
from omegaconf import DictConfig

from conftest import SHARED_DATA
from ecomlab.data.bundle import DatasetBundle, DataValidationError, build_bundle
from ecomlab.data.describe import LONG_TEXT_CHARS, describe_bundle, exit_code, gini, quality_report
from ecomlab.utils import config_dir

BIN = Path(sys.executable).parent
SMALL_SHOP = ["data=synthetic_shop", "data.source.n_users=150", "data.source.n_items=80"]


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "ECOMLAB_ROOT": str(cwd), **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([str(BIN / "ecomlab-data"), *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=300)


def expected_bundle(cfg: DictConfig) -> DatasetBundle:
    """The bundle a data config describes, built here without the CLI or the cache."""
    bundle = instantiate(cfg.data.source).load()
    return instantiate(cfg.data.preprocess)(bundle) if cfg.data.get("preprocess") else bundle


# --------------------------------------------------------------------------- describe.py unit tests


def test_gini_hand_examples() -> None:
    assert gini([3, 3, 3, 3]) == pytest.approx(0.0)
    for n in (1, 2, 3, 5, 10):
        assert gini([0] * (n - 1) + [7]) == pytest.approx((n - 1) / n)
    # [1, 2, 3]: sum_ij |xi - xj| = 8, 2 n^2 mean = 36
    assert gini([3, 1, 2]) == pytest.approx(8 / 36)
    assert gini([]) == 0.0 and gini([0, 0]) == 0.0
    rng = np.random.default_rng(0)
    x = rng.integers(0, 50, size=40).astype(float)
    pairwise = np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean())
    assert gini(x) == pytest.approx(pairwise)


def hand_bundle(**kwargs: Any) -> DatasetBundle:
    inter = pd.DataFrame({"user_id": ["a", "a", "b", "c"], "item_id": ["x", "y", "x", "x"],
                          "timestamp": [0, 86400, 3600, 7200], "weight": [1.0, 2.0, 1.0, 5.0]})
    text = pd.DataFrame({"item_id": ["x"], "text": ["red shoe"]})
    social = pd.DataFrame({"user_id": ["a", "b", "a"], "friend_id": ["b", "a", "c"]})
    return build_bundle("hand", inter, item_text=kwargs.pop("item_text", text), social=social, **kwargs)


def test_describe_hand_bundle() -> None:
    stats = describe_bundle(hand_bundle())
    assert (stats["users"], stats["items"], stats["interactions"]) == (3, 2, 4)
    assert stats["density"] == pytest.approx(4 / 6)
    assert stats["interactions_per_user"] == {"min": 1, "median": 1, "max": 2}
    assert stats["interactions_per_item"] == {"min": 1, "median": 2, "max": 3}
    assert stats["gini_item_popularity"] == pytest.approx(0.25)  # counts [3, 1]: 2*2 / (2*4*2)
    assert stats["social"] == {"edges": 3, "symmetric": False, "reciprocated_edges": 2, "users_with_friends": 3,
                               "users_with_friends_counts": "users with an edge in either direction",
                               "users_with_outgoing_edges": 2}  # c is only trusted: a friend edge all the same
    assert stats["text"]["items_with_text"] == 1 and stats["text"]["share_items_with_text"] == 0.5
    assert stats["time_range"] == {"start": "1970-01-01T00:00:00+00:00", "end": "1970-01-02T00:00:00+00:00"}
    assert stats["weight"] == {"min": 1.0, "max": 5.0, "mean": 2.25, "all_ones": False}
    assert stats["sales"] is None
    json.dumps(stats)  # plain JSON values only


def test_describe_sales_panel() -> None:
    days = pd.date_range("2024-01-01", periods=10, freq="D")
    sales = pd.DataFrame({"unique_id": ["s1"] * 10 + ["s2"] * 4, "ds": list(days) + list(days[:4]),
                          "y": np.arange(14.0)})
    stats = describe_bundle(build_bundle("panel", None, sales=sales))
    assert stats["interactions"] == 0
    assert stats["sales"]["series"] == 2 and stats["sales"]["length"] == {"min": 4, "median": 7, "max": 10}
    assert stats["sales"]["frequency"] == "D"
    assert stats["sales"]["date_range"] == {"start": "2024-01-01T00:00:00", "end": "2024-01-10T00:00:00"}


def test_quality_report_checks() -> None:
    clean = build_bundle("clean", pd.DataFrame({"user_id": [1, 1, 2, 2], "item_id": [1, 2, 1, 2]}))
    report = quality_report(clean)
    assert report["status"] == "clean" and exit_code(report) == 0 and report["problems"] == []

    long_text = "word " * (LONG_TEXT_CHARS // 4)
    text = pd.DataFrame({"item_id": ["x", "y", "zzz"], "text": ["caf\ufffd cr\ufffdme", long_text, "orphan"]})
    with pytest.warns(UserWarning):
        bundle = hand_bundle(item_text=text, meta={"note": 1})
    dup = pd.concat([bundle.interactions.iloc[:1]] * 2)
    with pytest.warns(UserWarning, match="duplicate"):
        dup_bundle = build_bundle("dups", dup)
    checks = {p["check"]: p for p in quality_report(bundle)["problems"]}
    assert checks["unknown_text_items"]["count"] == 1  # "zzz" has no interactions: a dangling id
    assert checks["single_interaction_users"]["count"] == 2  # users b and c
    assert checks["text_encoding"]["count"] == 1 and "2 U+FFFD" in checks["text_encoding"]["message"]
    assert checks["long_text"]["count"] == 1
    assert "items_without_text" not in checks  # both items have text here
    assert {p["severity"] for p in checks.values()} == {"warning"}
    assert exit_code(quality_report(bundle)) == 1
    assert quality_report(dup_bundle)["problems"][0] == {
        "severity": "warning", "check": "duplicate_interactions", "count": 1,
        "message": "1 duplicate (user_id, item_id, timestamp) interaction rows dropped"}

    sales = pd.DataFrame({"unique_id": ["s"] * 4, "ds": pd.date_range("2024-01-01", periods=4), "y": [1, -2, 3, -4]})
    panel = quality_report(build_bundle("panel", None, sales=sales))
    assert [(p["check"], p["count"]) for p in panel["problems"]] == [("sales_negative", 2)]

    def broken() -> DatasetBundle:
        raise DataValidationError("shop.csv: missing column(s) ['item_id']")

    failed = quality_report(broken)
    assert failed["status"] == "errors" and exit_code(failed) == 2 and failed["dataset"] is None
    assert failed["problems"] == [{"severity": "error", "check": "load", "count": None,
                                   "message": "shop.csv: missing column(s) ['item_id']"}]


# --------------------------------------------------------------------------- the command line


def test_usage_and_unknown_command(tmp_path: Path) -> None:
    proc = run("--help", cwd=tmp_path)
    assert proc.returncode == 0
    for command in ("describe", "validate", "convert", "download"):
        assert command in proc.stdout
    assert run(cwd=tmp_path).returncode == 2
    proc = run("describ", "data=synthetic_shop", cwd=tmp_path)
    assert proc.returncode == 2 and "unknown command 'describ'" in proc.stderr and "validate" in proc.stderr
    proc = run("describe", "data=no_such_data", f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    assert proc.returncode == 2 and "no_such_data" in proc.stderr


@pytest.fixture
def data_tool_cfg(compose_cfg: Callable[..., DictConfig], tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> Callable[[list[str]], DictConfig]:
    monkeypatch.setenv("ECOMLAB_ROOT", str(tmp_path))
    return lambda overrides: compose_cfg(overrides, config_name="data_tool")


def test_describe_synthetic_shop(tmp_path: Path, data_tool_cfg: Callable[[list[str]], DictConfig]) -> None:
    proc = run("describe", *SMALL_SHOP, f"hydra.run.dir={tmp_path}/run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = json.loads((tmp_path / "run" / "describe.json").read_text())
    expected = expected_bundle(data_tool_cfg(SMALL_SHOP))
    assert (stats["users"], stats["items"]) == (150, 80)
    assert stats["interactions"] == len(expected.interactions)
    assert stats["social"]["edges"] == len(expected.social) and stats["social"]["symmetric"] is True
    assert stats["sales"]["series"] == expected.sales["unique_id"].nunique()
    assert stats["sales"]["frequency"] == "D"
    assert stats["data"] == "synthetic_shop" and stats["load"]["cache"] in ("off", "miss")
    for label, value in (("users", "150"), ("items", "80"), ("interactions", f"{stats['interactions']:,}")):
        assert any(label in line and value in line for line in proc.stdout.splitlines()), (label, proc.stdout)
    # json_out puts the JSON where asked
    proc = run("describe", *SMALL_SHOP, f"json_out={tmp_path}/out/stats.json", f"hydra.run.dir={tmp_path}/run2",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["interactions"] == stats["interactions"]


LASTFM = SHARED_DATA / "lastfm-hetrec2011"


@pytest.mark.skipif(not (LASTFM / "user_artists.dat").exists(), reason="shared LastFM data not present")
@pytest.mark.skipif(not (Path(config_dir()) / "data" / "lastfm-hetrec2011.yaml").exists(),
                    reason="no lastfm-hetrec2011 data config")
def test_describe_and_validate_real_lastfm(tmp_path: Path) -> None:
    common = ["data=lastfm-hetrec2011", f"paths.data_dir={SHARED_DATA}"]
    proc = run("describe", *common, f"hydra.run.dir={tmp_path}/d", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = json.loads((tmp_path / "d" / "describe.json").read_text())
    raw = pd.read_csv(LASTFM / "user_artists.dat", sep="\t")
    friends = pd.read_csv(LASTFM / "user_friends.dat", sep="\t")
    assert stats["users"] == raw["userID"].nunique() and stats["items"] == raw["artistID"].nunique()
    assert stats["interactions"] == len(raw)
    assert stats["social"]["edges"] == len(friends) and stats["social"]["symmetric"] is True
    assert stats["time_range"] is None  # listening counts carry no time
    assert stats["text"]["share_items_with_text"] == 1.0

    proc = run("validate", *common, f"hydra.run.dir={tmp_path}/v", cwd=tmp_path)
    report = json.loads((tmp_path / "v" / "validate.json").read_text())
    assert report["errors"] == 0
    singles = int((raw.groupby("userID").size() == 1).sum())
    checks = {p["check"]: p for p in report["problems"]}
    assert checks.get("single_interaction_users", {}).get("count", 0) == singles
    assert proc.returncode == (1 if report["problems"] else 0), proc.stdout


def files_args(tmp_path: Path, name: str, frame: pd.DataFrame) -> list[str]:
    (tmp_path / "data" / "shop").mkdir(parents=True, exist_ok=True)
    frame.to_csv(tmp_path / "data" / "shop" / name, index=False)
    return ["data=files", f"data.source.interactions=shop/{name}", f"paths.data_dir={tmp_path}/data",
            f"hydra.run.dir={tmp_path}/run-{name}"]


def test_validate_exit_codes(tmp_path: Path) -> None:
    clean = pd.DataFrame({"user_id": [1, 1, 2, 2, 3, 3], "item_id": [10, 11, 10, 12, 11, 12],
                          "timestamp": [1, 2, 3, 4, 5, 6]})
    proc = run("validate", *files_args(tmp_path, "clean.csv", clean), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "clean" in proc.stdout
    assert json.loads((tmp_path / "run-clean.csv" / "validate.json").read_text())["status"] == "clean"

    dups = pd.concat([clean, clean.iloc[[0, 3]]], ignore_index=True)
    proc = run("validate", *files_args(tmp_path, "dups.csv", dups), cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
    report = json.loads((tmp_path / "run-dups.csv" / "validate.json").read_text())
    assert report["status"] == "warnings"
    assert [(p["check"], p["count"]) for p in report["problems"]] == [("duplicate_interactions", 2)]
    assert "duplicate_interactions" in proc.stdout

    broken = clean.drop(columns="item_id")
    proc = run("validate", *files_args(tmp_path, "broken.csv", broken), cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr[-3000:]
    report = json.loads((tmp_path / "run-broken.csv" / "validate.json").read_text())
    assert report["status"] == "errors" and "item_id" in report["problems"][0]["message"]
    assert "broken.csv" in report["problems"][0]["message"] and "Traceback" not in proc.stderr

    # a missing file is an error of the data, reported the same way
    args = files_args(tmp_path, "clean.csv", clean)
    args[1] = "data.source.interactions=shop/absent.csv"
    proc = run("validate", *args, cwd=tmp_path)
    assert proc.returncode == 2 and "absent.csv" in proc.stdout
    # describe on the broken file: one line on stderr, exit 2, no traceback
    proc = run("describe", *files_args(tmp_path, "broken.csv", broken), cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: ") and "Traceback" not in proc.stderr


def _comparable(stats: dict[str, Any]) -> dict[str, Any]:
    # RecBole files hold no sales panel; the name comes from the atomic files
    return {k: v for k, v in stats.items() if k not in ("name", "sales", "data", "load", "warnings")}


def test_convert_recbole_round_trip(tmp_path: Path) -> None:
    from ecomlab.data.sources.recbole import RecBoleAtomic

    proc = run("describe", *SMALL_SHOP, f"json_out={tmp_path}/d.json", f"hydra.run.dir={tmp_path}/d", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "exports" / "shop"
    proc = run("convert", *SMALL_SHOP, "to=recbole", f"out={out}", f"hydra.run.dir={tmp_path}/c", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["synthetic_shop.inter", "synthetic_shop.item",
                                                      "synthetic_shop.net"]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")], "temp folders left behind"
    back = RecBoleAtomic(data_dir=str(out.parent), folder="shop", name="synthetic_shop").load()
    stats = json.loads((tmp_path / "d.json").read_text())
    assert _comparable(describe_bundle(back)) == _comparable(stats)

    # an existing non-empty folder is refused unless +force=true, and then replaced whole
    proc = run("convert", *SMALL_SHOP, "to=parquet", f"out={out}", f"hydra.run.dir={tmp_path}/c", cwd=tmp_path)
    assert proc.returncode == 2 and "+force=true" in proc.stderr
    assert (out / "synthetic_shop.inter").exists()
    proc = run("convert", *SMALL_SHOP, "to=parquet", f"out={out}", "+force=true", f"hydra.run.dir={tmp_path}/c",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (out / "synthetic_shop.inter").exists() and (out / "bundle.json").exists()
    proc = run("convert", *SMALL_SHOP, "to=csv", f"out={tmp_path}/x", f"hydra.run.dir={tmp_path}/c", cwd=tmp_path)
    assert proc.returncode == 2 and "to=csv" in proc.stderr


def test_convert_parquet_round_trip(tmp_path: Path, data_tool_cfg: Callable[[list[str]], DictConfig]) -> None:
    from ecomlab.data.cache import read_bundle

    out = tmp_path / "parquet"
    proc = run("convert", *SMALL_SHOP, "to=parquet", f"out={out}", f"hydra.run.dir={tmp_path}/c", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = read_bundle(out)
    want = expected_bundle(data_tool_cfg(SMALL_SHOP))
    assert got.name == want.name and got.has_timestamps == want.has_timestamps
    np.testing.assert_array_equal(got.user_map.raw, want.user_map.raw)
    np.testing.assert_array_equal(got.item_map.raw, want.item_map.raw)
    for part in ("interactions", "item_text", "social", "sales"):
        pd.testing.assert_frame_equal(getattr(got, part), getattr(want, part), obj=part)
    assert got.fingerprint() == want.fingerprint()


# --------------------------------------------------------------------------- download


def make_zip(path: Path, files: dict[str, str]) -> str:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return hashlib.sha256(path.read_bytes()).hexdigest()


ML_FILES = {"ml-100k/u.data": "".join(f"{u}\t{i}\t4\t88{u}{i}\n" for u in range(1, 40) for i in range(1, 30)),
            "ml-100k/README": "test archive\n"}


def test_download_from_local_archive(tmp_path: Path) -> None:
    archive = tmp_path / "ml-100k.zip"
    sha = make_zip(archive, ML_FILES)
    dest = tmp_path / "data"
    args = ["name=ml-100k", f"dest={dest}", f"url={archive.as_uri()}", f"hydra.run.dir={tmp_path}/r"]
    proc = run("download", *args, f"+sha256={sha}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (dest / "ml-100k" / "u.data").read_text() == ML_FILES["ml-100k/u.data"]
    assert sorted(p.name for p in dest.iterdir()) == ["ml-100k"], "no .part or temp folder left behind"
    proc = run("download", *args, f"+sha256={sha}", cwd=tmp_path)
    assert proc.returncode == 0 and "already present" in proc.stdout

    # the pinned checksum of the real ml-100k applies when none is given: this archive is refused
    other = tmp_path / "other"
    proc = run("download", "name=ml-100k", f"dest={other}", f"url={archive.as_uri()}", f"hydra.run.dir={tmp_path}/r",
               cwd=tmp_path)
    assert proc.returncode == 2
    assert "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229" in proc.stderr and sha in proc.stderr
    assert not (other / "ml-100k").exists() and not list(other.glob(".*.part"))

    wrong = "0" * 64
    proc = run("download", "name=ml-100k", f"dest={other}", f"url={archive.as_uri()}", f"+sha256={wrong}",
               f"hydra.run.dir={tmp_path}/r", cwd=tmp_path)
    assert proc.returncode == 2 and wrong in proc.stderr and sha in proc.stderr and "Traceback" not in proc.stderr
    assert not other.exists(), "the folder the refused download made is gone with it"


def test_download_resumes_partial_file(tmp_path: Path) -> None:
    archive = tmp_path / "ml-100k.zip"
    sha = make_zip(archive, ML_FILES)
    data = archive.read_bytes()
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / ".ml-100k.zip.part").write_bytes(data[: len(data) // 2])
    proc = run("download", "name=ml-100k", f"dest={dest}", f"url={archive.as_uri()}", f"+sha256={sha}",
               f"hydra.run.dir={tmp_path}/r", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"resuming after {len(data) // 2:,} bytes" in proc.stdout
    assert (dest / "ml-100k" / "u.data").read_text() == ML_FILES["ml-100k/u.data"]
    assert not (dest / ".ml-100k.zip.part").exists()

    # a damaged partial file fails the checksum and is deleted, so the next run starts clean
    dest2 = tmp_path / "data2"
    dest2.mkdir()
    (dest2 / ".ml-100k.zip.part").write_bytes(b"garbage" + data[7: len(data) // 2])
    proc = run("download", "name=ml-100k", f"dest={dest2}", f"url={archive.as_uri()}", f"+sha256={sha}",
               f"hydra.run.dir={tmp_path}/r", cwd=tmp_path)
    assert proc.returncode == 2 and "checksum mismatch" in proc.stderr
    assert list(dest2.iterdir()) == []
    proc = run("download", "name=ml-100k", f"dest={dest2}", f"url={archive.as_uri()}", f"+sha256={sha}",
               f"hydra.run.dir={tmp_path}/r", cwd=tmp_path)
    assert proc.returncode == 0 and (dest2 / "ml-100k" / "u.data").exists()


def test_download_lastfm_layout_and_refusals(tmp_path: Path) -> None:
    # the LastFM zip holds its .dat files at the top level: they land in lastfm-hetrec2011/
    archive = tmp_path / "hetrec2011-lastfm-2k.zip"
    sha = make_zip(archive, {"user_artists.dat": "userID\tartistID\tweight\n2\t51\t13883\n", "readme.txt": "x\n"})
    proc = run("download", "name=hetrec2011-lastfm-2k", f"dest={tmp_path}/d", f"url={archive.as_uri()}",
               f"+sha256={sha}", f"hydra.run.dir={tmp_path}/r", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "d" / "lastfm-hetrec2011").iterdir()) == ["readme.txt",
                                                                                         "user_artists.dat"]
    # an existing but incomplete folder is not touched
    (tmp_path / "e" / "ml-1m").mkdir(parents=True)
    proc = run("download", "name=ml-1m", f"dest={tmp_path}/e", f"hydra.run.dir={tmp_path}/r", cwd=tmp_path)
    assert proc.returncode == 2 and "not a complete" in proc.stderr
    proc = run("download", "name=my-data", f"dest={tmp_path}/e", f"url={archive.as_uri()}",
               f"hydra.run.dir={tmp_path}/r", cwd=tmp_path)
    assert proc.returncode == 2 and "+sha256" in proc.stderr and "ml-100k" in proc.stderr
    proc = run("download", "name=ml-100k", f"dest={tmp_path}/e", "+sha256=abc", f"hydra.run.dir={tmp_path}/r",
               cwd=tmp_path)
    assert proc.returncode == 2 and "64 hexadecimal" in proc.stderr


class _Server(ThreadingHTTPServer):
    payload: bytes = b""
    honour_range: bool = True
    ranges: list[str | None]
    #: how many responses to cut short: the full Content-Length is announced, half the body sent, then closed
    truncate: int = 0


class _RangeHandler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        data = self.server.payload
        wanted = self.headers.get("Range")
        self.server.ranges.append(wanted)
        if wanted and self.server.honour_range:
            start = int(wanted.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            body = data[start:]
        else:
            self.send_response(200)
            body = data
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.server.truncate > 0:
            self.server.truncate -= 1
            body = body[: len(body) // 2]
            self.close_connection = True
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _RangeHandler)
    server.ranges = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("honour_range", [True, False])
def test_download_http_resume(tmp_path: Path, http_server: _Server, honour_range: bool) -> None:
    archive = tmp_path / "ml-100k.zip"
    sha = make_zip(archive, ML_FILES)
    data = archive.read_bytes()
    http_server.payload, http_server.honour_range = data, honour_range
    dest = tmp_path / "data"
    dest.mkdir()
    half = len(data) // 2
    (dest / ".ml-100k.zip.part").write_bytes(data[:half])
    url = f"http://127.0.0.1:{http_server.server_address[1]}/ml-100k.zip"
    no_proxy = {"no_proxy": "127.0.0.1", "NO_PROXY": "127.0.0.1"}
    proc = run("download", "name=ml-100k", f"dest={dest}", f"url={url}", f"+sha256={sha}",
               f"hydra.run.dir={tmp_path}/r", cwd=tmp_path, env=no_proxy)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert http_server.ranges == [f"bytes={half}-"]
    # a server that ignores Range sends the whole file again: it must replace, not be appended to, the part
    assert (dest / "ml-100k" / "u.data").read_text() == ML_FILES["ml-100k/u.data"]


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".part") or ".unpack-" in p.name]


def test_download_interrupted_transfers_resume_then_give_up_leaving_nothing(tmp_path: Path,
                                                                          http_server: _Server) -> None:
    """A connection that closes early used to be read as the whole file (a checksum mismatch); now it is
    resumed, and a transfer that keeps breaking fails with exit 2 and leaves no ``.part`` file."""
    archive = tmp_path / "ml-100k.zip"
    sha = make_zip(archive, ML_FILES)
    data = archive.read_bytes()
    http_server.payload, http_server.truncate = data, 1
    url = f"http://127.0.0.1:{http_server.server_address[1]}/ml-100k.zip"
    no_proxy = {"no_proxy": "127.0.0.1", "NO_PROXY": "127.0.0.1"}
    dest = tmp_path / "data"
    proc = run("download", "name=ml-100k", f"dest={dest}", f"url={url}", f"+sha256={sha}",
               f"hydra.run.dir={tmp_path}/r", cwd=tmp_path, env=no_proxy)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert f"interrupted after {len(data) // 2:,} bytes" in proc.stdout and "resuming (2/3)" in proc.stdout
    assert http_server.ranges == [None, f"bytes={len(data) // 2}-"]
    assert (dest / "ml-100k" / "u.data").read_text() == ML_FILES["ml-100k/u.data"]

    http_server.truncate = 100
    dest = tmp_path / "broken"
    proc = run("download", "name=ml-100k", f"dest={dest}", f"url={url}", f"+sha256={sha}",
               f"hydra.run.dir={tmp_path}/r", cwd=tmp_path, env=no_proxy)
    assert proc.returncode == 2, proc.stdout + proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "download interrupted 3 times" in errors[0] and "Traceback" not in proc.stderr
    assert not dest.exists() and not _leftovers(tmp_path)


@pytest.mark.parametrize("case", ["not-a-zip", "no-marker", "unsafe-entry"])
def test_a_refused_archive_leaves_nothing(tmp_path: Path, case: str) -> None:
    """The checksum matched (the user pinned it) but the archive is refused: no ``.part``, no half-unpacked
    folder, no temp folder stays."""
    archive = tmp_path / "ml-100k.zip"
    if case == "not-a-zip":
        archive.write_bytes(b"user_id,item_id\n1,2\n" * 100)
        sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    else:
        files = {"ml-100k/README": "no ratings here\n"} if case == "no-marker" else {**ML_FILES, "../evil.txt": "x"}
        sha = make_zip(archive, files)
    dest = tmp_path / "data"
    dest.mkdir()
    proc = run("download", "name=ml-100k", f"dest={dest}", f"url={archive.as_uri()}", f"+sha256={sha}",
               f"hydra.run.dir={tmp_path}/r", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr[-3000:]
    message = {"not-a-zip": "not a zip archive", "no-marker": "does not contain u.data",
               "unsafe-entry": "refusing unsafe entry"}[case]
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert list(dest.iterdir()) == [] and not _leftovers(tmp_path) and not list(tmp_path.rglob("evil*"))


def test_convert_a_forecasting_set_says_what_it_wrote(tmp_path: Path) -> None:
    """It printed "(0 users, 0 items, 0 interactions)" for a sales panel."""
    out = tmp_path / "retail"
    proc = run("convert", "data=retail_series", "to=parquet", f"out={out}", f"hydra.run.dir={tmp_path}/r",
               f"paths.cache_dir={tmp_path}/cache", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sales = pd.read_parquet(out / "sales.parquet")
    said = f"({sales['unique_id'].nunique()} sales series, {len(sales):,} observations) as parquet to {out}"
    wrote = [line for line in proc.stdout.splitlines() if line.startswith("wrote ")]
    assert len(wrote) == 1 and said in wrote[0] and "users" not in wrote[0] and "sales.parquet" in wrote[0], wrote
