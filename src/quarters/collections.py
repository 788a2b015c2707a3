"""The feature collections quarters publishes (OGC API Features), described in one place."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Queryable:
    """A property a client may filter on with ``?name=value``."""

    column: str
    kind: str = "string"  # string | boolean | integer
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
    id_column: str
    id_kind: str  # "integer" or "string"
    properties: dict[str, str]
    queryables: dict[str, Queryable] = field(default_factory=dict)
    joins: str = ""
    attribution_keys: tuple[str, ...] = ()
    geometry: str = "t.geom"  # SQL of the geometry to publish (e.g. a representative point)
    geometry_wgs84: str | None = None  # the same, stored in EPSG:4326 (saves reprojecting)

    def from_clause(self) -> str:
        """FROM clause with the table aliased as t."""
        return f"{self.table} t {self.joins}"


_AREA_HA = "round((ST_Area(t.geom) / 10000)::numeric, 1)"

_MEASURE_PROPERTIES = {
    "id": "t.id", "title": "t.title", "summary": "t.summary", "city_ags": "t.city_ags",
    "action_field": "t.action_field", "status": "t.status", "start_date": "t.start_date",
    "end_date": "t.end_date", "budget_planned": "t.budget_planned",
    "responsible_unit": "t.responsible_unit", "parent_id": "t.parent_id",
    "location_precision": "t.location_precision",
    "quarters": "t.quarter_slugs",
    "updated_at": "t.updated_at",
}
_MEASURE_QUERYABLES = {
    "city_ags": Queryable("t.city_ags", description="AGS der Stadt"),
    "action_field": Queryable("t.action_field", description="Handlungsfeld"),
    "status": Queryable("t.status", description="Status"),
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
}

MEASURES_PUBLIC = Collection(
    id="measures",
    title="Maßnahmen (veröffentlicht)",
    description="Veröffentlichte Smart-City-Maßnahmen in Halle (Saale) und Gera",
    table="measures_public",
    id_column="id",
    id_kind="integer",
    properties=_MEASURE_PROPERTIES,
    queryables=_MEASURE_QUERYABLES,
    geometry_wgs84="t.geom_wgs84",
)
# What staff see: drafts included, deleted excluded. Not an OGC collection.
MEASURES_STAFF = Collection(
    id="measures",
    title="Maßnahmen (alle Entwürfe)",
    description="",
    table="measures_current",
    id_column="id",
    id_kind="integer",
    properties={**_MEASURE_PROPERTIES, "published": "t.published"},
    queryables={**_MEASURE_QUERYABLES, "published": Queryable("t.published", "boolean")},
    geometry_wgs84="t.geom_wgs84",
)

# Light form for maps with many measures: one representative point, few properties.
MEASURES_POINTS = Collection(
    id="measures",
    title="Maßnahmen als Punkte",
    description="",
    table="measures_public",
    id_column="id",
    id_kind="integer",
    properties={"id": "t.id", "title": "t.title", "status": "t.status",
                "action_field": "t.action_field", "city_ags": "t.city_ags",
                "location_precision": "t.location_precision"},
    queryables=_MEASURE_QUERYABLES,
    geometry="ST_PointOnSurface(t.geom)",
    geometry_wgs84="ST_PointOnSurface(t.geom_wgs84)",
)

COLLECTIONS: dict[str, Collection] = {
    c.id: c
    for c in (
        Collection(
            id="municipalities",
            title="Gemeinden (BKG VG5000)",
            description="Alle Gemeinden Deutschlands, Stand 01.01.2021, © GeoBasis-DE / BKG 2021",
            table="municipalities",
            id_column="ags",
            id_kind="string",
            properties={
                "ags": "t.ags", "ars": "t.ars", "name": "t.name", "bez": "t.bez",
                "project_city": "t.project_city", "area_ha": _AREA_HA,
            },
            queryables={
                "project_city": Queryable("t.project_city", "boolean", "Projektstadt"),
                "ags": Queryable("t.ags", "string", "Amtlicher Gemeindeschlüssel"),
                "name": Queryable("t.name", "string", "Name"),
            },
        ),
        Collection(
            id="counties",
            title="Kreise (BKG VG5000)",
            description="Kreise und kreisfreie Städte, Stand 01.01.2021, © GeoBasis-DE / BKG 2021",
            table="counties",
            id_column="ags",
            id_kind="string",
            properties={
                "ags": "t.ags", "ars": "t.ars", "name": "t.name", "bez": "t.bez",
                "area_ha": _AREA_HA,
            },
            queryables={"ags": Queryable("t.ags"), "name": Queryable("t.name")},
        ),
        Collection(
            id="districts",
            title="Stadtteile und Stadtviertel",
            description="Statistische Bezirke der Projektstädte; 'approximate' kennzeichnet Näherungen",
            table="districts",
            id_column="id",
            id_kind="integer",
            properties={
                "id": "t.id", "city_ags": "t.city_ags", "level": "t.level", "code": "t.code",
                "name": "t.name", "stadtbezirk": "t.parent_name", "approximate": "t.approximate",
                "area_ha": "t.area_ha_official", "area_ha_geometry": _AREA_HA,
                "population": "t.population", "population_date": "t.population_date",
                "source": "s.key",
            },
            queryables={
                "city_ags": Queryable("t.city_ags"),
                "level": Queryable("t.level"),
                "code": Queryable("t.code"),
                "approximate": Queryable("t.approximate", "boolean"),
            },
            joins="JOIN sources s ON s.id = t.source_id",
        ),
        Collection(
            id="quarters",
            title="Pilotquartiere",
            description="Beispielquartiere der Smart-City-Strategie (Näherungen, nicht amtlich)",
            table="quarters",
            id_column="id",
            id_kind="integer",
            properties={
                "id": "t.id", "slug": "t.slug", "name": "t.name", "name_en": "t.name_en",
                "city_ags": "t.city_ags", "theme": "t.theme", "description": "t.description",
                "approximate": "t.approximate", "method": "t.method", "area_ha": _AREA_HA,
                "stated_area_ha": "t.stated_area_ha", "area_source": "t.area_source",
                "sources": "t.sources",
            },
            queryables={"city_ags": Queryable("t.city_ags"), "slug": Queryable("t.slug")},
        ),
        Collection(
            id="sites",
            title="Standorte in Pilotquartieren",
            description="Standorte wie RAW-Gelände und Star Park (Näherungen, nicht amtlich)",
            table="sites",
            id_column="id",
            id_kind="integer",
            properties={
                "id": "t.id", "slug": "t.slug", "name": "t.name", "name_en": "t.name_en",
                "quarter_slug": "q.slug", "description": "t.description",
                "approximate": "t.approximate", "method": "t.method", "area_ha": _AREA_HA,
                "stated_area_ha": "t.stated_area_ha", "area_source": "t.area_source",
                "sources": "t.sources",
            },
            queryables={"quarter_slug": Queryable("q.slug"), "slug": Queryable("t.slug")},
            joins="JOIN quarters q ON q.id = t.quarter_id",
        ),
        MEASURES_PUBLIC,
    )
}
