"""Browser test of the transfer profile: the public measure page shows where a measure was
transferred (small map with attribution, a list for screen readers; only published data), in
German and English, and the planner's transfer fieldset and button work.

Real app in its own uvicorn process, Debian's Chromium; off-origin requests are blocked.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from conftest import axe_check, same_origin_only, serve_app
from factories import HALLE_POLYGON, api_json, measure_feature
from quarters import auth

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

PASSWORD = "richtig-geheim-123"


@pytest.fixture(scope="module")
def server(settings, engine):
    with serve_app(settings) as url:
        yield url


@pytest.fixture
def planner(engine, server):
    username = f"planner-{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        auth.add_user(conn, username, PASSWORD, "planner")
    status, _, body = api_json(server, "POST", "/api/auth/login",
                               {"username": username, "password": PASSWORD, "token": True})
    assert status == 200, body
    return username, body["token"]


def far_districts(engine, n: int) -> list[tuple[str, str, int]]:
    """(code, name, id) of n Stadtviertel away from the test polygon."""
    with engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT code, name, id FROM districts WHERE city_ags = '15002000'
              AND level = 'stadtviertel'
              AND NOT ST_DWithin(geom, ST_Transform(ST_SetSRID(ST_MakePoint(11.997, 51.479),
                                                               4326), 25832), 2500)
            ORDER BY code LIMIT :n"""), {"n": n}).all()
    return [tuple(r) for r in rows]


def open_context(browser, server, locale, bypass_csp=False):
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale=locale,
                                  bypass_csp=bypass_csp)
    context.route("**/*", same_origin_only(server))
    return context


def test_public_page_shows_the_transfer_map(browser, server, planner, engine, artifacts):
    _, token = planner
    (code_a, name_a, _), (code_b, _, _), (code_c, name_c, id_c) = far_districts(engine, 3)
    profile = {"preconditions": [{"indicator": "density", "op": ">=", "value": 1000}],
               "follow_up_costs_per_year": 12000,
               "districts": {code_a: {"status": "geeignet", "date": "2025-02-01"},
                             code_b: {"status": "geprüft", "date": "2025-02-02",
                                      "note": "noch offen"}}}
    title = f"Lernwerkstatt {uuid.uuid4().hex[:6]}"
    status, headers, body = api_json(server, "POST", "/api/measures",
                                     measure_feature(HALLE_POLYGON, title=title,
                                                     transfer=profile), token)
    assert status == 201, body
    origin = body["id"]
    status, headers, body = api_json(server, "POST", f"/api/measures/{origin}/publish",
                                     token=token, etag=headers["ETag"])
    assert status == 200, body
    status, _, new = api_json(server, "POST", f"/api/measures/{origin}/transfer",
                              {"district_code": code_c}, token, etag=headers["ETag"])
    assert status == 201, new
    problems: list[str] = []
    try:
        # CSP bypassed only to inject axe-core from the file (the app does not serve it)
        context = open_context(browser, server, "de-DE", bypass_csp=True)
        page = context.new_page()
        page.on("pageerror", lambda err: problems.append(str(err)))
        page.goto(f"{server}/massnahmen/{origin}")
        expect(page.locator("body")).to_have_attribute("data-page-state", "ready")
        card = page.locator("#m-transfer-card")
        expect(card).to_be_visible()
        expect(card.locator("h2")).to_have_text("Übertragung in andere Stadtviertel")
        items = page.locator("#m-transfer-list li")
        expect(items).to_have_count(2)  # übertragen and geeignet; geprüft is not shown
        assert items.evaluate_all("(li) => li.map((x) => [x.dataset.code, x.dataset.status])") \
            == [[code_c, "übertragen"], [code_a, "geeignet"]]
        expect(items.nth(0)).to_contain_text(f"{name_c} (Nr. {code_c}): übertragen")
        expect(items.nth(1)).to_contain_text(f"{name_a} (Nr. {code_a}): geeignet, 1. Februar 2025")
        # the transferred measure is a draft: no link to it (only published data)
        expect(items.nth(0).locator("a")).to_have_count(0)
        transfer_map = page.locator("#m-transfer-map")
        expect(transfer_map).to_have_attribute("data-districts", "2")
        # two district outlines and the measure itself
        expect(transfer_map.locator(".leaflet-overlay-pane path")).to_have_count(3)
        expect(transfer_map.locator(".leaflet-control-attribution")).to_contain_text(
            "Stadtviertel:")
        expect(page.locator("#m-facts")).not_to_contain_text("noch offen")
        assert axe_check(page, "#m-transfer-card")["violations"] == []
        transfer_map.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "transfer-public-de.png"), full_page=True)

        # the new draft published: the list links to it
        status, headers, _ = api_json(server, "GET", f"/api/measures/{new['id']}", token=token)
        status, _, body = api_json(server, "POST", f"/api/measures/{new['id']}/publish",
                                   token=token, etag=headers["ETag"])
        assert status == 200, body
        assert id_c in body["properties"]["districts"] or any(
            d.get("id") == id_c for d in body["properties"]["districts"])
        page.reload()
        expect(page.locator("body")).to_have_attribute("data-page-state", "ready")
        link = page.locator("#m-transfer-list li").nth(0).locator("a")
        expect(link).to_have_attribute("href", f"/massnahmen/{new['id']}")
        context.close()

        context = open_context(browser, server, "en-GB")
        page = context.new_page()
        page.on("pageerror", lambda err: problems.append(str(err)))
        page.goto(f"{server}/massnahmen/{origin}?lang=en")
        expect(page.locator("body")).to_have_attribute("data-page-state", "ready")
        expect(page.locator("#m-transfer-card h2")).to_have_text("Transfer to other districts")
        expect(page.locator("#m-transfer-list li").nth(0)).to_contain_text(
            f"(no. {code_c}): transferred")
        expect(page.locator("#m-transfer-map .leaflet-control-attribution")).to_contain_text(
            "Districts:")
        page.goto(f"{server}/massnahmen/{new['id']}?lang=en")
        expect(page.locator("body")).to_have_attribute("data-page-state", "ready")
        expect(page.locator("#m-facts")).to_contain_text("Transferred from")
        page.locator("#m-transfer-card").is_hidden()
        context.close()
    finally:
        for mid in (new["id"], origin):
            _, headers, _ = api_json(server, "GET", f"/api/measures/{mid}", token=token)
            api_json(server, "DELETE", f"/api/measures/{mid}", token=token,
                     etag=headers["ETag"])
    assert problems == []


