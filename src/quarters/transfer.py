"""Transferability analysis as a service: values from the database → similarity core → results.

The computational core (:mod:`quarters.analysis`) is pure; this module fetches the values
table of a level, resolves a reference, calls :func:`~quarters.analysis.similarity`,
:func:`~quarters.analysis.sensitivity`, :func:`~quarters.analysis.typology.typology` and
:func:`~quarters.analysis.classify.classify`, and returns plain dicts / DataFrames.

References (``reference=``) are written ``kind:key``:

* ``quarter:<slug>`` – a pilot quarter; its profile (see :mod:`quarters.profiles`),
* ``gemeinde:<AGS>``, ``kreis:<AGS>`` – a municipality or Kreis (bare 8 or 5 digits work too),
* ``<district level>:<code>`` such as ``stadtviertel:09``,
* ``measure:<id>`` – the unit of the chosen level that contains the measure's location.

When the reference is a unit of the ranked level it is a candidate itself (rank 1, score
100). Otherwise its values are an external profile: it does not influence the standardisation.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from quarters import candidates, transfer_profile
from quarters.analysis.similarity import SensitivityResult, SimilarityResult, explain
from quarters.analysis.similarity import sensitivity as run_sensitivity
from quarters.analysis.similarity import similarity as run_similarity
from quarters.errors import InvalidInput, InvalidParameter, InvalidValue, NotFound, QuartersError
from quarters.indicators.definitions import DEFAULT_RULE, IndicatorDef, definitions
from quarters.indicators.levels import Level, get_level, units
from quarters.indicators.reading import measures_view_exists, values_table
from quarters.messages import Note
from quarters.settings import GERA_AGS, HALLE_AGS, PROJECT_CITIES, STORAGE_SRID
from quarters.validation import parse_int

Progress = Callable[[Note, int, int], None]  # (label: a Note, written out by the caller, done, total)
METHODS = ("zscore", "robust")
METRICS = ("euclidean", "mahalanobis")
MISSING = ("drop_indicator", "skip_pairwise")
CLUSTER_METHODS = ("kmeans", "agglomerative")
MAX_TOP = 500
MAX_INDICATORS = 30
AUTO_K_MAX_UNITS = 2000  # choosing k by silhouette over 3..8 takes ~20 s for 11,000 units
LARGE_LEVEL_K = 6
MAX_RUNS = 5000
WEIGHT_ROUNDING = ("weights rounded to steps of 0.05 × the decade of the largest weight "
                   "(2 → 2, 2.01 → 2, 0.333 → 0.35), a positive weight to at least one step")


@dataclass(frozen=True)
class Limits:
    """Caps of one analysis; the API takes them from the settings, the CLI uses the defaults."""

    max_top: int = MAX_TOP
    max_runs: int = MAX_RUNS
    max_units: int | None = None
    max_ward_units: int | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        """The caps of the public API (QUARTERS_ANALYSIS_MAX_*)."""
        return cls(max_top=min(settings.analysis_max_top, MAX_TOP),
                   max_runs=min(settings.analysis_max_runs, MAX_RUNS),
                   max_units=settings.analysis_max_units,
                   max_ward_units=settings.analysis_max_ward_units)

    def check_units(self, n_units: int, level: str, cluster_method: str | None) -> None:
        """InvalidParameter when a level is too large for one request or for Ward's method."""
        if self.max_units is not None and n_units > self.max_units:
            raise InvalidParameter(code="analysis.too_many_units", pointer="level",
                params={"level": level, "count": n_units, "max": self.max_units})
        if (cluster_method == "agglomerative" and self.max_ward_units is not None
                and n_units > self.max_ward_units):
            raise InvalidParameter(code="analysis.ward_too_many_units", pointer="cluster_method",
                params={"level": level, "count": n_units, "max": self.max_ward_units})


def round_weights(weights: dict[str, float]) -> dict[str, float]:
    """Weights on a grid (see WEIGHT_ROUNDING): a 0.01 change asks the same question twice,
    so the caches answer it; the computation uses exactly these rounded weights."""
    largest = max(weights.values(), default=0.0)
    if largest <= 0:
        return dict(weights)
    step = 0.05 * 10.0 ** math.floor(math.log10(largest))
    return {k: 0.0 if w <= 0 else float(f"{max(1, round(w / step)) * step:.12g}")
            for k, w in weights.items()}


