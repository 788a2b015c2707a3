"""Browser tests of the planning page (web/planner.html) against the real quarters app.

A planner signs in, draws a polygon with Leaflet-Geoman near Halle (Saale) Hauptbahnhof, fills
the form, saves a draft, publishes it and the public can read it; two planners change the same
measure and the second one gets the conflict dialogue (HTTP 412) and re-applies the change.

Fixtures from tests/conftest.py: ``live_server``, ``browser``, ``engine``, ``artifacts``.
Every off-origin request (tiles) is blocked, and the page is served with a strict
Content-Security-Policy (no 'unsafe-inline', no 'unsafe-eval') so a violation fails the test.
"""

import re
import uuid

import pytest

from conftest import axe_check, same_origin_only
from factories import api_json
from quarters import auth

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

TIMEOUT_MS = 30_000
PASSWORD = "richtig-geheim-123"
HALLE_AGS = "15002000"
# Halle (Saale) Hauptbahnhof, lon/lat.
HBF = (11.9870, 51.4776)
# What a production CSP for this page could be: scripts and styles from the origin only;
# Geoman's toolbar icons are data: SVGs.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; "
       "img-src 'self' data: https://tile.openstreetmap.org; "
       "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
       "frame-ancestors 'none'")

# What the page says, in both languages (the three original tests run in each):
# (key, German, English).
WORDING = [
    ("title", "Planung – quarters", "Planning – quarters"),
    ("in_progress", "In Umsetzung", "In progress"),
    ("user", "Benutzername", "User name"),
    ("password", "Passwort", "Password"),
    ("sign_in", "Anmelden", "Sign in"),
    ("signed_in", "Angemeldet als {}", "Signed in as {}"),
    ("draw_area", "Neue Maßnahme: Fläche zeichnen", "New measure: draw an area"),
    ("new", "Neue Maßnahme", "New measure"),
    ("area4", "Fläche mit 4 Eckpunkten", "Area with 4 corners"),
    ("save", "Entwurf speichern", "Save draft"),
    ("need_title", "Bitte einen Titel angeben.", "Please give a title."),
    ("f_title", "Titel", "Title"),
    ("outside", "außerhalb des Planungsgebiets", "outside the planning area"),
    ("not_saved", "Nicht gespeichert", "Not saved"),
    ("summary", "Kurzbeschreibung", "Short description"),
    ("start", "Beginn", "Start"),
    ("end", "Ende", "End"),
    ("add_milestone", "Meilenstein hinzufügen", "Add a milestone"),
    ("date", "Datum", "Date"),
    ("label", "Bezeichnung", "Title"),
    ("budget", "Geplantes Budget (Euro)", "Planned budget (euros)"),
    ("partners", "Partner", "Partners"),
    ("add_link", "Link hinzufügen", "Add a link"),
    ("url", "Adresse", "Address"),
    ("draft_saved", "Entwurf gespeichert", "Draft saved"),
    ("draft", "Entwurf", "Draft"),
    ("publish", "Veröffentlichen", "Publish"),
    ("published", "Veröffentlicht", "Published"),
    ("withdraw", "Zurückziehen", "Withdraw"),
    ("created", "Angelegt", "Created"),
    ("changed_by", "Diese Maßnahme wurde inzwischen von „{}“ geändert",
     "This measure was changed meanwhile by “{}”"),
    ("quoted", "„{}“", "“{}”"),
    ("conflict", "Bearbeitungskonflikt", "editing conflict"),
    ("reapply", "Meine Änderungen erneut anwenden", "Apply my changes again"),
    ("reapplied", "angewendet und gespeichert", "applied to the current version and saved"),
    ("reload", "Ihre Änderungen verwerfen und neu laden", "Discard your changes and reload"),
    ("reshape", "Ausgewählte Maßnahme umformen", "Reshape the selected measure"),
    ("unsaved", "geändert, noch nicht gespeichert", "changed, not saved yet"),
    ("geometry", "Geometrie", "Geometry"),
    ("delete", "Löschen", "Delete"),
    ("cancel", "Abbrechen", "Cancel"),
    ("not_deleted", "Nicht gelöscht", "Not deleted"),
    ("delete_ok", "Endgültig löschen", "Delete for good"),
    ("deleted", "Gelöscht", "Deleted"),
    ("new_point", "Neue Maßnahme als Punkt in der Kartenmitte",
     "New measure as a point in the centre of the map"),
    ("point", "Punkt", "Point"),
    ("discard", "Verwerfen", "Discard"),
    ("discarded", "verworfen", "discarded"),
    ("mobility", "Mobilität", "Mobility"),
]
WORDS = {lang: {key: texts[i] for key, *texts in WORDING} for i, lang in enumerate(["de", "en"])}


