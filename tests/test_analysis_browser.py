"""Browser tests of the analyst view (web/analysis.html) against the real quarters app.

An analyst ranks Halle's Stadtviertel by similarity to the pilot quarter Bildungsquartier
Neustadt on two weighted indicators (ranked table, contributions chart, choropleth with legend,
highlighted reference, stability figure, axe-core finds no WCAG A/AA violation), then all German
municipalities by similarity to Halle (Saale) (canvas choropleth); the Halle ↔ Gera panel
compares the two cities; the report downloads as an HTML file holding the ranked table.

Fixtures from tests/conftest.py: ``live_server``, ``browser``, ``artifacts``. Every request
that does not go to the live server (127.0.0.1) is aborted; the server's own
Content-Security-Policy applies (no 'unsafe-inline'), and a violation fails the test.
"""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request

import pytest

from conftest import axe_check

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

TIMEOUT_MS = 60_000
NEUSTADT = "bildungsquartier-neustadt"
HALLE_AGS = "15002000"
FOCUS_STYLE = """
() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const s = getComputedStyle(el);
  const outline = s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0;
  const ring = s.boxShadow && s.boxShadow !== "none";
  const name = el.id ? "#" + el.id : el.tagName.toLowerCase() + "." + [...el.classList].join(".");
  return { name, visible: outline || ring };
}
"""
# Pixels the choropleth canvases have painted (the 11,000 municipalities: one canvas per tile).
PAINTED_PIXELS = """
() => {
  let n = 0;
  for (const canvas of document.querySelectorAll("#map .leaflet-choropleth-pane canvas")) {
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n += 1;
  }
  return n;
}
"""


@pytest.fixture
def page(browser, live_server):
    """analysis.html in a fresh context: only the live server is reachable, problems recorded."""
    origin = urllib.parse.urlsplit(live_server)
    problems: list[str] = []
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="de-DE",
                                  accept_downloads=True)

    def only_live_server(route):
        url = urllib.parse.urlsplit(route.request.url)
        if (url.scheme, url.hostname, url.port) == (origin.scheme, "127.0.0.1", origin.port):
            route.continue_()
        else:
            route.abort()

    def on_console(message):
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            problems.append(f"CSP: {message.text}")

    context.route("**/*", only_live_server)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
    page.on("console", on_console)
    page.goto(f"{live_server}/analysis.html")
    expect(page.locator("body")).to_have_attribute("data-analysis-state", "ready")
    expect(page.locator("#map")).to_have_attribute("data-map-state", "ready")
    yield page
    context.close()
    assert problems == []


# ------------------------------------------------------------------ helpers

def uncheck_all_indicators(page):
    checked = page.locator("#analysis-form input[name=indicator]:checked")
    while checked.count():
        checked.first.uncheck()


# What the page says, per language (the page's own words; data names come from the API).
WORDS = {
    "de": {"kind": "Art der Referenz", "quarter": "Pilotquartier", "candidates": "Kandidaten",
           "weight": "Gewicht {}", "run": "Berechnen", "population": "Einwohner",
           "density": "Einwohnerdichte", "types": ("gleicher Typ", "anderer Typ"),
           "candidate": "Kandidat", "reference": "Referenz: {}", "shown": "Dargestellt",
           "classification": "Klassifizierung", "equal": "Gleiche Intervalle",
           "quantiles": "Quantile", "compare": "Vergleichen", "similar_to": "Ähnlich wie {}",
           "report": "Bericht herunterladen", "downloaded": "heruntergeladen"},
    "en": {"kind": "Kind of reference", "quarter": "Pilot quarter", "candidates": "Candidates",
           "weight": "Weight {}", "run": "Calculate", "population": "Population",
           "density": "Population density", "types": ("same type", "other type"),
           "candidate": "Candidate", "reference": "Reference: {}", "shown": "Shown",
           "classification": "Classification", "equal": "Equal intervals",
           "quantiles": "Quantiles", "compare": "Compare", "similar_to": "Similar to {}",
           "report": "Download report", "downloaded": "downloaded"},
}
# German words of the page's own texts that must not show on the English page (unit and
# source names are data and stay as they are; they are left out of the check).
GERMAN_UI_WORDS = ["Rangfolge", "Ähnlichkeit", "Einheiten", "Referenz", "Indikatoren",
                   "Gewicht", "Berechn", "Verfahren", "Stabilität", "Kandidat", "Karte",
                   "ausgeschlossen", "Bitte", "Beiträge", "Vergleich", "Schlüssel", " wird ",
                   "nicht ", " der ", " die ", " mit "]  # (" und " is in action field names)
