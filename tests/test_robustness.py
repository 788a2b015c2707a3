"""No input gives a 5xx: the catch-all, the request guard and the validators at their root.

Every hostile input below was a plain-text 500 (or stored wrongly) before; now each is a 4xx
problem+json with the security headers, and nothing is stored.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from factories import bearer, measure_feature
from quarters import feeds
from quarters.errors import QuartersError, status_for
from quarters.validation import MAX_JSON_DEPTH, check_text, control_problem, parse_int, parse_json

IDEA = {"title": "Bank am Markt", "text": "Eine Sitzbank mit Schatten am Markt.",
        "action_field": "Mobilität", "geometry": {"type": "Point", "coordinates": [11.97, 51.48]}}


def assert_clean_4xx(response, status: int | None = None) -> None:  # noqa: ANN001
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if status is not None:
        assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" in response.headers
    for leak in ("Traceback", "psycopg", "sqlalchemy", "/vsi", "Error:"):
        assert leak not in response.text


def count(conn, table: str) -> int:  # noqa: ANN001
    return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


# -- the catch-all -----------------------------------------------------------------------------
def test_an_unhandled_exception_is_a_problem_500_with_headers_and_request_id(app, caplog):
    @app.get("/api/test-only-boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail /srv/quarters/x.gpkg")

    app.router.routes.insert(0, app.router.routes.pop())  # before the static site's mount

    with TestClient(app) as client:  # raise_server_exceptions stays on: nothing may reach it
        response = client.get("/api/test-only-boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" in response.headers
    request_id = response.headers["x-request-id"]
    body = response.json()
    assert body["status"] == 500 and body["request_id"] == request_id
    assert request_id in body["detail"]
    assert "secret" not in response.text and "RuntimeError" not in response.text
    assert "Traceback" not in response.text
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the traceback is in the log


def test_every_answer_has_a_request_id(client):
    assert len(client.get("/api/health").headers["x-request-id"]) == 32


# -- path and query text -----------------------------------------------------------------------
@pytest.mark.parametrize("url", [
    "/api/measures?q=a%00b",
    "/api/measures?city_ags=%00",
    "/api/collections/measures/items?status=geplant%00",
    "/api/collections/measures%00/items",
    "/api/analysis/indicators/population%00",
    "/api/editions/%00/measures",
    "/api/ideas?state=%ED%A0%80",  # an encoded lone surrogate
    "/api/measures?q=%FF%FE",  # not UTF-8
    "/api/measures?q=%zz",  # invalid percent-encoding
    "/api/measures?q=100%",
    "/api/feeds/changes.atom?quarter=a%01b",
    "/api/analysis/typology?level=%00",
])
def test_nul_surrogates_and_broken_encoding_in_path_or_query_are_400(client, url):
    assert_clean_4xx(client.get(url), 400)


@pytest.mark.parametrize("value", ["²", "--5", "%2B5", "%205", "٣", "5%20", "1_000", "0x5",
                                   "9" * 40])
@pytest.mark.parametrize("url", ["/api/measures?limit={}", "/api/measures?offset={}",
                                 "/api/measures?district={}", "/api/measures/points?limit={}",
                                 "/api/ideas?limit={}", "/api/measures/{}",
                                 "/api/ideas/{}", "/api/near?district={}"])
def test_integers_are_ascii_digits_only(client, url, value):
    assert_clean_4xx(client.get(url.format(value)))


@pytest.mark.parametrize("value", ["²", "٣", "--5", "%2B5", "0x5", "9" * 40])
def test_measure_references_are_ascii_integers(client, value):
    assert_clean_4xx(client.get(f"/api/analysis/transfer?reference=measure:{value}"))


# -- JSON bodies -------------------------------------------------------------------------------
def test_a_string_full_of_brackets_is_fine_but_deep_nesting_is_400(client, conn):
    headers = bearer(client, conn, "planner")
    brackets = measure_feature(summary="[" * 400 + "{" * 99)
    response = client.post("/api/measures", json=brackets, headers=headers)
    assert response.status_code == 201, response.text
    deep = b'{"type": "Feature", "x": "' + b"[" * 5000 + b'", "y": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = client.post("/api/measures", content=deep, headers={
        **headers, "Content-Type": "application/json"})
    assert_clean_4xx(response, 400)
    assert response.json()["code"] == "json.too_deep"


@pytest.mark.parametrize("path,body,pointer", [
    ("/api/ideas", {**IDEA, "title": "Bank \ud800 am Markt"}, None),
    ("/api/ideas", {**IDEA, "text": "Eine Idee\x00 mit NUL drin"}, "/text"),
    ("/api/auth/login", {"username": "admin\udc00", "password": "x"}, None),
    ("/api/auth/login", {"username": "admin\x00", "password": "x"}, "/username"),
])
def test_nul_and_lone_surrogates_in_json_are_400(client, conn, path, body, pointer):
    before = count(conn, "ideas")
    raw = json.dumps(body).encode()  # ensure_ascii: \ud800 travels as an escape
    response = client.post(path, content=raw, headers={"Content-Type": "application/json"})
    assert_clean_4xx(response, 400)
    if pointer:
        assert response.json()["errors"][0]["pointer"] == pointer
    assert count(conn, "ideas") == before


def test_nul_inside_list_items_is_refused_and_nothing_is_stored(client, conn):
    headers = bearer(client, conn, "planner")
    before = count(conn, "measures")
    response = client.post("/api/measures", json=measure_feature(partners=["Uni", "Stadt\x00"]),
                           headers=headers)
    assert_clean_4xx(response, 400)
    assert response.json()["errors"][0]["pointer"] == "/properties/partners/1"
    assert count(conn, "measures") == before


@pytest.mark.parametrize("field,value", [
    ("title", "Titel\x1b[31m"), ("partners", ["Stadt\x07"]), ("funding_line", "a\tb"),
    ("description", "Zeile\x0bumbruch"),
])
def test_control_characters_in_stored_measure_texts_are_422(client, conn, field, value):
    headers = bearer(client, conn, "planner")
    before = count(conn, "measures")
    response = client.post("/api/measures", json=measure_feature(**{field: value}), headers=headers)
    assert_clean_4xx(response, 422)
    assert count(conn, "measures") == before


def test_multiline_fields_keep_line_breaks_and_tabs(client, conn):
    headers = bearer(client, conn, "planner")
    response = client.post("/api/measures", json=measure_feature(
        description="Erste Zeile\r\n\tzweite Zeile"), headers=headers)
    assert response.status_code == 201, response.text


def test_control_characters_in_login_names_and_moderation_reasons_are_422(client, conn):
    response = client.post("/api/auth/login", json={"username": "ad\x1bmin", "password": "x"})
    assert_clean_4xx(response, 422)
    assert client.post("/api/ideas", json=IDEA).status_code == 202
    idea_id = conn.execute(text("SELECT max(id) FROM ideas")).scalar_one()
    headers = bearer(client, conn, "moderator")
    response = client.post(f"/api/ideas/{idea_id}/moderate", headers=headers,
                           json={"decision": "reject", "reason": "Spam\x07"})
    assert_clean_4xx(response, 422)
    assert conn.execute(text("SELECT state FROM ideas WHERE id = :i"), {"i": idea_id}).scalar() \
        not in ("abgelehnt",)


def test_error_bodies_do_not_echo_long_input(client):
    response = client.get("/api/measures/points?format=" + "x" * 5000)
    assert_clean_4xx(response, 400)
    assert len(response.text) < 2000


# -- the feed ----------------------------------------------------------------------------------
def test_the_atom_feed_is_valid_xml_even_with_control_characters_in_stored_texts(conn):
    from datetime import UTC, datetime

    items = [{"id": 1, "measure_id": 7, "action": "create", "at": datetime.now(UTC),
              "changes": {}, "after": {"title": "Alt\x01er Titel\x1b", "summary": "a\x00b\x0c"}}]
    body = feeds.atom(conn, "http://x", "http://x/feed", "Ort\x02", items)
    root = ET.fromstring(body)  # raises on invalid XML
    assert "Alter Titel" in body.decode()
    assert root is not None


# -- hypothesis: the validators raise nothing but the project's own 4xx ------------------------
def _is_4xx(exc: BaseException) -> bool:
    return isinstance(exc, QuartersError) and 400 <= status_for(exc) < 500


@settings(max_examples=300, deadline=None)
@given(st.text() | st.from_regex(r"-?[0-9]{1,20}", fullmatch=True))
def test_parse_int_is_ascii_only_and_fails_only_with_400(raw):
    try:
        value = parse_int(raw, "limit")
    except Exception as exc:  # noqa: BLE001
        assert _is_4xx(exc), repr(exc)
        return
    assert re.fullmatch(r"-?[0-9]{1,18}", raw) and value == int(raw)


@settings(max_examples=300, deadline=None)
@given(st.text(), st.booleans())
def test_text_validators_refuse_control_characters_and_nothing_else(value, multiline):
    allowed = "\t\n\r" if multiline else ""
    bad = any((ord(c) < 32 or ord(c) == 127) and c not in allowed for c in value) or any(
        0xD800 <= ord(c) <= 0xDFFF for c in value)
    assert (control_problem(value, multiline) is not None) == bad
    if not bad:
        assert check_text(value, multiline) == value


# orjson reads integers beyond 64 bits as floats; every integer field of the API is bounded far
# below and strict (a float there is a 422), so the round trip is checked within 64 bits.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children), max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_parse_json_round_trips_clean_documents_and_refuses_nul_with_400(value):
    raw = json.dumps(value).encode()
    try:
        parsed = parse_json(raw)
    except QuartersError as exc:
        assert _is_4xx(exc)
        assert "\\u0000" in raw.decode()  # the only thing a clean document can hold that is refused
        return
    assert parsed == json.loads(raw)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.text(alphabet="[]{}\",:0\\u", max_size=300).map(str.encode))
def test_parse_json_fails_only_with_400_on_any_bytes(raw):
    try:
        parse_json(raw)
    except Exception as exc:  # noqa: BLE001
        assert _is_4xx(exc), repr(exc)


@pytest.mark.parametrize("depth,ok", [(MAX_JSON_DEPTH, True), (MAX_JSON_DEPTH + 1, False),
                                      (5000, False)])
def test_parse_json_counts_real_levels(depth, ok):
    raw = b'{"s": "' + b"[" * 10_000 + b'", "v": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"
    if ok:
        assert parse_json(raw)["s"] == "[" * 10_000
    else:
        with pytest.raises(QuartersError) as info:
            parse_json(raw)
        assert status_for(info.value) == 400
