"""Analysis endpoints: indicators, choropleth classes, quarter profiles, transferability
rankings, typology and the Halle–Gera comparison. JSON only (a web view builds on these);
unit geometries come from the OGC API collections (municipalities, counties, districts,
quarters), joined by ``code``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from quarters import transfer
from quarters.api.bounds import AnalysisConnDep
from quarters.api.deps import ConnDep, SettingsDep
from quarters.api.responses import GeoJSONResponse, RawJSONResponse
from quarters.errors import InvalidParameter, NotFound, QuartersError
from quarters.indicators import provenance
from quarters.indicators.definitions import DEFAULT_RULE, get_definition
from quarters.indicators.levels import available_levels, get_level, level_sizes, units
from quarters.indicators.reading import catalogue, default_indicators, definition_dict, values_table
from quarters.messages import localise, request_language
from quarters.profiles import quarter_profile

router = APIRouter(prefix="/api/analysis", tags=["analysis"])

SCHEMES = ("quantiles", "natural_breaks", "equal_interval")
SIMPLIFY_M = {"municipalities": 150.0, "counties": 150.0}
CACHE_HEADER = "X-Analysis-Cache"
REFERENCE_HELP = ("Reference unit as kind:key — quarter:<slug>, gemeinde:<AGS>, kreis:<AGS>, "
                  "<district level>:<code> (e.g. stadtviertel:09) or measure:<id>")


def _list(values: list[str] | None) -> list[str] | None:
    """Repeated and/or comma-separated query values → list (None when absent)."""
    if not values:
        return None
    out = [v.strip() for item in values for v in item.split(",") if v.strip()]
    return out or None


def _scheme(value: str, k: int) -> None:
    if value not in SCHEMES:
        raise InvalidParameter(code="analysis.not_one_of", pointer="classes", params={
            "name": "classes", "value": value[:80], "allowed": ", ".join(SCHEMES)})
    if not 2 <= k <= 9:
        raise InvalidParameter(code="analysis.between", pointer="k",
                               params={"name": "k", "min": 2, "max": 9, "value": k})


# ----------------------------------------------------------------------------------------------
# levels and indicators
# ----------------------------------------------------------------------------------------------
@router.get("/levels", summary="Spatial levels that can be analysed")
def levels(request: Request, conn: ConnDep) -> dict:
    """Levels (gemeinde, kreis, quarter and the district levels) with their unit counts and
    the OGC API collection that holds their geometries. A level with values but no outlines
    (e.g. Gera's statistical districts) has ``outlines: false``, no collection and a note on
    where outlines would come from: it can be ranked on values, not mapped. The note and the
    rules come as ``{code, params, detail}`` in the request's language."""
    from quarters import candidates
    from quarters.statunits import no_outlines_note

    sizes = level_sizes(conn)
    collections = {"municipalities": "municipalities", "counties": "counties",
                   "districts": "districts", "quarters": "quarters", "statistical_units": None}
    out = []
    for lv in available_levels(conn):
        item = {"name": lv.name, "label_de": lv.label_de, "label_en": lv.label_en,
                "units": sizes.get(lv.name, 0), "collection": collections[lv.table],
                "code_property": {"municipalities": "ags", "counties": "ags",
                                  "districts": "code", "quarters": "slug",
                                  "statistical_units": "code"}[lv.table],
                "outlines": lv.outlines,
                "default_indicators": default_indicators(conn, lv)}
        if lv.outlines:
            item["approximate_units"] = len(candidates.approximate_codes(conn, lv))
            item["filter_properties"] = sorted(candidates.filter_fields(lv))
        else:
            item["note"] = no_outlines_note(conn, lv.name)
        out.append(item)
    return localise({"levels": out, "default_rule": DEFAULT_RULE, "band_rule": candidates.BAND_RULE,
            "bands": [{"key": k, "de": de, "en": en, "up_to_percent": b}
                      for b, k, de, en in candidates.BANDS],
            "urbanisation": candidates.URBANISATION_NOTE}, request_language(request))


@router.get("/indicators", summary="Indicators with units and coverage per level")
def indicators(request: Request, conn: ConnDep) -> dict:
    """Every indicator: unit, kind, profile aggregation rule, and per level the number of
    units, of values, of explicitly missing values and of units without any value; the
    description in the request's language."""
    return {"indicators": catalogue(conn, request_language(request))}


@router.get("/indicators/{key}", summary="One indicator")
def indicator(key: str, request: Request, conn: ConnDep) -> dict:
    """Definition and coverage of one indicator."""
    for item in catalogue(conn, request_language(request)):
        if item["key"] == key:
            return item
    raise NotFound(code="analysis.unknown_indicators", params={"keys": key[:80]})


@router.get("/indicators/{key}/values", summary="Values of an indicator with map classes",
            responses={200: {"content": {"application/geo+json": {}}}})
def indicator_values(
    key: str,
    conn: ConnDep,
    request: Request,
    level: Annotated[str, Query(description="gemeinde, kreis, quarter or a district level")]
    = "gemeinde",
    classes: Annotated[str, Query(description="quantiles, natural_breaks or equal_interval")]
    = "quantiles",
    k: Annotated[int, Query(description="number of classes (2–9)")] = 5,
    locale: Annotated[str, Query(description="legend number format: de or en")] = "de",
    format: Annotated[str, Query(description="json (values joined by code) or geojson "
                                 "(features with simplified geometry in CRS84)")] = "json",
) -> Response:
    """All units of a level with value (null = missing, with the reason), class (−1 =
    missing) and the legend of the classification (mapclassify)."""
    from quarters.analysis.classify import classify

    _scheme(classes, k)
    if locale not in ("de", "en"):
        raise InvalidParameter(code="analysis.not_one_of", pointer="locale", params={
            "name": "locale", "value": locale[:80], "allowed": "de, en"})
    if format not in ("json", "geojson"):
        raise InvalidParameter(code="analysis.not_one_of", pointer="format", params={
            "name": "format", "value": format[:80], "allowed": "json, geojson"})
    d = get_definition(conn, key)
    lvl = get_level(conn, level)
    values, reasons, meta = values_table(conn, lvl, [key])
    names = units(conn, lvl)["name"]
    cls = classify(values[key], classes, k, locale=locale)
    classification = {c: cls[c] for c in ("scheme", "k", "bins", "lower", "counts", "labels",
                                          "n_missing", "warnings")}
    reason = provenance.Renderer(request_language(request))  # code, params, detail
    rows = [{"code": code, "name": names.get(code),
             "value": None if v != v else v, "class": int(c),
             "missing_reason": reason(reasons[key].get(code))}
            for code, v, c in zip(values.index, values[key], cls["classes"], strict=True)]
    ref_dates = None if key not in meta.index else [meta.at[key, "first"], meta.at[key, "last"]]
    classification = localise(classification, request_language(request))
    head = {"indicator": definition_dict(d, request_language(request)), "level": lvl.name,
            "outlines": lvl.outlines,
            "classification": classification, "ref_dates": ref_dates,
            "n_units": len(rows), "n_missing": int(values[key].isna().sum())}
    if format == "json":
        import orjson

        return RawJSONResponse(orjson.dumps(transfer._clean({**head, "values": rows})))
    import orjson
    import shapely

    if lvl.outlines:
        geo = transfer.geometries(conn, lvl, simplify_m=SIMPLIFY_M.get(lvl.table, 0.0))
        geoms = shapely.set_precision(geo.geometry.reindex(values.index).to_numpy(), 1e-6)
    else:  # units without outlines: features with geometry null, never invented shapes
        geoms = [None] * len(rows)
    feats = [b'{"type":"Feature","id":' + orjson.dumps(r["code"]) + b',"properties":'
             + orjson.dumps(transfer._clean(r)) + b',"geometry":'
             + (shapely.to_geojson(g).encode() if g is not None else b"null") + b"}"
             for r, g in zip(rows, geoms, strict=True)]
    body = (orjson.dumps(transfer._clean({"type": "FeatureCollection", **head}))[:-1]
            + b',"features":[' + b",".join(feats) + b"]}")
    return GeoJSONResponse(body)


# ----------------------------------------------------------------------------------------------
# profiles
# ----------------------------------------------------------------------------------------------
@router.get("/profiles/{quarter_slug}", summary="Indicator profile of a pilot quarter")
def profile(quarter_slug: str, conn: ConnDep, request: Request,
            indicators: Annotated[list[str] | None, Query(
                description="indicator keys (repeat or comma-separate); default: all that "
                            "can be derived")] = None) -> dict:
    """The quarter's values derived from the districts it covers (tobler areal
    interpolation for counts, recomputed ratios), each with its derivation, plus the covered
    districts with the shares of their area inside the quarter. ``derivation`` and
    ``missing_reason`` are notes: ``code``, ``params`` and ``detail`` in the request's language
    (``?lang``, Accept-Language)."""
    prof = quarter_profile(conn, quarter_slug, _list(indicators))
    note = provenance.Renderer(request_language(request))
    prof["values"] = [{**v, "derivation": note(v["derivation"]),
                       "missing_reason": note(v["missing_reason"])} for v in prof["values"]]
    return transfer._clean(prof)


# ----------------------------------------------------------------------------------------------
# transfer
# ----------------------------------------------------------------------------------------------
class TransferRequest(BaseModel):
    """Body of POST /api/analysis/transfer."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "reference": "quarter:bildungsquartier-neustadt", "level": "stadtviertel",
        "indicators": ["population", "density"], "weights": {"density": 2}, "top": 10}]})

    reference: str = Field(..., description=REFERENCE_HELP)
    level: str = Field("gemeinde", description="level of the candidates")
    indicators: list[str] | None = Field(None, description="indicator keys; default per level")
    weights: dict[str, float] | None = Field(None, description="indicator → weight ≥ 0 "
                                             "(default 1 each)")
    method: str = Field("zscore", json_schema_extra={"enum": list(transfer.METHODS)})
    metric: str = Field("euclidean", json_schema_extra={"enum": list(transfer.METRICS)})
    missing: str = Field("drop_indicator", json_schema_extra={"enum": list(transfer.MISSING)})
    top: int = Field(10, description="rows returned (1 to QUARTERS_ANALYSIS_MAX_TOP, 500)")
    sensitivity: bool = Field(True, description="perturb the weights and report rank stability")
    runs: int = Field(200, description="sensitivity runs (1 to QUARTERS_ANALYSIS_MAX_RUNS, 500)")
    spread: float = Field(0.25, description="weights × uniform factor in [1−spread, 1+spread]")
    seed: int = 0
    types: bool = Field(True, description="typology; marks candidates of the reference's type")
    k: int | None = Field(None, description="number of types (default: by silhouette up to "
                          "2,000 units, else 6)")
    cluster_method: str = Field("kmeans",
                                json_schema_extra={"enum": list(transfer.CLUSTER_METHODS)})
    scores: bool = Field(False, description="also return the score and class of every "
                         "candidate (for a choropleth of the similarity)")
    classes: str = Field("quantiles", json_schema_extra={"enum": list(SCHEMES)})
    k_classes: int = Field(5, description="number of map classes of the score (2–9)")
    filter: str | None = Field(None, description="CQL2 text over the candidates' attributes, "
                               "e.g. land IN ('12','13','14','15','16') AND population >= 90000"
                               " (see filter_properties in /api/analysis/levels)")


def _params(body: TransferRequest) -> transfer.TransferParams:
    return transfer.TransferParams(
        reference=body.reference, level=body.level, indicators=body.indicators,
        weights=body.weights, method=body.method, metric=body.metric, missing=body.missing,
        top=body.top, sensitivity=body.sensitivity, runs=body.runs, spread=body.spread,
        seed=body.seed, types=body.types, k=body.k, cluster_method=body.cluster_method,
        filter=body.filter)


def checked_body(body: TransferRequest, settings: SettingsDep) -> TransferRequest:
    """The body, refused (400, the cap named) before it waits for a slot or a connection."""
    _scheme(body.classes, body.k_classes)
    _params(body).check(transfer.Limits.from_settings(settings))
    return body


def _run(conn: Any, body: TransferRequest, settings: Any, response: Response,
         request: Request) -> Response:
    """The ranking as JSON in the request's language, serialised by orjson (FastAPI's encoder
    walks every value of the ~11,000 rows: 30–60× slower for the same bytes)."""
    import orjson

    res = transfer.run_transfer(conn, _params(body), limits=transfer.Limits.from_settings(settings),
                                cache=True)
    out = localise(transfer.to_json(res, scores=body.scores, scheme=body.classes,
                                    k=body.k_classes), request_language(request))
    return RawJSONResponse(orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY
                                        | orjson.OPT_NON_STR_KEYS),
                           headers={CACHE_HEADER: res.cache.get("ranking", "miss")})


CheckedBody = Annotated[TransferRequest, Depends(checked_body)]
BUSY = {503: {"description": "busy with other analyses or too slow (Retry-After)"}}


@router.post("/transfer", summary="Rank candidates by similarity to a reference",
             responses=BUSY)
def transfer_post(body: CheckedBody, conn: AnalysisConnDep, settings: SettingsDep,
                  response: Response, request: Request) -> dict:
    """Transferability ranking: candidates of ``level`` ranked by weighted similarity to the
    reference, each row with score (0–100), distance, per-indicator contributions (sum =
    distance²), standardised differences, an explanation, sensitivity to the weights and
    whether it is of the reference's type. Missing values are never imputed: excluded
    candidates are listed with the reasons. Weights are rounded (``weights.rounding``); the
    same rounded question over the same data is answered from a cache
    (header ``X-Analysis-Cache: hit``). Warnings carry ``code``, ``params`` and ``detail`` in
    the request's language."""
    return _run(conn, body, settings, response, request)