# ----------------------------------------------------------------------------------------------
# parameters
# ----------------------------------------------------------------------------------------------
@dataclass
class TransferParams:
    """What to rank: reference, level, indicators with weights, options of the core."""

    reference: str
    level: str = "gemeinde"
    indicators: list[str] | None = None
    weights: dict[str, float] | None = None
    method: str = "zscore"
    metric: str = "euclidean"
    missing: str = "drop_indicator"
    top: int = 10
    sensitivity: bool = True
    runs: int = 200
    spread: float = 0.25
    seed: int = 0
    types: bool = True
    k: int | None = None
    cluster_method: str = "kmeans"
    filter: str | None = None  # CQL2 text over the candidate level's attributes (candidates.py)

    def check(self, limits: Limits | None = None) -> None:
        """Raise InvalidParameter naming the first bad field (or the cap it exceeds)."""
        limits = limits or Limits()
        for name, value, allowed in (("method", self.method, METHODS),
                                     ("metric", self.metric, METRICS),
                                     ("missing", self.missing, MISSING),
                                     ("cluster_method", self.cluster_method, CLUSTER_METHODS)):
            if value not in allowed:
                raise InvalidParameter(code="analysis.not_one_of", pointer=name, params={
                    "name": name, "value": str(value)[:80], "allowed": ", ".join(allowed)})
        if self.missing == "skip_pairwise" and self.metric == "mahalanobis":
            raise InvalidParameter(code="analysis.skip_pairwise_metric", pointer="missing")
        if not 1 <= self.top <= limits.max_top:
            raise InvalidParameter(code="analysis.between", pointer="top",
                params={"name": "top", "min": 1, "max": limits.max_top, "value": self.top})
        if self.sensitivity and not 1 <= self.runs <= limits.max_runs:
            raise InvalidParameter(code="analysis.between", pointer="runs",
                params={"name": "runs", "min": 1, "max": limits.max_runs, "value": self.runs})
        if not 0 <= self.spread < 1:
            raise InvalidParameter(code="analysis.spread", pointer="spread",
                params={"value": self.spread})
        if self.k is not None and not 2 <= self.k <= 20:
            raise InvalidParameter(code="analysis.between", pointer="k",
                params={"name": "k", "min": 2, "max": 20, "value": self.k})
        if not self.reference or not self.reference.strip():
            raise InvalidParameter(code="analysis.reference_required", pointer="reference")
        if self.weights:
            for key, w in self.weights.items():
                if not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
                    raise InvalidParameter(code="analysis.weight_value", pointer="weights",
                        params={"key": key, "value": repr(w)})
            if all(w == 0 for w in self.weights.values()):
                raise InvalidParameter(code="analysis.weights_all_zero", pointer="weights")
        if self.filter is not None and not self.filter.strip():
            self.filter = None


def parse_weights(items: list[str] | None, field_name: str = "weight") -> dict[str, float]:
    """``["density=2", "population=1"]`` → dict; InvalidParameter naming the bad item."""
    out: dict[str, float] = {}
    for item in items or []:
        for part in item.split(","):
            if not part.strip():
                continue
            key, sep, raw = part.partition("=")
            if not sep or not key.strip():
                raise InvalidParameter(code="analysis.weight_form", pointer=field_name,
                                       params={"value": part[:80]})
            try:
                value = float(raw)
            except ValueError:
                raise InvalidParameter(code="analysis.weight_value", pointer=field_name,
                                       params={"key": key.strip(), "value": raw[:40]}) from None
            if not math.isfinite(value) or value < 0:
                raise InvalidParameter(code="analysis.weight_value", pointer=field_name,
                                       params={"key": key.strip(), "value": raw[:40]})
            out[key.strip()] = value
    return out


def default_indicators(conn: Connection, level: Level) -> list[str]:
    """Indicators used when none are chosen — the one definition CLI, API, page and report
    share (:data:`quarters.indicators.definitions.DEFAULT_RULE`)."""
    from quarters.indicators.reading import default_indicators as defaults

    keys = defaults(conn, level)
    if not keys:
        raise InvalidInput(code="analysis.no_default_indicators", pointer="indicators",
                           params={"level": level.name})
    return keys


def resolve_indicators(conn: Connection, level: Level, indicators: list[str] | None,
                       weights: dict[str, float] | None) -> tuple[list[IndicatorDef],
                                                                   dict[str, float]]:
    """Check the indicator keys and weights against the definitions and the level's data."""
    defs = definitions(conn)
    keys = list(dict.fromkeys(indicators or (list(weights) if weights else
                                             default_indicators(conn, level))))
    if len(keys) > MAX_INDICATORS:
        raise InvalidParameter(code="analysis.too_many_indicators", pointer="indicators",
            params={"max": MAX_INDICATORS, "count": len(keys)})
    unknown = [k for k in keys if k not in defs]
    if unknown:
        raise InvalidParameter(code="analysis.unknown_indicators", pointer="indicators",
            params={"keys": ", ".join(unknown)})
    weights = dict(weights or {})
    extra = [k for k in weights if k not in keys]
    if extra:
        raise InvalidParameter(code="analysis.weights_not_chosen", pointer="weights",
            params={"keys": ", ".join(extra), "chosen": ", ".join(keys)})
    have = set(conn.execute(text(
        "SELECT DISTINCT indicator FROM indicator_values WHERE level = :l AND value IS NOT NULL "
        "AND indicator = ANY(:k)"), {"l": level.name, "k": keys}).scalars())
    empty = [k for k in keys if k not in have]
    if empty:
        raise InvalidInput(code="analysis.no_values", pointer="indicators",
                           params={"level": level.name, "keys": ", ".join(empty)})
    return [defs[k] for k in keys], round_weights({k: float(weights.get(k, 1.0)) for k in keys})


