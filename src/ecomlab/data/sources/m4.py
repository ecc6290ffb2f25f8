"""The M4 competition's Weekly and Hourly series with their official train/test split.

Makridakis, S., Spiliotis, E., Assimakopoulos, V. (2020), "The M4 Competition: 100,000 time series and 61
forecasting methods", International Journal of Forecasting 36(1), 54-74. Files from the organisers' repository
(``Mcompetitions/M4-methods``), folder ``m4-weekly-hourly/``: ``m4_weekly_hourly_long.parquet`` (``unique_id,
period, t, split, y``: each series' official history at positions ``t = 1..n`` followed by its official hold-out
at ``n + 1..n + h``) and ``m4_weekly_hourly_meta.csv`` (``unique_id, period, n_train, horizon, frequency_m``).

359 weekly series (``W1``..``W359``, 80-2,597 training weeks, hold-out h = 13) and 414 hourly series (``H1``..
``H414``, 700-960 training hours, h = 48). The series is its history followed by its hold-out, so a rolling-origin
backtest with ``horizon = h`` and one test window evaluates exactly the competition's hold-out.

**Time index (synthetic).** M4's start dates live in ``M4-info.csv``, which this folder does not ship, so every
series gets a regular index from one fixed origin: position ``t`` is ``ORIGIN + (t - 1)`` weeks (``freq`` ``W-MON``,
origin Monday 2000-01-03) or hours (``freq`` ``h``, origin 2000-01-01 00:00). Only the spacing and the order of
``ds`` carry information; a weekday, hour or day of year read from it is a position, not a calendar date (the data
configs turn calendar features off). ``meta["series"][uid]`` holds ``n_train``, ``horizon``, ``frequency_m`` (M4's
own MASE period: 1 weekly, 24 hourly) and ``calendar = "synthetic"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecomlab.data.bundle import ROWS, DatasetBundle, DataValidationError, build_bundle, require_columns
from ecomlab.data.io import read_table

__all__ = ["CompetitionFiles", "M4", "M4_FREQUENCIES"]

#: frequency -> (M4 "period", pandas frequency, origin of the synthetic index)
M4_FREQUENCIES: dict[str, tuple[str, str, str]] = {
    "weekly": ("Weekly", "W-MON", "2000-01-03"),
    "hourly": ("Hourly", "h", "2000-01-01 00:00"),
}


def check_positions(obs: pd.DataFrame, n_train: pd.Series, horizon: pd.Series, path: Path) -> None:
    """Each series: ``n_train`` train then ``horizon`` test rows at positions ``t = 1..n + h``, in file order.

    Shared by the competition sources whose files list history and hold-out by position (M4, tourism).
    """
    sizes = obs.groupby("unique_id", sort=False)["split"].value_counts().unstack(fill_value=0)
    sizes = sizes.reindex(n_train.index, fill_value=0)
    for split, expected, key in (("train", n_train, "n_train"), ("test", horizon, "horizon")):
        got = sizes[split] if split in sizes else pd.Series(0, index=n_train.index)
        bad = got.to_numpy() != expected.to_numpy()
        if bad.any():
            uid = n_train.index[bad][0]
            raise DataValidationError(
                f"{path}: series {uid} has {int(got[uid])} {split} row(s), the series table says {key}="
                f"{int(expected[uid])} ({int(bad.sum())} series disagree)")
    position = obs.groupby("unique_id", sort=False).cumcount().to_numpy() + 1
    is_test = (obs["split"] == "test").to_numpy()
    bad = (obs["t"].to_numpy() != position) | (is_test != (position > n_train.loc[obs["unique_id"]].to_numpy()))
    if bad.any():
        rows = np.flatnonzero(bad)[:5].tolist()
        raise DataValidationError(f"{path}: {int(bad.sum())} row(s) out of order (t must run 1..n+h per series, "
                                  f"train before test); first rows {rows}{ROWS}")


class CompetitionFiles:
    """A competition panel shipped as one long observations file and one per-series file (M4, tourism): the
    folder, the frequency picked from :attr:`frequencies`, and the cache key over both files."""

    observations_file: str
    series_file: str
    #: frequency name -> what the loader needs of it
    frequencies: dict[str, Any]
    #: why another frequency is not available, for the error message
    frequency_note: str

    def __init__(self, data_dir: str, folder: str, frequency: str) -> None:
        if str(frequency).lower() not in self.frequencies:
            raise ValueError(f"{type(self).__name__}.frequency={frequency!r}; allowed: {list(self.frequencies)} "
                             f"({self.frequency_note})")
        self.data_dir, self.folder, self.frequency = str(data_dir), folder, str(frequency).lower()

    def paths(self) -> tuple[Path, Path]:
        base = Path(self.data_dir) / self.folder
        return base / self.observations_file, base / self.series_file

    def cache_key(self) -> dict[str, Any]:
        return {"data_dir": str(Path(self.data_dir).resolve()), "folder": self.folder,
                "frequency": self.frequency, "files": [str(p.resolve()) for p in self.paths()]}


class M4(CompetitionFiles):
    """M4 Weekly (h = 13) or Hourly (h = 48) with a synthetic regular index; see the module docstring."""

    observations_file = "m4_weekly_hourly_long.parquet"
    series_file = "m4_weekly_hourly_meta.csv"
    frequencies = M4_FREQUENCIES
    frequency_note = "this folder holds only M4's weekly and hourly series"

    def __init__(self, data_dir: str, folder: str = "m4-weekly-hourly", frequency: str = "weekly") -> None:
        super().__init__(data_dir, folder, frequency)

    def load(self) -> DatasetBundle:
        obs_path, meta_path = self.paths()
        hint = f"set paths.data_dir to the folder holding {self.folder}/"
        period, freq, origin = M4_FREQUENCIES[self.frequency]
        info = read_table(meta_path, f"{hint} (it needs {self.series_file})")
        require_columns(info, ("unique_id", "period", "n_train", "horizon", "frequency_m"), str(meta_path))
        info = info[info["period"] == period].set_index("unique_id")
        if len(info) == 0:
            raise DataValidationError(f"{meta_path}: no series with period {period!r}")
        obs = read_table(obs_path, f"{hint} (it needs {self.observations_file})")
        require_columns(obs, ("unique_id", "period", "t", "split", "y"), str(obs_path))
        obs = obs[obs["period"] == period].reset_index(drop=True)
        unknown = sorted(set(obs["unique_id"]) - set(info.index))
        if unknown:
            raise DataValidationError(f"{obs_path}: series {unknown[:5]} are not in {meta_path.name}")
        check_positions(obs, info["n_train"], info["horizon"], obs_path)
        step = pd.tseries.frequencies.to_offset(freq)
        # position t -> origin + (t - 1) steps; a fixed origin because M4-info.csv (the start dates) is absent
        ds = pd.date_range(origin, periods=int(obs["t"].max()), freq=step)[obs["t"].to_numpy() - 1]
        sales = pd.DataFrame({"unique_id": obs["unique_id"].to_numpy(), "ds": ds, "y": obs["y"].to_numpy()})
        series = {str(uid): {"n_train": int(row["n_train"]), "horizon": int(row["horizon"]),
                             "frequency_m": int(row["frequency_m"]), "calendar": "synthetic"}
                  for uid, row in info.iterrows()}
        horizons = sorted({int(h) for h in info["horizon"]})
        meta = {"series": series, "frequency": self.frequency, "freq": step.freqstr,
                "horizon": horizons[0] if len(horizons) == 1 else None, "calendar": "synthetic",
                "index_origin": origin}
        return build_bundle(f"m4_{self.frequency}", None, sales=sales,
                            files={"sales": str(obs_path), "series": str(meta_path)}, meta=meta)
