"""LastFM HetRec 2011 (``hetrec2011-lastfm-2k``): listening counts, a friend graph and artist tags.

Dataset: 1,892 Last.fm users, 17,632 artists, 92,834 user-artist listening counts, 12,717 friendships and
186,479 tag assignments, released for the HetRec 2011 workshop by Ignacio Fernandez-Tobias, Ivan Cantador
and Alejandro Bellogin (Universidad Autonoma de Madrid); GroupLens ``hetrec2011-lastfm-2k.zip``, for
non-commercial use. Cite: Cantador, I., Brusilovsky, P., Kuflik, T. "2nd Workshop on Information
Heterogeneity and Fusion in Recommender Systems (HetRec 2011)", RecSys 2011 (and the Last.fm website).

Mapping to the contract (:mod:`ecomlab.data.bundle`):

* ``interactions`` <- ``user_artists.dat`` (``userID, artistID, weight``); ``weight`` = listening count.
  The file has no time column, so the bundle has ``has_timestamps=False`` and temporal splits refuse it.
  (``user_taggedartists.dat`` dates *tag assignments*, not listening: only 20,665 of the 92,834 listened
  (user, artist) pairs were ever tagged by that user, so borrowing those dates would invent times for the
  other 78%; they are not used as timestamps.)
* ``social`` <- ``user_friends.dat``, undirected: every friendship is stored in both directions exactly
  once (the raw file already lists both directions; any one-sided pair is completed and duplicates are
  dropped, with counts in ``meta``).
* ``item_text`` <- ``artists.dat`` names (UTF-8) plus the names (``tags.dat``, ISO-8859-1) of the tags users
  assigned to the artist, most used first: ``"Metallica: metal, thrash metal, heavy metal"``. Extra columns
  ``name`` and ``tags``.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecomlab.data.bundle import DatasetBundle, DataValidationError, build_bundle, require_columns
from ecomlab.data.io import read_table, require_encoding, require_file

CITATION = (
    "Cantador, Brusilovsky, Kuflik. 2nd Workshop on Information Heterogeneity and Fusion in Recommender "
    "Systems (HetRec 2011). RecSys 2011; data: GroupLens hetrec2011-lastfm-2k, http://www.lastfm.com"
)
FILES = {
    "interactions": "user_artists.dat",
    "friends": "user_friends.dat",
    "artists": "artists.dat",
    "tags": "tags.dat",
    "tag_assignments": "user_taggedartists.dat",
}
_QUOTE_NONE = 3  # artist names contain stray double quotes that must stay literal


def _is_latin1(encoding: str) -> bool:
    return codecs.lookup(encoding).name == "iso8859-1"


class LastFMHetRec:
    """The HetRec 2011 Last.fm files in ``data_dir/folder`` as a social, text-rich bundle.

    ``max_tags`` keeps only the most used tags per artist in the text (``None`` = all of them).
    """

    def __init__(self, data_dir: str, folder: str = "lastfm-hetrec2011", max_tags: int | None = None,
                 artists_encoding: str = "utf-8", tags_encoding: str = "latin-1") -> None:
        if max_tags is not None and (isinstance(max_tags, bool) or int(max_tags) < 0):
            raise ValueError(f"LastFMHetRec.max_tags={max_tags!r}; expected None or an integer >= 0")
        for key, enc in (("artists_encoding", artists_encoding), ("tags_encoding", tags_encoding)):
            require_encoding(f"LastFMHetRec.{key}", enc)
        self.data_dir = str(data_dir)
        self.folder = folder
        self.max_tags = None if max_tags is None else int(max_tags)
        self.artists_encoding = artists_encoding
        self.tags_encoding = tags_encoding

    # ------------------------------------------------------------------ paths

    @property
    def root(self) -> Path:
        return Path(self.data_dir) / self.folder

    def path(self, part: str) -> Path:
        return self.root / FILES[part]

    @property
    def hint(self) -> str:
        return (f"download it with `ecomlab-data download name=hetrec2011-lastfm-2k dest={self.data_dir}` or set "
                f"paths.data_dir to the folder holding {self.folder}/ (the GroupLens hetrec2011-lastfm-2k.zip "
                "files: user_artists.dat, user_friends.dat, artists.dat, tags.dat, user_taggedartists.dat)")

    def cache_key(self) -> dict[str, Any]:
        return {
            "data_dir": self.data_dir, "folder": self.folder, "max_tags": self.max_tags,
            "artists_encoding": self.artists_encoding, "tags_encoding": self.tags_encoding,
            "files": [str(self.path(part).absolute()) for part in FILES],
        }

    # ------------------------------------------------------------------ reading

    def _read(self, part: str, columns: tuple[str, ...], encoding: str = "utf-8") -> pd.DataFrame:
        path = self.path(part)
        frame = read_table(path, self.hint, sep="\t", quoting=_QUOTE_NONE, encoding=encoding)
        require_columns(frame, columns, str(path))
        return frame

    def _read_tags(self) -> pd.DataFrame:
        path = require_file(self.path("tags"), self.hint)
        if _is_latin1(self.tags_encoding):
            # Latin-1 decodes any byte string, so a re-encoded UTF-8 copy would load as silent mojibake
            # ("franÃ§ais"); non-ASCII bytes that form valid UTF-8 are that case, not the original file.
            raw = path.read_bytes()
            if not raw.isascii():
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    pass
                else:
                    raise DataValidationError(
                        f"{path}: looks UTF-8 encoded, but the original tags.dat is ISO-8859-1 (latin-1); "
                        "pass tags_encoding=utf-8 if you converted it on purpose")
        return self._read("tags", ("tagID", "tagValue"), self.tags_encoding)

    def _item_text(self, artists: pd.DataFrame, listened: np.ndarray, meta: dict[str, Any]) -> pd.DataFrame:
        tags = self._read_tags()
        assigned = self._read("tag_assignments", ("userID", "artistID", "tagID"))
        names = artists.drop_duplicates("id").set_index("id")["name"]
        known_artist = assigned["artistID"].isin(names.index).to_numpy()
        known_tag = assigned["tagID"].isin(tags["tagID"]).to_numpy()
        meta["tag_assignments"] = len(assigned)
        meta["tag_assignments_unknown_artist"] = int((~known_artist).sum())
        meta["tag_assignments_unknown_tag"] = int((known_artist & ~known_tag).sum())
        kept = assigned.loc[known_artist & known_tag, ["artistID", "tagID"]]
        # most used tag first: the order carries how strongly listeners agree on it
        counts = kept.groupby(["artistID", "tagID"]).size().rename("uses").reset_index()
        counts = counts.merge(tags.drop_duplicates("tagID"), on="tagID", how="left")
        counts = counts.sort_values(["artistID", "uses", "tagID"], ascending=[True, False, True], kind="stable")
        if self.max_tags is not None:
            counts = counts.groupby("artistID", sort=False).head(self.max_tags)
        # rows are grouped by artist already; slicing one list is ~20x faster than a groupby with a python join
        artist = counts["artistID"].to_numpy()
        values = counts["tagValue"].fillna("").astype(str).str.strip().tolist()
        starts = np.flatnonzero(np.r_[True, artist[1:] != artist[:-1]]) if len(artist) else np.zeros(0, int)
        ends = np.r_[starts[1:], len(artist)].astype(int)
        tag_text = pd.Series([", ".join(values[a:b]) for a, b in zip(starts, ends, strict=True)],
                             index=artist[starts], dtype=object)

        in_interactions = names.index.isin(listened)
        meta["artists_without_listens"] = int((~in_interactions).sum())
        names = names[in_interactions]
        tag_col = tag_text.reindex(names.index).fillna("")
        name_col = names.fillna("").astype(str).str.strip()
        text = np.where(tag_col.to_numpy() == "", name_col.to_numpy(),
                        name_col.to_numpy() + ": " + tag_col.to_numpy())
        meta["artists_with_tags"] = int((tag_col != "").sum())
        return pd.DataFrame({"item_id": names.index.to_numpy(), "text": text,
                             "name": name_col.to_numpy(), "tags": tag_col.to_numpy()})

    def _friends(self, meta: dict[str, Any]) -> pd.DataFrame:
        raw = self._read("friends", ("userID", "friendID"))
        pairs = pd.DataFrame({"user_id": raw["userID"].to_numpy(), "friend_id": raw["friendID"].to_numpy()})
        both = pd.concat([pairs, pairs.rename(columns={"user_id": "friend_id", "friend_id": "user_id"})],
                         ignore_index=True)
        both = both.loc[both["user_id"] != both["friend_id"]].drop_duplicates(ignore_index=True)
        loops = (pairs["user_id"] == pairs["friend_id"]).to_numpy()
        distinct = pairs.loc[~loops].drop_duplicates()
        meta["friend_rows_raw"] = len(raw)
        meta["friend_self_loops"] = int(loops.sum())
        meta["friend_rows_duplicate"] = int((~loops).sum()) - len(distinct)
        meta["friend_edges_added_for_symmetry"] = len(both) - len(distinct)
        return both.sort_values(["user_id", "friend_id"], kind="stable", ignore_index=True)

    def load(self) -> DatasetBundle:
        listens = self._read("interactions", ("userID", "artistID", "weight"))
        artists = self._read("artists", ("id", "name"), self.artists_encoding)
        meta: dict[str, Any] = {
            "dataset": "LastFM HetRec 2011 (hetrec2011-lastfm-2k)", "citation": CITATION,
            "weight": "listening count (implicit feedback)",
            "timestamps": "none: user_artists.dat has no time column",
            "social": "undirected friendships, both directions stored",
        }
        interactions = pd.DataFrame({"user_id": listens["userID"].to_numpy(),
                                     "item_id": listens["artistID"].to_numpy(),
                                     "weight": listens["weight"].to_numpy()})
        text = self._item_text(artists, listens["artistID"].unique(), meta)
        social = self._friends(meta)
        meta["friendships"] = len(social) // 2
        files = {"interactions": str(self.path("interactions")), "social": str(self.path("friends")),
                 "item_text": f"{self.path('artists')} + {self.path('tags')}"}
        return build_bundle(self.folder, interactions, item_text=text, social=social, files=files, meta=meta)
