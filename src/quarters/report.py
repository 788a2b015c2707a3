"""Transferability report: one self-contained HTML file (folium map, ranked table, charts,
method, sources and licences) plus CSV and GeoPackage of the result.

The HTML works offline: folium's CDN links are removed and Leaflet (CSS with its images as
data URIs, and JS) is inlined from the npm package in ``web/node_modules/leaflet/dist``. No
background tiles are used unless asked for (``tiles=True`` adds the configured tile server,
which then needs the network). The contributions chart is an inline SVG.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from quarters.errors import SetupError
from quarters.indicators.definitions import DEFAULT_RULE
from quarters.messages import note_text
from quarters.settings import Settings
from quarters.transfer import (
    TransferResult,
    _clean,
    explanation,
    geometries,
    reference_geometry,
    score_classes,
)

Progress = Callable[[str, int, int], None]
SIMPLIFY_M = {"municipalities": 150.0, "counties": 150.0}
COORD_GRID = 1e-5  # ~1 m in degrees: enough for a 1:5,000,000 base map
SEQ = ["#ffffcc", "#c7e9b4", "#7fcdbb", "#41b6c4", "#1d91c0", "#225ea8", "#0c2c84"]  # YlGnBu
SEQ_IND = ["#fff5eb", "#fdd0a2", "#fdae6b", "#fd8d3c", "#f16913", "#d94801", "#8c2d04"]
MISSING_COLOR = "#d9d9d9"
IND_COLORS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d",
              "#666666", "#1f78b4", "#b2df8a", "#fb9a99", "#cab2d6"]
METHOD_DE = {"zscore": "z-Standardisierung (Mittelwert, Standardabweichung der Kandidaten)",
             "robust": "robuste Standardisierung (Median, 1,4826 · MAD der Kandidaten)"}
METRIC_DE = {"euclidean": "gewichtete euklidische Distanz",
             "mahalanobis": "Mahalanobis-Distanz (berücksichtigt Korrelationen der Indikatoren)"}
MISSING_DE = {"drop_indicator": "Kandidaten mit fehlenden Werten werden ausgeschlossen "
                                "(nichts wird ergänzt oder auf 0 gesetzt)",
              "skip_pairwise": "Kandidaten werden auf den vorhandenen Indikatoren verglichen "
                               "(Gewichte je Kandidat neu normiert)"}


def _palette(colors: list[str], k: int) -> list[str]:
    if k <= 0:
        return []
    idx = np.linspace(0, len(colors) - 1, k).round().astype(int)
    return [colors[i] for i in idx]


def leaflet_assets(settings: Settings) -> tuple[str, str]:
    """(CSS with images inlined, JS) of the Leaflet npm package."""
    dist = settings.web_dir / "node_modules" / "leaflet" / "dist"
    css_path, js_path = dist / "leaflet.css", dist / "leaflet.js"
    if not css_path.exists() or not js_path.exists():
        raise SetupError(f"Leaflet not found in {dist}: run 'make setup' (npm ci in web/)")
    css = css_path.read_text(encoding="utf-8")

    def inline(match: re.Match) -> str:
        img = dist / match.group(1)
        if not img.exists():
            return match.group(0)
        data = base64.b64encode(img.read_bytes()).decode()
        return f"url(data:image/png;base64,{data})"

    css = re.sub(r"url\((images/[^)]+\.png)\)", inline, css)
    return css, js_path.read_text(encoding="utf-8")


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _num(x: Any, digits: int = 1) -> str:
    """German number format (narrow no-break space as thousands separator)."""
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    from quarters.analysis.classify import format_number

    return format_number(float(x), digits, "de")


def _digits(values: pd.Series) -> int:
    v = values.dropna().abs()
    if v.empty:
        return 1
    m = float(v.median())
    return 0 if m >= 1000 else 1 if m >= 10 else 2 if m >= 0.1 else 4


def _script_json(obj: Any) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")


# ----------------------------------------------------------------------------------------------
# data for the map
# ----------------------------------------------------------------------------------------------
def _map_data(conn: Connection, res: TransferResult, scheme: str, k: int
              ) -> tuple[str, list[dict[str, Any]], list[float]]:
    """GeoJSON text of all units with ranks/classes, the variables for the map, bounds."""
    from quarters.analysis.classify import classify

    level = res.level
    geo = geometries(conn, level, simplify_m=SIMPLIFY_M.get(level.table, 0.0))
    rk = res.ranking
    variables = []
    sc = score_classes(res, scheme, k)["classification"]
    score_cls = classify(rk["score"], scheme, k)["classes"]
    variables.append({"key": "score", "label": "Ähnlichkeit (Score 0–100)",
                      "colors": _palette(SEQ, sc["k"]), "labels": sc["labels"]})
    classes = {"score": score_cls.reindex(geo.index).fillna(-1).astype(int).to_numpy()}
    all_values = res.result.values.reindex(geo.index)
    raw_all = res.ranking  # values of ranked units; excluded ones come from the core's input
    for d in res.indicators:
        if d.key not in res.result.values.columns:
            continue
        series = all_values[d.key]
        c = classify(series, scheme, k)
        classes[d.key] = c["classes"].to_numpy()
        variables.append({"key": d.key, "label": f"{d.name_de} ({d.unit})",
                          "colors": _palette(SEQ_IND, c["k"]), "labels": c["labels"]})
    ranks = rk["rank"].reindex(geo.index)
    scores = rk["score"].reindex(geo.index)
    excluded = set(res.excluded["code"]) if len(res.excluded) else set()
    top = set(res.top.index)
    geoms = shapely.set_precision(geo.geometry.to_numpy(), COORD_GRID)
    feats = []
    for i, (code, name, g) in enumerate(zip(geo.index, geo["name"], geoms, strict=True)):
        props = {"c": code, "n": name,
                 "r": None if pd.isna(ranks.iloc[i]) else int(ranks.iloc[i]),
                 "s": None if pd.isna(scores.iloc[i]) else round(float(scores.iloc[i]), 1),
                 "k": [int(classes[v["key"]][i]) for v in variables],
                 "x": 1 if code in excluded else 0, "t": 1 if code in top else 0,
                 "f": 1 if code == res.reference.unit_id else 0}
        feats.append('{"type":"Feature","properties":' + _script_json(props)
                     + ',"geometry":' + shapely.to_geojson(g) + "}")
    del raw_all
    bounds = geo.total_bounds.tolist() if len(geo) else _city_bounds(conn, level)
    return '{"type":"FeatureCollection","features":[' + ",".join(feats) + "]}", variables, bounds


def _city_bounds(conn: Connection, level: Any) -> list[float]:
    """Bounds (CRS84) of the cities of a level without outlines: the map shows the city only."""
    box = conn.execute(text(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent("
        "ST_Transform(m.geom, 4326)) AS e FROM municipalities m WHERE m.ags IN (SELECT city_ags "
        "FROM statistical_units WHERE level = :l)) b"), {"l": level.name}).one()
    return [float(v) for v in box] if box[0] is not None else [5.9, 47.3, 15.0, 55.1]


MAP_JS = """
(function () {
  var map = %(map)s;
  var data = %(data)s;
  var vars = %(vars)s;
  var ref = %(ref)s;
  var current = 0;
  function colour(p) {
    var c = p.k[current];
    return c < 0 ? "%(missing)s" : vars[current].colors[c];
  }
  function style(f) {
    var p = f.properties;
    return {fillColor: colour(p), fillOpacity: p.x ? 0.35 : 0.8,
            color: p.f ? "#d7191c" : (p.t ? "#111111" : "#ffffff"),
            weight: p.f ? 3 : (p.t ? 1.6 : 0.25), opacity: 1};
  }
  var layer = L.geoJSON(data, {style: style, onEachFeature: function (f, l) {
    l.bindTooltip(function () {
      var p = f.properties, d = document.createElement("div");
      var b = document.createElement("strong"); b.textContent = p.n + " (" + p.c + ")";
      d.appendChild(b);
      var t = document.createElement("div");
      t.textContent = p.x ? "ausgeschlossen (fehlende Werte)" :
        ("Rang " + p.r + " · Score " + String(p.s).replace(".", ","));
      d.appendChild(t);
      var c = p.k[current];
      var v = document.createElement("div");
      v.textContent = vars[current].label + ": " + (c < 0 ? "kein Wert" : vars[current].labels[c]);
      d.appendChild(v);
      return d;
    }, {sticky: true});
  }}).addTo(map);
  window.quartersLayer = layer;
  if (ref) {
    var hl = L.geoJSON(ref, {style: {color: "#d7191c", weight: 3, fill: false, dashArray: "6 4"},
      pointToLayer: function (f, ll) { return L.circleMarker(ll, {radius: 8, color: "#d7191c",
        weight: 3, fillOpacity: 0.6}); }}).addTo(map);
    hl.bindTooltip("Referenz: " + %(refname)s);
  }
  var legend = L.control({position: "bottomright"});
  legend.onAdd = function () {
    var div = L.DomUtil.create("div", "q-legend");
    L.DomEvent.disableClickPropagation(div);
    var sel = document.createElement("select");
    sel.id = "q-variable";
    vars.forEach(function (v, i) {
      var o = document.createElement("option"); o.value = i; o.textContent = v.label;
      sel.appendChild(o);
    });
    div.appendChild(sel);
    var list = document.createElement("div"); div.appendChild(list);
    function draw() {
      list.textContent = "";
      vars[current].labels.forEach(function (lab, i) {
        var row = document.createElement("div");
        var sw = document.createElement("span"); sw.className = "q-swatch";
        sw.style.background = vars[current].colors[i];
        row.appendChild(sw); row.appendChild(document.createTextNode(lab)); list.appendChild(row);
      });
      var row = document.createElement("div");
      var sw = document.createElement("span"); sw.className = "q-swatch";
      sw.style.background = "%(missing)s";
      row.appendChild(sw); row.appendChild(document.createTextNode("kein Wert / ausgeschlossen"));
      list.appendChild(row);
    }
    sel.addEventListener("change", function () {
      current = +sel.value; layer.setStyle(style); draw();
    });
    draw();
    return div;
  };
  legend.addTo(map);
  map.options.zoomSnap = 0.25;
  map.fitBounds([[%(miny)f, %(minx)f], [%(maxy)f, %(maxx)f]]);
  map.attributionControl.setPrefix("Leaflet");
  %(attributions)s
})();
"""

PAGE_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       line-height: 1.4; }
.q-page { max-width: 1200px; margin: 0 auto; padding: 0 16px 40px; }
.q-head { max-width: 1200px; margin: 0 auto; padding: 16px 16px 8px; }
.q-head h1 { font-size: 1.5rem; margin: 0 0 4px; }
.q-head p { margin: 2px 0; }
.folium-map { max-width: 1200px; margin: 0 auto; border: 1px solid #ccc; }
table.q-table { border-collapse: collapse; width: 100%; font-size: 0.88rem; }
table.q-table th, table.q-table td { border-bottom: 1px solid #ddd; padding: 4px 6px;
       text-align: left; vertical-align: top; }
table.q-table td.n { text-align: right; white-space: nowrap; }
table.q-table td:last-child { min-width: 260px; }
table.q-table tr.q-ref { background: #fde0dd; }
table.q-table tr.q-same td:first-child { border-left: 4px solid #2b8cbe; }
.q-legend { background: #fff; padding: 6px 8px; border-radius: 4px; font-size: 12px;
            box-shadow: 0 1px 4px rgba(0,0,0,.3); max-width: 260px; }
.q-legend select { max-width: 240px; margin-bottom: 4px; }
.q-swatch { display: inline-block; width: 14px; height: 14px; margin-right: 6px;
            vertical-align: middle; border: 1px solid #999; }
.q-warn { background: #fff7e6; border-left: 4px solid #f0a202; padding: 6px 10px; }
.q-small { font-size: 0.85rem; color: #555; }
h2 { font-size: 1.2rem; margin-top: 28px; border-bottom: 2px solid #225ea8; }
"""


