// The planning map: context (city boundaries, pilot quarters), the measures styled by status and
// publication, and Leaflet-Geoman for drawing, reshaping, moving and deleting.
// Geoman only ever edits the selected measure (or the new, unsaved drawing).

import {
  addBaseMap,
  addSourceAttributions,
  applyStatusColours,
  createMap,
  cssToken,
  fitBbox,
  legendSwatch,
  municipalityStyle,
  quarterStyle,
  registerQuarters,
  statusColour,
} from "./map.js";
import { STATUS_LABELS } from "./planner-form.js";
import { label, lang, t } from "./i18n.js";

const L = globalThis.L;

// Status colours: one definition for every map (map.js, from /api/config); the dash pattern
// and the labels carry the meaning as well (colour is never the only carrier).
const DRAFT_DASH = "8 6";
const NEW_COLOUR = "#c8102e";
const GEOMETRY_PRECISION = 7;

// Geoman's texts from the catalogue (keys planner.geoman_*), in the page's language.
function geomanTexts() {
  return {
    tooltips: {
      placeCircleMarker: t("planner.geoman_place_circle_marker"),
      firstVertex: t("planner.geoman_first_vertex"),
      continueLine: t("planner.geoman_continue_line"),
      finishLine: t("planner.geoman_finish_line"),
      finishPoly: t("planner.geoman_finish_poly"),
    },
    actions: {
      finish: t("planner.geoman_finish"),
      cancel: t("planner.geoman_cancel"),
      removeLastVertex: t("planner.geoman_remove_last_vertex"),
    },
    buttonTitles: {
      drawCircleMarkerButton: t("planner.geoman_draw_circle_marker_button"),
      drawLineButton: t("planner.geoman_draw_line_button"),
      drawPolyButton: t("planner.geoman_draw_poly_button"),
      editButton: t("planner.geoman_edit_button"),
      dragButton: t("planner.geoman_drag_button"),
      deleteButton: t("planner.geoman_delete_button"),
    },
  };
}

const state = {
  map: null,
  group: null, // L.FeatureGroup of the measures
  layers: new Map(), // id -> layer
  selectedId: null,
  pending: null, // the new, unsaved drawing
  editing: false,
  handlers: {},
};

// ---------------------------------------------------------------- styles

// Measures located only by their city carry the city boundary as a stand-in geometry: drawn as
// an outline without fill, so they neither hide nor swallow clicks for everything inside.
const WITHOUT_PLACE = new Set(["city", "unknown"]);

function fillOpacityFor(props) {
  if (WITHOUT_PLACE.has(props.location_precision)) return 0;
  return props.location_precision === "approximate" ? 0.12 : 0.25;
}

/** Published? The public list leaves the flag out: everything in it is published. */
export function isPublished(props = {}) {
  return props.published !== false;
}

/** A line (LineString, MultiLineString) is drawn as a line: never filled. */
function isLine(geometryType) {
  return /LineString$/.test(String(geometryType || ""));
}

/** Style of a measure: colour by status, dashed while a draft, solid when published;
 * areas filled, lines (``geometryType`` LineString/MultiLineString) as strokes only. */
export function measureStyle(props = {}, geometryType = null) {
  const colour = statusColour(props.status);
  const published = isPublished(props);
  const withoutPlace = WITHOUT_PLACE.has(props.location_precision);
  const line = isLine(geometryType);
  return {
    pane: "measures",
    className: `measure measure--${cssToken(props.status)} measure--${published ? "published" : "draft"}` +
      (withoutPlace ? " measure--city" : ""),
    color: colour,
    weight: withoutPlace ? 2 : 3,
    opacity: 1,
    dashArray: published ? null : DRAFT_DASH,
    fill: !withoutPlace && !line,
    fillColor: colour,
    fillOpacity: line ? 0 : fillOpacityFor(props),
    radius: 8,
  };
}

function newStyle() {
  return {
    pane: "measures",
    color: NEW_COLOUR,
    weight: 3,
    opacity: 1,
    dashArray: "2 6",
    lineCap: "round",
    fillColor: NEW_COLOUR,
    fillOpacity: 0.15,
    radius: 8,
  };
}

// ---------------------------------------------------------------- labels

