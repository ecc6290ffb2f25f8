"""Recommendation dataset loaders on the real files in shared/data and on MovieLens files in their formats."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import hydra
import numpy as np
import pandas as pd
import pytest
import scipy.io
from omegaconf import DictConfig, OmegaConf

from conftest import SHARED_DATA
from ecomlab.data.bundle import DatasetBundle, DataValidationError, DataWarning
from ecomlab.data.preprocess import Preprocess
from ecomlab.data.sources.amazon import AmazonFiveCore
from ecomlab.data.sources.ciao import CiaoTang
from ecomlab.data.sources.lastfm import LastFMHetRec
from ecomlab.data.sources.movielens import MovieLensFiles
from ecomlab.data.splits import LeaveOneOutSplit, TemporalSplit, split_bundle

LASTFM = SHARED_DATA / "lastfm-hetrec2011"
CIAO = SHARED_DATA / "ciao-tang2012"
EPINIONS = SHARED_DATA / "epinions-tang2012"
AMAZON = SHARED_DATA / "amazon-office-5core"


def _need(folder: Path, *files: str) -> None:
    for name in files:
        if not (folder / name).is_file():
            pytest.skip(f"{folder / name} is not available")


def _text_of(bundle: DatasetBundle, raw_item: object) -> str:
    return bundle.texts()[int(bundle.item_map.to_index([raw_item])[0])]


@pytest.fixture(scope="module")
def lastfm() -> DatasetBundle:
    _need(LASTFM, "user_artists.dat", "user_friends.dat", "artists.dat", "tags.dat", "user_taggedartists.dat")
    return LastFMHetRec(str(SHARED_DATA)).load()


@pytest.fixture(scope="module")
def ciao() -> DatasetBundle:
    _need(CIAO, "ratings.csv", "trust.csv", "categories.csv")
    with pytest.warns(DataWarning, match="duplicate"):
        return CiaoTang(str(SHARED_DATA)).load()


@pytest.fixture(scope="module")
def amazon() -> DatasetBundle:
    _need(AMAZON, "interactions.csv", "items.csv")
    return AmazonFiveCore(str(SHARED_DATA)).load()


# --------------------------------------------------------------------------- LastFM


def test_lastfm_counts_match_the_original_readme(lastfm: DatasetBundle) -> None:
    assert (lastfm.n_users, lastfm.n_items, len(lastfm.interactions)) == (1892, 17632, 92834)
    assert not lastfm.has_timestamps
    assert lastfm.name == "lastfm-hetrec2011"
    raw = pd.read_csv(LASTFM / "user_artists.dat", sep="\t")
    # weight = listening count, row for row (first line of the file: user 2, artist 51, 13883 plays)
    first = lastfm.interactions.iloc[0]
    assert lastfm.user_map.to_raw([first["user_id"]])[0] == raw["userID"][0]
    assert lastfm.item_map.to_raw([first["item_id"]])[0] == raw["artistID"][0]
    assert first["weight"] == raw["weight"][0] == 13883
    assert lastfm.interactions["weight"].sum() == raw["weight"].sum()


def test_lastfm_friend_graph_is_undirected_without_duplicates(lastfm: DatasetBundle) -> None:
    social = lastfm.social
    assert social is not None and len(social) == 25434  # 12,717 friendships, each in both directions
    pairs = set(zip(social["user_id"].tolist(), social["friend_id"].tolist(), strict=True))
    assert len(pairs) == len(social)
    assert pairs == {(b, a) for a, b in pairs}
    assert not (social["user_id"] == social["friend_id"]).any()
    assert lastfm.meta["friendships"] == 12717


def test_lastfm_one_sided_friend_rows_are_completed(tmp_path: Path) -> None:
    _need(LASTFM, "user_artists.dat", "artists.dat", "tags.dat", "user_taggedartists.dat")
    folder = tmp_path / "lastfm-hetrec2011"
    folder.mkdir()
    for name in ("user_artists.dat", "artists.dat", "tags.dat", "user_taggedartists.dat"):
        (folder / name).symlink_to(LASTFM / name)
    # one direction only, a repeated row and a self-loop
    (folder / "user_friends.dat").write_text("userID\tfriendID\n2\t3\n2\t3\n4\t4\n4\t4\n")
    bundle = LastFMHetRec(str(tmp_path)).load()
    social = bundle.social
    assert social is not None
    raw = {(int(bundle.user_map.raw[u]), int(bundle.user_map.raw[f]))
           for u, f in zip(social["user_id"], social["friend_id"], strict=True)}
    assert raw == {(2, 3), (3, 2)}
    assert bundle.meta["friend_edges_added_for_symmetry"] == 1
    assert (bundle.meta["friend_rows_duplicate"], bundle.meta["friend_self_loops"]) == (1, 2)


def test_lastfm_item_text_has_names_and_latin1_tags(lastfm: DatasetBundle) -> None:
    # Jean-Louis Aubert (artist 7215) is tagged "rock français", Chay Suede (5750) "tropicália": tags.dat
    # is ISO-8859-1, so a wrong decoding would show "fran\xe7ais" or mojibake here
    assert "rock français" in _text_of(lastfm, 7215).split(": ", 1)[1].split(", ")
    assert _text_of(lastfm, 7215).startswith("Jean-Louis Aubert: ")
    assert "tropicália" in _text_of(lastfm, 5750)
    assert _text_of(lastfm, 4155).startswith("Die Ärzte: ")  # UTF-8 artist name
    assert _text_of(lastfm, 707).startswith("Metallica: ")
    text = lastfm.item_text
    assert text is not None and len(text) == 17632
    untagged = text[text["tags"] == ""]
    assert len(untagged) == 17632 - lastfm.meta["artists_with_tags"] > 0
    assert (untagged["text"] == untagged["name"]).all()
    # no tag shows UTF-8-read-as-latin-1 mojibake (artists.dat itself has one such name upstream,
    # "BallakÃ© Sissoko", kept byte-for-byte)
    assert not text["tags"].str.contains("Ã").any()
    assert lastfm.meta["tag_assignments"] == 186479


def test_lastfm_max_tags_keeps_the_most_used(lastfm: DatasetBundle) -> None:
    few = LastFMHetRec(str(SHARED_DATA), max_tags=2).load()
    full_tags = _text_of(lastfm, 707).split(": ", 1)[1].split(", ")
    assert _text_of(few, 707) == "Metallica: " + ", ".join(full_tags[:2])
    assert LastFMHetRec(str(SHARED_DATA), max_tags=2).cache_key()["max_tags"] == 2


def test_lastfm_wrong_tag_encoding_is_a_clear_error(tmp_path: Path) -> None:
    _need(LASTFM, "user_artists.dat", "user_friends.dat", "artists.dat", "tags.dat", "user_taggedartists.dat")
    with pytest.raises(DataValidationError, match=r"tags\.dat: not valid UTF-8"):
        LastFMHetRec(str(SHARED_DATA), tags_encoding="utf-8").load()
    # a UTF-8 re-encoded copy would silently load as mojibake under latin-1; it is refused instead
    folder = tmp_path / "lastfm-hetrec2011"
    folder.mkdir()
    for name in ("user_artists.dat", "user_friends.dat", "artists.dat", "user_taggedartists.dat"):
        (folder / name).symlink_to(LASTFM / name)
    (folder / "tags.dat").write_bytes((LASTFM / "tags.dat").read_bytes().decode("latin-1").encode("utf-8"))
    with pytest.raises(DataValidationError, match=r"tags\.dat: looks UTF-8 encoded"):
        LastFMHetRec(str(tmp_path)).load()
    converted = LastFMHetRec(str(tmp_path), tags_encoding="utf-8").load()
    assert "rock français" in _text_of(converted, 7215)


def test_lastfm_missing_file_names_path_and_hint(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"lastfm-hetrec2011/user_artists\.dat: file not found.*"
                                                  r"paths\.data_dir"):
        LastFMHetRec(str(tmp_path)).load()


def test_lastfm_cache_key_lists_every_file() -> None:
    key = LastFMHetRec("/data")
    files = key.cache_key()["files"]
    assert [Path(f).name for f in files] == ["user_artists.dat", "user_friends.dat", "artists.dat", "tags.dat",
                                             "user_taggedartists.dat"]
    assert all(Path(f).is_absolute() for f in files)


# --------------------------------------------------------------------------- Ciao / Epinions


def test_ciao_counts_are_consistent_with_its_readme(ciao: DatasetBundle) -> None:
    raw = pd.read_csv(CIAO / "ratings.csv")
    assert len(raw) == ciao.meta["n_rating_rows_raw"] == 284086
    assert (ciao.n_users, ciao.n_items) == (7375, 105114)
    # the contract drops repeated (user, product, timestamp) rows and counts them
    repeated = int(raw.duplicated(["user_id", "product_id", "timestamp"]).sum())
    assert ciao.meta["warnings"]["duplicate_interactions"] == repeated
    assert len(ciao.interactions) == 284086 - repeated
    assert ciao.has_timestamps
    ts = pd.to_datetime(ciao.interactions["timestamp"], unit="s")
    assert ts.min().strftime("%Y-%m-%d") == "2000-05-30" and ts.max().strftime("%Y-%m-%d") == "2011-04-12"
    assert ciao.meta["rating_counts"]["0"] == 34
    assert set(np.unique(ciao.interactions["weight"])) == {0.0, 1.0, 2.0, 3.0, 4.0, 5.0}


def test_ciao_trust_is_directed_and_kept_as_given(ciao: DatasetBundle) -> None:
    social = ciao.social
    assert social is not None and len(social) == 111781
    assert len(np.union1d(social["user_id"], social["friend_id"])) == 7317
    pairs = set(zip(social["user_id"].tolist(), social["friend_id"].tolist(), strict=True))
    one_way = [(a, b) for a, b in pairs if (b, a) not in pairs]
    assert 0 < len(one_way) < len(pairs)
    # the first row of trust.csv: user 1 trusts user 2
    first = ciao.social.iloc[0]
    assert ciao.user_map.to_raw([first["user_id"], first["friend_id"]]).tolist() == [1, 2]


def test_ciao_item_text_is_the_category_name(ciao: DatasetBundle) -> None:
    raw = pd.read_csv(CIAO / "ratings.csv", nrows=1)  # product 92579, category 24 = Games
    assert _text_of(ciao, int(raw["product_id"][0])) == "Games"
    text = ciao.item_text
    assert text is not None and len(text) == ciao.n_items
    assert set(text["category_id"]) <= set(range(1, 29))
    several = text["text"].str.contains(", ")
    assert several.sum() == ciao.meta["products_with_several_categories"] > 0


def _small_ciao(folder: Path, with_timestamps: bool) -> None:
    folder.mkdir(parents=True)
    ratings = pd.read_csv(CIAO / "ratings.csv", nrows=60)
    if not with_timestamps:
        ratings = ratings.drop(columns="timestamp")
    ratings.to_csv(folder / "ratings.csv", index=False)
    users = list(ratings["user_id"].unique())
    pd.DataFrame({"truster_id": users[:4], "trustee_id": users[1:5]}).to_csv(folder / "trust.csv", index=False)
    (folder / "categories.csv").write_bytes((CIAO / "categories.csv").read_bytes())


def test_epinions_layout_without_timestamps(tmp_path: Path) -> None:
    _need(CIAO, "ratings.csv", "categories.csv")
    _small_ciao(tmp_path / "epinions", with_timestamps=False)
    _small_ciao(tmp_path / "ciao", with_timestamps=True)
    plain = CiaoTang(str(tmp_path), folder="epinions").load()
    timed = CiaoTang(str(tmp_path), folder="ciao").load()
    assert not plain.has_timestamps and timed.has_timestamps
    assert "no 'timestamp' column" in plain.meta["timestamps"]
    assert (plain.interactions["timestamp"] == 0).all()
    assert plain.n_users == timed.n_users and plain.n_items == timed.n_items
    assert np.array_equal(plain.interactions["weight"], timed.interactions["weight"])
    assert plain.social is not None and len(plain.social) == 4
    with pytest.raises(DataValidationError, match="needs timestamps"):
        split_bundle(TemporalSplit(ratios=(0.8, 0.1, 0.1)), plain)


def test_ciao_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"ciao-tang2012/ratings\.csv: file not found.*paths\.data_dir"):
        CiaoTang(str(tmp_path)).load()
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "ratings.csv").write_text("user_id,product_id,category_id,rating,helpfulness\n1,2,3,4,1\n1,3,99,x,1\n")
    (folder / "trust.csv").write_text("truster_id,trustee_id\n1,1\n")
    (folder / "categories.csv").write_text("category_id,category_name\n3,Books\n")
    with pytest.raises(DataValidationError, match=r"ratings\.csv.*category_id value\(s\) \[99\].*categories\.csv"):
        CiaoTang(str(tmp_path), folder="c").load()
    with pytest.raises(DataValidationError, match=r"ratings\.csv: column 'weight'.*first rows \[1\]"):
        CiaoTang(str(tmp_path), folder="c", categories=None).load()
    (folder / "trust.csv").write_text("from,to\n1,2\n")
    with pytest.raises(DataValidationError, match=r"trust\.csv: missing column"):
        CiaoTang(str(tmp_path), folder="c", categories=None).load()


def test_ciao_cache_key_lists_every_file() -> None:
    assert [Path(f).name for f in CiaoTang("/d").cache_key()["files"]] == ["ratings.csv", "trust.csv",
                                                                           "categories.csv"]
    assert [Path(f).name for f in CiaoTang("/d", categories=None).cache_key()["files"]] == ["ratings.csv",
                                                                                           "trust.csv"]


def test_epinions_reads_the_shipped_mat_files() -> None:
    """data=epinions-tang2012's files as shipped (no CSV conversion); every row kept for the duplicate policy."""
    _need(EPINIONS, "rating.mat", "trustnetwork.mat", "catalog_epinion.txt")
    cfg = OmegaConf.load(Path(__file__).parents[1] / "configs" / "data" / "epinions-tang2012.yaml").source
    bundle = hydra.utils.instantiate(cfg, data_dir=str(SHARED_DATA)).load()
    assert bundle.name == "epinions-tang2012"
    assert (bundle.n_users, bundle.n_items, len(bundle.interactions)) == (22164, 296277, 922267)
    assert not bundle.has_timestamps and bundle.meta["repeated_pairs_without_timestamps"] == 9826
    assert bundle.meta["columns"]["ratings"] == ["user_id", "product_id", "category_id", "rating"]
    assert bundle.meta["n_trust_rows_raw"] == 355754
    assert bundle.meta["warnings"]["social_self_loops"] == 224
    assert bundle.item_text is not None and bundle.meta["n_categories"] == 27
    merged = Preprocess(duplicates="keep_last")(bundle)
    assert len(merged.interactions) == 912441 and merged.meta["preprocess"]["steps"]["duplicates_merged"] == 9826


