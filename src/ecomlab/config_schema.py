"""Start-up validation of a composed ``ecomlab-train`` config, before anything is instantiated or loaded.

Hydra composes the config but checks neither the keyword arguments that reach a ``_target_`` nor their values,
so a misspelled key, a string where a number belongs or a negative learning rate would surface only after the
data set is loaded, or not at all. :func:`validate_config` walks the composed config once and reports every
problem with its key path and what is allowed:

1. **Keys against signatures.** Every node with a ``_target_`` (at any depth, lists included) may only carry the
   parameters of the class or function it names (``__init__`` of a class), plus Hydra's ``_partial_`` /
   ``_recursive_`` / ``_convert_`` / ``_args_``; a target taking ``**kwargs`` accepts anything. Unknown keys
   get a difflib "did you mean" and the list of allowed keys. Where a parameter's annotation is a plain
   ``int`` / ``float`` / ``bool``, a ``Literal[...]`` or an optional / union of those, the value's type is
   checked too (a partial's missing arguments are fine: they are bound later).
2. **Typed schemas for the fixed groups.** :class:`RootSchema` (``seed``, ``deterministic``, ``eval`` ...),
   :class:`EvalSchema` and :class:`TrainerSchema` are dataclasses registered in Hydra's ConfigStore
   (``ecomlab_schema_<name>``); their field types are enforced through OmegaConf's structured configs, their ranges
   through the ``rule`` in each field's metadata. Top-level keys outside the schema are refused.
3. **Range rules** (:data:`RULES`) keyed by the end of the key path (``lr``, ``*dropout``, ``split.ratios``
   ...), so they apply to every model and data config that uses the name.

Errors raise :class:`ConfigValidationError` (a ``ValueError``: the entry points exit with code 2 and print the
message, see :mod:`ecomlab.cli`).
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import inspect
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Union

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

#: keys Hydra's instantiate consumes itself
HYDRA_KEYS = frozenset({"_target_", "_partial_", "_recursive_", "_convert_", "_args_"})
#: top-level groups of ``train.yaml``; their contents are checked by signature and rules, not by a dataclass
GROUPS = ("data", "model", "trainer", "logger", "callbacks", "paths")


class ConfigValidationError(ValueError):
    """The composed config has keys or values that cannot work; the message lists each with its key path."""


# --- value rules ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """``check(value)`` is True for an allowed value; ``allowed`` says what is allowed, for the message."""

    check: Callable[[Any], bool]
    allowed: str


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _describe(value: Any) -> str:
    """A value as it is written in YAML or an override (null, true), for messages."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return repr(value)


def integer(low: int | None = None, high: int | None = None, *, nullable: bool = False,
            also: Iterable[Any] = ()) -> Rule:
    extra = tuple(also)
    text = "an integer" + (f" >= {low}" if low is not None else "") + (" and" if None not in (low, high) else "")
    text += f" <= {high}" if high is not None else ""
    text += "".join(f" or {_describe(x)}" for x in extra) + (" or null" if nullable else "")
    return Rule(lambda v: (nullable and v is None) or (any(v == x and type(v) is type(x) for x in extra))
                or (_is_int(v) and (low is None or v >= low) and (high is None or v <= high)), text)


def number(*, gt: float | None = None, ge: float | None = None, lt: float | None = None, le: float | None = None,
           nullable: bool = False) -> Rule:
    bounds = [(gt, ">"), (ge, ">="), (lt, "<"), (le, "<=")]
    text = "a finite number" + " and".join(f" {op} {b}" for b, op in bounds if b is not None)
    text += " or null" if nullable else ""

    def ok(v: Any) -> bool:
        if v is None:
            return nullable
        return (_is_number(v) and (gt is None or v > gt) and (ge is None or v >= ge) and (lt is None or v < lt)
                and (le is None or v <= le))

    return Rule(ok, text)


def one_of(*values: Any, nullable: bool = False) -> Rule:
    allowed = list(values) + ([None] if nullable else [])
    return Rule(lambda v: any(v == a and type(v) is type(a) for a in allowed) or (v is None and nullable),
                "one of " + ", ".join(_describe(a) for a in allowed))


