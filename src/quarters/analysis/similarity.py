"""Similarity ranking of spatial units against a reference (transferability analysis).

Pure numpy/pandas; no database, no HTTP.  The question answered is: *which units (quarters,
districts, municipalities) are most like this reference* — either a unit of the same table or an
external profile such as a pilot quarter of Halle (Saale) or Gera.

Rules (stated once, used everywhere in this module)
---------------------------------------------------
Indicators
    The indicators are the columns of ``values`` (default, equal weights) or the keys of
    ``weights``.  Indicators with weight 0 are ignored completely (they are neither standardised
    nor required to be present), so a weight of 0 can never change a ranking.  Weights are
    normalised to sum 1 over the indicators that are finally used.

Missing values (``missing=``)
    * An indicator that is missing (NaN or absent) **for the reference** is dropped, and a
      sentence saying so is added to ``warnings``.  This holds for both options.
    * ``"drop_indicator"`` (default): a **candidate** missing any of the remaining indicators is
      excluded from the ranking and listed in ``excluded`` (unit id -> names of the missing
      indicators).  Nothing is ever imputed or silently set to zero.
    * ``"skip_pairwise"``: a candidate missing some indicators is compared on the indicators it
      has; the weights are re-normalised over those for that candidate (its ``contrib_*`` and
      ``diff_*`` for the missing ones are NaN and ``n_indicators`` says how many were used).
      Candidates missing all indicators are excluded.  Only defined for ``metric="euclidean"``.

Standardisation (``method=``)
    Centre and scale are computed over the ranked candidates (the reference row included when it
    is a unit of the table; an external reference does not influence them).
    ``"zscore"``: mean and population standard deviation (ddof=0: the units are the whole
    population of the region, not a sample).  ``"robust"``: median and 1.4826 x median absolute
    deviation (MAD), which equals the standard deviation for normal data but ignores outliers.
    An indicator with zero spread (constant, or MAD 0 for more than half identical values) cannot
    discriminate: its standardised values are set to 0 (so it contributes 0) and a warning names
    it.  It keeps its share of the weights.

Distance (``metric=``)
    With ``d = z_candidate - z_reference`` and normalised weights ``w``:
    ``"euclidean"``: ``distance² = Σ_i w_i d_i²``; contribution ``contrib_i = w_i d_i²`` (≥ 0).
    ``"mahalanobis"``: ``distance² = u' S⁺ u`` with ``u = W^½ d`` and ``S`` the covariance (ddof=0)
    of the standardised candidate values, ``S⁺`` its Moore-Penrose pseudo-inverse (so zero-spread
    or collinear indicators are handled); ``contrib_i = u_i (S⁺ u)_i``.  These contributions can
    be negative (a difference that is "expected" given a correlated indicator reduces distance).
    In both cases **the contributions sum to distance²** (exactly in algebra, to floating-point
    rounding in practice; distance is ``sqrt(max(Σ contrib, 0))``).

Score
    ``score = 100 · (1 − distance / max distance over the ranked candidates)``: 100 for the
    reference itself (distance 0), 0 for the least similar candidate, linear in between, so it is
    monotone decreasing in distance.  It is relative to the candidate set: do not compare scores
    across runs with different candidates.  If all distances are 0 every score is 100.

Ranks
    ``rank`` 1 = most similar; ties share the smallest rank ("1224" ranking); the reference unit,
    when it is a candidate, is sorted first among units at distance 0.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from quarters.errors import InvalidValue
from quarters.messages import Note

__all__ = [
    "MAD_SCALE",
    "SensitivityResult",
    "SimilarityResult",
    "explain",
    "resolve_weights",
    "sensitivity",
    "similarity",
    "standardise",
]

Method = Literal["zscore", "robust"]
Metric = Literal["euclidean", "mahalanobis"]
Missing = Literal["drop_indicator", "skip_pairwise"]
Reference = Hashable | pd.Series | Mapping[str, float]

MAD_SCALE = 1.4826
_METHODS = ("zscore", "robust")
_METRICS = ("euclidean", "mahalanobis")
_MISSING = ("drop_indicator", "skip_pairwise")


# ----------------------------------------------------------------------------------------------
# result objects
# ----------------------------------------------------------------------------------------------
@dataclass
class SimilarityResult:
    """Outcome of :func:`similarity`.

    Attributes
    ----------
    ranking
        Indexed by unit id, sorted by distance ascending.  Columns ``rank`` (1 = most similar),
        ``distance``, ``score`` (0-100), ``contrib_<indicator>`` (sum = distance²),
        ``diff_<indicator>`` (signed standardised difference candidate − reference) and, for
        ``missing="skip_pairwise"`` only, ``n_indicators``.
    standardised
        Standardised (z) values of the ranked candidates, in the order of ``values``.
    center, scale
        Per-indicator centre and scale used (scale 0 marks a zero-spread indicator).
    weights
        Weights actually used, normalised to sum 1.
    excluded
        Unit id -> list of the indicators it is missing (units left out of the ranking).
    warnings
        Human-readable sentences (dropped indicators, zero spread, exclusions).
    """

    ranking: pd.DataFrame
    standardised: pd.DataFrame
    center: pd.Series
    scale: pd.Series
    weights: pd.Series
    excluded: dict[Hashable, list[str]]
    warnings: list[str]
    method: str
    metric: str
    missing: str
    indicators: list[str]
    reference_id: Hashable | None
    reference_values: pd.Series
    reference_standardised: pd.Series
    values: pd.DataFrame
    zero_spread: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


@dataclass
class SensitivityResult:
    """Outcome of :func:`sensitivity`.

    Attributes
    ----------
    table
        Indexed by the unit ids of the original top-N (best first).  Columns ``base_rank``,
        ``share_in_top`` (0-1, share of runs the unit stayed in the top N), ``rank_min``,
        ``rank_median``, ``rank_max`` (ranks over the runs).
    stability
        Mean Jaccard index between the top-N set of each run and the original top-N set
        (1.0 = the top N never changed).
    jaccard
        The Jaccard index of each run.
    """

    table: pd.DataFrame
    stability: float
    jaccard: np.ndarray
    n: int
    spread: float
    top: int
    seed: int
    reference_left_out: bool
    warnings: list[str]


@dataclass
class _Prepared:
    """Validated and standardised inputs shared by :func:`similarity` and :func:`sensitivity`."""

    ids: pd.Index
    indicators: list[str]
    w: np.ndarray
    raw: pd.DataFrame
    z: np.ndarray
    z_ref: np.ndarray
    center: pd.Series
    scale: pd.Series
    ref_raw: pd.Series
    ref_pos: int | None
    reference_id: Hashable | None
    excluded: dict[Hashable, list[str]]
    warnings: list[str]
    zero_spread: list[str]
    dropped: list[str]
    pinv: np.ndarray | None
    method: str
    metric: str
    missing: str


# ----------------------------------------------------------------------------------------------
# building blocks
# ----------------------------------------------------------------------------------------------
def _check_option(name: str, value: str, allowed: tuple[str, ...]) -> None:
    """Raise InvalidValue (a ValueError) if ``value`` is not one of ``allowed``."""
    if value not in allowed:
        raise InvalidValue(code="analysis.option", pointer=name, params={
            "name": name, "allowed": ", ".join(allowed), "value": str(value)[:80]})


def _check_values(values: pd.DataFrame) -> None:
    """Validate the indicator table (type, non-empty, unique index)."""
    if not isinstance(values, pd.DataFrame):
        raise InvalidValue(code="analysis.values_type", params={"type": type(values).__name__})
    if values.shape[1] == 0:
        raise InvalidValue(code="analysis.values_no_columns")
    if not values.index.is_unique:
        dup = values.index[values.index.duplicated()].unique()[:5].tolist()
        raise InvalidValue(code="analysis.values_duplicate_ids",
                           params={"ids": ", ".join(map(str, dup))})


def resolve_weights(values: pd.DataFrame, weights: Mapping[str, float] | None) -> pd.Series:
    """Validate ``weights`` against the columns of ``values``; return positive weights summing 1.

    ``None`` means equal weights for all columns.  Indicators with weight 0 are dropped.
    """
    if weights is None:
        w = pd.Series(1.0, index=[str(c) for c in values.columns])
    else:
        if isinstance(weights, pd.Series):
            weights = weights.to_dict()
        if not isinstance(weights, Mapping) or len(weights) == 0:
            raise InvalidValue(code="analysis.weights_mapping", pointer="weights",
                               params={"value": repr(weights)[:80]})
        unknown = [k for k in weights if k not in values.columns]
        if unknown:
            raise InvalidValue(code="analysis.weights_unknown", pointer="weights", params={
                "keys": ", ".join(repr(k) for k in unknown),
                "available": ", ".join(map(str, values.columns))})
        try:
            w = pd.Series({k: float(v) for k, v in weights.items()}, dtype=float)
        except (TypeError, ValueError) as exc:
            raise InvalidValue(code="analysis.weights_not_numbers", pointer="weights",
                               params={"value": repr(dict(weights))[:120]}) from exc
        bad = w[~np.isfinite(w.to_numpy())]
        if len(bad):
            raise InvalidValue(code="analysis.weights_not_finite", pointer="weights",
                               params={"value": repr(bad.to_dict())[:120]})
        neg = w[w < 0]
        if len(neg):
            raise InvalidValue(code="analysis.weights_negative", pointer="weights",
                               params={"value": repr(neg.to_dict())[:120]})
        # keep the column order of ``values`` for reproducible output
        w = w.reindex([c for c in values.columns if c in w.index])
    w = w[w > 0]
    if w.empty:
        raise InvalidValue(code="analysis.weights_zero", pointer="weights")
    return w / w.sum()


def _numeric(values: pd.DataFrame, indicators: list[str]) -> pd.DataFrame:
    """Return the chosen columns as float; reject non-numeric and infinite entries."""
    try:
        raw = values[indicators].astype(float)
    except (TypeError, ValueError) as exc:
        raise InvalidValue(code="analysis.columns_not_numeric",
                           params={"reason": str(exc)[:120]}) from exc
    inf = [c for c in indicators if np.isinf(raw[c].to_numpy()).any()]
    if inf:
        raise InvalidValue(code="analysis.columns_infinite", params={"keys": ", ".join(inf)})
    return raw


def standardise(
    values: pd.DataFrame, method: Method = "zscore"
) -> tuple[pd.DataFrame, pd.Series, pd.Series, list[str]]:
    """Standardise columns ignoring NaN; return ``(z, center, scale, zero_spread_columns)``.

    ``"zscore"``: mean / population sd; ``"robust"``: median / 1.4826·MAD.  Zero-spread columns
    get z = 0 (NaN stays NaN) and scale 0.
    """
    _check_option("method", method, _METHODS)
    x = values.to_numpy(dtype=float)
    if method == "zscore":
        center = np.nanmean(x, axis=0)
        scale = np.nanstd(x, axis=0)
    else:
        center = np.nanmedian(x, axis=0)
        scale = MAD_SCALE * np.nanmedian(np.abs(x - center), axis=0)
    # spreads at rounding level of the values count as zero
    tiny = 1e-12 * np.maximum(np.nanmax(np.abs(x), axis=0), 1e-300)
    zero = ~(scale > tiny)
    scale = np.where(zero, 0.0, scale)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (x - center) / np.where(zero, 1.0, scale)
    z[:, zero] = np.where(np.isnan(x[:, zero]), np.nan, 0.0)
    cols = values.columns
    return (
        pd.DataFrame(z, index=values.index, columns=cols),
        pd.Series(center, index=cols),
        pd.Series(scale, index=cols),
        [str(c) for c, zf in zip(cols, zero, strict=True) if zf],
    )


def _resolve_reference(
    values: pd.DataFrame, raw: pd.DataFrame, reference: Reference
) -> tuple[pd.Series, Hashable | None]:
    """Return the raw reference values over the chosen indicators and the reference unit id."""
    if isinstance(reference, pd.Series | Mapping):
        ref = pd.Series(reference, dtype=object) if isinstance(reference, Mapping) else reference
        try:
            ref_raw = pd.to_numeric(ref.reindex(raw.columns), errors="raise").astype(float)
        except (TypeError, ValueError) as exc:
            raise InvalidValue(code="analysis.reference_not_numeric", pointer="reference",
                               params={"reason": str(exc)[:120]}) from exc
        return ref_raw, None
    try:
        found = reference in values.index
    except TypeError:
        found = False
    if not found:
        sample = values.index[:3].tolist()
        raise InvalidValue(code="analysis.reference_not_found", pointer="reference", params={
            "value": repr(reference)[:80], "count": len(values),
            "sample": ", ".join(map(repr, sample))})
    return raw.loc[reference], reference


# ----------------------------------------------------------------------------------------------
# preparation and distances
# ----------------------------------------------------------------------------------------------
def _prepare(
    values: pd.DataFrame,
    reference: Reference,
    weights: Mapping[str, float] | None,
    method: str,
    metric: str,
    missing: str,
) -> _Prepared:
    """Validate inputs, apply the missing-value rule and standardise the candidates."""
    _check_values(values)
    _check_option("method", method, _METHODS)
    _check_option("metric", metric, _METRICS)
    _check_option("missing", missing, _MISSING)
    if missing == "skip_pairwise" and metric == "mahalanobis":
        raise InvalidValue(code="analysis.skip_pairwise_metric", pointer="missing")
    w = resolve_weights(values, weights)
    raw = _numeric(values, list(w.index))
    ref_raw, reference_id = _resolve_reference(values, raw, reference)
    notes: list[str] = []

    # 1. indicators missing for the reference are dropped
    dropped = [c for c in raw.columns if np.isnan(ref_raw[c])]
    for c in dropped:
        notes.append(Note("reference_missing_indicator", indicator=str(c)))
    if len(dropped) == len(raw.columns):
        raise InvalidValue(code="analysis.reference_no_indicators", pointer="reference",
                           params={"keys": ", ".join(map(str, raw.columns))})
    keep = [c for c in raw.columns if c not in dropped]
    raw, ref_raw, w = raw[keep], ref_raw[keep], w[keep] / w[keep].sum()

    # 2. candidates missing indicators
    miss = raw.isna().to_numpy()
    drop_rows = miss.any(axis=1) if missing == "drop_indicator" else miss.all(axis=1)
    excluded: dict[Hashable, list[str]] = {}
    if drop_rows.any():
        cols = np.asarray(keep, dtype=object)
        for uid, row in zip(raw.index[drop_rows].tolist(), miss[drop_rows], strict=True):
            excluded[uid] = cols[row].tolist()
        notes.append(Note("units_excluded", count=int(drop_rows.sum())))
    partial = int((miss.any(axis=1) & ~drop_rows).sum())
    if partial:
        notes.append(Note("units_fewer_indicators", count=partial))
    raw = raw[~drop_rows] if drop_rows.any() else raw
    if len(raw) < 2:
        raise InvalidValue(code="analysis.too_few_candidates", params={
            "left": len(raw), "count": len(values), "excluded": len(excluded)})

    # 3. standardise over the candidates
    zdf, center, scale, zero = standardise(raw, method)
    for c in zero:
        notes.append(Note("zero_spread", indicator=str(c)))
    with np.errstate(invalid="ignore", divide="ignore"):
        z_ref = np.array((ref_raw - center) / scale.where(scale > 0, 1.0), dtype=float)
    z_ref[scale.to_numpy() == 0] = 0.0

    z = zdf.to_numpy()
    pinv = None
    if metric == "mahalanobis":
        cov = np.cov(z, rowvar=False, ddof=0).reshape(len(keep), len(keep))
        pinv = np.linalg.pinv(cov, hermitian=True)
    ref_pos = None
    if reference_id is not None:  # position among the kept rows, via the cached index of values
        ref_pos = int(np.cumsum(~drop_rows)[values.index.get_loc(reference_id)]) - 1
    return _Prepared(
        ids=raw.index,
        indicators=keep,
        w=w.to_numpy(dtype=float),
        raw=raw,
        z=z,
        z_ref=z_ref,
        center=center,
        scale=scale,
        ref_raw=ref_raw,
        ref_pos=ref_pos,
        reference_id=reference_id,
        excluded=excluded,
        warnings=notes,
        zero_spread=zero,
        dropped=dropped,
        pinv=pinv,
        method=method,
        metric=metric,
        missing=missing,
    )


def _contributions(p: _Prepared, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(diff, contrib)`` arrays (units x indicators) for weight vector ``w``."""
    diff = p.z - p.z_ref
    if p.metric == "mahalanobis":
        u = diff * np.sqrt(w)
        return diff, u * (u @ p.pinv)  # pinv is symmetric
    if p.missing == "skip_pairwise":
        present = ~np.isnan(diff)
        w_eff = np.where(present, w, 0.0)
        w_eff /= w_eff.sum(axis=1, keepdims=True)
        return diff, np.where(present, w_eff * np.square(diff), np.nan)
    return diff, w * np.square(diff)


