"""``ecomlab-compare``: turn finished runs into a comparison table, significance tests, plots and a report.

    ecomlab-compare logs/baselines_rec/multiruns/study --metrics test/ndcg@10 test/recall@10 \
        --baseline popularity --out out/compare
    ecomlab-compare 'logs/**/runs/*' --group-by model dataset --config-keys model.optimizer.lr
    ecomlab-compare logs/baselines_forecast/multiruns/study --baseline seasonal_naive \
        --report experiments/baselines_forecast/report --series souvenirs

Inputs are run directories, sweep directories (searched for ``metrics.json``) or glob patterns. Runs are
grouped by model and dataset (and ``--config-keys``); every metric is shown as mean ± standard deviation over
the group's runs (seeds), the best group per dataset in bold, with the number of runs. Runs of one dataset
evaluated under different protocols (split, candidate set, K, seasonality, backtest, data) are refused unless
``--allow-mixed-protocols``. Runs of one group configured differently beyond their seed (say
``trainer.max_epochs``) are refused, naming the keys: ``--config-keys`` makes them separate rows. With
``--baseline``, every other model is tested against it on paired per-user / per-series values (Wilcoxon
signed-rank and paired t-test, Holm-corrected, with effect sizes); with several seeds each unit's values are
first averaged over the seeds both models ran. Bad input (no runs, an unknown metric or baseline, mixed
protocols or configs) exits with code 2 and one message.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from ecomlab.cli import user_errors_exit_2
from ecomlab.report import render
from ecomlab.report.compare import (
    Run,
    check_configs,
    check_metrics,
    check_protocols,
    dataset_protocols,
    default_metrics,
    group_table,
    load_runs,
    lower_is_better,
    significance,
)
from ecomlab.utils import atomic_write_json, atomic_write_text

#: plot kinds (see ecomlab.report.plots); matplotlib is imported only when one is written
PLOT_KINDS = ("bars", "at_k", "curves", "forecast", "units")
PAIRING = ("Paired on per-user (ranking) or per-series (forecasting) test values: only seeds both the model "
           "and the baseline ran are used, each unit's values are averaged over those seeds, and the tests "
           "run on the seed-averaged pairs. Holm's correction runs over all comparisons of one test.")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ecomlab-compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run or sweep directories, or glob patterns (quote them)")
    parser.add_argument("--metrics", nargs="+", default=None,
                        help="metrics as logged, e.g. test/ndcg@10 fit_seconds (default: the test metrics at "
                             "the K of each run's validation monitor)")
    parser.add_argument("--baseline", nargs="+", default=None,
                        help="model to test every other model against; several names: per dataset, the first "
                             "that ran on it (e.g. popularity seasonal_naive)")
    parser.add_argument("--group-by", nargs="+", default=["model", "dataset"],
                        help="model and dataset always (runs of different models or datasets never share a row); "
                             "any dotted config key given here is added to --config-keys")
    parser.add_argument("--config-keys", nargs="+", default=[],
                        help="dotted config keys that tell variants of a model apart, e.g. model.optimizer.lr")
    parser.add_argument("--absent", nargs="+", default=[], metavar="KEY=VALUE",
                        help="the value a run whose config lacks KEY had (a key added after it ran, whose default "
                             "is what the older code did), e.g. model.calibrate=false: such runs then average "
                             "with runs that set it")
    parser.add_argument("--allow-mixed-protocols", action="store_true",
                        help="put runs with different evaluation protocols in one table (listed in the output)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for table.md, table.csv, table.tex, compare.json (and the plots, unless --report)")
    parser.add_argument("--plots", nargs="*", default=None, choices=list(PLOT_KINDS),
                        help="plots to write (PNG) into --out or --report; no value: all kinds")
    parser.add_argument("--series", nargs="+", default=[], help="series ids for the forecast plot "
                        "(default: the first series)")
    parser.add_argument("--report", type=Path, default=None,
                        help="folder for a self-contained Markdown report (README.md, tables, plots, JSON)")
    parser.add_argument("--trust-config", action="store_true",
                        help="build the forecast plot's history from each run's config.yaml whatever it names "
                             "(by default only ecomlab's classes and the libraries its own configs use)")
    parser.add_argument("--title", default="Comparison", help="report title")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level for the * marks")
    return parser.parse_args(argv)


def _clean(value: Any) -> Any:
    """JSON has no NaN: missing values become null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _clean(value.item())
    return value