# ----------------------------------------------------------------------------------------------
# reference
# ----------------------------------------------------------------------------------------------
@dataclass
class Reference:
    """A resolved reference: a candidate unit (``unit_id``) or an external ``profile``."""

    spec: str
    kind: str
    level: str
    code: str
    name: str
    unit_id: str | None = None
    profile: pd.Series | None = None
    derivations: dict[str, Any] = field(default_factory=dict)  # indicator → provenance note
    note: str = ""
    preconditions: dict[str, Any] | None = None  # a measure's, see quarters.transfer_profile
    approximate: bool = False  # outline or values approximated / interpolated

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description."""
        return {"spec": self.spec, "kind": self.kind, "level": self.level, "code": self.code,
                "name": self.name, "is_candidate": self.unit_id is not None, "note": self.note,
                "approximate": self.approximate,
                "values": None if self.profile is None else _clean(self.profile.to_dict()),
                "derivations": self.derivations or None,
                **({"preconditions": _clean(self.preconditions)} if self.preconditions else {})}


def _split_reference(conn: Connection, spec: str) -> tuple[str, str]:
    spec = spec.strip()
    if ":" in spec:
        kind, _, key = spec.partition(":")
        return kind.strip().lower(), key.strip()
    if re.fullmatch(r"\d{8}", spec):
        return "gemeinde", spec
    if re.fullmatch(r"\d{5}", spec):
        return "kreis", spec
    if conn.execute(text("SELECT 1 FROM quarters WHERE slug = :s"), {"s": spec}).first():
        return "quarter", spec
    raise InvalidParameter(code="analysis.reference_form", pointer="reference",
        params={"value": spec[:80]})


def _unit_name(conn: Connection, level: Level, code: str) -> str | None:
    fw, params = level.from_where()
    return conn.execute(text(f"SELECT t.name FROM {fw} AND t.{level.code_column} = :code"),
                        {**params, "code": code}).scalar()


def resolve_reference(conn: Connection, spec: str, level: Level,
                      indicators: list[str]) -> Reference:
    """Turn ``kind:key`` into a candidate unit id or an external profile over ``indicators``."""
    kind, key = _split_reference(conn, spec)
    if kind == "measure":
        return _measure_reference(conn, spec, key, level, indicators)
    if kind in ("district", "viertel"):
        kind = "stadtviertel"
    ref_level = get_level(conn, kind, "reference")
    name = _unit_name(conn, ref_level, key)
    if name is None:
        raise NotFound(code="analysis.reference_unknown", pointer="reference",
                       params={"key": key[:80], "level": ref_level.name})
    approx = key in candidates.approximate_codes(conn, ref_level)
    if ref_level.name == level.name:
        return Reference(spec, kind, level.name, key, name, unit_id=key, approximate=approx)
    if ref_level.name == "quarter":
        from quarters.profiles import profile_series, quarter_profile

        prof = quarter_profile(conn, key, indicators)
        derivs = {v["indicator"]: v["derivation"] or Note("deriv.missing",
                                                           reason=v["missing_reason"])
                  for v in prof["values"] if v["indicator"] in indicators}
        return Reference(spec, kind, "quarter", key, name,
                         profile=profile_series(prof).reindex(indicators),
                         derivations=derivs, approximate=True,
                         note=Note("reference_quarter_profile",
                                   level=prof["source_level"] or "districts",
                                   coverage=round(100 * prof["coverage"])))
    vals, reasons, _ = values_table(conn, ref_level, indicators)
    row = vals.loc[key]
    derivs = {k: Note("deriv.missing", reason=reasons[k][key]) for k in indicators
              if key in reasons[k]}
    return Reference(spec, kind, ref_level.name, key, name, profile=row,
                     derivations=derivs, approximate=approx,
                     note=Note("reference_external", ref_level=ref_level.name, level=level.name))


def _measure_reference(conn: Connection, spec: str, key: str, level: Level,
                       indicators: list[str]) -> Reference:
    measure_id = parse_int(key, "reference: measure id", minimum=1, maximum=2_147_483_647)
    if not measures_view_exists(conn):
        raise NotFound(code="analysis.no_measures", pointer="reference")
    row = conn.execute(text("SELECT id, title FROM measures_public WHERE id = :id"),
                       {"id": measure_id}).first()
    if row is None:
        raise NotFound(code="analysis.reference_measure_unknown", pointer="reference",
                       params={"id": key})
    if not level.outlines:
        raise InvalidInput(code="analysis.measure_level_without_outlines", pointer="reference",
                           params={"level": level.name})
    fw, params = level.from_where()
    unit = conn.execute(text(
        f"SELECT t.{level.code_column}, t.name FROM {fw} AND ST_Intersects(t.geom, "
        f"(SELECT ST_PointOnSurface(geom) FROM measures_public WHERE id = :id)) LIMIT 1"),
        {**params, "id": measure_id}).first()
    if unit is None:
        raise InvalidInput(code="analysis.measure_outside_level", pointer="reference",
                           params={"id": key, "level": level.name})
    return Reference(spec, "measure", level.name, unit[0], unit[1], unit_id=unit[0],
                     note=Note("reference_measure_unit", id=key, title=row.title))


# ----------------------------------------------------------------------------------------------
# typology (cached: k-means over 11,000 units takes a few seconds)
# ----------------------------------------------------------------------------------------------
_TYPOLOGY_CACHE: OrderedDict[str, Any] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 16


def _frame_hash(values: pd.DataFrame) -> str:
    digest = hashlib.sha1(pd.util.hash_pandas_object(values, index=True).to_numpy().tobytes())
    digest.update(",".join(map(str, values.columns)).encode())
    return digest.hexdigest()


_RESULT_CACHE: OrderedDict[str, Any] = OrderedDict()
_RESULT_CACHE_SIZE = 8
CACHE_STATS: dict[str, int] = {"typology_hit": 0, "typology_miss": 0, "ranking_hit": 0,
                               "ranking_miss": 0}


def _cache_get(cache: OrderedDict[str, Any], key: str, kind: str) -> Any | None:
    with _CACHE_LOCK:
        hit = cache.get(key)
        if hit is not None:
            cache.move_to_end(key)
        CACHE_STATS[f"{kind}_{'hit' if hit is not None else 'miss'}"] += 1
        return hit


def _cache_put(cache: OrderedDict[str, Any], key: str, value: Any, size: int) -> None:
    with _CACHE_LOCK:
        cache[key] = value
        while len(cache) > size:
            cache.popitem(last=False)


def cached_typology(values: pd.DataFrame, weights: dict[str, float], k: int | None,
                    method: str, scaling: str, seed: int = 0) -> tuple[Any, bool]:
    """:func:`quarters.analysis.typology.typology` with an in-process cache keyed by the data
    and the (rounded, see :func:`round_weights`) weights; returns (result, cache hit)."""
    from quarters.analysis.typology import typology

    key = "|".join([_frame_hash(values), repr(sorted(weights.items())), str(k), method,
                    scaling, str(seed)])
    hit = _cache_get(_TYPOLOGY_CACHE, key, "typology")
    if hit is not None:
        return hit, True
    phrases = _phrases(list(values.columns))
    k_range = range(3, 9) if len(values) > 9 else range(2, max(3, len(values) - 1))
    result = typology(values, weights, k=k, method=method, seed=seed, scaling=scaling,
                      phrases=phrases, k_range=k_range)
    _cache_put(_TYPOLOGY_CACHE, key, result, _CACHE_SIZE)
    return result, False


def _result_key(values: pd.DataFrame, reference: Reference, weights: dict[str, float],
                params: TransferParams) -> str:
    """Cache key of a ranking: the data, the reference's values and the rounded question."""
    ref = reference.unit_id if reference.unit_id is not None else \
        repr(sorted(reference.profile.to_dict().items()))
    p = params
    return "|".join(map(str, [_frame_hash(values), reference.spec, ref,
                              sorted(weights.items()), p.level, p.method, p.metric, p.missing,
                              p.top, p.sensitivity, p.runs if p.sensitivity else 0, p.spread,
                              p.seed, p.types, p.k, p.cluster_method, p.filter]))


