// Map setup, one named style function per layer, legend swatches and popups.
// Everything that comes from data reaches the DOM through textContent (never innerHTML);
// every label comes from the message catalogue.

import { escapeHtml } from "./core/dom.js";
import { formatDate, formatNumber, lang, t } from "./i18n.js";

const L = globalThis.L;

const SVG_NS = "http://www.w3.org/2000/svg";

/** "Näherung, nicht amtlich" in the page language. */
export function approximateText() {
  return t("layers.approximate");
}

// Panes keep the drawing order fixed when layers are switched off and on again.
const PANES = [
  ["municipalities", 410],
  ["districts", 420],
  ["quarters", 430],
  ["sites", 440],
  ["measureShapes", 445],
  ["near", 450],
  // Measure markers above the permanent quarter labels (tooltip pane 650), below popups (700).
  ["measureMarkers", 660],
];

// Colour-blind safe colours (Okabe–Ito); line pattern and labels carry the meaning as well.
const QUARTER_COLOURS = ["#b34700", "#0060a0", "#8a3f8a", "#006e50"];
const quarterColourBySlug = new Map();
const quarterNameBySlug = new Map();

/** Reduce a slug from data to characters that are safe in a CSS class name. */
export function cssToken(value) {
  return String(value ?? "")
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "");
}

// ---------------------------------------------------------------- status colours

// The statuses of a measure and their colours come from /api/config (`status_colours`, defined
// once in quarters/vocabulary.py; `statuses` as objects with a colour is read too). Marker shape,
// dash pattern and labels carry the meaning as well; before the config is in, one neutral colour.
const FALLBACK_STATUS_COLOUR = "#333333";
const HEX_COLOUR = /^#[0-9a-f]{3}(?:[0-9a-f]{3})?$/i;
const statusColours = new Map();

/** {status: colour} from /api/config (either form), only valid hex colours. */
export function statusColoursOf(config) {
  const found = {};
  const given = config?.status_colours || config?.status_colors;
  if (given && typeof given === "object") Object.assign(found, given);
  for (const entry of Array.isArray(config?.statuses) ? config.statuses : []) {
    if (!entry || typeof entry !== "object") continue;
    const key = entry.id ?? entry.value ?? entry.key ?? entry.name ?? entry.status;
    const colour = entry.colour ?? entry.color;
    if (key && colour) found[key] = colour;
  }
  return Object.fromEntries(Object.entries(found).filter(([, c]) => HEX_COLOUR.test(String(c))));
}

/**
 * Take the status colours of /api/config: statusColour() answers with them and the CSS
 * custom properties --st-<status> (markers, badges, legends) follow.
 */
export function applyStatusColours(config) {
  for (const [status, colour] of Object.entries(statusColoursOf(config))) statusColours.set(status, colour);
  const root = document.documentElement.style;
  for (const [status, colour] of statusColours) root.setProperty(`--st-${cssToken(status).replace(/-/g, "_")}`, colour);
  return Object.fromEntries(statusColours);
}

/** The colour of a status on every map. */
export function statusColour(status) {
  return statusColours.get(status) || FALLBACK_STATUS_COLOUR;
}

function isApproximate(feature) {
  return Boolean(feature && feature.properties && feature.properties.approximate);
}

// ---------------------------------------------------------------- styles

/** Style of the city boundaries: dark solid line, no fill. */
export function municipalityStyle(feature) {
  const ags = cssToken(feature?.properties?.ags);
  return {
    pane: "municipalities",
    className: `municipality municipality--${ags}`,
    color: "#1f1f1f",
    weight: 3,
    opacity: 0.9,
    fill: false,
  };
}

/** Style of the Halle Stadtviertel: thin grey outline, dashed when approximate. */
export function districtStyle(feature) {
  const approximate = isApproximate(feature);
  return {
    pane: "districts",
    className: `district${approximate ? " district--approximate" : ""}`,
    color: "#4d4d4d",
    weight: 1.5,
    opacity: 0.9,
    dashArray: approximate ? "5 4" : null,
    fill: true, // vector tiles take the style as it is (no polygon default)
    fillColor: "#8c8c8c",
    fillOpacity: 0.06,
  };
}