def list_of(item: Rule, *, nonempty: bool = True, nullable: bool = False) -> Rule:
    text = f"a {'non-empty ' if nonempty else ''}list whose items are each {item.allowed}"
    return Rule(lambda v: (nullable and v is None)
                or (isinstance(v, list | tuple) and (len(v) > 0 or not nonempty) and all(item.check(x) for x in v)),
                text + (" or null" if nullable else ""))


def _ratios_ok(v: Any) -> bool:
    return (isinstance(v, list | tuple) and len(v) == 3 and all(_is_number(r) and 0 <= r <= 1 for r in v)
            and v[0] > 0 and abs(sum(v) - 1.0) <= 1e-6)


#: (train, val, test) shares as :func:`ecomlab.data.splits._check_ratios` accepts them; val or test may be 0
RATIOS = Rule(_ratios_ok, "3 numbers (train, val, test) in [0, 1] with train > 0, summing to 1")


def _devices_ok(v: Any) -> bool:
    if v == "auto" or (_is_int(v) and (v >= 1 or v == -1)):
        return True
    if isinstance(v, str):
        parts = [p.strip() for p in v.split(",") if p.strip()]
        return v.strip() == "-1" or (bool(parts) and all(p.isdigit() for p in parts))
    return isinstance(v, list | tuple) and len(v) > 0 and all(_is_int(d) and d >= 0 for d in v)


DEVICES = Rule(_devices_ok, "'auto', an integer >= 1 (or -1: all), a list of device indices or a string like '0,1'")
PRECISIONS = ("transformer-engine", "transformer-engine-float16", "16-true", "16-mixed", "bf16-true", "bf16-mixed",
              "32-true", "64-true", 64, 32, 16, "64", "32", "16", "bf16")
LIMIT_BATCHES = Rule(lambda v: v is None or (_is_int(v) and v >= 0) or (_is_number(v) and 0.0 <= v <= 1.0),
                     "null, an integer >= 0 (batches) or a float in [0, 1] (fraction)")

#: range rules by key-path suffix (fnmatch pattern on the last dotted components); first match wins. A pattern
#: ``Class:key`` applies only to keys of a node whose ``_target_`` names that class.
RULES: list[tuple[str, Rule]] = [
    # the LSTM forecaster's series embedding is optional (0 switches it off)
    ("LSTMForecaster:embedding_dim", integer(0)),
    # optimisation
    ("lr", number(gt=0)),
    ("learning_rate", number(gt=0)),
    ("weight_decay", number(ge=0)),
    ("*_weight", number(ge=0)),
    ("momentum", number(ge=0, lt=1)),
    ("*temperature", number(gt=0)),
    ("noise_eps", number(ge=0)),
    ("scheduler.T_max", integer(1)),
    ("scheduler.eta_min", number(ge=0)),
    # architecture
    ("embedding_dim", integer(1)),
    ("hidden_size", integer(1)),
    ("mlp_size", integer(1)),
    ("mlp_layers", list_of(integer(1))),
    ("pretrained_dim", integer(1)),
    ("max_seq_length", integer(1)),
    ("n_layers", integer(0)),
    ("*dropout", number(ge=0, lt=1)),
    ("net.k", integer(1)),
    ("shrink", number(ge=0)),
    ("hash_buckets", integer(0)),
    ("n_samples", integer(1)),
    ("quantiles", list_of(number(gt=0, lt=1))),
    ("n_jobs", integer(1, also=[-1])),
    # data
    ("*batch_size", integer(1)),
    ("num_negatives", integer(1)),
    ("eval_negatives", integer(1, nullable=True)),
    ("num_workers", integer(0)),
    ("split.ratios", RATIOS),
    ("*_k_core", integer(0)),
    ("min_series_length", integer(0)),
    ("preprocess.duplicates", one_of("keep_all", "keep_last", "sum")),
    ("preprocess.fill_gaps", one_of("error", "zero", "ffill", "nan")),
    ("rating_threshold", number(nullable=True)),
    ("source.n_users", integer(1)),
    ("source.n_items", integer(1)),
    ("backtest.horizon", integer(1, nullable=True)),  # null: from the panel's frequency
    ("horizon", integer(1)),
    ("season_length", integer(1, nullable=True)),  # null: from the panel's frequency
    ("input_size", integer(1, nullable=True)),
    ("windows_per_epoch", integer(1)),
    ("backtest.n_windows", integer(1)),
    ("backtest.step", integer(1, nullable=True)),
    ("backtest.val_windows", integer(0)),
    ("backtest.min_train", integer(1, nullable=True)),
    ("train_window_limit", integer(1, nullable=True)),
    ("train_sampling", one_of("window", "series")),
    ("seed", integer(0, 2**32 - 1)),
    # evaluation and monitoring
    ("ks", list_of(integer(1))),
    ("levels", list_of(number(gt=0, lt=100))),
    ("model.mode", one_of("min", "max")),
    ("patience", integer(0)),
    ("min_delta", number(ge=0)),
    ("save_top_k", integer(-1)),
]


