"""Transferability report: one self-contained HTML file (folium map, ranked table, charts,
method, sources and licences) plus CSV and GeoPackage of the result, in German or English.

The HTML works offline: folium's CDN links are removed and Leaflet (CSS with its images as
data URIs, and JS) is inlined from the npm package in ``web/node_modules/leaflet/dist``. No
background tiles are used unless asked for (``tiles=True`` adds the configured tile server,
which then needs the network). The contributions chart is an inline SVG.

Every fixed text comes from the catalogue (``report.*`` in ``web/i18n/{de,en}.json``), numbers
and dates through :class:`Words` (``1.234,5`` / ``1,234.5``); names, units and codes from the
data stay as they are, except the few German unit abbreviations of the indicator definitions.
The CSV and GeoPackage keep their column names (identifiers other programs read), their texts
follow the language.
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
from quarters.indicators.provenance import render
from quarters.messages import DEFAULT_LANGUAGE, LANGUAGES, format_fixed, note_text, t
from quarters.settings import Settings
from quarters.transfer import (
    TransferResult,
    _clean,
    explanation,
    geometries,
    reference_geometry,
)

Progress = Callable[[str, int, int], None]
SIMPLIFY_M = {"municipalities": 150.0, "counties": 150.0}
COORD_GRID = 1e-5  # ~1 m in degrees: enough for a 1:5,000,000 base map
SEQ = ["#ffffcc", "#c7e9b4", "#7fcdbb", "#41b6c4", "#1d91c0", "#225ea8", "#0c2c84"]  # YlGnBu
SEQ_IND = ["#fff5eb", "#fdd0a2", "#fdae6b", "#fd8d3c", "#f16913", "#d94801", "#8c2d04"]
MISSING_COLOR = "#d9d9d9"
IND_COLORS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d",
              "#666666", "#1f78b4", "#b2df8a", "#fb9a99", "#cab2d6"]
METHOD_KEYS = {"zscore": "report.method_zscore", "robust": "report.method_robust"}
METRIC_KEYS = {"euclidean": "report.metric_euclidean", "mahalanobis": "report.metric_mahalanobis"}
MISSING_KEYS = {"drop_indicator": "report.missing_drop_indicator",
                "skip_pairwise": "report.missing_skip_pairwise"}
# German unit abbreviations of the indicator definitions (others read the same in both)
UNIT_KEYS = {"Einw.": "report.unit_inhabitants", "Einw./km²": "report.unit_inhabitants_km2",
             "je km²": "report.unit_per_km2"}


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
        raise SetupError(code="setup.leaflet_missing", params={"dir": str(dist)})
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


class Words:
    """The report's fixed texts, numbers and dates in one language (``de`` or ``en``)."""

    def __init__(self, lang: str = DEFAULT_LANGUAGE) -> None:
        self.lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE

    def text(self, key: str, /, **values: Any) -> str:
        """The catalogue's ``key`` with its placeholders filled in (plain text)."""
        return t(key, self.lang, **values)

    def __call__(self, key: str, /, **values: Any) -> str:
        """:meth:`text`, escaped for HTML (pass the values as plain text)."""
        return _esc(self.text(key, **values))

    def num(self, x: Any, digits: int = 1) -> str:
        """``1.234,5`` (de) or ``1,234.5`` (en) with ``digits`` decimals; – for no value."""
        return format_fixed(x, digits, self.lang)

    def when(self, moment: datetime) -> str:
        """A date and time as people of the language write it."""
        if self.lang == "en":
            return f"{moment.day} {moment.strftime('%b %Y, %H:%M')}"
        return moment.strftime("%d.%m.%Y %H:%M")

    def pick(self, de: Any, en: Any) -> Any:
        """The German or the English one of a pair from the data (German when no English)."""
        return en if self.lang == "en" and en is not None and not pd.isna(en) else de

    def name(self, d: Any) -> str:
        """An indicator's name."""
        return self.pick(d.name_de, d.name_en)

    def unit(self, unit: str) -> str:
        """An indicator's unit (the German abbreviations of the definitions translated)."""
        return self.text(UNIT_KEYS[unit]) if unit in UNIT_KEYS else unit

    def units(self, level: Any) -> str:
        """A level's units, plural (``Gemeinden`` / ``municipalities``)."""
        return self.pick(level.label_de, level.label_en)


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
def _classes(values: pd.Series, scheme: str, k: int, w: Words) -> dict[str, Any]:
    """classify() with the legend's numbers written as :meth:`Words.num` writes them."""
    from quarters.analysis.classify import THIN_SPACE, classify

    c = classify(values, scheme, k, locale=w.lang)
    if w.lang == "de":  # classify groups with a thin space; the report with a dot
        c["labels"] = [label.replace(THIN_SPACE, ".") for label in c["labels"]]
    return c


