"""GET /api/analysis/levels in the request's language: the note of a level without outlines
and the rules (default indicators, bands, urbanisation) are catalogue texts with their code,
German for a German request, English for an English one — no English sentence on German pages."""

from __future__ import annotations

import pytest

from quarters.messages import t

RULES = {"default_rule": "rule.default_indicators", "band_rule": "rule.bands",
         "urbanisation": "rule.urbanisation"}
ENGLISH = ("values only", "not mapped", "no outlines", "intensive indicators", "percentile =",
           "thinly populated", "would come from", "very similar")


def get(client, lang: str, how: str) -> dict:
    if how == "query":
        r = client.get("/api/analysis/levels", params={"lang": lang})
    else:
        r = client.get("/api/analysis/levels", headers={"Accept-Language": f"{lang}-XX,{lang};q=0.9"})
    assert r.status_code == 200
    return r.json()


@pytest.mark.parametrize("how", ["query", "header"])
@pytest.mark.parametrize("lang", ["de", "en"])
def test_rules_and_notes_come_with_code_in_the_request_language(client, lang, how):
    body = get(client, lang, how)
    for field, code in RULES.items():
        assert body[field]["code"] == code and body[field]["params"] == {}
        assert body[field]["detail"] == t(f"warning.{code}", lang)
    notes = [lv["note"] for lv in body["levels"] if not lv["outlines"]]
    assert notes, "the test data has a level without outlines (Gera's statistical districts)"
    for note in notes:
        assert note["code"] == "levels.no_outlines"
        assert "quarters import boundaries --level gera_bezirk" in note["detail"]
    text = " ".join([body[f]["detail"] for f in RULES] + [n["detail"] for n in notes])
    if lang == "de":
        assert "keine Umrisse: nur Werte" in text and "Geras statistische Bezirke" in text
        assert "Perzentil" in text and "Einwohner je km²" in text
        assert not [w for w in ENGLISH if w in text], text
    else:
        assert "no outlines: values only, not mapped" in text and "Gera's statistical" in text
        assert "Keine Umrisse" not in text and "Perzentil" not in text
