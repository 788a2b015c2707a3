// Analysis page: the Leaflet map. One choropleth layer per level (SVG for small levels; the
// 11,000 municipalities as vector tiles of the OGC API drawn on canvas, coloured in the browser
// by joining the classes on the unit code of each tile feature), restyled when the classes change;
// the reference (white halo + black outline + label), the selected candidate (orange dashed
// outline) and rank labels of the top candidates on their own pane above.

import { getItems } from "./analysis-api.js";
import { el, formatCount, replaceChildren, svgEl } from "./analysis-format.js";
import { t } from "./i18n.js";
import { addSourceAttributions, addTileLayer, createMap } from "./map.js";

const L = globalThis.L;
const CANVAS_FROM = 800; // features; from here on the canvas renderer draws the choropleth
const MISSING_FILL = "#d4d4d4";
const REFERENCE_COLOUR = "#111111";
const SELECTED_COLOUR = "#d95f02";
const TILE_GRID = "WebMercatorQuad";

// ColorBrewer YlGnBu (sequential, colour-blind safe, prints in greyscale), per number of classes.
const PALETTES = {
  2: ["#edf8b1", "#2c7fb8"],
  3: ["#edf8b1", "#7fcdbb", "#2c7fb8"],
  4: ["#ffffcc", "#a1dab4", "#41b6c4", "#225ea8"],
  5: ["#ffffcc", "#a1dab4", "#41b6c4", "#2c7fb8", "#253494"],
  6: ["#ffffcc", "#c7e9b4", "#7fcdbb", "#41b6c4", "#2c7fb8", "#253494"],
  7: ["#ffffcc", "#c7e9b4", "#7fcdbb", "#41b6c4", "#1d91c0", "#225ea8", "#0c2c84"],
  8: ["#ffffd9", "#edf8b1", "#c7e9b4", "#7fcdbb", "#41b6c4", "#1d91c0", "#225ea8", "#0c2c84"],
  9: ["#ffffd9", "#edf8b1", "#c7e9b4", "#7fcdbb", "#41b6c4", "#1d91c0", "#225ea8", "#253494", "#081d58"],
};

/** Fill colours for k classes (k = 1 … 9). */
export function palette(k) {
  if (k <= 1) return [PALETTES[3][1]];
  return PALETTES[Math.min(k, 9)];
}

const state = {
  map: null,
  canvas: null,
  svg: null,
  overlaySvg: null,
  level: null,
  layer: null, // L.GeoJSON of the current level, or the L.VectorGrid of its tiles
  byCode: new Map(), // code -> layer (GeoJSON levels)
  tiles: null, // {collection, codeProperty} when the level is drawn from vector tiles
  fetched: new Map(), // code -> Promise<GeoJSON feature> (tiled levels: outlines, ranks, zoom)
  classes: new Map(), // code -> class (−1 missing)
  colours: [],
  big: false,
  overlay: null, // L.LayerGroup: reference, selection, rank labels
  reference: null,
  selected: null,
  ranks: null,
  popup: null, // (code) => Node
};

// ---------------------------------------------------------------- setup

/** Create the map inside `container`. */
export function initMap(container) {
  // The shared map set-up (map.js); the panes and zoom steps are this page's own.
  const map = createMap(container, {
    panes: [["choropleth", 410], ["highlight", 450]],
    labels: { zoomIn: "Hineinzoomen", zoomOut: "Herauszoomen", close: "Schließen", closeLabel: "Info schließen" },
    preferCanvas: false,
    minZoom: 4,
    zoomSnap: 0.25,
    zoomDelta: 0.5,
    scrollWheelZoom: false, // the page scrolls; the wheel zooms once the map is clicked or focused
  });
  map.attributionControl.setPrefix(
    '<a href="https://leafletjs.com" title="JavaScript-Bibliothek für interaktive Karten">Leaflet</a>');
  state.canvas = L.canvas({ pane: "choropleth", padding: 0.3, tolerance: 1 });
  state.svg = L.svg({ pane: "choropleth" });
  state.overlaySvg = L.svg({ pane: "highlight" });
  state.overlay = L.layerGroup().addTo(map);
  state.map = map;
  map.on("focus click", () => map.scrollWheelZoom.enable());
  map.on("blur mouseout", () => map.scrollWheelZoom.disable());
  map.setView([51.2, 10.4], 6);
  return map;
}

