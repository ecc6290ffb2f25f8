"""Comparison plots (matplotlib, Agg backend, PNG), one file per dataset and kind, written atomically.

* ``bars_<dataset>.png`` -- each metric's mean per group with a standard-deviation error bar (over seeds);
* ``at_k_<dataset>.png`` -- ``metric@K`` against K per group, for every metric family logged at several K;
* ``curves_<dataset>.png`` -- training loss and the monitored validation metric per epoch from each run's
  Lightning ``CSVLogger`` file (``<run>/csv/version_*/metrics.csv``, the latest version);
* ``forecast_<dataset>_<series>.png`` -- one series: its history (rebuilt from the run's ``config.yaml``
  when the data can be loaded), the test actuals and every model's forecasts with their ``lo_*``/``hi_*``
  intervals when recorded;
* ``units_<dataset>.png`` -- the distribution of per-user / per-series metric values (seed-averaged) per group
  as box plots.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ecomlab.report.compare import Run, group_table, metric_parts, unit_values  # noqa: E402


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def save_png(fig: Figure, path: Path) -> Path:
    """Render to a temp file next to ``path``, then rename: a reader never sees half a PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, format="png")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        Path(tmp).unlink(missing_ok=True)
    return path


def group_label(row: pd.Series | dict, config_keys: Sequence[str]) -> str:
    """``model (key=value, ...)``; keys a group's config does not have (missing or null) are left out."""
    extra = ", ".join(f"{k.rsplit('.', 1)[-1]}={row[k]}" for k in config_keys
                      if k in row and row[k] is not None and not (isinstance(row[k], float) and np.isnan(row[k])))
    return f"{row['model']} ({extra})" if extra else str(row["model"])


def _grid(n: int, width: float = 4.2, height: float = 3.2) -> tuple[Figure, np.ndarray]:
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, layout="constrained")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def plot_bars(runs: Sequence[Run], metrics: Sequence[str], out: Path, config_keys: Sequence[str] = ()) -> list[Path]:
    table = group_table(runs, metrics, config_keys)
    written = []
    for dataset, part in table.groupby("dataset", sort=True):
        shown = [m for m in metrics if part[m].notna().any()]
        if not shown:
            continue
        labels = [group_label(r, config_keys) for _, r in part.iterrows()]
        fig, axes = _grid(len(shown), width=max(4.2, 0.7 * len(labels) + 1.5))
        for ax, metric in zip(axes, shown, strict=False):
            x = np.arange(len(labels))
            ax.bar(x, part[metric].to_numpy(), yerr=part[f"{metric}_std"].fillna(0).to_numpy(), capsize=4,
                   color=[f"C{i}" for i in range(len(labels))])
            ax.set_xticks(x, labels, rotation=30, ha="right")
            ax.set_title(metric)
        fig.suptitle(f"{dataset}: mean ± std over seeds")
        written.append(save_png(fig, out / f"bars_{slug(str(dataset))}.png"))
    return written


def at_k_families(runs: Sequence[Run], metrics: Sequence[str]) -> dict[str, list[str]]:
    """``test/ndcg`` -> ``[test/ndcg@5, test/ndcg@10, ...]`` (sorted by K) for the chosen metrics' families."""
    families: dict[str, list[str]] = {}
    names = {m for r in runs for m in r.metrics}
    for metric in metrics:
        if metric_parts(metric)[2] is None:
            continue
        family = metric.rsplit("@", 1)[0]
        members = sorted((m for m in names if m.rsplit("@", 1)[0] == family and metric_parts(m)[2] is not None),
                         key=lambda m: metric_parts(m)[2] or 0)
        if len(members) > 1:
            families[family] = members
    return families


def plot_at_k(runs: Sequence[Run], metrics: Sequence[str], out: Path, config_keys: Sequence[str] = ()) -> list[Path]:
    families = at_k_families(runs, metrics)
    if not families:
        return []
    table = group_table(runs, sorted({m for ms in families.values() for m in ms}), config_keys)
    written = []
    for dataset, part in table.groupby("dataset", sort=True):
        shown = {f: ms for f, ms in families.items() if part[ms].notna().any().any()}
        if not shown:
            continue
        fig, axes = _grid(len(shown))
        for ax, (family, members) in zip(axes, shown.items(), strict=False):
            ks = [metric_parts(m)[2] for m in members]
            for _, row in part.iterrows():
                ax.errorbar(ks, [row[m] for m in members], yerr=[0 if pd.isna(row[f"{m}_std"]) else row[f"{m}_std"]
                                                                 for m in members],
                            marker="o", capsize=3, label=group_label(row, config_keys))
            ax.set_xticks(ks)
            ax.set_xlabel("K")
            ax.set_title(f"{family}@K")
        axes[0].legend(fontsize="small")
        fig.suptitle(f"{dataset}: metric@K")
        written.append(save_png(fig, out / f"at_k_{slug(str(dataset))}.png"))
    return written


