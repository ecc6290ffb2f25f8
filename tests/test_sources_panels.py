"""Sales panels and RecBole atomic files: UCI Online Retail, aus_retail, M3, long-format files, RecBole I/O."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import hydra
import numpy as np
import pandas as pd
import pytest
from omegaconf import DictConfig
from pandas.testing import assert_frame_equal

from conftest import SHARED_DATA
from ecomlab.data.bundle import DatasetBundle, DataValidationError, DataWarning, build_bundle
from ecomlab.data.sources.online_retail import NON_PRODUCT_CODES, OnlineRetailUCI
from ecomlab.data.sources.panels import AusRetail, M3Competition, SalesFile
from ecomlab.data.sources.recbole import RecBoleAtomic, export_recbole, normalise_text
from ecomlab.data.synthetic import SyntheticShop

RETAIL = SHARED_DATA / "online-retail-uci" / "online_retail.parquet"
AUS = SHARED_DATA / "aus-retail" / "aus_retail.csv"
M3_OBS = SHARED_DATA / "m3-competition" / "m3_observations.csv"
M3_META = SHARED_DATA / "m3-competition" / "m3_series_meta.csv"


def _need(path: Path) -> None:
    if not path.is_file():
        pytest.skip(f"{path} is not available")


def _strict(source: object) -> DatasetBundle:
    """Load with every DataWarning as an error: these sources must not need the policy's repairs."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        return source.load()  # type: ignore[attr-defined]


def _raw_ids(bundle: DatasetBundle) -> tuple[np.ndarray, np.ndarray]:
    return bundle.user_map.raw, bundle.item_map.raw


# --------------------------------------------------------------------------- UCI Online Retail (real file)


@pytest.fixture(scope="module")
def retail_raw() -> pd.DataFrame:
    _need(RETAIL)
    return pd.read_parquet(RETAIL)


@pytest.fixture(scope="module")
def retail() -> DatasetBundle:
    _need(RETAIL)
    return _strict(OnlineRetailUCI(str(SHARED_DATA)))


def _kept_lines(raw: pd.DataFrame) -> pd.DataFrame:
    """The default policy written independently: no cancellations, quantity >= 1, no service codes."""
    code = raw["StockCode"].str.strip().str.upper()
    keep = ~raw["InvoiceNo"].str.startswith("C") & (raw["Quantity"] >= 1) & ~code.isin(NON_PRODUCT_CODES)
    return raw[keep].assign(code=code[keep])


def test_online_retail_policy_counts_add_up(retail: DatasetBundle, retail_raw: pd.DataFrame) -> None:
    policy = retail.meta["policy"]
    assert policy["lines_total"] == len(retail_raw) == 541_909
    dropped = sum(v for k, v in policy.items() if k.startswith("dropped_"))
    assert dropped + policy["interaction_lines"] == 541_909
    assert policy["dropped_cancelled"] == 9_288  # the README's count of cancellation lines
    assert policy["dropped_reversed"] == 0  # only with cancellations="reverse"
    kept = _kept_lines(retail_raw)
    assert policy["sales_lines"] == len(kept)
    assert policy["dropped_missing_customer"] == int(kept["CustomerID"].isna().sum())
    assert policy["interaction_lines"] == int(kept["CustomerID"].notna().sum())
    assert len(retail.interactions) == policy["interaction_lines"] - policy["merged_lines"]


def test_online_retail_interactions_match_the_kept_lines(retail: DatasetBundle, retail_raw: pd.DataFrame) -> None:
    bought = _kept_lines(retail_raw).dropna(subset=["CustomerID"])
    assert retail.n_users == bought["CustomerID"].nunique()
    assert retail.n_items == bought["code"].nunique()
    assert retail.interactions["weight"].sum() == bought["Quantity"].sum()  # merging sums, loses nothing
    assert retail.has_timestamps
    first = pd.Timestamp(bought["InvoiceDate"].min(), tz="UTC")
    assert retail.interactions["timestamp"].min() == first.value // 10**9
    assert retail.user_map.raw.dtype == np.int64
    texts = dict(zip(retail.item_map.to_raw(retail.item_text["item_id"]), retail.item_text["text"], strict=True))
    assert texts["85123A"] == "WHITE HANGING HEART T-LIGHT HOLDER"
    assert len(texts) == retail.n_items and all(texts.values())