def _map_data(conn: Connection, res: TransferResult, scheme: str, k: int, w: Words
              ) -> tuple[str, list[dict[str, Any]], list[float]]:
    """GeoJSON text of all units with ranks/classes, the variables for the map, bounds."""
    level = res.level
    geo = geometries(conn, level, simplify_m=SIMPLIFY_M.get(level.table, 0.0))
    rk = res.ranking
    variables = []
    sc = _classes(rk["score"], scheme, k, w)
    variables.append({"key": "score", "label": w.text("report.map_score"),
                      "colors": _palette(SEQ, sc["k"]), "labels": sc["labels"]})
    classes = {"score": sc["classes"].reindex(geo.index).fillna(-1).astype(int).to_numpy()}
    all_values = res.result.values.reindex(geo.index)
    for d in res.indicators:
        if d.key not in res.result.values.columns:
            continue
        c = _classes(all_values[d.key], scheme, k, w)
        classes[d.key] = c["classes"].to_numpy()
        variables.append({"key": d.key, "label": f"{w.name(d)} ({w.unit(d.unit)})",
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
  var words = %(words)s;
  var score = new Intl.NumberFormat(%(lang)s, {minimumFractionDigits: 1, maximumFractionDigits: 1});
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
      t.textContent = p.x ? words.excluded :
        words.rank.replace("{rank}", p.r).replace("{score}", score.format(p.s));
      d.appendChild(t);
      var c = p.k[current];
      var v = document.createElement("div");
      v.textContent = vars[current].label + ": " + (c < 0 ? words.no_value : vars[current].labels[c]);
      d.appendChild(v);
      return d;
    }, {sticky: true});
  }}).addTo(map);
  window.quartersLayer = layer;
  if (ref) {
    var hl = L.geoJSON(ref, {style: {color: "#d7191c", weight: 3, fill: false, dashArray: "6 4"},
      pointToLayer: function (f, ll) { return L.circleMarker(ll, {radius: 8, color: "#d7191c",
        weight: 3, fillOpacity: 0.6}); }}).addTo(map);
    hl.bindTooltip(words.reference);
  }
  var legend = L.control({position: "bottomright"});
  legend.onAdd = function () {
    var div = L.DomUtil.create("div", "q-legend");
    L.DomEvent.disableClickPropagation(div);
    var sel = document.createElement("select");
    sel.id = "q-variable";
    sel.setAttribute("aria-label", words.variable);
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
      row.appendChild(sw); row.appendChild(document.createTextNode(words.missing));
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
def _approx_note(res: TransferResult, w: Words) -> str:
    """How many of the ranked units (and whether the reference) are approximations."""
    n = int(res.ranking["approximate"].sum())
    total = len(res.ranking)
    if not n and not res.reference.approximate:
        return ""
    which = ((w.text("report.approx_all") if n == total
              else w.text("report.approx_some", n=n, total=total)) if n
             else w.text("report.approx_none"))
    ref = " " + w("report.approx_reference") if res.reference.approximate else ""
    return (f"<p id=\"q-approx\" class=\"q-small\"><strong>{w('report.approx_label')}</strong> "
            f"{w('report.approx_text', which=which, units=w.units(res.level))}{ref}</p>")


OP_TEXT = {"<": "<", "<=": "≤", ">": ">", ">=": "≥", "=": "=", "!=": "≠"}


def _condition(res: TransferResult, cond: dict[str, Any], w: Words, actual: bool = False
               ) -> str:
    """„SGB-II-Quote ≤ 12“ (with the candidate's value when ``actual``), plain text."""
    names = {d.key: w.name(d) for d in res.indicators}
    text = (f"{names.get(cond['indicator'], cond['indicator'])} "
            f"{OP_TEXT.get(cond['op'], cond['op'])} {w.num(cond['value'], 2)}")
    if actual:
        value = cond.get("actual")
        shown = w.text("report.no_value") if value is None else w.num(value, 2)
        text += f" ({w.text('report.condition_value', value=shown)})"
    return text


def _preconditions_note(res: TransferResult, w: Words) -> str:
    """A measure's preconditions: which they are and how many candidates meet them."""
    pre = res.reference.preconditions
    if not pre:
        return ""
    conds = "; ".join(_esc(_condition(res, c, w)) for c in pre["conditions"])
    label = w("report.preconditions_label", id=str(int(pre["measure_id"])))
    return (f"<p id=\"q-preconditions\"><strong>{label}</strong> {conds}. "
            + w("report.preconditions_text", meeting=int(pre["candidates_meeting"]),
                failing=int(pre["candidates_failing"])) + "</p>")


def _header(res: TransferResult, w: Words) -> str:
    ref = res.reference
    weights = ", ".join(
        f"{_esc(w.name(d))} ({w.num(res.result.weights.get(d.key, 0.0) * 100, 0)} %)"
        for d in res.indicators if d.key in res.result.indicators)
    units = w.units(res.level)
    return (
        '<header class="q-head">'
        f"<h1>{w('report.heading', units=units, name=ref.name)}</h1>"
        f"<p><strong>{w('report.reference')}</strong> {_esc(ref.name)} ({_esc(ref.spec)})"
        + (f" – {_esc(note_text(ref.note, w.lang))}" if ref.note else "") + "</p>"
        f"<p><strong>{w('report.candidates_label')}</strong> "
        + w("report.candidates", count=len(res.ranking), units=units, level=res.level.name,
            excluded=len(res.excluded)) + "</p>"
        + (f"<p id=\"q-filter\"><strong>{w('report.filter_label')}</strong> "
           f"<code>{_esc(res.params.filter)}</code> – "
           f"{w('report.filter_out', count=res.n_filtered_out)}</p>"
           if res.params.filter else "")
        + (f"<p id=\"q-parts\"><strong>{w('report.parts_label')}</strong> "
           + ", ".join(f"{_esc(p['name'])} ({_esc(p['code'])})" for p in res.part_of_reference)
           + "</p>" if res.part_of_reference else "")
        + _approx_note(res, w) + _preconditions_note(res, w) +
        f"<p><strong>{w('report.indicators_label')}</strong> {weights}</p>"
        f"<p class=\"q-small\">{w('report.created', date=w.when(datetime.now()))}</p></header>")


def _table(res: TransferResult, w: Words) -> str:
    inds = [d for d in res.indicators if d.key in res.result.indicators]
    digits = {d.key: _digits(res.ranking[f"value_{d.key}"]) for d in inds}
    has_types = "same_type" in res.ranking.columns
    has_sens = "share_in_top" in res.ranking.columns
    has_pre = "meets_preconditions" in res.ranking.columns
    head = [w(k) for k in ("report.col_rank", "report.col_name", "report.col_code",
                           "report.col_score", "report.col_percentile", "report.col_band",
                           "report.col_distance")]
    head += [w("report.col_preconditions")] if has_pre else []
    head += [_esc(f"{w.name(d)} [{w.unit(d.unit)}]") for d in inds]
    head += ([w("report.col_type"), w("report.col_same_type")] if has_types else [])
    head += [w("report.col_stability")] if has_sens else []
    head.append(w("report.col_reason"))
    rows = []
    ref_vals = res.result.reference_values
    if res.reference.unit_id is None:
        rows.append(
            f"<tr class=\"q-ref\"><td class=\"n\">{w('report.ref_row')}</td><td>"
            + _esc(res.reference.name) + (" *" if res.reference.approximate else "")
            + "</td><td>" + _esc(res.reference.code) + "</td><td class=\"n\">–</td>"
            "<td class=\"n\">–</td><td></td><td class=\"n\">–</td>"
            + ("<td></td>" if has_pre else "")
            + "".join(f"<td class=\"n\">{w.num(ref_vals.get(d.key), digits[d.key])}</td>"
                      for d in inds)
            + ("<td></td><td></td>" if has_types else "") + ("<td></td>" if has_sens else "")
            + f"<td>{w('report.ref_values')}</td></tr>")
    text_key = "text_en" if w.lang == "en" else "text_de"
    for code, r in res.top.iterrows():
        cls = ["q-row"]
        if r["is_reference"]:
            cls.append("q-ref")
        if has_types and r["same_type"]:
            cls.append("q-same")
        reason = explanation(res, code)[text_key]
        if r["approximate"]:
            cls.append("q-approx")
        star = f' <abbr title="{w("report.approximate")}">*</abbr>' if r["approximate"] else ""
        band = "" if pd.isna(r["band_de"]) else _esc(w.pick(r["band_de"], r["band_en"]))
        cells = [f"<td class=\"n\">{int(r['rank'])}</td>",
                 f"<td>{_esc(r['name'])}{star}</td>",
                 f"<td>{_esc(code)}</td>", f"<td class=\"n\">{w.num(r['score'], 1)}</td>",
                 f"<td class=\"n\">{w.num(r['percentile'], 1)}</td>", f"<td>{band}</td>",
                 f"<td class=\"n\">{w.num(r['distance'], 3)}</td>"]
        if has_pre:
            cells.append(_precondition_cell(res, r, w))
        cells += [f"<td class=\"n\">{w.num(r[f'value_{d.key}'], digits[d.key])}</td>"
                  for d in inds]
        if has_types:
            cells.append(f"<td>{_esc(w.pick(r['type_de'], r.get('type_en')))}</td>")
            cells.append(f"<td>{w('report.yes') if r['same_type'] else w('report.no')}</td>")
        if has_sens:
            v = r["share_in_top"]
            cells.append(f"<td class=\"n\">{'–' if pd.isna(v) else w.num(100 * v, 0) + ' %'}</td>")
        cells.append(f"<td>{_esc(reason)}</td>")
        rows.append(f"<tr class=\"{' '.join(cls)}\" data-code=\"{_esc(code)}\">"
                    + "".join(cells) + "</tr>")
    return ("<table class=\"q-table\" id=\"ranking\"><thead><tr>"
            + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def _precondition_cell(res: TransferResult, r: pd.Series, w: Words) -> str:
    if r["is_reference"]:
        return "<td></td>"
    if r["meets_preconditions"]:
        return f"<td class=\"q-meets\" data-meets=\"true\">{w('report.meets')}</td>"
    failed = "; ".join(_condition(res, c, w, actual=True) for c in r["failed_preconditions"])
    return (f"<td class=\"q-fails\" data-meets=\"false\">"
            f"{w('report.fails', conditions=failed)}</td>")


def contributions_svg(res: TransferResult, w: Words | None = None) -> str:
    """Stacked horizontal bars: contribution of each indicator to distance² per candidate."""
    w = w or Words()
    inds = res.result.indicators
    names = {d.key: w.name(d) for d in res.indicators}
    top = res.top[~res.top["is_reference"]]
    if top.empty:
        return f"<p>{w('report.no_candidates')}</p>"
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
             f'aria-label="{w("report.svg_label")}" style="font: 12px sans-serif">']
    for i, (_code, r) in enumerate(top.iterrows()):
        y = top_pad + i * row_h
        label = f"{int(r['rank'])}. {r['name']}"
        parts.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">'
                     f"{_esc(label[:34])}</text>")
        x = float(left)
        for j, k in enumerate(inds):
            bar = bar_w * contrib[i, j] / scale_max
            if bar <= 0:
                continue
            share = contrib[i, j] / total[i] if total[i] > 0 else 0
            parts.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{bar:.1f}" '
                         f'height="{row_h - 6}" fill="{colors[k]}"><title>'
                         + w("report.svg_share", name=names.get(k, k),
                             share=w.num(100 * share, 0)) + "</title></rect>")
            x += bar
        parts.append(f'<text x="{x + 4:.1f}" y="{y + 14}">{w.num(r["score"], 1)}</text>')
    y0 = top_pad + row_h * len(top) + 8
    parts.append(f'<text x="{left}" y="{y0 + 8}" class="q-small">'
                 f"{w('report.svg_caption')}</text>")
    for j, k in enumerate(inds):
        lx = 10 + (j % 3) * 300
        ly = y0 + 22 + (j // 3) * 18
        parts.append(f'<rect x="{lx}" y="{ly - 10}" width="12" height="12" fill="{colors[k]}"/>'
                     f'<text x="{lx + 16}" y="{ly}">{_esc(names.get(k, k))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _item(w: Words, label_key: str, body: str) -> str:
    return f"<li><strong>{w(label_key)}:</strong> {body}</li>"


def _method(res: TransferResult, w: Words) -> str:
    p = res.params
    items = [
        _item(w, "report.m_standardisation",
              w("report.m_standardisation_text", method=w.text(METHOD_KEYS[p.method]))),
        _item(w, "report.col_distance",
              w("report.m_distance_text", metric=w.text(METRIC_KEYS[p.metric]))),
        _item(w, "report.col_score", w("report.m_score_text")),
        _item(w, "report.m_percentile", w("report.m_percentile_text")),
        _item(w, "report.m_defaults", w("report.m_defaults_text") + "."),
        _item(w, "report.m_missing",
              w("report.m_missing_text", rule=w.text(MISSING_KEYS[p.missing]))),
    ]
    if res.sensitivity is not None:
        s = res.sensitivity
        items.append(_item(w, "report.m_sensitivity", w(
            "report.m_sensitivity_text", count=int(s.n), spread=w.num(100 * s.spread, 0),
            top=str(s.top), stability=w.num(s.stability, 2))))
    if res.typology is not None:
        ty = res.typology
        types = "; ".join(f"{int(c)}: {w.pick(r['label_de'], r.get('label_en'))} ({int(r['size'])})"
                          for c, r in ty.profiles.iterrows())
        items.append(_item(w, "report.m_typology", w(
            "report.m_typology_text", method=ty.method, k=str(ty.k),
            silhouette=w.num(ty.silhouette, 2), types=types,
            ref_type="–" if res.reference_type is None else str(res.reference_type))))
    if res.reference.derivations:  # how the reference's values were derived (notes)
        der = "".join(f"<li>{_esc(k)}: {_esc(render(v, w.lang))}</li>"
                      for k, v in res.reference.derivations.items())
        items.append(f"<li><strong>{w('report.m_derivations')}:</strong><ul>{der}</ul></li>")
    dates = "".join(f"<li>{_esc(k)}: {_esc(' … '.join(dict.fromkeys(v)))}</li>"
                    for k, v in res.ref_dates.items())
    items.append(f"<li><strong>{w('report.m_dates')}:</strong><ul>{dates}</ul></li>")
    out = "<ul>" + "".join(items) + "</ul>"
    if res.warnings:
        out += f"<div class=\"q-warn\"><strong>{w('report.notes')}:</strong><ul>" + "".join(
            f"<li>{_esc(note_text(n, w.lang))}</li>" for n in res.warnings) + "</ul></div>"
    if len(res.excluded):
        reasons: dict[str, int] = {}
        for rs in res.excluded["reasons"]:
            for k, why in rs.items():
                why = w.text("report.missing_value") if why == "missing" else render(why, w.lang)
                reasons[f"{k}: {why}"] = reasons.get(f"{k}: {why}", 0) + 1
        common = sorted(reasons.items(), key=lambda kv: -kv[1])[:8]
        out += (f"<p>{w('report.excluded_text', count=len(res.excluded))}</p><ul>" + "".join(
            f"<li>{n} × {_esc(k)}</li>" for k, n in common) + "</ul>")
    return out


def _sources(res: TransferResult, tiles: bool, settings: Settings, w: Words) -> str:
    items = []
    for s in res.sources:
        lic = _esc(s["licence"])
        if s.get("licence_url"):
            lic = f"<a href=\"{_esc(s['licence_url'])}\">{lic}</a>"
        items.append(f"<li><strong>{_esc(s['name'])}</strong>"
                     + (f", {_esc(s['publisher'])}" if s.get("publisher") else "")
                     + f". {w('report.licence')}: {lic}. {w('report.attribution')}: "
                     f"{_esc(s['attribution'])}</li>")
    items.append(f"<li>{w('report.map_library')}</li>")
    if tiles:
        items.append(f"<li>{w('report.background')}: {_esc(settings.tile_attribution)} "
                     "(<a href=\"https://www.openstreetmap.org/copyright\">ODbL</a>)</li>")
    return "<ul>" + "".join(items) + "</ul>"


# ----------------------------------------------------------------------------------------------
# assembling
# ----------------------------------------------------------------------------------------------
def _map_words(res: TransferResult, w: Words) -> dict[str, str]:
    """The texts of the map's tooltips and legend (``{rank}``, ``{score}`` filled in there)."""
    return {"excluded": w.text("report.map_excluded"), "rank": w.text("report.map_rank"),
            "no_value": w.text("report.map_no_value"),
            "missing": w.text("report.map_missing"), "variable": w.text("report.map_variable"),
            "reference": w.text("report.map_reference", name=res.reference.name)}


def render_report(conn: Connection, res: TransferResult, settings: Settings, *,
                  scheme: str = "quantiles", k: int = 5, tiles: bool = False,
                  progress: Progress | None = None, lang: str = DEFAULT_LANGUAGE) -> str:
    """The report as one HTML string in ``lang`` (works offline unless ``tiles``)."""
    import folium
    from branca.element import Element

    w = Words(lang)
    step = progress or (lambda _l, _d, _t: None)
    step(w.text("report.step_map"), 0, 3)
    data, variables, bounds = _map_data(conn, res, scheme, k, w)
    ref_geom = reference_geometry(conn, res.reference)
    ref_json = (None if ref_geom is None else
                {"type": "Feature", "properties": {},
                 "geometry": json.loads(shapely.to_geojson(
                     shapely.set_precision(ref_geom, COORD_GRID)))})
    css, js = leaflet_assets(settings)
    step(w.text("report.step_html"), 1, 3)
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
    fig.header.add_child(Element(f"<title>{w('report.title', name=res.reference.name)}</title>"),
                         name="title")
    fig.html.add_child(Element(_header(res, w)), name="quarters_header")
    attributions = "".join(
        f"map.attributionControl.addAttribution({_script_json(s['attribution'])});"
        for s in res.sources)
    script = MAP_JS % {
        "map": fmap.get_name(), "data": data, "vars": _script_json(variables),
        "ref": _script_json(ref_json), "words": _script_json(_map_words(res, w)),
        "lang": _script_json(w.lang), "missing": MISSING_COLOR, "minx": bounds[0],
        "miny": bounds[1], "maxx": bounds[2], "maxy": bounds[3], "attributions": attributions}
    page = fig.render()
    end = page.rindex("</script>")  # folium's map script: ours must run after L.map(...)
    page = page[:end] + script + page[end:]
    page = re.sub(r"<html(?=[\s>])", f'<html lang="{w.lang}"', page, count=1)
    body = (
        '<main class="q-page">'
        f"<h2>{w('report.h_ranking', top=str(res.params.top))}</h2>{_table(res, w)}"
        f"<h2>{w('report.h_contributions')}</h2>{contributions_svg(res, w)}"
        f"<h2>{w('report.h_method')}</h2>{_method(res, w)}"
        f"<h2>{w('report.h_sources')}</h2>{_sources(res, tiles, settings, w)}"
        "</main>")
    step(w.text("report.step_done"), 3, 3)
    return page.replace("</body>", body + "\n</body>", 1)


def result_frame(res: TransferResult, lang: str = DEFAULT_LANGUAGE) -> pd.DataFrame:
    """All candidates (ranked, then excluded) as a flat table for CSV and GeoPackage (column
    names are identifiers; the texts in the cells follow ``lang``)."""
    w = Words(lang)
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
        missing = w.text("report.missing_value")
        ex = pd.DataFrame({
            "code": res.excluded["code"], "name": res.excluded["name"], "excluded": True,
            "missing": ["; ".join(f"{k}: {missing if v == 'missing' else render(v, w.lang)}"
                                  for k, v in r.items()) for r in res.excluded["reasons"]]})
        out = pd.concat([out, ex], ignore_index=True)
    if res.part_of_reference:
        parts = pd.DataFrame({"code": [p["code"] for p in res.part_of_reference],
                              "name": [p["name"] for p in res.part_of_reference],
                              "excluded": True, "missing": w.text("report.part_of_reference")})
        out = pd.concat([out, parts], ignore_index=True)
    return out


def write_report(conn: Connection, res: TransferResult, out: Path, settings: Settings, *,
                 scheme: str = "quantiles", k: int = 5, tiles: bool = False,
                 progress: Progress | None = None, lang: str = DEFAULT_LANGUAGE
                 ) -> dict[str, Path]:
    """Write ``out`` (HTML) and, beside it, ``<stem>.csv`` and ``<stem>.gpkg``, in ``lang``."""
    out = out.with_suffix(".html") if out.suffix.lower() not in (".html", ".htm") else out
    out.parent.mkdir(parents=True, exist_ok=True)
    page = render_report(conn, res, settings, scheme=scheme, k=k, tiles=tiles,
                         progress=progress, lang=lang)
    out.write_text(page, encoding="utf-8")
    table = result_frame(res, lang)
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
