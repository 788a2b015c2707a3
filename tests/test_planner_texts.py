"""The planner's scripts hold no text of their own: every word comes from the catalogue
(web/i18n/{de,en}.json, keys planner.*), so /planner.html?lang=en is English throughout.
The browser side of it: tests/test_planner_browser.py scans the English page for German."""

from __future__ import annotations

import re
from pathlib import Path

JS = Path(__file__).resolve().parent.parent / "web" / "js"
# Values of the data, not words of the page: the district states of a transfer profile.
DATA_VALUES = {"geprüft", "übertragen"}


def literals(code: str) -> list[str]:
    """The string literals of a script (comments removed first; they may be German)."""
    code = re.sub(r"/\*[\s\S]*?\*/|(?<![:\"'`])//.*", "", code)
    return re.findall(r'"((?:[^"\\\n]|\\.)*)"|\'((?:[^\'\\\n]|\\.)*)\'|`((?:[^`\\]|\\.)*)`', code)


def test_planner_scripts_have_no_german_text():
    found = {}
    for path in sorted(JS.glob("planner*.js")):
        texts = {"".join(parts) for parts in literals(path.read_text(encoding="utf-8"))}
        german = sorted(s for s in texts if re.search(r"[äöüÄÖÜß]", s) and s not in DATA_VALUES)
        if german:
            found[path.name] = german
    assert found == {}


def test_the_planner_template_has_no_text_outside_the_catalogue():
    """Every text of web/planner.html is rendered from a key ({{ t(…) }} or data-i18n)."""
    html = (JS.parent / "planner.html").read_text(encoding="utf-8")
    html = re.sub(r"\{% block body_attrs %\}.*?\{% endblock %\}", "", html)  # attributes
    html = re.sub(r"\{#[\s\S]*?#\}|\{%[\s\S]*?%\}|\{\{[\s\S]*?\}\}|<!--[\s\S]*?-->", "", html)
    keyed = re.compile(r"<(\w+)\b[^<>]*\sdata-i18n=\"[^\"]+\"[^<>]*>[^<]*</\1>")
    html = keyed.sub("", html)
    words = [w for w in re.sub(r"<[^>]*>", " ", html).split() if re.search(r"[A-Za-zÄÖÜäöüß]{2}", w)]
    assert words == []
