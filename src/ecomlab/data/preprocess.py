"""Preprocessing between a source and the splitter: filters that research protocols name explicitly.

:class:`Preprocess` is built by Hydra (``data.preprocess``) and applied to a validated
:class:`~ecomlab.data.bundle.DatasetBundle` by :func:`ecomlab.data.cache.load_bundle` (so its output is what
gets cached). Steps, in this order:

Interactions (skipped for a forecasting-only bundle without interactions)
    1. ``duplicates`` -- repeated ``(user, item)`` pairs: ``"keep_all"`` (default, unchanged),
       ``"keep_last"`` (the row with the latest timestamp; on equal timestamps the later row), ``"sum"``
       (that same row, carrying the sum of the pair's weights, so it keeps the latest timestamp). The kept row
       stays at its position, so row order is otherwise unchanged. Runs first, so a threshold applies to the
       latest rating (``keep_last``) or to the total count (``sum``).
    2. ``rating_threshold`` -- keep rows with ``weight >= rating_threshold`` (explicit -> implicit).
    3. ``binarize`` -- set every kept weight to 1.0.
    4. ``user_k_core`` / ``item_k_core`` -- repeatedly drop users with fewer than ``user_k_core`` rows and
       items with fewer than ``item_k_core`` rows until nothing changes (a fixed point: dropping an item can
       push a user below the threshold and vice versa). Counts are rows, so with ``keep_all`` a repeated pair
       counts every time.
    5. Re-index: surviving users and items get contiguous indices in their previous order (``IdMap`` keeps the
       raw ids); ``item_text`` rows and ``social`` edges that touch a dropped id are removed. Meta lists
       aligned with indices (keys starting ``user_`` / ``item_`` whose length is the old count, e.g.
       :class:`~ecomlab.data.synthetic.SyntheticShop`'s ``item_category``) are subset the same way.

Sales panel
    6. ``min_series_length`` -- drop series with fewer observations (names and count recorded).
    7. ``freq`` -- ``None`` infers each series' frequency with :func:`pandas.infer_freq` and takes the commonest
       as the panel's (series with fewer than 3 observations, or with gaps, cannot be inferred on their own);
       the result goes to ``meta["freq"]``. A given ``freq`` is used as is. Every series is then checked
       against it.
    8. ``fill_gaps`` / ``drop_irregular`` -- a series that is not regular at the panel's frequency has *gaps*
       when its dates all lie on the frequency's grid (missing periods), else it is *off the grid* (a date
       between two periods, or a series at another frequency). ``fill_gaps`` decides what happens to gaps:
       ``"error"`` (default) refuses the panel, ``"zero"`` inserts the missing periods with ``y = 0`` (a shop's
       closed days), ``"ffill"`` with the last observed ``y``, ``"nan"`` with ``y = NaN`` (the forecasting data
       module masks them: models and losses see them as missing, not as values). Covariates of an inserted
       period take the previous period's values in every mode. ``drop_irregular=true`` leaves out every series
       that is still irregular (all of them with ``"error"``, those off the grid otherwise). A refusal counts
       the offending series, names the first few with the first gap of each and names both keys; what was
       filled or dropped is counted in ``meta["preprocess"]["steps"]``.

If a filter empties the interactions or the panel, :class:`DataValidationError` names the dataset and the
filter. Counts before and after and per-step counts are recorded in ``meta["preprocess"]``;
:meth:`Preprocess.describe` returns the settings for run records and cache keys.
"""

from __future__ import annotations

import copy
import logging
import numbers
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from ecomlab.data.bundle import PART_COLUMN, DatasetBundle, DataValidationError, IdMap

__all__ = ["DUPLICATE_POLICIES", "FILL_GAPS", "Preprocess", "infer_panel_freq"]

log = logging.getLogger(__name__)

DUPLICATE_POLICIES = ("keep_all", "keep_last", "sum")
#: what happens to the missing periods of a series whose dates lie on the panel's frequency grid
FILL_GAPS = ("error", "zero", "ffill", "nan")
#: offending series an error message names one by one (the count covers all of them)
_SHOWN = 5
_FREQ_OPTION = "future.infer_freq_returns_offset"


def _has_option(name: str) -> bool:
    try:
        pd.get_option(name)
    except (pd.errors.OptionError, KeyError):
        return False
    return True


_HAS_FREQ_OPTION = _has_option(_FREQ_OPTION)


