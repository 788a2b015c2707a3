"""Moderation keeps the site clean: hidden ideas are on no public path (their reason stays with
staff), a rejected idea shows its title, the decision and the public reason but not its text
unless the moderator publishes it, and the submitter gets the idea's page address."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from factories import bearer

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
