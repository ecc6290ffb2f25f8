"""Unit tests for the classical (closed-form) recommenders and forecasters."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from ecomlab.models.arima import Arima
from ecomlab.models.auto_arima import AutoArima
from ecomlab.models.base import RecTrainData
from ecomlab.models.ets import Ets
from ecomlab.models.naive import Naive, Naive2, is_seasonal
from ecomlab.models.popularity import Popularity
from ecomlab.models.random import RandomRanker
from ecomlab.models.seasonal_naive import SeasonalNaive
from ecomlab.models.tfidf import MixedAnalyzer, TfidfContent


def _csr(rows: list[list[int]], n_items: int, weights: list[list[float]] | None = None) -> sp.csr_matrix:
    r = [u for u, items in enumerate(rows) for _ in items]
    c = [i for items in rows for i in items]
    v = [w for ws in weights for w in ws] if weights is not None else [1.0] * len(c)
    return sp.csr_matrix((v, (r, c)), shape=(len(rows), n_items))


# ---------------------------------------------------------------- popularity
def test_popularity_counts_and_ranking() -> None:
    train = _csr([[0, 2], [2, 3], [2], [1, 3]], n_items=5, weights=[[1, 5], [1, 1], [1], [1, 9]])
    model = Popularity(n_items=5)
    model.fit(RecTrainData(train=train))
    assert model.item_scores.tolist() == [1, 1, 3, 2, 0]
    scores = model(torch.tensor([0, 3, 1]))
    assert scores.shape == (3, 5)
    assert torch.equal(scores[0], scores[2])
    _, top = model.recommend(torch.tensor([0]), k=2)
    assert top[0].tolist() == [2, 3]
    assert "item_scores" in model.state_dict()

    weighted = Popularity(n_items=5, weighted=True)
    weighted.fit(RecTrainData(train=train))
    assert weighted.item_scores.tolist() == [1, 1, 7, 10, 0]


def test_popularity_ignores_explicit_zeros() -> None:
    train = sp.csr_matrix((np.array([1.0, 0.0]), np.array([0, 1]), np.array([0, 2])), shape=(1, 2))
    model = Popularity(n_items=2)
    model.fit(RecTrainData(train=train))
    assert model.item_scores.tolist() == [1, 0]


# ---------------------------------------------------------------- random
def test_random_ranker_uniform_and_seeded() -> None:
    data = RecTrainData(train=_csr([[0], [1]], n_items=50))
    a, b = RandomRanker(n_items=50, seed=7), RandomRanker(n_items=50, seed=7)
    a.fit(data)
    b.fit(data)
    users = torch.arange(2000) % 2
    sa, sb = a(users), b(users)
    assert sa.shape == (2000, 50)
    assert torch.equal(sa, sb)
    assert 0.0 <= sa.min() and sa.max() < 1.0
    assert abs(sa.mean().item() - 0.5) < 0.01
    # Top-1 hits should be spread evenly over the catalogue: chance level 1/50 per item.
    _, top = a.recommend(users, k=1)
    counts = np.bincount(top[:, 0].numpy(), minlength=50)
    assert counts.min() > 10 and counts.max() < 80
    # Re-fitting restarts the stream; a different seed gives a different one.
    a.fit(data)
    assert torch.equal(a(users), sa)
    c = RandomRanker(n_items=50, seed=8)
    c.fit(data)
    assert not torch.equal(c(users), sa)


# ---------------------------------------------------------------- tf-idf
def test_mixed_analyzer_tokens() -> None:
    assert MixedAnalyzer()("纯棉T恤blue") == ["纯", "棉", "纯棉", "t", "恤", "blue"]
    assert MixedAnalyzer()("红色 连衣裙 Size-M") == [
        "红",
        "色",
        "红色",
        "连",
        "衣",
        "裙",
        "连衣",
        "衣裙",
        "size",
        "m",
    ]
    # Full-width Latin is folded to ASCII so it matches half-width text.
    assert MixedAnalyzer()("ＡＢＣ１２") == ["abc12"]
    assert MixedAnalyzer((2, 2))("连衣裙") == ["连衣", "衣裙"]


CHINESE = [
    "红色连衣裙 夏季",
    "红色雪纺连衣裙",
    "男士运动鞋",
    "不锈钢保温杯",
    "红色长款连衣裙",
    "蓝牙耳机 无线",
]
ENGLISH = [
    "red summer dress",
    "red chiffon dress",
    "men running shoes",
    "stainless steel bottle",
    "long red dress",
    "wireless bluetooth headphones",
]


@pytest.mark.parametrize("texts", [CHINESE, ENGLISH], ids=["chinese", "english"])
@pytest.mark.parametrize("analyzer", ["mixed", "char_wb"])
def test_tfidf_ranks_similar_item_first(texts: list[str], analyzer: str) -> None:
    # User 0 bought the two red dresses; user 1 bought nothing.
    train = _csr([[0, 1], [], [2]], n_items=len(texts))
    model = TfidfContent(n_items=len(texts), analyzer=analyzer)
    model.fit(RecTrainData(train=train, item_text=texts))
    seen = torch.zeros(3, len(texts), dtype=torch.bool)
    seen[0, [0, 1]] = True
    scores, top = model.recommend(torch.tensor([0, 1]), k=len(texts), exclude=seen[:2])
    assert top[0, 0].item() == 4
    assert scores[0, 0] > 0.2 and scores[0, 1] < scores[0, 0]
    raw = model(torch.tensor([1]))
    assert torch.count_nonzero(raw) == 0
    # Cosine of a unit profile with unit item vectors is bounded by 1.
    assert model(torch.tensor([0, 2])).max() <= 1.0 + 1e-5


def test_tfidf_word_analyzer_and_weighting() -> None:
    train = _csr([[0, 2]], n_items=len(ENGLISH), weights=[[1.0, 10.0]])
    model = TfidfContent(
        n_items=len(ENGLISH), analyzer="word", ngram_range=[1, 1], profile_weighting="weight"
    )
    model.fit(RecTrainData(train=train, item_text=ENGLISH))
    assert model.ngram_range == (1, 1)
    # The heavy shoe purchase dominates the profile: shoes outrank the red dress items.
    scores = model(torch.tensor([0]))[0]
    assert scores[2] > scores[4]


def test_tfidf_requires_text() -> None:
    train = _csr([[0]], n_items=2)
    with pytest.raises(ValueError, match="needs item text"):
        TfidfContent(n_items=2).fit(RecTrainData(train=train, item_text=None))
    with pytest.raises(ValueError, match="needs item text"):
        TfidfContent(n_items=2).fit(RecTrainData(train=train, item_text=["", "  "]))
    with pytest.raises(ValueError, match="analyzer"):
        TfidfContent(n_items=2, analyzer="bpe")


# ---------------------------------------------------------------- seasonal naive
def test_seasonal_naive_hand_example() -> None:
    model = SeasonalNaive(season_length=4)
    y = np.array([9.0, 9.0, 1.0, 2.0, 3.0, 4.0])
    out = model.forecast([y, np.array([5.0, 6.0])], horizon=6)
    assert out.shape == (2, 6)
    np.testing.assert_array_equal(out[0], [1.0, 2.0, 3.0, 4.0, 1.0, 2.0])
    # Shorter than one season: naive fallback repeats the last value.
    np.testing.assert_array_equal(out[1], [6.0] * 6)


def test_seasonal_naive_matches_formula() -> None:
    rng = np.random.default_rng(0)
    y, m, horizon = rng.normal(size=17), 5, 12
    out = SeasonalNaive(season_length=m).forecast([y], horizon)[0]
    T = len(y)
    expected = [y[T + h - m * ((h - 1) // m + 1) - 1] for h in range(1, horizon + 1)]
    np.testing.assert_array_equal(out, expected)


# ---------------------------------------------------------------- arima
def test_arima_follows_linear_trend_for_batch_of_lengths() -> None:
    rng = np.random.default_rng(0)
    histories, truths = [], []
    for length in (60, 90, 120):
        t = np.arange(length + 8, dtype=np.float64)
        y = 100.0 + 2.0 * t + rng.normal(0.0, 1.0, size=t.size)
        histories.append(y[:length])
        truths.append(100.0 + 2.0 * t[length:])
    model = Arima(order=[1, 1, 1])
    out = model.forecast(histories, horizon=8)
    assert out.shape == (3, 8)
    assert model.order == (1, 1, 1) and model.seasonal_order == (0, 0, 0, 0)
    rel_err = np.abs(out - np.stack(truths)) / np.stack(truths)
    assert rel_err.max() < 0.03
    assert model.fit_failures == 0


@pytest.mark.slow  # starting the process pool imports torch in every worker (~6 s)
def test_arima_parallel_matches_serial() -> None:
    rng = np.random.default_rng(1)
    histories = [np.cumsum(rng.normal(1.0, 1.0, size=n)) for n in (40, 50, 60)]
    serial = Arima(order=(1, 1, 0)).forecast(histories, horizon=4)
    parallel = Arima(order=(1, 1, 0), n_jobs=2).forecast(histories, horizon=4)
    np.testing.assert_allclose(parallel, serial, rtol=1e-6)


def test_arima_degenerate_series_fall_back_to_finite_forecasts() -> None:
    model = Arima(order=(1, 1, 1))
    with warnings.catch_warnings():
        # Convergence warnings must be swallowed (and counted), not surface to the caller.
        warnings.simplefilter("error")
        out = model.forecast([np.full(30, 5.0), np.array([3.0, 4.0])], horizon=3)
    assert out.shape == (2, 3)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[0], 5.0, rtol=1e-6)
    # A two-point history makes statsmodels raise: that series gets the naive forecast.
    np.testing.assert_array_equal(out[1], [4.0, 4.0, 4.0])
    assert model.fit_failures >= 1
    assert model.fit_warnings >= 0


# ---------------------------------------------------------------- naive, naive2
SEASON = np.array([0.7, 1.2, 1.4, 0.9, 1.1, 0.7])  # mean 1: multiplicative indices, m = 6


def test_naive_repeats_last_value() -> None:
    out = Naive().forecast([np.array([1.0, 5.0, 3.0]), np.array([-2.0])], horizon=4)
    np.testing.assert_array_equal(out, [[3.0] * 4, [-2.0] * 4])
    with pytest.raises(ValueError, match="non-empty"):
        Naive().forecast([np.array([])], horizon=2)


def _m4_seasonality_test(y: np.ndarray, m: int) -> bool:
    """The M4 benchmark's test written out: |r_m| > 1.645 sqrt((1 + 2 sum_{k<m} r_k^2) / n)."""
    d = y - y.mean()
    r = [np.sum(d[k:] * d[: len(y) - k]) / np.sum(d * d) for k in range(m + 1)]
    return abs(r[m]) > 1.645 * np.sqrt((1 + 2 * sum(v * v for v in r[1:m])) / len(y))