/** Background tiles; `onError` runs once when the first tile fails. */
export function addTiles(url, attribution, onError) {
  if (!url) return;
  addTileLayer(state.map, url, attribution, onError, { opacity: 0.55, maxZoom: 18 });
}

/** Every attribution text of /api/sources in the attribution control (plain text). */
export function addAttributions(sources) {
  addSourceAttributions(state.map, sources);
}

/** Which popup content to show for a unit: `build(code, name)` returns a Node. */
export function setPopupBuilder(build) {
  state.popup = build;
}

// ---------------------------------------------------------------- geometry

function baseStyle() {
  return state.big
    ? { color: "#ffffff", weight: 0.35, opacity: 0.7, fillOpacity: 0.85 }
    : { color: "#4a4a4a", weight: 1, opacity: 0.9, fillOpacity: 0.78 };
}

function styleFor(code) {
  const cls = state.classes.has(code) ? state.classes.get(code) : -1;
  const fillColor = cls >= 0 && cls < state.colours.length ? state.colours[cls] : MISSING_FILL;
  const style = { ...baseStyle(), fillColor };
  if (!state.big) style.className = `unit unit--class-${cls < 0 ? "missing" : cls}`;
  return style;
}

/** Style of a tile feature: the unit's class colour, looked up by its code. */
function tileStyle(properties) {
  return { ...styleFor(String(properties?.[state.tiles.codeProperty])), fill: true };
}

/** The full feature of one unit of a tiled level, fetched once from the OGC API. */
function fetchFeature(code) {
  const key = String(code);
  if (!state.fetched.has(key)) {
    const { collection, codeProperty } = state.tiles;
    const promise = getItems(collection, { [codeProperty]: key, limit: 1 })
      .then((fc) => fc.features[0] || null);
    promise.catch(() => state.fetched.delete(key));
    state.fetched.set(key, promise);
  }
  return state.fetched.get(key);
}

/** Features of several units of a tiled level in one request (CQL2 IN). */
async function fetchFeatures(codes) {
  const { collection, codeProperty } = state.tiles;
  const wanted = codes.map(String).filter((c) => /^[0-9A-Za-z_-]+$/.test(c));
  if (!wanted.length) return new Map();
  const fc = await getItems(collection, {
    filter: `${codeProperty} IN (${wanted.map((c) => `'${c}'`).join(",")})`,
    limit: wanted.length,
  });
  const found = new Map();
  for (const f of fc.features) {
    const code = String(f.properties?.[codeProperty] ?? f.id);
    found.set(code, f);
    state.fetched.set(code, Promise.resolve(f));
  }
  return found;
}

/** A click on a tiled level: the unit under the pointer, asked of the API (a point bbox). */
async function onTileClick(event) {
  if (!state.popup || !state.tiles) return;
  const { lat, lng } = event.latlng;
  const level = state.level;
  const { collection, codeProperty } = state.tiles;
  const box = [lng, lat, lng, lat].map((v) => v.toFixed(6)).join(",");
  let feature = null;
  try {
    feature = (await getItems(collection, { bbox: box, limit: 1 })).features[0] || null;
  } catch {
    return;
  }
  if (!feature || state.level !== level) return;
  const code = String(feature.properties?.[codeProperty] ?? feature.id);
  state.fetched.set(code, Promise.resolve(feature));
  L.popup({ maxWidth: 320, autoPanPadding: [20, 20] })
    .setLatLng(event.latlng)
    .setContent(state.popup(code, feature.properties?.name))
    .openOn(state.map);
}