PAGE_TEXT = """
() => {
  const skip = "#source-list, .leaflet-control-attribution, .unit-name__button, .unit-name__text,"
    + " #indicator-sources-body td, .derivation, .leaflet-popup, .ref-label, .rank-label, .chart-label,"
    + " #reference-quarter, #reference-district, #reference-measure, #contrib-candidate,"
    + " .crosscity-table th, .pair-list__why, .reasons, .type__label, caption, desc";
  const out = [];
  const walker = document.createTreeWalker(document.querySelector("main"), NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest(skip) || el.closest("[hidden]") || el.closest("noscript")) continue;
    // the indicators' descriptions come in the page's language: read like the rest
    if (n.textContent.trim()) out.push(n.textContent.trim());
  }
  return out.join(" | ");
}
"""


def choose_neustadt_two_indicators(page, lang="de"):
    """Reference Bildungsquartier Neustadt, level Stadtviertel, Einwohner ×1 and Einwohnerdichte ×2."""
    w = WORDS[lang]
    page.get_by_label(w["kind"]).select_option("quarter")
    page.get_by_label(w["quarter"], exact=True).select_option(label="Bildungsquartier Neustadt")
    page.get_by_label(w["candidates"], exact=True).select_option("stadtviertel")
    uncheck_all_indicators(page)
    page.locator("#ind-population").check()
    page.locator("#ind-density").check()
    page.get_by_label(w["weight"].format(w["population"]), exact=True).fill("1")
    page.get_by_label(w["weight"].format(w["density"]), exact=True).fill("2")
    expect(page.locator("#reference-current")).to_contain_text("Bildungsquartier Neustadt")


def calculate(page, lang="de"):
    """Run and wait for the page's own state (the Germany-wide ranking may take long on a busy
    machine: no short fixed expectation)."""
    page.get_by_role("button", name=WORDS[lang]["run"], exact=True).click()
    expect(page.locator("body")).to_have_attribute("data-analysis-state", "done",
                                                   timeout=TIMEOUT_MS)
    expect(page.locator("#map")).to_have_attribute("data-map-state", "ready", timeout=TIMEOUT_MS)
    expect(page.locator("#map")).to_have_attribute("data-variable", "score")


def open_in(page, live_server, lang):
    """The page again in ``lang`` (the fixture opened it in German)."""
    if lang != "de":
        page.goto(f"{live_server}/analysis.html?lang={lang}")
        expect(page.locator("html")).to_have_attribute("lang", lang)
        expect(page.locator("body")).to_have_attribute("data-analysis-state", "ready")
        expect(page.locator("#map")).to_have_attribute("data-map-state", "ready")


def assert_no_german(page):
    text = page.evaluate(PAGE_TEXT)
    found = [w for w in GERMAN_UI_WORDS if w in text]
    where = [text[max(0, text.index(w) - 120):text.index(w) + 60] for w in found]
    assert not found, f"German words on the English page: {found}: {where}"


def ranked_scores(page):
    return page.locator("#ranking-body td.score").evaluate_all(
        "cells => cells.map((c) => Number(c.dataset.score))")


