"""The model card (``README.md`` of a bundle): what the model is, its data, metrics, intended use and limits.

Following Mitchell et al., "Model Cards for Model Reporting", FAT* 2019, cut to what an ecomlab run records:
model details, training data, evaluation protocol and test metrics, intended use, and limitations (including
what a served request falls back to). Every number comes from the run record; nothing is written by hand.
"""

from __future__ import annotations

import sys
from typing import Any

from torch import nn

FALLBACKS = (
    "Unknown users (ids the model never saw) never fail: with a supplied history they are scored from it "
    "(item-kNN and TF-IDF exactly as the model scores a training row, the text two-tower through its user "
    "tower, other models by the cosine between the mean of the history's item vectors and every item); "
    "without one they get the most popular items by number of training users (`data/item_counts.npy`).")


def _summary(net: nn.Module) -> str:
    doc = sys.modules[type(net).__module__].__doc__ or type(net).__doc__ or type(net).__name__
    return " ".join(doc.strip().split("\n\n")[0].split())


def _metric_rows(metrics: dict[str, float]) -> list[str]:
    rows = ["| metric | value |", "|---|---|"]
    rows += [f"| `{name}` | {value:.4f} |" for name, value in sorted(metrics.items())]
    return rows if metrics else ["(the run recorded no test metrics)"]


def model_card(meta: dict[str, Any], metrics: dict[str, Any], net: nn.Module) -> str:
    protocol = metrics.get("protocol") or {}
    data = protocol.get("data") or {}
    lines = [
        f"# {meta['model']} on {meta['dataset']}",
        "",
        "## Model",
        f"- {_summary(net)}",
        f"- class `{meta['model_class']}`, exported as **{meta['format']}** "
        f"(asked for: {meta.get('requested_format', meta['format'])}), ecomlab {meta['ecomlab_version']}",
        f"- source run `{meta['source_run']}`" + (f", checkpoint `{meta['checkpoint']}`" if meta.get("checkpoint") else ""),
        "",
        "## Data",
        f"- data set `{meta['dataset']}` (fingerprint `{metrics.get('data_fingerprint')}`): "
        + ", ".join(f"{k}={v}" for k, v in data.items() if k != "name"),
        f"- split: `{protocol.get('split') or protocol.get('backtest')}`",
        "",
        "## Test metrics",
        *_metric_rows(metrics.get("metrics") or {}),
        "",
        f"Protocol: {protocol.get('candidates') or protocol.get('backtest') or 'see metrics.json'}"
        + (f"; K = {protocol['ks']}" if protocol.get("ks") else ""),
        "",
        "## Intended use",
    ]
    if meta["task"] == "ranking":
        lines += [
            "- top-k recommendation for the users and items of this data set (`ecomlab.load(bundle).recommend`, "
            "`POST /recommend` of `ecomlab-serve`), and item-to-item similarity (`similar_items`).",
            "- research and offline comparison; the metrics above are offline, on a held-out split.",
            "",
            "## Limits",
            "- items outside this catalogue cannot be recommended"
            + (" (new item text can be embedded with `embed_items`, the scratch text encoder ships with the bundle)"
               if meta.get("item_encoder") else "") + ".",
            "- items a user already interacted with (train, validation and test of the run) are excluded by "
            "default (`exclude_seen=False` keeps them).",
            f"- {FALLBACKS}",
        ]
    else:
        lines += [
            f"- forecasts of series like the training panel: {meta.get('horizon')} steps at frequency "
            f"`{meta.get('freq')}`, central intervals {meta.get('levels')} %, from the supplied history (per-series "
            "models refit on it; the LSTM reads its last input window).",
            "",
            "## Limits",
            "- per-series models fit each history on its own (short histories fall back to simpler models); the "
            "LSTM forecasts only the series of its training panel, at its trained horizon.",
        ]
    lines += [f"- {note}" for note in meta.get("notes") or []]
    lines += ["", "Every file of the bundle is listed with its SHA-256 in `manifest.json`; loading refuses a "
              "changed file.", ""]
    return "\n".join(lines)