_PHRASES = {
    "population": ("viele Einwohner", "wenige Einwohner", "large population", "small population"),
    "density": ("dicht", "dünn besiedelt", "dense", "sparse"),
    "area_km2": ("große Fläche", "kleine Fläche", "large area", "small area"),
    "area_geom_km2": ("große Fläche", "kleine Fläche", "large area", "small area"),
    "female_share": ("hoher Frauenanteil", "niedriger Frauenanteil", "more women", "fewer women"),
    "urbanisation": ("ländlich", "städtisch", "rural", "urban"),
}


def _phrases(keys: list[str]) -> dict[str, tuple[str, str, str, str]]:
    defs_name = {k: k for k in keys}
    return {k: _PHRASES[k] for k in defs_name if k in _PHRASES}


# ----------------------------------------------------------------------------------------------
# the analysis
# ----------------------------------------------------------------------------------------------
@dataclass
class TransferResult:
    """Everything a ranking produced; :func:`to_json` and the report read from it."""

    params: TransferParams
    level: Level
    reference: Reference
    indicators: list[IndicatorDef]
    weights: dict[str, float]
    result: SimilarityResult
    ranking: pd.DataFrame  # all ranked candidates: name, rank, score, …, value_*, type
    excluded: pd.DataFrame  # code → name, missing, reasons
    sensitivity: SensitivityResult | None
    typology: Any | None
    reference_type: int | None
    warnings: list[str]
    sources: list[dict[str, Any]]
    ref_dates: dict[str, list[str]]
    timings: dict[str, float]
    n_units: int
    cache: dict[str, str] = field(default_factory=dict)  # "ranking"/"typology" → hit | miss
    part_of_reference: list[dict[str, Any]] = field(default_factory=list)
    n_filtered_out: int = 0

    @property
    def top(self) -> pd.DataFrame:
        """The first ``params.top`` rows (plus the reference if it is a candidate)."""
        return self.ranking.head(self.params.top + (1 if self.reference.unit_id else 0))