function tooltipContent(props) {
  const root = document.createElement("div");
  root.className = "measure-tip";
  const title = document.createElement("strong");
  title.textContent = props.title || t("planner.untitled");
  const meta = document.createElement("span");
  meta.className = "measure-tip__meta";
  const parts = [STATUS_LABELS[props.status] || props.status, t(isPublished(props) ? "planner.tip_published" : "planner.draft")];
  if (props.action_field) parts.push(label("field", props.action_field));
  meta.textContent = parts.filter(Boolean).join(" · ");
  root.append(title, meta);
  return root;
}

// ---------------------------------------------------------------- geometry

/** The GeoJSON geometry of a layer (lon/lat, 7 decimals). */
export function layerGeometry(layer) {
  return layer ? layer.toGeoJSON(GEOMETRY_PRECISION).geometry : null;
}

function onLayerEdited(event) {
  const layer = event.target || event.layer;
  const id = layer === state.pending ? "new" : layer.feature?.properties?.id;
  state.handlers.onGeometryEdited?.(id, layerGeometry(layer));
}

// ---------------------------------------------------------------- which layer Geoman may touch

function refreshGlobalModes() {
  const pm = state.map.pm;
  if (pm.globalEditModeEnabled()) {
    pm.disableGlobalEditMode();
    pm.enableGlobalEditMode();
  }
  if (pm.globalDragModeEnabled()) {
    pm.disableGlobalDragMode();
    pm.enableGlobalDragMode();
  }
}

function updateEditable() {
  for (const [id, layer] of state.layers) {
    layer.options.pmIgnore = !(state.editing && state.pending === null && id === state.selectedId);
  }
  if (state.pending) state.pending.options.pmIgnore = !state.editing;
  refreshGlobalModes();
}

// ---------------------------------------------------------------- setup

function labelToolbar() {
  // Geoman's buttons are links with a title only: give them a proper accessible name.
  for (const container of state.map.getContainer().querySelectorAll(".leaflet-pm-toolbar .button-container[title]")) {
    const button = container.querySelector(".leaflet-buttons-control-button");
    if (button) button.setAttribute("aria-label", container.getAttribute("title"));
  }
}

function onCreate(event) {
  const layer = event.layer;
  if (state.pending && state.pending !== layer) state.pending.remove();
  state.pending = layer;
  layer.setStyle?.(newStyle());
  layer.on("pm:edit", onLayerEdited);
  updateEditable();
  state.handlers.onDrawn?.(layerGeometry(layer), event.shape);
}

function onRemove(event) {
  const layer = event.layer;
  if (layer === state.pending) {
    state.pending = null;
    state.handlers.onPendingRemoved?.();
    return;
  }
  const id = layer.feature?.properties?.id;
  if (id !== undefined) state.handlers.onRemoveRequested?.(id);
}

/**
 * Create the map in `container`. Handlers: onSelect(id), onDrawn(geometry, shape),
 * onGeometryEdited(id | "new", geometry), onRemoveRequested(id), onPendingRemoved().
 */
export function initMap(container, handlers) {
  state.handlers = handlers;
  const map = createMap(container);
  map.createPane("measures").style.zIndex = "450";
  state.map = map;
  state.group = L.featureGroup().addTo(map);
  if (map.pm) {
    map.pm.setLang(lang, geomanTexts(), lang);
    map.pm.setGlobalOptions({
      allowSelfIntersection: false,
      continueDrawing: false,
      snappable: true,
      snapDistance: 12,
      pathOptions: newStyle(),
      templineStyle: { color: NEW_COLOUR, weight: 2 },
      hintlineStyle: { color: NEW_COLOUR, weight: 2, dashArray: "4 4" },
      panes: { layerPane: "measures", vertexPane: "markerPane", markerPane: "markerPane" },
    });
    map.on("pm:create", onCreate);
    map.on("pm:remove", onRemove);
  }
  return map;
}

/** Show or hide the Geoman toolbar (planners only). */
export function setEditing(enabled) {
  state.editing = Boolean(enabled) && Boolean(state.map.pm);
  if (!state.map.pm) return;
  if (state.editing && !state.map.pm.controlsVisible()) {
    state.map.pm.addControls({
      position: "topleft",
      drawMarker: false,
      drawCircleMarker: true,
      drawPolyline: true,
      drawPolygon: true,
      drawRectangle: false,
      drawCircle: false,
      drawText: false,
      editMode: true,
      dragMode: true,
      cutPolygon: false,
      removalMode: true,
      rotateMode: false,
    });
    labelToolbar();
  } else if (!state.editing) {
    state.map.pm.disableDraw();
    state.map.pm.disableGlobalEditMode();
    state.map.pm.disableGlobalDragMode();
    state.map.pm.disableGlobalRemovalMode();
    if (state.map.pm.controlsVisible()) state.map.pm.removeControls();
  }
  updateEditable();
}

