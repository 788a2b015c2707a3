"""The feature collections quarters publishes (OGC API Features), described in one place."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

KINDS = ("string", "boolean", "integer", "number", "date")


@dataclass(frozen=True)
class Queryable:
    """A property a client may filter on with ``?name=value`` (and in CQL2 filters)."""

    column: str  # SQL expression of the value (table aliased t)
    kind: str = "string"  # one of KINDS
    description: str = ""
    sql: str = ""  # condition with {p} for the bind name; default "column = :p"

    def condition(self, bind: str) -> str:
        """SQL condition for this filter with the value bound as ``:bind``."""
        return self.sql.format(p=bind) if self.sql else f"{self.column} = :{bind}"


@dataclass(frozen=True)
class Collection:
    """A published table: id column, exposed properties (SQL expressions) and queryables."""

    id: str
    title: str
    description: str
    table: str
    properties: dict[str, str]
    id_column: str = "id"
    id_kind: str = "integer"  # "integer" or "string"
    queryables: dict[str, Queryable] = field(default_factory=dict)
    joins: str = ""
    attribution_keys: tuple[str, ...] = ()
    geometry: str = "t.geom"  # SQL of the geometry to publish (e.g. a representative point)
    geometry_wgs84: str | None = "t.geom_wgs84"  # the same in EPSG:4326 (stored: no reprojecting)
    # the stored EPSG:4326 column (GiST-indexed, migration 0012): a CRS84 bbox is tested on it
    bbox_wgs84: str | None = "t.geom_wgs84"
    geometry_type: str = "MultiPolygon"  # GeoJSON type of every feature ("Geometry": mixed)
    where: str = ""  # condition that restricts the table to this collection
    temporal: tuple[str, str] | None = None  # SQL (date) of the start and end of a feature
    temporal_names: tuple[str, str] | None = None  # the properties behind ``temporal``
    # the properties a map needs, the only ones in vector tiles (names of ``properties``)
    tile_properties: tuple[str, ...] = ()

    def from_clause(self) -> str:
        """FROM clause with the table aliased as t."""
        return f"{self.table} t {self.joins}"

    def base_where(self) -> str:
        """The collection's own restriction as SQL (TRUE for a whole table)."""
        return self.where or "TRUE"


_AREA_HA = "round((ST_Area(t.geom) / 10000)::numeric, 1)"
KREISFREI = "('Kreisfreie Stadt', 'Stadtkreis')"


def _values(indicator: str, level: str, code: str) -> str:
    return (f"FROM indicator_values v WHERE v.indicator = '{indicator}' "
            f"AND v.level = {level} AND v.unit_code = {code}")


def _figure_date(indicator: str, level: str, code: str) -> str:
    """SQL of the newest reference date of an indicator for one unit: what
    ``quarters_figure_date`` (migration 0007) returns, as a subquery the planner runs on the
    unique index (a call of the SQL function costs ~0.1 ms per row, most of a page)."""
    return f"(SELECT max(quarters_ref_date(v.ref_date)) {_values(indicator, level, code)})"


def _figure(indicator: str, level: str, code: str, digits: int | None = None) -> str:
    """SQL of the newest value of an indicator for one unit (``quarters_figure``, migration
    0007, as a subquery; see _figure_date)."""
    sql = (f"(SELECT v.value {_values(indicator, level, code)} "
           "ORDER BY quarters_ref_date(v.ref_date) DESC NULLS LAST LIMIT 1)")
    if digits is None:
        return f"{sql}::bigint"
    return f"round({sql}::numeric, {digits})"


def _figures(level: str, code: str) -> dict[str, str]:
    """Destatis figures of a municipality or Kreis: population, official area, density."""
    return {
        "population": _figure("population", level, code),
        "area_km2": _figure("area_km2", level, code, 2),
        "density": _figure("density", level, code, 1),
        "population_date": _figure_date("population", level, code),
    }


def _figure_queryables(what: str) -> dict[str, Queryable]:
    level = "'gemeinde'" if what == "gemeinde" else "'kreis'"
    props = _figures(level, "t.ags")
    return {
        "population": Queryable(props["population"], "integer", "Einwohner (Destatis 31.12.2019)"),
        "area_km2": Queryable(props["area_km2"], "number", "Fläche in km² (Destatis)"),
        "density": Queryable(props["density"], "number", "Einwohner je km²"),
        "population_date": Queryable(props["population_date"], "date", "Stichtag der Einwohnerzahl"),
    }


