"""Start-up config validation (``ecomlab.config_schema``): bad keys, types and ranges are refused with their key
path and what is allowed, before any data is loaded. That every committed config passes is checked where
``tests/test_configs.py`` composes them."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra_plugins.hydra_optuna_sweeper._impl import create_optuna_distribution_from_override
from omegaconf import DictConfig, OmegaConf, open_dict

from ecomlab.config_schema import GROUPS, SCHEMAS, ConfigValidationError, rule_for, validate_config
from ecomlab.utils import config_dir

BIN = Path(sys.executable).parent
SHOP = ["data=synthetic_shop", "model=bpr"]
SALES = ["data=retail_series", "model=lstm"]

# (overrides, key path the message must name, what the message must say is allowed)
BAD = [
    ([*SHOP, "+model.net.embeding_dim=32"], "model.net.embeding_dim", "did you mean embedding_dim?"),
    ([*SHOP, "+data.batchsize=64"], "data.batchsize", "did you mean batch_size"),
    ([*SHOP, "+model.optimizer.betas_=[0.9,0.99]"], "model.optimizer.betas_", "did you mean betas?"),
    ([*SHOP, "+trainer.max_epoch=3"], "trainer.max_epoch", "did you mean max_epochs"),
    ([*SHOP, "+sed=3"], "sed", "did you mean seed?"),
    ([*SHOP, "+eval.k=[10]"], "eval.k", "did you mean ks?"),
    ([*SHOP, "model.optimizer.lr=-0.01"], "model.optimizer.lr", "a finite number > 0"),
    ([*SHOP, "model.optimizer.weight_decay=-1"], "model.optimizer.weight_decay", "a finite number >= 0"),
    ([*SHOP, "model.optimizer.lr=fast"], "model.optimizer.lr", "a finite number > 0"),
    ([*SHOP, "eval.ks=[0,10]"], "eval.ks", "each an integer >= 1"),
    ([*SHOP, "eval.ks=[]"], "eval.ks", "non-empty list"),
    ([*SHOP, "data.split.ratios=[0.8,0.1,0.2]"], "data.split.ratios", "summing to 1"),
    ([*SHOP, "data.split.ratios=[0.5,0.5]"], "data.split.ratios", "3 numbers (train, val, test)"),
    ([*SHOP, "data.batch_size=-5"], "data.batch_size", "an integer >= 1"),
    ([*SHOP, "data.num_negatives=0"], "data.num_negatives", "an integer >= 1"),
    ([*SHOP, "data.eval_negatives=0"], "data.eval_negatives", "an integer >= 1 or null"),
    ([*SHOP, "model.net.embedding_dim=0"], "model.net.embedding_dim", "an integer >= 1"),
    ([*SHOP, "model.net.embedding_dim=12.5"], "model.net.embedding_dim", "an integer >= 1"),
    ([*SHOP, "trainer.max_epochs=-3"], "trainer.max_epochs", "an integer >= 1 or -1"),
    ([*SHOP, "trainer.max_epochs=ten"], "trainer.max_epochs", "wrong type; expected int or null"),
    ([*SHOP, "+trainer.precision=8"], "trainer.precision", "'bf16-mixed'"),
    ([*SHOP, "trainer.accelerator=quantum"], "trainer.accelerator", "one of 'cpu', 'gpu'"),
    ([*SHOP, "trainer.devices=0"], "trainer.devices", "'auto', an integer >= 1"),
    ([*SHOP, "seed=-1"], "seed", "an integer >= 0"),
    ([*SHOP, "deterministic=maybe"], "deterministic", "wrong type; expected bool"),
    ([*SHOP, "data.preprocess.duplicates=merge"], "data.preprocess.duplicates", "one of 'keep_all', 'keep_last'"),
    ([*SHOP, "model.mode=maximise"], "model.mode", "one of 'min', 'max'"),
    ([*SHOP, "model=neumf", "model.net.dropout=1.0"], "model.net.dropout", ">= 0 and < 1"),
    ([*SHOP, "model=lightgcn", "model.net.n_layers=-1"], "model.net.n_layers", "an integer >= 0"),
    ([*SHOP, "model.net._target_=ecomlab.models.bpr.NoSuchModel"], "model.net._target_", "cannot import"),
    ([*SALES, "data.backtest.horizon=0"], "data.backtest.horizon", "an integer >= 1"),
    ([*SALES, "model.net.decoder=sideways"], "model.net.decoder", "one of 'direct', 'recursive'"),
    ([*SALES, "model.net.head.quantiles=[0.1,1.5]"], "model.net.head.quantiles", "> 0 and < 1"),
    ([*SALES, "model.levels=[80,100]"], "model.levels", "> 0 and < 100"),
    ([*SHOP, "callbacks.early_stopping.patience=-2"], "callbacks.early_stopping.patience", "an integer >= 0"),
]


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[list[str]], DictConfig]:
    """``configs(overrides)``: group choices (``model=neumf``) composed once per module, key overrides parsed as
    Hydra parses them and applied to a copy -- composing every case afresh would cost ~0.5 s each."""
    root = tmp_path_factory.mktemp("schema")
    composed: dict[tuple[str, ...], DictConfig] = {}
    parser = OverridesParser.create()

    def get(overrides: list[str]) -> DictConfig:
        groups = tuple(o for o in overrides if "." not in o.split("=", 1)[0] and o.split("=", 1)[0] in GROUPS)
        if groups not in composed:
            GlobalHydra.instance().clear()
            with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
                cfg = compose("train", overrides=list(groups))
            GlobalHydra.instance().clear()
            with open_dict(cfg):
                for key in ("output_dir", "log_dir", "data_dir", "cache_dir"):
                    cfg.paths[key] = str(root / key)
            composed[groups] = cfg
        cfg = copy.deepcopy(composed[groups])
        for text in overrides:
            if text in groups:
                continue
            override = parser.parse_override(text)
            OmegaConf.update(cfg, override.key_or_group, override.value(), force_add=override.is_add())
        return cfg

    return get


@pytest.mark.parametrize(("overrides", "path", "allowed"), BAD, ids=[b[1] + "=" + b[0][-1].split("=", 1)[1]
                                                                        for b in BAD])
def test_bad_override_is_refused_with_key_path_and_allowed_values(configs, overrides: list[str], path: str,
                                                                  allowed: str) -> None:
    with pytest.raises(ConfigValidationError) as info:
        validate_config(configs(overrides))
    message = str(info.value)
    lines = [line.strip() for line in message.splitlines()[1:]]
    assert any(line.startswith(f"{path}:") and allowed in line for line in lines), message
    assert len(lines) == 1, f"one bad value, one problem reported:\n{message}"


def test_the_same_overrides_pass_hydra_composition(compose_cfg) -> None:
    """The table applies overrides to pre-composed configs; a few of them through Hydra itself give the same."""
    for overrides, path, _ in (BAD[0], BAD[6], BAD[27]):
        with pytest.raises(ConfigValidationError, match=rf"\n  {re.escape(path)}: "):
            validate_config(compose_cfg(overrides))


def test_every_problem_is_reported_at_once(compose_cfg) -> None:
    cfg = compose_cfg([*SHOP, "model.optimizer.lr=0", "+model.net.dim=3", "trainer.max_epochs=0"])
    with pytest.raises(ConfigValidationError, match=r"invalid config \(3 problems") as info:
        validate_config(cfg)
    assert "allowed: embedding_dim, n_items, n_users, reg_weight" in str(info.value)


def test_valid_edge_values_pass(compose_cfg) -> None:
    cfg = compose_cfg([*SHOP, "data.split.ratios=[0.9,0.0,0.1]", "trainer.max_epochs=-1", "trainer.devices=[0]",
                       "model.optimizer.weight_decay=0", "eval.ks=[1]", "data.eval_negatives=100",
                       "trainer.limit_train_batches=0.5", "+trainer.precision=bf16-mixed",
                       "+model.optimizer.betas=[0.9,0.99]"])
    validate_config(cfg)
    # a class-qualified rule: the LSTM's series embedding may be switched off, BPR's embedding may not
    validate_config(compose_cfg([*SALES, "model.net.embedding_dim=0"]))
    validate_config(compose_cfg(["data=retail_series", "model=lstm_ensemble", "model.net.member.embedding_dim=0"]))


@pytest.mark.parametrize("search", sorted(p.stem for p in (Path(config_dir()) / "hparams_search").glob("*.yaml")))
def test_search_space_upper_corner_passes(compose_cfg, search: str) -> None:
    """tests/test_configs.py validates each search space's lower corner; this is the upper one."""
    model = OmegaConf.load(Path(config_dir()) / "hparams_search" / f"{search}.yaml")["defaults"][0]["override /model"]
    data = "retail_series" if model.startswith("lstm") else "synthetic_shop"
    compose_cfg([f"hparams_search={search}", f"data={data}"])
    corner = []
    for key, expression in HydraConfig.get().sweeper.params.items():
        distribution = create_optuna_distribution_from_override(
            OverridesParser.create().parse_override(f"{key}={expression}"))
        choices = getattr(distribution, "choices", None)
        corner.append(f"{key}={choices[-1] if choices else distribution.high}")
    validate_config(compose_cfg([f"hparams_search={search}", f"data={data}", *corner]))


