"""Content-based recommendation by TF-IDF cosine matching (Salton & Buckley, 1988; Lops et al., 2011).

Each item :math:`i` is an L2-normalised TF-IDF vector :math:`x_i` of its text; a user profile is the
(weighted) mean of the vectors of the user's training items, re-normalised, and the score is a cosine:

.. math::  p_u = \\frac{\\sum_{j} w_{u,j} x_j}{\\lVert \\sum_{j} w_{u,j} x_j \\rVert_2}, \\qquad
           s_{u,i} = \\cos(p_u, x_i) = p_u^\\top x_i,

with :math:`w_{u,j} = \\mathbb{1}[r_{u,j} \\neq 0]` (``profile_weighting="uniform"``) or :math:`r_{u,j}`
(``"weight"``). The mean's ``1/n`` factor cancels in the normalisation, so it is never applied.

Chinese has no spaces, so whitespace tokenisation would turn a whole phrase ("红色连衣裙") into a single
rare token. The default ``"mixed"`` analyzer therefore emits CJK character n-grams (unigrams + bigrams by
default) and keeps Latin/digit runs as lower-cased words. Per-analyzer ``ngram_range`` defaults:
``mixed`` (1, 2) CJK character n-grams; ``word`` (1, 2) word n-grams; ``char_wb`` (2, 3) character n-grams.

This model is refitted rather than checkpointed: the TF-IDF matrix and the training rows live as plain
attributes (scipy sparse), since a dense per-user profile matrix ``[n_users, vocab]`` would not fit.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize
from torch import Tensor

from ecomlab.models.base import Recommender, RecTrainData

# Han (incl. extension A and compatibility ideographs), kana and Hangul: scripts written without spaces.
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
# A run is either CJK characters or word characters that are neither CJK nor "_" (Latin, digits, ...).
_RUN = re.compile(f"([{_CJK}]+)|([^\\W_{_CJK}]+)")

_DEFAULT_NGRAMS: dict[str, tuple[int, int]] = {"mixed": (1, 2), "word": (1, 2), "char_wb": (2, 3)}


class MixedAnalyzer:
    """Tokeniser for mixed Chinese/Latin text: CJK runs -> character n-grams, other runs -> words.

    N-grams never cross a run boundary, so ``"纯棉T恤blue"`` gives ``纯, 棉, 纯棉, t, 恤, blue``. Text is
    NFKC-normalised first so that full-width Latin letters and digits match their ASCII forms.
    A class rather than a closure so that the fitted vectorizer stays picklable.
    """

    def __init__(self, cjk_ngram_range: tuple[int, int] = (1, 2)) -> None:
        lo, hi = cjk_ngram_range
        if not 1 <= lo <= hi:
            raise ValueError(f"cjk_ngram_range must satisfy 1 <= lo <= hi, got {cjk_ngram_range}")
        self.cjk_ngram_range = (lo, hi)

    def __call__(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFKC", text).lower()
        lo, hi = self.cjk_ngram_range
        tokens: list[str] = []
        for match in _RUN.finditer(text):
            cjk, word = match.groups()
            if word is not None:
                tokens.append(word)
                continue
            for n in range(lo, min(hi, len(cjk)) + 1):
                tokens.extend(cjk[k : k + n] for k in range(len(cjk) - n + 1))
        return tokens


class TfidfContent(Recommender):
    """Cosine similarity between a user's TF-IDF profile and every item's TF-IDF vector."""

    trainable: ClassVar[bool] = False

    def __init__(
        self,
        n_items: int,
        analyzer: str = "mixed",
        ngram_range: Sequence[int] | None = None,
        min_df: int = 1,
        max_features: int | None = 50000,
        sublinear_tf: bool = True,
        profile_weighting: str = "uniform",
    ) -> None:
        super().__init__()
        if analyzer not in _DEFAULT_NGRAMS:
            raise ValueError(f"analyzer must be one of {sorted(_DEFAULT_NGRAMS)}, got {analyzer!r}")
        if profile_weighting not in ("uniform", "weight"):
            raise ValueError(f"profile_weighting must be 'uniform' or 'weight', got {profile_weighting!r}")
        self.n_items = n_items
        self.analyzer = analyzer
        # Hydra hands over lists; scikit-learn wants a tuple.
        lo, hi = ngram_range or _DEFAULT_NGRAMS[analyzer]
        self.ngram_range: tuple[int, int] = (int(lo), int(hi))
        self.min_df = min_df
        self.max_features = max_features
        self.sublinear_tf = sublinear_tf
        self.profile_weighting = profile_weighting
        self.vectorizer: TfidfVectorizer | None = None
        self.item_matrix: sp.csr_matrix | None = None  # [n_items, vocab], rows L2-normalised (or all-zero)
        self.train_rows: sp.csr_matrix | None = None  # [n_users, n_items] profile weights

    def _make_vectorizer(self) -> TfidfVectorizer:
        common = dict(
            min_df=self.min_df, max_features=self.max_features, sublinear_tf=self.sublinear_tf, norm="l2"
        )
        if self.analyzer == "mixed":
            return TfidfVectorizer(analyzer=MixedAnalyzer(self.ngram_range), **common)
        return TfidfVectorizer(analyzer=self.analyzer, ngram_range=self.ngram_range, **common)

    def fit(self, data: RecTrainData) -> None:
        if data.item_text is None:
            raise ValueError(f"TF-IDF content matching needs item text; data set '{data.name}' has none")
        texts = ["" if t is None else str(t) for t in data.item_text]
        if len(texts) != self.n_items or data.train.shape[1] != self.n_items:
            raise ValueError(
                f"expected {self.n_items} items, got {len(texts)} texts and {data.train.shape[1]} train columns"
            )
        if not any(t.strip() for t in texts):
            raise ValueError("TF-IDF content matching needs item text; every item text is empty")
        vectorizer = self._make_vectorizer()
        try:
            item_matrix = vectorizer.fit_transform(texts)  # [n_items, vocab]
        except ValueError as err:  # e.g. scikit-learn's "empty vocabulary" does not say which model failed
            raise ValueError(f"TF-IDF vectorizer failed for analyzer={self.analyzer!r}: {err}") from err
        train = sp.csr_matrix(data.train, dtype=np.float64, copy=True)
        train.sum_duplicates()
        train.eliminate_zeros()
        if self.profile_weighting == "uniform":
            train.data[:] = 1.0
        self.vectorizer = vectorizer
        self.item_matrix = sp.csr_matrix(item_matrix)
        self.train_rows = train

    def forward(self, users: Tensor) -> Tensor:  # [B] -> [B, n_items]
        if self.item_matrix is None or self.train_rows is None:
            raise RuntimeError("TfidfContent.forward called before fit")
        idx = users.detach().cpu().numpy()
        profiles = self.train_rows[idx] @ self.item_matrix  # [B, n_items] @ [n_items, vocab] -> [B, vocab]
        # Zero rows (users without training items) stay zero, hence all-zero scores for them.
        profiles = normalize(profiles, norm="l2", axis=1)
        scores = (profiles @ self.item_matrix.T).toarray()  # [B, vocab] @ [vocab, n_items] -> [B, n_items]
        return torch.from_numpy(scores.astype(np.float32)).to(users.device)