_MEASURE_PROPERTIES = {
    "id": "t.id", "title": "t.title", "summary": "t.summary", "city_ags": "t.city_ags",
    "action_field": "t.action_field", "status": "t.status", "start_date": "t.start_date",
    "end_date": "t.end_date", "budget_planned": "t.budget_planned",
    "budget_spent": "t.budget_spent",
    "responsible_unit": "t.responsible_unit", "parent_id": "t.parent_id",
    "origin_id": "t.origin_id",
    "location_precision": "t.location_precision",
    "quarters": "t.quarter_slugs",
    "districts": "t.district_ids",
    "updated_at": "t.updated_at",
}
_MEASURE_QUERYABLES = {
    "city_ags": Queryable("t.city_ags", description="AGS der Stadt"),
    "action_field": Queryable("t.action_field", description="Handlungsfeld"),
    "status": Queryable("t.status", description="Status"),
    "start_date": Queryable("t.start_date", "date", "Beginn"),
    "end_date": Queryable("t.end_date", "date", "Ende"),
    "budget_planned": Queryable("t.budget_planned", "number", "geplantes Budget in Euro"),
    "budget_spent": Queryable("t.budget_spent", "number", "verausgabtes Budget in Euro"),
    "location_precision": Queryable("t.location_precision", description="Lagegenauigkeit"),
    "quarter": Queryable("t.quarter_ids", description="Pilotquartier (slug)",
                         sql="t.quarter_ids && ARRAY(SELECT id FROM quarters WHERE slug = :{p})"),
    "district": Queryable("t.district_ids", "integer", "Stadtviertel (id)",
                          sql=":{p} = ANY(t.district_ids)"),
    "edition": Queryable("edition", description="Strategie-Fortschreibung",
                         sql="EXISTS (SELECT 1 FROM measure_editions e WHERE "
                             "e.measure_id = t.id AND e.edition_key = :{p})"),
    "q": Queryable("t.search", description="Volltextsuche",
                   sql="(t.search @@ websearch_to_tsquery('german', :{p}) OR "
                       "t.title ILIKE '%' || replace(replace(:{p}, '%', ''), '_', '') || '%')"),
    "parent_id": Queryable("t.parent_id", "integer", "übergeordnete Maßnahme"),
    "origin_id": Queryable("t.origin_id", "integer", "übertragen aus Maßnahme"),
}
_MEASURE_TEMPORAL = {"temporal": ("t.start_date", "t.end_date"),
                     "temporal_names": ("start_date", "end_date")}

MEASURES_PUBLIC = Collection(
    id="measures",
    title="Maßnahmen (veröffentlicht)",
    description="Veröffentlichte Smart-City-Maßnahmen in Halle (Saale) und Gera "
                "(Punkte, Linien und Flächen gemischt; je Geometrieart: measures-points, "
                "measures-lines, measures-areas)",
    table="measures_public",
    properties=_MEASURE_PROPERTIES,
    queryables=_MEASURE_QUERYABLES,
    geometry_type="Geometry",
    tile_properties=("id", "title", "status", "action_field", "city_ags", "location_precision"),
    **_MEASURE_TEMPORAL,
)
# What staff see: drafts included, deleted excluded. Not an OGC collection.
MEASURES_STAFF = replace(
    MEASURES_PUBLIC,
    title="Maßnahmen (alle Entwürfe)",
    description="",
    table="measures_current",
    properties={**_MEASURE_PROPERTIES, "published": "t.published"},
    queryables={**_MEASURE_QUERYABLES, "published": Queryable("t.published", "boolean")},
)

# Light form for maps with many measures: one representative point, few properties.
MEASURES_POINTS = Collection(
    id="measures",
    title="Maßnahmen als Punkte",
    description="",
    table="measures_public",
    properties={"id": "t.id", "title": "t.title", "status": "t.status",
                "action_field": "t.action_field", "city_ags": "t.city_ags",
                "location_precision": "t.location_precision"},
    queryables=_MEASURE_QUERYABLES,
    geometry="ST_PointOnSurface(t.geom)",
    geometry_wgs84="ST_PointOnSurface(t.geom_wgs84)",
    geometry_type="Point",
    **_MEASURE_TEMPORAL,
)