def transfer_query(
    settings: SettingsDep,
    reference: Annotated[str, Query(description=REFERENCE_HELP)],
    level: str = "gemeinde",
    indicators: Annotated[list[str] | None, Query(description="keys; repeat or "
                                                  "comma-separate")] = None,
    weights: Annotated[list[str] | None, Query(description="indicator=weight; repeat or "
                                               "comma-separate")] = None,
    method: str = "zscore", metric: str = "euclidean", missing: str = "drop_indicator",
    top: int = 10, sensitivity: bool = True, runs: int = 200, spread: float = 0.25,
    seed: int = 0, types: bool = True, k: int | None = None, cluster_method: str = "kmeans",
    scores: bool = False, classes: str = "quantiles", k_classes: int = 5,
    filter: Annotated[str | None, Query(description="CQL2 text over the candidates' "  # noqa: A002
                                        "attributes")] = None,
) -> TransferRequest:
    """The query of GET /transfer as a checked body."""
    body = TransferRequest(
        reference=reference, level=level, indicators=_list(indicators),
        weights=transfer.parse_weights(weights, "weights") or None, method=method,
        metric=metric, missing=missing, top=top, sensitivity=sensitivity, runs=runs,
        spread=spread, seed=seed, types=types, k=k, cluster_method=cluster_method,
        scores=scores, classes=classes, k_classes=k_classes, filter=filter)
    return checked_body(body, settings)