def run_transfer(conn: Connection, params: TransferParams, progress: Progress | None = None,
                 *, limits: Limits | None = None, cache: bool = False) -> TransferResult:
    """Rank the candidates of ``params.level`` by similarity to ``params.reference``.

    ``limits`` caps top, runs and units (the API's settings); with ``cache`` an answer to the
    same rounded question over the same data comes from an in-process cache.
    """
    limits = limits or Limits()
    params.check(limits)
    step = progress or (lambda _label, _done, _total: None)
    total = 3 + int(params.sensitivity) + int(params.types)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    level = get_level(conn, params.level)
    defs, weights = resolve_indicators(conn, level, params.indicators, params.weights)
    keys = [d.key for d in defs]
    step(Note("step_reference"), 0, total)
    reference = resolve_reference(conn, params.reference, level, keys)
    step(Note("step_values"), 1, total)
    values, reasons, meta = values_table(conn, level, keys)
    limits.check_units(len(values), level.name, params.cluster_method if params.types else None)
    n_units = len(values)
    values, reference, parts, n_filtered = _candidates(conn, level, values, reference, params)
    key = _result_key(values, reference, weights, params) if cache else None
    if key is not None:
        hit = _cache_get(_RESULT_CACHE, key, "ranking")
        if hit is not None:
            took = time.perf_counter() - t0
            return transfer_profile.apply(conn, replace(
                hit, params=params, cache={"ranking": "hit"},
                timings={"fetch_s": took, "total_s": took}))
    names = units(conn, level)["name"]
    timings["fetch_s"] = time.perf_counter() - t0
    ref_arg: Any = reference.unit_id if reference.unit_id is not None else reference.profile
    t1 = time.perf_counter()
    try:
        sim = run_similarity(values, ref_arg, weights, method=params.method,
                             metric=params.metric, missing=params.missing)
    except QuartersError:
        raise  # the core's own coded refusal (InvalidValue)
    except ValueError as exc:
        raise refusal(exc, "ranking") from exc
    timings["ranking_s"] = time.perf_counter() - t1
    step(Note("step_ranking"), 2, total)
    warnings = list(sim.warnings)
    if not level.outlines:
        warnings.append(Note("level_without_outlines", level=level.name))
    ranking = sim.ranking.copy()
    ranking.insert(0, "name", names.reindex(ranking.index).to_numpy())
    for k in sim.indicators:
        ranking[f"value_{k}"] = sim.values[k].reindex(ranking.index).to_numpy()
    ranking["is_reference"] = ranking.index == reference.unit_id
    approx = candidates.approximate_codes(conn, level)
    ranking["approximate"] = [c in approx for c in ranking.index]
    ranking = ranking.join(candidates.bands(ranking["distance"], reference.unit_id))
    done = 3

    sens = None
    if params.sensitivity:
        t2 = time.perf_counter()
        try:
            sens = run_sensitivity(values, ref_arg, weights, n=params.runs, spread=params.spread,
                                   top=params.top, seed=params.seed, method=params.method,
                                   metric=params.metric, missing=params.missing)
        except ValueError as exc:
            warnings.append(Note("sensitivity_skipped", **_why(exc)))
        timings["sensitivity_s"] = time.perf_counter() - t2
        if sens is not None:
            for col in ("share_in_top", "rank_min", "rank_median", "rank_max"):
                ranking[col] = sens.table[col].reindex(ranking.index).to_numpy()
        step(Note("step_sensitivity"), done, total)
        done += 1

    typ, ref_type = None, None
    cache_info = {"ranking": "miss"} if key is not None else {}
    if params.types:
        t3 = time.perf_counter()
        used = {k: w for k, w in weights.items() if k in sim.indicators}
        try:
            typ, typ_hit = cached_typology(values[list(used)], used,
                                           _k_for(params.k, len(values)),
                                           params.cluster_method, params.method, params.seed)
            cache_info["typology"] = "hit" if typ_hit else "miss"
        except ValueError as exc:
            warnings.append(Note("typology_skipped", **_why(exc)))
        if typ is not None:
            labels = typ.labels.reindex(ranking.index)
            ranking["cluster"] = labels.to_numpy()
            prof = typ.profiles
            for col in ("label_de", "label_en"):  # one dict lookup per unit, not one .at
                names_of = {int(c): v for c, v in prof[col].items()}
                ranking[col.replace("label", "type")] = [
                    names_of.get(int(c)) if pd.notna(c) else None for c in labels]
            ref_type = _reference_type(typ, reference, warnings)
            ranking["same_type"] = (labels == ref_type).fillna(False).astype(bool).to_numpy() \
                if ref_type is not None else False
        timings["typology_s"] = time.perf_counter() - t3
        step(Note("step_typology"), done, total)
    excluded = pd.DataFrame(
        [{"code": c, "name": names.get(c), "missing": m,
          "reasons": {k: reasons.get(k, {}).get(c, "missing") for k in m}}
         for c, m in sim.excluded.items()],
        columns=["code", "name", "missing", "reasons"])
    used_sources = sorted({s for ids in meta.get("sources", pd.Series(dtype=object))
                           for s in ids})
    sources = _sources(conn, used_sources, level)
    ref_dates = {k: [meta.at[k, "first"], meta.at[k, "last"]] for k in keys if k in meta.index}
    timings["total_s"] = time.perf_counter() - t0
    step(Note("step_done"), total, total)
    res = TransferResult(params, level, reference, defs, weights, sim, ranking, excluded, sens,
                         typ, ref_type, warnings, sources, ref_dates, timings, n_units,
                         cache_info, [{"code": c, "name": names.get(c)} for c in parts],
                         n_filtered)
    if key is not None:
        _cache_put(_RESULT_CACHE, key, res, _RESULT_CACHE_SIZE)
    return transfer_profile.apply(conn, res)  # a measure's preconditions (never cached)


def _candidates(conn: Connection, level: Level, values: pd.DataFrame, reference: Reference,
                params: TransferParams) -> tuple[pd.DataFrame, Reference, list[str], int]:
    """The candidate set: without the units the reference covers and, with a filter, only the
    units that pass it (the standardisation is over these candidates). A reference unit that
    is removed becomes an external profile."""
    parts = [] if reference.unit_id is not None else \
        candidates.parts_of_reference(conn, reference.level, reference.code, level)
    keep = ~values.index.isin(parts)
    n_filtered = 0
    if params.filter:
        passed = candidates.filtered_codes(conn, level, params.filter)
        inside = values.index.isin(list(passed))
        n_filtered = int((keep & ~inside).sum())
        keep &= inside
    if reference.unit_id is not None and not keep[values.index.get_loc(reference.unit_id)]:
        reference = replace(reference, profile=values.loc[reference.unit_id], unit_id=None,
                            note=Note("reference_filtered_out"))
    kept = values[keep]
    if kept.empty or (reference.unit_id is not None and len(kept) == 1):
        code = "analysis.no_candidates_filter" if params.filter else "analysis.no_candidates"
        raise InvalidInput(code=code, params={"level": level.name, "count": len(parts)})
    return kept, reference, parts, n_filtered


