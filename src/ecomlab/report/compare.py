"""Comparison of finished runs: loading, protocol checks, the grouped table and paired significance tests.

Runs are grouped by ``(dataset, model, *config_keys)``; each metric is summarised as mean and sample standard
deviation (``ddof=1``) over the group's runs (one per seed), and the best group of each dataset is marked per
metric (lower is better for error, loss and time metrics, higher for everything else).

Config rule: the runs of one group must share their resolved config except for the seed and where they write
(:mod:`ecomlab.report.grouping`); runs that differ in another key (``trainer.max_epochs``) are refused, naming
the key, unless ``config_keys`` splits them into variants.

Protocol rule: runs of one dataset must agree on every key of ``metrics.json``'s ``protocol`` except the run
seed and the data-cache state. Runs that drew different data (a different split seed, or a data source seeded
from the run seed) may differ in the realised data only: fingerprint, split sizes, user / window counts, the
data summary and load warnings.

Significance: each model is compared with the baseline model of the same dataset, per metric, on paired
per-user (ranking) or per-series (forecasting) values from ``per_user_<stage>.parquet`` /
``per_series_<stage>.parquet``. Only seeds both groups ran are used; within a seed the two runs share their
test units (same data draw), and each unit's values are then averaged over those seeds before pairing, so a
unit counts once however many seeds ran. Holm's correction runs over all comparisons of one test kind.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecomlab.report.grouping import Member, check_groups, comparable_config, group_key
from ecomlab.report.significance import holm, paired_comparison
from ecomlab.report.study import config_value, find_records

#: metric base names where a smaller value is better (matched against the ``_``-separated parts of the name)
LOWER_IS_BETTER = ("mae", "rmse", "smape", "mase", "msql", "loss", "seconds", "mb")
#: record fields (outside ``metrics``) that can be compared like metrics
RECORD_METRICS = ("data_seconds", "fit_seconds", "eval_seconds", "peak_rss_mb")
#: protocol keys that never take part in the check: the run seed and the state of the parsed-data cache
#: ``inferred`` says how the resolved season / horizon / step (compared on their own) were set; ``validation``
#: whether a run evaluated its validation windows, which changes no test number
IGNORED_PROTOCOL = ("seed", "data_cache", "inferred", "validation")
#: protocol keys describing the drawn data; they may differ between runs with different data draws
REALISED_PROTOCOL = ("split.seed", "data_fingerprint", "split_sizes", "n_val_users", "n_test_users", "n_series",
                     "n_val_windows", "n_test_windows", "data", "data_warnings")


class ProtocolMismatch(ValueError):
    """Runs that would share a table were evaluated under different protocols."""


@dataclass
class Run:
    """One finished training run, as read from its ``metrics.json``."""

    path: Path
    model: str
    dataset: str
    seed: int
    metrics: dict[str, float]
    protocol: dict[str, Any]
    monitor: str | None
    keys: dict[str, Any] = field(default_factory=dict)
    draw: tuple[Any, ...] = ()
    #: the flattened config without where the run wrote (see ecomlab.report.grouping.comparable_config)
    config: dict[str, Any] = field(default_factory=dict)

    def group(self, config_keys: Sequence[str]) -> tuple[Any, ...]:
        return (self.dataset, self.model, *(self.keys.get(k) for k in config_keys))


def _seeds_in(node: Any) -> list[Any]:
    """Every value stored under a key named ``seed`` in a nested config (data draws depend on these)."""
    if isinstance(node, dict):
        return [v for k, v in sorted(node.items()) if k == "seed" and not isinstance(v, dict | list)] + [
            s for k, v in sorted(node.items()) for s in _seeds_in(v)]
    if isinstance(node, list):
        return [s for v in node for s in _seeds_in(v)]
    return []


def load_runs(patterns: Iterable[str | Path], config_keys: Sequence[str] = ()) -> list[Run]:
    """Every finished training run under the given run / sweep directories or glob patterns."""
    runs: list[Run] = []
    seen: set[Path] = set()
    for record_path in find_records(patterns):
        if record_path.resolve() in seen:
            continue
        seen.add(record_path.resolve())
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{record_path}: not valid JSON ({err})") from err
        if "protocol" not in record:  # ecomlab-eval outputs are not training runs
            continue
        config = record.get("config", {})
        metrics = {k: float(v) for k, v in record["metrics"].items()}
        metrics.update({k: float(record[k]) for k in RECORD_METRICS if record.get(k) is not None})
        protocol = record["protocol"]
        runs.append(Run(
            path=record_path.parent, model=str(record["model"]), dataset=str(record["dataset"]),
            seed=int(record["seed"]), metrics=metrics, protocol=protocol,
            # records written before the run record named its monitor: the model config's
            monitor=record.get("monitor") or config_value(config, "model.monitor"),
            # a list value as its JSON text, so that rows can be grouped by it
            keys=dict(zip(config_keys, group_key(*(config_value(config, k) for k in config_keys)), strict=True)),
            draw=(_flat(protocol).get("split.seed"), *_seeds_in(config.get("data", {}))),
            config=comparable_config(config),
        ))
    if not runs:
        raise FileNotFoundError("no finished runs (metrics.json of ecomlab-train) found under "
                                + ", ".join(map(str, patterns)))
    runs = _name_data_apart(runs)
    return sorted(runs, key=lambda r: (r.dataset, r.model, *map(str, r.keys.values()), r.seed, str(r.path)))


def _name_data_apart(runs: list[Run]) -> list[Run]:
    """Runs recorded under one data config name but loaded from different data sets (``data=ciao-tang2012
    data.source.folder=epinions-tang2012``: the bundle's name is the folder) are labelled ``<bundle> (data=<config>)``,
    so that no table row averages two data sets, even with ``--allow-mixed-protocols``."""
    def bundle_name(run: Run) -> str | None:
        data = run.protocol.get("data")
        return data.get("name") if isinstance(data, dict) else None

    names: dict[str, set[str | None]] = {}
    for run in runs:
        names.setdefault(run.dataset, set()).add(bundle_name(run))
    return [replace(run, dataset=f"{bundle_name(run)} (data={run.dataset})") if len(names[run.dataset]) > 1
            else run for run in runs]


# --------------------------------------------------------------------------- metrics


def metric_parts(metric: str) -> tuple[str, str, int | None]:
    """``test/sampled100/ndcg@10`` -> ``("test", "ndcg", 10)``; ``fit_seconds`` -> ``("", "fit_seconds", None)``."""
    stage = metric.split("/", 1)[0] if "/" in metric else ""
    name, _, k = metric.rsplit("/", 1)[-1].partition("@")
    return stage, name, int(k) if k.isdigit() else None


def lower_is_better(metric: str) -> bool:
    return any(part in LOWER_IS_BETTER for part in re.split(r"[_\-]", metric_parts(metric)[1].lower()))


def default_metrics(runs: Sequence[Run]) -> list[str]:
    """Test metrics at the K of each run's validation monitor (all test metrics of runs without a K)."""
    chosen: list[str] = []
    for run in runs:
        k = metric_parts(run.monitor)[2] if run.monitor else None
        for name in sorted(run.metrics):
            if name.startswith("test/") and metric_parts(name)[2] == k and name not in chosen:
                chosen.append(name)
    return chosen


def check_metrics(runs: Sequence[Run], metrics: Sequence[str]) -> None:
    available = sorted({m for r in runs for m in r.metrics})
    unknown = [m for m in metrics if m not in available]
    if unknown:
        raise ValueError(f"unknown metric {', '.join(unknown)}; the runs have: {', '.join(available)}")


# --------------------------------------------------------------------------- configs


def check_configs(runs: Sequence[Run], config_keys: Sequence[str] = (),
                  absent: Mapping[str, Any] | None = None) -> None:
    """Refuse (:class:`~ecomlab.report.grouping.ConfigMismatch`) a group whose runs differ in a config key other
    than the seed, naming the key (``absent``: the value of a key a run's config lacks)."""
    groups: dict[tuple[Any, ...], list[Member]] = {}
    for run in runs:
        groups.setdefault(group_key(*run.group(config_keys)), []).append(Member(str(run.path), run.seed, run.config))
    check_groups(groups, config_keys, absent)


# --------------------------------------------------------------------------- protocol


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{"split": {"seed": 0}}`` -> ``{"split.seed": 0}``; an empty dict below the top stays a value."""
    if isinstance(node, dict) and not node and not prefix:
        return {}
    if isinstance(node, dict) and node:
        return {k: v for key, value in node.items() for k, v in _flat(value, f"{prefix}{key}.").items()}
    return {prefix[:-1]: node}


def _matches(key: str, prefixes: Sequence[str]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def protocol_differences(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Every protocol key on which two runs of one dataset disagree where they must not (first pair per key)."""
    found: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for run in runs:
        ref = next(r for r in runs if r.dataset == run.dataset)
        same_draw = next((r for r in runs if r.dataset == run.dataset and r.draw == run.draw), ref)
        mine = _flat(run.protocol)
        for other, realised_too in ((ref, ref.draw == run.draw), (same_draw, True)):
            theirs = _flat(other.protocol)
            for key in sorted(set(mine) | set(theirs)):
                if _matches(key, IGNORED_PROTOCOL) or (not realised_too and _matches(key, REALISED_PROTOCOL)):
                    continue
                if mine.get(key) != theirs.get(key) and (run.dataset, key) not in seen:
                    seen.add((run.dataset, key))
                    found.append({"dataset": run.dataset, "key": key, "values": [theirs.get(key), mine.get(key)],
                                  "runs": [str(other.path), str(run.path)]})
    return found


def check_protocols(runs: Sequence[Run], allow_mixed: bool = False) -> list[dict[str, Any]]:
    """Raise :class:`ProtocolMismatch` naming the first differing key, unless ``allow_mixed``; return them all."""
    differences = protocol_differences(runs)
    if differences and not allow_mixed:
        d = differences[0]
        raise ProtocolMismatch(
            f"runs of dataset {d['dataset']} differ in protocol key {d['key']!r}: {d['values'][0]!r} in "
            f"{d['runs'][0]} but {d['values'][1]!r} in {d['runs'][1]}; compare runs of one protocol, or pass "
            "--allow-mixed-protocols")
    return differences


def dataset_protocols(runs: Sequence[Run]) -> dict[str, dict[str, Any]]:
    """Per dataset: the protocol keys shared by all its runs, and those that vary (with their values)."""
    out: dict[str, dict[str, Any]] = {}
    for dataset in sorted({r.dataset for r in runs}):
        flats = [_flat(r.protocol) for r in runs if r.dataset == dataset]
        keys = sorted({k for f in flats for k in f if not _matches(k, IGNORED_PROTOCOL)})
        shared, varying = {}, {}
        for key in keys:
            values = [f.get(key) for f in flats]
            if all(v == values[0] for v in values):
                shared[key] = values[0]
            else:
                varying[key] = sorted({json.dumps(v, default=str) for v in values})
        out[dataset] = {"shared": shared, "varying": varying}
    return out


# --------------------------------------------------------------------------- table


def group_table(runs: Sequence[Run], metrics: Sequence[str], config_keys: Sequence[str] = ()) -> pd.DataFrame:
    """One row per group: ``dataset, model, *config_keys, runs, seeds``, then ``<metric>`` (mean over runs),
    ``<metric>_std`` (sample standard deviation; nan for a single run) and ``<metric>_best`` per metric."""
    rows = [{"dataset": r.dataset, "model": r.model, **r.keys, "seed": r.seed,
             **{m: r.metrics.get(m, math.nan) for m in metrics}} for r in runs]
    frame = pd.DataFrame(rows, columns=["dataset", "model", *config_keys, "seed", *metrics])
    keys = ["dataset", "model", *config_keys]
    grouped = frame.groupby(keys, sort=True, dropna=False)
    table = grouped.size().rename("runs").reset_index()
    table["seeds"] = grouped["seed"].apply(lambda s: ",".join(map(str, sorted(s)))).to_numpy()
    mean, std = grouped[list(metrics)].mean(), grouped[list(metrics)].std(ddof=1)
    for m in metrics:
        table[m] = mean[m].to_numpy()
        table[f"{m}_std"] = std[m].to_numpy()
    for m in metrics:
        table[f"{m}_best"] = best_flags(table, m)
    return table


def best_flags(table: pd.DataFrame, metric: str) -> pd.Series:
    """True for the group(s) with the best mean of ``metric`` within each dataset (ties all marked)."""
    values = table[metric]
    best = values.groupby(table["dataset"]).transform("min" if lower_is_better(metric) else "max")
    return (values == best) & values.notna()


# --------------------------------------------------------------------------- significance


def unit_values(run: Run, metric: str) -> pd.Series | None:
    """The run's per-unit values of ``metric`` (index: user or series id), or None when not recorded."""
    stage, name, k = metric_parts(metric)
    column = f"{name}@{k}" if k is not None else name
    for stem, unit in (("per_user", "user"), ("per_series", "unique_id")):
        path = run.path / f"{stem}_{stage}.parquet"
        if stage and path.exists():
            frame = pd.read_parquet(path)
            if column in frame.columns and unit in frame.columns:
                return frame[column].astype(np.float64).groupby(frame[unit]).mean()
    return None


def paired_units(base: Sequence[Run], other: Sequence[Run], metric: str) -> tuple[pd.DataFrame, list[int]]:
    """Per-unit values ``[unit, baseline, model]`` averaged over the seeds both groups ran, and those seeds."""
    seeds = sorted({r.seed for r in base} & {r.seed for r in other})
    parts = []
    for seed in seeds:
        sides = []
        for runs in (base, other):
            values = [unit_values(r, metric) for r in runs if r.seed == seed]
            if any(v is None for v in values):
                return pd.DataFrame(columns=["baseline", "model"]), seeds
            sides.append(pd.concat(values, axis=1).mean(axis=1))  # reruns of one seed: their mean
        parts.append(pd.concat(sides, axis=1, keys=["baseline", "model"], join="inner"))
    if not parts:
        return pd.DataFrame(columns=["baseline", "model"]), seeds
    # [units x seeds] rows -> one row per unit: the seed-averaged values
    return pd.concat(parts).groupby(level=0).mean(), seeds


def significance(runs: Sequence[Run], metrics: Sequence[str], baselines: str | Sequence[str],
                 config_keys: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Paired tests of every group against the baseline of its dataset (the first of ``baselines`` that ran
    on it), per metric, Holm-corrected. Metrics without per-unit values (timings, catalogue coverage) are
    listed with ``skipped`` and no p-values."""
    baselines = [baselines] if isinstance(baselines, str) else list(baselines)
    models = {r.model for r in runs}
    unknown = [b for b in baselines if b not in models]
    if unknown:
        raise ValueError(f"unknown baseline {', '.join(map(repr, unknown))}; models in these runs: "
                         + ", ".join(sorted(models)))
    groups: dict[tuple[Any, ...], list[Run]] = {}
    for run in runs:
        groups.setdefault(run.group(config_keys), []).append(run)
    results: list[dict[str, Any]] = []
    for dataset in sorted({r.dataset for r in runs}):
        baseline = next((b for b in baselines if any(g[:2] == (dataset, b) for g in groups)), None)
        if baseline is None:
            continue
        base_keys = [g for g in groups if g[:2] == (dataset, baseline)]
        if len(base_keys) > 1:
            raise ValueError(f"baseline {baseline!r} has {len(base_keys)} variants on dataset {dataset} "
                             f"({', '.join(map(str, base_keys))}); compare one variant at a time")
        for key, members in groups.items():
            if key[0] != dataset or key == base_keys[0]:
                continue
            for metric in metrics:
                if not all(any(metric in r.metrics for r in g) for g in (groups[base_keys[0]], members)):
                    continue  # a metric of another task (MASE on a ranking dataset)
                pairs, seeds = paired_units(groups[base_keys[0]], members, metric)
                entry = {"dataset": dataset, "model": key[1], **dict(zip(config_keys, key[2:], strict=True)),
                         "baseline": baseline, "metric": metric, "seeds": seeds,
                         "lower_is_better": lower_is_better(metric)}
                if pairs.empty:
                    entry["skipped"] = ("no common seeds with the baseline" if not seeds else
                                        "no per-unit values recorded for this metric")
                else:
                    entry.update(paired_comparison(pairs["baseline"].to_numpy(), pairs["model"].to_numpy()))
                results.append(entry)
    for test in ("wilcoxon", "t"):
        adjusted = holm([r.get(f"{test}_p", math.nan) for r in results])
        for r, p in zip(results, adjusted, strict=True):
            if "skipped" not in r:
                r[f"{test}_p_holm"] = p
    return results