def _absent(pairs: Sequence[str]) -> dict[str, Any]:
    """``["model.calibrate=false"]`` -> ``{"model.calibrate": False}`` (values read as YAML scalars)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--absent {pair!r}: expected KEY=VALUE, e.g. model.calibrate=false")
        out[key] = yaml.safe_load(value)
    return out


def build(runs: Sequence[Run], metrics: Sequence[str], config_keys: Sequence[str], baseline: str | None,
          allow_mixed: bool, absent: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything a comparison holds (the content of ``compare.json``, plus the table as a DataFrame)."""
    check_metrics(runs, metrics)
    mismatches = check_protocols(runs, allow_mixed)
    check_configs(runs, config_keys, absent)
    table = group_table(runs, metrics, config_keys)
    return {
        "metrics": [{"name": m, "lower_is_better": lower_is_better(m)} for m in metrics],
        "config_keys": list(config_keys),
        "baseline": baseline,
        "table": table,
        "significance": significance(runs, metrics, baseline, config_keys) if baseline else [],
        "pairing": PAIRING,
        "protocol": dataset_protocols(runs),
        "protocol_mismatches": mismatches,
        "runs": [{"path": str(r.path), "model": r.model, "dataset": r.dataset, "seed": r.seed, **r.keys,
                  "metrics": {m: r.metrics.get(m) for m in metrics}} for r in runs],
    }


def write_tables(result: dict[str, Any], out: Path, extra: dict[str, Any] | None = None) -> list[Path]:
    metrics = [m["name"] for m in result["metrics"]]
    keys, table = result["config_keys"], result["table"]
    files = {"table.md": render.markdown_table(table, metrics, keys), "table.csv": render.csv_table(table),
             "table.tex": render.latex_table(table, metrics, keys)}
    for name, text in files.items():
        atomic_write_text(out / name, text)
    payload = {**result, "table": table.to_dict(orient="records"), **(extra or {})}
    atomic_write_json(out / "compare.json", _clean(payload))
    return [out / name for name in [*files, "compare.json"]]


def write_plots(runs: Sequence[Run], result: dict[str, Any], out: Path, kinds: Sequence[str],
                series: Sequence[str], trust_config: bool = False) -> list[Path]:
    if not kinds:
        return []
    from ecomlab.report import plots

    metrics, keys = [m["name"] for m in result["metrics"]], result["config_keys"]
    written: list[Path] = []
    if "bars" in kinds:
        written += plots.plot_bars(runs, metrics, out, keys)
    if "at_k" in kinds:
        written += plots.plot_at_k(runs, metrics, out, keys)
    if "curves" in kinds:
        written += plots.plot_curves(runs, out, keys)
    if "forecast" in kinds:
        written += plots.plot_forecasts(runs, out, series, keys, trust_config=trust_config)
    if "units" in kinds:
        written += plots.plot_units(runs, metrics, out, keys)
    return written


def report_markdown(result: dict[str, Any], title: str, command: str, plot_files: Sequence[Path],
                    alpha: float) -> str:
    metrics, keys = [m["name"] for m in result["metrics"]], result["config_keys"]
    runs = result["runs"]
    lines = [f"# {title}", "", "Generated by", "", "```", command, "```", "",
             f"{len(runs)} runs, {len({r['dataset'] for r in runs})} dataset(s). Cells: mean ± sample standard "
             "deviation over the group's runs (seeds; one run shows its value alone); bold: best per dataset; "
             "↑ higher is better, ↓ lower is better. Files: `table.md`, `table.csv`, `table.tex`, "
             "`compare.json`.", "", "## Results", "", render.markdown_table(result["table"], metrics, keys)]
    if result["baseline"]:
        lines += ["## Significance against " + ", ".join(f"`{b}`" for b in result["baseline"]), "",
                  result["pairing"],
                  f"Δ = model − baseline (for ↓ metrics a negative Δ is an improvement); d_z: Cohen's d for "
                  f"paired data; r_rb: matched-pairs rank-biserial correlation; p-values raw (Holm); "
                  f"* Holm-adjusted p < {alpha}.", "",
                  render.significance_markdown(result["significance"], keys, alpha)]
    if plot_files:
        lines += ["## Plots", ""]
        lines += [f"![{p.stem}]({p.name})\n" for p in plot_files]
    lines += ["## Protocol", "", render.protocol_markdown(result["protocol"], result["protocol_mismatches"]),
              "## Runs", "", "| dataset | model | " + "".join(f"{k} | " for k in keys) + "seed | run |",
              "|" + "---|" * (4 + len(keys))]
    lines += [f"| {r['dataset']} | {r['model']} | " + "".join(f"{r.get(k)} | " for k in keys)
              + f"{r['seed']} | `{r['path']}` |" for r in runs]
    return "\n".join(lines) + "\n"