def _k_for(k: int | None, n_units: int) -> int | None:
    """k as asked; None (choose by silhouette) only for levels up to AUTO_K_MAX_UNITS units."""
    if k is not None:
        return k
    return None if n_units <= AUTO_K_MAX_UNITS else LARGE_LEVEL_K


def refusal(exc: ValueError, step: str) -> QuartersError:
    """The error a request gets for a step the analysis core refused: the core's own coded
    error, or (a check of a library) its text under ``analysis.step_failed``."""
    if isinstance(exc, QuartersError):
        return exc
    return InvalidInput(code="analysis.step_failed", params={"step": step,
                                                             "reason": str(exc)[:200]})


def _why(exc: ValueError) -> dict[str, Any]:
    """Why a step was skipped, as a warning's params: the problem code and its params."""
    if isinstance(exc, QuartersError):
        return {"reason": exc.code, "reason_params": exc.params}
    return {"reason": "analysis.step_failed", "reason_params": {"reason": str(exc)[:200]}}


def _reference_type(typ: Any, reference: Reference, warnings: list[str]) -> int | None:
    from quarters.analysis.typology import assign

    try:
        if reference.unit_id is not None:
            value = typ.labels.get(reference.unit_id)
            if value is None or pd.isna(value):
                raise InvalidValue(code="analysis.reference_not_clustered")
            return int(value)
        return assign(typ, reference.profile.reindex(typ.indicators))
    except ValueError as exc:
        warnings.append(Note("reference_type_unknown", **_why(exc)))
        return None


def _sources(conn: Connection, ids: list[int], level: Level) -> list[dict[str, Any]]:
    """Sources of the values used plus the geometry source of the level."""
    geom_ids = conn.execute(text(f"SELECT DISTINCT source_id FROM {level.table}")).scalars()
    all_ids = sorted(set(ids) | set(geom_ids))
    rows = conn.execute(text(
        "SELECT id, key, name, publisher, licence, licence_url, attribution, url FROM sources "
        "WHERE id = ANY(:ids) ORDER BY id"), {"ids": all_ids}).mappings()
    return [dict(r) for r in rows]


