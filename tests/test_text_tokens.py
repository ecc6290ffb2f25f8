"""The scratch text tower's token ids (shared by the model and the exported runtime)."""

from __future__ import annotations

import zlib

import numpy as np

from ecomlab.models.text_tokens import ScratchTokens, scratch_vocabulary
from ecomlab.models.tfidf import MixedAnalyzer


def test_vocabulary_orders_by_document_frequency_then_token() -> None:
    docs = [["red", "dress", "red"], ["red", "shirt"], ["blue", "shirt"], ["dress"]]
    # document frequencies: red 2, dress 2, shirt 2, blue 1; a repeat inside one text counts once
    assert scratch_vocabulary(docs, min_count=1, max_vocab=10) == {"dress": 1, "red": 2, "shirt": 3, "blue": 4}
    assert scratch_vocabulary(docs, min_count=2, max_vocab=2) == {"dress": 1, "red": 2}


def test_token_ids_with_hashed_character_ngrams() -> None:
    analyzer = MixedAnalyzer((1, 2))
    tokens = ScratchTokens({"red": 1}, analyzer, max_vocab=5, hash_buckets=7, char_ngram_range=(3, 4))
    ids = tokens("red ab")
    # "red" is known (id 1); n-grams of "<red>" (3 of length 3, 2 of length 4) and "<ab>" (2 + 1)
    grams = ["<re", "red", "ed>", "<red", "red>", "<ab", "ab>", "<ab>"]
    assert ids == [1] + [6 + zlib.crc32(g.encode()) % 7 for g in grams]
    assert all(6 <= i < 13 for i in ids[1:])
    assert tokens("") == [0]  # no token at all: the "unknown" row
    assert ScratchTokens({"red": 1}, analyzer, max_vocab=5)("blue") == [0]
    cjk = tokens("红色")  # CJK tokens are character n-grams already: not hashed again
    assert cjk == [0]


def test_csr_rows_equal_the_per_text_ids() -> None:
    analyzer = MixedAnalyzer((1, 2))
    texts = ["red cotton dress", "", "steel drill bit", "红色 棉 衬衫"]
    docs = [analyzer(t) for t in texts]
    tokens = ScratchTokens(scratch_vocabulary(docs, 1, 100), analyzer, max_vocab=100, hash_buckets=16)
    indptr, ids = tokens.csr(docs)
    assert indptr.dtype == ids.dtype == np.int64 and indptr[0] == 0 and indptr[-1] == len(ids)
    for k, text in enumerate(texts):
        assert ids[indptr[k] : indptr[k + 1]].tolist() == tokens(text)