def test_seasonality_test_matches_the_m4_formula() -> None:
    rng = np.random.default_rng(3)
    t = np.arange(48)
    results = []
    for amplitude in (0.0, 0.02, 0.05, 0.1, 0.3):
        y = 100.0 * (1 + amplitude * np.sin(2 * np.pi * t / 12)) + rng.normal(0, 2.0, size=t.size)
        assert is_seasonal(y, 12) == _m4_seasonality_test(y, 12)
        results.append(is_seasonal(y, 12))
    assert results[0] is False and results[-1] is True  # both outcomes exercised


def test_naive2_reproduces_a_multiplicative_seasonal_pattern() -> None:
    m, t = len(SEASON), np.arange(40)
    y = 50.0 * SEASON[t % m]
    model = Naive2(season_length=m)
    out = model.forecast([y], horizon=9)[0]
    np.testing.assert_allclose(out, 50.0 * SEASON[np.arange(40, 49) % m], rtol=1e-10)
    # with a trend the classical indices are estimates; the forecast still carries the seasonal shape
    trended = (20.0 + 2.0 * t) * SEASON[t % m]
    shape = model.forecast([trended], horizon=m)[0]
    level = trended[-1] / SEASON[39 % m]
    np.testing.assert_allclose(shape / level, SEASON[np.arange(40, 40 + m) % m], rtol=0.05)
    assert model.fallbacks == {"short": 0, "non_positive": 0}