/** Remember the pilot quarters: a stable colour per slug and the names sites refer to. */
export function registerQuarters(features) {
  const slugs = features.map((f) => cssToken(f?.properties?.slug)).sort();
  quarterColourBySlug.clear();
  slugs.forEach((slug, i) => quarterColourBySlug.set(slug, QUARTER_COLOURS[i % QUARTER_COLOURS.length]));
  quarterNameBySlug.clear();
  for (const f of features) quarterNameBySlug.set(f?.properties?.slug, quarterLabel(f?.properties));
}

/** Name of a pilot quarter in the page language (name_en in English when present). */
export function quarterLabel(props) {
  if (!props) return "";
  return (lang === "en" && props.name_en) || props.name || props.slug || "";
}

/** Style of a pilot quarter: strong outline and light fill; long dashes when approximate. */
export function quarterStyle(feature) {
  const slug = cssToken(feature?.properties?.slug);
  const approximate = isApproximate(feature);
  const colour = quarterColourBySlug.get(slug) || QUARTER_COLOURS[0];
  return {
    pane: "quarters",
    className: `quarter quarter--${slug}${approximate ? " quarter--approximate" : ""}`,
    color: colour,
    weight: 3,
    opacity: 1,
    dashArray: approximate ? "10 5" : null,
    fill: true,
    fillColor: colour,
    fillOpacity: 0.18,
  };
}

/** Style of a site (RAW-Gelände, Star Park): dark outline, denser fill; dotted when approximate. */
export function siteStyle(feature) {
  const slug = cssToken(feature?.properties?.slug);
  const approximate = isApproximate(feature);
  return {
    pane: "sites",
    className: `site site--${slug}${approximate ? " site--approximate" : ""}`,
    color: "#2b2b2b",
    weight: 2,
    opacity: 1,
    dashArray: approximate ? "2 4" : null,
    lineCap: approximate ? "round" : "butt",
    fillColor: "#f0c020",
    fillOpacity: 0.55,
    radius: 7,
  };
}

/** A published line (street, route): a line in its status colour, never filled. */
export function measureLineStyle(feature) {
  const status = feature?.properties?.status;
  return {
    className: `measure-shape measure-shape--line measure-shape--${cssToken(status)}`,
    color: statusColour(status),
    weight: 4,
    opacity: 0.9,
    dashArray: feature?.properties?.location_precision === "approximate" ? "8 5" : null,
    fill: false,
  };
}

/** A published area: outline and a light fill in its status colour. */
export function measureAreaStyle(feature) {
  const status = feature?.properties?.status;
  const colour = statusColour(status);
  return {
    className: `measure-shape measure-shape--area measure-shape--${cssToken(status)}`,
    color: colour,
    weight: 2,
    opacity: 0.9,
    dashArray: feature?.properties?.location_precision === "approximate" ? "6 4" : null,
    fill: true,
    fillColor: colour,
    fillOpacity: 0.22,
  };
}

// ---------------------------------------------------------------- formatting

function formatHectares(value) {
  return Number.isFinite(value) ? t("unit.ha", { value: formatNumber(value) }) : null;
}

// ---------------------------------------------------------------- popups

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined && text !== null) el.textContent = String(text);
  return el;
}

/**
 * Build popup content from DOM nodes: title, optional description, a definition list of
 * rows, an optional note and an optional folded-away "Herkunft" (how the outline was made).
 */
function popupContent({ title, description, rows = [], note, origin = [] }) {
  const root = element("div", "popup");
  root.appendChild(element("h3", "popup__title", title || t("common.unnamed")));
  if (description) root.appendChild(element("p", "popup__description", description));
  const list = element("dl", "popup__facts");
  for (const [label, value] of rows) {
    if (value === null || value === undefined || value === "") continue;
    list.appendChild(element("dt", null, label));
    list.appendChild(element("dd", null, value));
  }
  if (list.childElementCount) root.appendChild(list);
  if (note) root.appendChild(element("p", "popup__note", note));
  const originTexts = origin.filter(([, text]) => text);
  if (originTexts.length) {
    const details = element("details", "popup__origin");
    details.appendChild(element("summary", null, t("popup.origin")));
    for (const [label, text] of originTexts) {
      const p = element("p");
      p.appendChild(element("span", "popup__origin-label", `${label}: `));
      p.appendChild(document.createTextNode(String(text)));
      details.appendChild(p);
    }
    root.appendChild(details);
  }
  return root;
}

