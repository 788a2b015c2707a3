"""Browser test of the public map page (web/) against the real quarters app.

Uses the fixtures of tests/conftest.py: ``live_server`` (base URL of the app serving web/ at
``/``, Leaflet at ``/vendor/`` and the API over a test PostGIS with the data loaded),
``browser`` (Debian's headless Chromium through Playwright) and ``artifacts`` (the directory
for tests/artifacts/map.png). Tiles and every other off-origin request are blocked, so the
page is proven to work without a background map.
"""

import json
import re
import urllib.parse
import urllib.request

import pytest

from conftest import same_origin_only

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

PILOT_QUARTERS = {"Wirtschaftsquartier hallescher Osten", "Bildungsquartier Neustadt"}
TILE_FAILURE_TEXT = (
    "Hintergrundkarte nicht erreichbar – die Ebenen werden ohne Hintergrund angezeigt."
)
LOADED = re.compile(r"Alle \d+ Ebenen geladen")
TIMEOUT_MS = 30_000

# Finds a viewport point where the given SVG path itself is hit (not a label, not another
# layer), so a click on it opens its own popup even for concave outlines.
FIND_CLICK_POINT = """
(el) => {
  const r = el.getBoundingClientRect();
  const left = Math.max(r.left, 0);
  const top = Math.max(r.top, 0);
  const right = Math.min(r.right, window.innerWidth);
  const bottom = Math.min(r.bottom, window.innerHeight);
  for (let i = 1; i < 24; i++) {
    for (let j = 1; j < 24; j++) {
      const x = left + (right - left) * ((i * 7) % 24) / 24;
      const y = top + (bottom - top) * ((j * 11) % 24) / 24;
      if (document.elementFromPoint(x, y) === el) return [x, y];
    }
  }
  return null;
}
"""


def css_token(value):
    """Same reduction as cssToken() in web/js/map.js."""
    return re.sub(r"^-+|-+$", "", re.sub(r"[^a-z0-9-]+", "-", str(value).lower()))


def get_json(base_url, path):
    with urllib.request.urlopen(urllib.parse.urljoin(base_url, path), timeout=30) as response:
        return json.load(response)


@pytest.fixture
def quarters(live_server):
    """Pilot quarters as served by the API: list of (slug, name)."""
    body = get_json(live_server, "/api/collections/quarters/items?limit=1000")
    found = [(f["properties"]["slug"], f["properties"]["name"]) for f in body["features"]]
    assert PILOT_QUARTERS <= {name for _, name in found}
    return found


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="de-DE")

    block_other_origins = same_origin_only(live_server)

    # Later registrations take precedence: tiles are aborted explicitly, anything else
    # off-origin as well (the page must not depend on a CDN).
    context.route("**/*", block_other_origins)
    context.route("**/tile.openstreetmap.org/**", lambda route: route.abort())

    page = context.new_page()
    problems = []

    def on_dialog(dialog):
        # A dialog could only come from injected markup (e.g. onerror=alert(1)).
        problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
    page.on("dialog", on_dialog)
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(live_server + "/")
    expect(page.locator("#status-data")).to_have_text(LOADED, timeout=TIMEOUT_MS)
    yield page
    context.close()
    assert problems == []


def test_map_draws_layers_legend_and_attribution(page, quarters, artifacts):
    open_layers(page)
    for slug, name in quarters:
        paths = page.locator(f"#map path.quarter.quarter--{css_token(slug)}")
        expect(paths.first).to_be_visible()
        expect(page.locator("#legend-quarters")).to_contain_text(name)
    for name in PILOT_QUARTERS:
        expect(page.locator("#layer-list")).to_contain_text(name)

    expect(page.locator("#map path.municipality--15002000")).to_have_count(1)
    expect(page.locator("#map path.municipality--16052000")).to_have_count(1)
    assert page.locator("#map path.district").count() > 0
    assert page.locator("#map path.site").count() > 0

    attribution = page.locator(".leaflet-control-attribution")
    expect(attribution).to_contain_text("GeoBasis-DE / BKG")
    tile_attribution = get_json(page.url, "/api/config").get("tile_attribution")
    if tile_attribution:
        expect(attribution).to_contain_text(tile_attribution)
    expect(page.locator("#source-list")).to_contain_text("GeoBasis-DE / BKG")

    # Tiles were blocked: one German message, plain background, vector layers still drawn.
    expect(page.locator("#status")).to_contain_text(TILE_FAILURE_TEXT)
    assert page.locator("#status").inner_text().count("Hintergrundkarte nicht erreichbar") == 1
    expect(page.locator("#map")).to_have_class(re.compile(r"\bmap--no-tiles\b"))
    expect(page.locator("#map path.quarter").first).to_be_visible()

    districts = get_json(page.url, "/api/collections/districts/items?limit=1000")["features"]
    if any(f["properties"].get("approximate") for f in districts):
        expect(page.locator("#approx-note")).to_be_visible()
        expect(page.locator("#approx-note")).to_contain_text("Näherung, nicht amtlich")

    page.screenshot(path=str(artifacts / "map.png"), full_page=True)


@pytest.mark.parametrize("name", sorted(PILOT_QUARTERS))
def test_click_on_quarter_opens_popup_with_its_name(page, quarters, name):
    slug = next(s for s, n in quarters if n == name)
    expect(page.locator(".leaflet-popup")).to_have_count(0)

    # The start view is Halle (Saale): both pilot quarters are on screen.
    path = page.locator(f"#map path.quarter--{css_token(slug)}").first
    point = path.evaluate(FIND_CLICK_POINT)
    assert point is not None, f"no clickable point on the outline of {name}"
    page.mouse.click(*point)

    title = page.locator(".leaflet-popup-content .popup__title")
    expect(title).to_have_text(name)
    assert title.evaluate("(el) => el.children.length") == 0


def open_layers(page):
    """The layer list and legend sit in a closed disclosure ("Kartenebenen und Legende")."""
    page.locator("#layers-section > summary").click()
    expect(page.locator("#layer-quarters")).to_be_visible()


def test_legend_entry_opens_popup_of_its_quarter(page):
    open_layers(page)
    for name in sorted(PILOT_QUARTERS):
        page.locator("#legend-quarters button", has_text=name).click()
        # The previous popup fades out for a moment: wait until only the new one is left.
        expect(page.locator(".leaflet-popup")).to_have_count(1)
        expect(page.locator(".leaflet-popup-content .popup__title")).to_have_text(name)


def test_keyboard_reaches_layer_checkboxes_and_space_toggles_quarters(page):
    # Tab to the closed "Kartenebenen und Legende" disclosure, open it with Enter, go on.
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.matches("
                         "'#layers-section > summary')"):
            page.keyboard.press("Enter")
            break
    else:
        pytest.fail("Tab never reached the 'Kartenebenen und Legende' section")
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == "layer-quarters":
            break
    else:
        pytest.fail("Tab never reached the 'Pilotquartiere' checkbox")

    checkbox = page.locator("#layer-quarters")
    expect(checkbox).to_be_focused()
    outline = checkbox.evaluate("(el) => getComputedStyle(el).outlineStyle")
    assert outline not in ("", "none"), "focused checkbox has no visible outline"

    expect(page.locator("#map path.quarter").first).to_be_visible()
    page.keyboard.press("Space")
    expect(checkbox).not_to_be_checked()
    expect(page.locator("#map path.quarter")).to_have_count(0)

    page.keyboard.press("Space")
    expect(checkbox).to_be_checked()
    expect(page.locator("#map path.quarter").first).to_be_visible()