/**
 * The shared base map of /api/config: background tiles (`onError` once when they fail or none
 * are configured) and the status colours every map uses.
 */
export function addBackground(config, onError) {
  applyStatusColours(config);
  addBaseMap(state.map, config, { onTileError: onError });
}

/** Attribution texts from /api/sources. */
export function addAttributions(sources) {
  addSourceAttributions(state.map, sources);
}

export function fitCity(bbox, options) {
  fitBbox(state.map, bbox, options);
}

/** Pilot quarters as context: neutral grey, never confused with a measure's status colour. */
export function contextQuarterStyle(feature) {
  return {
    ...quarterStyle(feature),
    color: "#3d3d3d",
    weight: 1.5,
    opacity: 0.9,
    fillColor: "#9a9a9a",
    fillOpacity: 0.1,
    dashArray: null,
  };
}

function quarterLabel(feature, layer) {
  const name = feature?.properties?.name;
  if (!name) return;
  const label = document.createElement("span");
  label.textContent = name;
  layer.bindTooltip(label, { permanent: true, direction: "center", className: "map-label planner-quarter-label" });
}

/** City boundaries and pilot quarters, not clickable and never edited. */
export function addContext(municipalities, quarters) {
  if (municipalities) {
    L.geoJSON(municipalities, { style: municipalityStyle, interactive: false, pmIgnore: true, snapIgnore: true })
      .addTo(state.map);
  }
  if (quarters) {
    registerQuarters(quarters.features || []);
    L.geoJSON(quarters, {
      style: contextQuarterStyle,
      interactive: false,
      pmIgnore: true,
      snapIgnore: true,
      onEachFeature: quarterLabel,
    }).addTo(state.map);
  }
}

// ---------------------------------------------------------------- measures

function onMeasureClick(event) {
  const id = event.target.feature?.properties?.id;
  // In removal mode Geoman handles the click on the selected measure itself.
  if (state.map.pm?.globalRemovalModeEnabled() && id === state.selectedId) return;
  if (state.map.pm?.globalDrawModeEnabled?.()) return;
  L.DomEvent.stopPropagation(event);
  if (id !== undefined) state.handlers.onSelect?.(id);
}

function onMeasureAdd(event) {
  const layer = event.target;
  const el = layer.getElement?.();
  if (!el) return;
  const props = layer.feature?.properties || {};
  el.dataset.measureId = String(props.id);
  el.setAttribute("tabindex", "-1");
  el.classList.toggle("measure--selected", props.id === state.selectedId);
}

function onEachMeasure(feature, layer) {
  layer.bindTooltip(tooltipContent(feature.properties || {}), { sticky: true, className: "measure-tooltip" });
  layer.on("click", onMeasureClick);
  layer.on("add", onMeasureAdd);
  layer.on("pm:edit", onLayerEdited);
}

/** Replace the measures on the map (GeoJSON features with properties.id). */
export function renderMeasures(features) {
  state.group.clearLayers();
  state.layers.clear();
  const layer = L.geoJSON({ type: "FeatureCollection", features }, {
    style: (f) => measureStyle(f.properties, f.geometry?.type),
    pointToLayer: (f, latlng) => L.circleMarker(latlng, measureStyle(f.properties)),
    onEachFeature: onEachMeasure,
  });
  // Large shapes first, so smaller ones (and points) stay on top and clickable.
  const size = (l) => {
    if (!l.getBounds) return 0;
    const b = l.getBounds();
    return (b.getEast() - b.getWest()) * (b.getNorth() - b.getSouth());
  };
  const children = layer.getLayers().sort((a, b) => size(b) - size(a));
  for (const child of children) {
    state.layers.set(child.feature.properties.id, child);
    state.group.addLayer(child);
  }
  highlightSelected();
  updateEditable();
}

function highlightSelected() {
  for (const [id, layer] of state.layers) {
    const selected = id === state.selectedId;
    layer.getElement?.()?.classList.toggle("measure--selected", selected);
    const base = measureStyle(layer.feature?.properties, layer.feature?.geometry?.type);
    layer.setStyle?.({ weight: selected ? base.weight + 2 : base.weight, fillOpacity: selected && base.fill ? 0.4 : base.fillOpacity });
    if (selected) layer.bringToFront?.();
  }
}

