"""Browser tests of the public pages (web/index.html, ideas.html, idea.html, measure.html,
moderation.html) against the real quarters app, in Debian's headless Chromium.

- filters, result list and map always show the same set; the permalink restores filters,
  page and map view;
- near me by a click on the map (distances from the database, nearest first);
- an idea goes from the public form through moderation: accepted ones become visible, a
  rejected one shows its public reason; bad input gets German messages and stores nothing;
- an idea can be submitted with the keyboard alone;
- titles and texts with HTML or script are shown as text everywhere (list, popup, pages,
  moderation, Atom feed) and no dialog opens.

The app runs in a uvicorn process of its own over the session's test database
(``public_server``) with a high idea rate limit, so these tests do not use up the default
limit of the shared ``live_server``. Off-origin requests (tiles) are blocked; the server sends
its strict Content-Security-Policy, and any CSP violation, page error or dialog fails the test.

DOM hooks used here: body[data-results="ready"], #result-summary[data-total][data-mapped],
#map[data-measures-drawn][data-view], #measure-list li.result[data-id][data-status],
#near-section[data-state="ready"], #near-list li[data-id][data-distance], #near-feed,
body[data-page-state], body[data-submit="sent"], #idea-success, #idea-errors,
#idea-list li[data-id][data-state], body[data-mod-state="queue"], #mod-list li[data-id].
"""

from __future__ import annotations

import contextlib
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
from sqlalchemy import text

from conftest import same_origin_only, serve_app
from factories import api_json
from quarters import auth

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

TIMEOUT_MS = 30_000
PASSWORD = "richtig-geheim-123"
HALLE_AGS = "15002000"
HBF = (11.9870, 51.4776)  # Halle (Saale) Hauptbahnhof, lon/lat
SCRIPT_TITLE = "<img src=x onerror=alert(1)>"
SCRIPT_TEXT = "<script>alert(2)</script> Bitte genau so als Text anzeigen."


# ------------------------------------------------------------------ server and pages

@pytest.fixture(scope="session")
def public_server(settings, engine):
    """The app in its own uvicorn process over the session database, idea limit raised."""
    with serve_app(settings, QUARTERS_IDEA_LIMIT="1000") as url:
        yield url


@pytest.fixture
def open_page(browser, public_server):
    """open_page(path, locale=…) → a page of a fresh context; problems fail the test."""
    contexts = []
    problems: list[str] = []

    block_other_origins = same_origin_only(public_server)

    def on_console(message):
        if "Content Security Policy" in message.text:
            problems.append(f"CSP: {message.text}")

    def on_dialog(dialog):
        # Only injected markup (e.g. onerror=alert(1)) could open a dialog.
        problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    def _open(path="/", locale="de-DE", viewport=(1280, 900), context=None):
        if context is None:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                          locale=locale)
            context.route("**/*", block_other_origins)
            contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
        page.on("console", on_console)
        page.on("dialog", on_dialog)
        page.goto(public_server + path)
        return page

    yield _open
    for context in contexts:
        context.close()
    assert problems == []




def get(base_url, path):
    status, _, body = api_json(base_url, "GET", path)
    assert status == 200, body
    return body


def account(engine, role):
    username = f"{role}-{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        auth.add_user(conn, username, PASSWORD, role)
    return username


def bearer(base_url, username):
    status, _, body = api_json(base_url, "POST", "/api/auth/login",
                          {"username": username, "password": PASSWORD, "token": True})
    assert status == 200, body
    return body["token"]


def wait_results(page):
    expect(page.locator("body")).to_have_attribute("data-results", "ready")


def all_ids(base_url, query):
    body = get(base_url, f"/api/measures?limit=1000&{query}")
    return [f["properties"]["id"] for f in body["features"]], body["numberMatched"]


def located_count(base_url, query):
    body = get(base_url, f"/api/measures/points?limit=10000&{query}")
    return sum(1 for f in body["features"]
               if f["properties"]["location_precision"] in ("exact", "approximate"))


def list_ids(page):
    return [int(x) for x in page.locator("#measure-list li.result").evaluate_all(
        "(items) => items.map((li) => li.dataset.id)")]


def check_sync(page, base_url, query):
    """List, summary and map agree with the API for the filter ``query``."""
    ids, matched = all_ids(base_url, query)
    summary = page.locator("#result-summary")
    expect(summary).to_have_attribute("data-total", str(matched))
    mapped = located_count(base_url, query)
    expect(summary).to_have_attribute("data-mapped", str(mapped))
    expect(page.locator("#map")).to_have_attribute("data-measures-drawn", str(mapped))
    shown = list_ids(page)
    assert shown == ids[:20]
    return ids


# ------------------------------------------------------------------ map and list

# Before the page's scripts: at the first frame with #map[data-measures-drawn], remember the
# marker elements on screen (the first view, drawn from the server's clusters).
FIRST_VIEW_WATCH = """
(() => {
  const seen = { markers: null };
  window.__firstView = seen;
  const look = () => {
    const map = document.getElementById("map");
    const pane = document.querySelector(".leaflet-measureMarkers-pane");
    if (map && pane && map.dataset.measuresDrawn && !map.dataset.measuresIndexed) {
      seen.markers = [...pane.children];
      seen.labels = seen.markers.map((m) => m.getAttribute("aria-label"));
      return;
    }
    if (!map || !map.dataset.measuresIndexed) requestAnimationFrame(look);
  };
  requestAnimationFrame(look);
})();
"""

