"""What a data set looks like and what is wrong with it: pure functions over a :class:`DatasetBundle`.

:func:`describe_bundle` gives the statistics a paper's data table reports (users, items, interactions,
density, activity per user and item, popularity concentration, social graph, text coverage, time range and,
for sales panels, series count, lengths, frequency and date range). :func:`quality_report` lists problems
found while loading (``meta["warnings"]``, or the error that stopped the load) and in the loaded data, each
with a severity, so ``ecomlab-data validate`` can exit 0 (clean), 1 (warnings only) or 2 (errors).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ecomlab.data.bundle import DatasetBundle, DataValidationError

#: texts longer than this (characters) are flagged: usually a whole document pasted into a title field
LONG_TEXT_CHARS = 10_000
REPLACEMENT_CHAR = "\ufffd"

# How the counted load-time warnings of ``build_bundle`` read in a report; other keys are shown as named.
_WARNING_TEXT = {
    "duplicate_interactions": "duplicate (user_id, item_id, timestamp) interaction rows dropped",
    "duplicate_text_rows": "duplicate item text rows dropped (the first was kept)",
    "unknown_text_items": "item text rows for items without interactions dropped (dangling ids)",
    "unknown_social_users": "social edges naming users without interactions dropped (dangling ids)",
    "social_self_loops": "social self-loop edges dropped",
    "duplicate_social_edges": "duplicate social edges dropped",
}


def gini(values: Any) -> float:
    """Gini coefficient of non-negative ``values`` (0 = all equal, (n-1)/n = one holds everything).

    .. math:: G = \\frac{\\sum_{i=1}^{n} \\sum_{j=1}^{n} |x_i - x_j|}{2 n^2 \\bar{x}}
              = \\frac{2 \\sum_{i=1}^{n} i\\, x_{(i)}}{n \\sum_i x_i} - \\frac{n + 1}{n}

    with :math:`x_{(1)} \\le \\dots \\le x_{(n)}` sorted ascending. Empty or all-zero input gives 0.
    """
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = len(x)
    total = x.sum()
    if n == 0 or total <= 0:
        return 0.0
    ranks = np.arange(1, n + 1, dtype=np.float64)
    return float(2.0 * (ranks * x).sum() / (n * total) - (n + 1) / n)


def _spread(counts: np.ndarray) -> dict[str, float | int]:
    if len(counts) == 0:
        return {"min": 0, "median": 0, "max": 0}
    median = float(np.median(counts))
    return {"min": int(counts.min()), "median": int(median) if median.is_integer() else median,
            "max": int(counts.max())}


def _iso(seconds: int) -> str:
    return pd.Timestamp(int(seconds), unit="s", tz="UTC").isoformat()


def _social_stats(social: pd.DataFrame) -> dict[str, Any]:
    pairs = social[["user_id", "friend_id"]].to_numpy(dtype=np.int64)
    forward = pd.MultiIndex.from_arrays([pairs[:, 0], pairs[:, 1]])
    backward = pd.MultiIndex.from_arrays([pairs[:, 1], pairs[:, 0]])
    reciprocated = int(backward.isin(forward).sum())
    return {
        "edges": len(social),
        "symmetric": reciprocated == len(social),
        "reciprocated_edges": reciprocated,
        # a directed graph (trust): a user trusted by others but trusting nobody still has a friend edge, and the
        # social models use the graph made undirected
        "users_with_friends": int(np.unique(pairs).size),
        "users_with_friends_counts": "users with an edge in either direction",
        "users_with_outgoing_edges": int(np.unique(pairs[:, 0]).size),
    }


def infer_freq(ds: Any) -> str | None:
    """``pandas.infer_freq`` as a string (pandas 3 warns that it will return an offset object instead)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pandas.errors.Pandas4Warning
        warnings.simplefilter("ignore", FutureWarning)
        freq = pd.infer_freq(pd.DatetimeIndex(ds))
    return None if freq is None else str(getattr(freq, "freqstr", freq))


def series_frequency(sales: pd.DataFrame, meta: Mapping[str, Any] | None = None) -> str | None:
    """``meta["freq"]`` when the source states it, else the one ``pandas.infer_freq`` finds for every series.

    Returns ``None`` when no series is long and regular enough to infer one, and ``"mixed: A, B"`` when
    series disagree (an M3-style panel of yearly, quarterly and monthly series).
    """
    if meta and meta.get("freq"):
        return str(meta["freq"])
    found: set[str] = set()
    for _, ds in sales.groupby("unique_id", sort=False)["ds"]:
        if len(ds) >= 3:
            freq = infer_freq(ds)
            if freq:
                found.add(freq)
    if not found:
        return None
    return found.pop() if len(found) == 1 else "mixed: " + ", ".join(sorted(found))


