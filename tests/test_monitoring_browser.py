"""Browser tests of the monitoring page (web/monitoring.html) against the real quarters app.

Not signed in, the page shows the public summary (no drafts); signed in as a planner it shows
every measure including drafts. In German and in English: the status chart (inline SVG, one
bar per status with measures) and its table hold the API's figures, a CSV link downloads the
same table, axe-core finds no WCAG 2.1 A/AA violation. Requests to other hosts are aborted;
the server's own Content-Security-Policy applies and a violation fails the test.

Fixtures from tests/conftest.py: ``live_server``, ``browser``, ``engine``, ``artifacts``.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta

import pytest
import shapely

from conftest import axe_check, same_origin_only
from factories import NEUSTADT_POINT, api_json
from quarters import auth, measures
from quarters.schemas import MeasureProperties

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

TIMEOUT_MS = 30_000
PASSWORD = "richtig-geheim-123"
HEADINGS = {"de": ("Monitoring der Maßnahmen", "Maßnahmen nach Status"),
            "en": ("Monitoring of the measures", "Measures by status")}
STATUS_WORDS = {"de": {"in_umsetzung": "In Umsetzung"}, "en": {"in_umsetzung": "In progress"}}


@pytest.fixture(scope="module")
def staff(engine):
    """A planner account and a committed draft with a milestone due soon (unique title)."""
    tag = uuid.uuid4().hex[:6]
    username = f"mon-planner-{tag}"
    title = f"Monitoring-Entwurf {tag}"
    with engine.begin() as conn:
        auth.add_user(conn, username, PASSWORD, "planner")
        props = MeasureProperties.model_validate({
            "title": title, "city_ags": "15002000", "action_field": "Bildung",
            "status": "in_umsetzung", "budget_planned": 4321.0, "budget_spent": 1000.0,
            "milestones": [{"date": (date.today() + timedelta(days=7)).isoformat(),
                            "title": f"Meilenstein {tag}"}]})
        measures.create(conn, props, shapely.geometry.shape(NEUSTADT_POINT),
                        measures.Actor(None, "monitoring test"))
    return {"username": username, "title": title}


@pytest.fixture
def open_page(browser, live_server):
    contexts, problems = [], []

    def _open(lang):
        context = browser.new_context(viewport={"width": 1280, "height": 900},
                                      locale="de-DE" if lang == "de" else "en-GB",
                                      accept_downloads=True)
        context.route("**/*", same_origin_only(live_server))
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
        page.on("console", lambda m: problems.append(f"CSP: {m.text}")
                if "Content Security Policy" in m.text or "Refused to" in m.text else None)
        page.goto(f"{live_server}/monitoring.html?lang={lang}")
        expect(page.locator("body")).to_have_attribute("data-page-state", "ready")
        expect(page.locator("body")).to_have_attribute("data-i18n", "ready")
        return page

    yield _open
    for context in contexts:
        context.close()
    assert problems == []


def check_status_chart_and_table(page, body, lang):
    """The status section: one bar per status with measures; the table holds the figures."""
    expect(page.locator("#mon-status h2")).to_have_text(HEADINGS[lang][1])
    chart = page.locator("#mon-status svg[role=img]")
    expect(chart).to_be_visible()
    assert chart.locator("title").text_content() == HEADINGS[lang][1]
    counts = {r["status"]: r["measures"] for r in body["tables"]["status"]}
    assert chart.locator("rect").count() == sum(1 for v in counts.values() if v)
    table = page.locator("#mon-status table")
    assert table.locator("caption").text_content() == HEADINGS[lang][1]
    assert table.locator("thead th[scope=col]").count() == 2
    rows = table.locator("tbody tr")
    assert rows.count() == 5
    cells = {rows.nth(i).locator("th[scope=row]").text_content():
             rows.nth(i).locator("td").text_content() for i in range(5)}
    word = STATUS_WORDS[lang]["in_umsetzung"]
    assert cells[word].replace(".", "").replace(",", "") == str(counts["in_umsetzung"])
    # the chart's value label for the same row
    values = chart.locator("text.mon-chart__value").all_text_contents()
    assert str(counts["in_umsetzung"]) in [v.replace(".", "").replace(",", "") for v in values]


def run_axe(page):
    return axe_check(page)["violations"]


@pytest.mark.parametrize("lang", ["de", "en"])
def test_public_summary_without_sign_in(open_page, live_server, staff, lang, artifacts):
    page = open_page(lang)
    expect(page.locator("body")).to_have_attribute("data-monitoring-view", "public")
    expect(page.locator("h1")).to_have_text(HEADINGS[lang][0])
    expect(page.locator("#logout")).to_be_hidden()
    expect(page.locator("#f-view")).to_be_hidden()  # only staff switch views
    assert page.evaluate("document.documentElement.lang") == lang
    status, _, body = api_json(live_server, "GET", "/api/monitoring/public")
    assert status == 200
    check_status_chart_and_table(page, body, lang)
    assert staff["title"] not in page.content()  # no draft on the public page
    expect(page.locator("#totals dd").first).to_have_text(
        f"{body['totals']['measures']:,}".replace(",", "." if lang == "de" else ","))
    # the CSV link of the status table downloads the public CSV
    link = page.locator("#mon-status a.mon-csv")
    assert link.get_attribute("href").startswith("/api/monitoring/public/status.csv")
    with page.expect_download() as info:
        link.click()
    raw = open(info.value.path(), "rb").read()
    assert raw.startswith(b"\xef\xbb\xbfstatus;measures\r\n")
    for row in body["tables"]["status"]:
        assert f"{row['status']};{row['measures']}\r\n".encode() in raw
    page.locator("#login-details > summary").click()
    violations = run_axe(page)
    page.screenshot(path=str(artifacts / f"monitoring-public-{lang}.png"), full_page=True)
    page.locator("#mon-fields").screenshot(path=str(artifacts / f"monitoring-public-fields-{lang}.png"))
    assert violations == [], json.dumps(violations, indent=1, ensure_ascii=False)


@pytest.mark.parametrize("lang", ["de", "en"])
def test_staff_view_after_sign_in(open_page, live_server, staff, lang, artifacts):
    page = open_page(lang)
    page.locator("#login-details > summary").click()
    page.locator("#login-user").fill(staff["username"])
    page.locator("#login-password").fill(PASSWORD)
    page.locator("#login-form button[type=submit]").click()
    expect(page.locator("body")).to_have_attribute("data-monitoring-view", "staff")
    expect(page.locator("body")).to_have_attribute("data-page-state", "ready")
    expect(page.locator("#user-line")).to_contain_text(staff["username"])
    expect(page.locator("#login-details")).to_be_hidden()
    status, _, login = api_json(live_server, "POST", "/api/auth/login",
                                {"username": staff["username"], "password": PASSWORD, "token": True})
    assert status == 200
    status, _, body = api_json(live_server, "GET", "/api/monitoring", token=login["token"])
    assert status == 200
    check_status_chart_and_table(page, body, lang)
    # the draft and its milestone are in the staff tables
    expect(page.locator("#mon-milestones table")).to_contain_text(staff["title"])
    # filter: Halle only, by the form; the address keeps it
    page.select_option("#f-city", "15002000")
    page.locator("#filter-form button[type=submit]").click()
    expect(page.locator("body")).to_have_attribute("data-page-state", "ready")
    assert "city=15002000" in page.url
    status, _, halle = api_json(live_server, "GET", "/api/monitoring?city=15002000",
                                token=login["token"])
    check_status_chart_and_table(page, halle, lang)
    rows = page.locator("#mon-budget-field tbody tr")
    assert rows.count() == len(halle["tables"]["budget_by_field"])
    href = page.locator("#mon-budget-field a.mon-csv").get_attribute("href")
    assert href == "/api/monitoring/budget_by_field.csv?city=15002000"
    violations = run_axe(page)
    page.screenshot(path=str(artifacts / f"monitoring-staff-{lang}.png"), full_page=True)
    page.locator("#mon-budget-field").screenshot(
        path=str(artifacts / f"monitoring-staff-budget-{lang}.png"))
    assert violations == [], json.dumps(violations, indent=1, ensure_ascii=False)