def transfer(live_server, body):
    request = urllib.request.Request(f"{live_server}/api/analysis/transfer",
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


# ------------------------------------------------------------------ tests

@pytest.mark.parametrize("lang", ["de", "en"])
def test_rank_stadtviertel_like_neustadt_then_municipalities_like_halle(page, live_server,
                                                                        artifacts, lang):
    w = WORDS[lang]
    open_in(page, live_server, lang)
    choose_neustadt_two_indicators(page, lang)
    calculate(page, lang)

    # ranked table: top 10 (the quarter is an external reference), scores 0–100, descending
    rows = page.locator("#ranking-body tr")
    expect(rows).to_have_count(10)
    scores = ranked_scores(page)
    assert all(0 <= s <= 100 for s in scores), scores
    assert scores == sorted(scores, reverse=True)
    expected = transfer(live_server, {"reference": f"quarter:{NEUSTADT}", "level": "stadtviertel",
                                      "indicators": ["population", "density"],
                                      "weights": {"population": 1, "density": 2}, "top": 10,
                                      "sensitivity": False, "types": False})
    assert rows.evaluate_all("trs => trs.map((tr) => tr.dataset.code)") == \
        [r["code"] for r in expected["rows"]]
    first = rows.first
    expect(first.locator(".select-button")).to_have_text(expected["rows"][0]["name"])
    expect(first.locator(".reasons--different")).not_to_be_empty()
    assert first.locator(".type__text").text_content() in w["types"]
    expect(page.locator("#summary-facts")).to_contain_text(f"{w['density']} 67 %")
    # how the quarter's values were derived: in the page's language, no English marked in German
    derivations = page.locator("#summary-derivation-body td.derivation")
    expect(derivations).to_have_count(2)
    expect(page.locator("#summary-derivation-body [lang]")).to_have_count(0)
    text = " ".join(derivations.all_text_contents())
    if lang == "de":
        assert "flächenanteilig übertragen" in text and "neu berechnet" in text, text
        assert not [x for x in ("tobler", "recomputed", "allocate_total", "district") if x in text]
    else:
        assert "tobler area_interpolate (extensive, allocate_total=False)" in text, text
        assert "recomputed: population / area_km2" in text, text
        assert "flächenanteilig" not in text and "neu berechnet" not in text

    # contributions of the first candidate: an accessible SVG with one bar per indicator
    expect(first).to_have_class("is-selected")
    expect(page.get_by_label(w["candidate"], exact=True)).to_have_value(expected["rows"][0]["code"])
    chart = page.locator("#contrib-chart svg.contrib-chart")
    expect(chart).to_be_visible()
    expect(chart).to_have_attribute("role", "img")
    expect(chart.locator("title")).to_contain_text(expected["rows"][0]["name"])
    expect(chart.locator("rect.contrib-bar")).to_have_count(2)
    contributions = expected["rows"][0]["contributions"]
    names = {"population": w["population"], "density": w["density"]}
    largest_first = sorted(contributions, key=lambda key: -contributions[key])
    expect(chart.locator("text.chart-label")).to_have_text([names[k] for k in largest_first])
    expect(page.locator("#contrib-table tbody tr")).to_have_count(2)
    # another candidate via its name in the table
    rows.nth(2).locator(".select-button").click()
    expect(rows.nth(2)).to_have_class("is-selected")
    expect(chart.locator("title")).to_contain_text(expected["rows"][2]["name"])

    # choropleth of the score: 43 SVG polygons, a legend of classes, the reference outlined
    the_map = page.locator("#map")
    expect(the_map).to_have_attribute("data-renderer", "svg")
    expect(the_map.locator("path.unit")).to_have_count(43)
    legend = page.locator("#map-legend li.legend-class")
    assert legend.count() >= 2
    expect(legend.first.locator(".legend-class__label")).to_contain_text("–")
    expect(the_map.locator("path.ref-outline")).to_have_count(1)
    expect(the_map.locator(".ref-label")).to_contain_text("Bildungsquartier Neustadt")
    expect(the_map.locator(".rank-label")).to_have_count(10)
    expect(page.locator("#map-legend")).to_contain_text(w["reference"].format("Bildungsquartier Neustadt"))

    # the map can show an indicator instead, with the classes the API computed
    page.get_by_label(w["shown"]).select_option("density")
    page.get_by_label(w["classification"]).select_option("equal_interval")
    expect(the_map).to_have_attribute("data-variable", "density")
    expect(the_map).to_have_attribute("data-map-state", "ready")
    expect(page.locator("#map-legend .legend-title")).to_contain_text(w["equal"])
    page.get_by_label(w["shown"]).select_option("score")
    page.get_by_label(w["classification"]).select_option("quantiles")
    expect(page.locator("#map-legend .legend-title")).to_contain_text(w["quantiles"])
    expect(the_map).to_have_attribute("data-variable", "score")
    expect(the_map).to_have_attribute("data-map-state", "ready")

    # stability under other weights, notes
    expect(page.locator("#sensitivity-figure svg.sensitivity-chart")).to_be_visible()
    expect(page.locator("#sensitivity-figure .sens-row")).to_have_count(10)
    expect(page.locator("#sensitivity-figure")).not_to_contain_text("null")
    expect(page.locator("#stability-text")).to_contain_text("Jaccard")
    expect(page.locator("#notes-section")).to_be_visible()

    # no WCAG 2.1 A/AA violation with the results on screen
    violations = axe_check(page)["violations"]
    assert violations == [], json.dumps(violations, indent=1, ensure_ascii=False)
    if lang == "en":
        assert_no_german(page)

    # all municipalities like Halle (Saale): drawn from vector tiles on canvas, the classes
    # joined in the browser by AGS; the 11,000 polygons are never fetched as GeoJSON
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    page.locator("#shortcut-halle").click()
    expect(page.locator("#reference-current")).to_contain_text("Halle (Saale)")
    page.get_by_label(w["candidates"], exact=True).select_option("gemeinde")
    calculate(page, lang)
    expect(the_map).to_have_attribute("data-level", "gemeinde")
    expect(the_map).to_have_attribute("data-renderer", "canvas")
    expect(rows).to_have_count(11)  # top 10 and the reference itself
    expect(rows.first).to_have_attribute("data-code", HALLE_AGS)
    expect(rows.first).to_have_class("is-reference")
    scores = ranked_scores(page)
    assert scores[0] == 100 and all(0 <= s <= 100 for s in scores)
    assert scores == sorted(scores, reverse=True)
    expect(rows.nth(1)).to_have_class("is-selected")  # the first candidate, not the reference
    expect(page.get_by_label(w["candidate"], exact=True)).to_have_value(
        rows.nth(1).get_attribute("data-code"))
    expect(the_map).to_have_attribute("data-source", "tiles")
    expect(the_map).to_have_attribute("data-tiles", "loaded")
    page.wait_for_function(f"({PAINTED_PIXELS.strip()})() > 10000")  # tiles drawn
    assert any("/api/collections/municipalities/tiles/WebMercatorQuad/" in u for u in asked)
    assert not any("format=geojson" in u and "level=gemeinde" in u for u in asked), asked
    # a click on a tile asks the API which municipality is there and shows its popup
    box = the_map.bounding_box()
    the_map.click(position={"x": box["width"] / 2, "y": box["height"] * 0.6})
    expect(page.locator(".leaflet-popup .unit-popup")).to_be_visible()
    page.locator(".leaflet-popup-close-button").click()
    expect(page.locator("#map-legend li.legend-class")).not_to_have_count(0)
    expect(the_map.locator("path.ref-outline")).to_have_count(1)
    expect(the_map.locator(".ref-label")).to_contain_text("Halle (Saale)")
    expect(page.locator("#excluded-text")).not_to_be_empty()

    # Halle ↔ Gera
    page.get_by_role("button", name=w["compare"]).click()
    result = page.locator("#crosscity-result")
    expect(result).to_have_attribute("data-state", "done", timeout=TIMEOUT_MS)
    expect(result.locator("table")).to_have_count(2)
    expect(result.locator("caption")).to_have_text([w["similar_to"].format("Halle (Saale)"),
                                                    w["similar_to"].format("Gera")])
    expect(result.locator(".pair-list li")).to_have_count(2)
    if lang == "en":
        assert_no_german(page)

    page.locator(".map-card").screenshot(path=str(artifacts / f"analysis-map-{lang}.png"))
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts / f"analysis-{lang}.png"), full_page=True)