def _infer_freq(index: pd.DatetimeIndex) -> str | None:
    """``pandas.infer_freq`` as a string; pandas 3 warns that it will return an offset, so ask for that."""
    if _HAS_FREQ_OPTION:
        with pd.option_context(_FREQ_OPTION, True):
            out = pd.infer_freq(index)
    else:
        out = pd.infer_freq(index)
    if out is None:
        return None
    return str(getattr(out, "freqstr", out))


@dataclass
class Preprocess:
    """Explicit-to-implicit threshold, duplicates, k-core, sales length and frequency; see the module docstring."""

    rating_threshold: float | None = None
    binarize: bool = False
    user_k_core: int = 0
    item_k_core: int = 0
    duplicates: str = "keep_all"
    min_series_length: int = 0
    freq: str | None = None
    fill_gaps: str = "error"
    drop_irregular: bool = False

    def __post_init__(self) -> None:
        if self.rating_threshold is not None:
            if isinstance(self.rating_threshold, bool) or not isinstance(self.rating_threshold, numbers.Real) \
                    or not np.isfinite(float(self.rating_threshold)):
                raise ValueError(f"Preprocess.rating_threshold={self.rating_threshold!r}; expected a number or null")
            self.rating_threshold = float(self.rating_threshold)
        if not isinstance(self.binarize, bool | np.bool_):
            raise ValueError(f"Preprocess.binarize={self.binarize!r}; expected true or false")
        self.binarize = bool(self.binarize)
        for key in ("user_k_core", "item_k_core", "min_series_length"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 0:
                raise ValueError(f"Preprocess.{key}={value!r}; expected an integer >= 0")
            setattr(self, key, int(value))
        if self.fill_gaps not in FILL_GAPS:
            raise ValueError(f"Preprocess.fill_gaps={self.fill_gaps!r}; expected one of {list(FILL_GAPS)}")
        if not isinstance(self.drop_irregular, bool | np.bool_):
            raise ValueError(f"Preprocess.drop_irregular={self.drop_irregular!r}; expected true or false")
        self.drop_irregular = bool(self.drop_irregular)
        if self.duplicates not in DUPLICATE_POLICIES:
            raise ValueError(f"Preprocess.duplicates={self.duplicates!r}; expected one of {list(DUPLICATE_POLICIES)}")
        if self.freq is not None:
            try:
                self.freq = to_offset(str(self.freq)).freqstr
            except ValueError as err:
                raise ValueError(f"Preprocess.freq={self.freq!r} is not a pandas frequency string: {err}") from None

    def describe(self) -> dict[str, Any]:
        """The settings as plain JSON values (run records and cache keys); ``fill_gaps`` and ``drop_irregular``
        only when set, so records and cache keys of regular panels read as they did before those existed (a
        study's old and new runs still compare)."""
        out = asdict(self)
        for key, default in (("fill_gaps", "error"), ("drop_irregular", False)):
            if out[key] == default:
                del out[key]
        return out

    # ------------------------------------------------------------------ entry point

    def __call__(self, bundle: DatasetBundle) -> DatasetBundle:
        """A new bundle with the filters applied and ids re-indexed; ``bundle`` itself is left unchanged."""
        meta = copy.deepcopy(bundle.meta)
        steps: dict[str, Any] = {}
        before = _counts(bundle)
        out = DatasetBundle(name=bundle.name, interactions=bundle.interactions, user_map=bundle.user_map,
                            item_map=bundle.item_map, item_text=bundle.item_text, social=bundle.social,
                            sales=bundle.sales, has_timestamps=bundle.has_timestamps, meta=meta)
        if len(bundle.interactions):
            self._interactions(out, steps)
        if bundle.sales is not None:
            self._sales(out, steps)
        meta["preprocess"] = {"settings": self.describe(), "before": before, "after": _counts(out), "steps": steps}
        log.info("preprocessed %s: %s -> %s", bundle.name, before, meta["preprocess"]["after"])
        return out

    # ------------------------------------------------------------------ interactions

    def _interactions(self, bundle: DatasetBundle, steps: dict[str, Any]) -> None:
        frame = bundle.interactions
        n0 = len(frame)
        if self.duplicates != "keep_all":
            frame = _merge_duplicates(frame, self.duplicates)
            steps["duplicates_merged"] = n0 - len(frame)
        if self.rating_threshold is not None:
            weights = frame["weight"].to_numpy()
            kept = weights >= self.rating_threshold
            steps["rating_threshold_dropped"] = int((~kept).sum())
            if not kept.any():
                raise DataValidationError(
                    f"{bundle.name}: no interactions left after data.preprocess.rating_threshold="
                    f"{self.rating_threshold:g} (keeps weight >= {self.rating_threshold:g}; the weights range "
                    f"{weights.min():g}..{weights.max():g})")
            frame = frame.loc[kept].reset_index(drop=True)
        if self.binarize:
            frame = frame.assign(weight=np.ones(len(frame), dtype=np.float64))
        if self.user_k_core > 1 or self.item_k_core > 1:
            n_before = len(frame)
            kept, iterations = _k_core(frame["user_id"].to_numpy(), frame["item_id"].to_numpy(),
                                       bundle.n_users, bundle.n_items, self.user_k_core, self.item_k_core)
            steps["k_core_dropped"] = int(n_before - kept.sum())
            steps["k_core_iterations"] = iterations
            if not kept.any():
                raise DataValidationError(
                    f"{bundle.name}: no interactions left after the k-core filter (data.preprocess.user_k_core="
                    f"{self.user_k_core}, item_k_core={self.item_k_core}; {n_before} interactions before it)")
            frame = frame.take(np.flatnonzero(kept))  # one copy; loc + reset_index would make two
            frame.index = pd.RangeIndex(len(frame))
        self._reindex(bundle, frame, steps)

    def _reindex(self, bundle: DatasetBundle, frame: pd.DataFrame, steps: dict[str, Any]) -> None:
        n_users, n_items = bundle.n_users, bundle.n_items
        # surviving ids keep their order; counting instead of np.unique + searchsorted avoids two sorts of
        # every row (the ids are already contiguous indices below n_users / n_items)
        u_rows, i_rows = frame["user_id"].to_numpy(), frame["item_id"].to_numpy()
        users = np.flatnonzero(np.bincount(u_rows, minlength=n_users))
        items = np.flatnonzero(np.bincount(i_rows, minlength=n_items))
        if len(users) == n_users and len(items) == n_items:
            bundle.interactions = frame.reset_index(drop=True)
            return  # every id survived: indices are unchanged
        user_new = np.full(n_users, -1, dtype=np.int64)
        user_new[users] = np.arange(len(users))
        item_new = np.full(n_items, -1, dtype=np.int64)
        item_new[items] = np.arange(len(items))
        # a shallow copy whose two id columns are replaced: the other columns are shared, not copied, and the
        # input frame is left as it was
        out = frame.copy(deep=False)
        out["user_id"] = user_new[u_rows]
        out["item_id"] = item_new[i_rows]
        bundle.interactions = out
        bundle.user_map = IdMap(bundle.user_map.raw[users])
        bundle.item_map = IdMap(bundle.item_map.raw[items])
        if bundle.item_text is not None:
            text = bundle.item_text
            new = item_new[text["item_id"].to_numpy()]
            steps["item_text_dropped"] = int((new < 0).sum())
            bundle.item_text = text.loc[new >= 0].assign(item_id=new[new >= 0]).reset_index(drop=True)
        if bundle.social is not None:
            social = bundle.social
            a = user_new[social["user_id"].to_numpy()]
            b = user_new[social["friend_id"].to_numpy()]
            keep = (a >= 0) & (b >= 0)
            steps["social_dropped"] = int((~keep).sum())
            bundle.social = social.loc[keep].assign(user_id=a[keep], friend_id=b[keep]).reset_index(drop=True)
        subset = []
        for key, value in list(bundle.meta.items()):
            for prefix, old_n, kept_ids in (("user_", n_users, users), ("item_", n_items, items)):
                if key.startswith(prefix) and isinstance(value, list | np.ndarray) and len(value) == old_n:
                    bundle.meta[key] = (value[kept_ids] if isinstance(value, np.ndarray)
                                        else [value[i] for i in kept_ids.tolist()])
                    subset.append(key)
        if subset:
            steps["meta_reindexed"] = subset

    # ------------------------------------------------------------------ sales

    def _sales(self, bundle: DatasetBundle, steps: dict[str, Any]) -> None:
        sales = bundle.sales
        assert sales is not None
        if self.min_series_length > 0:
            lengths = sales.groupby("unique_id", sort=True).size()
            short = lengths[lengths < self.min_series_length]
            steps["short_series_dropped"] = len(short)
            if len(short):
                steps["short_series"] = [str(s) for s in short.index[:20]]
                log.info("%s: dropped %d series shorter than %d observations", bundle.name, len(short),
                         self.min_series_length)
            if len(short) == len(lengths):
                raise DataValidationError(
                    f"{bundle.name}: no sales series left after data.preprocess.min_series_length="
                    f"{self.min_series_length} (the longest series has {int(lengths.max())} observations)")
            if len(short):
                sales = sales.loc[~sales["unique_id"].isin(short.index)].reset_index(drop=True)
        freq = panel_freq(sales, self.freq, name=bundle.name)
        sales = self._regularise(sales, freq, bundle.name, steps)
        declared = bundle.meta.get("freq")
        if declared is not None and declared != freq:
            log.warning("%s: the source declares freq=%r but the panel is at %r; recording %r",
                        bundle.name, declared, freq, freq)
            steps["declared_freq"] = declared
        bundle.meta["freq"] = freq
        bundle.sales = sales


    def _regularise(self, sales: pd.DataFrame, freq: str, name: str, steps: dict[str, Any]) -> pd.DataFrame:
        """The panel with every series regular at ``freq``: gaps filled or series dropped as configured, or a
        :class:`DataValidationError` that counts and names the offending series."""
        bad = irregular_series(sales, freq)
        if not bad:
            return sales
        n_series = int(sales["unique_id"].nunique())
        fillable = [b for b in bad if b.on_grid] if self.fill_gaps != "error" else []
        rest = [b for b in bad if not (b.on_grid and self.fill_gaps != "error")]
        if rest and not self.drop_irregular:
            raise _irregular_error(name, rest, _regular(sales, bad), n_series, freq, self.fill_gaps,
                                   self.freq is None)
        if rest:
            dropped = {b.uid for b in rest}
            steps["irregular_dropped"] = len(dropped)
            steps["irregular_series"] = sorted(dropped)[:20]
            log.info("%s: dropped %d irregular series (data.preprocess.drop_irregular)", name, len(dropped))
            if len(dropped) == n_series:
                raise DataValidationError(
                    f"{name}: no sales series left after data.preprocess.drop_irregular=true: all {n_series} are "
                    f"irregular at freq {freq!r} (first: {_describe(rest[0], freq)})")
            sales = sales.loc[~sales["unique_id"].isin(dropped)]
        if fillable:
            sales, inserted = _fill(sales, {b.uid for b in fillable}, freq, self.fill_gaps)
            steps["gaps_filled"] = {"series": len(fillable), "periods": inserted, "with": self.fill_gaps}
            steps["gap_series"] = sorted(b.uid for b in fillable)[:20]
            log.info("%s: filled %d missing period(s) in %d series with %s (data.preprocess.fill_gaps)", name,
                     inserted, len(fillable), self.fill_gaps)
        return sales.reset_index(drop=True)


# --------------------------------------------------------------------------- helpers


def _counts(bundle: DatasetBundle) -> dict[str, int]:
    out = bundle.summary()
    out.pop("name")
    out["n_sales_rows"] = 0 if bundle.sales is None else len(bundle.sales)
    return out


def _merge_duplicates(frame: pd.DataFrame, policy: str) -> pd.DataFrame:
    """One row per ``(user, item)``: the latest (later row on ties); with ``"sum"`` it carries the pair's total.

    With a predefined split (a ``part`` column) pairs are merged within their part only: a pair the train file
    and the test file both hold stays in both, as the files say.
    """
    n = len(frame)
    users = frame["user_id"].to_numpy()
    items = frame["item_id"].to_numpy()
    parts = frame[PART_COLUMN].to_numpy() if PART_COLUMN in frame else np.zeros(n, dtype=np.int8)
    order = np.lexsort((np.arange(n), frame["timestamp"].to_numpy(), items, users, parts))  # pair-major, latest last
    su, si, sp = users[order], items[order], parts[order]
    last = np.ones(n, dtype=bool)
    last[:-1] = (su[1:] != su[:-1]) | (si[1:] != si[:-1]) | (sp[1:] != sp[:-1])
    keep = np.zeros(n, dtype=bool)
    keep[order[last]] = True
    out = frame.loc[keep]
    if policy == "sum":
        group = np.cumsum(np.r_[True, last[:-1]]) - 1  # pair number of each sorted row
        sums = np.bincount(group, weights=frame["weight"].to_numpy()[order])
        summed = np.empty(n)
        summed[order[last]] = sums
        out = out.assign(weight=summed[keep])
    return out.reset_index(drop=True)


def _k_core(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int, user_k: int,
            item_k: int) -> tuple[np.ndarray, int]:
    """Mask of rows in the ``(user_k, item_k)``-core and the number of passes it took to reach the fixed point."""
    kept = np.ones(len(users), dtype=bool)
    iterations = 0
    while True:
        iterations += 1
        u_count = np.bincount(users[kept], minlength=n_users)
        i_count = np.bincount(items[kept], minlength=n_items)
        new = kept & (u_count[users] >= user_k) & (i_count[items] >= item_k)
        if new.sum() == kept.sum():
            return kept, iterations
        kept = new


def _first_gap(ds: pd.DatetimeIndex, freq: str) -> tuple[int, pd.Timestamp] | None:
    """Position ``i`` where ``ds[i + 1]`` is not one ``freq`` step after ``ds[i]`` (with the expected date)."""
    if len(ds) < 2:
        return None
    offset = to_offset(freq)
    expected = ds[:-1] + offset  # [L - 1]
    bad = np.flatnonzero(np.asarray(ds[1:] != expected))
    if len(bad) == 0:
        return None
    return int(bad[0]), expected[bad[0]]


def _guess_freq(ds: pd.DatetimeIndex) -> str | None:
    """The commonest frequency of 3-point windows, to say where an irregular series breaks."""
    found = Counter(f for i in range(min(len(ds) - 2, 50)) if (f := _infer_freq(ds[i:i + 3])) is not None)
    return found.most_common(1)[0][0] if found else None


def _fmt(ts: pd.Timestamp) -> str:
    return str(ts.date()) if ts == ts.normalize() else str(ts)


@dataclass(frozen=True)
class Irregular:
    """A series that is not regular at the panel's frequency."""

    uid: str
    ds: pd.DatetimeIndex
    #: every date lies on the frequency's grid from the series' first date (only periods are missing)
    on_grid: bool
    #: the series' own frequency when it is regular at another one
    own: str | None


def _describe(bad: Irregular, freq: str) -> str:
    gap = _first_gap(bad.ds, freq)
    if gap is None:  # pragma: no cover - an Irregular always has a gap
        return f"sales series '{bad.uid}'"
    i, expected = gap
    own = f" (it is regular at {bad.own!r})" if bad.own is not None else ""
    return (f"sales series '{bad.uid}' is not regular at freq {freq!r}{own}: first gap after {_fmt(bad.ds[i])} "
            f"(position {i}); the next observation is {_fmt(bad.ds[i + 1])}, expected {_fmt(expected)}")


def _irregular_error(name: str, bad: list[Irregular], regular: list[str], n_series: int, freq: str,
                     fill_gaps: str, inferred: bool) -> DataValidationError:
    """Count every offending series, name the first few, describe the first one's first gap, name the keys.

    ``regular`` are the series that are regular at ``freq``; ``inferred``: ``freq`` was inferred, not given, so
    series regular at another frequency mean the panel mixes frequencies.
    """
    if inferred and all(b.own is not None for b in bad):
        groups: dict[str, list[str]] = {freq: regular} if regular else {}
        for b in bad:
            groups.setdefault(b.own or "", []).append(b.uid)
        shown = "; ".join(f"{f}: {ids[:3]}" + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
                          for f, ids in sorted(groups.items()))
        return DataValidationError(
            f"{name}: the sales series disagree on their frequency ({shown}); one panel needs one frequency: set "
            "data.preprocess.freq, or leave the others out with data.preprocess.drop_irregular=true")
    ids = [b.uid for b in bad]
    names = ", ".join(f"'{u}'" for u in ids[:_SHOWN]) + (f" and {len(ids) - _SHOWN} more" if len(ids) > _SHOWN
                                                         else "")
    if fill_gaps == "error":
        fix = ("fill the missing periods with data.preprocess.fill_gaps=zero, ffill or nan, or leave the series "
               "out with data.preprocess.drop_irregular=true")
    else:
        fix = (f"data.preprocess.fill_gaps={fill_gaps} fills only missing periods, and these have dates off the "
               f"{freq!r} grid: fix the dates, set data.preprocess.freq, or leave the series out with "
               "data.preprocess.drop_irregular=true")
    return DataValidationError(
        f"{name}: {len(ids)} of {n_series} sales series {'is' if len(ids) == 1 else 'are'} not regular at freq "
        f"{freq!r} ({names}); {_describe(bad[0], freq)}. To go on, {fix}")


def _series(sales: pd.DataFrame) -> list[tuple[str, pd.DatetimeIndex]]:
    """``[(unique_id, its dates)]`` of a panel sorted by ``(unique_id, ds)``."""
    uids = sales["unique_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, uids[1:] != uids[:-1]])
    bounds = np.r_[starts, len(uids)]
    ds_all = pd.DatetimeIndex(sales["ds"])
    return [(str(uids[a]), ds_all[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def panel_freq(sales: pd.DataFrame, freq: str | None = None, *, name: str = "sales") -> str:
    """``freq`` itself, or the commonest frequency :func:`pandas.infer_freq` finds among the series (ties: the
    first by name); for a panel where no series is regular, the commonest frequency of 3-point windows."""
    if freq is not None:
        return freq
    series = _series(sales)
    found = Counter(f for _, ds in series if len(ds) >= 3 and (f := _infer_freq(ds)) is not None)
    if found:
        top = max(found.values())
        return sorted(f for f, n in found.items() if n == top)[0]
    guesses = Counter(g for _, ds in series if len(ds) >= 3 and (g := _guess_freq(ds)) is not None)
    if guesses:
        return guesses.most_common(1)[0][0]
    if all(len(ds) < 3 for _, ds in series):
        raise DataValidationError(
            f"{name}: cannot infer the sales frequency: every series has fewer than 3 observations; "
            "set data.preprocess.freq")
    uid, ds = next((u, d) for u, d in series if len(d) >= 3)
    raise DataValidationError(
        f"{name}: sales series '{uid}' has irregular dates (pandas.infer_freq finds no frequency; first dates "
        f"{[_fmt(d) for d in ds[:4]]}); make the series regular or set data.preprocess.freq")


def irregular_series(sales: pd.DataFrame, freq: str) -> list[Irregular]:
    """Every series of the panel that is not regular at ``freq``, in ``unique_id`` order."""
    out = []
    for uid, ds in _series(sales):
        if _first_gap(ds, freq) is None:
            continue
        grid = pd.date_range(ds[0], ds[-1], freq=freq)
        on_grid = len(grid) > 0 and grid[0] == ds[0] and bool(ds.isin(grid).all())
        out.append(Irregular(uid, ds, on_grid, _infer_freq(ds) if len(ds) >= 3 else None))
    return out


def _fill(sales: pd.DataFrame, uids: set[str], freq: str, how: str) -> tuple[pd.DataFrame, int]:
    """``sales`` with the missing periods of ``uids`` inserted (``y`` by ``how``, covariates carried forward)."""
    gappy = sales["unique_id"].isin(uids).to_numpy()
    filled = []
    for uid, part in sales.loc[gappy].groupby("unique_id", sort=True):
        grid = pd.date_range(part["ds"].iloc[0], part["ds"].iloc[-1], freq=freq)
        full = part.set_index("ds").reindex(grid)
        missing = ~grid.isin(part["ds"])  # the inserted periods (a NaN the source had stays as it was)
        covariates = [c for c in full.columns if c not in ("unique_id", "y")]
        full[covariates] = full[covariates].ffill()
        fill = {"zero": 0.0, "ffill": full["y"].ffill(), "nan": np.nan}[how]
        full["y"] = full["y"].where(~missing, fill)
        full["unique_id"] = uid
        filled.append(full.rename_axis("ds").reset_index()[sales.columns])
    out = pd.concat([sales.loc[~gappy], *filled], ignore_index=True)
    out = out.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
    return out, len(out) - len(sales)


def infer_panel_freq(sales: pd.DataFrame, freq: str | None = None, *, name: str = "sales") -> str:
    """The panel's frequency (:func:`panel_freq`), every series checked to be regular at it."""
    inferred = freq is None
    freq = panel_freq(sales, freq, name=name)
    bad = irregular_series(sales, freq)
    if bad:
        raise _irregular_error(name, bad, _regular(sales, bad), int(sales["unique_id"].nunique()), freq, "error",
                               inferred)
    return freq


def _regular(sales: pd.DataFrame, bad: list[Irregular]) -> list[str]:
    """The panel's series (sorted) other than ``bad``."""
    irregular = {b.uid for b in bad}
    return [u for u in sorted(sales["unique_id"].astype(str).unique()) if u not in irregular]