# In the page: the clusters of the server against a supercluster index of the compact points
# built here with the page's options; the differences (empty: the same clusters).
COMPARE_CLUSTERS = """
async () => {
  const get = async (format) => (await fetch(`/api/measures/points?limit=10000&format=${format}`)).json();
  const [body, points] = await Promise.all([get("clusters"), get("compact")]);
  const features = [];
  points.id.forEach((id, i) => {
    if (typeof points.lon[i] !== "number" || typeof points.lat[i] !== "number") return;
    if (!["exact", "approximate"].includes(points.location_precision[i])) return;
    features.push({ type: "Feature", geometry: { type: "Point", coordinates: [points.lon[i], points.lat[i]] },
      properties: { id } });
  });
  const index = new Supercluster({ radius: 56, maxZoom: 16 }).load(features);
  const problems = [];
  for (const [zoom, items] of Object.entries(body.levels)) {
    const own = new Map(index.getClusters([-180, -85, 180, 85], Number(zoom)).map((f) => [
      f.properties.cluster ? `c${f.properties.cluster_id}` : `m${f.properties.id}`, f]));
    if (own.size !== items.length) problems.push(`zoom ${zoom}: ${own.size} vs ${items.length}`);
    for (const [lon, lat, count, ref, expansion] of items) {
      const key = count > 1 ? `c${ref}` : `m${body.points.id[ref]}`;
      const f = own.get(key);
      if (!f) { problems.push(`zoom ${zoom}: ${key} missing`); continue; }
      const [x, y] = f.geometry.coordinates;
      if (Math.abs(x - lon) > 1e-9 || Math.abs(y - lat) > 1e-9) problems.push(`zoom ${zoom}: ${key} moved`);
      if (count > 1 && (f.properties.point_count !== count
          || index.getClusterExpansionZoom(ref) !== expansion)) problems.push(`zoom ${zoom}: ${key} differs`);
    }
  }
  return { problems, levels: Object.keys(body.levels).length, count: body.count, own: features.length };
}
"""