def significance_rich(results: Sequence[dict[str, Any]], alpha: float) -> Table:
    table = Table(title="paired tests against the baseline (Holm-adjusted p)")
    for col in ("dataset", "model", "baseline", "metric", "units", "Δ mean [95% CI]", "d_z", "Wilcoxon p",
                "r_rb", "t p"):
        table.add_column(col, justify="left" if col in ("dataset", "model", "baseline", "metric") else "right")
    for r in (r for r in results if "skipped" not in r):
        p = {key: f"[bold]{render.fmt_p(r[key])}[/bold]" if r[key] < alpha else render.fmt_p(r[key])
             for key in ("wilcoxon_p_holm", "t_p_holm")}
        table.add_row(r["dataset"], r["model"], r["baseline"], r["metric"], str(r["n"]),
                      render.diff_ci(r),
                      "" if math.isnan(r["cohens_dz"]) else f"{r['cohens_dz']:+.3f}", p["wilcoxon_p_holm"],
                      f"{r['rank_biserial']:+.3f}", p["t_p_holm"])
    return table


@user_errors_exit_2
def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    args.config_keys = list(dict.fromkeys(
        [*args.config_keys, *(g for g in args.group_by if g not in ("model", "dataset"))]))
    kinds = args.plots if args.plots else list(PLOT_KINDS) if args.plots is not None or args.report else []
    if kinds and args.out is None and args.report is None:
        raise ValueError("--plots needs a folder to write into: pass --out DIR or --report DIR")
    runs = load_runs(args.runs, args.config_keys)
    metrics = args.metrics or default_metrics(runs)
    if not metrics:
        raise ValueError("no test metrics in these runs; name some with --metrics")
    result = build(runs, metrics, args.config_keys, args.baseline, args.allow_mixed_protocols,
                   _absent(args.absent))
    command = "ecomlab-compare " + shlex.join(list(sys.argv[1:] if argv is None else argv))

    console = Console()
    if not console.is_terminal:  # piped or logged: no terminal width to fit, keep every cell whole
        console = Console(width=250)
    console.print(render.rich_table(result["table"], metrics, args.config_keys,
                                    title=f"{len(runs)} runs: mean ± std over seeds (bold: best per dataset)"))
    for m in result["protocol_mismatches"]:
        console.print(f"[yellow]mixed protocol[/yellow] {m['dataset']}: {m['key']} = {m['values'][0]!r} vs "
                      f"{m['values'][1]!r}")
    if result["significance"]:
        console.print(significance_rich(result["significance"], args.alpha))
        for line in render.skipped_lines(result["significance"]):
            console.print(f"not tested: {line}")

    plot_files: list[Path] = []
    if args.out is not None:
        plot_files = (write_plots(runs, result, args.out, kinds, args.series, args.trust_config)
                      if args.report is None else [])
        written = write_tables(result, args.out, {"command": command, "plots": [p.name for p in plot_files]})
        console.print(f"wrote {', '.join(p.name for p in written + plot_files)} to {args.out}")
    if args.report is not None:
        plot_files = write_plots(runs, result, args.report, kinds, args.series, args.trust_config)
        write_tables(result, args.report, {"command": command, "plots": [p.name for p in plot_files]})
        atomic_write_text(args.report / "README.md",
                          report_markdown(result, args.title, command, plot_files, args.alpha))
        console.print(f"wrote report {args.report / 'README.md'} ({len(plot_files)} plots)")
    return result


def main(argv: Sequence[str] | None = None) -> None:
    run(argv)


if __name__ == "__main__":
    main()