function approximateNote(props) {
  return props.approximate ? t("popup.outline_approximate") : null;
}

/** Popup for a municipality (city boundary); Leaflet passes the clicked layer. */
export function municipalityPopup(layer) {
  const p = layer.feature.properties || {};
  return popupContent({
    title: p.name,
    rows: [
      [t("popup.kind"), p.bez],
      [t("popup.ags"), p.ags],
      [t("popup.area"), formatHectares(p.area_ha)],
    ],
  });
}

/** Popup for a Stadtviertel. */
export function districtPopup(layer) {
  const p = layer.feature.properties || {};
  const date = formatDate(p.population_date);
  const population = Number.isInteger(p.population)
    ? date
      ? t("popup.population_as_of", { value: formatNumber(p.population), date })
      : formatNumber(p.population)
    : null;
  return popupContent({
    title: p.name,
    rows: [
      [t("popup.stadtbezirk"), p.stadtbezirk],
      [t("popup.code"), p.code],
      [t("popup.area_official"), formatHectares(p.area_ha)],
      [t("popup.population"), population],
    ],
    note: approximateNote(p),
  });
}

/** Popup for a pilot quarter. */
export function quarterPopup(layer) {
  const p = layer.feature.properties || {};
  return popupContent({
    title: quarterLabel(p),
    description: p.description,
    rows: [
      [t("popup.theme"), p.theme],
      [t("popup.area_computed"), formatHectares(p.area_ha)],
      [t("popup.area_stated"), formatHectares(p.stated_area_ha)],
    ],
    note: approximateNote(p),
    origin: [
      [t("popup.method"), p.method],
      [t("popup.area_source"), p.area_source],
    ],
  });
}

/** Popup for a site, naming the pilot quarter it belongs to. */
export function sitePopup(layer) {
  const p = layer.feature.properties || {};
  return popupContent({
    title: p.name,
    description: p.description,
    rows: [
      [t("popup.quarter"), quarterNameBySlug.get(p.quarter_slug) || p.quarter_slug],
      [t("popup.area_computed"), formatHectares(p.area_ha)],
      [t("popup.area_stated"), formatHectares(p.stated_area_ha)],
    ],
    note: approximateNote(p),
    origin: [
      [t("popup.method"), p.method],
      [t("popup.area_source"), p.area_source],
    ],
  });
}

// ---------------------------------------------------------------- feature binding

const POPUP_OPTIONS = { maxWidth: 340, maxHeight: 340, autoPanPadding: [24, 24] };

function labelElement(text) {
  return element("span", null, text);
}

function bindPermanentLabel(feature, layer) {
  const name = quarterLabel(feature?.properties);
  if (name) {
    layer.bindTooltip(labelElement(name), {
      permanent: true,
      direction: "center",
      className: "map-label",
    });
  }
}

function bindHoverLabel(feature, layer) {
  const name = feature?.properties?.name;
  if (name) layer.bindTooltip(labelElement(name), { sticky: true, className: "map-hover" });
}

/** 'add' handler: the outline is a Tab stop named after its feature (Enter opens the popup). */
function makeTabStop(event) {
  const el = event.target.getElement?.();
  if (!el) return;
  el.setAttribute("tabindex", "0");
  el.setAttribute("role", "button"); // Enter opens its details
  const props = event.target.feature?.properties;
  const name = props && (props.name_en !== undefined ? quarterLabel(props) : props.name);
  if (name) el.setAttribute("aria-label", name);
}

/** 'add' handler: Chromium makes SVG shapes with tooltip focus listeners Tab stops; not these. */
function keepOutOfTabOrder(event) {
  event.target.getElement?.()?.setAttribute("tabindex", "-1");
}

/** onEachFeature of the city boundaries. */
export function onEachMunicipality(feature, layer) {
  layer.bindPopup(municipalityPopup, POPUP_OPTIONS);
  layer.on("add", keepOutOfTabOrder);
}

