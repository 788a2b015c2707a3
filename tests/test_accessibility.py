"""Accessibility and language of every page.

- axe-core (web/node_modules/axe-core) reports no WCAG 2.1 A/AA violation on any page (map,
  measure, ideas, idea, moderation, monitoring, analysis, planning), in German and in English,
  with the disclosure sections open; a line per page and language shows the result;
- every Tab stop on every page shows a visible focus indicator, and it is not the error red;
- the language chosen on one page is kept on the next ones (navigation, server-rendered chrome,
  <html lang>).
The catalogue checks are in tests/test_i18n_keys.py.

Fixtures from tests/conftest.py: ``live_server``, ``browser``, ``engine``, ``artifacts``.
"""

from __future__ import annotations

import colorsys
import json
import re
import urllib.parse
import uuid

import pytest
from sqlalchemy import text

from conftest import axe_check
from quarters import auth, ideas

TIMEOUT_MS = 30_000
PASSWORD = "richtig-geheim-123"
LANGS = ["de", "en"]


FOCUS_STYLE = """
() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const s = getComputedStyle(el);
  const outline = s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0;
  const ring = s.boxShadow && s.boxShadow !== "none";
  // An outline on the map is focused by a thick red stroke instead of a box (app.css).
  const stroke = el instanceof SVGElement && parseFloat(s.strokeWidth) >= 5;
  const name = el.id ? "#" + el.id : el.tagName.toLowerCase() + "." + [...el.classList].join(".");
  const colour = stroke ? s.stroke : outline ? s.outlineColor : s.boxShadow;
  return { name, visible: outline || ring || stroke, colour };
}
"""


# ------------------------------------------------------------------ data and pages

@pytest.fixture(scope="module")
def moderated_idea(engine):
    """An idea rejected with a public reason, stored directly (no rate limit involved)."""
    with engine.begin() as conn:
        idea_id = ideas.submit(conn, {
            "title": f"Mehr Grün auf dem Marktplatz {uuid.uuid4().hex[:6]}",
            "text": "Bäume und Sitzgelegenheiten mit Schatten auf dem Marktplatz.",
            "action_field": "Bildung",
            "geometry": {"type": "Point", "coordinates": [11.9695, 51.4826]},
        }, f"a11y-{uuid.uuid4().hex}", lang="de", limit=1000, window_s=3600)
        conn.execute(text("UPDATE ideas SET state = 'abgelehnt', moderated_at = now(), "
                          "public_reason = 'Der Marktplatz ist denkmalgeschützt.' WHERE id = :id"),
                     {"id": idea_id})
    return idea_id


@pytest.fixture
def open_page(browser, live_server):
    contexts = []

    def _open(path, lang="de"):
        context = browser.new_context(viewport={"width": 1280, "height": 900},
                                      locale="de-DE" if lang == "de" else "en-GB")
        origin = urllib.parse.urlsplit(live_server)
        context.route("**/*", lambda route: route.continue_()
                      if urllib.parse.urlsplit(route.request.url).netloc == origin.netloc
                      else route.abort())
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        sep = "&" if "?" in path else "?"
        page.goto(f"{live_server}{path}{sep}lang={lang}")
        return page

    yield _open
    for context in contexts:
        context.close()


def expect_ready(page, kind):
    expect = pytest.importorskip("playwright.sync_api").expect
    body = page.locator("body")
    if kind == "map":
        expect(body).to_have_attribute("data-results", "ready")
        expect(body).to_have_attribute("data-map-state", re.compile("ready|error"))
        # Open the disclosures so their content is checked too.
        page.locator("#near-section > summary").click()
        page.locator("#layers-section > summary").click()
        expect(page.locator("#near-section")).to_have_attribute("data-state", "ready")
    elif kind == "moderation":
        expect(body).to_have_attribute("data-mod-state", re.compile("login|queue"))
    elif kind == "analysis":
        expect(body).to_have_attribute("data-analysis-state", "ready")
    elif kind == "planner":
        expect(body).to_have_attribute("data-planner-state", "signed-out")
    else:
        expect(body).to_have_attribute("data-page-state", "ready")
    expect(body).to_have_attribute("data-i18n", "ready")


PAGES = {
    "map": "/?near=d5&r=1000",
    "measure-located": "/massnahmen/6",
    "measure-citywide": "/massnahmen/1",
    "ideas": "/ideas.html",
    "idea": "/ideen/{idea}",
    "moderation": "/moderation.html",
    "monitoring": "/monitoring.html",
    "analysis": "/analysis.html",
    "planner": "/planner.html",
}
KINDS = {"map": "map", "moderation": "moderation", "analysis": "analysis", "planner": "planner"}


def kind_of(name):
    return KINDS.get(name, "page")