# ------------------------------------------------------------------ helpers

def unique_planner(engine, prefix):
    """A planner account of its own (the live server's database is shared by the session)."""
    username = f"{prefix}-{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        auth.add_user(conn, username, PASSWORD, "planner")
    return username




def bearer_token(base_url, username):
    status, _, body = api_json(base_url, "POST", "/api/auth/login",
                               {"username": username, "password": PASSWORD, "token": True})
    assert status == 200, body
    return body["token"]


def box(lon, lat, dlon=0.0016, dlat=0.0010):
    """Corners of a small rectangle around lon/lat (counter-clockwise)."""
    return [(lon - dlon, lat - dlat), (lon + dlon, lat - dlat), (lon + dlon, lat + dlat),
            (lon - dlon, lat + dlat)]


@pytest.fixture
def open_planner(browser, live_server):
    """Factory: a new browser context on planner.html (blocked tiles, strict CSP)."""
    contexts = []
    problems = []

    block_other_origins = same_origin_only(live_server)

    def with_csp(route):
        response = route.fetch()
        headers = {**response.headers, "content-security-policy": CSP}
        route.fulfill(response=response, headers=headers)

    def on_console(message):
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            problems.append(f"CSP: {message.text}")

    def on_dialog(dialog):
        # The page uses <dialog> elements; a JS dialog could only come from injected markup.
        problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    def open_page(lang="de"):
        context = browser.new_context(viewport={"width": 1440, "height": 900},
                                      locale="de-DE" if lang == "de" else "en-GB")
        contexts.append(context)
        context.route("**/*", block_other_origins)
        context.route("**/tile.openstreetmap.org/**", lambda route: route.abort())
        context.route(re.compile(r".*/planner\.html(\?.*)?$"), with_csp)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
        page.on("console", on_console)
        page.on("dialog", on_dialog)
        page.goto(f"{live_server}/planner.html?lang={lang}")
        expect(page.locator("body")).to_have_attribute("data-planner-ready", "true",
                                                       timeout=TIMEOUT_MS)
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert problems == []


def sign_in(page, username, lang="de"):
    w = WORDS[lang]
    expect(page.locator("#login-section")).to_be_visible()
    page.get_by_label(w["user"]).fill(username)
    page.get_by_label(w["password"]).fill(PASSWORD)
    page.get_by_role("button", name=w["sign_in"], exact=True).click()
    expect(page.locator("#user-name")).to_have_text(username)
    expect(page.locator("#status")).to_contain_text(w["signed_in"].format(username))
    expect(page.locator("#login-section")).to_be_hidden()


def screen_point(page, lon, lat):
    """Viewport pixel of a lon/lat on the planner's Leaflet map."""
    return page.evaluate(
        """([lon, lat]) => {
            const map = window.quartersPlanner.map;
            const p = map.latLngToContainerPoint([lat, lon]);
            const r = map.getContainer().getBoundingClientRect();
            return [r.left + p.x, r.top + p.y];
        }""",
        [lon, lat],
    )


def show_on_map(page, lon, lat, zoom=16):
    page.evaluate("([lat, lon, zoom]) => window.quartersPlanner.map.setView([lat, lon], zoom, "
                  "{animate: false})", [lat, lon, zoom])


def open_measure(page, measure_id, title):
    option = page.locator(f'#measure-select option[value="{measure_id}"]')
    expect(option).to_have_count(1)
    page.locator("#measure-select").select_option(str(measure_id))
    expect(page.locator("#measure-form")).to_have_attribute("data-measure-id", str(measure_id))
    expect(page.locator("#f-title")).to_have_value(title)
    expect(page.locator("#history-list li")).not_to_have_count(0)


# ------------------------------------------------------------------ tests