@contextlib.contextmanager
def watched_page(browser, server: str, init_script: str):  # noqa: ANN001, ANN201
    """A page of a fresh same-origin context (1280×900, de-DE) with ``init_script`` run
    before the page's own; afterwards the page must have raised no error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="de-DE")
    context.route("**/*", same_origin_only(server))
    context.add_init_script(init_script)
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda err: errors.append(str(err)))
        yield page
    finally:
        context.close()
    assert errors == []


def test_first_view_is_drawn_from_the_servers_clusters(browser, public_server):
    """The unfiltered first view comes from /api/measures/points?format=clusters before the
    page has indexed the points; its own index then takes over the very same markers."""
    with watched_page(browser, public_server, FIRST_VIEW_WATCH) as page:
        page.goto(public_server + "/")
        wait_results(page)
        mapped = located_count(public_server, "")
        the_map = page.locator("#map")
        expect(the_map).to_have_attribute("data-measures-indexed", str(mapped))
        expect(the_map).to_have_attribute("data-measures-drawn", str(mapped))
        marks = page.evaluate("""() => ['measures-drawn', 'measures-indexed'].map(
            (name) => performance.getEntriesByName(name, 'mark').map((m) => m.startTime))""")
        assert len(marks[0]) == 1 and len(marks[1]) == 1 and marks[0][0] < marks[1][0], marks
        # the markers of the first view are still the ones on the map, with their labels
        kept = page.evaluate("""() => ({
            n: window.__firstView.markers?.length ?? -1,
            connected: (window.__firstView.markers || []).every((m) => m.isConnected),
            now: document.querySelector('.leaflet-measureMarkers-pane').children.length,
            labelled: (window.__firstView.labels || []).every(Boolean)})""")
        assert kept["n"] > 0 and kept["connected"] and kept["now"] == kept["n"], kept
        assert kept["labelled"], kept
        # a cluster drawn from the server's answer zooms in on a click, as the index's do
        zoom = map_zoom(page)
        cluster = page.locator(".leaflet-measureMarkers-pane .mk-cluster").first
        cluster.click()
        page.wait_for_function(f"() => !document.getElementById('map').dataset.view"
                               f".startsWith('{zoom}/')")
        # and the server's clusters are the ones supercluster makes of the same points
        result = page.evaluate(COMPARE_CLUSTERS)
        assert result["problems"] == [] and result["levels"] >= 10, result
        assert result["count"] == result["own"] == mapped


# Before the first paint: the Intl objects the page creates (each first one loads locale data)
INTL_WATCH = """
(() => {
  const made = [];
  window.__intlBeforePaint = made;
  for (const name of ["NumberFormat", "PluralRules", "DateTimeFormat", "ListFormat"]) {
    Intl[name] = new Proxy(Intl[name], { construct(target, args) {
      if (!document.getElementById("map")?.dataset.measuresDrawn) made.push(name);
      return Reflect.construct(target, args);
    } });
  }
})();
"""
BEFORE_PAINT = """() => {
  const drawn = performance.getEntriesByName('measures-drawn', 'mark')[0].startTime;
  return performance.getEntriesByType('resource').filter((e) => e.startTime < drawn)
    .map((e) => new URL(e.name)).map((u) => u.pathname + u.search);
}"""


@pytest.mark.parametrize("lang", ["de", "en"])
def test_first_paint_waits_for_no_data_request_and_no_intl(browser, public_server, lang):
    """Catalogue, configuration and first-view clusters come with the page: nothing is
    fetched for them before the measures are drawn, and no Intl object is created before
    (the cluster labels' numbers and plural forms are the ones Intl gives)."""
    with watched_page(browser, public_server, INTL_WATCH) as page:
        page.goto(f"{public_server}/?lang={lang}")
        mapped = located_count(public_server, "")
        expect(page.locator("#map")).to_have_attribute("data-measures-drawn", str(mapped))
        asked = page.evaluate(BEFORE_PAINT)
        # (the list page and the points for the page's own index may be under way already)
        data = [a for a in asked if a.startswith(("/api/config", "/i18n/")) or "clusters" in a]
        assert data == [], data
        assert page.evaluate("() => window.__intlBeforePaint") == []
        # the labels are in the page language, their numbers as Intl writes them
        check = page.evaluate("""() => {
            const format = new Intl.NumberFormat(document.documentElement.lang === 'en' ? 'en-GB' : 'de-DE');
            return [...document.querySelectorAll('.leaflet-measureMarkers-pane .mk-cluster')].map((m) => {
              const count = Number(m.textContent);
              return [m.getAttribute('aria-label'), format.format(count), count];
            });
        }""")
        assert check, "the first view shows clusters"
        word = {"de": " Maßnahmen – vergrößern", "en": " measures – zoom in"}[lang]
        for label, formatted, count in check:
            assert count > 1 and label == formatted + word, (label, formatted)
        expect(page.locator("#filter-heading")).to_have_text(
            {"de": "Suchen und filtern", "en": "Search and filter"}[lang])


def test_filters_and_list_stay_in_sync(open_page, public_server, artifacts):
    page = open_page("/")
    wait_results(page)
    ids = check_sync(page, public_server, "")
    assert len(ids) > 20, "the seed should need a second page"

    # Paging through the list covers exactly the API's set, in the same order.
    seen = list_ids(page)
    while page.locator("#page-next").is_enabled():
        page.locator("#page-next").click()
        wait_results(page)
        seen += list_ids(page)
    assert seen == ids
    expect(page.locator("#results-heading")).to_be_focused()

    # Status filter: list, summary and map follow.
    page.select_option("#filter-status", "abgeschlossen")
    wait_results(page)
    check_sync(page, public_server, "status=abgeschlossen")
    statuses = page.locator("#measure-list li.result").evaluate_all(
        "(items) => items.map((li) => li.dataset.status)")
    assert statuses and set(statuses) == {"abgeschlossen"}
    assert "status=abgeschlossen" in page.url

    # City + action field + text.
    page.select_option("#filter-city", "16052000")
    wait_results(page)
    page.select_option("#filter-field", "Energie und Umwelt")
    wait_results(page)
    check_sync(page, public_server,
               "status=abgeschlossen&city_ags=16052000&action_field=Energie%20und%20Umwelt")
    page.locator("#filter-q").fill("Solar")
    page.locator("#filter-q").press("Enter")
    wait_results(page)
    ids = check_sync(page, public_server, "status=abgeschlossen&city_ags=16052000"
                     "&action_field=Energie%20und%20Umwelt&q=Solar")
    assert ids, "a Gera solar pilot is in the seed"
    expect(page.locator("#measure-list")).to_contain_text("Solar")

    # Quarter and district filters (Halle).
    page.locator("#filter-reset").click()
    wait_results(page)
    page.select_option("#filter-quarter", "bildungsquartier-neustadt")
    wait_results(page)
    check_sync(page, public_server, "quarter=bildungsquartier-neustadt")
    expect(page.locator("#filter-feed")).to_be_visible()
    assert "quarter=bildungsquartier-neustadt" in page.locator("#filter-feed").get_attribute("href")
    district = page.locator("#filter-district option").nth(1)
    page.select_option("#filter-district", district.get_attribute("value"))
    wait_results(page)
    check_sync(page, public_server, "quarter=bildungsquartier-neustadt"
               f"&district={district.get_attribute('value')}")

    # A filter that matches nothing says so.
    page.locator("#filter-reset").click()
    page.locator("#filter-q").fill("gibtesnicht-xyz")
    page.locator("#filter-q").press("Enter")
    wait_results(page)
    expect(page.locator("#result-summary")).to_have_attribute("data-total", "0")
    expect(page.locator("#measure-list")).to_contain_text("Keine Maßnahme passt")
    expect(page.locator("#map")).to_have_attribute("data-measures-drawn", "0")
    page.screenshot(path=str(artifacts / "public-filters.png"))


def test_permalink_restores_filters_page_and_view(open_page, public_server):
    page = open_page("/?status=in_umsetzung&city=15002000&map=14/51.48/11.97")
    wait_results(page)
    expect(page.locator("#filter-status")).to_have_value("in_umsetzung")
    expect(page.locator("#filter-city")).to_have_value("15002000")
    expect(page.locator("#map")).to_have_attribute("data-view", "14/51.48000/11.97000")
    check_sync(page, public_server, "status=in_umsetzung&city_ags=15002000")

    # Change filters and the view by hand, then open the address in a fresh browser.
    page.select_option("#filter-field", "Bildung")
    wait_results(page)
    page.locator(".leaflet-control-zoom-in").click()
    expect(page.locator("#map")).to_have_attribute("data-view", re.compile(r"^15/"))
    page.wait_for_timeout(400)  # the address follows the view after a short pause
    view = page.locator("#map").get_attribute("data-view")
    url = page.url
    params = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert params["field"] == ["Bildung"] and params["map"] == [view]
    expected = list_ids(page)

    again = open_page(url[len(public_server):])
    wait_results(again)
    expect(again.locator("#filter-status")).to_have_value("in_umsetzung")
    expect(again.locator("#filter-city")).to_have_value("15002000")
    expect(again.locator("#filter-field")).to_have_value("Bildung")
    expect(again.locator("#map")).to_have_attribute("data-view", view)
    assert list_ids(again) == expected

    # Page 2 of the unfiltered list survives a reload as well.
    second = open_page("/?page=2")
    wait_results(second)
    ids, _ = all_ids(public_server, "")
    assert list_ids(second) == ids[20:40]
    expect(second.locator("#page-info")).to_contain_text("Seite 2 von")


# ------------------------------------------------------------------ near me

def test_near_me_by_clicking_on_the_map(open_page, public_server, artifacts):
    page = open_page(f"/?map=15/{HBF[1]}/{HBF[0]}")
    wait_results(page)
    page.locator("#near-section > summary").click()
    page.select_option("#near-radius", "2000")
    page.locator("#near-pick").click()
    expect(page.locator("#near-pick")).to_have_attribute("aria-pressed", "true")
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.locator("#near-section")).to_have_attribute("data-state", "ready")
    expect(page.locator("#near-pick")).to_have_attribute("aria-pressed", "false")

    # The page's answer is the database's: same measures, same order, distances in metres.
    params = urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)
    lon, lat = (float(v) for v in params["near"][0].split(","))
    assert abs(lon - HBF[0]) < 0.002 and abs(lat - HBF[1]) < 0.002
    assert params["r"] == ["2000"]
    near = get(public_server, f"/api/near?lon={lon}&lat={lat}&radius=2000")
    items = page.locator("#near-list li")
    shown = items.evaluate_all("(lis) => lis.map((li) => [+li.dataset.id, +li.dataset.distance])")
    assert [i for i, _ in shown] == [m["id"] for m in near["measures"]]
    distances = [d for _, d in shown]
    assert distances == sorted(distances) and all(d <= 2000 for d in distances)
    assert shown, "the RAW-Gelände measures are within 2 km of the Hauptbahnhof"
    expect(page.locator("#near-place")).to_contain_text(near["district"]["name"])
    feed = page.locator("#near-feed")
    expect(feed).to_have_text("Diesen Ort abonnieren (Atom)")
    href = feed.get_attribute("href")
    assert href.startswith("/api/feeds/changes.atom?") and "radius=2000" in href
    with urllib.request.urlopen(public_server + href, timeout=30) as response:
        assert response.headers["Content-Type"].startswith("application/atom+xml")

    # Choosing a district by name answers with its pilot-quarter membership.
    page.select_option("#near-district", label="Freiimfelde/Kanenaer Weg")
    page.locator("#near-district-go").click()
    expect(page.locator("#near-place")).to_contain_text("Freiimfelde/Kanenaer Weg")
    expect(page.locator("#near-quarters")).to_contain_text("Wirtschaftsquartier hallescher Osten")
    expect(page.locator("#near-feed")).to_have_attribute("href", re.compile(r"district=\d+"))
    page.screenshot(path=str(artifacts / "public-near.png"))