def csv_log(run: Run) -> pd.DataFrame | None:
    """The run's Lightning CSVLogger metrics (latest ``version_*``), or None when the run has none."""
    files = sorted(run.path.glob("csv/version_*/metrics.csv"),
                   key=lambda p: int(p.parent.name.rsplit("_", 1)[-1]) if p.parent.name[8:].isdigit() else -1)
    return pd.read_csv(files[-1]) if files else None


def epoch_curves(log: pd.DataFrame) -> pd.DataFrame:
    """One row per epoch (index) with the mean of each logged column; Lightning writes validation and
    training values on separate rows, and the evaluation after fit logs one epoch past the last trained one,
    which is dropped when the run trained at all."""
    per_epoch = log.groupby("epoch").mean(numeric_only=True)
    train_cols = [c for c in per_epoch.columns if c.startswith("train/")]
    if train_cols:
        per_epoch = per_epoch[per_epoch[train_cols].notna().any(axis=1)]
    return per_epoch


def plot_curves(runs: Sequence[Run], out: Path, config_keys: Sequence[str] = ()) -> list[Path]:
    written = []
    for dataset in sorted({r.dataset for r in runs}):
        logs = [(r, csv_log(r)) for r in runs if r.dataset == dataset]
        logs = [(r, log) for r, log in logs if log is not None and "epoch" in log.columns]
        if not logs:
            continue
        fig, (ax_train, ax_val) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
        labels = [group_label({"model": r.model, **r.keys}, config_keys) for r, _ in logs]
        groups = list(dict.fromkeys(labels))
        seeds = {g: sorted({r.seed for (r, _), lab in zip(logs, labels, strict=True) if lab == g}) for g in groups}
        for (run, log), group in zip(logs, labels, strict=True):
            # one colour per group, one line style per seed of the group
            style = {"color": f"C{groups.index(group) % 10}",
                     "linestyle": ("-", "--", ":", "-.")[seeds[group].index(run.seed) % 4]}
            label = f"{group} s{run.seed}"
            per_epoch = epoch_curves(log)
            for col in (c for c in per_epoch.columns if c.startswith("train/")):
                series = per_epoch[col].dropna()
                if not series.empty:
                    ax_train.plot(series.index, series.to_numpy(), marker=".", label=f"{label} {col}", **style)
            if run.monitor and run.monitor in per_epoch.columns:
                series = per_epoch[run.monitor].dropna()
                ax_val.plot(series.index, series.to_numpy(), marker="o", label=label, **style)
        ax_train.set_title("training loss per epoch")
        ax_val.set_title("validation metric (monitor) per epoch")
        for ax in (ax_train, ax_val):
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize="x-small")
        fig.suptitle(f"{dataset}: training curves")
        written.append(save_png(fig, out / f"curves_{slug(dataset)}.png"))
    return written


