"""Known answers for quarters.analysis.typology and quarters.analysis.classify."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from quarters.analysis.classify import THIN_SPACE, classify, format_number
from quarters.analysis.typology import assign, same_type, typology

approx = pytest.approx


@pytest.fixture
def blobs() -> tuple[pd.DataFrame, np.ndarray]:
    # three tight, well separated groups of different size (60, 40, 20 units):
    #   type 0: dense and small      (density ~ 9000, area ~  20)
    #   type 1: sparse and large     (density ~ 1000, area ~ 200)
    #   type 2: middle density, large share of green (green ~ 60)
    rng = np.random.default_rng(42)
    centres = np.array([[9000.0, 20.0, 10.0], [1000.0, 200.0, 15.0], [5000.0, 90.0, 60.0]])
    spread = np.array([150.0, 3.0, 1.5])
    sizes = [60, 40, 20]
    truth = np.repeat([0, 1, 2], sizes)
    x = centres[truth] + rng.normal(size=(len(truth), 3)) * spread
    perm = rng.permutation(len(truth))
    df = pd.DataFrame(
        x[perm],
        columns=["density", "area", "green"],
        index=[f"q{i:03d}" for i in range(len(truth))],
    )
    return df, truth[perm]


@pytest.mark.parametrize("method", ["kmeans", "agglomerative"])
def test_typology_recovers_blobs(blobs, method):
    df, truth = blobs
    t = typology(df, method=method, k_range=range(2, 7))
    assert t.k == 3
    assert adjusted_rand_score(truth, t.labels.to_numpy(dtype=int)) == 1.0
    assert t.silhouette > 0.8 and max(t.silhouette_by_k, key=t.silhouette_by_k.get) == 3
    # renumbered by size: 0 = the 60 dense units, 1 = the 40 sparse ones, 2 = the 20 green ones
    assert t.profiles["size"].tolist() == [60, 40, 20]
    assert t.centres.loc[0, "density"] == approx(9000, rel=0.01)
    assert t.centres.loc[1, "area"] == approx(200, rel=0.01)
    assert t.centres.loc[2, "green"] == approx(60, rel=0.01)


def test_typology_labels_and_phrases(blobs):
    df, _ = blobs
    phrases = {
        "density": ("hohe Dichte", "geringe Dichte", "high density", "low density"),
        "area": ("große Fläche", "kleine Fläche", "large area", "small area"),
    }
    t = typology(df, k=3, phrases=phrases)
    # centres_z of type 0: density +0.93, area -0.89, green -0.55 -> the two strongest named
    assert t.profiles.loc[0, "label_de"] == "hohe Dichte, kleine Fläche"
    assert t.profiles.loc[0, "label_en"] == "high density, small area"
    # type 2: only green is beyond +-0.5 (+2.21); no phrase given -> default wording
    assert t.profiles.loc[2, "label_de"].startswith("green hoch")
    assert t.profiles.loc[2, "label_en"].startswith("high green")
    assert t.profiles["label_de"].is_unique


def test_same_type_and_assign(blobs):
    df, truth = blobs
    t = typology(df, k=3)
    ref_unit = df.index[0]
    st = same_type(t, ref_unit)
    assert st.dtype == bool
    assert st.to_numpy().tolist() == (truth == truth[0]).tolist()
    # external profile close to the "sparse, large" centre -> type 1
    profile = pd.Series({"density": 1100.0, "area": 190.0, "green": 14.0})
    assert assign(t, profile) == 1
    assert same_type(t, profile).sum() == 40
    assert same_type(t, 1).equals(same_type(t, profile))
    assert same_type(t, t.profiles.loc[2, "label_en"]).sum() == 20
    with pytest.raises(ValueError, match="lacks indicator"):
        assign(t, {"density": 1.0})
    with pytest.raises(ValueError, match="neither a unit id"):
        same_type(t, "nowhere")


def test_typology_missing_and_weights(blobs):
    df, truth = blobs
    df = df.copy()
    df.iloc[0, 1] = np.nan
    t = typology(df, {"density": 1, "area": 1, "green": 1}, k=3)
    assert pd.isna(t.labels.iloc[0]) and t.excluded == {df.index[0]: ["area"]}
    assert not same_type(t, 0).iloc[0]
    ari = adjusted_rand_score(truth[1:], t.labels.iloc[1:].to_numpy(dtype=int))
    assert ari == 1.0
    with pytest.raises(ValueError, match="k must be"):
        typology(df, k=1)
    with pytest.raises(ValueError, match="unknown indicator"):
        typology(df, {"height": 1})


# ---------------------------------------------------------------------------------------------
# classify (mapclassify)
# ---------------------------------------------------------------------------------------------
def test_classify_quantiles_known_series_german():
    # 0.5, 1.5, ..., 9.5; numpy linear percentiles 20/40/60/80/100:
    # 0.5 + 9 * .2 = 2.3, then 4.1, 5.9, 7.7, 9.5 -> two values per class
    s = pd.Series(np.arange(10) + 0.5, index=[f"u{i}" for i in range(10)])
    s["u10"] = np.nan
    c = classify(s, "quantiles", k=5)
    assert c["bins"] == approx([2.3, 4.1, 5.9, 7.7, 9.5])
    assert c["counts"] == [2, 2, 2, 2, 2]
    assert c["classes"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, -1]
    assert c["n_missing"] == 1
    assert c["labels"] == ["0,5 – 2,3", "2,3 – 4,1", "4,1 – 5,9", "5,9 – 7,7", "7,7 – 9,5"]
    en = classify(s, "quantiles", k=5, locale="en")
    assert en["labels"][0] == "0.5 – 2.3"


def test_classify_thousands_and_schemes():
    assert format_number(12345.678, 1, "de") == f"12{THIN_SPACE}345,7"
    assert format_number(12345.678, 1, "en") == "12,345.7"
    assert format_number(-0.01, 1, "de") == "0,0"
    eq = classify(pd.Series([0.0, 1, 3, 5, 7, 10]), "equal_interval", k=5)
    assert eq["bins"] == approx([2, 4, 6, 8, 10])
    assert eq["labels"][0] == "0 – 2"  # integer data -> no decimals
    nb = classify(pd.Series([1, 1.1, 1.2, 5, 5.1, 5.2, 10, 10.1, 10.2]), "natural_breaks", k=3)
    assert nb["bins"] == approx([1.2, 5.2, 10.2])
    assert nb["counts"] == [3, 3, 3]
    big = classify(pd.Series([1000.0, 20000.0, 30000.0, 45000.0]), "quantiles", k=2, digits=0)
    assert big["labels"][1] == f"25{THIN_SPACE}000 – 45{THIN_SPACE}000"


def test_classify_fewer_unique_values_than_k():
    c = classify(pd.Series([1.0, 1.0, 2.0, 2.0, None]), "quantiles", k=5)
    assert c["k"] == 2 and c["bins"] == [1.0, 2.0]
    assert c["classes"].tolist() == [0, 0, 1, 1, -1]
    assert c["counts"] == [2, 2] and c["warnings"]
    empty = classify(pd.Series([np.nan, np.nan]))
    assert empty["k"] == 0 and empty["classes"].tolist() == [-1, -1]
    with pytest.raises(ValueError, match="scheme must be one of"):
        classify(pd.Series([1.0]), "jenks")