# ------------------------------------------------------------------ ideas

def fill_idea(page, title, body, field="Bildung"):
    """Place the idea at the map centre (Halle) and fill the form with the mouse."""
    expect(page.locator("body")).to_have_attribute("data-page-state", "ready")
    # Near the centre (Halle); a click that lands on the marker of an earlier idea opens
    # that marker instead of placing a point, so try a few fixed spots until one is free.
    box = page.locator("#idea-map").bounding_box()
    for dx, dy in ((0, 0), (45, -35), (-50, 40), (60, 55), (-65, -60), (20, 70)):
        page.mouse.click(box["x"] + box["width"] / 2 + dx, box["y"] + box["height"] / 2 + dy)
        if page.locator("#idea-location").get_attribute("data-set") == "true":
            break
    expect(page.locator("#idea-location")).to_have_attribute("data-set", "true")
    expect(page.locator("#idea-city")).to_have_value(HALLE_AGS)
    page.locator("#idea-title").fill(title)
    page.locator("#idea-text").fill(body)
    page.select_option("#idea-field", field)


def submit_idea(page, title, body, field="Bildung"):
    fill_idea(page, title, body, field)
    page.locator("#idea-submit").click()
    expect(page.locator("#idea-success")).to_be_visible()
    expect(page.locator("#idea-success")).to_contain_text("Ihre Idee ist eingegangen")
    expect(page.locator("body")).to_have_attribute("data-submit", "sent")


def sign_in(page, username):
    expect(page.locator("body")).to_have_attribute("data-mod-state", "login")
    page.get_by_label("Benutzername").fill(username)
    page.get_by_label("Passwort").fill(PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    expect(page.locator("body")).to_have_attribute("data-mod-state", "queue")


def save_decision(item, confirm=True):
    """Save the chosen decision; a decision that publishes the idea is confirmed first."""
    item.get_by_role("button", name="Entscheidung speichern").click()
    if confirm:
        expect(item.locator('[data-role="confirm"]')).to_contain_text("öffentlich sichtbar")
        item.get_by_role("button", name="Ja, veröffentlichen").click()


def idea_count(engine, title):
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM ideas WHERE title = :t"),
                            {"t": title}).scalar_one()


