"""Amazon 5-core categories with item text: Office Products (LRD preprocessing) and Industrial & Scientific (UniSRec).

Dataset: user->product review events of the Amazon "Office Products" category, 5-core (every user and item
has at least 5 reviews), May 1996 - July 2014, by Julian McAuley (UCSD); here in the preprocessed form of
the LRD repository (``ysh-1998/LRD``, ``data/Office``): 53,258 events, 4,905 users, 2,420 items. Cite:
He, R., McAuley, J. "Ups and downs: Modeling the visual evolution of fashion trends with one-class
collaborative filtering", WWW 2016; McAuley, J., Targett, C., Shi, Q., van den Hengel, A. "Image-based
recommendations on styles and substitutes", SIGIR 2015.

Industrial & Scientific 5-core (Amazon Review Data 2018, Ni, Li & McAuley, EMNLP 2019; the "Scientific" set of
UniSRec, Hou et al., KDD 2022, from ``ysh-1998/CoWPiRec``): 59,427 events, 8,442 users, 4,385 items, text = title,
category path and brand. Its events carry no timestamps, only each user's order (``position``): the bundle has
no timestamps (temporal and leave-one-out splits refuse it), and rows are kept in ``(user, position)`` order.

Mapping to the contract (:mod:`ecomlab.data.bundle`):

* ``interactions`` <- ``interactions.csv`` (``user_id, item_id, asin, timestamp, split``); ``weight`` = 1.0
  (ratings were not published), ``timestamp`` = Unix seconds at day resolution.
* ``item_text`` <- ``items.csv``: ``text`` (title, leaf category and brand) plus the extra columns ``asin``,
  ``category_id`` and ``brand_id`` (0 = missing upstream).
* no ``social`` part.

The upstream leave-one-out split (``split`` = train/dev/test: each user's last event is test, the one before
dev) does not fit the contract's fixed interaction columns; only its counts are kept in
``meta["upstream_split"]``. Use ecomlab's splitters: ``LeaveOneOutSplit`` gives the same part sizes, but
because timestamps are days it breaks same-day ties at random where upstream used file order, so the held-out
rows of users with several events on their last day can differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecomlab.data.bundle import ROWS, DatasetBundle, DataValidationError, build_bundle, require_columns
from ecomlab.data.io import read_table

CITATION_SCIENTIFIC = (
    "Ni, Li, McAuley. Justifying recommendations using distantly-labeled reviews and fine-grained aspects. "
    "EMNLP-IJCNLP 2019; Hou, Mu, Zhao, Li, Ding, Wen. Towards Universal Sequence Representation Learning for "
    "Recommender Systems. KDD 2022"
)
CITATION = (
    "He, McAuley. Ups and downs: Modeling the visual evolution of fashion trends with one-class collaborative "
    "filtering. WWW 2016; McAuley, Targett, Shi, van den Hengel. Image-based recommendations on styles and "
    "substitutes. SIGIR 2015"
)
CITATIONS = {"amazon-scientific-5core": CITATION_SCIENTIFIC}
INTERACTION_COLUMNS = ("user_id", "item_id")  # + timestamp (Office) or position (Scientific: order only)
ITEM_COLUMNS = ("item_id", "text")
ITEM_EXTRAS = ("asin", "category_id", "brand_id")


class AmazonFiveCore:
    """An Amazon 5-core category in the LRD/ReChorus layout (``interactions.csv`` + ``items.csv``)."""

    def __init__(self, data_dir: str, folder: str = "amazon-office-5core",
                 interactions: str = "interactions.csv", items: str = "items.csv") -> None:
        self.data_dir = str(data_dir)
        self.folder = folder
        self.interactions = interactions
        self.items = items

    @property
    def root(self) -> Path:
        return Path(self.data_dir) / self.folder

    @property
    def hint(self) -> str:
        return (f"set paths.data_dir to the folder holding {self.folder}/ (interactions.csv and items.csv, "
                f"see shared/data/{self.folder}/README.md)")

    def cache_key(self) -> dict[str, Any]:
        return {
            "data_dir": self.data_dir, "folder": self.folder, "interactions": self.interactions,
            "items": self.items,
            "files": [str((self.root / name).absolute()) for name in (self.interactions, self.items)],
        }

    def load(self) -> DatasetBundle:
        inter_path, items_path = self.root / self.interactions, self.root / self.items
        events = read_table(inter_path, self.hint)
        has_time = "timestamp" in events
        require_columns(events, INTERACTION_COLUMNS + (() if has_time else ("position",)), str(inter_path))
        if not has_time:  # ordered events without times: file order within a user is the only clock
            events = events.sort_values(["user_id", "position"], kind="stable").reset_index(drop=True)
        items = read_table(items_path, self.hint)
        require_columns(items, ITEM_COLUMNS, str(items_path))
        if "asin" in events and "asin" in items:
            # both files carry the item's ASIN; disagreement means they come from different preprocessing runs
            known = items.drop_duplicates("item_id").set_index("item_id")["asin"]
            expected = known.reindex(events["item_id"]).to_numpy()
            bad = pd.notna(expected) & (expected != events["asin"].to_numpy())
            if bad.any():
                rows = np.flatnonzero(bad)[:5].tolist()
                raise DataValidationError(
                    f"{inter_path}: {int(bad.sum())} row(s) whose asin disagrees with {items_path} for the same "
                    f"item_id; first rows {rows}{ROWS}")
        meta: dict[str, Any] = {
            "dataset": f"Amazon 5-core ({self.folder})", "citation": CITATIONS.get(self.folder, CITATION),
            "weight": "1.0 per review event (implicit feedback; ratings not published)",
            "timestamps": ("review time, Unix seconds at day resolution" if has_time else
                           "none: events ordered by position within each user (no times published)"),
            "items_without_interactions": int((~items["item_id"].isin(events["item_id"])).sum()),
        }
        if "split" in events:
            meta["upstream_split"] = {str(k): int(v) for k, v in events["split"].value_counts().items()}
            meta["upstream_split_protocol"] = ("leave-one-out by time (last event test, second-to-last dev); "
                                               "not applied: configure ecomlab.data.splits.LeaveOneOutSplit")
        interactions = pd.DataFrame({"user_id": events["user_id"].to_numpy(),
                                     "item_id": events["item_id"].to_numpy(),
                                     **({"timestamp": events["timestamp"].to_numpy()} if has_time else {})})
        kept = items.loc[items["item_id"].isin(events["item_id"])]
        extras = [c for c in ITEM_EXTRAS if c in kept.columns]
        text = pd.DataFrame({"item_id": kept["item_id"].to_numpy(),
                             "text": kept["text"].fillna("").astype(str).to_numpy(),
                             **{c: kept[c].to_numpy() for c in extras}})
        files = {"interactions": str(inter_path), "item_text": str(items_path)}
        return build_bundle(self.folder, interactions, item_text=text, files=files, meta=meta)