# ----------------------------------------------------------------------------------------------
# JSON
# ----------------------------------------------------------------------------------------------
def _clean(obj: Any) -> Any:
    """JSON-safe: NaN/inf → None, numpy scalars → Python."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is pd.NA or obj is pd.NaT:
        return None
    return obj


def explanation(res: TransferResult, code: str, top: int = 3) -> dict[str, Any]:
    """explain() of the core plus one short sentence in German and English.

    Indicators with a standardised difference below 0.5 count as similar, the others are
    named with their difference in standard deviations (SD).
    """
    ex = explain(res.result, code, top=min(top, len(res.result.indicators)))
    if res.reference.unit_id == code:
        ex["text_de"] = "Die Referenz selbst."
        ex["text_en"] = "The reference itself."
        return ex
    de_names = {d.key: d.name_de for d in res.indicators}
    en_names = {d.key: d.name_en or d.key for d in res.indicators}
    near = [i for i in ex["most_similar"] if i["abs_diff"] < 0.5]
    far = [i for i in ex["least_similar"] if i["abs_diff"] >= 0.5]
    sd = "robuste SD" if res.result.method == "robust" else "SD"

    def de(i: dict[str, Any]) -> str:
        word = "höher" if i["diff"] > 0 else "niedriger"
        return f"{de_names[i['indicator']]} {i['abs_diff']:.1f} {sd} {word}".replace(".", ",")

    def en(i: dict[str, Any]) -> str:
        word = "higher" if i["diff"] > 0 else "lower"
        return f"{en_names[i['indicator']]} {i['abs_diff']:.1f} SD {word}"

    ex["text_de"] = ("Ähnlich: " + (", ".join(de_names[i["indicator"]] for i in near) or "–")
                     + ". Unterschiede: " + ("; ".join(de(i) for i in far) or "keine großen")
                     + ".")
    ex["text_en"] = ("Similar: " + (", ".join(en_names[i["indicator"]] for i in near) or "–")
                     + ". Differences: " + ("; ".join(en(i) for i in far) or "none large") + ".")
    return ex


def row_dict(res: TransferResult, code: str, with_explanation: bool = True) -> dict[str, Any]:
    """One ranking row as JSON."""
    r = res.ranking.loc[code]
    inds = res.result.indicators
    dist2 = float(r["distance"]) ** 2
    out = {
        "rank": int(r["rank"]), "code": code, "name": r["name"], "score": float(r["score"]),
        "distance": float(r["distance"]), "is_reference": bool(r["is_reference"]),
        "approximate": bool(r["approximate"]), "percentile": r["percentile"],
        "band": None if pd.isna(r["band"]) else {"key": r["band"], "de": r["band_de"],
                                                 "en": r["band_en"]},
        "values": {k: r[f"value_{k}"] for k in inds},
        "contributions": {k: r[f"contrib_{k}"] for k in inds},
        "shares": {k: (r[f"contrib_{k}"] / dist2 if dist2 > 0 else 0.0) for k in inds},
        "differences": {k: r[f"diff_{k}"] for k in inds},
    }
    if "cluster" in r.index:
        out["type"] = None if pd.isna(r["cluster"]) else {
            "cluster": int(r["cluster"]), "label_de": r["type_de"], "label_en": r["type_en"]}
        out["same_type"] = bool(r["same_type"])
    if "share_in_top" in r.index and pd.notna(r["share_in_top"]):
        out["sensitivity"] = {"share_in_top": r["share_in_top"], "rank_min": r["rank_min"],
                              "rank_median": r["rank_median"], "rank_max": r["rank_max"]}
    out.update(transfer_profile.row_fields(r))
    if with_explanation:
        ex = explanation(res, code)
        out["explanation"] = {k: ex[k] for k in ("most_similar", "least_similar", "text_de",
                                                 "text_en")}
    return _clean(out)


def to_json(res: TransferResult, *, scores: bool = False, scheme: str = "quantiles",
            k: int = 5, max_excluded: int = 50) -> dict[str, Any]:
    """The API's response body for a ranking."""
    p = res.params
    body: dict[str, Any] = {
        "reference": res.reference.as_dict(),
        "level": {"name": res.level.name, "label_de": res.level.label_de,
                  "label_en": res.level.label_en, "units": res.n_units,
                  "outlines": res.level.outlines},
        "indicators": [{"key": d.key, "name_de": d.name_de, "unit": d.unit,
                        "weight": res.result.weights.get(d.key, 0.0),
                        "used": d.key in res.result.indicators,
                        "ref_dates": res.ref_dates.get(d.key)} for d in res.indicators],
        "method": p.method, "metric": p.metric, "missing": p.missing,
        "n_candidates": len(res.ranking), "n_excluded": len(res.excluded),
        "filter": p.filter, "n_filtered_out": res.n_filtered_out,
        "part_of_reference": res.part_of_reference,
        "n_approximate": int(res.ranking["approximate"].sum()),
        "default_rule": DEFAULT_RULE, "band_rule": candidates.BAND_RULE,
        "excluded": res.excluded.head(max_excluded).to_dict(orient="records"),
        "warnings": res.warnings,
        "rows": [row_dict(res, c) for c in res.top.index],
        "sources": [{k: s[k] for k in ("key", "name", "licence", "licence_url", "attribution")}
                    for s in res.sources],
        "weights": {"asked": p.weights, "used": res.weights, "rounding": WEIGHT_ROUNDING},
        "cache": res.cache or None,
        "timings": {k: round(v, 4) for k, v in res.timings.items()},
    }
    if res.sensitivity is not None:
        body["sensitivity"] = {"stability": res.sensitivity.stability, "runs": res.sensitivity.n,
                               "spread": res.sensitivity.spread, "top": res.sensitivity.top}
    if res.typology is not None:
        t = res.typology
        body["typology"] = {
            "k": t.k, "silhouette": t.silhouette, "method": t.method,
            "reference_type": res.reference_type,
            "types": [{"cluster": int(c), "size": int(row["size"]), "label_de": row["label_de"],
                       "label_en": row["label_en"]} for c, row in t.profiles.iterrows()]}
    out = _clean(body)
    if scores:  # ~11,000 rows of plain str/float/int: cleaned where they are built
        classes = score_classes(res, scheme, k)
        out["scores"] = {"classification": _clean(classes["classification"]),
                         "units": classes["units"]}
    return out


def score_classes(res: TransferResult, scheme: str = "quantiles", k: int = 5) -> dict[str, Any]:
    """Scores of all candidates with choropleth classes (for a map of the similarity score)."""
    from quarters.analysis.classify import classify

    cls = classify(res.ranking["score"], scheme, k)
    return {"classification": {key: cls[key] for key in ("scheme", "k", "bins", "lower",
                                                            "counts", "labels", "n_missing")},
            "units": [{"code": str(c), "score": round(float(s), 3) if math.isfinite(s) else None,
                       "class": int(cl)}
                      for c, s, cl in zip(res.ranking.index, res.ranking["score"],
                                          cls["classes"], strict=True)]}


# ----------------------------------------------------------------------------------------------
# typology and cross-city
# ----------------------------------------------------------------------------------------------
def typology_for(conn: Connection, level_name: str, indicators: list[str] | None,
                 weights: dict[str, float] | None, k: int | None, method: str = "kmeans",
                 scaling: str = "zscore", *, limits: Limits | None = None) -> dict[str, Any]:
    """Typology of a level's units as JSON (cached on the rounded weights)."""
    if method not in CLUSTER_METHODS:
        raise InvalidParameter(code="analysis.not_one_of", pointer="method", params={
            "name": "method", "value": method[:80], "allowed": ", ".join(CLUSTER_METHODS)})
    if scaling not in METHODS:
        raise InvalidParameter(code="analysis.not_one_of", pointer="scaling", params={
            "name": "scaling", "value": scaling[:80], "allowed": ", ".join(METHODS)})
    if k is not None and not 2 <= k <= 20:
        raise InvalidParameter(code="analysis.between", pointer="k",
            params={"name": "k", "min": 2, "max": 20, "value": k})
    level = get_level(conn, level_name)
    defs, w = resolve_indicators(conn, level, indicators, weights)
    keys = [d.key for d in defs]
    values, _, _ = values_table(conn, level, keys)
    (limits or Limits()).check_units(len(values), level.name, method)
    try:
        t, hit = cached_typology(values, w, _k_for(k, len(values)), method, scaling)
    except QuartersError:
        raise  # the core's own coded refusal (InvalidValue)
    except ValueError as exc:
        raise refusal(exc, "typology") from exc
    names = units(conn, level)["name"]
    return _clean({
        "level": level.name, "indicators": keys, "weights": w, "weights_asked": weights,
        "weight_rounding": WEIGHT_ROUNDING, "cache": "hit" if hit else "miss", "k": t.k,
        "silhouette": t.silhouette, "silhouette_by_k": t.silhouette_by_k, "method": t.method,
        "scaling": t.scaling,
        "types": [{"cluster": int(c), "size": int(row["size"]), "label_de": row["label_de"],
                   "label_en": row["label_en"],
                   "centre": t.centres.loc[c].to_dict(), "centre_z": t.centres_z.loc[c].to_dict()}
                  for c, row in t.profiles.iterrows()],
        "units": [{"code": c, "name": names.get(c),
                   "cluster": None if pd.isna(v) else int(v)} for c, v in t.labels.items()],
        "n_excluded": len(t.excluded), "warnings": t.warnings,
    })


