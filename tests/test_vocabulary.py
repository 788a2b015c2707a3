"""Vocabularies and limits are defined once (quarters.vocabulary): /api/config serves them, the
schemas enforce them, the pages take them from /api/config (the database's CHECKs are
compared with the models in test_schema.py)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from factories import bearer, measure_feature
from quarters import ideas, vocabulary
from quarters.schemas import MeasureProperties

WEB = Path(__file__).resolve().parents[1] / "web"


def test_api_config_serves_the_one_definition(client):
    body = client.get("/api/config").json()
    assert body["statuses"] == list(vocabulary.MEASURE_STATUSES)
    assert list(body["status_colours"]) == body["statuses"]
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in body["status_colours"].values())
    assert body["location_precisions"] == list(vocabulary.LOCATION_PRECISIONS)
    assert body["action_fields"] == {k: list(v) for k, v in vocabulary.ACTION_FIELDS.items()}
    assert body["idea_states"] == list(vocabulary.IDEA_STATES)
    assert body["limits"]["measure"]["title"] == {"min": 1, "max": 200}
    assert body["limits"]["idea"]["text"] == {"min": 10, "max": 4000}
    assert body["limits"]["money"] == {"min": 0, "max": vocabulary.MAX_MONEY}


def test_the_measure_schema_has_the_served_limits():
    schema = MeasureProperties.model_json_schema()
    props = schema["properties"]
    for name, length in vocabulary.MEASURE_TEXT.items():
        if name not in props:
            continue
        field = props[name]
        field = next((f for f in field.get("anyOf", [field]) if f.get("type") == "string"), field)
        assert field.get("maxLength") == length.max, name
    assert props["status"]["enum"] == list(vocabulary.MEASURE_STATUSES)
    assert props["location_precision"]["enum"] == list(vocabulary.LOCATION_PRECISIONS)


def test_limits_are_enforced_at_the_served_length(client, conn):
    headers = bearer(client, conn, "planner")
    longest = vocabulary.MEASURE_TEXT["title"].max
    ok = client.post("/api/measures", headers=headers, json=measure_feature(title="T" * longest))
    assert ok.status_code == 201, ok.text
    too_long = client.post("/api/measures", headers=headers,
                           json=measure_feature(title="T" * (longest + 1)))
    assert too_long.status_code == 422
    idea = {"title": "x" * (vocabulary.IDEA_TEXT["title"].max + 1),
            "text": "Eine ausreichend lange Idee.", "action_field": "Mobilität",
            "geometry": {"type": "Point", "coordinates": [11.97, 51.48]}}
    refused = client.post("/api/ideas", json=idea)
    assert refused.status_code == 422
    assert any(e.get("pointer") == "/title" for e in refused.json().get("errors", []))


def test_idea_decisions_lead_to_known_states():
    assert tuple(ideas.DECISIONS) == vocabulary.IDEA_DECISIONS
    assert set(ideas.DECISIONS.values()) <= set(vocabulary.IDEA_STATES)


def test_no_page_script_or_stylesheet_keeps_its_own_status_list_or_colours():
    status_list = re.compile(r"""["']idee["']\s*,\s*["']geplant["']""")
    statuses = "|".join(vocabulary.MEASURE_STATUSES)
    status_colour = re.compile(rf"""\b({statuses})["']?\s*:\s*["']#[0-9a-fA-F]{{3,6}}""")
    found = []
    for path in [*WEB.glob("js/*.js"), *WEB.glob("css/*.css")]:
        source = path.read_text(encoding="utf-8")
        if status_list.search(source):
            found.append(f"{path.name}: status list")
        if status_colour.search(source):
            found.append(f"{path.name}: a colour of its own for a status")
        if re.search(r"--st-[a-z_]+\s*:", source):
            found.append(f"{path.name}: declares a --st-* colour")
    assert found == []


class _MaxLengths(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list) -> None:  # noqa: ARG002
        values = dict(attrs)
        if values.get("id") and values.get("maxlength"):
            self.found[values["id"]] = int(values["maxlength"])


def rendered(page: str) -> str:
    """web/<page> as the server sends it (the templates' macros expanded)."""
    from starlette.requests import Request

    from quarters.api.pages import render_page
    scope = {"type": "http", "method": "GET", "path": f"/{page}", "query_string": b"", "headers": []}
    return render_page(Request(scope), WEB, page).body.decode("utf-8")


def test_the_pages_static_maxlengths_agree_with_the_limits():
    """The pages set maxlength from /api/config (js/vocabulary.js); what the HTML says before
    that must not contradict it."""
    expected = {f"f-{k}": v.max for k, v in vocabulary.MEASURE_TEXT.items()}
    expected |= {f"idea-{k.replace('_', '-')}": v.max for k, v in vocabulary.IDEA_TEXT.items()}
    expected["workshop-label"] = vocabulary.IDEA_TEXT["workshop_label"].max
    wrong, checked = [], 0
    for page in ("planner.html", "ideas.html", "moderation.html"):
        parser = _MaxLengths()
        parser.feed(rendered(page))
        for element, length in parser.found.items():
            if element in expected:
                checked += 1
                if length != expected[element]:
                    wrong.append((page, element, length, expected[element]))
    assert checked >= 14 and wrong == []