# ----------------------------------------------------------------------------------------------
# page parts
# ----------------------------------------------------------------------------------------------
def _approx_note(res: TransferResult) -> str:
    """How many of the ranked units (and whether the reference) are approximations."""
    n = int(res.ranking["approximate"].sum())
    total = len(res.ranking)
    if not n and not res.reference.approximate:
        return ""
    which = ("alle" if n == total else f"{n} von {total}") if n else "keine"
    ref = (" Die Werte bzw. der Umriss der Referenz sind genähert oder interpoliert."
           if res.reference.approximate else "")
    return (f"<p id=\"q-approx\" class=\"q-small\"><strong>Näherungen (*):</strong> {which} "
            f"der bewerteten {_esc(res.level.label_de)} haben genäherte Umrisse oder "
            f"interpolierte Werte.{ref}</p>")


OP_TEXT = {"<": "<", "<=": "≤", ">": ">", ">=": "≥", "=": "=", "!=": "≠"}


def _condition(res: TransferResult, cond: dict[str, Any], actual: bool = False) -> str:
    """„SGB-II-Quote ≤ 12“ (with the candidate's value when ``actual``)."""
    names = {d.key: d.name_de for d in res.indicators}
    text = (f"{names.get(cond['indicator'], cond['indicator'])} "
            f"{OP_TEXT.get(cond['op'], cond['op'])} {_num(cond['value'], 2)}")
    if actual:
        value = cond.get("actual")
        text += f" (Wert: {'keiner' if value is None else _num(value, 2)})"
    return text


