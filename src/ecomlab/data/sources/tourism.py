"""The tourism forecasting competition's monthly and quarterly series with their official hold-out.

Athanasopoulos, G., Hyndman, R. J., Song, H., Wu, D. C. (2011), "The tourism forecasting competition",
International Journal of Forecasting 27(3), 822-844 (data via the R package Tcomp, Ellis 2016). Folder
``tourism/``: ``tourism_long.parquet`` (``unique_id, period, t, year, subperiod, ds, split, y``: each series'
official history at positions ``t = 1..n``, then its official hold-out) and ``tourism_meta.csv`` (``unique_id,
period, n_train, horizon, frequency, start_year, start_subperiod``).

366 monthly series (``M1``..``M366``, 67-309 training months, hold-out h = 24) and 427 quarterly series
(``Q1``..``Q427``, 22-122 training quarters, h = 8), 1975-2007. The dates are real: ``ds`` is the first day of
each month (``freq`` ``MS``) or quarter (``QS``). The series are anonymised tourism demand (arrivals, nights,
expenditure); 73 of them hold exact zeros. ``meta["series"][uid]`` holds ``n_train`` and ``horizon``.
"""

from __future__ import annotations

import pandas as pd

from ecomlab.data.bundle import DatasetBundle, DataValidationError, build_bundle, require_columns
from ecomlab.data.io import read_table
from ecomlab.data.sources.m4 import CompetitionFiles, check_positions

__all__ = ["Tourism", "TOURISM_FREQUENCIES"]

#: frequency -> pandas frequency of its ``ds``
TOURISM_FREQUENCIES = {"monthly": "MS", "quarterly": "QS"}


class Tourism(CompetitionFiles):
    """Tourism monthly (h = 24) or quarterly (h = 8), official history + hold-out; see the module docstring."""

    observations_file = "tourism_long.parquet"
    series_file = "tourism_meta.csv"
    frequencies = TOURISM_FREQUENCIES
    frequency_note = "the yearly series are not in this folder"

    def __init__(self, data_dir: str, folder: str = "tourism", frequency: str = "monthly") -> None:
        super().__init__(data_dir, folder, frequency)

    def load(self) -> DatasetBundle:
        obs_path, meta_path = self.paths()
        hint = f"set paths.data_dir to the folder holding {self.folder}/"
        info = read_table(meta_path, f"{hint} (it needs {self.series_file})")
        require_columns(info, ("unique_id", "period", "n_train", "horizon"), str(meta_path))
        info = info[info["period"] == self.frequency].set_index("unique_id")
        if len(info) == 0:
            raise DataValidationError(f"{meta_path}: no series with period {self.frequency!r}")
        obs = read_table(obs_path, f"{hint} (it needs {self.observations_file})")
        require_columns(obs, ("unique_id", "period", "t", "ds", "split", "y"), str(obs_path))
        obs = obs[obs["period"] == self.frequency].reset_index(drop=True)
        unknown = sorted(set(obs["unique_id"]) - set(info.index))
        if unknown:
            raise DataValidationError(f"{obs_path}: series {unknown[:5]} are not in {meta_path.name}")
        check_positions(obs, info["n_train"], info["horizon"], obs_path)
        sales = pd.DataFrame({"unique_id": obs["unique_id"].to_numpy(),
                              "ds": pd.to_datetime(obs["ds"]).to_numpy("datetime64[ns]"), "y": obs["y"].to_numpy()})
        series = {str(uid): {"n_train": int(row["n_train"]), "horizon": int(row["horizon"])}
                  for uid, row in info.iterrows()}
        horizons = sorted({int(h) for h in info["horizon"]})
        meta = {"series": series, "frequency": self.frequency,
                "freq": pd.tseries.frequencies.to_offset(TOURISM_FREQUENCIES[self.frequency]).freqstr,
                "horizon": horizons[0] if len(horizons) == 1 else None}
        return build_bundle(f"tourism_{self.frequency}", None, sales=sales,
                            files={"sales": str(obs_path), "series": str(meta_path)}, meta=meta)