@pytest.mark.parametrize("lang", ["de", "en"])
def test_planner_draws_saves_and_publishes_a_measure(open_planner, engine, browser, live_server,
                                                     artifacts, lang):
    w = WORDS[lang]
    username = unique_planner(engine, "planerin")
    page = open_planner(lang)
    expect(page).to_have_title(w["title"])
    # Before signing in: no drawing tools, the login form, the legend and the attribution.
    expect(page.locator(".leaflet-pm-toolbar")).to_have_count(0)
    expect(page.locator("#legend-status")).to_contain_text(w["in_progress"])
    expect(page.locator(".leaflet-control-attribution")).to_contain_text("GeoBasis-DE / BKG")
    expect(page.locator("#map path.municipality--15002000")).to_have_count(1)
    assert page.locator("#map path.quarter").count() > 0

    sign_in(page, username, lang)
    draw_polygon = page.get_by_role("button", name=w["draw_area"])
    expect(draw_polygon).to_be_visible()

    # Draw a rectangle around the Hauptbahnhof: four clicks, then the first point again.
    show_on_map(page, *HBF)
    draw_polygon.click()
    corners = box(*HBF)
    for lon, lat in [*corners, corners[0]]:
        page.mouse.click(*screen_point(page, lon, lat))
    form = page.locator("#measure-form")
    expect(form).to_be_visible()
    expect(page.locator("#form-heading")).to_have_text(w["new"])
    expect(page.locator("#f-geometry")).to_have_text(w["area4"])
    expect(page.locator("#f-city_ags")).to_have_value(HALLE_AGS)

    # Client-side check: a title is required, the message sits next to the field.
    page.get_by_role("button", name=w["save"]).click()
    expect(page.locator("#f-title-error")).to_have_text(w["need_title"])
    expect(page.locator("#f-title")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#form-errors")).to_be_visible()

    title = f"Mobilitätsstation Hauptbahnhof {uuid.uuid4().hex[:6]}"
    page.get_by_label(w["f_title"]).fill(title)

    # Server-side check (422 mapped by pointer): the drawing lies in Halle, not in Gera.
    page.locator("#f-city_ags").select_option("16052000")
    page.locator("#f-action_field").select_option("Wirtschaft")
    page.get_by_role("button", name=w["save"]).click()
    expect(page.locator("#f-geometry-error")).to_contain_text(w["outside"])
    expect(page.locator("#status")).to_contain_text(w["not_saved"])

    page.locator("#f-city_ags").select_option(HALLE_AGS)
    page.locator("#f-action_field").select_option("Mobilität")
    page.locator("#f-status").select_option("geplant")
    page.get_by_label(w["summary"]).fill("Leihräder und Lastenräder direkt am Bahnhof.")
    page.get_by_label(w["start"], exact=True).fill("2025-04-01")
    page.get_by_label(w["end"], exact=True).fill("2026-03-31")
    page.get_by_role("button", name=w["add_milestone"]).click()
    page.locator("#milestone-rows li").last.get_by_label(w["date"]).fill("2025-09-01")
    page.locator("#milestone-rows li").last.get_by_label(w["label"]).fill("Station in Betrieb")
    page.get_by_label(w["budget"]).fill("125000")
    page.get_by_label(w["partners"]).fill("HAVAG\nStadtwerke Halle")
    page.get_by_role("button", name=w["add_link"]).click()
    page.locator("#link-rows li").last.get_by_label(w["label"]).fill("Projektseite")
    page.locator("#link-rows li").last.get_by_label(w["url"]).fill("https://example.org/station")

    page.get_by_role("button", name=w["save"]).click()
    expect(page.locator("#status")).to_contain_text(w["draft_saved"])
    expect(page.locator("#form-errors")).to_be_hidden()
    expect(page.locator("#f-geometry-error")).to_be_hidden()
    measure_id = form.get_attribute("data-measure-id")
    assert measure_id and measure_id.isdigit()
    expect(page.locator("#form-badge")).to_have_text(w["draft"])
    # On the map: the draft is drawn dashed, in the status colour.
    path = page.locator(f'#map path[data-measure-id="{measure_id}"]')
    expect(path).to_have_count(1)
    expect(path).to_have_class(re.compile(r"\bmeasure--draft\b"))
    assert path.get_attribute("stroke-dasharray")

    # Not public yet.
    status, _, _ = api_json(live_server, "GET", f"/api/measures/{measure_id}")
    assert status == 404

    page.get_by_role("button", name=w["publish"]).click()
    expect(page.locator("#status")).to_contain_text(w["published"])
    expect(page.locator("#form-badge")).to_have_text(w["published"])
    expect(page.get_by_role("button", name=w["withdraw"])).to_be_visible()
    expect(path).to_have_class(re.compile(r"\bmeasure--published\b"))

    # The history lists the creation and the publication.
    history = page.locator("#history-list")
    expect(history.locator('li[data-action="create"]')).to_have_count(1)
    expect(history.locator('li[data-action="publish"]')).to_have_count(1)
    expect(history).to_contain_text(w["created"])
    expect(history).to_contain_text(w["published"])
    expect(history).to_contain_text(username)

    # The public sees it: a fresh context without the session cookie.
    anonymous = browser.new_context()
    try:
        response = anonymous.request.get(f"{live_server}/api/measures/{measure_id}")
        assert response.status == 200
        feature = response.json()
    finally:
        anonymous.close()
    props = feature["properties"]
    # The public view serves published measures only; it says so with published_at (and
    # `published` once the public record carries it).
    assert props.get("published", True) is True
    assert props["published_at"]
    assert props["title"] == title
    assert props["action_field"] == "Mobilität"
    assert props["status"] == "geplant"
    assert props["city_ags"] == HALLE_AGS
    assert props["partners"] == ["HAVAG", "Stadtwerke Halle"]
    assert props["milestones"] == [{"date": "2025-09-01", "title": "Station in Betrieb",
                                    "status": "offen"}]
    assert props["links"] == [{"title": "Projektseite", "url": "https://example.org/station"}]
    assert props["budget_planned"] == 125000
    ring = feature["geometry"]["coordinates"][0]
    assert feature["geometry"]["type"] == "Polygon" and len(ring) == 5
    for lon, lat in ring:
        assert abs(lon - HBF[0]) < 0.003 and abs(lat - HBF[1]) < 0.002

    page.locator("#work-area").evaluate("(el) => el.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts / f"planner-{lang}.png"))


@pytest.mark.parametrize("lang", ["de", "en"])
def test_conflicting_edits_show_the_colleague_version_and_reapply(open_planner, engine,
                                                                   live_server, artifacts, lang):
    w = WORDS[lang]
    first = unique_planner(engine, "planerin-a")
    second = unique_planner(engine, "planer-b")
    token = bearer_token(live_server, first)
    title = f"Quartiersgarage Riebeckplatz {uuid.uuid4().hex[:6]}"
    lon, lat = HBF[0] + 0.004, HBF[1] - 0.002
    status, headers, created = api_json(live_server, "POST", "/api/measures", {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [[*box(lon, lat), box(lon, lat)[0]]]},
        "properties": {"title": title, "city_ags": HALLE_AGS, "action_field": "Mobilität",
                       "status": "idee", "summary": "Erste Fassung."},
    }, token=token)
    assert status == 201, created
    measure_id = created["properties"]["id"]

    page_a = open_planner(lang)
    sign_in(page_a, first, lang)
    open_measure(page_a, measure_id, title)
    page_b = open_planner(lang)
    sign_in(page_b, second, lang)
    open_measure(page_b, measure_id, title)

    # A changes the title and saves.
    new_title = f"{title} (erweitert)"
    page_a.get_by_label(w["f_title"]).fill(new_title)
    page_a.get_by_role("button", name=w["save"]).click()
    expect(page_a.locator("#status")).to_contain_text(w["draft_saved"])

    # B, on the old version, changes the summary and saves: conflict.
    page_b.get_by_label(w["summary"]).fill("Zweite Fassung von B.")
    page_b.get_by_role("button", name=w["save"]).click()
    panel = page_b.locator("#conflict-panel")
    expect(panel).to_be_visible()
    expect(page_b.locator("#conflict-message")).to_contain_text(w["changed_by"].format(first))
    title_row = page_b.locator('#conflict-rows tr[data-field="title"]')
    expect(title_row.locator(".conflict-theirs")).to_have_text(new_title)
    expect(title_row.locator(".conflict-mine")).to_have_text(title)
    summary_row = page_b.locator('#conflict-rows tr[data-field="summary"]')
    expect(summary_row.locator(".conflict-mine")).to_have_text("Zweite Fassung von B.")
    expect(summary_row.locator(".conflict-theirs")).to_have_text("Erste Fassung.")
    field_row = page_b.locator('#conflict-rows tr[data-field="action_field"]')
    expect(field_row.locator(".conflict-mine")).to_have_text(w["mobility"])  # a label, not the key
    expect(page_b.locator("#status")).to_contain_text(w["conflict"])
    expect(page_b.get_by_role("button", name=w["save"])).to_be_disabled()
    panel.scroll_into_view_if_needed()
    page_b.screenshot(path=str(artifacts / f"planner-conflict-{lang}.png"))

    page_b.get_by_role("button", name=w["reapply"]).click()
    expect(page_b.locator("#status")).to_contain_text(w["reapplied"])
    expect(panel).to_be_hidden()
    expect(page_b.locator("#f-title")).to_have_value(new_title)
    expect(page_b.locator("#f-summary")).to_have_value("Zweite Fassung von B.")
    expect(page_b.locator("#history-list li")).to_have_count(3)

    status, _, current = api_json(live_server, "GET", f"/api/measures/{measure_id}", token=token)
    assert status == 200
    assert current["properties"]["title"] == new_title
    assert current["properties"]["summary"] == "Zweite Fassung von B."
    assert current["properties"]["version"] == 3

    # A is now behind: a change gives the conflict, "verwerfen und neu laden" shows B's text.
    page_a.locator("#f-status").select_option("geplant")
    page_a.get_by_role("button", name=w["save"]).click()
    expect(page_a.locator("#conflict-message")).to_contain_text(w["quoted"].format(second))
    page_a.get_by_role("button", name=w["reload"]).click()
    expect(page_a.locator("#conflict-panel")).to_be_hidden()
    expect(page_a.locator("#f-summary")).to_have_value("Zweite Fassung von B.")
    expect(page_a.locator("#f-status")).to_have_value("idee")
    expect(page_a.locator("#form-dirty")).to_be_hidden()


@pytest.mark.parametrize("lang", ["de", "en"])
def test_reshape_with_geoman_and_delete(open_planner, engine, live_server, lang):
    w = WORDS[lang]
    username = unique_planner(engine, "planerin-c")
    token = bearer_token(live_server, username)
    title = f"Grünfläche Hallmarkt {uuid.uuid4().hex[:6]}"
    lon, lat = HBF[0] - 0.004, HBF[1] + 0.002
    corners = box(lon, lat)
    status, _, created = api_json(live_server, "POST", "/api/measures", {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [[*corners, corners[0]]]},
        "properties": {"title": title, "city_ags": HALLE_AGS, "action_field": "Bildung"},
    }, token=token)
    assert status == 201, created
    measure_id = created["properties"]["id"]

    page = open_planner(lang)
    sign_in(page, username, lang)
    open_measure(page, measure_id, title)
    show_on_map(page, lon, lat, zoom=17)

    # Reshape: Geoman's edit mode, drag the north-east corner 40 px to the right.
    page.get_by_role("button", name=w["reshape"]).click()
    x, y = screen_point(page, *corners[2])
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 20, y - 5, steps=4)
    page.mouse.move(x + 40, y - 10, steps=4)
    page.mouse.up()
    expect(page.locator("#f-geometry")).to_contain_text(w["unsaved"])
    expect(page.locator("#form-dirty")).to_be_visible()
    page.get_by_role("button", name=w["reshape"]).click()
    page.get_by_role("button", name=w["save"]).click()
    expect(page.locator("#status")).to_contain_text(w["draft_saved"])
    status, _, saved = api_json(live_server, "GET", f"/api/measures/{measure_id}", token=token)
    assert saved["properties"]["version"] == 2
    east = max(p[0] for p in saved["geometry"]["coordinates"][0])
    assert east > corners[2][0] + 0.0002, "the dragged corner did not move east"
    history = page.locator("#history-list")
    expect(history.locator('li[data-action="update"]')).to_contain_text(w["geometry"])

    # Delete: the confirmation dialog first (cancel keeps it), then for real.
    page.get_by_role("button", name=w["delete"], exact=True).click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(title)
    dialog.get_by_role("button", name=w["cancel"]).click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#status")).to_contain_text(w["not_deleted"])
    page.get_by_role("button", name=w["delete"], exact=True).click()
    dialog.get_by_role("button", name=w["delete_ok"]).click()
    expect(page.locator("#status")).to_contain_text(w["deleted"])
    expect(page.locator(f'#measure-select option[value="{measure_id}"]')).to_have_count(0)
    expect(page.locator(f'#map path[data-measure-id="{measure_id}"]')).to_have_count(0)
    expect(page.locator("#measure-form")).to_be_hidden()
    status, _, _ = api_json(live_server, "GET", f"/api/measures/{measure_id}", token=token)
    assert status == 404

    # Keyboard alternative to drawing: a new point in the middle of the map; "Verwerfen".
    page.get_by_role("button", name=w["new_point"]).click()
    expect(page.locator("#form-heading")).to_have_text(w["new"])
    expect(page.locator("#f-geometry")).to_have_text(w["point"])
    expect(page.locator("#f-title")).to_be_focused()
    page.get_by_role("button", name=w["discard"], exact=True).click()
    expect(page.locator("#measure-form")).to_be_hidden()
    expect(page.locator("#status")).to_contain_text(w["discarded"])


