"""Readable terminal tables of run metrics (rich)."""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Console
from rich.table import Table


def metrics_table(metrics: Mapping[str, float], prefix: str = "test/") -> Table:
    """One row per metric name, one column per K (``test/ndcg@10`` -> row ``ndcg``, column ``@10``)."""
    rows: dict[str, dict[str, float]] = {}
    columns: list[str] = []
    for key, value in metrics.items():
        if not key.startswith(prefix):
            continue
        name, _, k = key[len(prefix):].partition("@")
        col = f"@{k}" if k else "value"
        rows.setdefault(name, {})[col] = value
        if col not in columns:
            columns.append(col)
    columns.sort(key=lambda c: (c == "value", int(c[1:]) if c[1:].isdigit() else 0))
    table = Table()
    table.add_column("metric", style="bold")
    for col in columns:
        table.add_column(col, justify="right")
    for name, values in rows.items():
        table.add_row(name, *(f"{values[c]:.4f}" if c in values else "" for c in columns))
    return table


def print_metrics(metrics: Mapping[str, float], title: str, console: Console | None = None) -> None:
    console = console or Console()
    console.print(f"[bold]{title}[/bold]")
    console.print(metrics_table(metrics))