def _preconditions_note(res: TransferResult) -> str:
    """A measure's preconditions: which they are and how many candidates meet them."""
    pre = res.reference.preconditions
    if not pre:
        return ""
    conds = "; ".join(_esc(_condition(res, c)) for c in pre["conditions"])
    return (f"<p id=\"q-preconditions\"><strong>Vorbedingungen der Maßnahme "
            f"{int(pre['measure_id'])}:</strong> {conds}. {pre['candidates_meeting']} "
            f"Kandidaten erfüllen alle und stehen vorn (✔), {pre['candidates_failing']} nicht "
            "(✗; innerhalb beider Gruppen nach Ähnlichkeit).</p>")


def _header(res: TransferResult, lang: str = "de") -> str:
    ref = res.reference
    w = ", ".join(f"{_esc(d.name_de)} ({_num(res.result.weights.get(d.key, 0.0) * 100, 0)} %)"
                  for d in res.indicators if d.key in res.result.indicators)
    return (
        '<header class="q-head">'
        f"<h1>Übertragbarkeit: Welche {_esc(res.level.label_de)} ähneln "
        f"{_esc(ref.name)}?</h1>"
        f"<p><strong>Referenz:</strong> {_esc(ref.name)} ({_esc(ref.spec)})"
        + (f" – {_esc(note_text(ref.note, lang))}" if ref.note else "") + "</p>"
        f"<p><strong>Kandidaten:</strong> {len(res.ranking)} {_esc(res.level.label_de)} "
        f"(Ebene {_esc(res.level.name)}), {len(res.excluded)} ausgeschlossen</p>"
        + (f"<p id=\"q-filter\"><strong>Filter (CQL2):</strong> <code>{_esc(res.params.filter)}"
           f"</code> – {res.n_filtered_out} Einheiten nicht darunter</p>"
           if res.params.filter else "")
        + ("<p id=\"q-parts\"><strong>Teil der Referenz (nicht bewertet):</strong> "
           + ", ".join(f"{_esc(p['name'])} ({_esc(p['code'])})" for p in res.part_of_reference)
           + "</p>" if res.part_of_reference else "")
        + _approx_note(res) + _preconditions_note(res) +
        f"<p><strong>Indikatoren (Gewicht):</strong> {w}</p>"
        f"<p class=\"q-small\">Erstellt {datetime.now().strftime('%d.%m.%Y %H:%M')} mit "
        "quarters. Karte: Farbe = Klasse der gewählten Größe (Auswahl unten rechts), rote "
        "Umrandung = Referenz, schwarze Umrandung = beste Treffer.</p></header>")