def _scores(dist: np.ndarray) -> np.ndarray:
    """Score 100·(1 − d / d_max); all 100 when every distance is 0."""
    d_max = dist.max()
    if d_max <= 0:
        return np.full_like(dist, 100.0)
    return 100.0 * (1.0 - dist / d_max)


def _order(dist: np.ndarray, ref_pos: int | None) -> np.ndarray:
    """Stable ascending order of ``dist`` with the reference first among ties at 0."""
    key = dist.copy()
    if ref_pos is not None:
        key[ref_pos] = -1.0
    return np.argsort(key, kind="stable")


# ----------------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------------
def similarity(
    values: pd.DataFrame,
    reference: Reference,
    weights: Mapping[str, float] | None = None,
    *,
    method: Method = "zscore",
    metric: Metric = "euclidean",
    missing: Missing = "drop_indicator",
) -> SimilarityResult:
    """Rank the units of ``values`` by similarity to ``reference`` (a unit id or a profile).

    Parameters
    ----------
    values
        Indexed by unit id, one float column per indicator, NaN = missing.
    reference
        A unit id of ``values`` or a Series/mapping indicator -> value (external profile).
    weights
        Indicator -> weight ≥ 0; default equal weights over all columns.
    method, metric, missing
        See the module docstring for the exact rules.
    """
    p = _prepare(values, reference, weights, method, metric, missing)
    diff, contrib = _contributions(p, p.w)
    dist2 = np.nansum(contrib, axis=1) if missing == "skip_pairwise" else contrib.sum(axis=1)
    dist = np.sqrt(np.maximum(dist2, 0.0))
    order = _order(dist, p.ref_pos)
    d_sorted = dist[order]
    block = np.hstack([d_sorted[:, None], _scores(d_sorted)[:, None], contrib[order], diff[order]])
    names = ["distance", "score"]
    names += [f"contrib_{c}" for c in p.indicators] + [f"diff_{c}" for c in p.indicators]
    ranking = pd.DataFrame(block, index=p.ids[order], columns=names)
    ranking.insert(0, "rank", np.searchsorted(d_sorted, d_sorted, side="left") + 1)
    if missing == "skip_pairwise":
        ranking.insert(3, "n_indicators", (~np.isnan(diff)).sum(axis=1)[order])
    return SimilarityResult(
        ranking=ranking,
        standardised=pd.DataFrame(p.z, index=p.ids, columns=p.indicators),
        center=p.center,
        scale=p.scale,
        weights=pd.Series(p.w, index=p.indicators),
        excluded=p.excluded,
        warnings=p.warnings,
        method=method,
        metric=metric,
        missing=missing,
        indicators=p.indicators,
        reference_id=p.reference_id,
        reference_values=p.ref_raw,
        reference_standardised=pd.Series(p.z_ref, index=p.indicators),
        values=p.raw,
        zero_spread=p.zero_spread,
        dropped=p.dropped,
    )