def _measures_of_kind(suffix: str, title: str, dimension: int, geometry_type: str) -> Collection:
    """The published measures of one geometry kind, single parts promoted to multi-parts."""
    return replace(
        MEASURES_PUBLIC, id=f"measures-{suffix}", title=f"Maßnahmen: {title}",
        description=f"Veröffentlichte Maßnahmen mit {title} als Geometrie ({geometry_type})",
        where=f"ST_Dimension(t.geom) = {dimension}",
        geometry="ST_Multi(t.geom)", geometry_wgs84="ST_Multi(t.geom_wgs84)",
        geometry_type=geometry_type,
    )


MEASURE_KINDS = (
    _measures_of_kind("points", "Punkte", 0, "MultiPoint"),
    _measures_of_kind("lines", "Linien", 1, "MultiLineString"),
    _measures_of_kind("areas", "Flächen", 2, "MultiPolygon"),
)

_M_KREISFREI = (f"EXISTS (SELECT 1 FROM counties k WHERE k.ags = left(t.ags, 5) "
                f"AND k.bez IN {KREISFREI})")
_DISTRICT_FIGURES = {
    "population": "t.population",
    "area_km2": "round((t.area_ha_official / 100)::numeric, 3)",
    "density": "round((t.population / NULLIF(t.area_ha_official / 100, 0))::numeric, 1)",
    "population_date": "quarters_ref_date(t.population_date)",
    "area_date": _figure_date("area_km2", "t.level", "t.code"),
    "source_retrieved": "s.retrieved",
}


def _admin_area(table: str, title: str, description: str, what: str, names: tuple[str, str], *,
                kreis: str, kreisfrei: str, own: dict[str, str] | None = None,
                own_queryables: dict[str, Queryable] | None = None,
                tile_properties: tuple[str, ...]) -> Collection:
    """A table of the official boundaries keyed by AGS (municipalities, counties;
    models.AdminArea) with its Destatis figures; ``what`` is the figures' level, ``names`` the
    descriptions of the ``ags`` and ``bez`` queryables."""
    figures = _figures(f"'{what}'", "t.ags")
    return Collection(
        id=table, title=title, description=description, table=table,
        id_column="ags", id_kind="string",
        properties={
            "ags": "t.ags", "ars": "t.ars", "name": "t.name", "bez": "t.bez",
            "land": "left(t.ags, 2)", "kreis": kreis, "kreisfrei": kreisfrei, **(own or {}),
            "area_ha": _AREA_HA, **figures,
        },
        queryables={
            **(own_queryables or {}),
            "ags": Queryable("t.ags", description=names[0]),
            "name": Queryable("t.name", description="Name"),
            "bez": Queryable("t.bez", description=names[1]),
            "land": Queryable("left(t.ags, 2)", description="Land (zweistelliger Schlüssel)"),
            "kreis": Queryable(kreis, description="Kreis (fünfstelliger Schlüssel)"),
            "kreisfrei": Queryable(kreisfrei, "boolean", "kreisfreie Stadt"),
            **_figure_queryables(what),
        },
        temporal=(figures["population_date"], figures["population_date"]),
        temporal_names=("population_date", "population_date"),
        tile_properties=tile_properties,
    )


def _drawn_area(table: str, title: str, description: str, own: dict[str, str],
                own_queryables: dict[str, Queryable], joins: str = "") -> Collection:
    """A table of areas drawn for the project (pilot quarters, sites; models.DrawnArea): its
    own properties (what it belongs to) after the names, then how it was drawn."""
    return Collection(
        id=table, title=title, description=description, table=table,
        properties={
            "id": "t.id", "slug": "t.slug", "name": "t.name", "name_en": "t.name_en", **own,
            "description": "t.description", "approximate": "t.approximate",
            "method": "t.method", "area_ha": _AREA_HA, "stated_area_ha": "t.stated_area_ha",
            "area_source": "t.area_source", "sources": "t.sources",
        },
        queryables={**own_queryables, "slug": Queryable("t.slug", description="Kurzname"),
                    "name": Queryable("t.name", description="Name")},
        joins=joins,
        tile_properties=("id", "slug", "name", "name_en", *own, "approximate"),
    )