def _table(res: TransferResult) -> str:
    inds = [d for d in res.indicators if d.key in res.result.indicators]
    digits = {d.key: _digits(res.ranking[f"value_{d.key}"]) for d in inds}
    has_types = "same_type" in res.ranking.columns
    has_sens = "share_in_top" in res.ranking.columns
    has_pre = "meets_preconditions" in res.ranking.columns
    head = ["Rang", "Name", "Schlüssel", "Score", "Perzentil", "Einordnung", "Distanz"]
    head += ["Vorbedingungen"] if has_pre else []
    head += [f"{d.name_de} [{d.unit}]" for d in inds]
    head += (["Typ", "gleicher Typ"] if has_types else []) + (["Stabilität"] if has_sens else [])
    head.append("Begründung")
    rows = []
    ref_vals = res.result.reference_values
    if res.reference.unit_id is None:
        rows.append(
            "<tr class=\"q-ref\"><td class=\"n\">Ref.</td><td>" + _esc(res.reference.name)
            + (" *" if res.reference.approximate else "")
            + "</td><td>" + _esc(res.reference.code) + "</td><td class=\"n\">–</td>"
            "<td class=\"n\">–</td><td></td><td class=\"n\">–</td>"
            + ("<td></td>" if has_pre else "")
            + "".join(f"<td class=\"n\">{_num(ref_vals.get(d.key), digits[d.key])}</td>"
                      for d in inds)
            + ("<td></td><td></td>" if has_types else "") + ("<td></td>" if has_sens else "")
            + "<td>Referenzwerte (externes Profil)</td></tr>")
    for code, r in res.top.iterrows():
        cls = ["q-row"]
        if r["is_reference"]:
            cls.append("q-ref")
        if has_types and r["same_type"]:
            cls.append("q-same")
        text_de = explanation(res, code)["text_de"]
        if r["approximate"]:
            cls.append("q-approx")
        star = ' <abbr title="genähert">*</abbr>' if r["approximate"] else ""
        pct = "–" if pd.isna(r["percentile"]) else _num(r["percentile"], 1)
        band = "" if pd.isna(r["band_de"]) else _esc(r["band_de"])
        cells = [f"<td class=\"n\">{int(r['rank'])}</td>",
                 f"<td>{_esc(r['name'])}{star}</td>",
                 f"<td>{_esc(code)}</td>", f"<td class=\"n\">{_num(r['score'], 1)}</td>",
                 f"<td class=\"n\">{pct}</td>", f"<td>{band}</td>",
                 f"<td class=\"n\">{_num(r['distance'], 3)}</td>"]
        if has_pre:
            cells.append(_precondition_cell(res, r))
        cells += [f"<td class=\"n\">{_num(r[f'value_{d.key}'], digits[d.key])}</td>"
                  for d in inds]
        if has_types:
            cells.append(f"<td>{_esc(r['type_de'])}</td>")
            cells.append(f"<td>{'ja' if r['same_type'] else 'nein'}</td>")
        if has_sens:
            v = r["share_in_top"]
            cells.append(f"<td class=\"n\">{'–' if pd.isna(v) else _num(100 * v, 0) + ' %'}</td>")
        cells.append(f"<td>{_esc(text_de)}</td>")
        rows.append(f"<tr class=\"{' '.join(cls)}\" data-code=\"{_esc(code)}\">"
                    + "".join(cells) + "</tr>")
    return ("<table class=\"q-table\" id=\"ranking\"><thead><tr>"
            + "".join(f"<th>{_esc(h)}</th>" for h in head) + "</tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def _precondition_cell(res: TransferResult, r: pd.Series) -> str:
    if r["is_reference"]:
        return "<td></td>"
    if r["meets_preconditions"]:
        return "<td class=\"q-meets\" data-meets=\"true\">✔ erfüllt</td>"
    failed = "; ".join(_esc(_condition(res, c, actual=True)) for c in r["failed_preconditions"])
    return f"<td class=\"q-fails\" data-meets=\"false\">✗ nicht erfüllt: {failed}</td>"


def contributions_svg(res: TransferResult) -> str:
    """Stacked horizontal bars: contribution of each indicator to distance² per candidate."""
    inds = res.result.indicators
    names = {d.key: d.name_de for d in res.indicators}
    top = res.top[~res.top["is_reference"]]
    if top.empty:
        return "<p>Keine Kandidaten.</p>"
    contrib = top[[f"contrib_{k}" for k in inds]].clip(lower=0).fillna(0.0).to_numpy()
    total = contrib.sum(axis=1)
    scale_max = float(total.max()) if total.max() > 0 else 1.0
    left, bar_w, row_h, top_pad = 230, 620, 22, 10
    legend_rows = (len(inds) + 2) // 3
    height = top_pad + row_h * len(top) + 30 + legend_rows * 18 + 10
    width = left + bar_w + 80
    colors = {k: IND_COLORS[i % len(IND_COLORS)] for i, k in enumerate(inds)}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="contributions" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
             'aria-label="Beiträge der Indikatoren zur Distanz je Kandidat" '
             'style="font: 12px sans-serif">']
    for i, (_code, r) in enumerate(top.iterrows()):
        y = top_pad + i * row_h
        label = f"{int(r['rank'])}. {r['name']}"
        parts.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">'
                     f"{_esc(label[:34])}</text>")
        x = float(left)
        for j, k in enumerate(inds):
            w = bar_w * contrib[i, j] / scale_max
            if w <= 0:
                continue
            share = contrib[i, j] / total[i] if total[i] > 0 else 0
            parts.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
                         f'fill="{colors[k]}"><title>{_esc(names.get(k, k))}: '
                         f"{_num(100 * share, 0)} % von Distanz²</title></rect>")
            x += w
        parts.append(f'<text x="{x + 4:.1f}" y="{y + 14}">{_num(r["score"], 1)}</text>')
    y0 = top_pad + row_h * len(top) + 8
    parts.append(f'<text x="{left}" y="{y0 + 8}" class="q-small">Balkenlänge = Distanz² '
                 "(Summe der Beiträge); Zahl = Score</text>")
    for j, k in enumerate(inds):
        lx = 10 + (j % 3) * 300
        ly = y0 + 22 + (j // 3) * 18
        parts.append(f'<rect x="{lx}" y="{ly - 10}" width="12" height="12" fill="{colors[k]}"/>'
                     f'<text x="{lx + 16}" y="{ly}">{_esc(names.get(k, k))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _method(res: TransferResult, lang: str = "de") -> str:
    p = res.params
    items = [
        f"<li><strong>Standardisierung:</strong> {METHOD_DE[p.method]}; Indikatoren ohne "
        "Streuung tragen 0 bei.</li>",
        f"<li><strong>Distanz:</strong> {METRIC_DE[p.metric]}; Gewichte auf Summe 1 normiert. "
        "Die Beiträge der Indikatoren summieren sich zur quadrierten Distanz.</li>",
        "<li><strong>Score:</strong> 100 · (1 − Distanz / größte Distanz unter den Kandidaten): "
        "100 = wie die Referenz, 0 = unähnlichster Kandidat. Nur innerhalb dieses Laufs "
        "vergleichbar.</li>",
        "<li><strong>Perzentil und Einordnung:</strong> Perzentil = Anteil der übrigen "
        "Kandidaten, die weiter von der Referenz entfernt sind (Gleichstand zählt halb). "
        "Einordnung nach der Lage der Distanz in der Verteilung aller Distanzen: unter den "
        "nächsten 5 % „sehr ähnlich“, 20 % „ähnlich“, 50 % „eher ähnlich“, 80 % „wenig "
        "ähnlich“, sonst „kaum ähnlich“.</li>",
        f"<li><strong>Standard-Indikatoren:</strong> {_esc(DEFAULT_RULE)}.</li>",
        f"<li><strong>Fehlende Werte:</strong> {MISSING_DE[p.missing]}. Indikatoren, die bei "
        "der Referenz fehlen, werden weggelassen.</li>",
    ]
    if res.sensitivity is not None:
        s = res.sensitivity
        items.append(f"<li><strong>Sensitivität:</strong> {s.n} Läufe mit zufällig um ±"
                     f"{_num(100 * s.spread, 0)} % veränderten Gewichten; Stabilität der Top "
                     f"{s.top} (mittlerer Jaccard-Index) = {_num(s.stability, 2)}. Spalte "
                     "„Stabilität“ = Anteil der Läufe, in denen der Kandidat in den Top "
                     f"{s.top} blieb.</li>")
    if res.typology is not None:
        t = res.typology
        types = "; ".join(f"{int(c)}: {_esc(r['label_de'])} ({int(r['size'])})"
                          for c, r in t.profiles.iterrows())
        items.append(f"<li><strong>Typologie:</strong> {t.method}, k = {t.k} (Silhouette "
                     f"{_num(t.silhouette, 2)}); Typen: {types}. Typ der Referenz: "
                     f"{'–' if res.reference_type is None else res.reference_type}. "
                     "Kandidaten gleichen Typs sind in der Tabelle blau markiert.</li>")
    if res.reference.derivations:
        der = "".join(f"<li>{_esc(k)}: {_esc(v)}</li>"
                      for k, v in res.reference.derivations.items())
        items.append(f"<li><strong>Werte der Referenz:</strong><ul>{der}</ul></li>")
    dates = "".join(f"<li>{_esc(k)}: {_esc(' … '.join(dict.fromkeys(v)))}</li>"
                    for k, v in res.ref_dates.items())
    items.append(f"<li><strong>Stichtage der Werte:</strong><ul>{dates}</ul></li>")
    out = "<ul>" + "".join(items) + "</ul>"
    if res.warnings:
        out += "<div class=\"q-warn\"><strong>Hinweise:</strong><ul>" + "".join(
            f"<li>{_esc(note_text(w, lang))}</li>" for w in res.warnings) + "</ul></div>"
    if len(res.excluded):
        reasons: dict[str, int] = {}
        for rs in res.excluded["reasons"]:
            for k, why in rs.items():
                reasons[f"{k}: {why}"] = reasons.get(f"{k}: {why}", 0) + 1
        common = sorted(reasons.items(), key=lambda kv: -kv[1])[:8]
        out += (f"<p>{len(res.excluded)} Einheiten wurden wegen fehlender Werte nicht "
                "gerankt (häufigste Gründe):</p><ul>" + "".join(
                    f"<li>{n} × {_esc(k)}</li>" for k, n in common) + "</ul>")
    return out


def _sources(res: TransferResult, tiles: bool, settings: Settings) -> str:
    items = []
    for s in res.sources:
        lic = _esc(s["licence"])
        if s.get("licence_url"):
            lic = f"<a href=\"{_esc(s['licence_url'])}\">{lic}</a>"
        items.append(f"<li><strong>{_esc(s['name'])}</strong>"
                     + (f", {_esc(s['publisher'])}" if s.get("publisher") else "")
                     + f". Lizenz: {lic}. Namensnennung: {_esc(s['attribution'])}</li>")
    items.append("<li>Kartenbibliothek: Leaflet 1.9.4 (© Vladimir Agafonkin, CloudMade; "
                 "BSD-2-Clause), eingebettet; Karte erzeugt mit folium.</li>")
    if tiles:
        items.append(f"<li>Hintergrundkarte: {_esc(settings.tile_attribution)} "
                     "(<a href=\"https://www.openstreetmap.org/copyright\">ODbL</a>)</li>")
    return "<ul>" + "".join(items) + "</ul>"


# ----------------------------------------------------------------------------------------------
# assembling
# ----------------------------------------------------------------------------------------------
def render_report(conn: Connection, res: TransferResult, settings: Settings, *,
                  scheme: str = "quantiles", k: int = 5, tiles: bool = False,
                  progress: Progress | None = None, lang: str = "de") -> str:
    """The report as one HTML string (works offline unless ``tiles``); notes and warnings
    in ``lang`` (the rest of the page is German)."""
    import folium
    from branca.element import Element

    step = progress or (lambda _l, _d, _t: None)
    step("Karte vorbereiten", 0, 3)
    data, variables, bounds = _map_data(conn, res, scheme, k)
    ref_geom = reference_geometry(conn, res.reference)
    ref_json = (None if ref_geom is None else
                {"type": "Feature", "properties": {},
                 "geometry": json.loads(shapely.to_geojson(
                     shapely.set_precision(ref_geom, COORD_GRID)))})
    css, js = leaflet_assets(settings)
    step("HTML erzeugen", 1, 3)
    fmap = folium.Map(location=[(bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2],
                      zoom_start=6, tiles=None, width="100%", height="62vh",
                      control_scale=True, prefer_canvas=True)
    fmap.default_js = []
    fmap.default_css = []
    if tiles:
        folium.TileLayer(settings.tile_url, attr=settings.tile_attribution, name="OSM",
                         max_zoom=19).add_to(fmap)
    fig = fmap.get_root()
    fig.header.add_child(Element(f"<style>{css}</style>"), name="leaflet_css")
    fig.header.add_child(Element(f"<script>{js}</script>"), name="leaflet_js")
    fig.header.add_child(Element(f"<style>{PAGE_CSS}</style>"), name="quarters_css")
    fig.header.add_child(Element(f"<title>Übertragbarkeit – {_esc(res.reference.name)}</title>"),
                         name="title")
    fig.html.add_child(Element(_header(res, lang)), name="quarters_header")
    attributions = "".join(
        f"map.attributionControl.addAttribution({_script_json(s['attribution'])});"
        for s in res.sources)
    script = MAP_JS % {
        "map": fmap.get_name(), "data": data, "vars": _script_json(variables),
        "ref": _script_json(ref_json), "refname": _script_json(res.reference.name),
        "missing": MISSING_COLOR, "minx": bounds[0], "miny": bounds[1], "maxx": bounds[2],
        "maxy": bounds[3], "attributions": attributions}
    page = fig.render()
    end = page.rindex("</script>")  # folium's map script: ours must run after L.map(...)
    page = page[:end] + script + page[end:]
    body = (
        '<main class="q-page">'
        f"<h2>Rangliste (Top {res.params.top})</h2>{_table(res)}"
        f"<h2>Beiträge der Indikatoren</h2>{contributions_svg(res)}"
        f"<h2>Methode</h2>{_method(res, lang)}"
        f"<h2>Quellen und Lizenzen</h2>{_sources(res, tiles, settings)}"
        "</main>")
    step("fertig", 3, 3)
    return page.replace("</body>", body + "\n</body>", 1)


def result_frame(res: TransferResult) -> pd.DataFrame:
    """All candidates (ranked, then excluded) as a flat table for CSV and GeoPackage."""
    rk = res.ranking.copy()
    rk.index.name = "code"
    cols = ["name", "rank", "score", "percentile", "band_de", "band_en", "distance",
            "is_reference", "approximate"]
    cols += [c for c in rk.columns if c.startswith(("value_", "contrib_", "diff_"))]
    cols += [c for c in ("cluster", "type_de", "same_type", "share_in_top", "rank_median",
                         "meets_preconditions", "similarity_rank") if c in rk.columns]
    out = rk[cols].reset_index()
    out["excluded"] = False
    out["missing"] = ""
    if len(res.excluded):
        ex = pd.DataFrame({
            "code": res.excluded["code"], "name": res.excluded["name"], "excluded": True,
            "missing": ["; ".join(f"{k}: {v}" for k, v in r.items())
                        for r in res.excluded["reasons"]]})
        out = pd.concat([out, ex], ignore_index=True)
    if res.part_of_reference:
        parts = pd.DataFrame({"code": [p["code"] for p in res.part_of_reference],
                              "name": [p["name"] for p in res.part_of_reference],
                              "excluded": True, "missing": "part of the reference"})
        out = pd.concat([out, parts], ignore_index=True)
    return out


def write_report(conn: Connection, res: TransferResult, out: Path, settings: Settings, *,
                 scheme: str = "quantiles", k: int = 5, tiles: bool = False,
                 progress: Progress | None = None) -> dict[str, Path]:
    """Write ``out`` (HTML) and, beside it, ``<stem>.csv`` and ``<stem>.gpkg``."""
    out = out.with_suffix(".html") if out.suffix.lower() not in (".html", ".htm") else out
    out.parent.mkdir(parents=True, exist_ok=True)
    page = render_report(conn, res, settings, scheme=scheme, k=k, tiles=tiles,
                         progress=progress)
    out.write_text(page, encoding="utf-8")
    table = result_frame(res)
    csv_path = out.with_suffix(".csv")
    table.to_csv(csv_path, index=False)
    if not res.level.outlines:  # no outlines, no GeoPackage (nothing is invented)
        return {"html": out, "csv": csv_path, "gpkg": None}
    gpkg = out.with_suffix(".gpkg")
    geo = geometries(conn, res.level, srid=25832)
    frame = gpd.GeoDataFrame(table.merge(geo[["geometry"]], left_on="code", right_index=True,
                                         how="left"), geometry="geometry", crs=25832)
    frame["is_reference"] = frame["is_reference"].astype("boolean")
    if "same_type" in frame.columns:
        frame["same_type"] = frame["same_type"].astype("boolean")
    if gpkg.exists():
        gpkg.unlink()
    frame.to_file(gpkg, layer="ranking", driver="GPKG")
    ref_geom = reference_geometry(conn, res.reference, srid=25832)
    if ref_geom is not None:
        ref = gpd.GeoDataFrame(
            [_clean({"spec": res.reference.spec, "name": res.reference.name,
                     "level": res.reference.level, "code": res.reference.code})],
            geometry=[ref_geom], crs=25832)
        ref.to_file(gpkg, layer="reference", driver="GPKG")
    return {"html": out, "csv": csv_path, "gpkg": gpkg}