def test_online_retail_daily_panel(retail: DatasetBundle, retail_raw: pd.DataFrame) -> None:
    kept = _kept_lines(retail_raw)
    day = kept["InvoiceDate"].dt.normalize()
    sales = retail.sales
    assert sales is not None and list(sales.columns) == ["unique_id", "ds", "y", "revenue", "trading_day"]
    total = sales[sales["unique_id"] == "total"].set_index("ds")
    assert len(total) == (day.max() - day.min()).days + 1 == 374  # every calendar day, closed days are 0
    per_day = kept.groupby(day)["Quantity"].sum()
    assert total.loc[per_day.index, "y"].to_numpy() == pytest.approx(per_day.to_numpy())
    assert total["y"].sum() == kept["Quantity"].sum()
    assert total["trading_day"].sum() == day.nunique()
    revenue = (kept["Quantity"] * kept["UnitPrice"]).groupby(day).sum()
    assert total.loc[revenue.index, "revenue"].to_numpy() == pytest.approx(revenue.to_numpy(), abs=0.01)
    # 50 best-selling products plus the total, each over the same calendar
    volume = kept.groupby("code")["Quantity"].sum().sort_values(ascending=False)
    products = sorted(set(sales["unique_id"]) - {"total"})
    assert products == sorted(volume.index[:50]) and retail.meta["products"][0] == volume.index[0]
    lengths = sales.groupby("unique_id").size()
    assert (lengths == 374).all() and len(lengths) == 51
    top = sales[sales["unique_id"] == volume.index[0]]
    assert top["y"].sum() == volume.iloc[0]


def test_online_retail_reverse_drops_the_cancelled_purchases() -> None:
    _need(RETAIL)
    bundle = _strict(OnlineRetailUCI(str(SHARED_DATA), cancellations="reverse", panel="total"))
    policy = bundle.meta["policy"]
    assert policy["dropped_reversed"] > 0
    assert sum(v for k, v in policy.items() if k.startswith("dropped_")) + policy["interaction_lines"] == 541_909
    assert set(bundle.sales["unique_id"]) == {"total"}
    last_day = bundle.sales.set_index("ds").loc[pd.Timestamp("2011-12-09"), "y"]
    assert last_day < 80_995  # the 80,995-unit order cancelled the same morning is gone


def test_online_retail_policy_on_a_small_file(tmp_path: Path) -> None:
    """Each rule on hand-made lines, checked against counts worked out by hand."""
    t = pd.Timestamp("2011-01-03 10:00")
    rows = [  # InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID
        ("1", "85123A", "HEART  HOLDER ", 2, t, 1.0, 10.0),
        ("1", "85123a", "HEART HOLDER", 3, t, 1.0, 10.0),          # same product (case) and time: merged
        ("2", "85123A", "heart", 1, t + pd.Timedelta(days=2), 2.0, np.nan),  # no customer: sales only
        ("3", "22000", "MUG", 4, t, 0.5, 11.0),
        ("C4", "22000", "MUG", -4, t + pd.Timedelta(hours=1), 0.5, 11.0),  # cancels line 3
        ("5", "22000", "MUG", -2, t, 0.5, 11.0),                    # stock adjustment
        ("6", "POST", "POSTAGE", 1, t, 18.0, 11.0),                 # service code
    ]
    frame = pd.DataFrame(rows, columns=["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate",
                                        "UnitPrice", "CustomerID"])
    (tmp_path / "online-retail-uci").mkdir()
    frame.to_parquet(tmp_path / "online-retail-uci" / "online_retail.parquet")

    drop = _strict(OnlineRetailUCI(str(tmp_path)))
    assert drop.meta["policy"] == {
        "lines_total": 7, "dropped_cancelled": 1, "dropped_quantity_below_min": 1, "dropped_reversed": 0,
        "dropped_non_product_codes": 1, "sales_lines": 4, "dropped_missing_customer": 1,
        "interaction_lines": 3, "merged_lines": 1, "codes_merged_by_case": 1, "items_without_description": 0}
    inter = drop.interactions.assign(user=drop.user_map.to_raw(drop.interactions["user_id"]),
                                     item=drop.item_map.to_raw(drop.interactions["item_id"]))
    assert sorted(zip(inter["user"], inter["item"], inter["weight"], strict=True)) == [
        (10, "85123A", 5.0), (11, "22000", 4.0)]
    assert sorted(drop.texts()) == ["HEART HOLDER", "MUG"]  # most frequent after whitespace clean-up
    total = drop.sales[drop.sales["unique_id"] == "total"]
    assert total["y"].tolist() == [9.0, 0.0, 1.0] and total["trading_day"].tolist() == [1, 0, 1]
    assert total["revenue"].tolist() == [7.0, 0.0, 2.0]

    rev = _strict(OnlineRetailUCI(str(tmp_path), cancellations="reverse"))
    assert rev.meta["policy"]["dropped_reversed"] == 1 and rev.meta["policy"]["interaction_lines"] == 2
    assert rev.item_map.raw.tolist() == ["85123A"]
    with pytest.raises(DataValidationError, match="cancellation line"):
        OnlineRetailUCI(str(tmp_path), cancellations="error").load()
    with pytest.raises(DataValidationError, match="without CustomerID"):
        OnlineRetailUCI(str(tmp_path), missing_customer="error").load()
    with pytest.raises(ValueError, match="allowed values"):
        OnlineRetailUCI(str(tmp_path), cancellations="keep")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="min_quantity"):
        OnlineRetailUCI(str(tmp_path), min_quantity=0)
    with pytest.raises(DataValidationError, match="file not found.*paths.data_dir"):
        OnlineRetailUCI(str(tmp_path / "nowhere")).load()