def test_idea_goes_through_moderation(open_page, public_server, engine, artifacts):
    tag = uuid.uuid4().hex[:6]
    accepted = f"Trinkbrunnen am Marktplatz {tag}"
    rejected = f"Parkhaus auf der Peißnitz {tag}"

    page = open_page("/ideas.html")
    # Bad input: German messages, focus on the summary, nothing stored.
    expect(page.locator("body")).to_have_attribute("data-page-state", "ready")
    page.locator("#idea-title").fill("ab")
    page.locator("#idea-submit").click()
    errors = page.locator("#idea-errors")
    expect(errors).to_be_visible()
    expect(errors).to_be_focused()
    expect(errors).to_contain_text("Bitte geben Sie einen Titel mit 3 bis 120 Zeichen an.")
    expect(errors).to_contain_text("Bitte beschreiben Sie Ihre Idee mit 10 bis 4000 Zeichen.")
    expect(errors).to_contain_text("Bitte setzen Sie einen Punkt auf der Karte innerhalb der Stadt.")
    expect(page.locator("#idea-title")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#idea-title-error")).to_be_visible()
    assert idea_count(engine, "ab") == 0
    page.locator("#idea-errors a").first.click()
    expect(page.locator("#idea-title")).to_be_focused()
    page.screenshot(path=str(artifacts / "public-idea-errors.png"), full_page=True)

    submit_idea(page, accepted, "Ein öffentlicher Trinkbrunnen für heiße Sommertage.")
    expect(page.locator("#idea-title")).to_have_value("")
    # The submitter can follow the idea by its page.
    with engine.connect() as conn:
        new_id = conn.execute(text("SELECT max(id) FROM ideas WHERE title = :t"),
                              {"t": accepted}).scalar_one()
    expect(page.locator("#idea-follow")).to_have_attribute("href", f"/ideen/{new_id}")
    page.goto(public_server + "/ideas.html")
    submit_idea(page, rejected, "Mehr Parkplätze mitten im Landschaftsschutzgebiet.", "Mobilität")
    assert idea_count(engine, accepted) == 1 and idea_count(engine, rejected) == 1

    # Invisible to the public until a moderator decides.
    public_titles = {i["title"] for i in get(public_server, "/api/ideas")["ideas"]}
    assert accepted not in public_titles and rejected not in public_titles
    page.goto(public_server + "/ideas.html")
    expect(page.locator("body")).to_have_attribute("data-ideas", "ready")
    expect(page.locator("#idea-list")).not_to_contain_text(tag)

    moderator = account(engine, "moderator")
    mod = open_page("/moderation.html")
    sign_in(mod, moderator)
    item_a = mod.locator("#mod-list li.mod-item", has_text=accepted)
    item_b = mod.locator("#mod-list li.mod-item", has_text=rejected)
    expect(item_a).to_be_visible()
    expect(item_b).to_be_visible()
    id_a = item_a.get_attribute("data-id")
    id_b = item_b.get_attribute("data-id")

    # No decision is preselected; saving without one asks for it.
    expect(item_a.locator('input[type="radio"]:checked')).to_have_count(0)
    save_decision(item_a, confirm=False)
    expect(item_a.locator('[data-role="error"]')).to_contain_text("Bitte wählen Sie eine Entscheidung")
    item_a.get_by_label("Annehmen").check()
    # Cancelling the confirmation publishes nothing.
    item_a.get_by_role("button", name="Entscheidung speichern").click()
    item_a.get_by_role("button", name="Abbrechen").click()
    assert accepted not in {i["title"] for i in get(public_server, "/api/ideas")["ideas"]}
    save_decision(item_a)
    expect(mod.locator("#page-status")).to_contain_text(f"„{accepted}“ – Angenommen")
    expect(mod.locator(f'#mod-list li[data-id="{id_a}"]')).to_have_count(0)

    # A rejection without a reason is refused with a German message.
    item_b.get_by_label("Ablehnen").check()
    save_decision(item_b, confirm=False)
    expect(item_b.locator('[data-role="error"]')).to_contain_text("öffentliche Begründung")
    reason = "Die Peißnitz ist Landschaftsschutzgebiet; dort entstehen keine Parkhäuser."
    item_b.get_by_label("Öffentliche Begründung").fill(reason)
    save_decision(item_b)
    expect(mod.locator("#page-status")).to_contain_text(f"„{rejected}“ – Abgelehnt")
    mod.screenshot(path=str(artifacts / "public-moderation.png"), full_page=True)

    # The public sees both outcomes.
    page.goto(public_server + "/ideas.html")
    expect(page.locator("body")).to_have_attribute("data-ideas", "ready")
    card_a = page.locator(f'#idea-list li[data-id="{id_a}"]')
    card_b = page.locator(f'#idea-list li[data-id="{id_b}"]')
    expect(card_a).to_have_attribute("data-state", "angenommen")
    expect(card_a).to_contain_text("Angenommen")
    expect(card_b).to_have_attribute("data-state", "abgelehnt")
    expect(card_b).to_contain_text(reason)
    expect(card_b).not_to_contain_text("Mehr Parkplätze")  # a rejected text stays off the site

    page.goto(f"{public_server}/ideen/{id_b}")
    expect(page.locator("body")).to_have_attribute("data-page-state", "ready")
    expect(page.locator("h1#i-title")).to_have_text(rejected)
    expect(page.locator(".idea-reason")).to_have_text(reason)
    expect(page.locator("#i-text")).to_have_text("Der Text einer abgelehnten Idee wird nicht "
                                                 "veröffentlicht.")
    page.goto(f"{public_server}/ideen/{id_a}")
    expect(page.locator("body")).to_have_attribute("data-page-state", "ready")
    expect(page.locator("#i-outcome")).to_contain_text("angenommen")
    page.screenshot(path=str(artifacts / "public-idea.png"), full_page=True)


def focus_by_tab(page, element_id, limit=80):
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            outline = page.evaluate(
                "() => { const s = getComputedStyle(document.activeElement);"
                " return [s.outlineStyle, s.outlineWidth]; }")
            assert outline[0] != "none" and outline[1] != "0px", f"{element_id}: no visible focus"
            return
    pytest.fail(f"Tab never reached #{element_id}")


def test_idea_can_be_submitted_with_the_keyboard_only(open_page, engine):
    title = f"Bank mit Schatten {uuid.uuid4().hex[:6]}"
    page = open_page("/ideas.html")
    expect(page.locator("body")).to_have_attribute("data-page-state", "ready")

    focus_by_tab(page, "idea-use-centre")
    page.keyboard.press("Enter")
    expect(page.locator("#idea-location")).to_have_attribute("data-set", "true")
    focus_by_tab(page, "idea-title", 5)
    page.keyboard.type(title)
    focus_by_tab(page, "idea-text", 3)
    page.keyboard.type("Sitzbänke mit Schatten an der Haltestelle.")
    focus_by_tab(page, "idea-field", 3)
    page.keyboard.press("ArrowDown")
    expect(page.locator("#idea-field")).not_to_have_value("")
    focus_by_tab(page, "idea-submit", 4)  # contact, then submit; the spam trap is skipped
    page.keyboard.press("Enter")
    expect(page.locator("#idea-success")).to_be_focused()
    expect(page.locator("#idea-success")).to_contain_text("Vielen Dank")
    assert idea_count(engine, title) == 1


# ------------------------------------------------------------------ script as text

@pytest.fixture
def script_measure(engine, public_server):
    """A published measure near the Hauptbahnhof titled with markup; deleted afterwards."""
    token = bearer(public_server, account(engine, "planner"))
    status, _, created = api_json(public_server, "POST", "/api/measures", {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [HBF[0] + 0.001, HBF[1] - 0.001]},
        "properties": {"title": SCRIPT_TITLE, "city_ags": HALLE_AGS, "action_field": "Mobilität",
                       "status": "geplant", "summary": SCRIPT_TEXT},
    }, token=token)
    assert status == 201, created
    measure_id = created["properties"]["id"]
    status, headers, _ = api_json(public_server, "POST", f"/api/measures/{measure_id}/publish",
                             token=token, etag=f'"m{measure_id}-v{created["properties"]["version"]}"')
    assert status == 200
    yield measure_id
    api_json(public_server, "DELETE", f"/api/measures/{measure_id}", token=token, etag=headers["ETag"])


