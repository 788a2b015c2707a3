"""The web pages: ``web/*.html`` are Jinja templates that extend one chrome
(``web/templates/chrome.html``: head, header with navigation and language switch, skip links,
footer). Everything else under ``web/`` is served as it is.

The language of a page view: ``?lang=`` (then remembered in the ``quarters_lang`` cookie), the
cookie, German. The chrome is rendered in that language; ``<html lang>`` carries it, and the
page scripts (web/js/i18n.js) read it from there.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from functools import lru_cache
from html import escape
from pathlib import Path
from urllib.parse import urlencode

from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

LANGUAGES = ("de", "en")
DEFAULT_LANGUAGE = "de"
LANG_COOKIE = "quarters_lang"
LANG_COOKIE_AGE_S = 365 * 24 * 3600
TEMPLATE_DIR = "templates"  # below web/: included, never served
# The main navigation: (key, href); the labels are the catalogue's nav.<key>.
NAVIGATION = (
    ("map", "/"),
    ("ideas", "/ideas.html"),
    ("submit", "/ideas.html#idea-form-heading"),
    ("analysis", "/analysis.html"),
    ("planning", "/planner.html"),
    ("monitoring", "/monitoring.html"),
)


def page_language(request: Request) -> tuple[str, bool]:
    """(language, chosen now): ?lang= wins and is remembered, then the cookie, then German."""
    asked = request.query_params.get("lang")
    if asked in LANGUAGES:
        return asked, True
    stored = request.cookies.get(LANG_COOKIE)
    return (stored if stored in LANGUAGES else DEFAULT_LANGUAGE), False


@lru_cache(maxsize=8)
def _catalogue(path: str, mtime_ns: int) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def catalogue(web_dir: Path, lang: str) -> dict:
    """web/i18n/<lang>.json (read again when the file changes)."""
    path = web_dir / "i18n" / f"{lang}.json"
    try:
        return _catalogue(str(path), path.stat().st_mtime_ns)
    except (OSError, ValueError):
        return {}


@lru_cache(maxsize=8)
def _catalogue_json(own_path: str, own_mtime: int, german_path: str, german_mtime: int) -> Markup:
    """The page language's catalogue over the German one (what web/js/i18n.js looks up: its
    own key, else the German), as JSON that is safe inside a <script> element (no "<")."""
    merged = {**_catalogue(german_path, german_mtime), **_catalogue(own_path, own_mtime)}
    return embedded_json(merged)


def catalogue_json(web_dir: Path, lang: str) -> Markup:
    """The catalogue a page embeds (``<script type="application/json">``, read by
    web/js/i18n.js instead of fetching /i18n/<lang>.json); "{}" when it cannot be read."""
    paths = [web_dir / "i18n" / f"{code}.json" for code in (lang, DEFAULT_LANGUAGE)]
    try:
        own, german = ((str(path), path.stat().st_mtime_ns) for path in paths)
        return _catalogue_json(*own, *german)
    except (OSError, ValueError):
        return Markup("{}")


@lru_cache(maxsize=4)
def _environment(web_dir: str) -> Environment:
    return Environment(loader=FileSystemLoader(web_dir), autoescape=select_autoescape(["html"]),
                       auto_reload=True, keep_trailing_newline=True, trim_blocks=True,
                       lstrip_blocks=True)


def language_href(request: Request, code: str) -> str:
    """The current address with ?lang= set to ``code`` (other parameters kept)."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return f"{request.url.path}?{urlencode([*query, ('lang', code)])}"


# <tag … data-i18n="key" …>plain text</tag> and data-i18n-attr="attr:key;attr:key"
TEXT_KEY = re.compile(r'(<(\w+)\b[^<>]*?\sdata-i18n="([^"]+)"[^<>]*>)([^<]*)(</\2>)')
ATTR_KEYS = re.compile(r'<\w+\b[^<>]*?\sdata-i18n-attr="([^"]+)"[^<>]*>')