def test_schemas_are_registered_in_the_config_store() -> None:
    repo = ConfigStore.instance().repo
    assert {f"ecomlab_schema_{name}.yaml" for name in SCHEMAS} <= set(repo)
    assert rule_for("model.optimizer.lr") is not None and rule_for("data.split.ratios") is not None
    assert rule_for("model.net.embed_dropout") is rule_for("model.net.dropout")
    assert rule_for("model.net.no_rule_for_this") is None


def test_entry_point_exits_2_naming_the_key_before_loading_data(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """``ecomlab-train`` in this process (its real wrappers); the slow test below runs real subprocesses."""
    from hydra.core.global_hydra import GlobalHydra

    from ecomlab.train import main

    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.setenv("ECOMLAB_ROOT", str(tmp_path))
    # the LastFM files are not there: had the data been loaded first, the error would name a missing file
    monkeypatch.setattr(sys, "argv", ["ecomlab-train", "model=bpr", "data=lastfm-hetrec2011",
                                      f"paths.data_dir={tmp_path}/no_data", "model.optimizer.lr=-1e-3",
                                      f"hydra.run.dir={tmp_path}/run"])
    GlobalHydra.instance().clear()
    with pytest.raises(SystemExit) as exit_info:
        main()
    GlobalHydra.instance().clear()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err[-3000:]
    assert "model.optimizer.lr: -0.001 is not allowed; expected a finite number > 0" in err
    assert "Traceback" not in err and "no_data" not in err
    assert not (tmp_path / "run" / "metrics.json").exists()


def _cli(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "ECOMLAB_ROOT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.Popen([str(BIN / "ecomlab-train"), *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow  # three real ecomlab-train processes: ~60 s of interpreter and import start-up on 2 shared cores
def test_cli_refuses_bad_config_with_exit_2_before_loading_data(tmp_path: Path) -> None:
    # the LastFM files are not there: had the data been loaded first, the error would name a missing file
    nodata = ["data=lastfm-hetrec2011", f"paths.data_dir={tmp_path}/no_data"]
    cases = {
        "typo": (["model=bpr", *nodata, "+model.net.embeding_dim=16"],
                 "model.net.embeding_dim: not a parameter of ecomlab.models.bpr.BPRMF; did you mean embedding_dim?"),
        "lr": (["model=bpr", *nodata, "model.optimizer.lr=-1e-3"],
               "model.optimizer.lr: -0.001 is not allowed; expected a finite number > 0"),
        "ratios": (["model=popularity", *nodata, "data.split.ratios=[0.7,0.2,0.2]"],
                   "data.split.ratios: [0.7, 0.2, 0.2] is not allowed; expected 3 numbers"),
    }
    procs = {name: _cli(tmp_path, *args, f"hydra.run.dir={tmp_path}/{name}") for name, (args, _) in cases.items()}
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 2, err[-3000:]
        assert cases[name][1] in err and "Traceback" not in err, err[-3000:]
        assert "no_data" not in err, "the data set must not be touched before the config is valid"
        assert not (tmp_path / name / "metrics.json").exists()