def assert_no_markup(page, scope):
    assert page.locator(f"{scope} img:not(.leaflet-tile)").count() == 0  # tiles are images
    assert page.locator(f"{scope} script").count() == 0


def test_moderator_hides_an_idea_and_opens_a_workshop_code(open_page, public_server, engine,
                                                           artifacts):
    tag = uuid.uuid4().hex[:6]
    spam = f"Billige Uhren {tag}"
    page = open_page("/ideas.html")
    submit_idea(page, spam, "Jetzt kaufen unter uhren.invalid, nur heute!")
    moderator = account(engine, "moderator")
    mod = open_page("/moderation.html")
    sign_in(mod, moderator)
    item = mod.locator("#mod-list li.mod-item", has_text=spam)
    idea_id = item.get_attribute("data-id")
    item.get_by_label("Verbergen (Spam, Beleidigung, persönliche Daten)").check()
    save_decision(item, confirm=False)
    expect(item.locator('[data-role="error"]')).to_contain_text("warum die Idee verborgen wird")
    item.get_by_label("Interner Grund (nur für das Team)").fill("Werbung")
    item.screenshot(path=str(artifacts / "public-moderation-hide.png"))
    save_decision(item, confirm=False)  # hiding publishes nothing: no confirmation
    expect(mod.locator("#page-status")).to_contain_text(f"„{spam}“ – Verborgen")
    status, _, _ = api_json(public_server, "GET", f"/api/ideas/{idea_id}")
    assert status == 404
    page.goto(public_server + "/ideas.html")
    expect(page.locator("body")).to_have_attribute("data-ideas", "ready")
    expect(page.locator("#idea-list")).not_to_contain_text(tag)
    mod.select_option("#queue-state", "verborgen")
    hidden = mod.locator(f'#mod-list li[data-id="{idea_id}"]')
    expect(hidden).to_contain_text("Interner Grund: Werbung")

    # A workshop code for the Kreativwerkstatt, then a participant uses its link.
    mod.get_by_label("Name der Veranstaltung").fill(f"Kreativwerkstatt {tag}")
    mod.get_by_label("Gültig für (Stunden)").fill("3")
    mod.get_by_role("button", name="Code erstellen").click()
    entry = mod.locator("#workshop-list li", has_text=f"Kreativwerkstatt {tag}")
    expect(entry).to_contain_text("0 von 200 Ideen")
    code = entry.get_attribute("data-code")
    expect(mod.locator("#workshop-status")).to_contain_text(f"Code {code} ist erstellt")
    mod.locator("#workshops").screenshot(path=str(artifacts / "public-moderation-workshop.png"))
    page.goto(public_server + entry.locator("a").get_attribute("href"))
    expect(page.locator("#idea-workshop-code")).to_have_value(code)
    submit_idea(page, f"Werkstattidee {tag}", "Ein Treffpunkt für die Nachbarschaft im Hof.")
    expect(page.locator("#idea-workshop-code")).to_have_value(code)
    with engine.connect() as conn:
        assert conn.execute(text(
            "SELECT w.code FROM ideas i JOIN workshop_codes w ON w.id = i.workshop_code_id "
            "WHERE i.title = :t"), {"t": f"Werkstattidee {tag}"}).scalar_one() == code