def rule_for(path: str, target: str | None = None) -> Rule | None:
    """The first rule whose pattern matches the end of the dotted ``path`` (list indices dropped); ``target`` is
    the ``_target_`` of the node holding the key, for class-qualified patterns."""
    parts = [p for p in path.replace("]", "").replace("[", ".").split(".") if not p.isdigit()]
    for qualified, rule in RULES:
        owner, _, pattern = qualified.rpartition(":")
        if owner and (target is None or target.rpartition(".")[2] != owner):
            continue
        n = pattern.count(".") + 1
        if len(parts) >= n and fnmatch.fnmatchcase(".".join(parts[-n:]), pattern):
            return rule
    return None


# --- typed schemas of the fixed groups (registered in Hydra's ConfigStore) -------------------------------------


def _rule(rule: Rule, default: Any = None) -> Any:
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"rule": rule})
    return field(default=default, metadata={"rule": rule})


@dataclass
class TrainerSchema:
    """The ``pytorch_lightning.Trainer`` arguments whose type and range ecomlab checks at start-up.

    Its other arguments are checked against ``Trainer.__init__``'s signature (unknown keys refused).
    """

    max_epochs: int | None = _rule(integer(1, also=[-1], nullable=True), 20)  # -1: no limit
    min_epochs: int | None = _rule(integer(0, nullable=True))
    max_steps: int = _rule(integer(-1), -1)
    devices: Any = _rule(DEVICES, "auto")
    num_nodes: int = _rule(integer(1), 1)
    accelerator: Any = _rule(one_of("cpu", "gpu", "cuda", "mps", "tpu", "auto"), "auto")
    precision: Any = _rule(one_of(*PRECISIONS, nullable=True))
    check_val_every_n_epoch: int | None = _rule(integer(1, nullable=True), 1)
    log_every_n_steps: int | None = _rule(integer(1, nullable=True))
    accumulate_grad_batches: int = _rule(integer(1), 1)
    gradient_clip_val: float | None = _rule(number(ge=0, nullable=True))
    deterministic: Any = _rule(one_of(True, False, "warn", nullable=True))
    fast_dev_run: Any = _rule(Rule(lambda v: isinstance(v, bool) or (_is_int(v) and v >= 0),
                                   "true, false or an integer >= 0 (batches)"), False)
    limit_train_batches: Any = _rule(LIMIT_BATCHES)
    limit_val_batches: Any = _rule(LIMIT_BATCHES)
    limit_test_batches: Any = _rule(LIMIT_BATCHES)
    enable_model_summary: bool | None = None
    enable_progress_bar: bool | None = None
    sync_batchnorm: bool = False


@dataclass
class EvalSchema:
    """``eval``: the evaluation protocol shared by every model of a task."""

    ks: list[int] = _rule(list_of(integer(1)), [5, 10, 20])
    print_table: bool = True
    validate: bool | None = None


@dataclass
class RootSchema:
    """Top-level keys of ``train.yaml`` besides the config groups (:data:`GROUPS`)."""

    task_name: str = "train"
    tags: list[Any] = field(default_factory=list)
    seed: int = _rule(integer(0, 2**32 - 1), 42)
    deterministic: bool = False
    compile: bool = False
    eval: EvalSchema = field(default_factory=EvalSchema)
    optimized_metric: str | None = None


