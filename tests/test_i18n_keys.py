"""The message catalogues (web/i18n/de.json, en.json) and the pages agree.

- both catalogues have the same keys, plural forms and placeholders;
- every key a page uses exists: ``data-i18n`` and ``data-i18n-attr`` in web/*.html and the
  chrome template, ``t("…")`` and the page ``title`` in the templates, ``t("…")`` and key strings in
  every script under web/js;
- no catalogue key is unused (keys of a family read with a computed suffix, ``label("status",
  …)`` or ``t(`mod.decision_${…}`)``, count as used by their prefix). The ``problem.*`` and
  ``warning.*`` and ``server.*`` keys belong to the server's catalogue and have a test of their own;
- the keys Python writes out itself (``report.*`` of the report, ``cli.*`` of the command line):
  every such string in src/quarters names a key of both catalogues, and counts as a use. The
  ``cli.help.*`` keys of the CLI's ``--help`` are named by command path; tests/test_cli_help.py
  checks them against the commands.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

WEB = Path(__file__).resolve().parent.parent / "web"
SRC = WEB.parent / "src" / "quarters"
FILE_SUFFIXES = {"html", "csv", "gpkg", "py"}  # "report.html" is a file name, not a key
OWN_TEST = ("problem.", "warning.", "server.")  # the server's catalogue (tests/test_catalogue_codes.py)
# the CLI's --help, keyed by command path (tests/test_cli_help.py walks the commands)
OWN_TEST += ("cli.help.",)


def catalogue(lang: str) -> dict:
    return json.loads((WEB / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))


def templates() -> list[Path]:
    return sorted(WEB.glob("*.html")) + sorted((WEB / "templates").glob("*.html"))


def scripts() -> list[Path]:
    return sorted((WEB / "js").rglob("*.js"))


def used(known: set[str]) -> tuple[set[str], set[str]]:
    """(keys the pages name, prefixes of keys they compute)."""
    keys: set[str] = set()
    prefixes: set[str] = set()
    for path in templates():
        html = path.read_text(encoding="utf-8")
        keys |= set(re.findall(r'data-i18n="([^"{}]+)"', html))
        for attrs in re.findall(r'data-i18n-attr="([^"]+)"', html):
            keys |= {pair.split(":")[1].strip() for pair in attrs.split(";")}
        keys |= set(re.findall(r"""\bt\(\s*["']([^"']+)["']\s*\)""", html))
        keys |= set(re.findall(r'set page = \{"title": "([^"]+)"', html))
        # keys handed to the macros of templates/forms.html (forms.field("id", "key", …))
        keys |= set(re.findall(r'"([a-z_]+(?:\.[a-z0-9_]+)+)"', html)) & known
        prefixes |= set(re.findall(r"""\bt\(\s*["']([\w.]+)["']\s*~""", html))
    for path in scripts():
        js = path.read_text(encoding="utf-8")
        named = set(re.findall(r'\bt\(\s*"([^"]+)"', js))
        keys |= {k for k in named if not k.endswith(".")}  # t("x." + code): a prefix
        prefixes |= {k for k in named if k.endswith(".")}
        # keys handed around as values ({title: "x.y"}, [["mon.total.due", …]])
        keys |= set(re.findall(r'"([a-z_]+(?:\.[a-z0-9_]+)+)"', js)) & known
        prefixes |= {f"{p}." for p in re.findall(r'\blabel\(\s*"([^"]+)"', js)}
        prefixes |= set(re.findall(r"\bt\(\s*`([\w.]+)\$\{", js))
    return keys, prefixes


def python_keys() -> set[str]:
    """Every string literal of the Python sources that looks like a report./cli. key."""
    found: set[str] = set()
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and re.fullmatch(r"(?:report|cli)\.[a-z0-9_]+", node.value)
                    and node.value.split(".")[1] not in FILE_SUFFIXES):
                found.add(node.value)
    return found


def test_catalogues_have_the_same_keys_forms_and_placeholders():
    de, en = catalogue("de"), catalogue("en")
    assert sorted(set(de) ^ set(en)) == []
    for key in de:
        assert isinstance(de[key], type(en[key])), key
        if isinstance(de[key], dict):
            assert set(de[key]) == set(en[key]) and "other" in de[key], key
        placeholders = lambda v: set(re.findall(r"\{(\w+)\}", json.dumps(v)))  # noqa: E731
        assert placeholders(de[key]) == placeholders(en[key]), key


def test_every_key_a_page_uses_is_in_both_catalogues():
    de, en = catalogue("de"), catalogue("en")
    keys, prefixes = used(set(de))
    assert len(keys) > 300  # the scan finds the pages' keys at all
    assert sorted(k for k in keys if k not in de) == []
    assert sorted(k for k in keys if k not in en) == []
    for prefix in prefixes:
        assert any(k.startswith(prefix) for k in de), prefix
    for status in ("idee", "geplant", "in_umsetzung", "abgeschlossen", "eingestellt"):
        assert f"status.{status}" in de and f"status.{status}" in en


def test_every_key_python_names_is_in_both_catalogues():
    de, en = catalogue("de"), catalogue("en")
    keys = python_keys()
    assert {k for k in keys if k.startswith("report.")} and {k for k in keys
                                                            if k.startswith("cli.")}
    assert sorted(k for k in keys if k not in de) == []
    assert sorted(k for k in keys if k not in en) == []


def test_no_catalogue_key_is_unused():
    de = catalogue("de")
    keys, prefixes = used(set(de))
    keys |= python_keys()
    unused = sorted(k for k in de if k not in keys and not k.startswith(OWN_TEST)
                    and not any(k.startswith(p) for p in prefixes))
    assert unused == []


def test_the_chrome_keys_are_used_by_the_template():
    """The navigation and language switch of every page come from the one template."""
    chrome = (WEB / "templates" / "chrome.html").read_text(encoding="utf-8")
    assert 't("nav." ~ key)' in chrome and "nav.language" in chrome and "skip.main" in chrome
    for page in sorted(WEB.glob("*.html")):
        html = page.read_text(encoding="utf-8")
        assert html.startswith('{% extends "templates/chrome.html" %}'), page.name
        for copied in ('class="main-nav"', 'class="lang-switch"', "<header class=\"site-header",
                       "<footer", "<html", "<head>"):
            assert copied not in html, (page.name, copied)


def test_public_scripts_hold_no_text_of_their_own():
    """German text in a public script would be a string outside the catalogues."""
    public = ["api.js", "i18n.js", "main.js", "map.js", "monitoring.js"] + sorted(
        p.name for p in (WEB / "js").glob("public-*.js"))
    for name in public + [p.relative_to(WEB / "js").as_posix() for p in (WEB / "js" / "core").glob("*.js")]:
        code = (WEB / "js" / name).read_text(encoding="utf-8")
        code = re.sub(r"//.*|/\*[\s\S]*?\*/", "", code)  # comments may be German
        assert not re.search(r"[äöüÄÖÜß]", code), name