def test_markup_in_titles_and_texts_is_shown_as_text(open_page, public_server, engine,
                                                     script_measure, artifacts):
    import feedparser

    # An idea titled with markup, submitted through the form and accepted.
    page = open_page("/ideas.html")
    submit_idea(page, SCRIPT_TITLE, SCRIPT_TEXT)
    with engine.connect() as conn:
        idea_id = conn.execute(text("SELECT max(id) FROM ideas WHERE title = :t"),
                               {"t": SCRIPT_TITLE}).scalar_one()
    moderator = account(engine, "moderator")
    mod = open_page("/moderation.html")
    sign_in(mod, moderator)
    item = mod.locator(f'#mod-list li[data-id="{idea_id}"]')
    expect(item.locator("h3")).to_have_text(SCRIPT_TITLE)
    expect(item.locator(".mod-item__text")).to_have_text(SCRIPT_TEXT)
    assert_no_markup(mod, "#mod-list")
    item.get_by_label("Annehmen").check()
    save_decision(item)
    expect(mod.locator("#page-status")).to_contain_text("Angenommen")

    page.goto(public_server + "/ideas.html")
    expect(page.locator("body")).to_have_attribute("data-ideas", "ready")
    card = page.locator(f'#idea-list li[data-id="{idea_id}"]')
    expect(card.locator("h3")).to_have_text(SCRIPT_TITLE)
    expect(card.locator(".idea-card__text")).to_have_text(SCRIPT_TEXT)
    assert_no_markup(page, "#idea-list")
    page.goto(f"{public_server}/ideen/{idea_id}")
    expect(page.locator("body")).to_have_attribute("data-page-state", "ready")
    expect(page.locator("h1#i-title")).to_have_text(SCRIPT_TITLE)
    expect(page.locator("#i-text")).to_have_text(SCRIPT_TEXT)
    assert page.title().startswith(SCRIPT_TITLE)
    assert_no_markup(page, "main")

    # A measure titled with markup: list, popup, measure page, near list.
    page.goto(public_server + "/?q=onerror")
    wait_results(page)
    result = page.locator(f'#measure-list li[data-id="{script_measure}"]')
    expect(result.locator("h3")).to_have_text(SCRIPT_TITLE)
    assert_no_markup(page, "#measure-list")
    result.get_by_role("button", name="Auf der Karte zeigen").click()
    popup = page.locator(".leaflet-popup-content .popup__title")
    expect(popup).to_have_text(SCRIPT_TITLE)
    assert_no_markup(page, ".leaflet-popup-content")
    marker = page.locator(f'.leaflet-marker-icon[aria-label^="{SCRIPT_TITLE}"]')
    expect(marker).to_have_count(1)
    page.screenshot(path=str(artifacts / "public-markup-popup.png"))

    page.goto(f"{public_server}/massnahmen/{script_measure}")
    expect(page.locator("body")).to_have_attribute("data-page-state", "ready")
    expect(page.locator("h1#m-title")).to_have_text(SCRIPT_TITLE)
    expect(page.locator("#m-text")).to_contain_text(SCRIPT_TEXT)
    assert_no_markup(page, "main")

    page.goto(f"{public_server}/?near={HBF[0]},{HBF[1]}&r=500&map=15/{HBF[1]}/{HBF[0]}")
    expect(page.locator("#near-section")).to_have_attribute("data-state", "ready")
    expect(page.locator(f'#near-list li[data-id="{script_measure}"] a')).to_have_text(SCRIPT_TITLE)
    assert_no_markup(page, "#near-list")

    # The Atom feed of that place carries the title as text, too.
    with urllib.request.urlopen(
            f"{public_server}/api/feeds/changes.atom?lon={HBF[0]}&lat={HBF[1]}&radius=500",
            timeout=30) as response:
        raw = response.read()
    assert b"<img" not in raw
    feed = feedparser.parse(raw)
    assert any(SCRIPT_TITLE in entry.title for entry in feed.entries)


# ------------------------------------------------------------------ map: tiles, shapes, places, phone

LINE_TITLE = "Radroute Testlinie am Riebeckplatz"


@pytest.fixture
def line_measure(engine, public_server):
    """A published line (a cycle route) in Halle's centre; deleted afterwards."""
    token = bearer(public_server, account(engine, "planner"))
    status, _, created = api_json(public_server, "POST", "/api/measures", {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": [
            [11.9700, 51.4800], [11.9760, 51.4815], [11.9820, 51.4790], [11.9870, 51.4776]]},
        "properties": {"title": LINE_TITLE, "city_ags": HALLE_AGS, "action_field": "Mobilität",
                       "status": "in_umsetzung", "location_precision": "exact"},
    }, token=token)
    assert status == 201, created
    measure_id = created["properties"]["id"]
    status, headers, _ = api_json(public_server, "POST", f"/api/measures/{measure_id}/publish",
                                  token=token,
                                  etag=f'"m{measure_id}-v{created["properties"]["version"]}"')
    assert status == 200
    yield measure_id
    api_json(public_server, "DELETE", f"/api/measures/{measure_id}", token=token,
             etag=headers["ETag"])


def map_zoom(page):
    expect(page.locator("#map")).to_have_attribute("data-view", re.compile(r"^\d+/"))
    return int(page.locator("#map").get_attribute("data-view").split("/")[0])


def test_districts_and_quarters_come_from_vector_tiles(open_page):
    requests: list[str] = []
    page = open_page("/?map=12/51.48/11.97")
    page.on("request", lambda r: requests.append(r.url))
    page.reload()
    wait_results(page)
    expect(page.locator("#map path.district").first).to_be_attached()
    expect(page.locator("#map path.quarter").first).to_be_visible()
    tile = re.compile(r"/api/collections/(districts|quarters)/tiles/WebMercatorQuad/\d+/\d+/\d+$")
    tiled = {tile.search(u).group(1) for u in requests if tile.search(u)}
    assert tiled == {"districts", "quarters"}
    # no full GeoJSON of either collection on the way to the first view
    assert not [u for u in requests if re.search(r"/collections/(districts|quarters)/items", u)]
    # the district filter and the near-me list still name every district (from /api/places)
    n_districts = len(get(page.url, "/api/places?kind=district&limit=1000")["places"])
    expect(page.locator("#filter-district option")).to_have_count(n_districts + 1)

    # a click on a quarter opens its popup with the full record (description from the API)
    page.locator("#layers-section > summary").click()
    page.locator("#legend-quarters button", has_text="Bildungsquartier Neustadt").click()
    expect(page.locator(".leaflet-popup-content .popup__title")).to_have_text(
        "Bildungsquartier Neustadt")
    expect(page.locator(".leaflet-popup-content .popup__description")).not_to_be_empty()


