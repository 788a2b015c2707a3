"""The server's problem and warning codes and the one catalogue (web/i18n/{de,en}.json).

Every code Python raises or notes exists in both catalogues with the same placeholders, and the
call sites fill in every placeholder; every ``problem.*``, ``warning.*`` and ``server.*`` key
is used by Python. (The pages' own keys are checked by the web tests.)
"""

from __future__ import annotations

import ast
import json
import typing
from pathlib import Path

import pydantic_core
import pytest

from quarters.messages import CATALOGUE_DIR, placeholders

SRC = Path(__file__).resolve().parents[1] / "src" / "quarters"
PREFIXES = ("problem.", "warning.", "server.")
CATALOGUES = {lang: json.loads((CATALOGUE_DIR / f"{lang}.json").read_text(encoding="utf-8"))
              for lang in ("de", "en")}
# Codes Python builds from a value instead of writing them out (see the named module).
DYNAMIC = {
    "problem.request.body_too_large", "problem.request.upload_too_large",  # api/limits.py
}


def _own(lang: str) -> dict:
    return {k: v for k, v in CATALOGUES[lang].items() if k.startswith(PREFIXES)}


def _name(func: ast.expr) -> str:
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def _str(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


# call name → (index of the code argument, key prefix)
CALLS = {"item": (1, "problem."), "error_item": (1, "problem."), "_rule": (1, "problem."),
         "_problem": (1, "problem."), "_bad": (0, "problem.cql2."),
         "GeometryProblem": (1, "problem.geometry."), "Note": (0, "warning."),
         "custom_error": (0, "problem."), "coded": (1, "problem."),
         "coded_bytes": (2, "problem."), "t": (0, "")}


def _params_of(call: ast.Call, name: str) -> set[str] | None:
    """The parameter names a call passes, or None when they are not all written out."""
    if name in ("item", "error_item", "_rule", "_problem", "_bad", "GeometryProblem", "Note",
                "coded", "coded_bytes", "t"):
        if any(k.arg is None for k in call.keywords):
            return None
        skip = {"headers", "extra", "kind"}
        return {k.arg for k in call.keywords if k.arg not in skip}
    params = next((k.value for k in call.keywords if k.arg == "params"), None)
    if name == "custom_error" and len(call.args) > 1:
        params = call.args[1]
    if params is None:
        return set()
    if isinstance(params, ast.Dict) and all(_str(k) for k in params.keys):
        return {_str(k) for k in params.keys}
    return None


def _scan() -> tuple[dict[str, list[tuple[str, set[str] | None]]], set[str]]:
    """(key → [(where, params given)], every string literal) over the Python sources (a
    literal of cql2.py also as ``cql2.<literal>``: its codes are chosen as ``_bad(code)``)."""
    used: dict[str, list[tuple[str, set[str] | None]]] = {}
    literals: set[str] = set()
    cql2: set[str] = set()
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = str(path.relative_to(SRC))
        for node in ast.walk(tree):
            if _str(node):
                literals.add(node.value)
                if path.name == "cql2.py":
                    cql2.add(f"cql2.{node.value}")
            if isinstance(node, ast.ClassDef) and path.name == "errors.py":
                for stmt in node.body:
                    if isinstance(stmt, ast.Assign) and _name(stmt.targets[0]) == "kind":
                        used.setdefault(f"problem.title.{stmt.value.value}", [])
            if not isinstance(node, ast.Call):
                continue
            name = _name(node.func)
            code_kw = _str(next((k.value for k in node.keywords if k.arg == "code"), None))
            if name in ("coded", "coded_bytes"):  # the error kind names the title
                kind = _str(next((k.value for k in node.keywords if k.arg == "kind"), None))
                kind = kind or (_str(node.args[3]) if len(node.args) > 3 else None)
                if kind:
                    used.setdefault(f"problem.title.{kind}", [])
            if code_kw and "." in code_kw:
                used.setdefault(f"problem.{code_kw}", []).append((where, _params_of(node, "")))
            elif name in CALLS and len(node.args) > CALLS[name][0]:
                code = _str(node.args[CALLS[name][0]])
                index, prefix = CALLS[name]
                if code is None or (name == "t" and not code.startswith(PREFIXES)):
                    continue
                used.setdefault(prefix + code, []).append((where, _params_of(node, name)))
    return used, literals | cql2


USED, LITERALS = _scan()
PYDANTIC_TYPES = set(typing.get_args(pydantic_core.core_schema.ErrorType))


def test_both_catalogues_have_the_same_server_keys_and_placeholders():
    de, en = _own("de"), _own("en")
    assert len(de) > 200  # the block is there
    assert sorted(de) == sorted(en)
    for key, text in de.items():
        assert placeholders(text) == placeholders(en[key]), key
        if isinstance(text, dict):
            assert set(text) == set(en[key]) and "other" in text, key


def test_every_code_python_uses_exists_in_both_catalogues_with_its_placeholders():
    assert len(USED) > 150
    for key, sites in USED.items():
        for lang in ("de", "en"):
            assert key in CATALOGUES[lang], f"{key} ({lang}) used in {sites}"
        wanted = placeholders(CATALOGUES["de"][key])
        for where, given in sites:
            if given is not None:
                assert wanted <= given, f"{key} in {where}: placeholders {wanted}, given {given}"


def _is_used(key: str) -> bool:
    if key in USED or key in DYNAMIC or key in LITERALS:
        return True
    code = key.split(".", 1)[1]
    if key.startswith("problem.validation.") and code.split(".", 1)[1] in PYDANTIC_TYPES:
        return True  # pydantic's own error types (quarters.validation.pydantic_items)
    return code in LITERALS  # a code named in code, e.g. "validation.invalid"


def test_every_server_key_of_the_catalogue_is_used():
    unused = [k for k in _own("de") if not _is_used(k)]
    assert not unused, unused


@pytest.mark.parametrize("lang", ["de", "en"])
def test_no_server_text_is_empty_or_left_in_the_other_language(lang):
    other = "en" if lang == "de" else "de"
    same = [k for k, v in _own(lang).items() if v == _own(other)[k] and placeholders(v) != {"text"}
            and k not in ("problem.title.error",)]
    assert all(_own(lang).values())
    # a few texts are the same in both languages (codes, names); prose never is
    assert len(same) <= 3, same
