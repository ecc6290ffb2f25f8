"""The comparison table and significance results as rich, Markdown, CSV and LaTeX text, and the Markdown report.

Cells read ``mean ± std`` over the group's runs (a single run shows its value alone); the best group of each
dataset is bold per metric; headers carry the metric direction (↑ higher is better, ↓ lower is better).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
from rich.table import Table

from ecomlab.report.compare import lower_is_better

LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def decimals(value: float) -> int:
    """Four decimals for metrics in [0, 100), one for large errors (MAE / RMSE in sales units)."""
    return 4 if abs(value) < 100 else 1


def fmt(value: float, places: int | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{decimals(value) if places is None else places}f}"


def fmt_p(p: float | None) -> str:
    if p is None or math.isnan(p):
        return ""
    return f"{p:.2e}" if p < 1e-3 else f"{p:.3f}"


def diff_ci(result: dict[str, Any]) -> str:
    """``Δ [low, high]``; the interval is left out when it cannot be computed (fewer than two units)."""
    text = f"{result['mean_diff']:+.4g}"
    return text if math.isnan(result["ci_low"]) else f"{text} [{result['ci_low']:+.4g}, {result['ci_high']:+.4g}]"


def cell(row: pd.Series, metric: str, pm: str = "±") -> str:
    value, spread = row[metric], row[f"{metric}_std"]
    if pd.isna(value):
        return ""
    # the spread at the mean's precision: "3941.9 ± 0.0", not "3941.9 ± 0.0000"
    return fmt(value) if pd.isna(spread) else f"{fmt(value)} {pm} {fmt(spread, decimals(value))}"


def arrow(metric: str) -> str:
    return "↓" if lower_is_better(metric) else "↑"


def _id_columns(config_keys: Sequence[str]) -> list[str]:
    return ["dataset", "model", *config_keys, "runs"]


def _id_cell(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def rich_table(table: pd.DataFrame, metrics: Sequence[str], config_keys: Sequence[str] = (),
               title: str | None = None) -> Table:
    out = Table(title=title)
    for col in _id_columns(config_keys):
        out.add_column(col, justify="right" if col == "runs" else "left")
    for m in metrics:
        out.add_column(f"{m} {arrow(m)}", justify="right")
    for _, row in table.iterrows():
        cells = [_id_cell(row[c]) for c in _id_columns(config_keys)]
        cells += [f"[bold green]{cell(row, m)}[/bold green]" if row[f"{m}_best"] else cell(row, m)
                  for m in metrics]
        out.add_row(*cells)
    return out


def markdown_table(table: pd.DataFrame, metrics: Sequence[str], config_keys: Sequence[str] = ()) -> str:
    ids = _id_columns(config_keys)
    lines = ["| " + " | ".join([*ids, *(f"{m} {arrow(m)}" for m in metrics)]) + " |",
             "|" + "---|" * (len(ids) - 1) + "---:|" + "---:|" * len(metrics)]
    for _, row in table.iterrows():
        cells = [_id_cell(row[c]) for c in ids]
        cells += [f"**{cell(row, m)}**" if row[f"{m}_best"] else cell(row, m) for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def csv_table(table: pd.DataFrame) -> str:
    """Every column of the grouped table: ids, ``runs``, ``seeds``, and per metric mean, ``_std``, ``_best``."""
    return table.to_csv(index=False)


def latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in text)


def latex_table(table: pd.DataFrame, metrics: Sequence[str], config_keys: Sequence[str] = ()) -> str:
    """A standalone ``tabular`` (no packages needed); best cells in ``\\textbf``."""
    ids = _id_columns(config_keys)
    spec = "l" * (len(ids) - 1) + "r" + "r" * len(metrics)
    header = [latex_escape(c) for c in ids] + [
        latex_escape(m) + (r" $\downarrow$" if lower_is_better(m) else r" $\uparrow$") for m in metrics]
    lines = [f"\\begin{{tabular}}{{{spec}}}", r"\hline", " & ".join(header) + r" \\", r"\hline"]
    for _, row in table.iterrows():
        cells = [latex_escape(_id_cell(row[c])) for c in ids]
        for m in metrics:
            text = cell(row, m, pm=r"$\pm$")
            cells.append(f"\\textbf{{{text}}}" if row[f"{m}_best"] and text else text)
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\hline", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def skipped_lines(results: Sequence[dict[str, Any]]) -> list[str]:
    """Comparisons that could not be tested, one line per (metric, reason) naming the models."""
    skipped: dict[tuple[str, str, str], list[str]] = {}
    for r in results:
        if "skipped" in r:
            skipped.setdefault((r["dataset"], r["metric"], r["skipped"]), []).append(r["model"])
    return [f"{dataset} {metric}: {reason} ({', '.join(dict.fromkeys(models))})"
            for (dataset, metric, reason), models in skipped.items()]


def significance_markdown(results: Sequence[dict[str, Any]], config_keys: Sequence[str] = (),
                          alpha: float = 0.05) -> str:
    """One row per tested (dataset, model, metric) against the baseline; ``*`` marks Holm-adjusted
    p < ``alpha``; untested comparisons are listed below the table."""
    tested = [r for r in results if "skipped" not in r]
    if not results:
        return "No comparisons (no other model shares a dataset with a baseline).\n"
    head = ["dataset", "model", *config_keys, "baseline", "metric", "seeds", "units", "baseline mean",
            "model mean", "Δ mean [95% CI]", "d_z", "Wilcoxon p (Holm)", "r_rb", "t-test p (Holm)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in tested:
        star = {k: " *" if r[k] < alpha else "" for k in ("wilcoxon_p_holm", "t_p_holm")}
        lines.append("| " + " | ".join([
            r["dataset"], r["model"], *(_id_cell(r.get(k)) for k in config_keys), r["baseline"], r["metric"],
            ",".join(map(str, r["seeds"])), str(r["n"]), fmt(r["baseline_mean"]), fmt(r["model_mean"]),
            diff_ci(r),
            "" if math.isnan(r["cohens_dz"]) else f"{r['cohens_dz']:+.3f}",
            f"{fmt_p(r['wilcoxon_p'])} ({fmt_p(r['wilcoxon_p_holm'])}){star['wilcoxon_p_holm']}",
            f"{r['rank_biserial']:+.3f}",
            f"{fmt_p(r['t_p'])} ({fmt_p(r['t_p_holm'])}){star['t_p_holm']}"]) + " |")
    text = "\n".join(lines) + "\n" if tested else ""
    skipped = skipped_lines(results)
    if skipped:
        text += "\nNot tested:\n\n" + "".join(f"- {line}\n" for line in skipped)
    return text


def protocol_markdown(protocols: dict[str, dict[str, Any]], mismatches: Sequence[dict[str, Any]]) -> str:
    lines: list[str] = []
    for dataset, proto in protocols.items():
        lines += [f"### {dataset}", "", "| protocol key | value |", "|---|---|"]
        lines += [f"| {k} | {json.dumps(v, default=str)} |" for k, v in proto["shared"].items()]
        lines += [f"| {k} | varies: {'; '.join(v)} |" for k, v in proto["varying"].items()]
        lines.append("")
    if mismatches:
        lines += ["**Mixed protocols (compared with --allow-mixed-protocols):**", ""]
        lines += [f"- {m['dataset']}: `{m['key']}` is {json.dumps(m['values'][0], default=str)} in "
                  f"`{m['runs'][0]}` but {json.dumps(m['values'][1], default=str)} in `{m['runs'][1]}`"
                  for m in mismatches]
        lines.append("")
    return "\n".join(lines)