/** onEachFeature of the Stadtviertel: many of them, so a hover name and no Tab stop. */
export function onEachDistrict(feature, layer) {
  layer.bindPopup(districtPopup, POPUP_OPTIONS);
  bindHoverLabel(feature, layer);
  layer.on("add", keepOutOfTabOrder);
}

/** onEachFeature of the pilot quarters: a permanent name label and a Tab stop. */
export function onEachQuarter(feature, layer) {
  layer.bindPopup(quarterPopup, POPUP_OPTIONS);
  bindPermanentLabel(feature, layer);
  layer.on("add", makeTabStop);
}

/** onEachFeature of the sites: a hover name and a Tab stop. */
export function onEachSite(feature, layer) {
  layer.bindPopup(sitePopup, POPUP_OPTIONS);
  bindHoverLabel(feature, layer);
  layer.on("add", makeTabStop);
}

// ---------------------------------------------------------------- layers

function pointAsCircle(feature, latlng) {
  return L.circleMarker(latlng);
}

/** A GeoJSON layer drawn with a named style function and a named onEachFeature function. */
export function createGeoJsonLayer(collection, style, onEachFeature) {
  return L.geoJSON(collection, { style, onEachFeature, pointToLayer: pointAsCircle });
}

/**
 * Create the map inside `container`: zoom and scale controls, the panes (the public map's by
 * default) and popup close buttons labelled in the page language. `labels` overrides the
 * control texts (pages without the catalogue), other options go to L.map.
 */
export function createMap(container, { panes = PANES, labels = {}, ...options } = {}) {
  const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  const map = L.map(container, {
    zoomControl: false,
    zoomAnimation: !reducedMotion,
    fadeAnimation: !reducedMotion,
    markerZoomAnimation: !reducedMotion,
    ...options,
  });
  const text = {
    zoomIn: labels.zoomIn ?? t("map.zoom_in"),
    zoomOut: labels.zoomOut ?? t("map.zoom_out"),
    close: labels.close ?? t("popup.close"),
    closeLabel: labels.closeLabel ?? t("popup.close_label"),
  };
  L.control.zoom({ zoomInTitle: text.zoomIn, zoomOutTitle: text.zoomOut }).addTo(map);
  L.control.scale({ imperial: false }).addTo(map);
  for (const [name, zIndex] of panes) {
    map.createPane(name).style.zIndex = String(zIndex);
  }
  // Leaflet labels the popup close button in English only.
  map.on("popupopen", (event) => {
    const close = event.popup.getElement()?.querySelector(".leaflet-popup-close-button");
    if (close) {
      close.setAttribute("aria-label", text.closeLabel);
      close.title = text.close;
    }
  });
  return map;
}

/** Add the background tile layer; `onError` runs once, on the first tile that fails. */
export function addTileLayer(map, url, attribution, onError, { opacity = 1, maxZoom = 19 } = {}) {
  const layer = L.tileLayer(url, {
    attribution: escapeHtml(attribution),
    maxZoom,
    opacity,
    // Tile servers such as OSM ask for a Referer; send the origin only.
    referrerPolicy: "strict-origin-when-cross-origin",
  });
  if (onError) layer.once("tileerror", onError);
  layer.addTo(map);
  return layer;
}

/**
 * The base map of every page: the background tiles of /api/config (`onTileError` when they
 * fail or none are configured) and the attribution of every data source ("© GeoBasis-DE /
 * BKG 2021", …) in the attribution control. `sources` is the page's /api/sources answer (or
 * a promise of it); resolves to the list of sources once their attributions are shown.
 */
export async function addBaseMap(map, config, { sources, onTileError, opacity, maxZoom } = {}) {
  if (config?.tile_url) {
    addTileLayer(map, config.tile_url, config.tile_attribution || "", onTileError, { opacity, maxZoom });
  } else {
    onTileError?.();
  }
  let list = [];
  try {
    const body = await sources;
    list = (Array.isArray(body) ? body : Array.isArray(body?.sources) ? body.sources : []).filter(Boolean);
  } catch (err) {
    console.error("sources:", err);
  }
  addSourceAttributions(map, list);
  return list;
}