# --------------------------------------------------------------------------- aus_retail and M3 (real files)


def test_aus_retail_panel() -> None:
    _need(AUS)
    raw = pd.read_csv(AUS)
    bundle = _strict(AusRetail(str(SHARED_DATA)))
    sales = bundle.sales
    assert sales is not None and len(sales) == len(raw) == 64_532
    lengths = sales.groupby("unique_id").size()
    assert len(lengths) == 152 and lengths.max() == 441 and lengths.min() == 32
    assert "Victoria/Food retailing" in lengths.index
    assert (sales["ds"].dt.day == 1).all() and sales["ds"].min() == pd.Timestamp("1982-04-01")
    assert sales["y"].sum() == pytest.approx(raw["Turnover"].sum())
    assert len(bundle.interactions) == 0 and bundle.meta["freq"] == "MS"
    assert bundle.meta["series"]["Victoria/Food retailing"]["series_id"] in set(raw["Series ID"])


@pytest.fixture(scope="module")
def m3_monthly() -> DatasetBundle:
    _need(M3_OBS)
    return _strict(M3Competition(str(SHARED_DATA), frequency="monthly"))


def test_m3_monthly(m3_monthly: DatasetBundle) -> None:
    info = pd.read_csv(M3_META).set_index("series_id")
    sales = m3_monthly.sales
    assert sales is not None
    series = m3_monthly.meta["series"]
    assert len(series) == sales["unique_id"].nunique() == 1_428
    assert {s["horizon"] for s in series.values()} == {18} and m3_monthly.meta["horizon"] == 18
    lengths = sales.groupby("unique_id").size()
    assert (lengths == info.loc[lengths.index, "n"] + 18).all()
    assert m3_monthly.meta["freq"] == "MS" and m3_monthly.meta["n_synthetic_calendar"] == 29
    # a regular month-start index in every series, including the 29 without a calendar
    steps = sales.groupby("unique_id")["ds"].apply(lambda d: set(np.diff(d.dt.year * 12 + d.dt.month)))
    assert all(s == {1} for s in steps)
    assert series["N2801"]["calendar"] == "synthetic" and series["N1402"]["calendar"] == "real"
    # the last 18 values are the official hold-out
    obs = pd.read_csv(M3_OBS)
    test = obs[(obs["series_id"] == "N1402") & (obs["split"] == "test")]["value"].to_numpy()
    assert sales[sales["unique_id"] == "N1402"]["y"].to_numpy()[-18:] == pytest.approx(test)
    first = info.loc["N1402"]
    assert sales[sales["unique_id"] == "N1402"]["ds"].iloc[0] == pd.Timestamp(
        year=int(first["start_year"]), month=int(first["start_subperiod"]), day=1)


def test_m3_filters_and_other_frequencies() -> None:
    _need(M3_OBS)
    info = pd.read_csv(M3_META)
    micro = _strict(M3Competition(str(SHARED_DATA), category="Micro", frequency=None))
    assert len(micro.meta["series"]) == int((info["type"] == "MICRO").sum()) == 828
    assert micro.meta["freq"] is None and micro.name == "m3_micro"
    quarterly = _strict(M3Competition(str(SHARED_DATA), category="finance", frequency="quarterly"))
    assert {s["category"] for s in quarterly.meta["series"].values()} == {"FINANCE"}
    assert quarterly.meta["freq"] == "QS-JAN" and set(quarterly.sales["ds"].dt.month) <= {1, 4, 7, 10}
    other = _strict(M3Competition(str(SHARED_DATA), frequency="other"))
    assert len(other.meta["series"]) == 174 and other.meta["horizon"] == 8
    assert other.sales["ds"].min() == pd.Timestamp("1970-01-01")


