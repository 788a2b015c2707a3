"""One map module (web/js/map.js): every page's map is made, given its background tiles and
attributions, and coloured by status through it; no page module repeats that code."""

from __future__ import annotations

import re
from pathlib import Path

WEB_JS = Path(__file__).resolve().parent.parent / "web" / "js"
MAP_PAGES = ("main.js", "planner-map.js", "analysis-map.js", "public-measure.js",
             "public-idea.js")
STATUS_HEX = re.compile(r"\b(idee|geplant|in_umsetzung|abgeschlossen|eingestellt)\s*:\s*\"#[0-9a-f]{3,6}\"",
                        re.I)


def source(name: str) -> str:
    return (WEB_JS / name).read_text(encoding="utf-8")


def test_maps_tiles_and_attributions_come_from_map_js():
    for name in MAP_PAGES:
        text = source(name)
        assert 'from "./map.js"' in text, name
        for call in ("L.map(", "L.tileLayer(", "attributionControl.addAttribution("):
            assert call not in text, f"{name} repeats {call} (belongs in map.js)"
    shared = source("map.js")
    for export in ("export function createMap", "export function addTileLayer",
                   "export async function addBaseMap", "export function addSourceAttributions",
                   "export function applyStatusColours", "export function statusColour",
                   "export function vectorTileLayer"):
        assert export in shared, export


def test_status_colours_are_defined_once():
    defining = [p.name for p in WEB_JS.glob("*.js") if STATUS_HEX.search(p.read_text("utf-8"))]
    assert defining == []  # quarters/vocabulary.py defines them, /api/config serves them
    # the map module reads /api/config's colours (either form)
    shared = source("map.js")
    assert "config?.status_colours" in shared and "entry.colour ?? entry.color" in shared