def _sales_stats(sales: pd.DataFrame, meta: Mapping[str, Any]) -> dict[str, Any]:
    lengths = sales.groupby("unique_id", sort=False).size().to_numpy()
    ds = pd.to_datetime(sales["ds"])
    return {
        "series": int(len(lengths)),
        "observations": int(len(sales)),
        "length": _spread(lengths),
        "frequency": series_frequency(sales, meta),
        "date_range": {"start": ds.min().isoformat(), "end": ds.max().isoformat()},
        "covariates": [c for c in sales.columns if c not in ("unique_id", "ds", "y")],
    }


def describe_bundle(bundle: DatasetBundle) -> dict[str, Any]:
    """Summary statistics of ``bundle`` as plain JSON-ready values.

    ``density`` = interactions / (users x items); ``interactions_per_user`` / ``_per_item`` give min / median /
    max of interaction rows per user and item; ``gini_item_popularity`` is :func:`gini` over the interaction
    count of every item; ``time_range`` is ``None`` when the data has no timestamps; ``social`` and ``sales``
    are ``None`` when the bundle has no such part.
    """
    inter = bundle.interactions
    n_users, n_items, n_inter = bundle.n_users, bundle.n_items, len(inter)
    per_user = np.bincount(inter["user_id"].to_numpy(np.int64), minlength=n_users) if n_users else np.zeros(0)
    per_item = np.bincount(inter["item_id"].to_numpy(np.int64), minlength=n_items) if n_items else np.zeros(0)
    weight = inter["weight"].to_numpy(np.float64)
    texts = bundle.texts() if bundle.item_text is not None else []
    with_text = sum(1 for t in texts if t.strip())
    time_range = None
    if bundle.has_timestamps and n_inter:
        ts = inter["timestamp"].to_numpy(np.int64)
        time_range = {"start": _iso(ts.min()), "end": _iso(ts.max())}
    return {
        "name": bundle.name,
        "users": n_users,
        "items": n_items,
        "interactions": n_inter,
        "density": n_inter / (n_users * n_items) if n_users and n_items else 0.0,
        "interactions_per_user": _spread(per_user),
        "interactions_per_item": _spread(per_item),
        "gini_item_popularity": gini(per_item),
        "weight": None if n_inter == 0 else {
            "min": float(weight.min()), "max": float(weight.max()), "mean": float(weight.mean()),
            "all_ones": bool((weight == 1.0).all()),
        },
        "text": None if bundle.item_text is None else {
            "items_with_text": with_text,
            "share_items_with_text": with_text / n_items if n_items else 0.0,
            "extra_columns": [c for c in bundle.item_text.columns if c not in ("item_id", "text")],
        },
        "social": None if bundle.social is None else _social_stats(bundle.social),
        "time_range": time_range,
        "sales": None if bundle.sales is None else _sales_stats(bundle.sales, bundle.meta),
        "warnings": dict(bundle.meta.get("warnings", {})),
    }


# --------------------------------------------------------------------------- quality report


def _problem(severity: str, check: str, message: str, count: int | None = None) -> dict[str, Any]:
    return {"severity": severity, "check": check, "count": count, "message": message}


def _text_problems(bundle: DatasetBundle) -> list[dict[str, Any]]:
    if bundle.item_text is None:
        return []  # a data set without text is a design choice, not a defect
    out = []
    texts = bundle.texts()
    empty = sum(1 for t in texts if not t.strip())
    if empty:
        out.append(_problem("warning", "items_without_text",
                            f"{empty:,} of {bundle.n_items:,} items have no (or empty) text", empty))
    col = bundle.item_text["text"].astype(str)
    bad_chars = col.str.count(REPLACEMENT_CHAR)
    if int(bad_chars.sum()):
        rows = int((bad_chars > 0).sum())
        examples = bundle.item_map.to_raw(bundle.item_text.loc[bad_chars > 0, "item_id"].to_numpy()[:3]).tolist()
        out.append(_problem(
            "warning", "text_encoding",
            f"{int(bad_chars.sum())} U+FFFD replacement character(s) in {rows} item text(s) (e.g. items "
            f"{examples}): the file was decoded with the wrong encoding or was already damaged", rows))
    lengths = col.str.len()
    long = int((lengths > LONG_TEXT_CHARS).sum())
    if long:
        out.append(_problem("warning", "long_text",
                            f"{long} item text(s) longer than {LONG_TEXT_CHARS:,} characters "
                            f"(longest {int(lengths.max()):,})", long))
    return out


