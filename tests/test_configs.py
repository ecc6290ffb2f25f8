"""Every config composes, passes the start-up validation (``ecomlab.config_schema``) and every ``_target_`` in
it instantiates."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra_plugins.hydra_optuna_sweeper._impl import create_optuna_distribution_from_override
from omegaconf import OmegaConf

from ecomlab.config_schema import validate_config
from ecomlab.tasks.forecasting import ForecastTask
from ecomlab.tasks.ranking import RankingTask
from ecomlab.train import check_task_matches_data, resolved_task_args
from ecomlab.utils import config_dir, instantiate_with_dims

CONFIGS = Path(config_dir())


def names(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


def kind_of(group: str, name: str) -> str:
    target = OmegaConf.load(CONFIGS / group / f"{name}.yaml")["_target_"]
    return hydra.utils.get_object(target).kind


RANKING_DATA = [d for d in names("data") if kind_of("data", d) == "ranking" and d not in ("files", "split-files")]
FORECAST_DATA = [d for d in names("data") if kind_of("data", d) == "forecasting"]


def test_groups_are_populated() -> None:
    for group in ("data", "model", "trainer", "logger", "callbacks", "experiment", "paths", "hydra", "hparams_search"):
        assert names(group), f"configs/{group} is empty"


@pytest.mark.parametrize("data", names("data"))
def test_data_config_instantiates(compose_cfg, data: str, tmp_path: Path) -> None:
    overrides = [f"data={data}"]
    # configs whose file names are left for the user (`???`) get a placeholder
    overrides += {"files": ["data.source.interactions=inter.csv"],
                  "recbole": ["data.source.folder=x", "data.source.name=x"],
                  "recbole-benchmark": ["data.source.folder=x", "data.source.name=x"],
                  "split-files": ["data.source.interactions={train: a.csv, test: b.csv}"],
                  "user-item-lists": ["data.source.folder=x"],
                  "sales-file": ["data.source.path=x.csv"]}.get(data, [])
    model = "popularity" if kind_of("data", data) == "ranking" else "seasonal_naive"
    cfg = compose_cfg(overrides + [f"model={model}"])
    validate_config(cfg)
    dm = hydra.utils.instantiate(cfg.data)
    assert dm.kind == kind_of("data", data)


@pytest.mark.parametrize("model", names("model"))
def test_model_config_instantiates_with_sizes_from_data(compose_cfg, model: str) -> None:
    data = RANKING_DATA[0] if kind_of("model", model) == "ranking" else FORECAST_DATA[0]
    cfg = compose_cfg([f"model={model}", f"data={data}"])
    validate_config(cfg)
    dims = {"n_users": 7, "n_items": 11, "n_series": 3, "horizon": 4, "season_length": 12}
    net = instantiate_with_dims(cfg.model.net, dims)
    task = hydra.utils.instantiate(cfg.model, net=net, **resolved_task_args(cfg.model, dims))
    assert isinstance(task, RankingTask | ForecastTask)
    assert task.monitor.startswith("val/") and task.mode in ("min", "max")
    if getattr(net, "n_items", None) is not None:
        assert net.n_items == 11
    if task.trainable:
        optimizer = task.configure_optimizers()
        assert optimizer is not None


def test_sizes_written_into_yaml_are_refused(compose_cfg) -> None:
    cfg = compose_cfg(["model=bpr", "+model.net.n_items=5"])
    with pytest.raises(ValueError, match="come from the data module"):
        instantiate_with_dims(cfg.model.net, {"n_users": 3, "n_items": 4})


def test_model_and_data_of_different_tasks_are_refused(compose_cfg) -> None:
    cfg = compose_cfg(["model=arima", "data=movielens_small"])
    with pytest.raises(ValueError, match="forecasting model but data=movielens_small"):
        check_task_matches_data(cfg)


@pytest.mark.parametrize("trainer", names("trainer"))
def test_trainer_configs(compose_cfg, trainer: str) -> None:
    cfg = compose_cfg([f"trainer={trainer}"])
    validate_config(cfg)
    assert cfg.trainer._target_ == "pytorch_lightning.Trainer"
    if trainer == "gpu" and not torch.cuda.is_available():
        assert cfg.trainer.precision == "bf16-mixed"
        return
    trainer_obj = hydra.utils.instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    assert trainer_obj.max_epochs == cfg.trainer.max_epochs


@pytest.mark.parametrize("logger", names("logger"))
def test_logger_configs(compose_cfg, logger: str) -> None:
    cfg = compose_cfg([f"logger={logger}"])
    validate_config(cfg)
    for conf in cfg.logger.values():
        assert hydra.utils.instantiate(conf) is not None


@pytest.mark.parametrize("callbacks", names("callbacks"))
def test_callback_configs(compose_cfg, callbacks: str) -> None:
    cfg = compose_cfg([f"callbacks={callbacks}", "model=bpr"])
    validate_config(cfg)
    for conf in (cfg.callbacks or {}).values():
        assert hydra.utils.instantiate(conf) is not None


@pytest.mark.parametrize("experiment", names("experiment"))
def test_experiment_configs_compose(compose_cfg, experiment: str) -> None:
    cfg = compose_cfg([f"experiment={experiment}"])
    validate_config(cfg)
    OmegaConf.resolve(cfg)
    check_task_matches_data(cfg)
    text = (CONFIGS / "experiment" / f"{experiment}.yaml").read_text()
    assert text.startswith("# @package _global_"), "experiment recipes start with the package header"
    assert "ecomlab-train" in text or "make train" in text, "experiment recipes name the command that runs them"


@pytest.mark.parametrize("search", names("hparams_search"))
def test_hparams_search_configs_compose_and_search_existing_keys(compose_cfg, search: str) -> None:
    text = (CONFIGS / "hparams_search" / f"{search}.yaml").read_text()
    assert text.startswith("# @package _global_") and f"hparams_search={search}" in text
    model = OmegaConf.load(CONFIGS / "hparams_search" / f"{search}.yaml")["defaults"][0]["override /model"]
    data = RANKING_DATA[0] if kind_of("model", model) == "ranking" else FORECAST_DATA[0]
    cfg = compose_cfg([f"hparams_search={search}", f"data={data}"])
    validate_config(cfg)
    sweeper = HydraConfig.get().sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.sampler.seed is not None
    assert cfg.optimized_metric == cfg.model.monitor
    assert sweeper.direction == {"max": "maximize", "min": "minimize"}[cfg.model.mode]
    assert any(c._target_ == "ecomlab.train.SearchSpaceRecorder" for c in HydraConfig.get().callbacks.values())
    # every searched key exists, and the search space's corner (each distribution's low end or first choice)
    # builds the model
    corner = []
    for key, expression in sweeper.params.items():
        assert OmegaConf.select(cfg, key) is not None, f"{search} searches {key}, which the config lacks"
        override = OverridesParser.create().parse_override(f"{key}={expression}")
        distribution = create_optuna_distribution_from_override(override)
        choices = getattr(distribution, "choices", None)
        corner.append(f"{key}={choices[0] if choices else distribution.low}")
    cfg = compose_cfg([f"hparams_search={search}", f"data={data}", *corner])
    validate_config(cfg)  # the search space's corner passes the start-up validation as well
    dims = {"n_users": 7, "n_items": 11, "n_series": 3, "horizon": 4, "season_length": 12}
    net = instantiate_with_dims(cfg.model.net, dims)
    task = hydra.utils.instantiate(cfg.model, net=net, **resolved_task_args(cfg.model, dims))
    assert task.configure_optimizers() is not None


def test_eval_config_composes(compose_cfg) -> None:
    cfg = compose_cfg(["run_dir=/nowhere"], config_name="eval")
    assert cfg.ckpt == "best"
