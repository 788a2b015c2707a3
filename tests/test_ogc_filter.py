"""OGC API Features Part 3 over HTTP: CQL2 ``filter``, ``sortby`` and ``properties`` on the items
endpoint, against counts computed independently from the tables."""

from __future__ import annotations

import json
import urllib.parse

import pytest
from sqlalchemy import text

ITEMS = "/api/collections/{}/items"


def matched(client, collection: str, **params) -> dict:  # noqa: ANN001
    response = client.get(ITEMS.format(collection) + "?" + urllib.parse.urlencode(params))
    assert response.status_code == 200, response.text[:400]
    return response.json()


def count(conn, sql: str, **params) -> int:  # noqa: ANN001
    return conn.execute(text(sql), params).scalar_one()


def test_text_filter_counts_match_the_table(client, conn):
    body = matched(client, "municipalities", filter="land = '15' AND name LIKE 'H%'", limit=1)
    want = count(conn, "SELECT count(*) FROM municipalities WHERE ags LIKE '15%' AND name LIKE 'H%'")
    assert want > 0
    assert body["numberMatched"] == want


def test_in_and_between_on_figures(client, conn):
    body = matched(client, "municipalities", limit=1,
                   filter="land IN ('12','13','14','15','16') AND population BETWEEN 90000 AND 300000")
    names = {f["properties"]["name"] for f in
             matched(client, "municipalities", limit=200, filter="land IN ('12','13','14','15','16') "
                     "AND population BETWEEN 90000 AND 300000")["features"]}
    assert {"Halle (Saale)", "Magdeburg", "Gera"} <= names
    assert body["numberMatched"] == len(names)


def test_json_filter_equals_text_filter(client):
    as_text = matched(client, "municipalities", filter="land = '16' AND kreisfrei = true", limit=1)
    as_json = matched(client, "municipalities", limit=1, **{
        "filter-lang": "cql2-json",
        "filter": json.dumps({"op": "and", "args": [
            {"op": "=", "args": [{"property": "land"}, "16"]},
            {"op": "=", "args": [{"property": "kreisfrei"}, True]}]})})
    assert as_text["numberMatched"] == as_json["numberMatched"] > 0


def test_spatial_filter_in_lon_lat(client, conn):
    # the municipalities that a point in Halle's market square lies in: exactly Halle
    body = matched(client, "municipalities", filter="S_INTERSECTS(geometry, POINT(11.9694 51.4828))")
    assert [f["properties"]["ags"] for f in body["features"]] == ["15002000"]


def test_sortby_and_properties(client):
    body = matched(client, "municipalities", filter="land = '15' AND kreisfrei = true",
                   sortby="-population", properties="name,population", limit=3)
    names = [f["properties"]["name"] for f in body["features"]]
    assert names[:2] == ["Halle (Saale)", "Magdeburg"]
    assert set(body["features"][0]["properties"]) == {"name", "population"}


@pytest.mark.parametrize("bad", [
    "nosuchproperty = 1",
    "pg_sleep(5) = 1",
    "name = ",
    "name; DROP TABLE municipalities",
])
def test_invalid_filters_are_400_and_name_the_problem(client, conn, bad):
    response = client.get(ITEMS.format("municipalities") + "?" + urllib.parse.urlencode({"filter": bad}))
    assert response.status_code == 400, response.text[:300]
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"].startswith("cql2.") and problem["pointer"] == "filter", problem
    assert count(conn, "SELECT count(*) FROM municipalities") == 10_997


def test_injection_in_a_literal_stays_a_literal(client):
    body = matched(client, "municipalities", filter="name = 'x'' OR ''1''=''1'", limit=1)
    assert body["numberMatched"] == 0


def test_unknown_sortby_is_400(client):
    response = client.get(ITEMS.format("municipalities") + "?sortby=pg_sleep")
    assert response.status_code == 400