# German that must not stand on the English page (words, and the letters English never has).
GERMAN = re.compile(r"[äöüÄÖÜß]|\b(und|der|die|das|nicht|mit|für|oder|bitte|Bitte|wird|Ihre?|"
                    r"Maßnahmen?|Entwurf|speichern|Verlauf|Stadtviertel|Geometrie|Anmelden|"
                    r"Abmelden|Löschen|Karte|Legende|Quelle|Zeichnen|Fläche|Punkt|Linie)\b")
# What is data, not the page's own words: measure titles in the lists, quarter names, sources.
SHOWN_TEXT = """() => {
    const data = "#map, #measure-select, #f-parent_id, #form-places, #source-list, datalist";
    const texts = [];  // text nodes and names of what is rendered (offsetParent), data left out
    const walk = (live) => {
        if (live.closest(data)) return;
        if (live !== document.body && live.offsetParent === null
            && getComputedStyle(live).position !== "fixed") return;
        if (live instanceof HTMLSelectElement) {
            texts.push(...[...live.options].map((option) => option.text));  // all its choices
            return;
        }
        for (const attr of ["aria-label", "title", "placeholder"]) {
            if (live.hasAttribute(attr)) texts.push(live.getAttribute(attr));
        }
        for (const node of live.childNodes) {
            if (node.nodeType === Node.TEXT_NODE && node.textContent.trim()) {
                texts.push(node.textContent.trim());
            }
        }
        for (const child of live.children) walk(child);
    };
    walk(document.body);
    // the drawing toolbar sits in the map: its names count
    const tools = ".leaflet-pm-toolbar [aria-label], .leaflet-pm-toolbar [title]";
    for (const el of document.querySelectorAll(tools)) {
        texts.push(el.getAttribute("aria-label") || el.getAttribute("title"));
    }
    return texts;
}"""


