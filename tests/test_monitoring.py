"""Monitoring for the Smart-City office: every figure equals what the measures hold.

The expected figures are computed here in Python over the rows of the tables ``measures``,
``measure_editions`` and ``measure_history`` (read with plain SELECTs, not through the views or
the monitoring SQL), for the staff view (drafts included) and the public view (published and
not deleted), with and without filters; each CSV is compared with its JSON table.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from factories import GERA_POINT, HALLE_POLYGON, NEUSTADT_POINT, bearer, measure_feature
from quarters.editions import COMPARED
from quarters.schemas import STATUSES

AS_OF = date.today()
BERLIN = ZoneInfo("Europe/Berlin")
OST = "wirtschaftsquartier-hallescher-osten"
DRAFT = "Monitoring-Entwurf Qv3"
FUNDING = "Testförderlinie Monitoring"


def day(offset: int) -> str:
    return (AS_OF + timedelta(days=offset)).isoformat()


def _create(client, headers, geometry, publish=False, **props) -> dict:
    created = client.post("/api/measures", headers=headers, json=measure_feature(geometry,
                                                                                 **props))
    assert created.status_code == 201, created.text
    record = {"id": created.json()["id"], "etag": created.headers["etag"]}
    if publish:
        done = client.post(f"/api/measures/{record['id']}/publish",
                           headers={**headers, "If-Match": record["etag"]})
        assert done.status_code == 200, done.text
        record["etag"] = done.headers["etag"]
    return record


@pytest.fixture
def setup(client, conn) -> dict:
    """Published measures, drafts, a deleted one, milestones around AS_OF, an older history."""
    planner = bearer(client, conn, "planner", "monitoring-planner")
    gera = {"city_ags": "16052000", "action_field": "Wirtschaft"}
    milestones = [
        {"date": day(-10), "title": "Vergabe", "status": "offen"},        # overdue
        {"date": day(-40), "title": "Auftakt", "status": "erreicht"},     # reached: never listed
        {"date": day(12), "title": "Inbetriebnahme", "status": "verschoben"},  # due
        {"date": day(400), "title": "Abschluss", "status": "offen"},      # beyond the window
    ]
    ost = _create(client, planner, HALLE_POLYGON, publish=True, title="Monitoring Ost",
                  action_field="Wirtschaft", status="in_umsetzung", budget_planned=100000.55,
                  budget_spent=25000.25, funding_line=FUNDING, milestones=milestones)
    draft = _create(client, planner, NEUSTADT_POINT, title=DRAFT, action_field="Bildung",
                    status="geplant", budget_planned=50000.0, budget_spent=1234.5,
                    funding_line=FUNDING, milestones=[{"date": day(5), "title": DRAFT}])
    stopped = _create(client, planner, NEUSTADT_POINT, publish=True, title="Eingestellt",
                      action_field="Bildung", status="eingestellt", budget_planned=999.99,
                      milestones=[{"date": day(-3), "title": "Nie erreicht"}])
    gera_pub = _create(client, planner, GERA_POINT, publish=True, title="Gera veröffentlicht",
                       status="abgeschlossen", budget_planned=7000.0, budget_spent=7100.0,
                       editions=["gera-2024"], **gera)
    gera_draft = _create(client, planner, GERA_POINT, title=DRAFT + " Gera", status="idee",
                         budget_planned=300.0, editions=["gera-2024"], **gera)
    gone = _create(client, planner, GERA_POINT, publish=True, title="Gelöscht",
                   budget_planned=1e6, editions=["gera-2024"], **gera)
    assert client.delete(f"/api/measures/{gone['id']}",
                         headers={**planner, "If-Match": gone["etag"]}).status_code == 204
    # An older history of the Ost measure (the loader and the API only write "now"): an
    # unpublished idea three months ago, published and planned two months ago.
    for months_ago, status, published in ((3, "idee", False), (2, "geplant", True)):
        conn.execute(text("""
            INSERT INTO measure_history (measure_id, version, action, actor, at, after)
            VALUES (:id, 0, 'test', 'test', now() - make_interval(days => :d),
                    jsonb_build_object('status', CAST(:s AS text), 'published', :p,
                                       'deleted', false))"""),
                     {"id": ost["id"], "d": 31 * months_ago, "s": status, "p": published})
    return {"planner": planner, "ost": ost["id"], "draft": draft["id"],
            "stopped": stopped["id"], "gera_pub": gera_pub["id"],
            "gera_draft": gera_draft["id"], "gone": gone["id"]}


# -- the independent computation --------------------------------------------------------------
def measures_rows(conn, public: bool, city=None, quarter=None, edition=None) -> list[dict]:
    rows = [dict(r) for r in conn.execute(text(
        "SELECT id, city_ags, action_field, status, budget_planned, budget_spent, funding_line, "
        "quarter_slugs, milestones, published, deleted_at FROM measures")).mappings()]
    members = defaultdict(set)
    for measure_id, key in conn.execute(text(
            "SELECT measure_id, edition_key FROM measure_editions")):
        members[key].add(measure_id)
    keep = []
    for r in rows:
        if r["deleted_at"] is not None or (public and not r["published"]):
            continue
        if city and r["city_ags"] != city:
            continue
        if quarter and quarter not in r["quarter_slugs"]:
            continue
        if edition and r["id"] not in members[edition]:
            continue
        keep.append(r)
    return keep


def money(values) -> float:
    return float(sum((v for v in values if v is not None), Decimal(0)))


def budget_rows(groups: dict) -> dict:
    return {key: {"measures": len(rs), "with_budget": sum(r["budget_planned"] is not None
                                                          for r in rs),
                  "budget_planned": money(r["budget_planned"] for r in rs),
                  "budget_spent": money(r["budget_spent"] for r in rs)}
            for key, rs in groups.items()}


def expected_history(conn, ids: set[int], public: bool, months: int) -> list[dict]:
    entries = defaultdict(list)
    for measure_id, hid, at, after in conn.execute(text(
            "SELECT measure_id, id, at, after FROM measure_history ORDER BY id")):
        if measure_id in ids:
            entries[measure_id].append((hid, at.astimezone(BERLIN).replace(tzinfo=None), after))
    if not entries:
        return []
    last = AS_OF.replace(day=1)
    index = last.year * 12 + last.month - 1 - (months - 1)
    first = date(index // 12, index % 12 + 1, 1)
    earliest = min(at for es in entries.values() for _, at, _ in es)
    month = max(first, date(earliest.year, earliest.month, 1))
    out = []
    while month <= last:
        nxt = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        counts = Counter()
        for es in entries.values():
            before = [e for e in es if e[1] < datetime(nxt.year, nxt.month, nxt.day)]
            if not before:
                continue
            after = max(before, key=lambda e: (e[1], e[0]))[2]
            if after is None or after.get("deleted") or (public and not after.get("published")):
                continue
            counts[after["status"]] += 1
        out.append({"month": month.strftime("%Y-%m"), **{s: counts[s] for s in STATUSES},
                    "total": sum(counts.values())})
        month = nxt
    return out


def expected_editions(conn, public: bool, city=None, quarter=None, edition=None):
    eds = [dict(r) for r in conn.execute(text(
        "SELECT key, city_ags, title, year FROM editions ORDER BY city_ags, year, key")).mappings()]
    if edition and not city:
        city = next(e["city_ags"] for e in eds if e["key"] == edition)
    measures = {r["id"]: r for r in conn.execute(text(
        "SELECT id, published, deleted_at, quarter_slugs FROM measures")).mappings()}
    snaps = defaultdict(dict)
    for measure_id, key, snap, geom in conn.execute(text(
            "SELECT measure_id, edition_key, snapshot, ST_AsEWKB(geom) FROM measure_editions")):
        m = measures[measure_id]
        if m["deleted_at"] is not None:
            continue
        if public and not (m["published"] and snap.get("published")):
            continue
        snaps[key][measure_id] = (snap, bytes(geom))
    in_quarter = {i for i, m in measures.items() if not quarter or quarter in m["quarter_slugs"]}
    rows, changes, previous = [], [], {}
    for e in eds:
        if city and e["city_ags"] != city:
            continue
        members = {i: v for i, v in snaps[e["key"]].items() if i in in_quarter}
        row = {"edition": e["key"], "city_ags": e["city_ags"], "title": e["title"],
               "year": e["year"], "measures": len(members), "added": 0, "removed": 0,
               "changed": 0}
        rows.append(row)
        before = previous.get(e["city_ags"])
        previous[e["city_ags"]] = (e["key"], members)
        if before is None or (edition and edition not in (before[0], e["key"])):
            continue
        old_key, old = before
        found = {
            "added": sorted(set(members) - set(old)),
            "removed": sorted(set(old) - set(members)),
            "changed": sorted(i for i in set(old) & set(members)
                              if old[i][1] != members[i][1]
                              or any(old[i][0].get(f) != members[i][0].get(f) for f in COMPARED)),
        }
        for change, ids in found.items():
            row[change] = len(ids)
            changes.extend((old_key, e["key"], change, i) for i in ids)
    return rows, changes


def check_overview(conn, body: dict, public: bool, **filters) -> None:
    """Every table of a monitoring answer against the Python computation."""
    rows = measures_rows(conn, public, **filters)
    assert body["view"] == ("public" if public else "staff")
    t = body["tables"]
    totals = body["totals"]
    assert totals["measures"] == len(rows)
    assert totals["budget_planned"] == money(r["budget_planned"] for r in rows)
    assert totals["budget_spent"] == money(r["budget_spent"] for r in rows)

    status = Counter(r["status"] for r in rows)
    assert {r["status"]: r["measures"] for r in t["status"]} == {s: status[s] for s in STATUSES}

    by_field = Counter((r["city_ags"], r["action_field"], r["status"]) for r in rows)
    got = {(r["city_ags"], r["action_field"], s): r[s] for r in t["status_by_field"]
           for s in STATUSES if r[s]}
    assert got == dict(by_field)
    assert all(r["total"] == sum(r[s] for s in STATUSES) for r in t["status_by_field"])

    groups = defaultdict(list)
    for r in rows:
        groups[(r["city_ags"], r["action_field"])].append(r)
    assert {(r["city_ags"], r["action_field"]): {k: r[k] for k in
            ("measures", "with_budget", "budget_planned", "budget_spent")}
            for r in t["budget_by_field"]} == budget_rows(groups)

    groups = defaultdict(list)
    for r in rows:
        for slug in r["quarter_slugs"] or [""]:
            groups[slug].append(r)
    assert {r["quarter"]: {k: r[k] for k in ("measures", "with_budget", "budget_planned",
                                             "budget_spent")}
            for r in t["budget_by_quarter"]} == budget_rows(groups)

    groups = defaultdict(list)
    for r in rows:
        groups[r["funding_line"] or ""].append(r)
    assert {r["funding_line"]: {k: r[k] for k in ("measures", "with_budget", "budget_planned",
                                                  "budget_spent")}
            for r in t["budget_by_funding"]} == budget_rows(groups)
    for name in ("budget_by_field", "budget_by_funding"):  # rows add up to the totals
        assert sum(r["measures"] for r in t[name]) == totals["measures"]
        assert sum(r["budget_planned"] for r in t[name]) == pytest.approx(
            totals["budget_planned"], abs=0.005)

    until = AS_OF + timedelta(days=body["filters"]["due_days"])
    want = set()
    for r in rows:
        if r["status"] == "eingestellt":
            continue
        for m in r["milestones"]:
            d = date.fromisoformat(m["date"])
            if m.get("status", "offen") != "erreicht" and d <= until:
                want.add((r["id"], m["title"], m["date"], "overdue" if d < AS_OF else "due"))
    got = {(m["measure_id"], m["milestone"], m["date"], m["state"]) for m in t["milestones"]}
    assert got == want
    assert totals["milestones_overdue"] == sum(1 for w in want if w[3] == "overdue")
    assert totals["milestones_due"] == sum(1 for w in want if w[3] == "due")

    history = expected_history(conn, {r["id"] for r in rows}, public, body["filters"]["months"])
    assert t["status_history"] == history
    if history:  # the current month holds what the measures hold now
        assert {s: history[-1][s] for s in STATUSES} == {s: status[s] for s in STATUSES}

    edition_rows, changes = expected_editions(conn, public, **filters)
    assert [{k: r[k] for k in ("edition", "measures", "added", "removed", "changed")}
            for r in t["editions"]] == [
        {k: r[k] for k in ("edition", "measures", "added", "removed", "changed")}
        for r in edition_rows]
    assert sorted((c["from"], c["to"], c["change"], c["measure_id"])
                  for c in t["edition_changes"]) == sorted(changes)


# -- tests ------------------------------------------------------------------------------------
def test_staff_figures_equal_the_measures(client, conn, setup):
    body = client.get(f"/api/monitoring?as_of={AS_OF}", headers=setup["planner"])
    assert body.status_code == 200, body.text
    body = body.json()
    check_overview(conn, body, public=False)
    t = body["tables"]
    ids = {m["measure_id"] for m in t["milestones"]}
    assert setup["draft"] in ids and setup["stopped"] not in ids  # drafts yes, stopped no
    states = {(m["measure_id"], m["milestone"]): m["state"] for m in t["milestones"]}
    assert states[(setup["ost"], "Vergabe")] == "overdue"
    assert states[(setup["ost"], "Inbetriebnahme")] == "due"
    assert (setup["ost"], "Abschluss") not in states and (setup["ost"], "Auftakt") not in states
    assert len(t["status_history"]) >= 4  # the older history spans months
    funding = next(r for r in t["budget_by_funding"] if r["funding_line"] == FUNDING)
    assert funding["budget_planned"] == 150000.55 and funding["budget_spent"] == 26234.75
    assert setup["gone"] not in {c["measure_id"] for c in t["edition_changes"]}


def test_public_summary_has_no_drafts(client, conn, setup):
    for headers in ({}, setup["planner"]):  # signed in or not: the public summary is public
        response = client.get(f"/api/monitoring/public?as_of={AS_OF}", headers=headers)
        assert response.status_code == 200, response.text
        assert DRAFT not in response.text
        body = response.json()
        check_overview(conn, body, public=True)
        ids = {m["measure_id"] for m in body["tables"]["milestones"]}
        ids |= {c["measure_id"] for c in body["tables"]["edition_changes"]}
        assert not ids & {setup["draft"], setup["gera_draft"], setup["gone"]}
        assert ids & {setup["ost"], setup["gera_pub"]}
    staff = client.get("/api/monitoring", headers=setup["planner"]).json()["totals"]
    public = client.get("/api/monitoring/public").json()["totals"]
    drafts = conn.execute(text(
        "SELECT count(*) FROM measures WHERE NOT published AND deleted_at IS NULL")).scalar_one()
    assert drafts >= 2  # this test's two drafts (other tests may have committed more)
    assert staff["measures"] - public["measures"] == drafts
    # the Ost measure was an unpublished idea three months back: not counted publicly then
    months = {r["month"]: r for r in client.get(
        f"/api/monitoring/public?as_of={AS_OF}").json()["tables"]["status_history"]}
    staff_months = {r["month"]: r for r in client.get(
        f"/api/monitoring?as_of={AS_OF}", headers=setup["planner"]).json()["tables"][
        "status_history"]}
    oldest = min(staff_months)
    assert staff_months[oldest]["idee"] == 1 and months.get(oldest, {"total": 0})["total"] == 0


@pytest.mark.parametrize("filters", [
    {"city": "15002000"},
    {"quarter": OST},
    {"city": "15002000", "quarter": OST},
    {"edition": "gera-2024"},
    {"city": "16052000", "edition": "gera-2022"},
])
@pytest.mark.parametrize("public", [False, True])
def test_filtered_figures_equal_the_measures(client, conn, setup, filters, public):
    url = "/api/monitoring/public" if public else "/api/monitoring"
    response = client.get(url, params={**filters, "as_of": AS_OF.isoformat(), "due_days": 30},
                          headers=setup["planner"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["filters"]["due_days"] == 30
    check_overview(conn, body, public=public, **filters)
    assert body["totals"]["measures"] > 0


def _parse(raw: bytes) -> list[dict]:
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))


def _as_csv(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2f}".replace(".", ",")
    return str(value)


@pytest.mark.parametrize("public", [False, True])
def test_csv_matches_json(client, conn, setup, public):
    prefix = "/api/monitoring/public" if public else "/api/monitoring"
    params = {"as_of": AS_OF.isoformat(), "city": "15002000"}
    body = client.get(prefix, params=params, headers=setup["planner"]).json()
    for name, rows in body["tables"].items():
        response = client.get(f"{prefix}/{name}.csv", params=params, headers=setup["planner"])
        assert response.status_code == 200, (name, response.text)
        assert response.headers["content-type"].startswith("text/csv; charset=utf-8")
        assert f"{name}.csv" in response.headers["content-disposition"]
        parsed = _parse(response.content)
        header = response.content.decode("utf-8-sig").splitlines()[0].split(";")
        assert header == body["columns"][name]
        assert len(parsed) == len(rows), name
        for got, want in zip(parsed, rows, strict=True):
            for column in body["columns"][name]:
                value = want[column]
                if column in ("budget_planned", "budget_spent"):
                    assert float(got[column].replace(",", ".")) == pytest.approx(value, abs=0.005)
                else:
                    assert got[column] == _as_csv(value), (name, column)
    staff_csv = client.get("/api/monitoring/milestones.csv", headers=setup["planner"]).text
    public_csv = client.get("/api/monitoring/public/milestones.csv").text
    assert DRAFT in staff_csv and DRAFT not in public_csv


def test_csv_cells_are_never_formulas(client, conn, setup):
    planner = setup["planner"]
    _create(client, planner, HALLE_POLYGON, publish=True, title="=HYPERLINK(\"x\")",
            action_field="Wirtschaft", milestones=[{"date": day(1), "title": "+1 Termin"}])
    raw = client.get("/api/monitoring/public/milestones.csv").content.decode("utf-8-sig")
    assert "'=HYPERLINK" in raw and "'+1 Termin" in raw


@pytest.mark.parametrize("query", [
    "city=99999999", "city=halle", "edition=nope", "edition=BAD!", "quarter=nirgendwo",
    "quarter=" + "x" * 81, "due_days=0", "due_days=100000", "due_days=abc", "months=0",
    "as_of=gestern", "as_of=3000-01-01", "city=16052000&quarter=" + OST,
    "city=15002000&edition=gera-2024",
])
def test_bad_filters_are_400_problems(client, conn, setup, query):
    for url in (f"/api/monitoring?{query}", f"/api/monitoring/public?{query}",
                f"/api/monitoring/status.csv?{query}", f"/api/monitoring/public/status.csv?{query}"):
        response = client.get(url, headers=setup["planner"])
        assert response.status_code == 400, (url, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")


def test_unknown_table_is_400(client, conn, setup):
    for url in ("/api/monitoring/measures.csv", "/api/monitoring/public/nothing.csv"):
        response = client.get(url, headers=setup["planner"])
        assert response.status_code == 400, response.text


def test_staff_view_is_for_planners_and_admins(client, conn, setup):
    assert client.get("/api/monitoring").status_code == 401
    assert client.get("/api/monitoring/status.csv").status_code == 401
    moderator = bearer(client, conn, "moderator", "monitoring-moderator")
    assert client.get("/api/monitoring", headers=moderator).status_code == 403
    assert client.get("/api/monitoring/public", headers=moderator).status_code == 200
    admin = bearer(client, conn, "admin", "monitoring-admin")
    assert DRAFT in client.get("/api/monitoring", headers=admin).text


def test_page_texts_are_in_both_catalogues():
    """Every key monitoring.html and monitoring.js use is in de.json and en.json (including
    the keys built from table names), and the script holds no German text of its own."""
    import json
    import re
    from pathlib import Path

    from quarters.monitoring import TABLES

    web = Path(__file__).resolve().parent.parent / "web"
    html = (web / "monitoring.html").read_text(encoding="utf-8")
    js = (web / "js" / "monitoring.js").read_text(encoding="utf-8")
    keys = set(re.findall(r'data-i18n="([^"]+)"', html)) | set(re.findall(r'\bt\(\s*"([^"]+)"', js))
    keys |= {f"mon.table.{name}" for name in TABLES} | {"mon.state.due", "mon.state.overdue"}
    keys |= {f"mon.change.{c}" for c in ("added", "removed", "changed")}
    keys |= {f"mon.hint.{name}" for name in TABLES if name != "edition_changes"}
    keys |= {f"mon.all_{n}" for n in ("cities", "editions", "quarters")}
    for lang in ("de", "en"):
        catalogue = json.loads((web / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))
        assert sorted(k for k in keys if k not in catalogue) == [], lang
    code = re.sub(r"//.*|/\*[\s\S]*?\*/", "", js)
    assert not re.search(r"[äöüÄÖÜß]", code)
