"""No error quarters sends is English prose under a generic code: every construction of a
QuartersError subclass (or an HTTPException) with a detail names a catalogue ``code=``, and the
analysis core raises coded ``InvalidValue`` rather than a ``ValueError`` with a sentence.

The scan reads ``src/quarters`` with ``ast``, so a new code-less error fails here before it
reaches a page, a report or the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "quarters"
ROOTS = {"QuartersError", "HTTPException"}

# Files allowed some old-form errors (file: (ceiling, reason)); none are left.
ALLOWED_FILES: dict[str, tuple[int, str]] = {}
# Calls whose arguments are not a detail.
ALLOWED_CALLS = {
    "BodyTooLarge": "its arguments are the kind and the limit; the handler answers with the "
                    "coded problem request.<kind>_too_large (api/limits.py)",
}
# Plain ValueErrors that never reach a person.
ALLOWED_VALUE_ERRORS = {
    ("cql2.py", "queryable"): "queryables are defined in code: an unknown type is a "
                              "programming error, never a user's",
    ("imports/indicator_tables.py", "not finite"): "caught by its one caller, which reports "
                                                   "the coded row problem "
                                                   "indicators.not_a_number",
}


def _trees() -> dict[str, ast.Module]:
    return {str(p.relative_to(SRC)): ast.parse(p.read_text(encoding="utf-8"))
            for p in sorted(SRC.rglob("*.py"))}


TREES = _trees()


def _name(node: ast.expr) -> str:
    return node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")


def error_classes() -> set[str]:
    """QuartersError, HTTPException and every class of src/quarters derived from them."""
    bases: dict[str, set[str]] = {}
    for tree in TREES.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases.setdefault(node.name, set()).update(_name(b) for b in node.bases)
    found = set(ROOTS)
    while True:
        more = {c for c, b in bases.items() if c not in found and b & found}
        if not more:
            return found
        found |= more


def plain_errors() -> list[tuple[str, int, str]]:
    """(file, line, call) of every error built with a detail and without ``code=``."""
    classes = error_classes()
    out = []
    for where, tree in TREES.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or _name(node.func) not in classes:
                continue
            keywords = {k.arg for k in node.keywords}
            if "code" in keywords or not (node.args or "detail" in keywords):
                continue
            if _name(node.func) in ALLOWED_CALLS:
                continue
            out.append((where, node.lineno, ast.unparse(node)[:120]))
    return out


def _message(call: ast.Call) -> str | None:
    """The text of a ValueError's first argument (the literal start of an f-string)."""
    if not call.args:
        return None
    arg = call.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.JoinedStr):
        return "".join(v.value for v in arg.values if isinstance(v, ast.Constant))
    return ast.unparse(arg)


def plain_value_errors() -> list[tuple[str, int, str]]:
    """(file, line, message) of every ``raise ValueError("…")`` with a message."""
    out = []
    for where, tree in TREES.items():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)
                    and _name(node.exc.func) == "ValueError"):
                continue
            message = _message(node.exc)
            if message is None:
                continue
            if any(where == f and message.startswith(start)
                   for f, start in ALLOWED_VALUE_ERRORS):
                continue
            out.append((where, node.lineno, message[:80]))
    return out


def test_the_scan_knows_the_error_classes():
    classes = error_classes()
    assert {"NotFound", "InvalidParameter", "ImportRefused", "InvalidValue", "CatalogueError",
            "FetchError", "SetupError", "BodyTooLarge"} <= classes
    assert "ValueError" not in classes


def test_the_scan_finds_an_old_form_error():
    # the rules of this file on a sample, so the scan cannot silently find nothing
    sample = ast.parse('raise NotFound(f"no edition {key!r}")\n'
                       'raise NotFound(code="edition.unknown", params={"key": key})\n'
                       'raise ValueError("weights must be finite")\n')
    calls = [n for n in ast.walk(sample) if isinstance(n, ast.Call)]
    old = [c for c in calls if not any(k.arg == "code" for k in c.keywords)
           and _name(c.func) in error_classes()]
    assert len(old) == 1 and ast.unparse(old[0]).startswith("NotFound(f")
    assert _message(calls[-1]) == "weights must be finite"


def test_every_error_with_a_detail_names_a_code():
    found = plain_errors()
    by_file: dict[str, list] = {}
    for where, line, call in found:
        by_file.setdefault(where, []).append(f"{where}:{line}: {call}")
    unexpected = [site for where, sites in by_file.items() if where not in ALLOWED_FILES
                  for site in sites]
    assert not unexpected, "errors without code= (give them a catalogue code):\n" + \
        "\n".join(unexpected)
    for where, (ceiling, reason) in ALLOWED_FILES.items():
        assert reason
        assert len(by_file.get(where, [])) <= ceiling, (where, by_file.get(where))


def test_no_value_error_with_a_sentence():
    found = plain_value_errors()
    assert not found, "ValueError with a message (raise a coded InvalidValue instead):\n" + \
        "\n".join(f"{w}:{n}: {m}" for w, n, m in found)
