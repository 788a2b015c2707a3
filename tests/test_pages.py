"""The pages come from one chrome (web/templates/chrome.html) rendered in the page's language.

- ``?lang=`` renders the page (chrome, ``<html lang>``, the static ``data-i18n`` texts) in that
  language and remembers it in the ``quarters_lang`` cookie; the next page, without ``?lang``,
  keeps it — also /planner.html and /analysis.html and the stable addresses;
- rendered pages keep what the static files had: ETag with 304, HEAD, security headers;
- the templates are not served, the favicon is.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from quarters.api.pages import LANG_COOKIE

WEB = Path(__file__).resolve().parent.parent / "web"
PAGES = ["/", "/index.html", "/ideas.html", "/moderation.html", "/monitoring.html",
         "/analysis.html", "/planner.html", "/massnahmen/1", "/ideen/1"]


def html_lang(body: str) -> str:
    return re.search(r'<html lang="(\w+)">', body)[1]


def nav_text(body: str, key: str) -> str:
    return re.search(rf'data-nav="{key}" data-i18n="nav.{key}"[^>]*>([^<]+)<', body)[1]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_speaks_the_language_asked_for(client, path):
    sep = "&" if "?" in path else "?"
    english = client.get(f"{path}{sep}lang=en")
    assert english.status_code == 200
    assert english.headers["content-type"].startswith("text/html")
    body = english.text
    assert html_lang(body) == "en" and english.headers["content-language"] == "en"
    assert nav_text(body, "analysis") == "Analysis" and nav_text(body, "planning") == "Planning"
    assert 'aria-label="Main navigation"' in body and 'aria-label="Language"' in body
    assert re.search(r'data-lang="en"[^>]*aria-current="true"', body)
    assert "Hauptnavigation" not in body and "Zum Inhalt springen" not in body
    german = client.get(f"{path}{sep}lang=de").text
    assert html_lang(german) == "de" and nav_text(german, "analysis") == "Analyse"


def test_the_choice_is_kept_by_a_cookie_for_the_next_pages(client):
    first = client.get("/?lang=en")
    assert f"{LANG_COOKIE}=en" in first.headers["set-cookie"]
    assert "samesite=lax" in first.headers["set-cookie"].lower()
    for path in ("/analysis.html", "/planner.html", "/ideas.html", "/massnahmen/1"):
        body = client.get(path).text  # no ?lang: the cookie decides
        assert html_lang(body) == "en", path
        assert nav_text(body, "map") == "Map and list", path
    client.get("/planner.html?lang=de")
    assert html_lang(client.get("/analysis.html").text) == "de"


def test_without_a_choice_pages_are_german_and_set_no_cookie(client):
    response = client.get("/planner.html", headers={"Accept-Language": "en"})
    assert html_lang(response.text) == "de" and "set-cookie" not in response.headers
    assert html_lang(client.get("/?lang=fr").text) == "de"  # unknown: German, nothing kept
    assert LANG_COOKIE not in client.cookies


def test_the_language_switch_keeps_the_other_parameters(client):
    body = client.get("/?near=d5&r=1000&lang=en").text
    assert 'href="/?near=d5&amp;r=1000&amp;lang=de" data-lang="de"' in body


def test_the_current_page_is_marked_in_the_navigation(client):
    for path, nav in (("/", "map"), ("/analysis.html", "analysis"), ("/planner.html", "planning"),
                      ("/monitoring.html", "monitoring")):
        marked = re.findall(r'data-nav="(\w+)"[^>]*aria-current="page"', client.get(path).text)
        assert marked == [nav], path


@pytest.mark.parametrize("path", ["/", "/planner.html", "/massnahmen/1"])
def test_rendered_pages_keep_etag_head_and_security_headers(client, path):
    response = client.get(path)
    etag = response.headers["etag"]
    assert response.headers["cache-control"] == "no-cache" and "Cookie" in response.headers["vary"]
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert client.get(path, headers={"If-None-Match": etag}).status_code == 304
    head = client.head(path)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == etag
    assert client.get(f"{path}?lang=en").headers["etag"] != etag  # another language, another tag


def test_templates_are_not_served_the_favicon_is(client):
    assert client.get("/templates/chrome.html").status_code == 404
    assert client.get("/templates/forms.html").status_code == 404
    icon = client.get("/favicon.svg")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert "<svg" in icon.text
    assert '<link rel="icon" href="/favicon.svg" type="image/svg+xml">' in client.get("/").text


def test_pages_load_the_shared_core_and_their_own_sheet_after_the_base():
    """One base stylesheet first; each page sheet only after it; the HTTP client only once."""
    js = WEB / "js"
    clients = sorted(p.name for p in js.rglob("*.js")
                     if re.search(r"\bfetch\(\s*(url|`/api|\"/api)", p.read_text(encoding="utf-8")))
    # every API call goes through core/http.js (analysis-map.js: the tile metadata, map helper)
    assert clients in (["http.js"], ["analysis-map.js", "http.js"]), clients
    for sheet in ("public.css", "planner.css", "analysis.css", "monitoring.css"):
        text = (WEB / "css" / sheet).read_text(encoding="utf-8")
        for base in (r"^\.button \{", r"^\.site-header \{", r"^\.field__error \{", r"^\.card \{",
                     r"--ink:", r"--focus:", r"--radius:"):
            assert not re.search(base, text, re.M), (sheet, base)