def _fmt(x: float, de: bool) -> str:
    """Format a number with 2 significant decimals, decimal comma for German."""
    s = f"{x:.2f}"
    return s.replace(".", ",") if de else s


def _explain_item(res: SimilarityResult, unit_id: Hashable, ind: str) -> dict[str, Any]:
    """One indicator's explanation for ``unit_id``."""
    row = res.ranking.loc[unit_id]
    d = float(row[f"diff_{ind}"])
    c = float(row[f"contrib_{ind}"])
    dist2 = float(row["distance"]) ** 2
    if np.isnan(d):
        direction = "missing"
    elif abs(d) < 1e-9:
        direction = "equal"
    else:
        direction = "higher" if d > 0 else "lower"
    robust = res.method == "robust"
    unit_en = "robust SD" if robust else "SD"
    unit_de = "robuste Standardabweichungen" if robust else "Standardabweichungen"
    words_de = {"higher": "über", "lower": "unter"}
    if direction in words_de:
        en = f"{ind}: {_fmt(abs(d), False)} {unit_en} {direction} than the reference"
        de = f"{ind}: {_fmt(abs(d), True)} {unit_de} {words_de[direction]} der Referenz"
    elif direction == "equal":
        en, de = f"{ind}: same as the reference", f"{ind}: wie die Referenz"
    else:
        en, de = f"{ind}: no value", f"{ind}: kein Wert"
    return {
        "indicator": ind,
        "value": float(res.values.at[unit_id, ind]),
        "reference_value": float(res.reference_values[ind]),
        "diff": d,
        "abs_diff": abs(d),
        "direction": direction,
        "contribution": c,
        "share": c / dist2 if dist2 > 0 and not np.isnan(c) else 0.0,
        "weight": float(res.weights[ind]),
        "text_en": en,
        "text_de": de,
    }


