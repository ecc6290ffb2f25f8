"""A seeded synthetic shop with planted structure, for tests, demos and sanity checks of models.

:class:`SyntheticShop` generates users, items, a friend graph, purchases and a daily sales panel, and returns
them as one :class:`~ecomlab.data.bundle.DatasetBundle` (via :func:`~ecomlab.data.bundle.build_bundle`, name
``"synthetic_shop"``). Everything is drawn from one ``np.random.default_rng(seed)``: the same arguments give
identical frames. What is planted, and how:

* **Items** -- each item has a category (every category gets at least one item, the rest uniformly), a brand
  (uniform) and a Zipf-like popularity ``1 / rank`` (ranks a random permutation). Its text is built from
  per-category noun and attribute word lists, a colour and the brand name, e.g.
  ``"soft cotton t-shirt, blue, brand Nordica, category apparel"``; so items of one category share words and
  TF-IDF content matching can find them. ``language="zh"`` writes Chinese titles from Chinese word lists, with
  some words run together as in real product titles (``"纯棉T恤 修身 蓝色 品牌北极星 服装"``); ``"mixed"``
  picks en or zh per item with probability 1/2.
* **Users** -- a latent taste over categories, ``Dirichlet`` with most mass on one primary and one secondary
  category (about 2/3 of the mass on the primary one). ``meta["user_taste"]`` holds its argmax per user.
* **Friend graph** -- homophilous: each user starts ``Poisson(friends_per_user / 2)`` friendships; each new
  friend is, with probability ``homophily``, a user with the same top (argmax) taste category, else any user.
  Self-loops and repeated pairs are dropped. Friendship is undirected and **stored in both directions**: the
  ``social`` frame holds ``(a, b)`` and ``(b, a)`` for every friendship, so the mean out-degree is about
  ``friends_per_user``.
* **Purchases** -- each user makes ``max(3, Poisson(interactions_per_user))`` purchases, each from a mixture:
  with probability ``friend_influence`` the user copies an item a random friend bought (users without friends
  fall back to the next rule); otherwise with probability ``popularity_weight`` an item is drawn from the global
  popularity, else a category is drawn from the user's taste and an item from that category by popularity.
  Items nobody bought are then given one purchase by a random user whose top category is the item's category,
  so every generated user and item appears in the interactions (and in the bundle's id maps). Timestamps are
  Unix seconds, uniform over ``n_days`` from ``start_date``, strictly increasing per user (so no
  ``(user, item, timestamp)`` duplicates). ``weight`` is the purchased quantity, 1-3.
* **Daily sales panel** -- long format ``(unique_id, ds, y, promo, price)``, one series per top-20 item by
  popularity (``item_<raw id>``) and one per category (``cat_<name>``), daily from ``start_date`` for ``n_days``.
  ``y`` is a negative-binomial count around ``level * trend * weekly * yearly * promo`` with a linear trend,
  a weekend peak (Saturday/Sunday about 1.4x a weekday), a yearly sine wave, and promotions on random days
  (about 8 % of days) that lift sales by 40-80 % and cut ``price`` by 10-30 %. The panel is planted
  independently of the purchases (it shares only the popularity ranking and category names).

Raw ids are zero-padded strings ``u0000...`` / ``i0000...`` in generation order; ``build_bundle`` factorizes
with ``sort=True``, so bundle index ``k`` is generated user/item ``k`` and the per-user/per-item lists in
``meta`` (``user_taste``, ``item_category``, ``item_brand``, ``item_popularity``, ``item_language``) are aligned
with bundle indices. ``meta["args"]`` holds the generation arguments, ``meta["category_names"]`` the category
name of each category index.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import pandas as pd

from ecomlab.data.bundle import DatasetBundle, build_bundle

__all__ = ["SyntheticShop", "CATEGORY_VOCAB", "MAX_CATEGORIES"]

# Per category: (en name, zh name, en nouns, en attributes, zh nouns, zh attributes).
CATEGORY_VOCAB: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    ("apparel", "服装",
     ("t-shirt", "hoodie", "jeans", "dress", "jacket", "sweater"),
     ("soft", "cotton", "slim-fit", "casual", "wool", "breathable"),
     ("T恤", "卫衣", "牛仔裤", "连衣裙", "夹克", "毛衣"),
     ("纯棉", "修身", "休闲", "羊毛", "透气", "宽松")),
    ("electronics", "数码",
     ("headphones", "smartphone", "charger", "speaker", "smartwatch", "keyboard"),
     ("wireless", "bluetooth", "fast-charging", "noise-cancelling", "portable", "waterproof"),
     ("耳机", "手机", "充电器", "音箱", "智能手表", "键盘"),
     ("无线", "蓝牙", "快充", "降噪", "便携", "防水")),
    ("home", "家居",
     ("pillow", "blanket", "lamp", "curtain", "mug", "storage-box"),
     ("cozy", "ceramic", "minimalist", "linen", "decorative", "foldable"),
     ("枕头", "毛毯", "台灯", "窗帘", "马克杯", "收纳盒"),
     ("舒适", "陶瓷", "简约", "亚麻", "装饰", "折叠")),
    ("beauty", "美妆",
     ("lipstick", "moisturizer", "serum", "mascara", "sunscreen", "cleanser"),
     ("hydrating", "matte", "organic", "long-lasting", "gentle", "vitamin"),
     ("口红", "面霜", "精华液", "睫毛膏", "防晒霜", "洗面奶"),
     ("补水", "哑光", "有机", "持久", "温和", "维生素")),
    ("sports", "运动",
     ("yoga-mat", "dumbbell", "running-shorts", "tennis-racket", "bike-helmet", "water-bottle"),
     ("lightweight", "durable", "non-slip", "adjustable", "professional", "outdoor"),
     ("瑜伽垫", "哑铃", "跑步短裤", "网球拍", "骑行头盔", "运动水壶"),
     ("轻量", "耐用", "防滑", "可调节", "专业", "户外")),
    ("books", "图书",
     ("novel", "cookbook", "biography", "textbook", "comic", "travel-guide"),
     ("bestselling", "illustrated", "hardcover", "classic", "paperback", "annotated"),
     ("小说", "菜谱", "传记", "教材", "漫画", "旅行指南"),
     ("畅销", "插图", "精装", "经典", "平装", "注释")),
    ("toys", "玩具",
     ("building-blocks", "puzzle", "plush-bear", "toy-car", "board-game", "doll"),
     ("educational", "colorful", "kids", "creative", "safe", "interactive"),
     ("积木", "拼图", "毛绒熊", "玩具车", "桌游", "娃娃"),
     ("益智", "彩色", "儿童", "创意", "安全", "互动")),
    ("grocery", "食品",
     ("green-tea", "coffee-beans", "chocolate", "olive-oil", "honey", "snack-box"),
     ("fresh", "imported", "sugar-free", "roasted", "premium", "natural"),
     ("绿茶", "咖啡豆", "巧克力", "橄榄油", "蜂蜜", "零食礼盒"),
     ("新鲜", "进口", "无糖", "烘焙", "精选", "天然")),
    ("shoes", "鞋靴",
     ("sneakers", "boots", "sandals", "loafers", "slippers", "running-shoes"),
     ("leather", "cushioned", "anti-slip", "classic", "high-top", "mesh"),
     ("运动鞋", "靴子", "凉鞋", "乐福鞋", "拖鞋", "跑鞋"),
     ("真皮", "缓震", "防滑底", "经典款", "高帮", "网面")),
    ("jewelry", "珠宝",
     ("necklace", "ring", "earrings", "bracelet", "pendant", "brooch"),
     ("silver", "gold-plated", "handmade", "elegant", "pearl", "crystal"),
     ("项链", "戒指", "耳环", "手链", "吊坠", "胸针"),
     ("纯银", "镀金", "手工", "优雅", "珍珠", "水晶")),
    ("garden", "园艺",
     ("flower-pot", "garden-hose", "pruning-shears", "seed-kit", "planter", "watering-can"),
     ("ceramic", "expandable", "stainless", "organic", "hanging", "rustproof"),
     ("花盆", "浇水管", "修枝剪", "种子套装", "种植箱", "洒水壶"),
     ("陶瓷", "伸缩", "不锈钢", "有机", "悬挂", "防锈")),
    ("pet", "宠物",
     ("dog-food", "cat-litter", "pet-bed", "chew-toy", "leash", "scratching-post"),
     ("grain-free", "clumping", "washable", "durable", "reflective", "sisal"),
     ("狗粮", "猫砂", "宠物窝", "磨牙玩具", "牵引绳", "猫抓板"),
     ("无谷", "结团", "可水洗", "耐咬", "反光", "剑麻")),
)
MAX_CATEGORIES = len(CATEGORY_VOCAB)

_COLORS_EN = ("blue", "black", "white", "red", "green", "grey", "pink", "beige")
_COLORS_ZH = ("蓝色", "黑色", "白色", "红色", "绿色", "灰色", "粉色", "米色")
_BRANDS_EN = ("Nordica", "Solaris", "Aurora", "Everpeak", "Lumina", "Vertex", "Harbor", "Zephyr",
              "Maple", "Orion", "Cobalt", "Willow", "Summit", "Nimbus", "Crescent", "Atlas",
              "Ember", "Juniper", "Quartz", "Redwood", "Sable", "Tundra", "Velvet", "Pioneer")
_BRANDS_ZH = ("北极星", "太阳神", "极光", "长峰", "明辉", "顶点", "港湾", "西风",
              "枫叶", "猎户", "钴蓝", "垂柳", "巅峰", "云朵", "新月", "擎天",
              "余烬", "杜松", "石英", "红杉", "黑貂", "冻原", "丝绒", "先锋")
_LANGUAGES = ("en", "zh", "mixed")

_SECONDS_PER_DAY = 86_400
_N_TOP_SERIES = 20
_MAX_N = 10_000_000
#: rows per chunk where a per-row draw needs a [rows, n_categories] temporary
_ROW_CHUNK = 1 << 20


def _brand_name(b: int, names: tuple[str, ...]) -> str:
    base = names[b % len(names)]
    return base if b < len(names) else f"{base}{b // len(names) + 1}"


def _check_int(key: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"SyntheticShop: {key}={value!r} must be an integer in [{lo}, {hi}]")
    if not lo <= int(value) <= hi:
        raise ValueError(f"SyntheticShop: {key}={value!r} out of range; allowed [{lo}, {hi}]")
    return int(value)


def _check_float(key: str, value: Any, lo: float, hi: float, *, lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(float(value)):
        raise ValueError(f"SyntheticShop: {key}={value!r} must be a finite number in "
                         f"{'(' if lo_open else '['}{lo}, {hi}]")
    v = float(value)
    if (v <= lo if lo_open else v < lo) or v > hi:
        raise ValueError(f"SyntheticShop: {key}={value!r} out of range; allowed {'(' if lo_open else '['}{lo}, {hi}]")
    return v


class SyntheticShop:
    """Seeded generator of a small shop with planted structure (see the module docstring).

    Hydra: ``_target_: ecomlab.data.synthetic.SyntheticShop``; every argument is a plain scalar. ``load()``
    returns the :class:`DatasetBundle`; arguments are validated in ``__init__`` (``ValueError`` naming the key
    and the allowed range).
    """

    def __init__(self, n_users: int = 1000, n_items: int = 500, n_categories: int = 8, n_brands: int = 20,
                 interactions_per_user: float = 30.0, friends_per_user: float = 6.0, homophily: float = 0.8,
                 popularity_weight: float = 0.3, friend_influence: float = 0.3, language: str = "en",
                 n_days: int = 730, start_date: str = "2023-01-01", seed: int = 0) -> None:
        self.n_users = _check_int("n_users", n_users, 2, _MAX_N)
        self.n_categories = _check_int("n_categories", n_categories, 1, MAX_CATEGORIES)
        self.n_items = _check_int("n_items", n_items, self.n_categories, _MAX_N)
        self.n_brands = _check_int("n_brands", n_brands, 1, 100_000)
        self.interactions_per_user = _check_float("interactions_per_user", interactions_per_user, 0.0, 10_000.0,
                                                  lo_open=True)
        self.friends_per_user = _check_float("friends_per_user", friends_per_user, 0.0, 1_000.0)
        self.homophily = _check_float("homophily", homophily, 0.0, 1.0)
        self.popularity_weight = _check_float("popularity_weight", popularity_weight, 0.0, 1.0)
        self.friend_influence = _check_float("friend_influence", friend_influence, 0.0, 1.0)
        if language not in _LANGUAGES:
            raise ValueError(f"SyntheticShop: language={language!r}; allowed {list(_LANGUAGES)}")
        self.language = str(language)
        self.n_days = _check_int("n_days", n_days, 14, 36_500)
        try:
            start = pd.Timestamp(str(start_date))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"SyntheticShop: start_date={start_date!r} is not a date; expected e.g. '2023-01-01'") from exc
        if start is pd.NaT or start.tz is not None:
            raise ValueError(f"SyntheticShop: start_date={start_date!r}; expected a timezone-naive date like '2023-01-01'")
        self.start_date = str(start_date)
        self._start = start.normalize()
        self.seed = _check_int("seed", seed, 0, 2**63 - 1)

    def args(self) -> dict[str, Any]:
        """The generation arguments, as stored in ``meta["args"]``."""
        return {key: getattr(self, key) for key in (
            "n_users", "n_items", "n_categories", "n_brands", "interactions_per_user", "friends_per_user",
            "homophily", "popularity_weight", "friend_influence", "language", "n_days", "start_date", "seed")}

    def __repr__(self) -> str:
        return f"SyntheticShop({', '.join(f'{k}={v!r}' for k, v in self.args().items())})"

    # ------------------------------------------------------------------------------------------ generation

    def load(self) -> DatasetBundle:
        parts = self.frames()
        return build_bundle(name="synthetic_shop", **parts)

    def frames(self) -> dict[str, Any]:
        """The raw frames before validation: ``interactions`` (raw string ids), ``item_text``, ``social``,
        ``sales`` and ``meta``, as :func:`~ecomlab.data.bundle.build_bundle` takes them (a shop's own export
        looks like ``interactions``; ``scripts/bench_data_scale.py`` writes it to a file)."""
        rng = np.random.default_rng(self.seed)
        n_u, n_i, n_c = self.n_users, self.n_items, self.n_categories

        # Items: category (each category non-empty), brand, Zipf-like popularity.
        item_cat = rng.permutation(np.concatenate([np.arange(n_c), rng.integers(0, n_c, n_i - n_c)]))
        item_brand = rng.integers(0, self.n_brands, n_i)
        item_pop = 1.0 / (rng.permutation(n_i) + 1.0)
        item_pop /= item_pop.sum()

        # Users: Dirichlet taste concentrated on a primary and a secondary category.
        alpha = np.full((n_u, n_c), 0.1)
        primary = rng.integers(0, n_c, n_u)
        secondary = rng.integers(0, n_c, n_u)
        alpha[np.arange(n_u), secondary] += 1.5
        alpha[np.arange(n_u), primary] += 5.0
        taste = rng.gamma(alpha)
        taste /= taste.sum(axis=1, keepdims=True)
        top_cat = taste.argmax(axis=1)

        edges = self._friend_graph(rng, top_cat)
        users, items = self._purchases(rng, taste, top_cat, item_cat, item_pop, edges)
        timestamps = self._timestamps(rng, users)
        weight = rng.choice(np.array([1.0, 2.0, 3.0]), size=len(users), p=[0.7, 0.2, 0.1])

        uw, iw = max(4, len(str(n_u - 1))), max(4, len(str(n_i - 1)))
        user_raw = np.array([f"u{k:0{uw}d}" for k in range(n_u)], dtype=object)
        item_raw = np.array([f"i{k:0{iw}d}" for k in range(n_i)], dtype=object)

        interactions = pd.DataFrame({"user_id": user_raw[users], "item_id": item_raw[items],
                                     "timestamp": timestamps, "weight": weight})
        item_lang = self._item_languages(rng)
        item_text = pd.DataFrame({
            "item_id": item_raw,
            "text": self._texts(rng, item_cat, item_brand, item_lang),
            "category": np.array([CATEGORY_VOCAB[c][0] for c in range(n_c)], dtype=object)[item_cat],
            "brand": np.array([_brand_name(b, _BRANDS_EN) for b in range(self.n_brands)], dtype=object)[item_brand],
            "language": item_lang,
        })
        # explicit string dtype: an empty object column would trip build_bundle's id check (read-only mask)
        social = pd.DataFrame({"user_id": user_raw[edges[:, 0]], "friend_id": user_raw[edges[:, 1]]}).astype(str)
        sales = self._sales(rng, item_raw, item_cat, item_pop)

        meta: dict[str, Any] = {
            "generator": "SyntheticShop",
            "args": self.args(),
            "category_names": [CATEGORY_VOCAB[c][0] for c in range(n_c)],
            "user_taste": top_cat.astype(int).tolist(),
            "item_category": item_cat.astype(int).tolist(),
            "item_brand": item_brand.astype(int).tolist(),
            "item_popularity": item_pop.astype(float).tolist(),
            "item_language": item_lang.tolist(),
            "social_directed_both_ways": True,
        }
        return {"interactions": interactions, "item_text": item_text, "social": social, "sales": sales, "meta": meta}

    def _friend_graph(self, rng: np.random.Generator, top_cat: np.ndarray) -> np.ndarray:
        """Homophilous undirected friendships as an ``(m, 2)`` int array holding both directions, sorted."""
        n_u = self.n_users
        starts = rng.poisson(self.friends_per_user / 2.0, n_u)
        src = np.repeat(np.arange(n_u), starts)
        # Users grouped by top category: order[offset[c]:offset[c] + count[c]].
        order = np.argsort(top_cat, kind="stable")
        count = np.bincount(top_cat, minlength=self.n_categories)
        offset = np.concatenate([[0], np.cumsum(count)[:-1]])
        c = top_cat[src]
        same = order[offset[c] + np.floor(rng.random(len(src)) * count[c]).astype(np.int64)]
        anyone = rng.integers(0, n_u, len(src))
        dst = np.where(rng.random(len(src)) < self.homophily, same, anyone)
        keep = src != dst
        lo, hi = np.minimum(src, dst)[keep], np.maximum(src, dst)[keep]
        pairs = np.unique(np.stack([lo, hi], axis=1), axis=0) if keep.any() else np.empty((0, 2), np.int64)
        both = np.concatenate([pairs, pairs[:, ::-1]], axis=0)
        return both[np.lexsort((both[:, 1], both[:, 0]))].astype(np.int64)

    def _purchases(self, rng: np.random.Generator, taste: np.ndarray, top_cat: np.ndarray, item_cat: np.ndarray,
                   item_pop: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(user, item) index arrays, rows grouped by user in ascending order."""
        n_u, n_i, n_c = self.n_users, self.n_items, self.n_categories
        n_per = np.maximum(3, rng.poisson(self.interactions_per_user, n_u))
        row_start = np.concatenate([[0], np.cumsum(n_per)[:-1]])
        users = np.repeat(np.arange(n_u), n_per)
        n = len(users)

        # Taste path: category from the user's taste, then item by popularity within that category.
        cum_taste = np.cumsum(taste, axis=1)
        draw = rng.random(n)
        cat = np.empty(n, dtype=np.int64)
        for a in range(0, n, _ROW_CHUNK):  # chunks of rows bound the [rows, n_c] temporaries at scale
            cu = cum_taste[users[a:a + _ROW_CHUNK]]  # [chunk, n_c]
            cat[a:a + _ROW_CHUNK] = (cu < draw[a:a + _ROW_CHUNK, None] * cu[:, -1:]).sum(axis=1)
        cat = np.minimum(cat, n_c - 1)
        by_cat = np.lexsort((np.arange(n_i), item_cat))  # items ordered by category
        cat_mass = np.bincount(item_cat, weights=item_pop, minlength=n_c)
        cdf = np.cumsum(item_pop[by_cat]) - np.concatenate([[0.0], np.cumsum(cat_mass)[:-1]])[item_cat[by_cat]]
        cdf = cdf / cat_mass[item_cat[by_cat]]
        last = np.flatnonzero(np.diff(np.append(item_cat[by_cat], n_c)))  # last item of each category
        cdf[last] = 1.0
        cdf = cdf + item_cat[by_cat]  # category c occupies (c, c + 1], boundaries exact
        pos = np.searchsorted(cdf, cat + (1.0 - rng.random(n)), side="left")  # 1 - U lies in (0, 1]
        taste_items = by_cat[np.minimum(pos, n_i - 1)]
        # Popularity path: global popularity.
        pop_cdf = np.cumsum(item_pop)
        pop_cdf[-1] = 1.0
        pop_items = np.minimum(np.searchsorted(pop_cdf, 1.0 - rng.random(n), side="left"), n_i - 1)
        items = np.where(rng.random(n) < self.popularity_weight, pop_items, taste_items)

        # Friend path: copy a random (first-pass) purchase of a random friend.
        copy = rng.random(n) < self.friend_influence
        deg = np.bincount(edges[:, 0], minlength=n_u)
        adj_start = np.concatenate([[0], np.cumsum(deg)[:-1]])
        copy &= deg[users] > 0
        cu = users[copy]
        friend = edges[adj_start[cu] + np.floor(rng.random(len(cu)) * deg[cu]).astype(np.int64), 1]
        row = row_start[friend] + np.floor(rng.random(len(cu)) * n_per[friend]).astype(np.int64)
        base = items.copy()
        items[copy] = base[row]

        # Coverage: every item gets at least one buyer (preferably a user whose top category is the item's).
        missing = np.flatnonzero(np.bincount(items, minlength=n_i) == 0)
        if len(missing):
            order = np.argsort(top_cat, kind="stable")
            count = np.bincount(top_cat, minlength=n_c)
            offset = np.concatenate([[0], np.cumsum(count)[:-1]])
            mc = item_cat[missing]
            pick = offset[mc] + np.floor(rng.random(len(missing)) * np.maximum(count[mc], 1)).astype(np.int64)
            buyers = np.where(count[mc] > 0, order[np.minimum(pick, n_u - 1)], rng.integers(0, n_u, len(missing)))
            users = np.concatenate([users, buyers])
            items = np.concatenate([items, missing])
            grouped = np.argsort(users, kind="stable")
            users, items = users[grouped], items[grouped]
        return users.astype(np.int64), items.astype(np.int64)

    def _timestamps(self, rng: np.random.Generator, users: np.ndarray) -> np.ndarray:
        """Unix seconds, uniform over the window, strictly increasing within each user's (grouped) rows."""
        n_per = np.bincount(users, minlength=self.n_users)
        span = self.n_days * _SECONDS_PER_DAY
        draws = np.floor(rng.random(len(users)) * (span - n_per[users])).astype(np.int64)
        order = np.lexsort((draws, users))
        draws = draws[order]
        rank = np.arange(len(users)) - np.concatenate([[0], np.cumsum(n_per)[:-1]])[users]
        start = int(self._start.value // 10**9)
        return start + draws + rank

    def _item_languages(self, rng: np.random.Generator) -> np.ndarray:
        if self.language == "mixed":
            return np.where(rng.random(self.n_items) < 0.5, "en", "zh").astype(object)
        return np.full(self.n_items, self.language, dtype=object)

    def _texts(self, rng: np.random.Generator, item_cat: np.ndarray, item_brand: np.ndarray,
               item_lang: np.ndarray) -> list[str]:
        n_i = self.n_items
        noun = rng.integers(0, 6, n_i)
        attr1 = rng.integers(0, 6, n_i)
        attr2 = (attr1 + rng.integers(1, 6, n_i)) % 6  # a second, different attribute
        color = rng.integers(0, len(_COLORS_EN), n_i)
        out: list[str] = []
        for i in range(n_i):
            name_en, name_zh, nouns_en, attrs_en, nouns_zh, attrs_zh = CATEGORY_VOCAB[int(item_cat[i])]
            b = int(item_brand[i])
            if item_lang[i] == "zh":
                out.append(f"{attrs_zh[attr1[i]]}{nouns_zh[noun[i]]} {attrs_zh[attr2[i]]} {_COLORS_ZH[color[i]]} "
                           f"品牌{_brand_name(b, _BRANDS_ZH)} {name_zh}")
            else:
                out.append(f"{attrs_en[attr1[i]]} {attrs_en[attr2[i]]} {nouns_en[noun[i]]}, {_COLORS_EN[color[i]]}, "
                           f"brand {_brand_name(b, _BRANDS_EN)}, category {name_en}")
        return out

    def _sales(self, rng: np.random.Generator, item_raw: np.ndarray, item_cat: np.ndarray,
               item_pop: np.ndarray) -> pd.DataFrame:
        n_c, n_days = self.n_categories, self.n_days
        top = np.argsort(-item_pop, kind="stable")[: min(_N_TOP_SERIES, self.n_items)]
        names = [f"item_{item_raw[i]}" for i in top] + [f"cat_{CATEGORY_VOCAB[c][0]}" for c in range(n_c)]
        cat_mass = np.bincount(item_cat, weights=item_pop, minlength=n_c)
        level = np.concatenate([5.0 + 40.0 * item_pop[top] / item_pop.max(), 20.0 + 200.0 * cat_mass])
        n_s = len(names)

        ds = pd.date_range(self._start, periods=n_days, freq="D")
        t = np.arange(n_days) / n_days
        dow = ds.day_of_week.to_numpy()
        doy = ds.day_of_year.to_numpy()
        weekly_profile = np.array([0.95, 0.95, 1.0, 1.0, 1.1, 1.45, 1.35])
        weekly = weekly_profile[dow][None, :] * rng.uniform(0.95, 1.05, (n_s, 7))[:, dow]
        trend = 1.0 + rng.uniform(-0.2, 0.6, n_s)[:, None] * t[None, :]
        yearly = 1.0 + rng.uniform(0.1, 0.25, n_s)[:, None] * np.sin(
            2 * np.pi * doy[None, :] / 365.25 + rng.uniform(0, 2 * np.pi, n_s)[:, None])
        promo = rng.random((n_s, n_days)) < 0.08
        lift = 1.0 + promo * rng.uniform(0.4, 0.8, (n_s, 1))
        mu = level[:, None] * trend * weekly * yearly * lift
        dispersion = 10.0
        y = rng.negative_binomial(dispersion, dispersion / (dispersion + mu)).astype(np.float64)
        base_price = np.round(rng.lognormal(3.0, 0.6, n_s), 2)
        discount = rng.uniform(0.1, 0.3, (n_s, 1))
        price = np.round(base_price[:, None] * np.where(promo, 1.0 - discount, 1.0), 2)
        return pd.DataFrame({
            "unique_id": np.repeat(np.array(names, dtype=object), n_days),
            "ds": np.tile(ds.to_numpy(), n_s),
            "y": y.ravel(),
            "promo": promo.ravel().astype(np.int64),
            "price": price.ravel(),
        })