def cross_city(conn: Connection, level_name: str = "gemeinde", indicators: list[str] | None = None,
               weights: dict[str, float] | None = None, top: int = 10,
               method: str = "zscore", *, limits: Limits | None = None) -> dict[str, Any]:
    """Which units resemble Halle (Saale), which resemble Gera, and how alike are the two?"""
    if level_name not in ("gemeinde", "kreis"):
        raise InvalidParameter(code="analysis.cross_city", pointer="level",
            params={"value": level_name[:80]})
    codes = {HALLE_AGS: HALLE_AGS, GERA_AGS: GERA_AGS} if level_name == "gemeinde" else \
        {HALLE_AGS: HALLE_AGS[:5], GERA_AGS: GERA_AGS[:5]}
    out: dict[str, Any] = {"level": level_name, "cities": []}
    results = {}
    for ags, code in codes.items():
        params = TransferParams(reference=f"{level_name}:{code}", level=level_name,
                                indicators=indicators, weights=weights, top=top, method=method,
                                sensitivity=False, types=False)
        res = run_transfer(conn, params, limits=limits)
        results[ags] = res
        out["cities"].append({"ags": ags, "name": PROJECT_CITIES[ags], "code": code,
                              "rows": [row_dict(res, c, with_explanation=False)
                                       for c in res.top.index],
                              "warnings": res.warnings})
    (a, ra), (b, rb) = results.items()
    pair = []
    for x, res_x, y in ((a, ra, b), (b, rb, a)):
        other = codes[y]
        if other in res_x.ranking.index:
            r = res_x.ranking.loc[other]
            ex = explanation(res_x, other)
            pair.append({"city": PROJECT_CITIES[y], "code": other,
                         "in_ranking_of": PROJECT_CITIES[x], "rank": int(r["rank"]),
                         "score": float(r["score"]), "distance": float(r["distance"]),
                         "explanation_de": ex["text_de"], "explanation_en": ex["text_en"]})
    out["pair"] = pair
    out["indicators"] = [d.key for d in ra.indicators]
    out["n_candidates"] = len(ra.ranking)
    return _clean(out)


# ----------------------------------------------------------------------------------------------
# geometry for maps and files
# ----------------------------------------------------------------------------------------------
def geometries(conn: Connection, level: Level, *, simplify_m: float = 0.0,
               srid: int = 4326, codes: list[str] | None = None) -> gpd.GeoDataFrame:
    """Unit geometries (code, name) of a level, optionally simplified (metres) and reprojected
    (none for a level without outlines)."""
    if not level.outlines:
        return gpd.GeoDataFrame({"code": [], "name": []}, geometry=[], crs=srid).set_index("code")
    fw, params = level.from_where()
    g = "t.geom"
    if simplify_m > 0:
        g = f"ST_SimplifyPreserveTopology(t.geom, {float(simplify_m)})"
    if srid != STORAGE_SRID:
        g = f"ST_Transform({g}, {int(srid)})"
    where = ""
    if codes is not None:
        where = f" AND t.{level.code_column} = ANY(:codes)"
        params = {**params, "codes": list(codes)}
    rows = conn.execute(text(
        f"SELECT t.{level.code_column} AS code, t.name, ST_AsBinary({g}) AS wkb FROM {fw}{where} "
        f"ORDER BY 1"), params).all()
    return gpd.GeoDataFrame({"code": [r.code for r in rows], "name": [r.name for r in rows]},
                            geometry=[shapely.from_wkb(bytes(r.wkb)) for r in rows],
                            crs=srid).set_index("code")


def reference_geometry(conn: Connection, reference: Reference, srid: int = 4326
                       ) -> shapely.Geometry | None:
    """Geometry of the reference (unit, quarter or measure location) for highlighting."""
    kind, key = reference.kind, reference.code
    g = f"ST_Transform(geom, {int(srid)})" if srid != STORAGE_SRID else "geom"
    if kind == "measure":
        mid = reference.spec.partition(":")[2].strip()
        wkb = conn.execute(text(f"SELECT ST_AsBinary({g}) FROM measures_public WHERE id = :i"),
                           {"i": int(mid)}).scalar()
    else:
        level = get_level(conn, reference.level)
        if not level.outlines:
            return None
        fw, params = level.from_where()
        wkb = conn.execute(text(f"SELECT ST_AsBinary({g.replace('geom', 't.geom')}) FROM {fw} "
                                f"AND t.{level.code_column} = :c"), {**params, "c": key}).scalar()
    return shapely.from_wkb(bytes(wkb)) if wkb is not None else None
