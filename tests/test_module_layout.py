"""The module layout a newcomer relies on: data goes in through quarters.imports, indicators
live in quarters.indicators, source records in quarters.sources, and no module of the package
imports in a circle (function-level imports count too)."""

from __future__ import annotations

import ast
from pathlib import Path

import quarters

ROOT = Path(quarters.__file__).parent
DATA_SIDE = ("quarters.indicators", "quarters.imports", "quarters.sources", "quarters.profiles",
             "quarters.statunits")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module → the quarters modules it imports (anywhere in the file)."""
    modules = {module_name(p): p for p in ROOT.rglob("*.py") if "migrations" not in p.parts}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # ``from pkg import submodule`` leans on the submodule, not on the package's face
                subs = [f"{node.module}.{a.name}" for a in node.names]
                targets = [t for t in subs if t in modules]
                if len(targets) < len(subs):
                    targets.append(node.module)
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def cycles_through(graph: dict[str, set[str]], start: str) -> list[list[str]]:
    """Import paths that lead from ``start`` back to it."""
    found, stack = [], [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for nxt in graph[node]:
            if nxt == start:
                found.append(path + [start])
            elif nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, path + [nxt]))
    return found


def test_the_data_side_has_no_import_circle():
    graph = import_graph()
    data_side = [m for m in graph if m.startswith(DATA_SIDE)]
    assert "quarters.indicators.computed" in data_side and "quarters.imports.boundaries" in data_side
    circles = {m: cycles_through(graph, m)[:1] for m in data_side if cycles_through(graph, m)}
    assert circles == {}


def test_no_module_of_the_package_imports_in_a_circle():
    graph = import_graph()
    assert {"quarters.measures", "quarters.transfer_profile", "quarters.api.ogc_openapi",
            "quarters.api.routes.features"} <= set(graph)
    assert "quarters.measures" in graph["quarters.transfer_profile"]
    circles = {m: cycles_through(graph, m)[:1] for m in graph if cycles_through(graph, m)}
    assert circles == {}


def test_the_old_module_names_are_gone_and_every_import_module_is_in_one_package():
    for old in ("indicators.py", "ingest.py", "importing.py", "loading.py", "seed.py",
                "measure_io.py"):
        assert not (ROOT / old).exists(), old
    assert sorted(p.stem for p in (ROOT / "imports").glob("*.py")) == [
        "__init__", "boundaries", "data_load", "indicator_tables", "measure_files", "seed"]


def test_source_records_are_written_in_one_place():
    writers = sorted(module_name(p) for p in ROOT.rglob("*.py") if "migrations" not in p.parts
                     and "INSERT INTO sources" in p.read_text(encoding="utf-8"))
    assert writers == ["quarters.sources"]