def german_on(page):
    return sorted({text for text in page.evaluate(SHOWN_TEXT) if GERMAN.search(text)})


@pytest.mark.parametrize("lang", ["de", "en"])
def test_the_signed_in_planner_speaks_the_page_language_and_passes_axe(open_planner, engine,
                                                                       live_server, artifacts,
                                                                       lang):
    """Sign in, open a measure (form, history, legend, drawing tools), then a new one with an
    error: on the English page no German word is shown; axe finds nothing in either language."""
    w = WORDS[lang]
    username = unique_planner(engine, "planner-words")
    token = bearer_token(live_server, username)
    title = f"Bike station {uuid.uuid4().hex[:6]}"
    lon, lat = HBF[0] + 0.006, HBF[1] + 0.004
    status, headers, created = api_json(live_server, "POST", "/api/measures", {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [[*box(lon, lat), box(lon, lat)[0]]]},
        "properties": {"title": title, "city_ags": HALLE_AGS, "action_field": "Mobilität",
                       "status": "geplant", "summary": "Bikes at the station.",
                       "milestones": [{"date": "2025-09-01", "title": "Opening", "status": "offen"}],
                       "links": [{"title": "Project", "url": "https://example.org/p"}]},
    }, token=token)
    assert status == 201, created
    measure_id = created["properties"]["id"]
    status, _, _ = api_json(live_server, "PATCH", f"/api/measures/{measure_id}",
                            {"properties": {"summary": "More bikes at the station."}},
                            token=token, etag=headers["ETag"])
    assert status == 200

    page = open_planner(lang)
    if lang == "en":
        assert german_on(page) == []  # signed out: login form, legend, status line
    sign_in(page, username, lang)
    open_measure(page, measure_id, title)
    expect(page.locator("#history-list li")).to_have_count(2)
    page.locator("#history-list details").first.evaluate("(el) => el.open = true")
    expect(page.locator(".leaflet-pm-toolbar.leaflet-pm-draw")).to_be_visible()
    expect(page.locator("#f-action_field option:checked")).to_have_text(
        "Mobilität" if lang == "de" else "Mobility")
    expect(page.locator("#milestone-rows li")).to_have_count(1)
    found = german_on(page)
    if lang == "en":
        assert found == []
    else:
        assert "Entwurf speichern" in found  # the scan sees the page's own words at all
    violations = axe_check(page)["violations"]
    assert violations == [], violations
    page.locator("#work-area").evaluate("(el) => el.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts / f"planner-signed-in-{lang}.png"))

    # A new point with a client-side error: the error summary and the inline message.
    page.get_by_role("button", name=w["new_point"]).click()
    page.get_by_role("button", name=w["save"]).click()
    expect(page.locator("#f-title-error")).to_have_text(w["need_title"])
    expect(page.locator("#form-errors")).to_be_visible()
    if lang == "en":
        assert german_on(page) == []
    assert axe_check(page)["violations"] == []
    page.screenshot(path=str(artifacts / f"planner-new-{lang}.png"))


# ------------------------------------------------------------------ restore, import, lines

def sign_in_by_ids(page, username):
    """Sign in without relying on the language of the labels."""
    expect(page.locator("#login-section")).to_be_visible()
    page.locator("#login-username").fill(username)
    page.locator("#login-password").fill(PASSWORD)
    page.locator("#login-button").click()
    expect(page.locator("#user-name")).to_have_text(username)
    expect(page.locator("#login-section")).to_be_hidden()


def account(engine, prefix, role):
    username = f"{prefix}-{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        auth.add_user(conn, username, PASSWORD, role)
    return username


RESTORE = {"de": {"button": "Diese Version wiederherstellen", "ok": "Wiederherstellen",
                  "done": "Version 1 wiederhergestellt"},
           "en": {"button": "Restore this version", "ok": "Restore",
                  "done": "Version 1 restored"}}


@pytest.mark.parametrize("lang", ["de", "en"])
def test_admin_restores_an_earlier_version_from_the_history(open_planner, engine, live_server,
                                                             artifacts, lang):
    words = RESTORE[lang]
    admin = account(engine, "admin-restore", "admin")
    token = bearer_token(live_server, admin)
    title = f"Sitzbänke Franckeplatz {uuid.uuid4().hex[:6]}"
    lon, lat = HBF[0] - 0.006, HBF[1] + 0.004
    status, headers, created = api_json(live_server, "POST", "/api/measures", {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [[*box(lon, lat), box(lon, lat)[0]]]},
        "properties": {"title": title, "city_ags": HALLE_AGS, "action_field": "Bildung",
                       "status": "idee", "summary": "Erste Fassung."},
    }, token=token)
    assert status == 201, created
    measure_id = created["properties"]["id"]
    status, _, changed = api_json(live_server, "PATCH", f"/api/measures/{measure_id}",
                                  {"properties": {"title": f"{title} (falsch)",
                                                  "summary": "Versehentlich überschrieben."}},
                                  token=token, etag=headers["ETag"])
    assert status == 200, changed

    # A planner sees the history but no restore button (restoring is for admins).
    planner = account(engine, "planner-restore", "planner")
    page = open_planner(lang)
    sign_in_by_ids(page, planner)
    page.locator("#measure-select").select_option(str(measure_id))
    expect(page.locator("#history-list li")).to_have_count(2)
    expect(page.locator(".history__restore")).to_have_count(0)

    page = open_planner(lang)
    sign_in_by_ids(page, admin)
    page.locator("#measure-select").select_option(str(measure_id))
    expect(page.locator("#f-title")).to_have_value(f"{title} (falsch)")
    entry = page.locator('#history-list li[data-version="1"]')
    restore = entry.get_by_role("button", name=words["button"].replace("Diese Version", "Version 1")
                                if lang == "de" else "Restore version 1")
    expect(restore).to_have_text(words["button"])
    # the current version has no button of its own
    expect(page.locator('#history-list li[data-version="2"] .history__restore')).to_have_count(0)
    restore.click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"{title} (falsch)")
    dialog.locator("#confirm-ok").click()
    expect(page.locator("#status")).to_contain_text(words["done"])
    expect(page.locator("#status")).to_have_attribute("data-kind", "success")
    expect(page.locator("#f-title")).to_have_value(title)
    expect(page.locator("#f-summary")).to_have_value("Erste Fassung.")
    expect(page.locator('#history-list li[data-action="revert:1"]')).to_have_count(1)
    page.locator("#history-panel").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / f"planner-restore-{lang}.png"))

    status, _, now = api_json(live_server, "GET", f"/api/measures/{measure_id}", token=token)
    assert status == 200
    assert now["properties"]["version"] == 3
    assert now["properties"]["title"] == title
    assert now["properties"]["summary"] == "Erste Fassung."