/** Mark a measure as selected: highlighted and the only one Geoman may change. */
export function selectOnMap(id, { zoom = false } = {}) {
  state.selectedId = id;
  highlightSelected();
  updateEditable();
  const layer = state.layers.get(id);
  if (zoom && layer) {
    // Bring it into view; small shapes seen from far away get a closer look.
    const far = state.map.getZoom() < 14;
    if (layer.getBounds) {
      const bounds = layer.getBounds();
      if (far || !state.map.getBounds().contains(bounds)) {
        state.map.fitBounds(bounds, { padding: [60, 60], maxZoom: 16 });
      }
    } else if (layer.getLatLng && (far || !state.map.getBounds().contains(layer.getLatLng()))) {
      state.map.setView(layer.getLatLng(), Math.max(state.map.getZoom(), 16));
    }
  }
}

/** Remove the unsaved drawing, if any. */
export function clearPending() {
  if (state.pending) {
    state.pending.off("pm:edit", onLayerEdited);
    state.pending.remove();
    state.pending = null;
  }
  updateEditable();
}

/** A new point measure in the middle of the map (for keyboard users). */
export function createPointAtCentre() {
  const layer = L.circleMarker(state.map.getCenter(), newStyle());
  layer.addTo(state.map);
  onCreate({ layer, shape: "CircleMarker" });
}

export function hasPending() {
  return state.pending !== null;
}

/** The geometry of the unsaved drawing (or null). */
export function pendingGeometry() {
  return layerGeometry(state.pending);
}

export function getMap() {
  return state.map;
}

// ---------------------------------------------------------------- legend

/** Fill the legend under the map: status colours, line pattern, action fields with counts. */
export function renderLegend({ statuses, actionFields, cities, features }) {
  const statusItems = (statuses || Object.keys(STATUS_LABELS)).map((status) => {
    const li = document.createElement("li");
    li.className = "planner-legend__item";
    li.appendChild(legendSwatch(measureStyle({ status, published: true })));
    const label = document.createElement("span");
    label.textContent = STATUS_LABELS[status] || status;
    li.appendChild(label);
    return li;
  });
  document.getElementById("legend-status").replaceChildren(...statusItems);

  const lineItem = (swatch, text) => {
    const li = document.createElement("li");
    li.className = "planner-legend__item";
    li.appendChild(swatch);
    const label = document.createElement("span");
    label.textContent = text;
    li.appendChild(label);
    return li;
  };
  const neutral = { color: "#333333", fillColor: "#ffffff" };
  document.getElementById("legend-publish").replaceChildren(
    lineItem(legendSwatch({ ...measureStyle({ published: true }), ...neutral }, "line"), t("planner.legend_solid")),
    lineItem(legendSwatch({ ...measureStyle({ published: false }), ...neutral }, "line"), t("planner.legend_dashed")),
    lineItem(legendSwatch(newStyle(), "line"), t("planner.legend_new")),
    lineItem(legendSwatch({ ...measureStyle({ published: true, location_precision: "city" }), ...neutral }), t("planner.legend_city")),
    lineItem(legendSwatch(municipalityStyle({ properties: {} }), "line"), t("planner.legend_boundary")),
    lineItem(legendSwatch(contextQuarterStyle({ properties: {} })), t("planner.legend_quarter")),
  );

  const counts = new Map();
  for (const f of features || []) {
    const p = f.properties || {};
    const key = `${p.city_ags}|${p.action_field}`;
    counts.set(key, (counts.get(key) || 0) + 1);
  }
  const groups = (cities || []).map((city) => {
    const group = document.createElement("div");
    group.className = "planner-legend__city";
    const heading = document.createElement("span");
    heading.className = "planner-legend__city-name";
    heading.textContent = `${city.name}:`;
    const list = document.createElement("ul");
    list.className = "planner-legend__fieldlist";
    list.setAttribute("aria-label", t("planner.legend_fields_of", { city: city.name }));
    for (const field of actionFields?.[city.ags] || []) {
      const li = document.createElement("li");
      const count = counts.get(`${city.ags}|${field}`) || 0;
      li.textContent = `${label("field", field)} (${count})`;
      li.title = t("planner.measures_count", { count });
      list.appendChild(li);
    }
    group.append(heading, list);
    return group;
  });
  document.getElementById("legend-fields").replaceChildren(...groups);
}