def localise(page: str, t: Callable[[str], str]) -> str:
    """The static texts of a rendered page in its language, as web/js/i18n.js translate()
    would set them: the first view needs no script and shows no German first."""

    def text(match: re.Match) -> str:
        return match[1] + escape(t(match[3]), quote=False) + match[5]

    def attrs(match: re.Match) -> str:
        tag = match[0]
        for pair in match[1].split(";"):
            attr, _, key = (part.strip() for part in pair.partition(":"))
            if not attr or not key:
                continue
            value = f'{attr}="{escape(t(key))}"'
            tag, found = re.subn(rf'\s{re.escape(attr)}="[^"]*"', " " + value, tag, count=1)
            if not found:
                tag = tag[:-1].rstrip("/") + f" {value}>"
        return tag

    return ATTR_KEYS.sub(attrs, TEXT_KEY.sub(text, page))


def embedded_json(value: bytes | str | dict | list) -> Markup:
    """A JSON answer as the content of a ``<script type="application/json">`` element: no
    "<" inside (so no "</script>"), nothing HTML-escaped (the element's text is raw)."""
    text_ = value.decode("utf-8") if isinstance(value, bytes) else (
        value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                        separators=(",", ":")))
    return Markup(text_.replace("<", "\\u003c"))


def render_page(request: Request, web_dir: Path, name: str,
                data: dict[str, bytes | str | dict | list] | None = None,
                context: dict | None = None) -> Response:
    """Render web/<name> in the page's language; ETag over the body, 304 on a match.
    ``data``: JSON answers the page embeds (``page_data`` in the template, by name);
    ``context``: further template variables."""
    lang, chosen = page_language(request)
    own, german = catalogue(web_dir, lang), catalogue(web_dir, DEFAULT_LANGUAGE)

    def t(key: str) -> str:
        value = own.get(key, german.get(key, key))
        return value if isinstance(value, str) else str(value.get("other", key))

    template = _environment(str(web_dir)).get_template(name)
    body = localise(template.render(
        lang=lang, languages=LANGUAGES, t=t, navigation=NAVIGATION,
        lang_href=lambda code: language_href(request, code),
        catalogue_json=lambda: catalogue_json(web_dir, lang),
        page_data={key: embedded_json(value) for key, value in (data or {}).items()},
        **(context or {}),
    ), t).encode("utf-8")
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Cookie",
               "Content-Language": lang}
    if etag in request.headers.get("if-none-match", ""):
        response: Response = Response(status_code=304, headers=headers)
    else:
        response = Response(body, media_type="text/html; charset=utf-8", headers=headers)
    if chosen and request.cookies.get(LANG_COOKIE) != lang:
        response.set_cookie(LANG_COOKIE, lang, max_age=LANG_COOKIE_AGE_S, path="/",
                            samesite="lax")
    return response


class WebFiles(StaticFiles):
    """The web folder: *.html rendered as pages, the template folder hidden, the rest static."""

    def __init__(self, web_dir: Path) -> None:
        super().__init__(directory=web_dir, html=True)
        self.web_dir = Path(web_dir).resolve()

    def get_path(self, scope: Scope) -> str:
        """The requested path; the templates are not files to fetch."""
        path = super().get_path(scope)
        if path.replace("\\", "/").split("/")[0] == TEMPLATE_DIR:
            raise HTTPException(status_code=404)
        return path

    def file_response(self, full_path, stat_result, scope: Scope,  # noqa: ANN001
                      status_code: int = 200) -> Response:
        """A page is rendered; any other file is sent as it is."""
        path = Path(os.fspath(full_path)).resolve()
        if path.suffix == ".html" and path.parent == self.web_dir and status_code == 200:
            return render_page(Request(scope), self.web_dir, path.name)
        return super().file_response(full_path, stat_result, scope, status_code)