def test_lines_are_lines_and_areas_are_shapes_at_city_zoom(open_page, line_measure, artifacts):
    page = open_page("/")
    wait_results(page)
    assert map_zoom(page) >= 11, "the start view shows Halle at city zoom"
    areas = page.locator("#map path.measure-shape--area")
    expect(areas.first).to_be_visible()
    area_fill = areas.first.get_attribute("fill")
    assert area_fill and area_fill != "none"
    line = page.locator("#map path.measure-shape--line")
    expect(line.first).to_be_attached()
    assert line.first.get_attribute("fill") == "none"
    assert float(line.first.get_attribute("stroke-width")) >= 3
    # zoomed out to the region, the shapes give way to the clustered markers
    page.goto(page.url.split("?")[0] + "?map=9/51.3/12.0")
    wait_results(page)
    expect(page.locator("#map .leaflet-marker-icon").first).to_be_visible()
    expect(page.locator("#map path.measure-shape")).to_have_count(0)
    # filters apply to the shapes too: another status hides the line
    page.goto(page.url.split("?")[0] + "?status=geplant&map=15/51.4800/11.9780")
    wait_results(page)
    expect(page.locator("#map path.measure-shape--line")).to_have_count(0)
    page.goto(page.url.split("?")[0] + "?status=in_umsetzung&map=15/51.4800/11.9780")
    wait_results(page)
    expect(page.locator("#map path.measure-shape--line").first).to_be_attached()
    page.screenshot(path=str(artifacts / "public-shapes.png"))


def test_place_search_by_keyboard_moves_the_map(open_page, public_server):
    page = open_page("/")
    wait_results(page)
    focus_by_tab(page, "place-q", 200)
    combo = page.locator("#place-q")
    expect(combo).to_have_attribute("role", "combobox")
    before = page.locator("#map").get_attribute("data-view")

    page.keyboard.type("Freiimfelde")
    expect(combo).to_have_attribute("aria-expanded", "true")
    options = page.locator("#place-list [role=option]")
    expect(options.first).to_contain_text("Freiimfelde/Kanenaer Weg")
    page.keyboard.press("ArrowDown")
    active = combo.get_attribute("aria-activedescendant")
    expect(page.locator(f"#{active}")).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Enter")
    expect(combo).to_have_attribute("aria-expanded", "false")
    district = get(public_server, "/api/places?q=Freiimfelde&kind=district")["places"][0]
    expect(page.locator("#map")).to_have_attribute("data-place", f"district:{district['id']}")
    expect(page.locator("#map")).not_to_have_attribute("data-view", before)
    expect(page.locator("#place-status")).to_contain_text("Freiimfelde/Kanenaer Weg")
    lon, lat = district["centre"]
    centre = page.evaluate("() => document.querySelector('#map').dataset.view.split('/').map(Number)")
    west, south, east, north = district["bbox"]
    assert west - 0.01 <= centre[2] <= east + 0.01 and south - 0.01 <= centre[1] <= north + 0.01

    # a measure by its title: the map goes there and opens its popup
    measures = get(public_server, "/api/measures?limit=1000")["features"]
    located = next(f for f in measures
                   if f["properties"].get("location_precision") in ("exact", "approximate"))
    title = located["properties"]["title"]
    combo.fill("")
    page.keyboard.type(title[:30])
    measure_id = located["properties"]["id"]
    option = page.locator(f'#place-list [role=option][data-kind="measure"][data-id="{measure_id}"]')
    expect(option).to_have_count(1)
    index = int(option.get_attribute("data-index"))
    for _ in range(index + 1):
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.locator("#map")).to_have_attribute("data-place",
                                                   f"measure:{located['properties']['id']}")
    expect(page.locator(".leaflet-popup-content .popup__title")).to_have_text(title)
    # Escape closes the list without choosing
    combo.fill("")
    page.keyboard.type("Neustadt")
    expect(combo).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Escape")
    expect(combo).to_have_attribute("aria-expanded", "false")
    expect(page.locator("#place-list")).to_be_hidden()


def test_phone_view_shows_the_map_first_and_a_small_attribution(open_page, artifacts):
    page = open_page("/", viewport=(390, 844))
    wait_results(page)
    page.screenshot(path=str(artifacts / "public-phone.png"))
    map_box = page.locator("#map").bounding_box()
    assert map_box["y"] < 844 * 0.5, f"map starts at {map_box['y']} px"
    assert map_box["y"] + map_box["height"] <= 844 + 1, "the map fits in the first screen"
    assert map_box["height"] >= 300
    expect(page.locator(".leaflet-control-attribution")).to_contain_text("GeoBasis-DE / BKG")
    attribution = page.locator(".leaflet-control-attribution").bounding_box()
    assert attribution["height"] <= 24, f"attribution {attribution['height']} px high"
    assert attribution["height"] * attribution["width"] < map_box["height"] * map_box["width"] / 20
    # the list follows the map (a sheet below it), the place search is above it
    list_box = page.locator("#results-heading").bounding_box()
    assert list_box["y"] > map_box["y"] + map_box["height"] - 20
    assert page.locator("#place-q").bounding_box()["y"] < map_box["y"]
    page.screenshot(path=str(artifacts / "public-phone.png"))


def test_measure_page_speaks_to_citizens(open_page, public_server, engine):
    with engine.connect() as conn:
        measure_id = conn.execute(text(
            "SELECT id FROM measures_public WHERE location_precision = 'city' "
            "AND location_note IS NOT NULL ORDER BY id LIMIT 1")).scalar_one()
    page = open_page(f"/massnahmen/{measure_id}")
    expect(page.locator("body")).to_have_attribute("data-page-state", "ready")
    body = page.locator("main").inner_text()
    for word in ("Loader", "Geometrie null", "Fallback"):
        assert word not in body, word
    expect(page.locator("#m-place-text")).to_contain_text("Stadt")