def run_axe(page, label, capsys):
    """The violations; one line per page and language in the test output."""
    result = axe_check(page)
    found = result["violations"]
    with capsys.disabled():
        print(f"\n  axe WCAG 2.1 AA {label:<24} {len(found)} violations, "
              f"{result['passes']} rules passed, {result['incomplete']} to review"
              + "".join(f"\n    {v['impact']}: {v['id']} – {v['help']}" for v in found), end="")
    return found


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", list(PAGES))
def test_axe_finds_no_violations(open_page, moderated_idea, name, lang, artifacts, capsys):
    page = open_page(PAGES[name].format(idea=moderated_idea), lang)
    expect_ready(page, kind_of(name))
    assert page.evaluate("document.documentElement.lang") == lang
    violations = run_axe(page, f"{name} ({lang})", capsys)
    page.screenshot(path=str(artifacts / f"a11y-{name}-{lang}.png"), full_page=True)
    assert violations == [], json.dumps(violations, indent=1, ensure_ascii=False)


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGS)
def test_axe_moderation_queue_signed_in(open_page, engine, moderated_idea, lang, artifacts,
                                        capsys):
    username = f"a11y-mod-{uuid.uuid4().hex[:6]}"
    with engine.begin() as conn:
        auth.add_user(conn, username, PASSWORD, "moderator")
    page = open_page("/moderation.html", lang)
    expect_ready(page, "moderation")
    page.locator("#login-user").fill(username)
    page.locator("#login-password").fill(PASSWORD)
    page.locator("#login-form button[type=submit]").click()
    expect = pytest.importorskip("playwright.sync_api").expect
    # signed in and the first queue shown, then switch to all ideas (no overlapping loads)
    expect(page.locator("body")).to_have_attribute("data-mod-state", "queue")
    page.select_option("#queue-state", "")
    expect(page.locator("body")).to_have_attribute("data-mod-state", "queue")
    expect(page.locator("#mod-list li").first).to_be_visible()
    violations = run_axe(page, f"moderation queue ({lang})", capsys)
    page.screenshot(path=str(artifacts / f"a11y-moderation-queue-{lang}.png"), full_page=True)
    assert violations == [], json.dumps(violations, indent=1, ensure_ascii=False)


@pytest.mark.browser
@pytest.mark.parametrize("name", list(PAGES))
def test_every_tab_stop_has_a_visible_focus(open_page, moderated_idea, name):
    page = open_page(PAGES[name].format(idea=moderated_idea))
    expect_ready(page, kind_of(name))
    error = page.evaluate("getComputedStyle(document.documentElement).getPropertyValue("
                          "'--error-ink')")
    error = page.evaluate("(c) => { const d = document.createElement('i'); d.style.color = c;"
                          " document.body.append(d); const v = getComputedStyle(d).color;"
                          " d.remove(); return v; }", error.strip())
    page.locator("body").click(position={"x": 1, "y": 1})
    seen = []
    for _ in range(60):
        page.keyboard.press("Tab")
        focus = page.evaluate(FOCUS_STYLE)
        if focus is None:
            continue
        seen.append(focus["name"])
        assert focus["visible"], f"{name}: {focus['name']} has no visible focus"
        assert not reddish(focus["colour"], error), f"{name}: {focus['name']} {focus['colour']}"
    assert len(seen) > 5, seen


def rgb(css):
    """The first rgb()/rgba() colour of a computed style value, as 0..1 floats."""
    match = re.search(r"rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)", css or "")
    return tuple(float(v) / 255 for v in match.groups()) if match else None


def reddish(css, error_css):
    """A focus colour that reads as the error colour: a saturated hue within 25° of it."""
    colour, error = rgb(css), rgb(error_css)
    if colour is None or error is None:
        return False
    h, _, s = colorsys.rgb_to_hls(*colour)
    eh = colorsys.rgb_to_hls(*error)[0]
    distance = min(abs(h - eh), 1 - abs(h - eh)) * 360
    return s > 0.3 and distance < 25


# ------------------------------------------------------------------ language across pages

@pytest.mark.browser
def test_the_language_choice_is_kept_across_pages(browser, live_server):
    """English chosen on / stays English on Analysis, Planning and Ideas (followed links)."""
    expect = pytest.importorskip("playwright.sync_api").expect
    context = browser.new_context(locale="de-DE")
    origin = urllib.parse.urlsplit(live_server)
    context.route("**/*", lambda route: route.continue_()
                  if urllib.parse.urlsplit(route.request.url).netloc == origin.netloc
                  else route.abort())
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{live_server}/")
        assert page.evaluate("document.documentElement.lang") == "de"
        page.locator(".lang-switch a[data-lang=en]").click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator(".main-nav a[data-nav=analysis]")).to_have_text("Analysis")
        for nav, heading in (("analysis", "Transferability"), ("planning", "Planning of measures"),
                             ("ideas", "Ideas")):
            page.locator(f".main-nav a[data-nav={nav}]").click()
            expect(page.locator("html")).to_have_attribute("lang", "en")
            assert "?lang=" not in page.url  # kept by the choice, not by the address
            expect(page.locator(".main-nav a[aria-current=page]")).to_have_attribute(
                "data-nav", nav)
            expect(page.locator("h1").first).to_contain_text(heading)
            expect(page.locator(".lang-switch a[aria-current=true]")).to_have_attribute(
                "data-lang", "en")
            expect(page.locator(".skip-link").first).to_have_text(re.compile(r"^Skip to"))
        # and back to German the same way
        page.locator(".lang-switch a[data-lang=de]").click()
        expect(page.locator("html")).to_have_attribute("lang", "de")
        page.locator(".main-nav a[data-nav=analysis]").click()
        expect(page.locator("html")).to_have_attribute("lang", "de")
        expect(page.locator(".main-nav a[data-nav=analysis]")).to_have_text("Analyse")
    finally:
        context.close()
