"""Benchmark releases with their own split as user-item lists: one line per user, ``user item item ...``.

This is the format of the LightGCN release (He et al., "LightGCN: Simplifying and Powering Graph Convolution
Network for Recommendation", SIGIR 2020; ``train.txt`` / ``test.txt`` for Gowalla, Yelp2018 and Amazon-Book),
which NGCF's release and many later graph recommenders share: each line holds a user id followed by the ids of
the items that user interacted with in that part, separated by spaces (a line with only a user id is a user
without items there). There are no timestamps and no weights: each listed pair is one interaction of weight
1.0, and the bundle has ``has_timestamps=False``.

Each file is one part of the data set's own split (``files: {train: train.txt, test: test.txt}``, plus
``val`` where a release has one); the rows keep their part for
:class:`~ecomlab.data.splits.PredefinedSplit` (``data=user-item-lists``). Ids are kept as given (integers,
or strings where a file has other tokens). Item text and a social graph may come from separate files in the
contract's columns (``item_text``, ``social``), as with :class:`~ecomlab.data.builtin.FileSource`.
"""

from __future__ import annotations

from collections.abc import Mapping
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
from ecomlab.data.io import read_table, require_file
from ecomlab.data.sources.recbole import unify_ids


def read_user_item_lists(path: Path) -> pd.DataFrame:
    """``(user_id, item_id)`` rows of one list file as tokens (strings), in file order; a line with a
    non-printable token is refused naming its number."""
    path = require_file(path, "a user-item list file has one line per user: the user id, then its item ids")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise DataValidationError(f"{path}: not valid UTF-8 text ({err.reason})") from err
    users: list[str] = []
    counts: list[int] = []
    items: list[str] = []
    for number, line in enumerate(lines, start=1):
        tokens = line.split()
        if not tokens:
            continue  # blank lines (a trailing newline, a user listed with nothing) hold no interaction
        if any(not t.isprintable() for t in tokens):
            raise DataValidationError(f"{path}: line {number} holds a non-printable token; expected ids "
                                      "separated by spaces")
        users.append(tokens[0])
        counts.append(len(tokens) - 1)
        items.extend(tokens[1:])
    return pd.DataFrame({"user_id": np.repeat(np.array(users, dtype=object), counts),
                         "item_id": np.array(items, dtype=object)})


class UserItemLists:
    """A data set whose split ships as user-item list files; see the module docstring."""

    def __init__(self, data_dir: str, folder: str, files: dict[str, str] | None = None,
                 item_text: str | None = None, social: str | None = None, name: str | None = None,
                 duplicates: str = "drop", unknown_ids: str = "drop") -> None:
        self.data_dir, self.folder = Path(data_dir), str(folder)
        self.files = check_part_files(files if isinstance(files, Mapping) else {"train": "train.txt", "test": "test.txt"})
        self.extra = {"item_text": item_text, "social": social}
        self.name = name or Path(self.folder).name
        self.policy = ValidationPolicy(duplicates=duplicates, unknown_ids=unknown_ids)  # type: ignore[arg-type]

    @property
    def directory(self) -> Path:
        return self.data_dir / self.folder

    def cache_key(self) -> dict[str, Any]:
        paths = [*self.files.values(), *(rel for rel in self.extra.values() if rel is not None)]
        return {"directory": str(self.directory.resolve()), "files": self.files, "extra": self.extra,
                "name": self.name, "duplicates": self.policy.duplicates, "unknown_ids": self.policy.unknown_ids,
                "paths": [str((self.directory / rel).resolve()) for rel in paths]}

    def load(self) -> DatasetBundle:
        inter, part, where = stack_parts([(name, self.directory / rel, read_user_item_lists(self.directory / rel))
                                          for name, rel in self.files.items()])
        # one id type per id space over all files, so a user's "7" in train and in test is one user
        inter["user_id"], inter["item_id"] = (unify_ids([inter[c]], "auto")[0] for c in ("user_id", "item_id"))
        files = {"interactions": where}
        extra: dict[str, pd.DataFrame | None] = {}
        for key, rel in self.extra.items():
            extra[key] = None if rel is None else read_table(self.directory / rel)
            if rel is not None:
                files[key] = str(self.directory / rel)
        return build_bundle(self.name, inter, item_text=extra["item_text"], social=extra["social"],
                            policy=self.policy, files=files, meta={"format": "user_item_lists"}, part=part)
