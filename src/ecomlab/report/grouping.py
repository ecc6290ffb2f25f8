"""Which runs may share a row of a table: runs of one ``(dataset, model, *config_keys)`` group must have been
configured alike except for the run seed.

A row's mean ± std is a spread over seeds; two runs that differ in anything else (``trainer.max_epochs``, a
learning rate, another draw of the synthetic shop) are two variants, and averaging them hides that. So the
resolved configs that every run record holds (``metrics.json``'s ``config``) are compared key by key within a
group, leaving out what never changes what a run computes:

* where it writes and how it is labelled (:data:`RUN_IDENTITY`; a string naming a file under one of the run's
  ``paths.*`` is compared by the path's name, so runs in different directories still match);
* the run seed, and any key whose value is the run's own seed in every run of the group (``data.split.seed``
  and the other ``${seed}`` interpolations);
* the group's own ``config_keys``, which are equal within a group by construction.

Any other key that differs makes :func:`check_groups` raise :class:`ConfigMismatch` naming the keys, with the
values of the first one and the runs that hold them; ``--config-keys KEY`` splits such a group into variants.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: config keys (and the nodes below them) that say where a run writes or how it reports, never what it computes
RUN_IDENTITY = ("seed", "paths", "hydra", "tags", "logger", "task_name", "eval.print_table",
                "callbacks.rich_progress_bar", "trainer.enable_progress_bar", "trainer.enable_model_summary",
                "trainer.log_every_n_steps")


class ConfigMismatch(ValueError):
    """Runs that would be averaged into one row were configured differently beyond their seed."""


@dataclass(frozen=True)
class Member:
    """One run as the check sees it: where it is, its seed and its flattened config."""

    path: str
    seed: int
    config: Mapping[str, Any]


def group_key(*values: Any) -> tuple[Any, ...]:
    """A group's key as a dict key: a list or mapping value (``model.net.input_sizes``) as its JSON text."""
    return tuple(json.dumps(v, sort_keys=True, default=str) if isinstance(v, list | dict) else v for v in values)


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{"trainer": {"max_epochs": 3}}`` -> ``{"trainer.max_epochs": 3}``; lists stay whole values."""
    if isinstance(node, dict) and node:
        return {k: v for key, value in node.items() for k, v in flatten(value, f"{prefix}{key}.").items()}
    return {prefix[:-1]: node} if prefix else {}


def _under(key: str, prefixes: Iterable[str]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def comparable_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The flattened config without :data:`RUN_IDENTITY` keys; a string under one of the run's ``paths.*``
    becomes ``<paths.NAME>/rest`` (the longest path first: ``log_dir`` inside ``root_dir``)."""
    paths = {k: v for k, v in (config.get("paths") or {}).items()
             if isinstance(v, str) and v.rstrip("/") not in ("", ".", "..")}
    ordered = sorted(paths.items(), key=lambda kv: len(kv[1]), reverse=True)
    out: dict[str, Any] = {}
    for key, value in flatten(dict(config)).items():
        if _under(key, RUN_IDENTITY):
            continue
        if isinstance(value, str):
            for name, path in ordered:
                if value == path or value.startswith(path.rstrip("/") + "/"):
                    value = f"<paths.{name}>" + value[len(path.rstrip("/")):]
                    break
        out[key] = value
    return out


def differing_keys(members: Sequence[Member], config_keys: Sequence[str] = (),
                   absent: Mapping[str, Any] | None = None) -> dict[str, list[Member]]:
    """Keys whose values differ within one group, each with one run per distinct value (first seen order).
    ``absent`` gives the value a run whose config lacks a key had (a key added later, whose default is what the
    older code did), so the two compare equal."""
    absent = absent or {}
    keys = sorted({k for m in members for k in m.config})
    found: dict[str, list[Member]] = {}
    for key in keys:
        if _under(key, config_keys):
            continue
        values = [m.config.get(key, absent.get(key, _MISSING)) for m in members]
        if all(v == values[0] for v in values):
            continue
        if all(v == m.seed for v, m in zip(values, members, strict=True)):
            continue  # the run seed, interpolated into another key
        firsts: list[Member] = []
        seen: list[Any] = []
        for value, member in zip(values, members, strict=True):
            if value not in seen:
                seen.append(value)
                firsts.append(member)
        found[key] = firsts
    return found


class _Missing:
    def __repr__(self) -> str:
        return "<absent>"


_MISSING = _Missing()


def check_groups(groups: Mapping[tuple[Any, ...], Sequence[Member]], config_keys: Sequence[str] = (),
                 absent: Mapping[str, Any] | None = None) -> None:
    """Raise :class:`ConfigMismatch` for the first group whose runs differ in a key other than the seed (a key a
    run lacks counts as ``absent[key]`` where given, see :func:`differing_keys`)."""
    for group, members in groups.items():
        if len(members) < 2:
            continue
        found = differing_keys(members, config_keys, absent)
        if not found:
            continue
        dataset, model = group[0], group[1]
        variant = "".join(f", {k}={v!r}" for k, v in zip(config_keys, group[2:], strict=False))
        key, firsts = next(iter(found.items()))
        shown = " but ".join(f"{m.config.get(key, _MISSING)!r} in {m.path}" for m in firsts[:2])
        more = f" (and {len(found) - 1} more: {', '.join(list(found)[1:6])}{', ...' if len(found) > 6 else ''})"
        raise ConfigMismatch(
            f"runs of model {model} on dataset {dataset}{variant} differ in config key {key}"
            f"{more if len(found) > 1 else ''}, not only in their seed: {shown}; a row averages seeds of one "
            f"configuration, so split them with --config-keys {' '.join(found)} or compare them separately")