@pytest.mark.parametrize("lang", ["de", "en"])
def test_report_download_holds_the_ranked_table(page, live_server, artifacts, lang):
    open_in(page, live_server, lang)
    choose_neustadt_two_indicators(page, lang)
    with page.expect_download(timeout=TIMEOUT_MS) as info:
        page.get_by_role("button", name=WORDS[lang]["report"]).click()
    download = info.value
    assert download.suggested_filename.endswith(".html")
    assert NEUSTADT in download.suggested_filename
    html = open(download.path(), encoding="utf-8").read()
    target = artifacts / download.suggested_filename
    download.save_as(str(target))
    expect(page.locator("#status")).to_contain_text(WORDS[lang]["downloaded"])
    assert 'id="ranking"' in html
    expected = transfer(live_server, {"reference": f"quarter:{NEUSTADT}", "level": "stadtviertel",
                                      "indicators": ["population", "density"],
                                      "weights": {"population": 1, "density": 2}, "top": 10,
                                      "sensitivity": False, "types": False})
    ranking = html[html.index('id="ranking"'):]
    ranking = ranking[:ranking.index("</table>")]
    positions = [ranking.index(row["name"]) for row in expected["rows"]]
    assert positions == sorted(positions)


INCOMPLETE = {"de": ("Gemeinde aus der Vorschlagsliste", "mindestens einen Indikator"),
              "en": ("municipality from the suggestions", "at least one indicator")}


