"""Sales panels for forecasting: Australian retail turnover, the M3 competition, and any long-format file.

All three return a bundle with ``interactions=None`` and a ``sales`` panel ``(unique_id, ds, y, *covariates)``
(see :mod:`ecomlab.data.bundle`).

* :class:`AusRetail` -- ``aus_retail`` from the R package tsibbledata (O'Hara-Wild, Hyndman, Wang, Godahewa:
  "tsibbledata: Diverse Datasets for 'tsibble'"; data: Australian Bureau of Statistics, Retail Trade,
  Australia, cat. 8501.0, table 11), file ``aus-retail/aus_retail.csv``. Monthly retail turnover ($Million
  AUD), April 1982 - December 2018, 152 series keyed by (State, Industry): ``unique_id = "State/Industry"``
  (no state or industry name contains "/"), ``ds`` = first day of ``Month`` (``freq="MS"``), ``y`` =
  ``Turnover``. ``meta["series"][unique_id]`` holds state, industry and the ABS series id.
* :class:`M3Competition` -- the 3,003 series of the M3 competition (Makridakis, S., Hibon, M. (2000), "The
  M3-Competition: results, conclusions and implications", International Journal of Forecasting 16, 451-476;
  via the R package Mcomp, Hyndman et al.), files ``m3-competition/m3_observations.csv`` and
  ``m3_series_meta.csv``. ``unique_id`` = series id (``N0001``), ``y`` = value; each series is its official
  history followed by its official hold-out, so a rolling-origin backtest with ``horizon = h`` and one test
  window evaluates exactly the competition's hold-out. ``meta["series"][unique_id]`` holds ``category`` (the
  M3 type: MICRO, MACRO, INDUSTRY, DEMOGRAPHIC, FINANCE, OTHER), ``horizon`` (6 yearly, 8 quarterly, 18
  monthly, 8 other), ``frequency``, ``n_train``, ``st`` (the competition's own name, e.g. ``M1400``),
  ``description`` and ``calendar``.

  **Time index.** M3 gives years and sub-periods, not dates, and for some series no calendar at all. ``ds`` is
  built as a regular index from each series' start and its 1-based position ``t``:

  ===========  =========  ===================================================================================
  frequency    ``freq``   ``ds`` of position ``t``
  ===========  =========  ===================================================================================
  yearly       ``YS``     1 January of ``start_year + t - 1``
  quarterly    ``QS``     first day of quarter ``start_subperiod + t - 1`` counted from ``start_year``
  monthly      ``MS``     first day of month ``start_subperiod + t - 1`` counted from ``start_year``
  other        ``D``      ``1970-01-01 + (t - 1)`` days (**synthetic**: "other" series carry only positions;
                          M3 does not say whether they are weekly, daily, ...)
  ===========  =========  ===================================================================================

  Series whose source "year" is a position rather than a calendar year (``start_year < 1000``: the 174
  "other" series and the 29 monthly telecommunication series ``M1400``-``M1428``, which start in "year 1")
  get a **synthetic calendar**: year 1 becomes 1970. Their ``meta["series"][uid]["calendar"]`` is
  ``"synthetic"`` (``"real"`` otherwise). Only spacing and order of ``ds`` carry information for them. Every
  row's ``(year, subperiod)`` is checked against the index built from ``t``, and each series must have
  ``n`` train and ``h`` test rows, positions ``1..n+h`` in order.
* :class:`SalesFile` -- any long-format CSV/TSV/parquet; the arguments name the id, date, target and covariate
  columns, which are renamed to the contract's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from ecomlab.data.bundle import ROWS, DatasetBundle, DataValidationError, build_bundle, require_columns
from ecomlab.data.io import read_table

__all__ = ["AusRetail", "M3Competition", "SalesFile", "M3_CATEGORIES", "M3_FREQUENCIES"]

M3_CATEGORIES = ("micro", "macro", "industry", "demographic", "finance", "other")
#: frequency -> (M3 "period", pandas frequency, periods per year)
M3_FREQUENCIES: dict[str, tuple[str, str, int]] = {
    "yearly": ("YEARLY", "YS", 1), "quarterly": ("QUARTERLY", "QS", 4),
    "monthly": ("MONTHLY", "MS", 12), "other": ("OTHER", "D", 1),
}
_SYNTHETIC_EPOCH_YEAR = 1970  # year 1 of a position-only series; any year in pandas' range would do


def _hint(folder: str, file: str) -> str:
    return f"set paths.data_dir to the folder holding {folder}/ (it needs {file})"


class AusRetail:
    """Australian monthly retail turnover by state and industry (152 series); see the module docstring."""

    file = "aus_retail.csv"

    def __init__(self, data_dir: str, folder: str = "aus-retail") -> None:
        self.data_dir, self.folder = str(data_dir), folder

    @property
    def path(self) -> Path:
        return Path(self.data_dir) / self.folder / self.file

    def cache_key(self) -> dict[str, Any]:
        return {"data_dir": str(Path(self.data_dir).resolve()), "folder": self.folder,
                "files": [str(self.path.resolve())]}

    def load(self) -> DatasetBundle:
        path = self.path
        raw = read_table(path, _hint(self.folder, self.file))
        where = str(path)
        require_columns(raw, ("State", "Industry", "Series ID", "Month", "Turnover"), where)
        month = pd.to_datetime(raw["Month"], format="%Y-%m", errors="coerce")
        bad = month.isna().to_numpy()
        if bad.any():
            raise DataValidationError(
                f"{where}: column 'Month' has {int(bad.sum())} value(s) not in YYYY-MM form; first rows "
                f"{np.flatnonzero(bad)[:5].tolist()}{ROWS} (values {raw['Month'][bad].head(5).tolist()})")
        state, industry = raw["State"].astype(str), raw["Industry"].astype(str)
        sales = pd.DataFrame({"unique_id": state + "/" + industry, "ds": month, "y": raw["Turnover"]})
        keys = raw.assign(unique_id=sales["unique_id"]).drop_duplicates("unique_id")
        series = {uid: {"state": s, "industry": i, "series_id": sid} for uid, s, i, sid in zip(
            keys["unique_id"], keys["State"], keys["Industry"], keys["Series ID"], strict=True)}
        return build_bundle("aus_retail", None, sales=sales, files={"sales": where},
                            meta={"freq": "MS", "unit": "$Million AUD", "series": series})


class M3Competition:
    """The M3 competition's series, optionally one category and/or frequency; see the module docstring."""

    observations_file = "m3_observations.csv"
    series_file = "m3_series_meta.csv"

    def __init__(self, data_dir: str, folder: str = "m3-competition", category: str | None = None,
                 frequency: str | None = "monthly") -> None:
        if category is not None and str(category).lower() not in M3_CATEGORIES:
            raise ValueError(f"M3Competition.category={category!r} is not an M3 category; allowed: "
                             f"{[c.capitalize() for c in M3_CATEGORIES]} (any case) or null for all")
        if frequency is not None and str(frequency).lower() not in M3_FREQUENCIES:
            raise ValueError(f"M3Competition.frequency={frequency!r}; allowed: {list(M3_FREQUENCIES)} or null "
                             "for all")
        self.data_dir, self.folder = str(data_dir), folder
        self.category = None if category is None else str(category).upper()
        self.frequency = None if frequency is None else str(frequency).lower()

    def paths(self) -> tuple[Path, Path]:
        base = Path(self.data_dir) / self.folder
        return base / self.observations_file, base / self.series_file

    def cache_key(self) -> dict[str, Any]:
        return {"data_dir": str(Path(self.data_dir).resolve()), "folder": self.folder,
                "category": self.category, "frequency": self.frequency,
                "files": [str(p.resolve()) for p in self.paths()]}

    def load(self) -> DatasetBundle:
        obs_path, meta_path = self.paths()
        info = read_table(meta_path, _hint(self.folder, self.series_file))
        require_columns(info, ("series_id", "st", "period", "type", "description", "n", "h", "start_year",
                               "start_subperiod"), str(meta_path))
        periods = {v[0]: k for k, v in M3_FREQUENCIES.items()}
        unknown = sorted(set(info["period"].astype(str)) - set(periods))
        if unknown:
            raise DataValidationError(f"{meta_path}: unknown period(s) {unknown}; expected {sorted(periods)}")
        chosen = info
        if self.frequency is not None:
            chosen = chosen[chosen["period"] == M3_FREQUENCIES[self.frequency][0]]
        if self.category is not None:
            chosen = chosen[chosen["type"].astype(str).str.upper() == self.category]
        if len(chosen) == 0:
            raise DataValidationError(f"{meta_path}: no series with category={self.category!r} and "
                                      f"frequency={self.frequency!r}")
        chosen = chosen.set_index("series_id")
        obs = read_table(obs_path, _hint(self.folder, self.observations_file))
        require_columns(obs, ("series_id", "t", "year", "subperiod", "split", "value"), str(obs_path))
        obs = obs[obs["series_id"].isin(chosen.index)].reset_index(drop=True)
        self._check_layout(obs, chosen, obs_path)

        per = chosen.loc[obs["series_id"]]
        freq_name = per["period"].map(periods).to_numpy()
        per_year = np.array([M3_FREQUENCIES[f][2] for f in freq_name])
        start_year = per["start_year"].to_numpy(np.int64)
        synthetic = start_year < 1000
        # position k = t - 1 counted in the series' own periods from its first sub-period
        k = obs["t"].to_numpy(np.int64) - 1 + per["start_subperiod"].to_numpy(np.int64) - 1
        exp_year = np.where(freq_name == "other", obs["t"].to_numpy(np.int64), start_year + k // per_year)
        exp_sub = np.where(freq_name == "other", 1, k % per_year + 1)
        wrong = (exp_year != obs["year"].to_numpy()) | (exp_sub != obs["subperiod"].to_numpy())
        if wrong.any():
            rows = np.flatnonzero(wrong)[:5].tolist()
            raise DataValidationError(
                f"{obs_path}: {int(wrong.sum())} row(s) whose (year, subperiod) disagree with the series' start "
                f"and position t; first rows {rows}{ROWS} (series {obs['series_id'][wrong].head(5).tolist()})")
        year = np.where(synthetic, start_year - 1 + _SYNTHETIC_EPOCH_YEAR, start_year)
        months = np.where(freq_name == "monthly", k, np.where(freq_name == "quarterly", 3 * k, 0))
        years = year + np.where(freq_name == "yearly", k, 0) + months // 12
        ds = pd.to_datetime(pd.DataFrame({"year": years, "month": months % 12 + 1, "day": 1}))
        days = np.where(freq_name == "other", k, 0)
        ds = ds + pd.to_timedelta(days, unit="D")
        sales = pd.DataFrame({"unique_id": obs["series_id"].to_numpy(), "ds": ds.to_numpy(),
                              "y": obs["value"].to_numpy()})

        series = {
            str(uid): {"category": str(row["type"]), "horizon": int(row["h"]), "n_train": int(row["n"]),
                       "frequency": periods[row["period"]], "st": str(row["st"]),
                       "description": str(row["description"]),
                       "calendar": "synthetic" if int(row["start_year"]) < 1000 else "real"}
            for uid, row in chosen.iterrows()}
        freqs = sorted({periods[p] for p in chosen["period"]})
        horizons = sorted({int(h) for h in chosen["h"]})
        meta = {"series": series, "category": self.category, "frequency": self.frequency,
                "freq": to_offset(M3_FREQUENCIES[freqs[0]][1]).freqstr if len(freqs) == 1 else None,
                "horizon": horizons[0] if len(horizons) == 1 else None,
                "n_synthetic_calendar": int(sum(s["calendar"] == "synthetic" for s in series.values()))}
        name = "m3" + "".join(f"_{p.lower()}" for p in (self.frequency, self.category) if p is not None)
        return build_bundle(name, None, sales=sales, files={"sales": str(obs_path), "series": str(meta_path)},
                            meta=meta)

    @staticmethod
    def _check_layout(obs: pd.DataFrame, chosen: pd.DataFrame, path: Path) -> None:
        """Each series: ``n`` train then ``h`` test rows at positions ``1..n+h``, in file order."""
        sizes = obs.groupby("series_id", sort=False)["split"].value_counts().unstack(fill_value=0)
        sizes = sizes.reindex(chosen.index, fill_value=0)
        for split, column in (("train", "n"), ("test", "h")):
            got = sizes[split] if split in sizes else pd.Series(0, index=chosen.index)
            bad = got.to_numpy() != chosen[column].to_numpy()
            if bad.any():
                uid = chosen.index[bad][0]
                raise DataValidationError(
                    f"{path}: series {uid} has {int(got[uid])} {split} row(s), the series table says "
                    f"{column}={int(chosen.loc[uid, column])} ({int(bad.sum())} series disagree)")
        position = obs.groupby("series_id", sort=False).cumcount().to_numpy() + 1
        is_test = (obs["split"] == "test").to_numpy()
        n_train = chosen.loc[obs["series_id"], "n"].to_numpy()
        bad = (obs["t"].to_numpy() != position) | (is_test != (position > n_train))
        if bad.any():
            rows = np.flatnonzero(bad)[:5].tolist()
            raise DataValidationError(
                f"{path}: {int(bad.sum())} row(s) out of order (t must run 1..n+h per series, train before "
                f"test); first rows {rows}{ROWS}")


class SalesFile:
    """A long-format sales panel from CSV/TSV/parquet; see the module docstring.

    ``unique_id``, ``ds`` and ``y`` name the file's columns (renamed to the contract's); ``unique_id=None``
    means the file holds one series, named after the file. ``covariates`` lists extra columns to keep
    (``None`` keeps none). A relative ``path`` is taken from ``data_dir``.
    """

    def __init__(self, path: str, data_dir: str = ".", unique_id: str | None = "unique_id", ds: str = "ds",
                 y: str = "y", covariates: list[str] | None = None, name: str | None = None) -> None:
        self.path_arg, self.data_dir = str(path), str(data_dir)
        self.columns = {"unique_id": unique_id, "ds": ds, "y": y}
        self.covariates = [str(c) for c in covariates] if covariates else []
        clash = [c for c in self.covariates if c in (unique_id, ds, y) or c in ("unique_id", "ds", "y")]
        if clash or len(set(self.covariates)) != len(self.covariates):
            raise ValueError(f"SalesFile.covariates={self.covariates}: covariates must be distinct and not the "
                             f"id, date or target column (unique_id={unique_id!r}, ds={ds!r}, y={y!r})")
        self.name = name or Path(self.path_arg).stem
        #: covariate -> the config key that declared it, when not ``data.source.covariates`` (set by the data
        #: module, which adds the columns its futr_covariates / hist_covariates name)
        self.declared_in: dict[str, str] = {}

    @property
    def path(self) -> Path:
        return Path(self.data_dir) / self.path_arg  # an absolute path_arg wins

    def cache_key(self) -> dict[str, Any]:
        return {"path": self.path_arg, "data_dir": str(Path(self.data_dir).resolve()), **self.columns,
                "covariates": self.covariates, "name": self.name, "files": [str(self.path.resolve())]}

    def _key(self, column: str) -> str:
        """The config key that named ``column``."""
        if column in self.covariates:
            return self.declared_in.get(column, "data.source.covariates")
        return "data.source." + next(k for k, v in self.columns.items() if v == column)

    def load(self) -> DatasetBundle:
        path = self.path
        raw = read_table(path, "check data.source.path and data.source.data_dir")
        wanted = [c for c in self.columns.values() if c is not None] + self.covariates
        missing = [c for c in wanted if c not in raw.columns]
        if missing:
            keys = sorted({self._key(c) for c in missing})
            raise DataValidationError(
                f"{path}: missing column(s) {missing}; found {list(raw.columns)}; fix {' / '.join(keys)} (they name "
                "the file's columns)")
        uid = self.columns["unique_id"]
        sales = pd.DataFrame({"unique_id": raw[uid] if uid is not None else self.name,
                              "ds": raw[self.columns["ds"]], "y": raw[self.columns["y"]]})
        for column in self.covariates:
            sales[column] = raw[column].to_numpy()
        return build_bundle(self.name, None, sales=sales, files={"sales": str(path)},
                            meta={"columns": dict(self.columns), "covariates": list(self.covariates)})
