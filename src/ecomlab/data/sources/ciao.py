"""Ciao and Epinions (Tang et al. 2012): product ratings with categories and a directed trust network.

Dataset: ratings crawled from the UK review site ciao.co.uk (and, in the same format, from epinions.com)
by Jiliang Tang, Huiji Gao and Huan Liu (Arizona State University); the standard "Ciao" / "Epinions" data of
trust-aware and GNN social recommendation. The Ciao release has 284,086 ratings by 7,375 users on 105,114
products in 28 categories and 111,781 trust links. Cite: Tang, J., Gao, H., Liu, H. "mTrust: Discerning
multi-faceted trust in a connected world", WSDM 2012; Tang, J., Gao, H., Liu, H., Das Sarma, A. "eTrust:
Understanding trust evolution in an online world", KDD 2012.

Files (CSV with a header row, as converted from the ``.mat`` releases; see the folder's README):

* ``ratings.csv``: ``user_id, product_id, category_id, rating, helpfulness[, timestamp]``. The timestamp
  column (Unix seconds) exists in ``rating_with_timestamp.mat``; the plain ``rating.mat`` releases (e.g.
  Epinions) lack it, which is detected from the header and gives ``has_timestamps=False``.
* ``trust.csv``: ``truster_id, trustee_id`` (row = truster trusts trustee).
* ``categories.csv``: ``category_id, category_name`` (optional: ``categories=null`` gives no item text).

Mapping to the contract (:mod:`ecomlab.data.bundle`):

* ``interactions`` <- ratings; ``weight`` = the 0-5 rating as given (rows rated 0 are kept with weight 0;
  ``Preprocess.rating_threshold`` makes the data implicit). Helpfulness is not part of the contract and is
  dropped. Repeated ``(user, product, timestamp)`` rows are dropped by the contract's validation policy
  (counted in ``meta["warnings"]``).
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

from ecomlab.data.bundle import DatasetBundle, DataValidationError, build_bundle, require_columns
from ecomlab.data.io import read_table

CITATION = (
    "Tang, Gao, Liu. mTrust: Discerning multi-faceted trust in a connected world. WSDM 2012; "
    "Tang, Gao, Liu, Das Sarma. eTrust: Understanding trust evolution in an online world. KDD 2012"
)
RATING_COLUMNS = ("user_id", "product_id", "category_id", "rating")
TRUST_COLUMNS = ("truster_id", "trustee_id")
CATEGORY_COLUMNS = ("category_id", "category_name")


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
        return (f"set paths.data_dir to the folder holding {self.folder}/ (Tang et al.'s Ciao/Epinions release "
                "as CSV: ratings, trust and categories; see shared/data/ciao-tang2012/README.md)")

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
            "weight": "rating as given (explicit feedback)",
            "timestamps": "ratings column 'timestamp' (Unix seconds)" if has_ts
            else f"none: {paths['ratings'].name} has no 'timestamp' column",
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