def test_m3_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"category='Retail' is not an M3 category; allowed: \['Micro'"):
        M3Competition(str(SHARED_DATA), category="Retail")
    with pytest.raises(ValueError, match="frequency='weekly'.*'monthly'"):
        M3Competition(str(SHARED_DATA), frequency="weekly")
    with pytest.raises(DataValidationError, match="m3_series_meta.csv: file not found"):
        M3Competition(str(tmp_path)).load()


# --------------------------------------------------------------------------- SalesFile


def test_sales_file_with_renamed_columns_and_covariates(tmp_path: Path) -> None:
    days = pd.date_range("2024-01-01", periods=10, freq="D")
    frame = pd.DataFrame({"store": np.repeat(["a", "b"], 10), "date": np.tile(days.strftime("%Y-%m-%d"), 2),
                          "units": np.arange(20, dtype=float), "price": np.linspace(1, 2, 20),
                          "promo": np.tile([0, 1], 10), "ignored": "x"})
    frame.to_csv(tmp_path / "sales.csv", index=False)
    source = SalesFile("sales.csv", data_dir=str(tmp_path), unique_id="store", ds="date", y="units",
                       covariates=["price", "promo"])
    bundle = _strict(source)
    assert list(bundle.sales.columns) == ["unique_id", "ds", "y", "price", "promo"]
    assert bundle.sales["y"].tolist() == list(range(20)) and bundle.sales["promo"].sum() == 10
    assert bundle.sales["ds"].iloc[0] == days[0] and bundle.name == "sales"
    assert source.cache_key()["files"] == [str((tmp_path / "sales.csv").resolve())]

    frame[frame["store"] == "a"].to_parquet(tmp_path / "one.parquet")
    single = _strict(SalesFile(str(tmp_path / "one.parquet"), unique_id=None, ds="date", y="units"))
    assert set(single.sales["unique_id"]) == {"one"} and list(single.sales.columns) == ["unique_id", "ds", "y"]

    with pytest.raises(DataValidationError, match=r"missing column\(s\) \['qty'\]"):
        SalesFile("sales.csv", data_dir=str(tmp_path), unique_id="store", ds="date", y="qty").load()
    with pytest.raises(ValueError, match="covariates"):
        SalesFile("sales.csv", covariates=["units"], y="units")
    with pytest.raises(DataValidationError, match="file not found"):
        SalesFile("missing.csv", data_dir=str(tmp_path)).load()


# --------------------------------------------------------------------------- RecBole atomic files


def _assert_same(a: DatasetBundle, b: DatasetBundle, text: Callable[[str], str] = str) -> None:
    assert_frame_equal(a.interactions, b.interactions)
    for (ra, rb) in zip(_raw_ids(a), _raw_ids(b), strict=True):
        assert ra.dtype == rb.dtype and ra.tolist() == rb.tolist()
    assert a.has_timestamps == b.has_timestamps
    for part in ("item_text", "social"):
        pa, pb = getattr(a, part), getattr(b, part)
        assert (pa is None) == (pb is None)
        if part == "item_text" and pa is not None:
            pa = pa.assign(text=pa["text"].map(text))
        if pa is not None:
            assert_frame_equal(pa, pb)


def test_recbole_round_trip_synthetic_shop(tmp_path: Path) -> None:
    shop = SyntheticShop(n_users=100, n_items=50).load()
    paths = export_recbole(shop, tmp_path / "shop", "shop")
    assert sorted(paths) == ["inter", "item", "net"]
    assert paths["inter"].read_text().splitlines()[0] == "user_id:token\titem_id:token\trating:float\ttimestamp:float"
    assert paths["item"].read_text().startswith("item_id:token\ttext:token_seq\tcategory:token")
    assert paths["net"].read_text().startswith("source_id:token\ttarget_id:token\n")
    assert sorted(p.name for p in (tmp_path / "shop").iterdir()) == ["shop.inter", "shop.item", "shop.net"]
    back = _strict(RecBoleAtomic(str(tmp_path), "shop"))
    _assert_same(shop, back)
    assert back.name == "shop" and back.meta["weight_field"] == "rating"