def _mat_release(folder: Path, rating: list[list[int]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(folder / "rating.mat", {"rating": np.array(rating, dtype=np.int32)})
    scipy.io.savemat(folder / "trustnetwork.mat", {"trustnetwork": np.array([[1, 2], [3, 1]], dtype=np.uint16)})
    (folder / "catalog.txt").write_bytes(b"1 Books\r\n2 Online Stores & Services\r\n")


def test_keep_last_without_timestamps_keeps_the_last_row_in_file_order(tmp_path: Path) -> None:
    # user 1 rates product 10 three times (2, 5, then 4); all timestamps would be 0
    _mat_release(tmp_path / "e", [[1, 10, 1, 2], [2, 10, 1, 3], [1, 10, 1, 5], [3, 11, 2, 1], [1, 10, 1, 4]])
    source = CiaoTang(str(tmp_path), folder="e", ratings="rating.mat", trust="trustnetwork.mat",
                      categories="catalog.txt")
    bundle = source.load()
    assert len(bundle.interactions) == 5 and bundle.meta["repeated_pairs_without_timestamps"] == 2
    assert _text_of(bundle, 11) == "Online Stores & Services"
    assert bundle.social is not None and len(bundle.social) == 2
    last = Preprocess(duplicates="keep_last")(bundle)
    assert last.meta["preprocess"]["steps"]["duplicates_merged"] == 2
    raw = last.user_map.to_raw(last.interactions["user_id"]), last.item_map.to_raw(last.interactions["item_id"])
    kept = dict(zip(zip(*raw, strict=True), last.interactions["weight"], strict=True))
    assert kept == {(1, 10): 4.0, (2, 10): 3.0, (3, 11): 1.0}  # the last of 2, 5, 4
    summed = Preprocess(duplicates="sum")(bundle)
    assert sorted(summed.interactions["weight"]) == [1.0, 3.0, 11.0]
    assert len(Preprocess()(bundle).interactions) == 5  # keep_all keeps them all
    with pytest.raises(DataValidationError, match="duplicate"):
        from ecomlab.data.bundle import ValidationPolicy, build_bundle
        build_bundle("e", bundle.interactions.drop(columns="timestamp"), policy=ValidationPolicy(duplicates="error"))


def test_mat_release_bad_inputs(tmp_path: Path) -> None:
    folder = tmp_path / "e"
    _mat_release(folder, [[1, 10, 1, 2]])
    source = CiaoTang(str(tmp_path), folder="e", ratings="rating.mat", trust="trustnetwork.mat",
                      categories="catalog.txt")
    (folder / "rating.mat").write_bytes(b"not a MATLAB file at all, just text" * 10)
    with pytest.raises(DataValidationError, match=r"e/rating\.mat: not a readable MATLAB file"):
        source.load()
    scipy.io.savemat(folder / "rating.mat", {"rating": np.ones((3, 3))})
    with pytest.raises(DataValidationError, match=r"rating\.mat: expected one numeric variable with 4 or 5 or 6"):
        source.load()
    scipy.io.savemat(folder / "rating.mat", {"rating": np.array([[1, 10, 1, 2.5]])})
    with pytest.raises(DataValidationError, match=r"rating\.mat: variable 'rating' has 1 non-integer.*rows \[0\]"):
        source.load()
    _mat_release(folder, [[1, 10, 1, 2]])
    (folder / "catalog.txt").write_text("1 Books\nBooks\n")
    with pytest.raises(DataValidationError, match=r"catalog\.txt: line 2 is 'Books'"):
        source.load()
    with pytest.raises(DataValidationError, match=r"none/rating\.mat: file not found.*trustnetwork\.mat, catalog_"):
        CiaoTang(str(tmp_path), folder="none", ratings="rating.mat", trust="trustnetwork.mat").load()


# --------------------------------------------------------------------------- Amazon


def test_amazon_counts_match_its_readme(amazon: DatasetBundle) -> None:
    assert (amazon.n_users, amazon.n_items, len(amazon.interactions)) == (4905, 2420, 53258)
    assert amazon.has_timestamps and (amazon.interactions["weight"] == 1.0).all()
    ts = pd.to_datetime(amazon.interactions["timestamp"], unit="s")
    assert ts.min().strftime("%Y-%m-%d") == "2000-09-29" and ts.max().strftime("%Y-%m-%d") == "2014-07-23"
    assert amazon.meta["upstream_split"] == {"train": 43448, "dev": 4905, "test": 4905}


def test_amazon_item_text_and_extra_columns(amazon: DatasetBundle) -> None:
    text = amazon.item_text
    assert text is not None and len(text) == 2420
    assert {"asin", "category_id", "brand_id"} <= set(text.columns)
    assert text["category_id"].nunique() == 40 and text["brand_id"].nunique() == 342
    lengths = text["text"].str.len()
    assert lengths.min() >= 10 and lengths.max() <= 276
    assert _text_of(amazon, 1).startswith("HP 78 Tri-Color Printer Cartridge")
    row = text.loc[text["item_id"] == amazon.item_map.to_index([1])[0]].iloc[0]
    assert row["asin"] == "B0000AG93P" and row["category_id"] == 6 and row["brand_id"] == 2


def test_amazon_leave_one_out_has_the_upstream_sizes(amazon: DatasetBundle) -> None:
    sizes = split_bundle(LeaveOneOutSplit(seed=0), amazon).sizes()
    up = amazon.meta["upstream_split"]
    assert sizes == {"train": up["train"], "val": up["dev"], "test": up["test"]}


def test_amazon_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"amazon-office-5core/interactions\.csv: file not found"):
        AmazonFiveCore(str(tmp_path)).load()
    folder = tmp_path / "a"
    folder.mkdir()
    (folder / "interactions.csv").write_text("user_id,item_id,asin,timestamp,split\n1,1,A,5,train\n1,2,Z,6,test\n")
    (folder / "items.csv").write_text("item_id,asin,text,category_id,brand_id\n1,A,pen,1,1\n2,B,ink,1,1\n")
    with pytest.raises(DataValidationError, match=r"interactions\.csv: 1 row\(s\) whose asin disagrees.*rows \[1\]"):
        AmazonFiveCore(str(tmp_path), folder="a").load()
    assert [Path(f).name for f in AmazonFiveCore("/d").cache_key()["files"]] == ["interactions.csv", "items.csv"]


# --------------------------------------------------------------------------- MovieLens, published layouts

U_DATA = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n196\t1682\t5\t881251000\n"
U_ITEM = (
    "242|Kolya (1996)|24-Jan-1997||http://us.imdb.com/M/title-exact?Kolya%20(1996)"
    "|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    "302|L.A. Confidential (1997)|01-Jan-1997||http://us.imdb.com/M/title-exact?L%2EA%2E+Confidential+(1997)"
    "|0|0|0|0|0|0|1|0|0|0|1|0|0|1|0|0|1|0|0\n"
    "377|Heavyweights (1994)|01-Jan-1994||http://us.imdb.com/M/title-exact?Heavyweights%20(1994)"
    "|0|0|0|0|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    "1682|Café au lait (1993)|01-Jan-1994||http://us.imdb.com/M/title-exact?Gazon%20maudit%20(1995)"
    "|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    "1681|You So Crazy (1994)|01-Jan-1994||http://us.imdb.com/M/title-exact?You%20So%20Crazy%20(1994)"
    "|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
)
RATINGS_DAT = "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n2::73::2::978299000\n"
MOVIES_DAT = (
    "73::Misérables, Les (1995)::Drama|War\n"
    "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
    "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
    "3952::Contender, The (2000)::Drama|Thriller\n"
)
RATINGS_CSV = "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,11,3.5,964982931\n2,114335,0.5,1445714835\n"
MOVIES_CSV = (
    "movieId,title,genres\n"
    "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
    '11,"American President, The (1995)",Comedy|Drama|Romance\n'
    "114335,La cravate (1957),(no genres listed)\n"
    '193609,"Misérables, Les (2019)",Drama\n'
)


def _write_movielens(root: Path, layout: str) -> Path:
    folder = root / {"100k": "ml-100k", "1m": "ml-1m", "latest": "ml-latest-small"}[layout]
    folder.mkdir(parents=True, exist_ok=True)
    if layout == "100k":
        (folder / "u.data").write_text(U_DATA)
        (folder / "u.item").write_bytes(U_ITEM.encode("latin-1"))
    elif layout == "1m":
        (folder / "ratings.dat").write_text(RATINGS_DAT)
        (folder / "movies.dat").write_bytes(MOVIES_DAT.encode("latin-1"))
    else:
        (folder / "ratings.csv").write_text(RATINGS_CSV)
        (folder / "movies.csv").write_bytes(MOVIES_CSV.encode("utf-8"))
    return folder


def test_movielens_100k_layout(tmp_path: Path) -> None:
    folder = _write_movielens(tmp_path, "100k")
    bundle = MovieLensFiles(str(tmp_path), folder.name).load()
    assert bundle.meta["layout"] == "100k" and bundle.has_timestamps
    assert (bundle.n_users, bundle.n_items, len(bundle.interactions)) == (3, 4, 4)
    assert bundle.meta["movies_without_ratings"] == 1  # 1681 is in u.item but unrated
    assert _text_of(bundle, 1682) == "Café au lait (1993) Comedy"
    assert _text_of(bundle, 302) == "L.A. Confidential (1997) Crime Film-Noir Mystery Thriller"
    first = bundle.interactions.iloc[0]
    assert (bundle.user_map.to_raw([first["user_id"]])[0], first["weight"], first["timestamp"]) == (196, 3.0,
                                                                                                    881250949)
    assert bundle.meta["rating_scale"] == [1.0, 5.0]


def test_movielens_1m_layout(tmp_path: Path) -> None:
    folder = _write_movielens(tmp_path, "1m")
    bundle = MovieLensFiles(str(tmp_path), folder.name).load()
    assert bundle.meta["layout"] == "1m"
    assert (bundle.n_users, bundle.n_items, len(bundle.interactions)) == (2, 3, 4)
    assert _text_of(bundle, 73) == "Misérables, Les (1995) Drama War"
    assert _text_of(bundle, 1193) == "One Flew Over the Cuckoo's Nest (1975) Drama"
    genres = bundle.item_text.set_index("item_id")["genres"]  # type: ignore[union-attr]
    assert genres[bundle.item_map.to_index([661])[0]] == "Animation|Children's|Musical"
    assert bundle.interactions["timestamp"].tolist() == [978300760, 978302109, 978298413, 978299000]


def test_movielens_latest_layout(tmp_path: Path) -> None:
    folder = _write_movielens(tmp_path, "latest")
    bundle = MovieLensFiles(str(tmp_path), folder.name).load()
    assert bundle.meta["layout"] == "latest"
    assert (bundle.n_users, bundle.n_items, len(bundle.interactions)) == (2, 3, 3)
    assert _text_of(bundle, 11) == "American President, The (1995) Comedy Drama Romance"
    assert _text_of(bundle, 114335) == "La cravate (1957)"  # "(no genres listed)" is not text
    assert bundle.interactions["weight"].tolist() == [4.0, 3.5, 0.5]
    assert bundle.meta["movies_without_ratings"] == 1


def test_movielens_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"ml-1m: no MovieLens ratings file found.*u\.data.*"
                                                  r"`ecomlab-data download name=ml-1m dest="):
        MovieLensFiles(str(tmp_path), "ml-1m").load()
    with pytest.raises(DataValidationError, match=r"ml-1m/ratings\.dat: file not found.*paths\.data_dir"):
        MovieLensFiles(str(tmp_path), "ml-1m", layout="1m").load()
    with pytest.raises(DataValidationError, match=r"my-ml/u\.data: file not found.*grouplens\.org"):
        MovieLensFiles(str(tmp_path), "my-ml", layout="100k").load()

    folder = _write_movielens(tmp_path, "100k")
    (folder / "u.data").write_text(U_DATA + "5\t6\tfour\t881250950\n")
    with pytest.raises(DataValidationError, match=r"u\.data: column 'rating' has 1 non-numeric.*first rows \[4\]"
                                                  r".*'four'"):
        MovieLensFiles(str(tmp_path), "ml-100k").load()
    (folder / "u.data").write_text(U_DATA)
    with pytest.raises(DataValidationError, match=r"ml-100k/u\.item: not valid UTF-8"):
        MovieLensFiles(str(tmp_path), "ml-100k", encoding="utf-8").load()

    folder = _write_movielens(tmp_path, "1m")
    (folder / "movies.dat").write_bytes(MOVIES_DAT.encode("latin-1"))
    with pytest.raises(DataValidationError, match=r"ml-1m/movies\.dat: not valid UTF-8"):
        MovieLensFiles(str(tmp_path), "ml-1m", encoding="utf-8").load()
    (folder / "ratings.dat").write_text(RATINGS_DAT + "3:1193:5:978300761:9:9:9\n")
    with pytest.raises(DataValidationError, match=r"ratings\.dat: row\(s\) \[4\].*UserID::MovieID"):
        MovieLensFiles(str(tmp_path), "ml-1m").load()
    with pytest.raises(ValueError, match="layout"):
        MovieLensFiles(str(tmp_path), "ml-1m", layout="10k")