/** Draw a tiled level: `collection` = {tiles: {collection, codeProperty}}. */
function showTiles(level, collection) {
  state.tiles = collection.tiles;
  state.big = true;
  const name = state.tiles.collection;
  const url = `/api/collections/${encodeURIComponent(name)}/tiles/${TILE_GRID}/{z}/{y}/{x}`;
  const container = state.map.getContainer();
  const layer = L.vectorGrid.protobuf(url, {
    rendererFactory: L.canvas.tile,
    pane: "choropleth",
    interactive: false, // clicks are answered by onTileClick (the plugin's canvas hit test fails on Leaflet ≥ 1.8)
    vectorTileLayerStyles: { [name]: tileStyle },
    // features kept per tile by their code: new classes restyle the drawn tiles in place
    getFeatureId: (feature) => String(feature.properties?.[state.tiles.codeProperty]),
    fetchOptions: { credentials: "same-origin" },
  });
  layer.on("loading", () => { container.dataset.tiles = "loading"; });
  layer.on("load", () => { container.dataset.tiles = "loaded"; });
  state.layer = layer; // added to the map by the first paint (no tile is drawn uncoloured)
  state.map.on("click", onTileClick);
  fetch(`/api/collections/${encodeURIComponent(name)}/tiles/${TILE_GRID}`, { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : null))
    .then((meta) => {
      const box = meta?.boundingBox;
      if (!box || state.layer !== layer) return;
      state.map.fitBounds([[box.lowerLeft[1], box.lowerLeft[0]], [box.upperRight[1], box.upperRight[0]]],
        { padding: [12, 12] });
    })
    .catch(() => {});
  container.dataset.renderer = "canvas";
  container.dataset.source = "tiles";
  container.dataset.level = level;
}

function onUnitClick(event) {
  const layer = event.propagatedFrom || event.layer;
  const code = layer?.feature?.id ?? layer?.feature?.properties?.code;
  if (code === undefined || !state.popup) return;
  const content = state.popup(String(code), layer.feature.properties?.name);
  L.popup({ maxWidth: 320, autoPanPadding: [20, 20] })
    .setLatLng(event.latlng)
    .setContent(content)
    .openOn(state.map);
}

/**
 * Show the units of `level` (a GeoJSON FeatureCollection with feature ids = unit codes).
 * Reuses the layer when the level is unchanged. Fits the map to the units the first time.
 */
export function showLevel(level, collection) {
  if (state.level === level && state.layer) return;
  if (state.layer) state.layer.remove();
  if (state.tiles) state.map.off("click", onTileClick);
  clearOverlay();
  state.level = level;
  state.byCode = new Map();
  state.fetched = new Map();
  state.tiles = null;
  if (collection.tiles) {
    showTiles(level, collection);
    return;
  }
  state.big = collection.features.length >= CANVAS_FROM;
  const layer = L.geoJSON(null, {
    renderer: state.big ? state.canvas : state.svg,
    pane: "choropleth",
    style: (feature) => styleFor(String(feature.id ?? feature.properties?.code)),
    onEachFeature: (feature, lyr) => state.byCode.set(String(feature.id ?? feature.properties?.code), lyr),
  });
  layer.addData(collection);
  layer.on("click", onUnitClick);
  layer.addTo(state.map);
  state.layer = layer;
  const bounds = layer.getBounds();
  if (bounds.isValid()) state.map.fitBounds(bounds, { padding: [12, 12] });
  state.map.getContainer().dataset.renderer = state.big ? "canvas" : "svg";
  state.map.getContainer().dataset.source = "geojson";
  state.map.getContainer().dataset.level = level;
}

/** The level currently drawn. */
export function currentLevel() {
  return state.level;
}

/** Feature (GeoJSON) of a unit of the current level, or null (a Promise of it for tiled levels). */
export function featureOf(code) {
  if (state.tiles) return fetchFeature(code).catch(() => null);
  return state.byCode.get(String(code))?.feature || null;
}

/**
 * Colour the units: `classes` maps code → class index (missing: absent or −1), `k` classes.
 * Returns the palette used.
 */
export function paint(classes, k) {
  const before = { classes: state.classes, colours: state.colours };
  state.classes = classes;
  state.colours = palette(k);
  if (!state.layer) return state.colours;
  if (state.tiles) {
    if (state.map.hasLayer(state.layer)) {
      restyleTiles(before);
      return state.colours;
    }
    // the first paint of the level: tiles are styled as they are drawn
    state.map.getContainer().dataset.tiles = "loading";
    state.layer.addTo(state.map);
    return state.colours;
  }
  for (const [code, layer] of state.byCode) layer.setStyle(styleFor(code));
  return state.colours;
}

