"""Known answers and invariants for quarters.analysis.similarity."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from quarters.analysis.similarity import explain, sensitivity, similarity, standardise

approx = pytest.approx


# ---------------------------------------------------------------------------------------------
# hand-computed tables
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def square() -> pd.DataFrame:
    # x: 2, 4, 2, 4   -> mean 3,  population sd 1  -> z = -1,  1, -1, 1
    # y: 10,10,30,30  -> mean 20, population sd 10 -> z = -1, -1,  1, 1
    # i.e. the four units sit on the corners of a square in z-space; corr(zx, zy) = 0.
    return pd.DataFrame(
        {"x": [2.0, 4.0, 2.0, 4.0], "y": [10.0, 10.0, 30.0, 30.0]}, index=["A", "B", "C", "D"]
    )


@pytest.fixture
def corr8() -> pd.DataFrame:
    # zx = -1 -1 -1 -1  1  1  1  1   (mean 0, population sd 1)
    # zy = -1 -1 -1  1  1  1  1 -1   (mean 0, population sd 1)
    # cov(zx, zy) = mean(zx*zy) = (1+1+1-1+1+1+1-1)/8 = 0.5 -> S = [[1, .5], [.5, 1]]
    # S^-1 = 4/3 [[1, -.5], [-.5, 1]];  with w = (.5, .5):
    # distance^2 = .5 * d' S^-1 d = 2/3 (dx^2 - dx dy + dy^2)
    # contrib_x = 2/3 dx (dx - dy/2),  contrib_y = 2/3 dy (dy - dx/2)
    zx = np.array([-1, -1, -1, -1, 1, 1, 1, 1], dtype=float)
    zy = np.array([-1, -1, -1, 1, 1, 1, 1, -1], dtype=float)
    return pd.DataFrame({"x": 10 + 5 * zx, "y": 100 + 20 * zy}, index=[f"u{i}" for i in range(8)])


@pytest.fixture
def outlier() -> pd.DataFrame:
    # x: 1, 1, 4, 2, 100 (E is an outlier); y: 0, 2, 0, 1, 1
    return pd.DataFrame(
        {"x": [1.0, 1.0, 4.0, 2.0, 100.0], "y": [0.0, 2.0, 0.0, 1.0, 1.0]},
        index=list("ABCDE"),
    )


def _random(n: int = 300, k: int = 4, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = [f"i{j}" for j in range(k)]
    x = rng.normal(size=(n, k)) @ rng.normal(size=(k, k))  # correlated indicators
    return pd.DataFrame(x, index=[f"u{i}" for i in range(n)], columns=cols)


def test_square_unit_reference(square):
    # weights x:3, y:1 -> normalised .75/.25; reference A = (-1, -1)
    # B: d = (2, 0)  -> d2 = .75*4 = 3       -> distance sqrt(3)
    # C: d = (0, 2)  -> d2 = .25*4 = 1       -> distance 1
    # D: d = (2, 2)  -> d2 = .75*4 + .25*4   -> distance 2
    # score = 100 (1 - d/2): A 100, C 50, B 100 (1 - sqrt(3)/2) = 13.397..., D 0
    r = similarity(square, "A", {"x": 3, "y": 1})
    rk = r.ranking
    assert list(rk.index) == ["A", "C", "B", "D"]
    assert list(rk["rank"]) == [1, 2, 3, 4]
    assert rk["distance"].tolist() == approx([0, 1, math.sqrt(3), 2])
    assert rk["score"].tolist() == approx([100, 50, 100 * (1 - math.sqrt(3) / 2), 0])
    assert rk.loc["B", ["contrib_x", "contrib_y"]].tolist() == approx([3, 0])
    assert rk.loc["C", ["contrib_x", "contrib_y"]].tolist() == approx([0, 1])
    assert rk.loc["D", ["diff_x", "diff_y"]].tolist() == approx([2, 2])
    assert r.weights.to_dict() == approx({"x": 0.75, "y": 0.25})
    assert r.center.to_dict() == approx({"x": 3, "y": 20})
    assert r.scale.to_dict() == approx({"x": 1, "y": 10})
    assert r.standardised.loc["B"].tolist() == approx([1, -1])
    assert r.excluded == {} and r.warnings == []


def test_square_external_reference_and_mahalanobis_equals_euclidean(square):
    # profile x=3.5, y=25 -> z = (.5, .5); w = (.75, .25)
    # D (1,1):   d = (.5, .5)   -> .1875 + .0625 = .25  -> .5
    # B (1,-1):  d = (.5,-1.5)  -> .1875 + .5625 = .75  -> .8660
    # C (-1,1):  d = (-1.5,.5)  -> 1.6875 + .0625 = 1.75 -> 1.3229
    # A (-1,-1): d = (-1.5,-1.5)-> 2.25                 -> 1.5
    ref = pd.Series({"x": 3.5, "y": 25.0})
    for metric in ("euclidean", "mahalanobis"):  # corr = 0, so S = I and both agree
        r = similarity(square, ref, {"x": 3, "y": 1}, metric=metric)
        assert list(r.ranking.index) == ["D", "B", "C", "A"]
        expected = [0.5, math.sqrt(0.75), math.sqrt(1.75), 1.5]
        assert r.ranking["distance"].tolist() == approx(expected)
        assert r.ranking["score"].tolist() == approx([100 * (1 - d / 1.5) for d in expected])
        assert r.reference_id is None
        assert r.reference_standardised.tolist() == approx([0.5, 0.5])


def test_mahalanobis_hand_computed(corr8):
    r = similarity(corr8, "u0", metric="mahalanobis")
    rk = r.ranking
    # u1, u2 equal u0 -> distance 0, tied rank 1, the reference first
    assert list(rk.index[:3]) == ["u0", "u1", "u2"]
    assert rk["rank"].tolist() == [1, 1, 1, 4, 4, 4, 4, 4]
    # all other units: 2/3 * 4 = 8/3 (Euclidean would give 2 for u3, u7 and 4 for u4..u6)
    assert rk["distance"].iloc[3:].tolist() == approx([math.sqrt(8 / 3)] * 5)
    # u3: d = (0, 2) -> contrib (0, 8/3); u4: d = (2, 2) -> (4/3, 4/3); u7: d = (2, 0) -> (8/3, 0)
    assert rk.loc["u3", ["contrib_x", "contrib_y"]].tolist() == approx([0, 8 / 3], abs=1e-12)
    assert rk.loc["u4", ["contrib_x", "contrib_y"]].tolist() == approx([4 / 3, 4 / 3])
    assert rk.loc["u7", ["contrib_x", "contrib_y"]].tolist() == approx([8 / 3, 0], abs=1e-12)
    e = similarity(corr8, "u0")
    assert e.ranking.loc[["u3", "u4", "u7"], "distance"].tolist() == approx([2**0.5, 2, 2**0.5])


def test_mahalanobis_negative_contribution(corr8):
    # profile z = (.5, -1) -> x = 12.5, y = 80; unit u4 z = (1, 1): d = (.5, 2)
    # contrib_x = 2/3 * .5 * (.5 - 1) = -1/6;  contrib_y = 2/3 * 2 * (2 - .25) = 7/3
    # distance^2 = 2/3 (.25 - 1 + 4) = 13/6 = -1/6 + 7/3
    r = similarity(corr8, {"x": 12.5, "y": 80.0}, metric="mahalanobis")
    row = r.ranking.loc["u4"]
    assert row["contrib_x"] == approx(-1 / 6)
    assert row["contrib_y"] == approx(7 / 3)
    assert row["distance"] == approx(math.sqrt(13 / 6))


def test_robust_vs_zscore_with_outlier(outlier):
    # zscore: x mean 21.6, sd 39.215 (inflated by E); y mean .8, sd .7483
    #   C: dx=3 -> z .0765          -> d = sqrt(.5 * .00585)          = .0541
    #   D: dx=1, dy=1 -> .0255, 1.3363 -> d = sqrt(.5 * 1.78636)      = .9451
    #   B: dy=2 -> 2.6726           -> d = sqrt(.5 * 7.14286)         = 1.8898
    #   E: dx=99, dy=1 -> 2.5245, 1.3363 -> d = sqrt(.5 * 8.15895)    = 2.0198
    #   order A, C, D, B, E
    # robust: x median 2, MAD 1 -> scale 1.4826; y median 1, MAD 1 -> scale 1.4826
    #   D: (1, 1)/1.4826 -> d = .6745;  B: (0, 2)/1.4826 -> d = .9539
    #   C: (3, 0)/1.4826 -> d = 1.4308; E: dx 99/1.4826 -> d = 47.2
    #   order A, D, B, C, E  (the outlier no longer hides the difference in x)
    z = similarity(outlier, "A", method="zscore")
    assert list(z.ranking.index) == ["A", "C", "D", "B", "E"]
    assert z.ranking["distance"].tolist() == approx(
        [0, 0.054094, 0.945083, 1.889822, 2.019771], rel=1e-5
    )
    rob = similarity(outlier, "A", method="robust")
    assert list(rob.ranking.index) == ["A", "D", "B", "C", "E"]
    assert rob.center.tolist() == approx([2, 1])
    assert rob.scale.tolist() == approx([1.4826, 1.4826])
    s = 1.4826
    expected = [0, math.sqrt(0.5 * 2 / s**2), math.sqrt(0.5 * 4 / s**2), math.sqrt(0.5 * 9 / s**2)]
    assert rob.ranking["distance"].iloc[:4].tolist() == approx(expected)


# ---------------------------------------------------------------------------------------------
# invariants
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("metric", ["euclidean", "mahalanobis"])
@pytest.mark.parametrize("method", ["zscore", "robust"])
def test_unit_most_similar_to_itself(method, metric):
    v = _random()
    r = similarity(v, "u17", method=method, metric=metric)
    first = r.ranking.iloc[0]
    assert r.ranking.index[0] == "u17"
    assert (first["rank"], first["distance"], first["score"]) == (1, 0.0, 100.0)
    assert r.ranking["distance"].is_monotonic_increasing
    assert r.ranking["score"].is_monotonic_decreasing
    assert r.ranking["score"].min() == approx(0)


@pytest.mark.parametrize("metric", ["euclidean", "mahalanobis"])
def test_zero_weight_does_not_change_ranking(metric):
    v = _random()
    w = {"i0": 1.0, "i1": 2.0, "i2": 0.5}
    base = similarity(v, "u3", w, metric=metric)
    v2 = v.copy()
    v2["i3"] = np.where(np.arange(len(v)) % 7 == 0, np.nan, v2["i3"] * 1e6)  # NaNs, huge values
    r = similarity(v2, "u3", {**w, "i3": 0.0}, metric=metric)
    assert list(r.ranking.index) == list(base.ranking.index)
    assert r.ranking["distance"].to_numpy() == approx(base.ranking["distance"].to_numpy())
    assert "i3" not in r.indicators and r.excluded == {}


@pytest.mark.parametrize("metric", ["euclidean", "mahalanobis"])
@pytest.mark.parametrize("method", ["zscore", "robust"])
def test_affine_rescaling_does_not_change_ranking(method, metric):
    v = _random()
    v2 = v * [3.0, 0.01, 1000.0, 7.0] + [5.0, -7.0, 1e4, 0.0]
    ref_profile = v.loc["u9"] * 1.1
    ref_profile2 = ref_profile * [3.0, 0.01, 1000.0, 7.0] + [5.0, -7.0, 1e4, 0.0]
    for ref, ref2 in (("u5", "u5"), (ref_profile, ref_profile2)):
        a = similarity(v, ref, {"i0": 1, "i1": 2, "i2": 3, "i3": 1}, method=method, metric=metric)
        b = similarity(v2, ref2, {"i0": 1, "i1": 2, "i2": 3, "i3": 1}, method=method, metric=metric)
        assert list(a.ranking.index) == list(b.ranking.index)
        assert b.ranking["distance"].to_numpy() == approx(a.ranking["distance"].to_numpy())


@pytest.mark.parametrize("metric", ["euclidean", "mahalanobis"])
@pytest.mark.parametrize("method", ["zscore", "robust"])
def test_contributions_sum_to_distance_squared(method, metric):
    v = _random()
    r = similarity(
        v, v.loc["u1"] + 0.3, {"i0": 4, "i1": 1, "i2": 1, "i3": 2}, method=method, metric=metric
    )
    contrib = r.ranking.filter(like="contrib_").sum(axis=1)
    assert contrib.to_numpy() == approx(r.ranking["distance"].to_numpy() ** 2, rel=1e-10)
    if metric == "euclidean":
        assert (r.ranking.filter(like="contrib_") >= 0).all().all()


# ---------------------------------------------------------------------------------------------
# missing values, zero spread, errors
# ---------------------------------------------------------------------------------------------
def test_candidate_missing_is_excluded(square):
    v = square.copy()
    v.loc["B", "y"] = np.nan
    r = similarity(v, "A")
    assert r.excluded == {"B": ["y"]}
    assert "B" not in r.ranking.index
    assert any(w.code == "units_excluded" for w in r.warnings)
    # stats come from the ranked candidates A, C, D: x = 2, 2, 4
    assert r.center["x"] == approx(8 / 3)


def test_reference_missing_indicator_is_dropped(square):
    v = square.copy()
    v.loc["A", "y"] = np.nan
    r = similarity(v, "A")
    assert r.indicators == ["x"] and r.dropped == ["y"]
    assert "contrib_y" not in r.ranking.columns
    assert {"code": "reference_missing_indicator", "params": {"indicator": "y"}} in r.warnings
    assert r.weights.to_dict() == {"x": 1.0}
    # external profile with a missing indicator behaves the same
    r2 = similarity(square, pd.Series({"x": 3.0}))
    assert r2.indicators == ["x"] and any(w.code == "reference_missing_indicator" for w in r2.warnings)


def test_skip_pairwise(square):
    v = square.copy()
    v.loc["B", "y"] = np.nan
    r = similarity(v, "A", {"x": 3, "y": 1}, missing="skip_pairwise")
    assert r.excluded == {}
    row = r.ranking.loc["B"]
    # B compared on x only (weight renormalised to 1); x stats over A..D: mean 3, sd 1
    assert row["n_indicators"] == 1
    assert math.isnan(row["contrib_y"]) and math.isnan(row["diff_y"])
    assert row["distance"] == approx(2.0)
    assert any(w.code == "units_fewer_indicators" for w in r.warnings)
    with pytest.raises(ValueError, match="skip_pairwise"):
        similarity(v, "A", missing="skip_pairwise", metric="mahalanobis")


@pytest.mark.parametrize("method", ["zscore", "robust"])
def test_zero_spread_indicator_contributes_zero(method):
    v = _random(n=50)
    v["const"] = 5.0
    if method == "robust":  # MAD 0 although not constant: more than half identical
        v["const"] = np.where(np.arange(50) < 40, 5.0, np.arange(50.0))
    r = similarity(v, "u0", method=method)
    assert "const" in r.zero_spread
    assert {"code": "zero_spread", "params": {"indicator": "const"}} in r.warnings
    assert (r.ranking["contrib_const"] == 0).all()
    base = similarity(v.drop(columns="const"), "u0", method=method)
    assert list(r.ranking.index) == list(base.ranking.index)


def test_standardise_zscore_and_robust():
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0, np.nan]})
    z, c, s, zero = standardise(df)
    assert c["a"] == approx(2) and s["a"] == approx(math.sqrt(2 / 3)) and zero == []
    assert np.isnan(z.loc[3, "a"])
    z, c, s, _ = standardise(df, "robust")
    assert c["a"] == approx(2) and s["a"] == approx(1.4826)


def test_errors_name_what_was_received(square):
    with pytest.raises(ValueError, match=r"unknown indicator.*'nope'"):
        similarity(square, "A", {"x": 1, "nope": 1})
    with pytest.raises(ValueError, match=r"negative.*'x': -1"):
        similarity(square, "A", {"x": -1, "y": 1})
    with pytest.raises(ValueError, match="'Z' not found"):
        similarity(square, "Z")
    with pytest.raises(ValueError, match="all weights are 0"):
        similarity(square, "A", {"x": 0, "y": 0})
    with pytest.raises(ValueError, match="method must be one of"):
        similarity(square, "A", method="minmax")
    with pytest.raises(ValueError, match="metric must be one of"):
        similarity(square, "A", metric="cosine")
    v = square.copy()
    v.loc[["B", "C", "D"], "y"] = np.nan
    with pytest.raises(ValueError, match="fewer than 2 candidates"):
        similarity(v, pd.Series({"x": 1.0, "y": 1.0}))
    with pytest.raises(ValueError, match="none of the indicators"):
        similarity(square, pd.Series({"q": 1.0}))


# ---------------------------------------------------------------------------------------------
# explain, sensitivity
# ---------------------------------------------------------------------------------------------
def test_explain_square(square):
    r = similarity(square, "A", {"x": 3, "y": 1})
    e = explain(r, "B", top=1)
    assert e["rank"] == 3 and e["distance"] == approx(math.sqrt(3))
    (same,) = e["most_similar"]
    (diff,) = e["least_similar"]
    assert same["indicator"] == "y" and same["direction"] == "equal"
    assert same["contribution"] == approx(0) and same["value"] == 10 == same["reference_value"]
    assert diff["indicator"] == "x" and diff["direction"] == "higher"
    assert (diff["value"], diff["reference_value"]) == (4.0, 2.0)
    assert diff["diff"] == approx(2) and diff["share"] == approx(1)
    assert diff["text_de"] == "x: 2,00 Standardabweichungen über der Referenz"
    assert diff["text_en"] == "x: 2.00 SD higher than the reference"
    v = square.copy()
    v.loc["C", "x"] = np.nan
    with pytest.raises(ValueError, match="excluded.*'x'"):
        explain(similarity(v, "A"), "C")


@pytest.mark.parametrize("metric", ["euclidean", "mahalanobis"])
def test_sensitivity_spread_zero_is_perfectly_stable(metric):
    v = _random(n=500)
    s = sensitivity(
        v, "u0", {"i0": 1, "i1": 2, "i2": 3, "i3": 4}, n=20, spread=0.0, top=10, metric=metric
    )
    assert s.stability == 1.0
    assert (s.table["share_in_top"] == 1.0).all()
    assert s.table["rank_min"].tolist() == s.table["rank_max"].tolist() == list(range(1, 11))
    assert "u0" not in s.table.index and s.reference_left_out
    # the top-10 agrees with the plain ranking (which has the reference at rank 1)
    r = similarity(v, "u0", {"i0": 1, "i1": 2, "i2": 3, "i3": 4}, metric=metric)
    assert list(s.table.index) == list(r.ranking.index[1:11])


def test_sensitivity_perturbed():
    v = _random(n=500)
    s = sensitivity(v, "u0", n=100, spread=0.5, top=10, seed=3)
    assert 0 < s.stability <= 1
    assert len(s.jaccard) == 100
    assert ((s.table["share_in_top"] >= 0) & (s.table["share_in_top"] <= 1)).all()
    assert (s.table["rank_min"] <= s.table["base_rank"]).all()
    assert (s.table["base_rank"] <= s.table["rank_max"]).all()
    again = sensitivity(v, "u0", n=100, spread=0.5, top=10, seed=3)
    assert again.stability == s.stability
    with pytest.raises(ValueError, match="spread"):
        sensitivity(v, "u0", spread=1.5)