def _interaction_problems(bundle: DatasetBundle) -> list[dict[str, Any]]:
    inter = bundle.interactions
    if len(inter) == 0:
        return []
    out = []
    per_user = np.bincount(inter["user_id"].to_numpy(np.int64), minlength=bundle.n_users)
    single = int((per_user == 1).sum())
    if single:
        out.append(_problem("warning", "single_interaction_users",
                            f"{single:,} of {bundle.n_users:,} users have a single interaction (nothing left to "
                            "train on once it is held out; consider user_k_core)", single))
    zero = int((inter["weight"].to_numpy() == 0).sum())
    if zero:
        out.append(_problem("warning", "zero_weights", f"{zero} interaction(s) have weight 0", zero))
    return out


def _sales_problems(bundle: DatasetBundle) -> list[dict[str, Any]]:
    if bundle.sales is None:
        return []
    out = []
    y = pd.to_numeric(bundle.sales["y"], errors="coerce").to_numpy(np.float64)
    nonfinite = int((~np.isfinite(y)).sum())
    if nonfinite:
        out.append(_problem("error", "sales_nonfinite", f"{nonfinite} sales value(s) y are NaN or infinite",
                            nonfinite))
    negative = int((y < 0).sum())
    if negative:
        ids = bundle.sales.loc[y < 0, "unique_id"].unique()[:3].tolist()
        out.append(_problem("warning", "sales_negative",
                            f"{negative} negative sales value(s) y (returns?), e.g. in series {ids}", negative))
    irregular = []
    for uid, ds in bundle.sales.groupby("unique_id", sort=False)["ds"]:
        if len(ds) >= 3 and infer_freq(ds) is None:
            irregular.append(uid)
    if irregular:
        out.append(_problem("warning", "irregular_series",
                            f"{len(irregular)} series have gaps or irregular dates (no frequency can be "
                            f"inferred), e.g. {irregular[:3]}", len(irregular)))
    return out


def quality_report(source: DatasetBundle | Callable[[], DatasetBundle]) -> dict[str, Any]:
    """Problems of a data set, each ``{"severity": "warning"|"error", "check", "count", "message"}``.

    ``source`` is a loaded bundle or a zero-argument loader; a loader that raises
    :class:`DataValidationError` (or ``FileNotFoundError``) gives one ``"error"`` entry with its message.
    Otherwise the entries are the warnings counted while loading (``meta["warnings"]``: dropped duplicates,
    dangling ids, self loops) and checks of the loaded data: items without text, users with one interaction,
    zero weights, non-finite or negative sales, irregular series, U+FFFD replacement characters in text and
    texts over :data:`LONG_TEXT_CHARS` characters. ``status`` is ``"clean"``, ``"warnings"`` or ``"errors"``.
    """
    dataset = None
    problems: list[dict[str, Any]] = []
    bundle: DatasetBundle | None = None
    if isinstance(source, DatasetBundle):
        bundle = source
    else:
        try:
            bundle = source()
        except (DataValidationError, FileNotFoundError) as err:
            problems.append(_problem("error", "load", str(err)))
    if bundle is not None:
        dataset = bundle.name
        for key, count in bundle.meta.get("warnings", {}).items():
            text = _WARNING_TEXT.get(key, key.replace("_", " "))
            problems.append(_problem("warning", key, f"{count} {text}" if isinstance(count, int) else
                                     f"{text}: {count}", count if isinstance(count, int) else None))
        problems += _interaction_problems(bundle) + _text_problems(bundle) + _sales_problems(bundle)
    severities = {p["severity"] for p in problems}
    status = "errors" if "error" in severities else "warnings" if severities else "clean"
    return {
        "dataset": dataset,
        "status": status,
        "errors": sum(p["severity"] == "error" for p in problems),
        "warnings": sum(p["severity"] == "warning" for p in problems),
        "problems": problems,
    }


def exit_code(report: Mapping[str, Any]) -> int:
    """0 clean, 1 warnings only, 2 errors (the exit status of ``ecomlab-data validate``)."""
    return {"clean": 0, "warnings": 1, "errors": 2}[report["status"]]