def explain(result: SimilarityResult, unit_id: Hashable, top: int = 3) -> dict[str, Any]:
    """Explain why ``unit_id`` is (not) similar: indicators with the smallest/largest contributions.

    Returns a dict with ``unit``, ``reference``, ``rank``, ``distance``, ``score`` and the lists
    ``most_similar`` (smallest contributions first) and ``least_similar`` (largest first); each
    item has ``indicator``, ``value``, ``reference_value``, ``diff`` (signed standardised
    difference), ``abs_diff``, ``direction`` ("higher"/"lower"/"equal"/"missing"),
    ``contribution``, ``share`` (of distance²), ``weight``, ``text_en`` and ``text_de``.  With
    fewer than ``2·top`` indicators the two lists overlap.
    """
    if top < 1:
        raise InvalidValue(code="analysis.at_least", pointer="top",
                           params={"name": "top", "min": 1, "value": top})
    if unit_id in result.excluded:
        raise InvalidValue(code="analysis.unit_excluded", params={
            "unit": repr(unit_id), "keys": ", ".join(map(repr, result.excluded[unit_id]))})
    if unit_id not in result.ranking.index:
        raise InvalidValue(code="analysis.unit_not_ranked", params={"unit": repr(unit_id)})
    row = result.ranking.loc[unit_id]
    contrib = pd.Series({c: row[f"contrib_{c}"] for c in result.indicators}, dtype=float).dropna()
    asc = contrib.sort_values(kind="stable")
    n = min(top, len(asc))
    return {
        "unit": unit_id,
        "reference": result.reference_id,
        "rank": int(row["rank"]),
        "distance": float(row["distance"]),
        "score": float(row["score"]),
        "method": result.method,
        "metric": result.metric,
        "most_similar": [_explain_item(result, unit_id, c) for c in asc.index[:n]],
        "least_similar": [_explain_item(result, unit_id, c) for c in asc.index[::-1][:n]],
    }