@router.get("/transfer", summary="Ranking (GET form of POST /transfer)", responses=BUSY)
def transfer_get(body: Annotated[TransferRequest, Depends(transfer_query)],
                 conn: AnalysisConnDep, settings: SettingsDep, response: Response,
                 request: Request) -> dict:
    """Same as POST /transfer with query parameters (weights as ``density=2``)."""
    return _run(conn, body, settings, response, request)


@router.post("/report", summary="Transferability report as a self-contained HTML file",
             response_class=Response,
             responses={200: {"content": {"text/html": {}}}, **BUSY})
def report(body: CheckedBody, conn: AnalysisConnDep, settings: SettingsDep,
           request: Request) -> Response:
    """The same analysis as POST /transfer, delivered as an offline HTML report (download)."""
    from quarters.report import render_report

    res = transfer.run_transfer(conn, _params(body), limits=transfer.Limits.from_settings(settings),
                                cache=True)
    page = render_report(conn, res, settings, scheme=body.classes, k=body.k_classes,
                         lang=request_language(request))
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", f"transfer-{res.reference.code}-{res.level.name}")
    return Response(page, media_type="text/html; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{name}.html"'})


# ----------------------------------------------------------------------------------------------
# typology and cross-city
# ----------------------------------------------------------------------------------------------
@router.get("/typology", summary="Typology (clusters) of a level's units", responses=BUSY)
def typology(
    conn: AnalysisConnDep,
    settings: SettingsDep,
    response: Response,
    request: Request,
    level: str = "gemeinde",
    indicators: Annotated[list[str] | None, Query(description="keys; repeat or "
                                                  "comma-separate")] = None,
    weights: Annotated[list[str] | None, Query(description="indicator=weight")] = None,
    k: Annotated[int | None, Query(description="number of types; default by silhouette "
                                   "(levels up to 2,000 units), else 6")] = None,
    method: str = "kmeans",
    scaling: str = "zscore",
) -> dict:
    """Named types (k-means, or Ward up to QUARTERS_ANALYSIS_MAX_WARD_UNITS units) with sizes
    and centres, and the type of every unit; cached on the rounded weights."""
    body = transfer.typology_for(conn, level, _list(indicators),
                                 transfer.parse_weights(weights, "weights") or None, k, method,
                                 scaling, limits=transfer.Limits.from_settings(settings))
    response.headers[CACHE_HEADER] = body["cache"]
    return localise(body, request_language(request))


@router.get("/cross-city", summary="Which units resemble Halle (Saale), which resemble Gera",
            responses=BUSY)
def cross_city(
    conn: AnalysisConnDep,
    settings: SettingsDep,
    request: Request,
    level: Annotated[str, Query(description="gemeinde or kreis")] = "gemeinde",
    indicators: Annotated[list[str] | None, Query(description="keys")] = None,
    weights: Annotated[list[str] | None, Query(description="indicator=weight")] = None,
    top: int = 10,
    method: str = "zscore",
) -> dict:
    """Top matches of each project city among all municipalities (or Kreise) and how the two
    cities rank in each other's list."""
    limits = transfer.Limits.from_settings(settings)
    if not 1 <= top <= limits.max_top:
        raise InvalidParameter(code="analysis.between", pointer="top", params={
            "name": "top", "min": 1, "max": limits.max_top, "value": top})
    if method not in transfer.METHODS:
        raise InvalidParameter(code="analysis.not_one_of", pointer="method", params={
            "name": "method", "value": method[:80], "allowed": ", ".join(transfer.METHODS)})
    try:
        return localise(transfer.cross_city(conn, level, _list(indicators),
                                            transfer.parse_weights(weights, "weights") or None,
                                            top, method, limits=limits), request_language(request))
    except QuartersError:
        raise  # the core's own coded refusal (InvalidValue)
    except ValueError as exc:  # pragma: no cover - a library's check
        raise transfer.refusal(exc, "cross_city") from exc