/** Add every attribution text from /api/sources to the attribution control (as plain text). */
export function addSourceAttributions(map, sources) {
  const seen = new Set();
  for (const source of sources) {
    const text = source && (source.attribution || source.publisher || source.name);
    if (!text || seen.has(text)) continue;
    seen.add(text);
    map.attributionControl.addAttribution(escapeHtml(text));
  }
}

/** Fit the map to a [minx, miny, maxx, maxy] bbox in EPSG:4326. */
export function fitBbox(map, bbox, options = {}) {
  const [minx, miny, maxx, maxy] = bbox;
  map.fitBounds(
    [
      [miny, minx],
      [maxy, maxx],
    ],
    { padding: [16, 16], ...options },
  );
}

// ---------------------------------------------------------------- legend

/** A small SVG sample drawn with the same options the style function gives the map. */
export function legendSwatch(style, kind = "area") {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("class", "swatch");
  svg.setAttribute("width", "28");
  svg.setAttribute("height", "18");
  svg.setAttribute("viewBox", "0 0 28 18");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const shape = document.createElementNS(SVG_NS, kind === "line" ? "line" : "rect");
  if (kind === "line") {
    shape.setAttribute("x1", "2");
    shape.setAttribute("y1", "9");
    shape.setAttribute("x2", "26");
    shape.setAttribute("y2", "9");
  } else {
    shape.setAttribute("x", "2");
    shape.setAttribute("y", "2");
    shape.setAttribute("width", "24");
    shape.setAttribute("height", "14");
  }
  shape.setAttribute("stroke", style.color);
  shape.setAttribute("stroke-width", String(Math.min(style.weight, 3)));
  shape.setAttribute("stroke-opacity", String(style.opacity ?? 1));
  if (style.dashArray) shape.setAttribute("stroke-dasharray", style.dashArray);
  if (style.lineCap) shape.setAttribute("stroke-linecap", style.lineCap);
  if (style.fill === false || kind === "line") {
    shape.setAttribute("fill", "none");
  } else {
    shape.setAttribute("fill", style.fillColor || style.color);
    // A touch stronger than on the map so the sample stays recognisable at 28 px.
    shape.setAttribute("fill-opacity", String(Math.min(1, (style.fillOpacity ?? 0.2) * 1.6)));
  }
  svg.appendChild(shape);
  return svg;
}

// ---------------------------------------------------------------- vector tiles

const VECTORGRID_SRC = "/vendor/leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.min.js";
const TILE_GRID = "WebMercatorQuad";
let vectorGridLoading = null;

/** Leaflet.VectorGrid, loaded on first use (pages that draw no tiles never load it). */
export function loadVectorGrid() {
  if (L.vectorGrid) return Promise.resolve(L.vectorGrid);
  vectorGridLoading ||= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = VECTORGRID_SRC;
    script.onload = () => (L.vectorGrid ? resolve(L.vectorGrid) : reject(new Error("Leaflet.VectorGrid missing")));
    script.onerror = () => {
      vectorGridLoading = null;
      reject(new Error("Leaflet.VectorGrid could not be loaded"));
    };
    document.head.append(script);
  });
  return vectorGridLoading;
}

/** URL template of a collection's Mapbox Vector Tiles (OGC API Tiles, z/row/col). */
export function vectorTileUrl(collection) {
  return `/api/collections/${encodeURIComponent(collection)}/tiles/${TILE_GRID}/{z}/{y}/{x}`;
}

/**
 * A layer of a collection's vector tiles, drawn as SVG paths (interactive: clicks carry the
 * tile feature's properties as event.layer.properties). `style(feature, zoom)` is the same
 * style function a GeoJSON layer of the collection takes (feature = {properties}). Tiles
 * below `minZoom` are not asked for; above `maxNativeZoom` the last tiles are scaled.
 */
export function vectorTileLayer(collection, style, { minZoom, maxNativeZoom = 16, interactive = true, pane } = {}) {
  return L.vectorGrid.protobuf(vectorTileUrl(collection), {
    rendererFactory: L.svg.tile,
    interactive,
    pane,
    minZoom,
    maxNativeZoom,
    vectorTileLayerStyles: { [collection]: (properties, zoom) => style({ properties }, zoom) },
    getFeatureId: (feature) => feature.properties?.id,
    fetchOptions: { credentials: "same-origin" },
  });
}
