"""The pages take status colours, status lists and field lengths from /api/config (defined once
in quarters.vocabulary): the public map and the planner draw a status in the same colour."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from conftest import same_origin_only
from quarters import vocabulary

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="de-DE")
    context.route("**/*", same_origin_only(live_server))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    yield page
    context.close()
    assert errors == []


def test_public_map_legend_and_colours_come_from_the_config(page, live_server):
    page.goto(live_server + "/")
    legend = page.locator("#legend-measures .legend-item--status")
    expect(legend).to_have_count(len(vocabulary.MEASURE_STATUSES))
    for status, colour in vocabulary.STATUS_COLOURS.items():
        page.wait_for_function(
            "([s, c]) => getComputedStyle(document.documentElement)"
            ".getPropertyValue(`--st-${s}`).trim() === c", arg=[status, colour])


def test_the_planner_uses_the_same_colours_and_the_served_lengths(page, live_server):
    page.goto(live_server + "/planner.html")
    expect(page.locator("body")).to_have_attribute("data-planner-state", "signed-out")
    assert page.locator("#f-source").evaluate("e => e.maxLength") \
        == vocabulary.MEASURE_TEXT["source"].max
    colours = page.evaluate("""async (statuses) => {
        const map = await import("/js/map.js");  // the one map module every map draws with
        return Object.fromEntries(statuses.map((s) => [s, map.statusColour(s)]));
    }""", list(vocabulary.STATUS_COLOURS))
    assert colours == vocabulary.STATUS_COLOURS


def test_the_ideas_form_takes_its_lengths_from_the_config(page, live_server):
    page.goto(live_server + "/ideas.html")
    expect(page.locator("body")).to_have_attribute("data-page-state", "ready")
    for name in ("title", "text", "contact"):
        assert page.locator(f"#idea-{name}").evaluate("e => e.maxLength") \
            == vocabulary.IDEA_TEXT[name].max