def test_recbole_round_trip_without_timestamps_and_integer_ids(tmp_path: Path) -> None:
    inter = pd.DataFrame({"user_id": [3, 3, 10, 2, 10], "item_id": [100, 7, 7, 42, 100],
                          "weight": [1.0, 2.5, 0.1 + 0.2, 4.0, 1e-9]})
    text = pd.DataFrame({"item_id": [7, 42, 100], "text": ["red\tmug  with\nhandle ", "", '"plain" says "hi"'],
                         "price": [1.5, np.nan, 3.0], "brand": ["ACME", None, "Foo Bar"]})
    social = pd.DataFrame({"user_id": [3, 10, 2], "friend_id": [10, 3, 3]})
    bundle = build_bundle("tiny", inter, item_text=text, social=social)
    assert not bundle.has_timestamps
    export_recbole(bundle, tmp_path / "tiny", "tiny")
    assert "timestamp" not in (tmp_path / "tiny" / "tiny.inter").read_text().splitlines()[0]
    back = _strict(RecBoleAtomic(str(tmp_path), "tiny"))
    _assert_same(bundle, back, text=normalise_text)
    assert back.texts()[bundle.item_map.to_index([7])[0]] == "red mug with handle"

    # exporting again without social edges removes the stale .net, so the folder is exactly the new bundle
    export_recbole(build_bundle("tiny", inter), tmp_path / "tiny", "tiny")
    assert sorted(p.name for p in (tmp_path / "tiny").iterdir()) == ["tiny.inter"]
    with_ids_as_str = _strict(RecBoleAtomic(str(tmp_path), "tiny", id_dtype="str"))
    assert with_ids_as_str.user_map.raw.tolist() == ["10", "2", "3"]


def test_recbole_export_refuses_tokens_with_tabs(tmp_path: Path) -> None:
    bundle = build_bundle("bad", pd.DataFrame({"user_id": ["a\tb", "c"], "item_id": ["x", "y"]}))
    with pytest.raises(DataValidationError, match="column 'user_id' has 1 value.*tab, newline"):
        export_recbole(bundle, tmp_path, "bad")
    assert not any(tmp_path.iterdir())  # nothing half-written
    with_text = build_bundle("bad", pd.DataFrame({"user_id": ["a"], "item_id": ["x"]}),
                             item_text=pd.DataFrame({"item_id": ["x"], "text": ["t"], "brand": ["a\nb"]}))
    with pytest.raises(DataValidationError, match="column 'brand'"):
        export_recbole(with_text, tmp_path, "bad")