/**
 * New classes on the tiles already drawn: only the units whose colour changed get their new
 * style (VectorGrid.setFeatureStyle; the canvases redraw in the next frame), without asking
 * for and decoding the tiles again – the ranking's choropleth over the 11,000 municipalities
 * shown right after the answer. Tiles drawn later take their style from tileStyle.
 * data-tiles is "loaded" again once the restyled canvases are on screen.
 */
function restyleTiles(before) {
  const layer = state.layer;
  const container = state.map.getContainer();
  const samePalette = before.colours.length === state.colours.length
    && before.colours.every((c, i) => c === state.colours[i]);
  const codes = new Set([...before.classes.keys(), ...state.classes.keys()]);
  for (const code of codes) {
    if (samePalette && before.classes.get(code) === state.classes.get(code)) continue;
    layer.setFeatureStyle(code, tileStyle);
  }
  container.dataset.tiles = "loading";
  requestAnimationFrame(() => requestAnimationFrame(() => {
    // tiles still on their way (a pan or zoom meanwhile) report themselves by "load"
    if (state.layer === layer && !layer.isLoading()) container.dataset.tiles = "loaded";
  }));
}

// ---------------------------------------------------------------- highlight

function clearOverlay() {
  state.overlay?.clearLayers();
  state.reference = null;
  state.selected = null;
  state.ranks = null;
}

function outline(feature, colour, weight, className, dash) {
  return L.geoJSON(feature, {
    renderer: state.overlaySvg,
    pane: "highlight",
    interactive: false,
    style: () => ({
      color: colour, weight, opacity: 1, fill: false, dashArray: dash || null, className,
    }),
    pointToLayer: (f, latlng) => L.circleMarker(latlng, {
      renderer: state.overlaySvg, pane: "highlight", radius: 7, color: colour, weight,
      fillColor: "#ffffff", fillOpacity: 1, className,
    }),
  });
}

/** A permanent label at the north ("top") or south ("bottom") edge of a layer's bounds. */
function labelAt(layer, text, className, direction = "top") {
  const bounds = layer.getBounds?.();
  let latlng = null;
  if (bounds?.isValid()) {
    const lat = direction === "bottom" ? bounds.getSouth() : bounds.getNorth();
    latlng = L.latLng(lat, bounds.getCenter().lng);
  } else {
    latlng = layer.getLayers?.()[0]?.getLatLng?.() || null;
  }
  if (!latlng) return null;
  const content = el("span", { text });
  return L.tooltip({ permanent: true, direction, className, interactive: false, opacity: 1, offset: [0, direction === "bottom" ? 4 : -4] })
    .setLatLng(latlng)
    .setContent(content);
}

/**
 * Highlight the reference: `feature` (GeoJSON, any geometry) with a label. Replaces an earlier
 * reference highlight. `measure` (optional GeoJSON) marks a measure's location as well.
 */
export function highlightReference(feature, label, measure) {
  if (state.reference) for (const layer of state.reference) state.overlay.removeLayer(layer);
  state.reference = [];
  if (!feature) return;
  const halo = outline(feature, "#ffffff", 7, "ref-halo");
  const line = outline(feature, REFERENCE_COLOUR, 3, "ref-outline");
  state.reference.push(halo, line);
  const tip = labelAt(line, label, "ref-label");
  if (tip) state.reference.push(tip);
  if (measure) {
    const mark = outline(measure, REFERENCE_COLOUR, 2, "ref-measure", "4 3");
    state.reference.push(mark);
  }
  for (const layer of state.reference) state.overlay.addLayer(layer);
  line.bringToFront();
}

/** Outline the candidate chosen in the table (null: none); its name is in the legend. */
export function highlightSelected(code) {
  if (state.selected) for (const layer of state.selected) state.overlay.removeLayer(layer);
  state.selected = [];
  if (code && state.tiles) {
    const selection = state.selected;
    fetchFeature(code).then((feature) => {
      if (feature && state.selected === selection) drawSelected(feature);
    }).catch(() => {});
    return;
  }
  const feature = code ? featureOf(code) : null;
  if (feature) drawSelected(feature);
}

function drawSelected(feature) {
  const halo = outline(feature, "#ffffff", 6, "sel-halo");
  const line = outline(feature, SELECTED_COLOUR, 3, "sel-outline", "7 4");
  state.selected.push(halo, line);
  for (const layer of state.selected) state.overlay.addLayer(layer);
}