IMPORT = {"de": {"problems": "Zeile 3", "checked": "3 Zeilen gelesen, davon 2 ohne Fehler",
                 "ready": "Keine Fehler", "stored": "Importiert: 2 Maßnahmen"},
          "en": {"problems": "Row 3", "checked": "3 rows read, 2 of them without errors",
                 "ready": "No errors", "stored": "Imported: 2 measures"}}


def count_titled(engine, prefix):
    from sqlalchemy import text
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM measures WHERE title LIKE :p"),
                            {"p": f"{prefix}%"}).scalar_one()


@pytest.mark.parametrize("lang", ["de", "en"])
def test_import_shows_a_dry_run_report_first_and_lines_stay_lines(open_planner, engine,
                                                                  live_server, artifacts,
                                                                  tmp_path, lang):
    import json

    words = IMPORT[lang]
    tag = f"Import {uuid.uuid4().hex[:6]}"
    planner = account(engine, "planner-import", "planner")
    page = open_planner(lang)
    sign_in_by_ids(page, planner)
    expect(page.locator("#import-section")).to_be_visible()

    # A file with a broken row: the report names the row, nothing is stored, no import button.
    line = {"type": "LineString", "coordinates": [[HBF[0] - 0.004, HBF[1] - 0.003],
                                                  [HBF[0] + 0.004, HBF[1] - 0.003],
                                                  [HBF[0] + 0.006, HBF[1] + 0.001]]}
    point = {"type": "Point", "coordinates": [HBF[0] + 0.002, HBF[1] + 0.002]}
    props = {"city_ags": HALLE_AGS, "action_field": "Mobilität", "status": "geplant"}
    features = [
        {"type": "Feature", "geometry": line, "properties": {**props, "title": f"{tag} Radweg"}},
        {"type": "Feature", "geometry": point, "properties": {**props, "title": f"{tag} Bügel"}},
        {"type": "Feature", "geometry": point,
         "properties": {**props, "title": f"{tag} kaputt", "action_field": "Raumfahrt"}},
    ]
    broken = tmp_path / "massnahmen-fehler.geojson"
    broken.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    page.locator("#import-file").set_input_files(str(broken))
    page.locator("#import-check").click()
    report = page.locator("#import-report")
    expect(report).to_have_attribute("data-state", "problems")
    expect(report).to_contain_text(words["checked"])
    expect(report.locator(".import-report__problem")).to_contain_text(words["problems"])
    expect(page.locator("#import-run")).to_be_disabled()
    assert count_titled(engine, tag) == 0

    # The corrected file: checked first (still nothing stored), then imported.
    features[2]["properties"]["action_field"] = "Bildung"
    good = tmp_path / "massnahmen.geojson"
    good.write_text(json.dumps({"type": "FeatureCollection", "features": features[:2]}))
    page.locator("#import-file").set_input_files(str(good))
    expect(page.locator("#import-run")).to_be_disabled()
    page.locator("#import-check").click()
    expect(report).to_have_attribute("data-state", "checked")
    expect(report).to_contain_text(words["ready"])
    expect(page.locator("#import-run")).to_be_enabled()
    assert count_titled(engine, tag) == 0
    page.locator("#import-section").screenshot(path=str(artifacts / f"planner-import-{lang}.png"))
    page.locator("#import-run").click()
    expect(report).to_have_attribute("data-state", "stored")
    expect(report).to_contain_text(words["stored"])
    assert count_titled(engine, tag) == 2

    # The imported line is drawn as a line (stroke only), the map list has both drafts.
    from sqlalchemy import text
    with engine.connect() as conn:
        line_id = conn.execute(text("SELECT id FROM measures WHERE title = :t"),
                               {"t": f"{tag} Radweg"}).scalar_one()
    expect(page.locator(f'#measure-select option[value="{line_id}"]')).to_have_count(1)
    path = page.locator(f'#map path[data-measure-id="{line_id}"]')
    expect(path).to_have_count(1)
    assert path.get_attribute("fill") == "none", "a line must not be filled like a polygon"
    page.locator("#measure-select").select_option(str(line_id))
    expect(path).to_have_class(re.compile(r"\bmeasure--selected\b"))
    assert path.get_attribute("fill") == "none", "a selected line must stay unfilled"
    show_on_map(page, *HBF, zoom=16)
    page.screenshot(path=str(artifacts / f"planner-line-{lang}.png"))
