"""Ciao and Epinions (Tang et al. 2012): product ratings with categories and a directed trust network.

Dataset: ratings crawled from the UK review site ciao.co.uk (and, in the same format, from epinions.com)
by Jiliang Tang, Huiji Gao and Huan Liu (Arizona State University); the standard "Ciao" / "Epinions" data of
trust-aware and GNN social recommendation. The Ciao release has 284,086 ratings by 7,375 users on 105,114
products in 28 categories and 111,781 trust links. Cite: Tang, J., Gao, H., Liu, H. "mTrust: Discerning
multi-faceted trust in a connected world", WSDM 2012; Tang, J., Gao, H., Liu, H., Das Sarma, A. "eTrust:
Understanding trust evolution in an online world", KDD 2012.

Files, read as shipped or as CSV (chosen by suffix; the keys ``ratings``, ``trust`` and ``categories`` name them):

* the MATLAB releases (``.mat``, read with :func:`scipy.io.loadmat`): ``rating.mat`` (Epinions: 4 columns
  ``user, product, category, rating``; Ciao: 5, plus ``helpfulness``), ``rating_with_timestamp.mat`` (6, plus
  ``timestamp`` in Unix seconds) and ``trustnetwork.mat`` (``truster, trustee``); each holds one 2-D variable,
  whose columns are told apart by their number. The category catalogue ``catalog_*.txt`` is one ``id name``
  line per category.
* or CSV with a header row, as converted from them (``shared/data/ciao-tang2012``): ``ratings.csv``
  (``user_id, product_id, category_id, rating, helpfulness[, timestamp]``), ``trust.csv`` (``truster_id,
  trustee_id``), ``categories.csv`` (``category_id, category_name``).

Without a timestamp column (Epinions, Ciao's plain ``rating.mat``) ``has_timestamps=False`` and the file order
is the only order: repeated ``(user, product)`` ratings are all kept by the contract and
``data.preprocess.duplicates=keep_last`` keeps the one that comes last in the file (``configs/data/
epinions-tang2012.yaml`` does), counted as ``duplicates_merged``. ``categories=null`` gives no item text.

Mapping to the contract (:mod:`ecomlab.data.bundle`):

* ``interactions`` <- ratings; ``weight`` = the 0-5 rating as given (rows rated 0 are kept with weight 0;
  ``Preprocess.rating_threshold`` makes the data implicit). Helpfulness is not part of the contract and is
  dropped. Repeated ``(user, product, timestamp)`` rows are dropped by the contract's validation policy
  (counted in ``meta["warnings"]``); without timestamps see above.
* ``social`` <- trust, directed, as given (``user_id`` trusts ``friend_id``).
* ``item_text`` <- the category name of each product (joined from ``categories.csv``). A few products are
  rated under more than one category id; their text lists every name, most used first, and the extra
  column ``category_id`` holds the most used one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.io

from ecomlab.data.bundle import DatasetBundle, DataValidationError, build_bundle, require_columns
from ecomlab.data.io import read_table, require_file

CITATION = (
    "Tang, Gao, Liu. mTrust: Discerning multi-faceted trust in a connected world. WSDM 2012; "
    "Tang, Gao, Liu, Das Sarma. eTrust: Understanding trust evolution in an online world. KDD 2012"
)
RATING_COLUMNS = ("user_id", "product_id", "category_id", "rating")
TRUST_COLUMNS = ("truster_id", "trustee_id")
CATEGORY_COLUMNS = ("category_id", "category_name")
#: the columns of a ``.mat`` ratings variable, by its width (the releases' READMEs; Epinions ships 4)
MAT_RATING_COLUMNS = {4: RATING_COLUMNS, 5: (*RATING_COLUMNS, "helpfulness"),
                      6: (*RATING_COLUMNS, "helpfulness", "timestamp")}


def read_mat(path: Path, hint: str, widths: tuple[int, ...]) -> np.ndarray:
    """The one 2-D numeric variable of a MATLAB file as ``int64`` ``[rows, width]``, width one of ``widths``."""
    require_file(path, hint)
    try:
        variables = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
    except NotImplementedError as err:  # scipy reads MATLAB v4-v7.2; v7.3 is HDF5
        raise DataValidationError(f"{path}: a MATLAB v7.3 (HDF5) file, which scipy.io.loadmat cannot read; save it "
                                  "as v7 (MATLAB: save(..., '-v7')) or as CSV") from err
    except (ValueError, TypeError, OSError) as err:
        raise DataValidationError(f"{path}: not a readable MATLAB file ({err})") from err
    arrays = {k: v for k, v in variables.items() if isinstance(v, np.ndarray) and v.ndim == 2
              and v.dtype.kind in "iuf" and v.shape[1] in widths}
    if len(arrays) != 1:
        shapes = {k: getattr(v, "shape", type(v).__name__) for k, v in variables.items()}
        raise DataValidationError(f"{path}: expected one numeric variable with {' or '.join(map(str, widths))} "
                                  f"columns; found {shapes}")
    (name, values), = arrays.items()
    bad = ~np.isfinite(values).all(axis=1) | (values != np.round(values)).any(axis=1)
    if bad.any():
        raise DataValidationError(f"{path}: variable '{name}' has {int(bad.sum())} non-integer or missing "
                                  f"value row(s); first rows {np.flatnonzero(bad)[:5].tolist()}")
    return values.astype(np.int64)


def read_catalog(path: Path, hint: str) -> pd.DataFrame:
    """A ``catalog_*.txt`` (``id name`` per line, any line ending) as ``category_id, category_name``."""
    rows = []
    for number, line in enumerate(require_file(path, hint).read_text(encoding="utf-8").splitlines(), 1):
        key, _, name = line.strip().partition(" ")
        if not line.strip():
            continue
        if not key.isdigit() or not name.strip():
            raise DataValidationError(f"{path}: line {number} is {line[:60]!r}; expected '<category id> <name>'")
        rows.append((int(key), name.strip()))
    return pd.DataFrame(rows, columns=list(CATEGORY_COLUMNS))


class CiaoTang:
    """Tang et al.'s Ciao (or Epinions) ratings, trust network and category names in ``data_dir/folder``."""

    def __init__(self, data_dir: str, folder: str = "ciao-tang2012", ratings: str = "ratings.csv",
                 trust: str = "trust.csv", categories: str | None = "categories.csv") -> None:
        self.data_dir = str(data_dir)
        self.folder = folder
        self.ratings = ratings
        self.trust = trust
        self.categories = categories

    @property
    def root(self) -> Path:
        return Path(self.data_dir) / self.folder

    @property
    def hint(self) -> str:
        return (f"set paths.data_dir to the folder holding {self.folder}/ with Tang et al.'s release as shipped "
                "(rating.mat or rating_with_timestamp.mat, trustnetwork.mat, catalog_*.txt) or as CSV "
                "(ratings.csv, trust.csv, categories.csv); data.source.folder, .ratings, .trust and .categories "
                "name them")

    def _paths(self) -> dict[str, Path]:
        paths = {"ratings": self.root / self.ratings, "trust": self.root / self.trust}
        if self.categories is not None:
            paths["categories"] = self.root / self.categories
        return paths

    def cache_key(self) -> dict[str, Any]:
        return {
            "data_dir": self.data_dir, "folder": self.folder, "ratings": self.ratings, "trust": self.trust,
            "categories": self.categories,
            "files": [str(p.absolute()) for p in self._paths().values()],
        }

    def _read(self, path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
        if path.suffix == ".mat":
            if columns == RATING_COLUMNS:
                values = read_mat(path, self.hint, tuple(MAT_RATING_COLUMNS))
                return pd.DataFrame(values, columns=list(MAT_RATING_COLUMNS[values.shape[1]]))
            return pd.DataFrame(read_mat(path, self.hint, (len(columns),)), columns=list(columns))
        if path.suffix == ".txt" and columns == CATEGORY_COLUMNS:
            return read_catalog(path, self.hint)
        frame = read_table(path, self.hint)
        require_columns(frame, columns, str(path))
        return frame

    def _item_text(self, ratings: pd.DataFrame, path: Path, meta: dict[str, Any]) -> pd.DataFrame:
        categories = self._read(path, CATEGORY_COLUMNS)
        dup = categories["category_id"].duplicated().to_numpy()
        if dup.any():
            raise DataValidationError(
                f"{path}: category_id values {categories['category_id'][dup].head(5).tolist()} appear more "
                "than once; each category needs one name")
        names = categories.set_index("category_id")["category_name"].fillna("").astype(str).str.strip()
        used = pd.Index(ratings["category_id"].unique())
        unknown = used[~used.isin(names.index)]
        if len(unknown):
            raise DataValidationError(
                f"{self.root / self.ratings}: category_id value(s) {sorted(unknown.tolist())[:5]} are not in "
                f"{path}; pass the matching categories file or categories=null for no item text")
        counts = ratings.groupby(["product_id", "category_id"]).size().rename("uses").reset_index()
        counts = counts.sort_values(["product_id", "uses", "category_id"], ascending=[True, False, True],
                                    kind="stable")
        counts["name"] = names.reindex(counts["category_id"]).to_numpy()
        first = counts.drop_duplicates("product_id").set_index("product_id")
        text = first["name"].copy()
        several = counts["product_id"].duplicated(keep=False).to_numpy()
        # a python join per product is slow over 10^5 products; only the ~0.1% with several categories need it
        if several.any():
            joined = counts.loc[several].groupby("product_id", sort=False)["name"].agg(
                lambda values: ", ".join(dict.fromkeys(values)))
            text.loc[joined.index] = joined
        meta["products_with_several_categories"] = int(counts.loc[several, "product_id"].nunique())
        meta["n_categories"] = len(names)
        return pd.DataFrame({"item_id": first.index.to_numpy(), "text": text.to_numpy(),
                             "category_id": first["category_id"].to_numpy(np.int64)})

    def load(self) -> DatasetBundle:
        paths = self._paths()
        ratings = self._read(paths["ratings"], RATING_COLUMNS)
        trust = self._read(paths["trust"], TRUST_COLUMNS)
        has_ts = "timestamp" in ratings.columns
        rating = pd.to_numeric(ratings["rating"], errors="coerce")
        meta: dict[str, Any] = {
            "dataset": f"Ciao/Epinions, Tang et al. 2012 ({self.folder})", "citation": CITATION,
            "columns": {"ratings": list(ratings.columns), "trust": list(trust.columns)},
            "weight": "rating as given (explicit feedback)",
            "timestamps": "ratings column 'timestamp' (Unix seconds)" if has_ts
            else f"none: {paths['ratings'].name} has no 'timestamp' column; repeated ratings stay in file order",
            "social": "directed trust: user_id trusts friend_id",
            "n_rating_rows_raw": len(ratings),
            "rating_counts": {str(k): int(v) for k, v in rating.value_counts().sort_index().items()},
            "n_trust_rows_raw": len(trust),
        }
        interactions = pd.DataFrame({"user_id": ratings["user_id"].to_numpy(),
                                     "item_id": ratings["product_id"].to_numpy(),
                                     "weight": ratings["rating"].to_numpy()})
        if has_ts:
            interactions["timestamp"] = ratings["timestamp"].to_numpy()
        text = None
        if "categories" in paths:
            text = self._item_text(ratings, paths["categories"], meta)
        social = pd.DataFrame({"user_id": trust["truster_id"].to_numpy(),
                               "friend_id": trust["trustee_id"].to_numpy()})
        files = {"interactions": str(paths["ratings"]), "social": str(paths["trust"])}
        if "categories" in paths:
            files["item_text"] = f"{paths['ratings']} + {paths['categories']}"
        return build_bundle(self.folder, interactions, item_text=text, social=social, files=files, meta=meta)