@pytest.mark.parametrize("lang", ["de", "en"])
def test_incomplete_form_is_explained_not_sent(page, live_server, lang):
    open_in(page, live_server, lang)
    page.get_by_label(WORDS[lang]["kind"]).select_option("gemeinde")
    uncheck_all_indicators(page)
    page.get_by_role("button", name=WORDS[lang]["run"], exact=True).click()
    errors = page.locator("#form-error")
    expect(errors).to_be_visible()
    for text in INCOMPLETE[lang]:
        expect(errors).to_contain_text(text)
    expect(page.locator("#reference-search")).to_be_focused()
    expect(page.locator("body")).to_have_attribute("data-analysis-state", "ready")
    # an AGS typed into the search is a reference
    page.locator("#reference-search").fill("16052000")
    expect(page.locator("#reference-current")).to_contain_text("Gera")


DENSITY_DESC = {"de": "Einwohner je km² amtlicher Fläche", "en": "Inhabitants per km² of official area"}


@pytest.mark.parametrize("lang", ["de", "en"])
def test_indicator_descriptions_in_the_page_language_without_a_german_mark(page, live_server,
                                                                           lang):
    open_in(page, live_server, lang)
    desc = page.locator("#ind-density-desc")
    expect(desc).to_contain_text(DENSITY_DESC[lang])
    expect(desc).not_to_have_attribute("lang", "de")
    assert page.locator('main [id^="ind-"][id$="-desc"][lang]').count() == 0


def test_every_tab_stop_shows_its_focus(page):
    page.locator("body").click(position={"x": 1, "y": 1})
    seen = []
    for _ in range(40):
        page.keyboard.press("Tab")
        focus = page.evaluate(FOCUS_STYLE)
        if focus is None:
            continue
        seen.append(focus["name"])
        assert focus["visible"], f"{focus['name']} has no visible focus"
    assert {"#reference-kind", "#level", "#run-button"} <= set(seen), seen