def test_movielens_cache_key_lists_the_files_of_its_layout(tmp_path: Path) -> None:
    for layout, names in (("100k", ["u.data", "u.item"]), ("1m", ["ratings.dat", "movies.dat"]),
                          ("latest", ["ratings.csv", "movies.csv"])):
        folder = _write_movielens(tmp_path, layout)
        key = MovieLensFiles(str(tmp_path), folder.name).cache_key()
        assert key["layout"] == layout
        assert key["files"] == [str((folder / n).absolute()) for n in names]


# --------------------------------------------------------------------------- configs

SHARED_CONFIGS = {"lastfm-hetrec2011": (LASTFM, 1892), "ciao-tang2012": (CIAO, 7375),
                  "amazon-office-5core": (AMAZON, 4905)}


@pytest.mark.filterwarnings("ignore::ecomlab.data.bundle.DataWarning")
@pytest.mark.parametrize("name", sorted(SHARED_CONFIGS))
def test_shared_data_configs_compose_and_load(compose_cfg: Callable[..., DictConfig], name: str) -> None:
    folder, n_users = SHARED_CONFIGS[name]
    if not folder.is_dir():
        pytest.skip(f"{folder} is not available")
    cfg = compose_cfg([f"data={name}"])
    assert cfg.data.source.folder == name
    assert cfg.data.preprocess._target_ == "ecomlab.data.preprocess.Preprocess"
    cfg.data.source.data_dir = str(SHARED_DATA)
    source = hydra.utils.instantiate(cfg.data.source)
    assert all(Path(f).is_file() for f in source.cache_key()["files"])
    assert source.load().n_users == n_users


@pytest.mark.parametrize(("name", "layout"), [("ml-100k", "100k"), ("ml-1m", "1m"), ("ml-latest", "latest")])
def test_movielens_configs_compose_and_load(compose_cfg: Callable[..., DictConfig], tmp_path: Path, name: str,
                                            layout: str) -> None:
    cfg = compose_cfg([f"data={name}"])
    assert cfg.data.preprocess.rating_threshold == 4.0
    assert cfg.data.source.folder == name
    # compose_cfg points paths.data_dir at tmp_path/data; the config's folder name is the published one
    written = _write_movielens(tmp_path / "written", layout)
    Path(cfg.data.source.data_dir).mkdir(parents=True, exist_ok=True)
    written.rename(Path(cfg.data.source.data_dir) / name)
    bundle = hydra.utils.instantiate(cfg.data.source).load()
    assert bundle.meta["layout"] == layout and bundle.name == name
