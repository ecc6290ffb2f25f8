"""MovieLens (GroupLens) ratings in their published file layouts: ml-100k, ml-1m and ml-latest(-small).

Dataset: movie ratings collected by the GroupLens research group (University of Minnesota) on
movielens.org, https://grouplens.org/datasets/movielens/. Cite: Harper, F. M., Konstan, J. A. "The MovieLens
Datasets: History and Context", ACM Transactions on Interactive Intelligent Systems 5(4), 2015.

Layouts (``layout="auto"`` picks the one whose ratings file is in the folder):

=========  ====================================================  ==================================================
layout     ratings                                               movies
=========  ====================================================  ==================================================
``100k``   ``u.data``: tab-separated ``user item rating          ``u.item``: ``|``-separated, ISO-8859-1, ``movie id |
           timestamp``, no header                                title | release date | video release date | IMDb
                                                                 URL | 19 genre flags`` (unknown, Action, ...)
``1m``     ``ratings.dat``: ``UserID::MovieID::Rating::Timestamp``  ``movies.dat``: ``MovieID::Title::Genres``
                                                                 (genres ``|``-separated), ISO-8859-1
``latest`` ``ratings.csv``: ``userId,movieId,rating,timestamp``  ``movies.csv``: ``movieId,title,genres``, UTF-8,
           with a header (also ml-latest-small, ml-20m, ml-25m)  quoted titles
=========  ====================================================  ==================================================

``encoding`` overrides the movies file's encoding (e.g. for ml-10m, whose ``movies.dat`` is UTF-8).

Mapping to the contract (:mod:`ecomlab.data.bundle`):

* ``interactions`` <- ratings; ``weight`` = the rating (explicit; ``Preprocess.rating_threshold`` makes it
  implicit), ``timestamp`` = Unix seconds.
* ``item_text`` <- ``title`` and genres (``"Toy Story (1995) Animation Children's Comedy"``) plus the extra
  column ``genres`` (``|``-separated; "unknown" / "(no genres listed)" become empty). Movies nobody rated are
  left out (counted in ``meta``).
* no ``social`` part.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecomlab.data.bundle import ROWS, DatasetBundle, DataValidationError, build_bundle
from ecomlab.data.io import read_table, require_encoding

CITATION = ("Harper, Konstan. The MovieLens Datasets: History and Context. ACM TiiS 5(4), 2015; "
            "https://grouplens.org/datasets/movielens/")
LAYOUTS: dict[str, dict[str, str]] = {
    "100k": {"ratings": "u.data", "movies": "u.item", "encoding": "latin-1"},
    "1m": {"ratings": "ratings.dat", "movies": "movies.dat", "encoding": "latin-1"},
    "latest": {"ratings": "ratings.csv", "movies": "movies.csv", "encoding": "utf-8"},
}
#: the 19 genre flags of ``u.item``, in file order (``u.genre`` of ml-100k)
GENRES_100K = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
NO_GENRES = ("unknown", "(no genres listed)")
RATING_NAMES = ("user_id", "item_id", "rating", "timestamp")
#: folders that ``ecomlab-data download name=<folder>`` fetches (pinned archives in ecomlab.data_cli)
DOWNLOADABLE = ("ml-100k", "ml-1m", "ml-latest-small", "ml-latest")
_QUOTE_NONE = 3  # titles such as '"Great Performances" Cats (1998)' carry literal quotes


def _numbers(frame: pd.DataFrame, columns: tuple[str, ...], path: Path, shown: dict[str, str]) -> None:
    """Make ``columns`` numeric in place; a non-numeric or missing value names the file, column and rows."""
    for column in columns:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna().to_numpy()
        if bad.any():
            rows = np.flatnonzero(bad)[:5].tolist()
            raise DataValidationError(
                f"{path}: column '{shown.get(column, column)}' has {int(bad.sum())} non-numeric or missing "
                f"value(s); first rows {rows}{ROWS} (values {frame[column].to_numpy()[bad][:5].tolist()})")
        frame[column] = values


class MovieLensFiles:
    """A GroupLens MovieLens download in ``data_dir/folder`` (``layout``: auto, 100k, 1m or latest)."""

    def __init__(self, data_dir: str, folder: str, layout: str = "auto", encoding: str | None = None) -> None:
        layout = str(layout).removeprefix("ml-")
        if layout not in ("auto", *LAYOUTS):
            raise ValueError(f"MovieLensFiles.layout={layout!r}; expected 'auto' or one of {sorted(LAYOUTS)}")
        if encoding is not None:
            require_encoding("MovieLensFiles.encoding", encoding)
        self.data_dir = str(data_dir)
        self.folder = folder
        self.layout = layout
        self.encoding = encoding

    @property
    def root(self) -> Path:
        return Path(self.data_dir) / self.folder

    @property
    def hint(self) -> str:
        if self.folder in DOWNLOADABLE:
            return (f"download it with `ecomlab-data download name={self.folder} dest={self.data_dir}` (or set "
                    f"paths.data_dir to the folder holding {self.folder}/)")
        return (f"download it from https://grouplens.org/datasets/movielens/ and set paths.data_dir to the folder "
                f"holding {self.folder}/")

    def resolved_layout(self) -> str:
        """The layout to read: the given one, or the one whose ratings file is in the folder."""
        if self.layout != "auto":
            return self.layout
        found = [name for name, files in LAYOUTS.items() if (self.root / files["ratings"]).is_file()]
        if len(found) == 1:
            return found[0]
        expected = ", ".join(f"{files['ratings']} ({name})" for name, files in LAYOUTS.items())
        if not found:
            raise DataValidationError(
                f"{self.root}: no MovieLens ratings file found (looked for {expected}); {self.hint}")
        raise DataValidationError(
            f"{self.root}: ratings files of several MovieLens layouts {found}; set layout= to pick one")

    def _paths(self) -> dict[str, Path]:
        files = LAYOUTS[self.resolved_layout()]
        return {"ratings": self.root / files["ratings"], "movies": self.root / files["movies"]}

    def cache_key(self) -> dict[str, Any]:
        return {
            "data_dir": self.data_dir, "folder": self.folder, "layout": self.resolved_layout(),
            "encoding": self.encoding,
            "files": [str(p.absolute()) for p in self._paths().values()],
        }

    # ------------------------------------------------------------------ layouts

    def _ratings(self, layout: str, path: Path) -> pd.DataFrame:
        if layout == "100k":
            frame = read_table(path, self.hint, sep="\t", header=None, names=list(RATING_NAMES))
            shown = {"user_id": "user id", "item_id": "item id", "rating": "rating", "timestamp": "timestamp"}
        elif layout == "1m":
            # "::" splits as ":" into 7 fields with empty even ones; the C parser is ~10x faster than the
            # python engine a two-character separator needs, and ratings.dat holds only numbers
            names = ["user_id", "_a", "item_id", "_b", "rating", "_c", "timestamp"]
            frame = read_table(path, self.hint, sep=":", header=None, names=names, engine="c")
            stray = frame[["_a", "_b", "_c"]].notna().any(axis=1).to_numpy()
            if stray.any():
                raise DataValidationError(
                    f"{path}: row(s) {np.flatnonzero(stray)[:5].tolist()}{ROWS} are not "
                    "'UserID::MovieID::Rating::Timestamp'")
            frame = frame[list(RATING_NAMES)]
            shown = {"user_id": "UserID", "item_id": "MovieID", "rating": "Rating", "timestamp": "Timestamp"}
        else:
            frame = read_table(path, self.hint)
            shown = {"user_id": "userId", "item_id": "movieId", "rating": "rating", "timestamp": "timestamp"}
            missing = [c for c in shown.values() if c not in frame.columns]
            if missing:
                raise DataValidationError(f"{path}: missing column(s) {missing}; expected a header "
                                          f"{','.join(shown.values())}, found {list(frame.columns)}")
            frame = frame.rename(columns={v: k for k, v in shown.items()})[list(RATING_NAMES)]
        _numbers(frame, RATING_NAMES, path, shown)
        return frame

    def _movies(self, layout: str, path: Path) -> pd.DataFrame:
        encoding = self.encoding or LAYOUTS[layout]["encoding"]
        if layout == "100k":
            names = ["item_id", "title", "release_date", "video_release_date", "imdb_url", *GENRES_100K]
            frame = read_table(path, self.hint, sep="|", header=None, names=names, encoding=encoding,
                               quoting=_QUOTE_NONE)
            _numbers(frame, ("item_id", *GENRES_100K), path, {"item_id": "movie id"})
            flags = frame[list(GENRES_100K)].to_numpy() > 0
            genres = ["|".join(g for g, on in zip(GENRES_100K, row, strict=True) if on) for row in flags]
            frame = pd.DataFrame({"item_id": frame["item_id"], "title": frame["title"], "genres": genres})
        elif layout == "1m":
            frame = read_table(path, self.hint, sep="::", header=None, names=["item_id", "title", "genres"],
                               encoding=encoding, quoting=_QUOTE_NONE, engine="python")
            _numbers(frame, ("item_id",), path, {"item_id": "MovieID"})
        else:
            frame = read_table(path, self.hint, encoding=encoding)
            if not {"movieId", "title", "genres"} <= set(frame.columns):
                raise DataValidationError(f"{path}: expected a header movieId,title,genres, found "
                                          f"{list(frame.columns)}")
            frame = frame.rename(columns={"movieId": "item_id"})[["item_id", "title", "genres"]]
            _numbers(frame, ("item_id",), path, {"item_id": "movieId"})
        genres = frame["genres"].fillna("").astype(str).str.split("|")
        frame["genres"] = ["|".join(g for g in parts if g and g not in NO_GENRES) for parts in genres]
        frame["title"] = frame["title"].fillna("").astype(str).str.strip()
        return frame

    def load(self) -> DatasetBundle:
        layout = self.resolved_layout()
        paths = self._paths()
        ratings = self._ratings(layout, paths["ratings"])
        movies = self._movies(layout, paths["movies"])
        ratings["item_id"] = ratings["item_id"].astype(np.int64)
        ratings["user_id"] = ratings["user_id"].astype(np.int64)
        movies["item_id"] = movies["item_id"].astype(np.int64)
        rated = movies["item_id"].isin(ratings["item_id"]).to_numpy()
        dup = movies["item_id"].duplicated().to_numpy()
        meta: dict[str, Any] = {
            "dataset": f"MovieLens {layout} ({self.folder})", "citation": CITATION, "layout": layout,
            "weight": "rating (explicit feedback)", "timestamps": "Unix seconds",
            "rating_scale": [float(ratings["rating"].min()), float(ratings["rating"].max())],
            "n_ratings_raw": len(ratings), "n_movies_in_catalog": int((~dup).sum()),
            "movies_without_ratings": int((~rated & ~dup).sum()),
            "duplicate_movie_ids": int(dup.sum()),
            "rated_movies_without_metadata": int((~ratings["item_id"].drop_duplicates().isin(
                movies["item_id"])).sum()),
        }
        kept = movies.loc[rated & ~dup]
        text = (kept["title"] + " " + kept["genres"].str.replace("|", " ", regex=False)).str.strip()
        item_text = pd.DataFrame({"item_id": kept["item_id"].to_numpy(), "text": text.to_numpy(),
                                  "genres": kept["genres"].to_numpy()})
        interactions = ratings.rename(columns={"rating": "weight"})
        files = {"interactions": str(paths["ratings"]), "item_text": str(paths["movies"])}
        return build_bundle(self.folder, interactions, item_text=item_text, files=files, meta=meta)