PLANNER_WORDS = {
    "de": {"legend": "Übertragbarkeit", "add": "Vorbedingung hinzufügen", "op": "Vergleich",
           "transfer": "Als Entwurf übertragen", "status": "geeignet", "error": "Vorbedingung 1"},
    "en": {"legend": "Transferability", "add": "Add a precondition", "op": "Comparison",
           "transfer": "Transfer as a draft", "status": "suitable", "error": "Precondition 1"},
}


@pytest.mark.parametrize("lang", ["de", "en"])
def test_planner_edits_the_profile_and_transfers(browser, server, planner, engine, artifacts,
                                                 lang):
    """The transfer fieldset speaks the page's language (?lang=en: English labels, statuses,
    button and messages), and saving and transferring work in both."""
    words = PLANNER_WORDS[lang]
    username, token = planner
    (code_a, name_a, _), = far_districts(engine, 1)
    title = f"Werkstatt {uuid.uuid4().hex[:6]}"
    status, _, body = api_json(server, "POST", "/api/measures",
                               measure_feature(HALLE_POLYGON, title=title), token)
    assert status == 201, body
    mid = body["id"]
    problems: list[str] = []
    new_id = None
    try:
        context = open_context(browser, server, "de-DE" if lang == "de" else "en-GB")
        page = context.new_page()
        page.on("pageerror", lambda err: problems.append(str(err)))
        page.goto(f"{server}/planner.html?lang={lang}")
        expect(page.locator("body")).to_have_attribute("data-planner-ready", "true")
        page.fill("#login-username", username)
        page.fill("#login-password", PASSWORD)
        page.click("#login-button")
        expect(page.locator("#measure-select")).to_contain_text(title)
        page.select_option("#measure-select", str(mid))
        expect(page.locator("#f-title")).to_have_value(title)
        section = page.locator("#transfer-section")
        expect(section.locator("legend")).to_have_text(words["legend"])
        expect(page.locator("#add-precondition")).to_have_text(words["add"])
        page.click("#add-precondition")
        row = page.locator("#precondition-rows li").nth(0)
        expect(row.locator('label[for$="-op"]')).to_contain_text(words["op"])
        row.locator('[data-sub="indicator"]').fill("density")
        row.locator('[data-sub="op"]').select_option(">=")
        row.locator('[data-sub="value"]').fill("1500")
        page.fill("#f-transfer_costs", "9000")
        page.click("#add-transfer-district")
        district = page.locator("#transfer-district-rows li").nth(0)
        district.locator('[data-sub="code"]').fill(code_a)
        district.locator('[data-sub="status"]').select_option("geeignet")
        expect(district.locator('[data-sub="status"] option:checked')).to_have_text(words["status"])
        expect(district.locator("button[data-transfer]")).to_have_text(words["transfer"])
        page.click("#save-button")
        expect(page.locator("body")).to_have_attribute("data-dirty", "false")
        status, _, body = api_json(server, "GET", f"/api/measures/{mid}", token=token)
        stored = body["properties"]["transfer"]
        assert stored["preconditions"] == [{"indicator": "density", "op": ">=",
                                            "value": 1500.0}]
        assert stored["follow_up_costs_per_year"] == 9000.0
        assert stored["districts"][code_a]["status"] == "geeignet"

        # a bad comparison value from the server side: an unknown indicator is refused
        row.locator('[data-sub="indicator"]').fill("no_such_indicator")
        page.click("#save-button")
        expect(page.locator("#f-transfer-error")).to_contain_text(words["error"])
        row.locator('[data-sub="indicator"]').fill("density")

        district.locator("button[data-transfer]").click()
        expect(page.locator("#transfer-district-rows li").nth(0).locator(
            '[data-sub="status"]')).to_have_value("übertragen")
        section.screenshot(path=str(artifacts / f"transfer-planner-{lang}.png"))
        with engine.connect() as conn:
            new_id = conn.execute(text("SELECT id FROM measures WHERE origin_id = :o"),
                                  {"o": mid}).scalar_one()
            assert conn.execute(text("SELECT published FROM measures WHERE id = :i"),
                                {"i": new_id}).scalar_one() is False
        context.close()
    finally:
        for m in (new_id, mid):
            if m is None:
                continue
            _, headers, _ = api_json(server, "GET", f"/api/measures/{m}", token=token)
            api_json(server, "DELETE", f"/api/measures/{m}", token=token, etag=headers["ETag"])
    assert problems == []
