"""Accessibility and language of the public pages.

- axe-core (web/node_modules/axe-core, served at /vendor/axe-core/) reports no WCAG 2.1 A/AA
  violation on any public page, in German and in English, with the disclosure sections open;
- every Tab stop on every public page shows a visible focus indicator;
- every UI string is in both message catalogues (web/i18n/de.json, en.json): same keys, every
  key the pages and scripts use exists, and the public scripts hold no German text of their own.

Fixtures from tests/conftest.py: ``live_server``, ``browser``, ``engine``, ``artifacts``.
"""

from __future__ import annotations

import json
import re
import urllib.parse
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from conftest import inject_axe
from quarters import auth, ideas

WEB = Path(__file__).resolve().parent.parent / "web"
PUBLIC_HTML = ["index.html", "measure.html", "idea.html", "ideas.html", "moderation.html"]
# The public pages' scripts (other pages, e.g. planner*.js, have their own conventions).
PUBLIC_JS = ["api.js", "i18n.js", "main.js", "map.js"] + sorted(
    p.name for p in (WEB / "js").glob("public-*.js"))
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
TIMEOUT_MS = 30_000
PASSWORD = "richtig-geheim-123"
LANGS = ["de", "en"]

RUN_AXE = """
async (tags) => {
  const result = await axe.run(document, { runOnly: { type: "tag", values: tags } });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + " :: " + n.failureSummary),
  }));
}
"""

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
  return { name, visible: outline || ring || stroke };
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
}


def kind_of(name):
    return "map" if name == "map" else "moderation" if name == "moderation" else "page"


def run_axe(page):
    inject_axe(page)
    return page.evaluate(RUN_AXE, AXE_TAGS)


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", list(PAGES))
def test_axe_finds_no_violations(open_page, moderated_idea, name, lang, artifacts):
    page = open_page(PAGES[name].format(idea=moderated_idea), lang)
    expect_ready(page, kind_of(name))
    assert page.evaluate("document.documentElement.lang") == lang
    violations = run_axe(page)
    page.screenshot(path=str(artifacts / f"a11y-{name}-{lang}.png"), full_page=True)
    assert violations == [], json.dumps(violations, indent=1, ensure_ascii=False)


@pytest.mark.browser
@pytest.mark.parametrize("lang", LANGS)
def test_axe_moderation_queue_signed_in(open_page, engine, moderated_idea, lang, artifacts):
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
    violations = run_axe(page)
    page.screenshot(path=str(artifacts / f"a11y-moderation-queue-{lang}.png"), full_page=True)
    assert violations == [], json.dumps(violations, indent=1, ensure_ascii=False)


@pytest.mark.browser
@pytest.mark.parametrize("name", list(PAGES))
def test_every_tab_stop_has_a_visible_focus(open_page, moderated_idea, name):
    page = open_page(PAGES[name].format(idea=moderated_idea))
    expect_ready(page, kind_of(name))
    page.locator("body").click(position={"x": 1, "y": 1})
    seen = []
    for _ in range(60):
        page.keyboard.press("Tab")
        focus = page.evaluate(FOCUS_STYLE)
        if focus is None:
            continue
        seen.append(focus["name"])
        assert focus["visible"], f"{name}: {focus['name']} has no visible focus"
    assert len(seen) > 5, seen


# ------------------------------------------------------------------ catalogues

def catalogue(lang):
    return json.loads((WEB / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))


def used_keys():
    keys, prefixes = set(), set()
    for name in PUBLIC_HTML:
        html = (WEB / name).read_text(encoding="utf-8")
        keys |= set(re.findall(r'data-i18n="([^"]+)"', html))
        for attrs in re.findall(r'data-i18n-attr="([^"]+)"', html):
            keys |= {pair.split(":")[1].strip() for pair in attrs.split(";")}
    for name in PUBLIC_JS:
        js = (WEB / "js" / name).read_text(encoding="utf-8")
        keys |= set(re.findall(r'\bt\(\s*"([^"]+)"', js))
        keys |= set(re.findall(r'title: "([a-z_]+\.[a-z_]+)"', js))
        prefixes |= set(re.findall(r'label\(\s*"([^"]+)"', js))
    return keys, prefixes


def test_catalogues_have_the_same_keys_and_every_used_key():
    de, en = catalogue("de"), catalogue("en")
    assert set(de) == set(en)
    for key in de:
        assert isinstance(de[key], type(en[key])), key
        if isinstance(de[key], dict):
            assert set(de[key]) == set(en[key]) and "other" in de[key], key
        placeholders = lambda v: set(re.findall(r"\{(\w+)\}", json.dumps(v)))  # noqa: E731
        assert placeholders(de[key]) == placeholders(en[key]), key
    keys, prefixes = used_keys()
    missing = sorted(k for k in keys if k not in de)
    assert missing == []
    for prefix in prefixes:
        assert any(k.startswith(f"{prefix}.") for k in de), prefix
    for status in ("idee", "geplant", "in_umsetzung", "abgeschlossen", "eingestellt"):
        assert f"status.{status}" in de


def test_public_scripts_hold_no_text_of_their_own():
    """German text in a script would be a string outside the catalogues."""
    for name in PUBLIC_JS:
        code = (WEB / "js" / name).read_text(encoding="utf-8")
        code = re.sub(r"//.*|/\*[\s\S]*?\*/", "", code)  # comments may be German
        assert not re.search(r"[äöüÄÖÜß]", code), name