/** Small rank labels ("1", "2", …) on the top candidates: rows = [{code, rank}]. */
export function showRanks(rows) {
  if (state.ranks) for (const layer of state.ranks) state.overlay.removeLayer(layer);
  state.ranks = [];
  if (state.tiles && rows.length) {
    const ranks = state.ranks;
    fetchFeatures(rows.map((r) => r.code)).then((found) => {
      if (state.ranks !== ranks) return;
      const layers = new Map([...found].map(([code, f]) => [code, L.geoJSON(f).getLayers()[0]]));
      drawRanks(rows, layers);
    }).catch(() => {});
    return;
  }
  drawRanks(rows, state.byCode);
}

function drawRanks(rows, layers) {
  for (const row of rows) {
    const layer = layers.get(String(row.code));
    if (!layer) continue;
    let latlng;
    try {
      latlng = layer.getCenter();
    } catch {
      latlng = layer.getBounds().getCenter();
    }
    const tip = L.tooltip({ permanent: true, direction: "center", className: "rank-label", opacity: 1 })
      .setLatLng(latlng)
      .setContent(el("span", { text: String(row.rank) }));
    state.ranks.push(tip);
  }
  for (const layer of state.ranks) state.overlay.addLayer(layer);
}

/** Zoom to a unit of the current level. */
export function zoomTo(code) {
  if (state.tiles) {
    fetchFeature(code).then((f) => f && fitTo(L.geoJSON(f))).catch(() => {});
    return;
  }
  const layer = state.byCode.get(String(code));
  if (layer) fitTo(layer);
}

function fitTo(layer) {
  const bounds = layer.getBounds();
  if (bounds.isValid()) state.map.fitBounds(bounds, { padding: [40, 40], maxZoom: 12 });
}

// ---------------------------------------------------------------- legend

function swatch(fill, stroke, dash, strokeWidth = 1) {
  const svg = svgEl("svg", {
    class: "swatch", width: 28, height: 18, viewBox: "0 0 28 18", "aria-hidden": "true", focusable: "false",
  });
  svg.append(svgEl("rect", {
    x: 2, y: 2, width: 24, height: 14, fill: fill || "none", stroke, "stroke-width": strokeWidth,
    "stroke-dasharray": dash || null,
  }));
  return svg;
}

/**
 * The legend under the map: title, one entry per class (label from the API and count), the
 * missing/excluded units and the outlines.
 */
export function renderLegend(container, { title, labels, counts, nMissing, missingLabel, colours,
  reference, selected, ranks }) {
  const list = el("ul", { className: "legend-list" });
  labels.forEach((label, i) => {
    const count = counts?.[i];
    list.append(el("li", { className: "legend-class", dataset: { cls: i } },
      swatch(colours[i], "#5a5a5a"),
      el("span", { className: "legend-class__label", text: label }),
      count !== undefined ? el("span", { className: "legend-class__count", text: `(${formatCount(count)})` }) : null));
  });
  if (nMissing) {
    list.append(el("li", { className: "legend-class legend-class--missing" },
      swatch(MISSING_FILL, "#5a5a5a"),
      el("span", { className: "legend-class__label", text: missingLabel || t("analysis.without_value") }),
      el("span", { className: "legend-class__count", text: `(${formatCount(nMissing)})` })));
  }
  const marks = el("ul", { className: "legend-list legend-list--marks" });
  if (reference) {
    marks.append(el("li", { className: "legend-mark" }, swatch(null, REFERENCE_COLOUR, null, 3),
      el("span", { text: `${t("analysis.reference_label")} ${reference}` })));
  }
  if (selected) {
    marks.append(el("li", { className: "legend-mark" }, swatch(null, SELECTED_COLOUR, "5 3", 3),
      el("span", { text: t("analysis.selected", { name: selected }) })));
  }
  if (ranks) {
    marks.append(el("li", { className: "legend-mark" },
      el("span", { className: "rank-chip", text: "1", attrs: { "aria-hidden": "true" } }),
      el("span", { text: t("analysis.legend_ranks", { count: ranks }) })));
  }
  replaceChildren(container,
    el("h3", { className: "legend-title", text: title }),
    list,
    marks.childElementCount ? marks : null);
}
