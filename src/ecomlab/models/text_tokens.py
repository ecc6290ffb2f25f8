"""The scratch text tower's token ids, shared by the model and the exported bundle's runtime.

A vocabulary of :class:`~ecomlab.models.tfidf.MixedAnalyzer` tokens (Latin words, CJK character n-grams) by
document frequency, ids from 1 (0: no known token), optionally followed by hashed character n-grams of the
words, ``1 + max_vocab + crc32(n-gram) mod hash_buckets`` (Bojanowski et al., fastText, TACL 2017). Both are
pure functions of the texts, so refitting on the same data reproduces a checkpoint's rows.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ecomlab.models.tfidf import _CJK, MixedAnalyzer

_CJK_CHAR = re.compile(f"[{_CJK}]")  # CJK tokens are already character n-grams; only words get hashed n-grams


def scratch_vocabulary(docs: Sequence[list[str]], min_count: int, max_vocab: int) -> dict[str, int]:
    """Tokens of analysed texts seen in at least ``min_count`` of them, the ``max_vocab`` most frequent (ties by
    token), ids from 1."""
    df = Counter(tok for doc in docs for tok in set(doc))
    kept = sorted((tok for tok, c in df.items() if c >= min_count), key=lambda tok: (-df[tok], tok))
    return {tok: k + 1 for k, tok in enumerate(kept[:max_vocab])}


@dataclass(frozen=True)
class ScratchTokens:
    """A text's token ids: vocabulary tokens, then hashed character n-grams of words; ``[0]`` if none."""

    vocab: dict[str, int]
    analyzer: MixedAnalyzer
    max_vocab: int
    hash_buckets: int = 0
    char_ngram_range: tuple[int, int] = (3, 5)

    def __call__(self, text: str) -> list[int]:
        return self.of(self.analyzer(text))

    def of(self, doc: list[str]) -> list[int]:
        """The ids of an analysed text."""
        ids = [self.vocab[tok] for tok in doc if tok in self.vocab]
        if self.hash_buckets:
            lo, hi = self.char_ngram_range
            base = 1 + self.max_vocab
            for word in (f"<{tok}>" for tok in doc if not _CJK_CHAR.search(tok)):
                ids += [base + zlib.crc32(word[k : k + n].encode()) % self.hash_buckets
                        for n in range(lo, hi + 1) for k in range(len(word) - n + 1)]
        return ids or [0]

    def csr(self, docs: Sequence[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        """Every analysed text's ids as CSR rows: ``(indptr [n + 1], ids [sum of lengths])``, int64."""
        rows = [self.of(doc) for doc in docs]
        indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
        return indptr, np.fromiter((i for r in rows for i in r), dtype=np.int64, count=int(indptr[-1]))