def _features(p: _Prepared) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-unit features F (and presence P) so that distance² = F @ coef(w) [/ P @ w]."""
    diff = p.z - p.z_ref
    if p.metric == "mahalanobis":
        k = diff.shape[1]
        return (diff[:, :, None] * diff[:, None, :]).reshape(len(diff), k * k), None
    if p.missing == "skip_pairwise":
        present = ~np.isnan(diff)
        return np.where(present, np.square(diff), 0.0), present.astype(float)
    return np.square(diff), None


def _coefficients(p: _Prepared, w: np.ndarray) -> np.ndarray:
    """Coefficient matrix (features x runs) for a batch of weight vectors ``w`` (runs x k)."""
    if p.metric == "mahalanobis":
        s = np.sqrt(w)
        return (s[:, :, None] * s[:, None, :] * p.pinv).reshape(len(w), -1).T
    return w.T


def sensitivity(
    values: pd.DataFrame,
    reference: Reference,
    weights: Mapping[str, float] | None = None,
    *,
    n: int = 200,
    spread: float = 0.25,
    top: int = 10,
    seed: int = 0,
    method: Method = "zscore",
    metric: Metric = "euclidean",
    missing: Missing = "drop_indicator",
) -> SensitivityResult:
    """How stable is the top-N under weight changes?  Perturb weights and re-rank ``n`` times.

    Every weight is multiplied by an independent factor drawn uniformly from
    ``[1 − spread, 1 + spread]`` (then re-normalised); ``0 ≤ spread < 1``.  The reference unit
    itself (always at distance 0) is left out, so ranks here count the *other* units
    (1 = most similar other unit).  Ties are resolved in favour of the unit (rank = 1 + number of
    units strictly closer, with a relative tolerance of 1e-9 of the run's largest distance²).
    Fully vectorised: one matrix product per batch of runs.
    """
    if not isinstance(n, int | np.integer) or n < 1:
        raise InvalidValue(code="analysis.at_least", pointer="runs",
                           params={"name": "n", "min": 1, "value": str(n)[:40]})
    if not 0 <= spread < 1:
        raise InvalidValue(code="analysis.spread", pointer="spread", params={"value": spread})
    if top < 1:
        raise InvalidValue(code="analysis.at_least", pointer="top",
                           params={"name": "top", "min": 1, "value": top})
    p = _prepare(values, reference, weights, method, metric, missing)
    notes = list(p.warnings)
    feats, present = _features(p)
    if p.ref_pos is not None:
        keep = np.ones(len(feats), dtype=bool)
        keep[p.ref_pos] = False
        feats = feats[keep]
        present = present[keep] if present is not None else None
        ids = p.ids[keep]
    else:
        ids = p.ids
    if top > len(ids):
        notes.append(Note("top_capped", top=top, count=len(ids)))
        top = len(ids)

    def dist2(wb: np.ndarray) -> np.ndarray:
        d2 = feats @ _coefficients(p, wb)
        if present is not None:
            d2 = d2 / (present @ wb.T)
        return d2

    base = dist2(p.w[None, :])[:, 0]
    base_top = np.argsort(base, kind="stable")[:top]
    rng = np.random.default_rng(seed)
    factors = rng.uniform(1.0 - spread, 1.0 + spread, size=(n, len(p.w)))
    wr = p.w * factors
    wr /= wr.sum(axis=1, keepdims=True)

    ranks = np.empty((top, n), dtype=np.int64)
    chunk = max(1, int(4_000_000 // max(len(ids), 1)))
    for start in range(0, n, chunk):  # loop over batches of runs, not over units
        d2 = dist2(wr[start : start + chunk])
        tol = 1e-9 * np.maximum(d2.max(axis=0), 1e-300)
        for j, u in enumerate(base_top):
            ranks[j, start : start + chunk] = (d2 < (d2[u] - tol)).sum(axis=0) + 1
    in_top = ranks <= top
    m = np.minimum(in_top.sum(axis=0), top)
    jac = m / (2 * top - m)
    table = pd.DataFrame(
        {
            "base_rank": np.arange(1, top + 1),
            "share_in_top": in_top.mean(axis=1),
            "rank_min": ranks.min(axis=1),
            "rank_median": np.median(ranks, axis=1),
            "rank_max": ranks.max(axis=1),
        },
        index=ids[base_top],
    )
    return SensitivityResult(
        table=table,
        stability=float(jac.mean()),
        jaccard=jac,
        n=int(n),
        spread=float(spread),
        top=int(top),
        seed=int(seed),
        reference_left_out=p.ref_pos is not None,
        warnings=notes,
    )