COLLECTIONS: dict[str, Collection] = {
    c.id: c
    for c in (
        _admin_area(
            "municipalities", "Gemeinden (BKG VG5000)",
            "Alle Gemeinden Deutschlands, Stand 01.01.2021, © GeoBasis-DE / BKG 2021; "
            "Einwohner und Fläche: Destatis Gemeindeverzeichnis",
            "gemeinde", ("Amtlicher Gemeindeschlüssel", "Bezeichnung (Gemeinde, Stadt, …)"),
            kreis="left(t.ags, 5)", kreisfrei=_M_KREISFREI,
            own={"project_city": "t.project_city"},
            own_queryables={"project_city": Queryable("t.project_city", "boolean", "Projektstadt")},
            tile_properties=("ags", "name", "bez", "kreis", "project_city"),
        ),
        _admin_area(
            "counties", "Kreise (BKG VG5000)",
            "Kreise und kreisfreie Städte, Stand 01.01.2021, © GeoBasis-DE / BKG 2021; "
            "Einwohner und Fläche: Summen der Gemeinden (Destatis)",
            "kreis", ("Kreisschlüssel", "Bezeichnung (Landkreis, …)"),
            kreis="t.ags", kreisfrei=f"t.bez IN {KREISFREI}",
            tile_properties=("ags", "name", "bez"),
        ),
        Collection(
            id="districts",
            title="Stadtteile und Stadtviertel",
            description="Statistische Bezirke der Projektstädte; 'approximate' kennzeichnet Näherungen",
            table="districts",
            properties={
                "id": "t.id", "city_ags": "t.city_ags", "level": "t.level", "code": "t.code",
                "name": "t.name", "stadtbezirk": "t.parent_name", "approximate": "t.approximate",
                "area_ha": "t.area_ha_official", "area_ha_geometry": _AREA_HA,
                **_DISTRICT_FIGURES, "source": "s.key",
            },
            queryables={
                "city_ags": Queryable("t.city_ags", description="AGS der Stadt"),
                "level": Queryable("t.level", description="Ebene (stadtviertel, …)"),
                "code": Queryable("t.code", description="Nummer des Bezirks"),
                "name": Queryable("t.name", description="Name"),
                "stadtbezirk": Queryable("t.parent_name", description="Stadtbezirk"),
                "approximate": Queryable("t.approximate", "boolean", "Näherung (nicht amtlich)"),
                "population": Queryable("t.population", "integer", "Einwohner"),
                "area_km2": Queryable(_DISTRICT_FIGURES["area_km2"], "number", "Fläche in km²"),
                "density": Queryable(_DISTRICT_FIGURES["density"], "number", "Einwohner je km²"),
                "population_date": Queryable(_DISTRICT_FIGURES["population_date"], "date",
                                             "Stichtag der Einwohnerzahl"),
                "area_date": Queryable(_DISTRICT_FIGURES["area_date"], "date",
                                       "Stand der Fläche"),
                "source_retrieved": Queryable("s.retrieved", "date", "Abrufdatum der Quelle"),
            },
            joins="JOIN sources s ON s.id = t.source_id",
            temporal=(_DISTRICT_FIGURES["population_date"], _DISTRICT_FIGURES["population_date"]),
            temporal_names=("population_date", "population_date"),
            tile_properties=("id", "name", "code", "level", "city_ags", "stadtbezirk",
                             "approximate", "area_ha", "population"),
        ),
        _drawn_area("quarters", "Pilotquartiere",
                    "Beispielquartiere der Smart-City-Strategie (Näherungen, nicht amtlich)",
                    {"city_ags": "t.city_ags", "theme": "t.theme"},
                    {"city_ags": Queryable("t.city_ags", description="AGS der Stadt")}),
        _drawn_area("sites", "Standorte in Pilotquartieren",
                    "Standorte wie RAW-Gelände und Star Park (Näherungen, nicht amtlich)",
                    {"quarter_slug": "q.slug"},
                    {"quarter_slug": Queryable("q.slug", description="Pilotquartier (slug)")},
                    joins="JOIN quarters q ON q.id = t.quarter_id"),
        MEASURES_PUBLIC,
        *MEASURE_KINDS,
    )
}
