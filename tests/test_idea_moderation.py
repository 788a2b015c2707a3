"""Moderation keeps the site clean: hidden ideas are on no public path (their reason stays with
staff), a rejected idea shows its title, the decision and the public reason but not its text
unless the moderator publishes it, and the submitter gets the idea's page address."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from factories import bearer, remove_committed

SPAM = "Billige Uhren unter spam-beispiel.invalid, ruf 0170 1234567 an"


def idea(title: str, body: str = SPAM) -> dict:
    return {"title": title, "text": body, "action_field": "Mobilität",
            "geometry": {"type": "Point", "coordinates": [11.9697, 51.4829]}}


@pytest.fixture
def moderator(client, conn) -> dict:
    return bearer(client, conn, "moderator", "moderation-mod")


def submitted(client, title: str, body: str = SPAM) -> dict:
    response = client.post("/api/ideas", json=idea(title, body))
    assert response.status_code == 202, response.text
    return response.json()


def public_paths(client) -> list[str]:
    """Every public answer an idea could appear in."""
    bodies = [client.get("/api/ideas?limit=1000").text,
              client.get("/api/ideas?state=verborgen&limit=1000").text,
              client.get("/api/ideas?state=abgelehnt&limit=1000").text,
              client.get("/api/ideas?city_ags=15002000&limit=1000").text]
    return bodies


def test_submitter_gets_the_page_address(client):
    answer = submitted(client, "Ein Ort zum Folgen", "Ein Text, der lang genug ist.")
    assert answer["url"] == f"/ideen/{answer['id']}"
    page = client.get(answer["url"])
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]


def test_hidden_idea_is_on_no_public_path(client, conn, moderator):
    answer = submitted(client, "Spam zum Verbergen")
    before = client.get("/api/ideas?limit=1000").json()["numberMatched"]
    refused = client.post(f"/api/ideas/{answer['id']}/moderate", headers=moderator,
                          json={"decision": "hide"})
    assert refused.status_code == 422 and refused.json()["errors"][0]["pointer"] == "/staff_reason"
    hidden = client.post(f"/api/ideas/{answer['id']}/moderate", headers=moderator,
                         json={"decision": "hide", "staff_reason": "Werbung mit Telefonnummer",
                               "reason": "wird ignoriert"})
    assert hidden.status_code == 200, hidden.text
    assert hidden.json()["state"] == "verborgen"
    assert hidden.json()["staff_reason"] == "Werbung mit Telefonnummer"
    assert hidden.json()["public_reason"] is None
    assert client.get(f"/api/ideas/{answer['id']}").status_code == 404
    for body in public_paths(client):
        assert "Spam zum Verbergen" not in body and "0170" not in body
        assert "Werbung mit Telefonnummer" not in body
    assert client.get("/api/ideas?limit=1000").json()["numberMatched"] == before
    staff = client.get(f"/api/ideas/{answer['id']}", headers=moderator).json()
    assert staff["staff_reason"] == "Werbung mit Telefonnummer" and staff["text"] == SPAM
    assert answer["id"] in {i["id"] for i in client.get(
        "/api/ideas?state=verborgen", headers=moderator).json()["ideas"]}
    stored = conn.execute(text("SELECT state, staff_reason FROM ideas WHERE id = :i"),
                          {"i": answer["id"]}).one()
    assert tuple(stored) == ("verborgen", "Werbung mit Telefonnummer")


def test_rejected_idea_shows_title_decision_and_reason_not_text(client, moderator):
    answer = submitted(client, "Abgelehnte Idee mit Namen", "Mein Nachbar Herr Beispiel, Ring 4, "
                       "stellt immer sein Auto hin.")
    done = client.post(f"/api/ideas/{answer['id']}/moderate", headers=moderator,
                       json={"decision": "reject", "reason": "Enthält persönliche Angaben."})
    assert done.status_code == 200
    public = client.get(f"/api/ideas/{answer['id']}").json()
    assert public["title"] == "Abgelehnte Idee mit Namen"
    assert public["state"] == "abgelehnt"
    assert public["public_reason"] == "Enthält persönliche Angaben."
    assert public["text"] is None
    assert all("Herr Beispiel" not in body for body in public_paths(client))
    assert "staff_reason" not in public and "text_public" not in public
    # the moderator's own view keeps the text
    assert "Herr Beispiel" in client.get(f"/api/ideas/{answer['id']}", headers=moderator).json()[
        "text"]


def test_moderator_may_publish_a_rejected_text(client, moderator):
    answer = submitted(client, "Abgelehnt, aber lesbar", "Eine Seilbahn über die Saale bauen.")
    done = client.post(f"/api/ideas/{answer['id']}/moderate", headers=moderator,
                       json={"decision": "reject", "reason": "Zu teuer.", "text_public": True})
    assert done.status_code == 200 and done.json()["text_public"] is True
    assert client.get(f"/api/ideas/{answer['id']}").json()["text"] == \
        "Eine Seilbahn über die Saale bauen."
    wrong = client.post(f"/api/ideas/{answer['id']}/moderate", headers=moderator,
                        json={"decision": "reject", "reason": "x", "text_public": "ja"})
    assert wrong.status_code == 400


def test_accepted_idea_shows_its_text(client, moderator):
    answer = submitted(client, "Angenommene Idee", "Mehr Bänke am Marktplatz aufstellen.")
    client.post(f"/api/ideas/{answer['id']}/moderate", headers=moderator,
                json={"decision": "accept"})
    assert client.get(f"/api/ideas/{answer['id']}").json()["text"] == \
        "Mehr Bänke am Marktplatz aufstellen."


@pytest.mark.parametrize("role,status", [("anonymous", 401), ("planner", 403)])
def test_only_moderators_hide(client, conn, role, status):
    answer = submitted(client, "Darf nicht verborgen werden")
    headers = {} if role == "anonymous" else bearer(client, conn, role)
    response = client.post(f"/api/ideas/{answer['id']}/moderate", headers=headers,
                           json={"decision": "hide", "staff_reason": "x"})
    assert response.status_code == status
    assert conn.execute(text("SELECT state FROM ideas WHERE id = :i"),
                        {"i": answer["id"]}).scalar_one() == "eingereicht"


# -- workshop codes (API refusals; the limits themselves: test_idea_limits.py) -----------------
@pytest.mark.parametrize("body,pointer", [
    ({"label": "", "hours": 3}, "/label"),
    ({"label": "Werk\x00statt", "hours": 3}, "/label"),
    ({"label": "Werkstatt", "hours": 13}, "/hours"),
    ({"label": "Werkstatt", "hours": True}, "/hours"),
    ({"label": "Werkstatt", "hours": 2, "max_ideas": 0}, "/max_ideas"),
])
def test_workshop_code_refusals(client, conn, moderator, body, pointer):
    before = conn.execute(text("SELECT count(*) FROM workshop_codes")).scalar_one()
    response = client.post("/api/ideas/workshop-codes", headers=moderator, json=body)
    # (a NUL may already be refused with 400 where the body is parsed)
    assert response.status_code in (400, 422), response.text
    if response.status_code == 422:
        assert pointer in {e["pointer"] for e in response.json()["errors"]}
    assert conn.execute(text("SELECT count(*) FROM workshop_codes")).scalar_one() == before


@pytest.mark.parametrize("code", [123, "NICHT-DA", "AB\x00CD", "x" * 60, ["A"]])
def test_unknown_or_malformed_workshop_code_is_refused(client, conn, code):
    before = conn.execute(text("SELECT count(*) FROM ideas")).scalar_one()
    response = client.post("/api/ideas", json={**idea("Mit Code"), "workshop_code": code})
    assert response.status_code in (400, 422), response.text
    if response.status_code == 422:
        assert response.json()["errors"][0]["pointer"] == "/workshop_code"
    assert conn.execute(text("SELECT count(*) FROM ideas")).scalar_one() == before


def test_workshop_code_is_valid_for_its_hours_only(client, conn, moderator):
    opened = client.post("/api/ideas/workshop-codes", headers=moderator,
                         json={"label": "Kreativwerkstatt", "hours": 2})
    assert opened.status_code == 201 and opened.json()["max_ideas"] == 200
    code = opened.json()["code"]
    assert client.post("/api/ideas", json={**idea("Mit Code"), "workshop_code": code}
                       ).status_code == 202
    conn.execute(text("UPDATE workshop_codes SET expires_at = now() - interval '1 second', "
                      "created_at = now() - interval '3 hours' WHERE code = :c"), {"c": code})
    assert client.post("/api/ideas", json={**idea("Zu spät"), "workshop_code": code}
                       ).status_code == 422
    assert code not in {w["code"] for w in client.get(
        "/api/ideas/workshop-codes", headers=moderator).json()["workshops"]}


# -- the moderation page in a real browser ------------------------------------------------------
@pytest.fixture(scope="module")
def moderation_server(settings, engine):
    """The app in a uvicorn process of its own (idea limit raised for the submissions here)."""
    from conftest import serve_app

    with serve_app(settings, QUARTERS_IDEA_LIMIT="1000") as url:
        yield url


def published_measure(base_url: str, engine, title: str, made: list) -> int:
    """A published measure in Halle, through the API as a planner would (its planner is noted in
    ``made`` for the clean-up)."""
    import uuid

    from factories import PASSWORD, api_json, make_user, measure_feature

    with engine.begin() as c:
        user = make_user(c, "planner", f"mod-link-planner-{uuid.uuid4().hex[:6]}")
    made.append(user.id)
    status, _, body = api_json(base_url, "POST", "/api/auth/login",
                               {"username": user.username, "password": PASSWORD, "token": True})
    assert status == 200, body
    token = body["token"]
    status, headers, created = api_json(base_url, "POST", "/api/measures",
                                        measure_feature(title=title), token=token)
    assert status == 201, created
    mid = created["properties"]["id"]
    status, _, body = api_json(base_url, "POST", f"/api/measures/{mid}/publish", token=token,
                               etag=headers["ETag"])
    assert status == 200, body
    return mid


@pytest.fixture()
def committed(engine):
    """Planner ids whose measures the test committed through a live server; afterwards those
    measures, their history and the ideas linked to them are removed again
    (``factories.remove_committed``), so later tests count the seeded measures only."""
    made: list[int] = []
    yield made
    with engine.begin() as owner:
        remove_committed(owner, made)


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["de", "en"])
def test_moderator_links_an_idea_to_a_measure_in_the_page(browser, moderation_server, engine,
                                                          artifacts, lang, committed):
    """The "link to a measure" list holds the city's published measures (it was always empty:
    the page read ``features`` of an answer of parallel arrays); nothing is preselected; the
    publishing decision waits for a confirmation that the keyboard can cancel (Escape)."""
    import uuid

    from playwright.sync_api import expect

    from conftest import same_origin_only
    from factories import PASSWORD, api_json, make_user

    tag = uuid.uuid4().hex[:6]
    mid = published_measure(moderation_server, engine, f"Fahrradparken Innenstadt {tag}",
                            committed)
    status, _, answer = api_json(moderation_server, "POST", "/api/ideas",
                                 idea(f"Idee zum Verknüpfen {tag}", "Mehr Radbügel am Markt, bitte."))
    assert status == 202, answer
    with engine.begin() as c:
        moderator = make_user(c, "moderator", f"mod-link-{tag}")

    context = browser.new_context(locale="de-DE" if lang == "de" else "en-GB")
    context.route("**/*", same_origin_only(moderation_server))
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(f"{moderation_server}/moderation.html?lang={lang}")
        expect(page.locator("body")).to_have_attribute("data-mod-state", "login")
        page.locator("#login-user").fill(moderator.username)
        page.locator("#login-password").fill(PASSWORD)
        page.locator("#login-form button[type=submit]").click()
        expect(page.locator("body")).to_have_attribute("data-mod-state", "queue")
        item = page.locator(f'#mod-list li.mod-item[data-id="{answer["id"]}"]')
        expect(item).to_be_visible()
        expect(item.locator('input[type="radio"]:checked')).to_have_count(0)
        select = item.locator("select[name=measure]")
        expect(select.locator(f'option[value="{mid}"]')).to_have_text(f"Fahrradparken Innenstadt {tag}")

        item.locator('input[value="link"]').check()
        select.select_option(str(mid))
        item.locator('[data-role="save"]').click()
        dialog = item.get_by_role("alertdialog")
        expect(dialog).to_be_visible()
        expect(dialog.locator('[data-role="confirm-yes"]')).to_be_focused()
        page.keyboard.press("Escape")  # cancelled: nothing published, focus back on "save"
        expect(dialog).to_be_hidden()
        expect(item.locator('[data-role="save"]')).to_be_focused()
        status, _, one = api_json(moderation_server, "GET", f"/api/ideas/{answer['id']}")
        assert status == 404, one  # still not public

        item.locator('[data-role="save"]').click()
        expect(dialog).to_be_visible()
        page.keyboard.press("Enter")  # on the focused "Yes"
        expect(page.locator("#page-status")).to_contain_text(f"Idee zum Verknüpfen {tag}")
        page.screenshot(path=str(artifacts / f"moderation-link-{lang}.png"), full_page=True)
    finally:
        context.close()
    status, _, public = api_json(moderation_server, "GET", f"/api/ideas/{answer['id']}")
    assert status == 200 and public["state"] == "verknuepft", public
    assert public["measure_id"] == mid, public
    assert errors == []