SCHEMAS: dict[str, type] = {"root": RootSchema, "eval": EvalSchema, "trainer": TrainerSchema}
#: key paths whose type and range their schema checks (the generic rules would report them twice)
_SCHEMA_PATHS = frozenset(f"trainer.{f.name}" for f in dataclasses.fields(TrainerSchema))


def register_schemas() -> None:
    """Store the schemas in Hydra's ConfigStore as ``ecomlab_schema_root`` / ``_eval`` / ``_trainer``, so a
    config can also extend one in its defaults list. Outside any group: a group would show up in
    ``ecomlab-train --help`` as something to choose, which they are not."""
    store = ConfigStore.instance()
    for name, node in SCHEMAS.items():
        store.store(name=f"ecomlab_schema_{name}", node=node)


register_schemas()


# --- the validation pass -------------------------------------------------------------------------------------


def did_you_mean(key: str, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=3, cutoff=0.6)
    return f"did you mean {' or '.join(close)}? " if close else ""


class _Checker:
    def __init__(self, interpolated: frozenset[str] = frozenset()) -> None:
        self.problems: list[str] = []
        #: paths whose value is an interpolation: checked where it comes from, not once more here
        self.interpolated = interpolated
        self.unknown: set[str] = set()
        #: ``_target_`` of every node that has one, by path
        self.targets: dict[str, str] = {}

    def add(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    # signatures ------------------------------------------------------------------------------------------
    def target(self, node: Mapping[str, Any], path: str) -> None:
        name = node["_target_"]
        where = f"{path}._target_" if path else "_target_"
        if not isinstance(name, str):
            self.add(where, f"expected a dotted import path, got {_describe(name)}")
            return
        try:
            obj = hydra.utils.get_object(name)
        except Exception as err:  # Hydra wraps import errors in several types; any of them means "not found"
            self.add(where, f"cannot import {name!r} ({str(err).splitlines()[0][:200]})")
            return
        func = inspect.unwrap(obj.__init__ if inspect.isclass(obj) else obj)
        try:
            params = dict(inspect.signature(obj).parameters)
        except (TypeError, ValueError):  # builtins without a signature: nothing to check against
            return
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return
        named = {k: p for k, p in params.items()
                 if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
        try:
            hints = typing.get_type_hints(func)
        except Exception:  # unresolvable annotations (forward references to optional packages): no type checks
            hints = {}
        for key, value in node.items():
            if key in HYDRA_KEYS:
                continue
            if key not in named:
                self.unknown.add(f"{path}.{key}")
                self.add(f"{path}.{key}", f"not a parameter of {name}; {did_you_mean(key, named)}"
                         f"allowed: {', '.join(sorted(named)) or '(none)'}")
                continue
            expected = _simple_type(hints.get(key))
            where = f"{path}.{key}"
            if (expected is not None and not _is_unresolved(value) and rule_for(where, name) is None
                    and where not in _SCHEMA_PATHS):
                allowed, ok = expected
                if not ok(value):
                    self.add(where, f"{_describe(value)} is not allowed; {name} takes {allowed}")

    # the walk ----------------------------------------------------------------------------------------------
    def walk(self, value: Any, path: str) -> None:
        if isinstance(value, Mapping):
            if "_target_" in value:
                self.target(value, path)
                self.targets[path] = str(value["_target_"])
            for key, child in value.items():
                if key not in HYDRA_KEYS:
                    self.walk(child, f"{path}.{key}" if path else str(key))
            return
        if isinstance(value, list) and any(isinstance(x, Mapping) for x in value):
            for i, child in enumerate(value):
                self.walk(child, f"{path}[{i}]")
            return
        if _is_unresolved(value) or path in _SCHEMA_PATHS or path in self.interpolated or path in self.unknown:
            return
        rule = rule_for(path, self.targets.get(path.rpartition(".")[0]))
        if rule is not None and not rule.check(value):
            self.add(path, f"{_describe(value)} is not allowed; expected {rule.allowed}")

    # dataclass schemas -------------------------------------------------------------------------------------
    def schema(self, schema: type, values: Mapping[str, Any], path: str, closed: bool) -> None:
        fields = {f.name: f for f in dataclasses.fields(schema)}
        typed = OmegaConf.structured(schema)
        for key, value in values.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in fields:
                if closed and not (not path and key in GROUPS):
                    allowed = sorted(set(fields) | (set(GROUPS) if not path else set()))
                    self.add(where, f"unknown key; {did_you_mean(str(key), allowed)}allowed: {', '.join(allowed)}")
                continue
            spec = fields[key]
            if key in SCHEMAS:
                continue  # a nested schema (eval) is checked on its own
            if _is_unresolved(value) or where in self.interpolated:
                continue
            try:
                typed[key] = value  # OmegaConf enforces the field's annotation
            except OmegaConfBaseException:
                self.add(where, f"{_describe(value)} has the wrong type; expected {_type_name(spec.type)}")
                continue
            rule = spec.metadata.get("rule")
            if rule is not None and not rule.check(value):
                self.add(where, f"{_describe(value)} is not allowed; expected {rule.allowed}")


def _is_unresolved(value: Any) -> bool:
    return isinstance(value, str) and (value == "???" or "${" in value)


def _type_name(tp: Any) -> str:
    """A dataclass field's annotation (a string under ``from __future__ import annotations``) for messages."""
    return str(getattr(tp, "__name__", tp)).replace(" | None", " or null").replace(" | ", " or ")


_SIMPLE: dict[Any, tuple[str, Callable[[Any], bool]]] = {
    int: ("an integer", _is_int),
    float: ("a number", lambda v: isinstance(v, int | float) and not isinstance(v, bool)),
    bool: ("true or false", lambda v: isinstance(v, bool)),
    type(None): ("null", lambda v: v is None),
}


def _simple_type(hint: Any) -> tuple[str, Callable[[Any], bool]] | None:
    """(what is allowed, check) for an annotation made only of int / float / bool / None / Literal, else None."""
    if hint is None:
        return None
    if hint in _SIMPLE:
        return _SIMPLE[hint]
    origin = typing.get_origin(hint)
    if origin is Literal:
        values = typing.get_args(hint)
        return (f"one of {', '.join(_describe(v) for v in values)}",
                lambda v: any(v == x and type(v) is type(x) for x in values))
    if origin in (Union, types.UnionType):
        parts = [_simple_type(arg) for arg in typing.get_args(hint)]
        if any(p is None for p in parts):
            return None
        checks = [p[1] for p in parts if p is not None]
        return (" or ".join(p[0] for p in parts if p is not None), lambda v: any(c(v) for c in checks))
    return None


def _container(cfg: DictConfig) -> dict[str, Any]:
    try:
        out = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    except OmegaConfBaseException:
        # an interpolation that cannot be resolved here (say ${hydra:...} outside a Hydra run): check the rest
        out = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(out, dict)
    return out


def _interpolations(value: Any, path: str = "") -> Iterable[str]:
    if isinstance(value, Mapping):
        for key, child in value.items():
            yield from _interpolations(child, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _interpolations(child, f"{path}[{i}]")
    elif isinstance(value, str) and "${" in value:
        yield path


def validate_config(cfg: DictConfig) -> None:
    """Raise :class:`ConfigValidationError` listing every unknown key, wrong type and out-of-range value."""
    values = _container(cfg)
    values.pop("hydra", None)
    checker = _Checker(frozenset(_interpolations(OmegaConf.to_container(cfg, resolve=False))))
    checker.schema(RootSchema, values, "", closed=True)
    if isinstance(values.get("eval"), Mapping):
        checker.schema(EvalSchema, values["eval"], "eval", closed=True)
    if isinstance(values.get("trainer"), Mapping):
        checker.schema(TrainerSchema, values["trainer"], "trainer", closed=False)
    for group in GROUPS:
        if group in values:
            checker.walk(values[group], group)
    if checker.problems:
        n = len(checker.problems)
        raise ConfigValidationError(
            f"invalid config ({n} problem{'s' if n > 1 else ''}; fix the key or its override):\n  "
            + "\n  ".join(checker.problems))