def test_naive2_is_naive_without_seasonality_and_falls_back_on_short_or_non_positive() -> None:
    rng = np.random.default_rng(0)
    walk = 100.0 + np.cumsum(rng.normal(size=60))
    assert not is_seasonal(walk, 6)
    short = 50.0 * SEASON[np.arange(17) % 6]  # < 3 seasons: not tested for seasonality
    signed = 50.0 * SEASON[np.arange(40) % 6] - 40.0  # seasonal, but has values <= 0
    histories = [walk, short, signed, np.full(30, 4.0)]
    model = Naive2(season_length=6)
    out = model.forecast(histories, horizon=5)
    np.testing.assert_array_equal(out, Naive().forecast(histories, horizon=5))
    assert model.fallbacks == {"short": 1, "non_positive": 1}
    # with m = 1 Naive2 is naive and nothing falls back
    one = Naive2(season_length=1)
    np.testing.assert_array_equal(one.forecast([short], 3), [[short[-1]] * 3])
    assert one.fallbacks == {"short": 0, "non_positive": 0}


# ---------------------------------------------------------------- auto_arima, ets
def _seasonal_series(length: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    return 100.0 + 0.5 * t + 15.0 * np.sin(2 * np.pi * t / 12) + rng.normal(0.0, 1.0, size=length)


@pytest.mark.parametrize("model_cls", [AutoArima, Ets])
def test_automatic_models_learn_seasonality_and_fall_back_when_short(model_cls: type) -> None:
    full = _seasonal_series(72 + 12)
    truth = full[72:]
    model = model_cls(season_length=12)
    out = model.forecast([full[:72], full[:20]], horizon=12)
    assert out.shape == (2, 12)
    seasonal_naive_err = np.abs(full[60:72] - truth).mean()
    assert np.abs(out[0] - truth).mean() < 0.5 * seasonal_naive_err
    # 20 points < 2 seasons: the non-seasonal model of the family, counted
    assert model.fallbacks["non_seasonal"] == 1 and model.fallbacks["naive"] == 0
    assert np.all(np.isfinite(out[1]))


def test_ets_options_and_validation() -> None:
    t = np.arange(30, dtype=np.float64)
    holt = Ets(season_length=12, model="AAN", damped=False)
    out = holt.forecast([10.0 + 3.0 * t], horizon=4)[0]
    np.testing.assert_allclose(out, 10.0 + 3.0 * np.arange(30, 34), rtol=1e-3)
    # a fixed non-seasonal model has no seasonal stage, so a short series is no fallback
    assert holt.fallbacks == {"non_seasonal": 0, "naive": 0}
    tiny = Ets(season_length=1)
    tiny.forecast([np.array([3.0, 4.0, 5.0])], horizon=2)  # too few points for any ETS model
    assert tiny.fallbacks == {"non_seasonal": 0, "naive": 1}
    with pytest.raises(ValueError, match="3-letter ETS code"):
        Ets(model="ZZ")
    with pytest.raises(ValueError, match="ic="):
        AutoArima(ic="hqic")
    with pytest.raises(ValueError, match="n_jobs"):
        AutoArima(n_jobs=0)


@pytest.mark.slow  # starting the process pool imports torch in every worker (~6 s)
def test_auto_arima_parallel_matches_serial() -> None:
    histories = [_seasonal_series(n, seed=n) for n in (30, 50, 70)]
    serial = AutoArima(season_length=12).predict({"history": histories}, 5, levels=[80])
    model = AutoArima(season_length=12, n_jobs=2)
    parallel = model.predict({"history": histories}, 5, levels=[80])
    for key, values in serial.items():
        np.testing.assert_allclose(parallel[key], values, rtol=1e-9)
    assert model.fallbacks == {"non_seasonal": 0, "naive": 0}