# ------------------------------------------------------------------ issue 12

BANDS = {"de": {"sehr ähnlich", "ähnlich", "eher ähnlich", "wenig ähnlich", "kaum ähnlich"},
         "en": {"very similar", "similar", "rather similar", "little similar", "hardly similar"}}
EAST_BIG = "land IN ('12','13','14','15','16') AND population >= 90000"
TEXTS = {"de": {"parts": "Teil der Referenz", "filter": "Filter", "approx": "genähert",
                "button": "Berechnen"},
         "en": {"parts": "Part of the reference", "filter": "Filter", "approx": "approx.",
                "button": "Calculate"}}


def _get(live_server, path):
    with urllib.request.urlopen(f"{live_server}{path}", timeout=60) as response:
        return json.load(response)


@pytest.mark.parametrize("lang", ["de", "en"])
def test_neustadt_vs_stadtviertel_and_halle_vs_filtered_municipalities(page, live_server,
                                                                       artifacts, lang):
    page.goto(f"{live_server}/analysis.html?lang={lang}")
    expect(page.locator("body")).to_have_attribute("data-analysis-state", "ready")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    texts = TEXTS[lang]
    levels = {lv["name"]: lv for lv in _get(live_server, "/api/analysis/levels")["levels"]}

    # Neustadt → Stadtviertel, with the defaults the API serves (the page has no list of its own)
    page.locator("#shortcut-neustadt").click()
    expect(page.locator("#level")).to_have_value("stadtviertel")
    checked = page.locator("#analysis-form input[name=indicator]:checked").evaluate_all(
        "els => els.map((e) => e.value)")
    assert sorted(checked) == sorted(levels["stadtviertel"]["default_indicators"])
    expect(page.locator("#level-hint")).to_contain_text("43")
    expect(page.locator("#indicator-sources-table tbody tr")).not_to_have_count(0)
    expect(page.locator("#indicator-sources-table")).to_contain_text("halle-stadtviertel-facts")
    page.locator("#run-button").click()
    expect(page.locator("body")).to_have_attribute("data-analysis-state", "done",
                                                   timeout=TIMEOUT_MS)
    rows = page.locator("#ranking-body tr")
    codes = rows.evaluate_all("trs => trs.map((tr) => tr.dataset.code)")
    assert codes and not {"71", "72", "73", "74"} & set(codes)  # its own Stadtviertel
    assert rows.evaluate_all("trs => trs.every((tr) => tr.dataset.approximate === 'true')")
    expect(rows.first.locator(".badge--approx")).to_have_text(texts["approx"])
    bands = page.locator("#ranking-body td.band").all_text_contents()
    assert bands and set(bands) <= BANDS[lang], bands
    pct = page.locator("#ranking-body td.percentile").all_text_contents()
    assert all(p != "–" for p in pct)
    expect(page.locator("#ranking-context")).to_contain_text(texts["parts"])
    expect(page.locator("#band-hint")).to_contain_text("5 %")

    # Halle (Saale) → municipalities, restricted to large East-German ones
    page.locator("#shortcut-halle").click()
    expect(page.locator("#level")).to_have_value("gemeinde")
    page.locator("#candidate-filter").fill(EAST_BIG)
    page.get_by_role("button", name=texts["button"]).click()
    expect(page.locator("body")).to_have_attribute("data-analysis-state", "done",
                                                   timeout=TIMEOUT_MS)
    expected = transfer(live_server, {"reference": f"gemeinde:{HALLE_AGS}", "level": "gemeinde",
                                      "filter": EAST_BIG, "top": 10, "sensitivity": False,
                                      "types": False})
    codes = rows.evaluate_all("trs => trs.map((tr) => tr.dataset.code)")
    assert codes == [r["code"] for r in expected["rows"]]
    assert all(c[:2] in {"12", "13", "14", "15", "16"} for c in codes)
    expect(page.locator("#summary-facts")).to_contain_text(EAST_BIG)
    expect(page.locator("#ranking-context")).to_contain_text(EAST_BIG)
    bands = page.locator("#ranking-body td.band").all_text_contents()
    assert set(bands) - {"–"} <= BANDS[lang]
    page.screenshot(path=str(artifacts / f"analysis-issue12-{lang}.png"), full_page=True)