def _write(folder: Path, name: str, files: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for suffix, text in files.items():
        (folder / f"{name}.{suffix}").write_text(text, encoding="utf-8")


TINY = {
    "inter": ("user_id:token\titem_id:token\trating:float\ttimestamp:float\tlabel:float\n"
              "1\t10\t4\t881250949.5\t1\n1\t20\t3\t881250950\t0\n007\t10\t5\t881250951\t1\n2\t30\t1\t881250952\t0\n"),
    "item": ("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
             "10\tToy Story\t1995\tAnimation Comedy\n20\tHeat\t1995\t\n30\t\"Quoted\" Title\t1996\tDrama\n"),
    "user": "user_id:token\tage:float\tgender:token\n1\t24\tM\n2\t53\tF\n",
    "net": "source_id:token\ttarget_id:token\n1\t2\n2\t1\n1\t9\n",
}


def test_recbole_import_of_hand_written_atomic_files(tmp_path: Path) -> None:
    _write(tmp_path / "tiny", "tiny", TINY)
    with pytest.warns(DataWarning, match="not in the interactions"):  # the edge to user 9
        bundle = RecBoleAtomic(str(tmp_path), "tiny").load()
    assert bundle.user_map.raw.tolist() == ["007", "1", "2"]  # "007" is not a canonical integer: ids stay str
    assert bundle.item_map.raw.dtype == np.int64 and bundle.item_map.raw.tolist() == [10, 20, 30]
    assert bundle.interactions["weight"].tolist() == [4.0, 3.0, 5.0, 1.0]
    assert bundle.interactions["timestamp"].tolist() == [881250949, 881250950, 881250951, 881250952]
    # a cell opening with '"' is a quoted field, as RecBole's own pandas reader sees it
    assert bundle.texts() == ["Toy Story Animation Comedy", "Heat", "Quoted Title Drama"]
    assert list(bundle.item_text.columns) == ["item_id", "text", "release_year"]
    assert bundle.social.shape == (2, 2) and bundle.meta["warnings"] == {"unknown_social_users": 1}
    assert bundle.meta["ignored_fields"] == ["label"] and bundle.meta["text_fields"] == ["movie_title", "class"]
    assert bundle.meta["user_features"]["n_rows"] == 2
    source = RecBoleAtomic(str(tmp_path), "tiny", text_fields=["movie_title"], weight_field="label")
    assert len(source.cache_key()["files"]) == 4
    with pytest.warns(DataWarning):
        chosen = source.load()
    assert chosen.texts()[0] == "Toy Story" and "class" in chosen.item_text.columns
    assert chosen.interactions["weight"].tolist() == [1.0, 0.0, 1.0, 0.0]


@pytest.mark.parametrize(("files", "match"), [
    ({"inter": "user_id\titem_id:token\n1\t2\n"}, r"header column 0 'user_id' is not 'name:type'.*token_seq"),
    ({"inter": "user_id:token\titem_id:int\n1\t2\n"}, r"unknown type 'int'; allowed types \['token'"),
    ({"inter": "user_id:token\titem_id:token\trating:float\n1\t2\tfive\n"}, r"float field 'rating'.*\['five'\]"),
    ({"inter": "uid:token\titem_id:token\n1\t2\n"}, r"no field 'user_id' \(user_field\)"),
    ({"inter": "user_id:token\titem_id:token\n1\t2\t3\n"}, r"data row 0 has 3 tab-separated fields.*names 2"),
    ({"inter": "user_id:token\titem_id:token\n1\t2\n1\t2\t3\n"}, "cannot be read as a table.*line 3"),
    ({"inter": "user_id:token\titem_id:token\n1\t2\n", "net": "a:token\tb:token\n1\t1\n"}, "source_id:token"),
    ({"item": "item_id:token\ttitle:token_seq\n1\tx\n"}, r"tiny\.inter: file not found.*data\.source\.name"),
])
def test_recbole_bad_inputs(tmp_path: Path, files: dict[str, str], match: str) -> None:
    _write(tmp_path / "tiny", "tiny", files)
    with pytest.raises(DataValidationError, match=match):
        RecBoleAtomic(str(tmp_path), "tiny").load()


# --------------------------------------------------------------------------- data configs


def test_data_configs_compose_and_load(compose_cfg: Callable[..., DictConfig], tmp_path: Path) -> None:
    shared = {"online-retail-uci": RETAIL, "online-retail-uci-sales": RETAIL, "aus-retail": AUS,
              "m3-monthly": M3_OBS}
    for name, needed in shared.items():
        cfg = compose_cfg([f"data={name}"])
        assert cfg.data.preprocess._target_ == "ecomlab.data.preprocess.Preprocess"
        if not needed.is_file():
            continue
        cfg.data.source.data_dir = str(SHARED_DATA)
        bundle = hydra.utils.instantiate(cfg.data.source).load()
        if name == "online-retail-uci":
            assert cfg.data.split.ratios == [0.8, 0.1, 0.1] and bundle.n_users > 4000
            assert bundle.meta["policy"]["dropped_reversed"] > 0
        elif name == "online-retail-uci-sales":
            # season and horizon follow the daily frequency (7, 28) at setup
            assert cfg.data.season_length is None and cfg.data.backtest.horizon is None
            assert bundle.sales["unique_id"].nunique() == 51
        elif name == "aus-retail":
            assert cfg.data.season_length is None and bundle.sales["unique_id"].nunique() == 152
        else:
            assert cfg.data.backtest.horizon == 18 and cfg.data.backtest.n_windows == 1
            assert len(bundle.meta["series"]) == 1_428

    export_recbole(SyntheticShop(n_users=30, n_items=20).load(), tmp_path / "rb" / "shop", "shop")
    cfg = compose_cfg(["data=recbole", "data.source.folder=shop", "data.source.name=shop"])
    cfg.data.source.data_dir = str(tmp_path / "rb")
    assert hydra.utils.instantiate(cfg.data.source).load().n_items == 20

    pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2020-01", periods=40, freq="MS"),
                  "y": np.arange(40.0)}).to_csv(tmp_path / "panel.csv", index=False)
    cfg = compose_cfg(["data=sales-file", f"data.source.path={tmp_path / 'panel.csv'}"])
    assert len(hydra.utils.instantiate(cfg.data.source).load().sales) == 40
