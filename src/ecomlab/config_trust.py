"""Which ``_target_`` values a config read from disk may name before ecomlab instantiates it.

Hydra's ``instantiate`` imports and calls whatever a ``_target_`` names, so a run directory's ``config.yaml``
(``ecomlab-eval``, ``ecomlab-export``, ``ecomlab-compare --report``) or a bundle's model JSON (``ecomlab.load``,
``ecomlab-serve``) is code unless its targets are checked first. :func:`check_targets` walks a config at every
nesting level (mappings and lists alike) and refuses, naming the file and the key path:

* a ``_target_`` whose dotted name does not start with one of the allowed prefixes (checked before anything is
  imported: importing a module can run code);
* a ``_target_`` that resolves to anything but a class defined under an allowed package (``ecomlab.models.nn``
  is ``torch.nn``, ``ecomlab.models.neumf.torch.load`` a function: neither is ecomlab's own class);
* a string holding ``${``: configs are checked resolved, and OmegaConf would resolve such a string again when
  the config is rebuilt for instantiation (``${oc.create:...}`` builds a new mapping, ``_target_`` and all).

:data:`RUN_CONFIG_TARGETS` are what ``configs/`` itself uses (a test walks ``configs/`` to keep it so): ecomlab's
own classes (data modules, models, tasks, callbacks, plugins), ``torch.optim`` (optimizers, schedulers),
PyG's graph convolutions (``torch_geometric.nn.conv``), Lightning's ``Trainer``, callbacks and loggers.
:data:`BUNDLE_TARGETS` are the model classes a bundle rebuilds: ``ecomlab.models`` only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

#: (prefix of the ``_target_`` string, package the class must be defined in) pairs a run's config may use
RUN_CONFIG_TARGETS: tuple[tuple[str, str], ...] = (
    ("ecomlab.", "ecomlab."),
    ("torch.optim.", "torch.optim."),
    ("torch_geometric.nn.conv.", "torch_geometric.nn.conv."),  # a social GNN's pluggable convolution
    ("pytorch_lightning.Trainer", "pytorch_lightning.trainer."),
    ("pytorch_lightning.callbacks.", "pytorch_lightning.callbacks."),
    ("pytorch_lightning.loggers.", "pytorch_lightning.loggers."),
)
#: what a bundle's model JSON may name: ecomlab's own networks and forecasters
BUNDLE_TARGETS: tuple[tuple[str, str], ...] = (("ecomlab.models.", "ecomlab.models."),)


class UntrustedConfigError(ValueError):
    """A config read from disk names something ecomlab will not instantiate from a file."""


def _key(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _refusal(target: Any, allowed: Sequence[tuple[str, str]]) -> str | None:
    """Why ``target`` may not be instantiated, or None."""
    if not isinstance(target, str):
        return f"{target!r} is not a dotted class name"
    if not any(target == prefix or target.startswith(prefix) for prefix, _ in allowed):
        return "outside " + ", ".join(p.rstrip(".") for p, _ in allowed)
    try:
        obj = hydra.utils.get_object(target)
    except Exception as err:  # noqa: BLE001 -- any failure to import it is a refusal, reported in one line
        return f"cannot be imported ({type(err).__name__})"
    home = getattr(obj, "__module__", "") or ""
    if not isinstance(obj, type):
        return f"resolves to {type(obj).__name__} {home}.{getattr(obj, '__qualname__', '?')}, not a class"
    if not any(home.startswith(package) for _, package in allowed):
        return f"resolves to {home}.{obj.__qualname__}, defined outside the allowed packages"
    return None


def check_targets(config: Any, source: str | Path, allowed: Sequence[tuple[str, str]], hint: str = "",
                  path: str = "") -> None:
    """Refuse (:class:`UntrustedConfigError`, naming ``source`` and the key path) any ``_target_`` of the plain
    (resolved) container ``config`` outside ``allowed``, and any string that would be interpolated again."""
    if isinstance(config, Mapping):
        items: Any = config.items()
    elif isinstance(config, list | tuple):
        items = enumerate(config)
    else:
        if isinstance(config, str) and "${" in config:
            raise UntrustedConfigError(f"{source}: key {path or '<root>'} holds an interpolation {config[:60]!r}; "
                                       f"a config read from a file is used resolved, refusing to resolve it again"
                                       f"{hint}")
        return
    for key, value in items:
        where = _key(path, key)
        if isinstance(key, str) and "${" in key:
            raise UntrustedConfigError(f"{source}: key {where} is an interpolation; refusing it{hint}")
        if key == "_target_":
            problem = _refusal(value, allowed)
            if problem:
                raise UntrustedConfigError(f"{source}: key {where} = {value!r} is {problem}; refusing to "
                                           f"instantiate it{hint}")
        else:
            check_targets(value, source, allowed, hint, where)


def load_run_config(path: Path, trust: bool = False, flag: str = "trust_config=true") -> DictConfig:
    """A run directory's ``config.yaml``, resolved and (unless ``trust``) checked by :func:`check_targets`
    against :data:`RUN_CONFIG_TARGETS`. A file that is not YAML or not a mapping is a ``ValueError`` naming it."""
    import yaml

    try:
        loaded = OmegaConf.load(path)
    except yaml.YAMLError as err:
        detail = " ".join(str(err).split())
        raise ValueError(f"{path}: not valid YAML ({detail[:200]})") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not a text file ({err.reason})") from None
    except OSError as err:  # OmegaConf's answer to a YAML scalar at the top ("Invalid loaded object type")
        raise ValueError(f"{path}: not a config ({err}); expected a mapping of config keys") from None
    if not isinstance(loaded, DictConfig):
        raise ValueError(f"{path}: expected a mapping of config keys, got a {type(loaded).__name__}")
    if trust:
        return loaded
    resolved = OmegaConf.to_container(loaded, resolve=True)
    check_targets(resolved, path, RUN_CONFIG_TARGETS, hint=f" (pass {flag} to run a config you trust)")
    cfg = OmegaConf.create(resolved)
    assert isinstance(cfg, DictConfig)
    return cfg