PRECOND = {"de": {"met": "erfüllt", "failed": "nicht erfüllt", "head": "Vorbedingungen",
                  "hint": "Vorbedingungen der Maßnahme"},
           "en": {"met": "met", "failed": "not met", "head": "Preconditions",
                  "hint": "Preconditions of measure"}}


@pytest.mark.parametrize("lang", ["de", "en"])
def test_measure_reference_marks_who_meets_the_preconditions(page, live_server, engine,
                                                             artifacts, lang):
    """``reference=measure:<id>``: a column says per candidate whether it meets the measure's
    preconditions (✔/✗ with the failed conditions and the values), the same verdicts as the
    API, those that meet them first; a hint explains the order."""
    import uuid

    from factories import PASSWORD, api_json, make_user, measure_feature

    words = PRECOND[lang]
    with engine.begin() as conn:
        user = make_user(conn, "planner", f"precond-{uuid.uuid4().hex[:6]}")
        densities = sorted(r[0] for r in conn.exec_driver_sql(
            "SELECT quarters_figure('density', 'stadtviertel', code) FROM districts "
            "WHERE level = 'stadtviertel'") if r[0] is not None)
    threshold = densities[len(densities) // 2]
    _, _, login = api_json(live_server, "POST", "/api/auth/login",
                           {"username": user.username, "password": PASSWORD, "token": True})
    token = login["token"]
    status, headers, created = api_json(live_server, "POST", "/api/measures", measure_feature(
        title=f"Vorbedingungen {uuid.uuid4().hex[:6]}",
        transfer={"preconditions": [{"indicator": "density", "op": ">=", "value": threshold}]}),
        token=token)
    assert status == 201, created
    mid = created["properties"]["id"]
    status, headers, body = api_json(live_server, "POST", f"/api/measures/{mid}/publish",
                                     token=token, etag=headers["ETag"])
    assert status == 200, body
    try:
        expected = transfer(live_server, {"reference": f"measure:{mid}", "level": "stadtviertel",
                                          "indicators": ["population", "density"], "top": 43,
                                          "sensitivity": False, "types": False})
        page.goto(f"{live_server}/analysis.html?lang={lang}&reference=measure:{mid}"
                  "&level=stadtviertel&indicators=population:1,density:1&top=43")
        expect(page.locator("body")).to_have_attribute("data-analysis-state", "done",
                                                       timeout=TIMEOUT_MS)
        head = page.locator("#ranking-precond-head")
        expect(head).to_be_visible()
        expect(head).to_have_text(words["head"])
        expect(page.locator("#precond-hint")).to_contain_text(words["hint"])
        rows = page.locator("#ranking-body tr")
        shown = rows.evaluate_all("trs => trs.map((tr) => [tr.dataset.code, tr.dataset.meets])")
        verdicts = {r["code"]: r["meets_preconditions"] for r in expected["rows"]
                    if "meets_preconditions" in r}
        assert [c for c, _ in shown] == [r["code"] for r in expected["rows"]]
        assert {c: m == "true" for c, m in shown if m is not None} == verdicts
        flags = [m == "true" for _, m in shown if m is not None]
        assert 0 < sum(flags) < len(flags) and flags == sorted(flags, reverse=True)
        failing = page.locator('#ranking-body td.precond[data-meets="false"]').first
        expect(failing).to_contain_text(words["failed"])
        expect(failing.locator(".precond__failed li").first).to_contain_text("≥")
        expect(page.locator('#ranking-body td.precond[data-meets="true"]').first).to_have_text(
            f"✔{words['met']}")
        # every row has one cell per visible column, and no stray text
        columns = page.locator("#ranking-table thead th:visible").count()
        cells = rows.evaluate_all("trs => trs.map((tr) => tr.children.length)")
        assert set(cells) == {columns}, (cells, columns)
        expect(page.locator("#ranking-body")).not_to_contain_text("null")
        page.locator("#ranking-section").screenshot(
            path=str(artifacts / f"analysis-preconditions-{lang}.png"))
    finally:
        _, headers, _ = api_json(live_server, "GET", f"/api/measures/{mid}", token=token)
        api_json(live_server, "DELETE", f"/api/measures/{mid}", token=token,
                 etag=headers["ETag"])


# Pixels of the choropleth canvases per colour of `palette` (every 4th pixel; the fills are
# drawn with an opacity, so a colour read back may differ by a unit or two per channel).
CANVAS_COLOURS = """
(palette) => {
  const rgb = palette.map((c) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)));
  const counts = palette.map(() => 0);
  for (const canvas of document.querySelectorAll("#map .leaflet-choropleth-pane canvas")) {
    if (!canvas.width || !canvas.height) continue;
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 0; i < data.length; i += 16) {
      if (data[i + 3] < 128) continue;
      const k = rgb.findIndex(([r, g, b]) => Math.abs(data[i] - r) <= 3
        && Math.abs(data[i + 1] - g) <= 3 && Math.abs(data[i + 2] - b) <= 3);
      if (k >= 0) counts[k] += 1;
    }
  }
  return counts;
}
"""
TILE_REQUEST = re.compile(r"/tiles/WebMercatorQuad/\d+/\d+/\d+$")


def test_germany_wide_ranking_recolours_the_drawn_tiles_in_place(page):
    """The municipalities' tiles are drawn once for the level; the ranking's scores (and any
    other classification) recolour those canvases without asking for the tiles again."""
    the_map = page.locator("#map")
    page.locator("#shortcut-halle").click()
    expect(page.locator("#reference-current")).to_contain_text("Halle (Saale)")
    page.locator("#level").select_option("gemeinde")
    expect(the_map).to_have_attribute("data-level", "gemeinde")
    expect(the_map).to_have_attribute("data-map-state", "ready")
    expect(the_map).to_have_attribute("data-tiles", "loaded")
    palette = page.evaluate("() => import('/js/analysis-map.js').then((m) => m.palette(5))")
    page.wait_for_function(f"(p) => ({CANVAS_COLOURS.strip()})(p).filter(Boolean).length >= 3",
                           arg=palette)
    before = page.evaluate(CANVAS_COLOURS, palette)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    calculate(page)
    expect(the_map).to_have_attribute("data-level", "gemeinde")
    expect(the_map).to_have_attribute("data-tiles", "loaded")
    after = page.evaluate(CANVAS_COLOURS, palette)
    # the canvases now show the five score classes, not the indicator's picture
    assert sum(after) > 1000 and all(after), after
    assert after != before, (before, after)
    assert not [u for u in asked if TILE_REQUEST.search(u)], "tiles asked for again"
    # another classification of the scores: recoloured in place as well
    page.get_by_label(WORDS["de"]["classification"]).select_option("equal_interval")
    expect(page.locator("#map-legend .legend-title")).to_contain_text(WORDS["de"]["equal"])
    expect(the_map).to_have_attribute("data-tiles", "loaded")
    page.wait_for_function(f"""([palette, before]) => {{
        const now = ({CANVAS_COLOURS.strip()})(palette);
        return now.some((n, i) => n !== before[i]);
    }}""", arg=[palette, after])
    assert not [u for u in asked if TILE_REQUEST.search(u)], "tiles asked for again"