def series_history(run: Run, unique_id: str, trust_config: bool = False) -> pd.DataFrame | None:
    """``(ds, y)`` of one series as the run loaded it (data rebuilt from ``config.yaml``); None if unavailable.
    The config is checked first (:func:`ecomlab.config_trust.load_run_config`): a ``_target_`` outside ecomlab and
    the libraries its configs use is refused unless ``trust_config`` (``--trust-config``)."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    from ecomlab.config_trust import load_run_config

    config = run.path / "config.yaml"
    if not config.exists():
        return None
    data = load_run_config(config, trust_config, flag="--trust-config").get("data")
    if data is None:
        return None
    try:
        datamodule = instantiate(data)
        datamodule.setup("fit")
    except (OSError, ValueError, KeyError, ImportError, InstantiationException):
        return None  # the data moved or needs a download: plot the test actuals alone
    match = [s for s in getattr(datamodule, "series", []) if s.unique_id == unique_id]
    return pd.DataFrame({"ds": match[0].ds, "y": match[0].y}) if match else None


def plot_forecasts(runs: Sequence[Run], out: Path, series: Sequence[str] = (), config_keys: Sequence[str] = (),
                   history: bool = True, trust_config: bool = False) -> list[Path]:
    """Test forecasts of each group's first run for the chosen series of each forecasting dataset (those of
    ``series`` it has; its first series when it has none of them); the history comes from the run's data, see
    :func:`series_history` for ``trust_config``."""
    written, found = [], set()
    for dataset in sorted({r.dataset for r in runs}):
        firsts: dict[str, tuple[Run, pd.DataFrame]] = {}
        for run in runs:
            path = run.path / "forecasts_test.parquet"
            label = group_label({"model": run.model, **run.keys}, config_keys)
            if run.dataset == dataset and path.exists() and label not in firsts:
                firsts[label] = (run, pd.read_parquet(path))
        if not firsts:
            continue
        available = sorted({str(u) for _, frame in firsts.values() for u in frame["unique_id"]})
        ids = [s for s in series if s in available] or available[:1]
        found.update(ids)
        for uid in ids:
            written.append(_plot_series(dataset, uid, firsts, out, history, trust_config))
    missing = [s for s in series if s not in found]
    if missing:
        raise ValueError(f"series {', '.join(map(repr, missing))} is not among the test forecasts of any dataset")
    return written


def _plot_series(dataset: str, uid: str, firsts: dict[str, tuple[Run, pd.DataFrame]], out: Path,
                 history: bool, trust_config: bool = False) -> Path:
    hist = series_history(next(iter(firsts.values()))[0], uid, trust_config) if history else None
    fig, ax = plt.subplots(figsize=(13, 4.2), layout="constrained")
    if history:
        tested = [frame.loc[frame["unique_id"].astype(str) == uid, "ds"] for _, frame in firsts.values()]
        start, n_test = min(t.min() for t in tested if len(t)), max(len(t) for t in tested)
        if hist is not None:
            # the recent past only, or years of daily data squeeze the test windows into a sliver
            hist = hist[hist["ds"] < start].tail(max(48, 3 * n_test))
            ax.plot(hist["ds"], hist["y"], color="0.4", linewidth=1, label="history")
    actual_drawn = False
    for i, (label, (_, frame)) in enumerate(firsts.items()):
        part = frame[frame["unique_id"].astype(str) == uid].sort_values("ds")
        if part.empty:
            continue
        if not actual_drawn:
            ax.plot(part["ds"], part["y"], color="black", marker=".", label="actual (test)")
            actual_drawn = True
        for _, window in part.groupby("window"):
            ax.plot(window["ds"], window["y_hat"], color=f"C{i}", label=label)
            levels = sorted({int(c[3:]) for c in window.columns if c.startswith("lo_")}, reverse=True)
            for level in [lv for lv in levels if f"hi_{lv}" in window.columns]:
                # one legend entry for a model's nested intervals (lighter = wider)
                ax.fill_between(window["ds"], window[f"lo_{level}"], window[f"hi_{level}"], color=f"C{i}",
                                alpha=0.12 if level >= 90 else 0.22,
                                label=f"{label} {'/'.join(map(str, sorted(levels)))}%" if level == levels[0] else None)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))  # one legend entry per model, not per window
    # beside the axes: with many models an inside legend covers the forecasts
    ax.legend(unique.values(), unique.keys(), fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(f"{dataset}: {uid} (test windows)")
    return save_png(fig, out / f"forecast_{slug(dataset)}_{slug(uid)}.png")


def plot_units(runs: Sequence[Run], metrics: Sequence[str], out: Path, config_keys: Sequence[str] = ()) -> list[Path]:
    """Box plots of the per-unit values (each unit's mean over the group's seeds) per group and metric."""
    written = []
    for dataset in sorted({r.dataset for r in runs}):
        mine = [r for r in runs if r.dataset == dataset]
        groups: dict[str, list[Run]] = {}
        for run in mine:
            groups.setdefault(group_label({"model": run.model, **run.keys}, config_keys), []).append(run)
        panels = []
        for metric in metrics:
            data = {}
            for label, members in groups.items():
                values = [v for v in (unit_values(r, metric) for r in members) if v is not None]
                if values:
                    data[label] = pd.concat(values, axis=1).mean(axis=1).to_numpy()
            if data:
                panels.append((metric, data))
        if not panels:
            continue
        fig, axes = _grid(len(panels), width=max(4.2, 0.7 * len(groups) + 1.5))
        for ax, (metric, data) in zip(axes, panels, strict=False):
            ax.boxplot(list(data.values()), showmeans=True)
            ax.set_xticks(range(1, len(data) + 1), list(data), rotation=30, ha="right")
            ax.set_title(metric)
        unit = "series" if any((r.path / "per_series_test.parquet").exists() for r in mine) else "user"
        fig.suptitle(f"{dataset}: per-{unit} values (mean over seeds)")
        written.append(save_png(fig, out / f"units_{slug(dataset)}.png"))
    return written
