// The public map page: filters, the result list and the clustered measures on the map always
// show the same set; filter state, page, map view and the near-me place live in the URL.

import { getItems, getMeasureClusters, getMeasurePoints, getMeasures, getSources, searchPlaces } from "./api.js";
import { formatNumber, label, t } from "./i18n.js";
import {
  approximateText,
  addBaseMap,
  applyStatusColours,
  createGeoJsonLayer,
  createMap,
  cssToken,
  districtPopup,
  districtStyle,
  fitBbox,
  legendSwatch,
  loadVectorGrid,
  measureAreaStyle,
  measureLineStyle,
  municipalityStyle,
  onEachDistrict,
  onEachMunicipality,
  onEachQuarter,
  onEachSite,
  quarterLabel,
  quarterPopup,
  quarterStyle,
  registerQuarters,
  siteStyle,
  vectorTileLayer,
} from "./map.js";
import {
  HALLE_AGS,
  LOCATED,
  cityName,
  config as loadConfig,
  describeError,
  el,
  embeddedJson,
  initPage,
  safeHttpUrl,
  statusBadge,
} from "./public-common.js";
import { MeasureLayer, clusterIndex, loadSupercluster, statusLegendItems } from "./public-measures.js";

const L = globalThis.L;
const FALLBACK_VIEW = { center: [51.18, 12.02], zoom: 9 };
const PAGE_SIZE = 20;
const SUMMARY_LENGTH = 220;
// URL parameter → API query parameter of /api/measures.
const FILTERS = {
  q: "q",
  city: "city_ags",
  field: "action_field",
  status: "status",
  quarter: "quarter",
  district: "district",
};

// One entry per base layer checkbox in index.html (checkbox value = key).
const LAYERS = [
  {
    key: "municipalities",
    collection: "municipalities",
    params: { project_city: true },
    title: "layers.municipalities_short",
    style: municipalityStyle,
    onEachFeature: onEachMunicipality,
  },
  {
    // Drawn from the vector tiles; names, extents and the approximation flag come from the
    // place list (/api/places?kind=district), the full record on a click.
    key: "districts",
    collection: "districts",
    tiles: { kind: "district", popup: districtPopup, lookup: (p) => ({ code: p.code, city_ags: p.city_ags }) },
    title: "layers.districts_short",
    style: districtStyle,
    onEachFeature: onEachDistrict,
  },
  {
    key: "quarters",
    collection: "quarters",
    tiles: { kind: "quarter", popup: quarterPopup, lookup: (p) => ({ slug: p.slug }), labels: true },
    title: "layers.quarters",
    style: quarterStyle,
    onEachFeature: onEachQuarter,
  },
  {
    key: "sites",
    collection: "sites",
    params: {},
    title: "layers.sites_short",
    style: siteStyle,
    onEachFeature: onEachSite,
  },
];

const state = {
  map: null,
  config: null,
  viewFromUrl: false,
  cities: new Map(), // ags -> city from /api/config
  layers: new Map(), // layer key -> L.GeoJSON
  features: new Map(), // "layerKey:slug" -> feature layer (legend buttons)
  approximate: new Map(), // layer key -> [approximate count, total]
  quarters: [], // [{slug, name}]
  districts: [], // [{id, name, code}]
  filters: {}, // URL name -> value
  page: 1,
  total: 0,
  request: 0,
  measures: null,
  near: null,
  shapes: null, // L.LayerGroup of the measures' lines and areas (vector tiles)
  shown: null, // ids of the measures the filters keep (null: all)
};

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- URL state

function readUrl() {
  const params = new URLSearchParams(location.search);
  for (const name of Object.keys(FILTERS)) {
    const value = (params.get(name) || "").trim();
    if (value) state.filters[name] = value.slice(0, 100);
  }
  const page = Number.parseInt(params.get("page") || "1", 10);
  state.page = Number.isInteger(page) && page > 0 ? page : 1;
  return params;
}

/** The map view from ?map=zoom/lat/lon, or null. */
function viewFromParams(params) {
  const parts = (params.get("map") || "").split("/").map(Number);
  if (parts.length !== 3 || !parts.every(Number.isFinite)) return null;
  const [zoom, lat, lon] = parts;
  if (zoom < 3 || zoom > 19 || Math.abs(lat) > 85 || Math.abs(lon) > 180) return null;
  return { zoom, center: [lat, lon] };
}

/** Write filters, page, map view and the near-me place into the address (no new history entry). */
export function writeUrl() {
  const params = new URLSearchParams(location.search);
  for (const name of Object.keys(FILTERS)) {
    if (state.filters[name]) params.set(name, state.filters[name]);
    else params.delete(name);
  }
  if (state.page > 1) params.set("page", String(state.page));
  else params.delete("page");
  if (state.map) {
    const c = state.map.getCenter();
    params.set("map", `${state.map.getZoom()}/${c.lat.toFixed(5)}/${c.lng.toFixed(5)}`);
    state.map.getContainer().dataset.view = params.get("map");
  }
  for (const [name, value] of Object.entries(state.near?.urlParams() || { near: null, r: null })) {
    if (value === null || value === undefined) params.delete(name);
    else params.set(name, value);
  }
  const query = params.toString();
  history.replaceState(null, "", `${location.pathname}${query ? `?${query}` : ""}${location.hash}`);
}

function apiFilters() {
  const params = {};
  for (const [name, apiName] of Object.entries(FILTERS)) {
    if (state.filters[name]) params[apiName] = state.filters[name];
  }
  return params;
}

// ---------------------------------------------------------------- status line

function setStatus(text, kind = "info") {
  $("status-data").textContent = text;
  $("status").classList.toggle("status--error", kind === "error");
  document.body.dataset.mapState = kind === "info" ? "loading" : kind;
}

/** tileerror (once): say so, keep the vector layers on a plain background. */
function showTileFailure() {
  $("status-tiles").textContent = t("map.tiles_failed");
  $("map").classList.add("map--no-tiles");
  document.body.dataset.tiles = "failed";
}

// ---------------------------------------------------------------- filter form

function option(value, text) {
  return el("option", { text, attrs: { value } });
}

function fillSelect(select, allText, entries) {
  const current = select.value;
  select.replaceChildren(option("", allText), ...entries.map(([value, text]) => option(value, text)));
  select.value = entries.some(([value]) => value === current) ? current : "";
}

function fieldsFor(city) {
  const byCity = state.config?.action_fields || {};
  if (city && byCity[city]) return [...byCity[city]];
  return [...new Set(Object.values(byCity).flat())].sort((a, b) =>
    label("field", a).localeCompare(label("field", b)),
  );
}

function fillFilterOptions() {
  const cfg = state.config || {};
  fillSelect(
    $("filter-city"),
    t("filter.all_cities"),
    (cfg.cities || []).map((c) => [String(c.ags), c.name]),
  );
  fillSelect(
    $("filter-status"),
    t("filter.all_statuses"),
    (cfg.statuses || []).map((s) => [s, label("status", s)]),
  );
  fillSelect(
    $("filter-field"),
    t("filter.all_fields"),
    fieldsFor(state.filters.city).map((f) => [f, label("field", f)]),
  );
  fillSelect(
    $("filter-quarter"),
    t("filter.all_quarters"),
    state.quarters.map((q) => [q.slug, q.name]),
  );
  fillSelect(
    $("filter-district"),
    t("filter.all_districts"),
    state.districts.map((d) => [String(d.id), d.name]),
  );
  syncForm();
}

/** Put state.filters into the form controls (after options exist). */
function syncForm() {
  $("filter-q").value = state.filters.q || "";
  for (const name of ["city", "status", "field", "quarter", "district"]) {
    const select = $(`filter-${name}`);
    const wanted = state.filters[name] || "";
    const known = [...select.options].some((o) => o.value === wanted);
    // Keep a value from the URL whose options have not arrived yet (quarters, districts).
    if (known) select.value = wanted;
  }
  updateFilterFeed();
}

function readForm() {
  const filters = {};
  const q = $("filter-q").value.trim();
  if (q) filters.q = q.slice(0, 100);
  for (const name of ["city", "status", "field", "quarter", "district"]) {
    const value = $(`filter-${name}`).value;
    if (value) filters[name] = value;
  }
  return filters;
}

function onFilterChange(event) {
  if (event.target.id === "filter-q") return; // text is applied on submit or after typing
  const cityChanged = event.target.id === "filter-city";
  if (cityChanged) {
    fillSelect(
      $("filter-field"),
      t("filter.all_fields"),
      fieldsFor(event.target.value).map((f) => [f, label("field", f)]),
    );
  }
  applyFilters(readForm());
  if (cityChanged && event.target.value) {
    const city = state.cities.get(event.target.value);
    if (city) fitBbox(state.map, city.bbox);
  }
}

let typingTimer = 0;
function onFilterInput(event) {
  if (event.target.id !== "filter-q") return;
  clearTimeout(typingTimer);
  typingTimer = setTimeout(() => applyFilters(readForm()), 450);
}

function onFilterSubmit(event) {
  event.preventDefault();
  clearTimeout(typingTimer);
  applyFilters(readForm());
}

function onFilterReset() {
  $("filter-q").value = "";
  for (const name of ["city", "status", "field", "quarter", "district"]) $(`filter-${name}`).value = "";
  fillSelect($("filter-field"), t("filter.all_fields"), fieldsFor("").map((f) => [f, label("field", f)]));
  applyFilters({});
  $("filter-q").focus();
}

function sameFilters(a, b) {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every((k) => (a[k] || "") === (b[k] || ""));
}

function applyFilters(filters, { page = 1 } = {}) {
  if (sameFilters(filters, state.filters) && page === state.page && document.body.dataset.results === "ready") {
    return;
  }
  state.filters = filters;
  state.page = page;
  updateFilterFeed();
  writeUrl();
  loadResults();
}

/** A feed link for the chosen quarter or district ("Diesen Ort abonnieren"). */
function updateFilterFeed() {
  const link = $("filter-feed");
  const quarter = state.quarters.find((q) => q.slug === state.filters.quarter);
  const district = state.districts.find((d) => String(d.id) === state.filters.district);
  const place = district || quarter;
  link.hidden = !place;
  if (!place) return;
  link.href = district
    ? `/api/feeds/changes.atom?district=${encodeURIComponent(district.id)}`
    : `/api/feeds/changes.atom?quarter=${encodeURIComponent(quarter.slug)}`;
  $("filter-feed-text").textContent = t("feed.follow_named", { name: place.name });
}

// ---------------------------------------------------------------- results: list and map

function truncate(text, length) {
  const value = String(text || "").trim();
  return value.length > length ? `${value.slice(0, length - 1).trimEnd()}…` : value;
}

function resultItem(feature) {
  const p = feature.properties || {};
  const id = String(p.id ?? feature.id);
  const located = LOCATED.has(p.location_precision);
  const titleId = `result-${id}`;
  const meta = el("p", { className: "result__meta" }, [
    statusBadge(p.status),
    el("span", { className: "result__field", text: label("field", p.action_field) }),
    el("span", { className: "result__city", text: cityName(state.config, p.city_ags) }),
  ]);
  const place = el("p", { className: "result__place" });
  if (located) {
    place.append(
      el("button", {
        className: "link-button result__show",
        text: t("list.show_on_map"),
        attrs: { type: "button", "aria-describedby": titleId },
        dataset: { showId: id },
      }),
    );
  } else {
    place.append(
      el("span", {
        className: `place-tag place-tag--${p.location_precision === "city" ? "city" : "unknown"}`,
        text: label("precision", p.location_precision || "unknown"),
      }),
    );
  }
  return el("li", { className: "result", dataset: { id, status: p.status || "" } }, [
    el("article", { className: "result__card", attrs: { "aria-labelledby": titleId } }, [
      el("h3", { className: "result__title" }, [
        el("a", { text: p.title || t("common.unnamed"), attrs: { id: titleId, href: `/massnahmen/${encodeURIComponent(id)}` } }),
      ]),
      meta,
      p.summary ? el("p", { className: "result__summary", text: truncate(p.summary, SUMMARY_LENGTH) }) : null,
      place,
    ]),
  ]);
}

function renderList(page) {
  const list = $("measure-list");
  list.replaceChildren(...page.features.map(resultItem));
  if (!page.features.length) {
    list.append(el("li", { className: "result result--empty", text: t("list.empty") }));
  }
  const pages = Math.max(1, Math.ceil(state.total / PAGE_SIZE));
  $("pager").hidden = pages <= 1;
  $("page-prev").disabled = state.page <= 1;
  $("page-next").disabled = state.page >= pages;
  $("page-info").textContent = t("list.page_of", { page: state.page, pages });
  $("result-count").textContent = formatNumber(state.total);
}

function renderSummary(total, mapped) {
  const summary = $("result-summary");
  const parts = [t("list.found", { count: total })];
  if (total > 0) {
    parts.push(t("list.on_map", { count: mapped }));
    if (total - mapped > 0) parts.push(t("list.not_on_map", { count: total - mapped }));
  }
  summary.textContent = parts.join(" ");
  summary.dataset.total = String(total);
  summary.dataset.mapped = String(mapped);
}

/**
 * The list page and the map points of the current filters: both requests at once, as
 * [page promise, points promise]; the points' cluster index is built as soon as they are in.
 */
function fetchResults() {
  return [fetchPage(), fetchPoints()];
}

function fetchPage() {
  const offset = (state.page - 1) * PAGE_SIZE;
  return getMeasures({ ...apiFilters(), limit: PAGE_SIZE, offset });
}

function fetchPoints() {
  return Promise.all([getMeasurePoints(apiFilters()), loadSupercluster()]).then(([data]) => clusterIndex(data));
}

async function loadResults(pending = null) {
  const request = ++state.request;
  document.body.dataset.results = "loading";
  $("result-summary").textContent = t("common.loading");
  const offset = (state.page - 1) * PAGE_SIZE;
  const [pageRequest, pointsRequest] = pending || fetchResults();
  // The map does not wait for the list page (nor the list for the map).
  const drawn = pointsRequest.then((points) => {
    if (request !== state.request) return 0;
    setShownShapes(points, Object.keys(apiFilters()).length > 0);
    return state.measures.setData(points);
  });
  try {
    const [page, mapped] = await Promise.all([pageRequest, drawn]);
    if (request !== state.request) return;
    state.total = Number.isInteger(page.numberMatched) ? page.numberMatched : page.features.length;
    if (offset > 0 && offset >= state.total) {
      // A permalink to a page that no longer exists: show the last one.
      state.page = Math.max(1, Math.ceil(state.total / PAGE_SIZE));
      writeUrl();
      loadResults();
      return;
    }
    renderList(page);
    renderSummary(state.total, mapped);
    document.body.dataset.results = "ready";
  } catch (err) {
    if (request !== state.request) return;
    console.error("measures:", err);
    document.body.dataset.results = "error";
    $("result-summary").textContent = t("list.failed", { reason: describeError(err) });
    $("measure-list").replaceChildren();
  }
}

function onPager(event) {
  const pages = Math.max(1, Math.ceil(state.total / PAGE_SIZE));
  const next = event.target.id === "page-next" ? state.page + 1 : state.page - 1;
  if (next < 1 || next > pages) return;
  state.page = next;
  writeUrl();
  loadResults().then(() => $("results-heading").focus());
}

function onListClick(event) {
  const button = event.target.closest("button[data-show-id]");
  if (!button) return;
  if (!$("layer-measures").checked) {
    $("layer-measures").checked = true;
    state.measures.setVisible(true);
  }
  state.measures.show(button.dataset.showId);
  $("map").focus({ preventScroll: true });
  $("map").scrollIntoView({ block: "nearest" });
}

// ---------------------------------------------------------------- legend and layers

function legendItem(swatch, text) {
  const li = el("li", { className: "legend-item" });
  if (swatch) li.appendChild(swatch);
  li.appendChild(el("span", { className: "legend-item__text", text }));
  return li;
}

/** A legend entry for one quarter or site: swatch, a button that shows it, approximation note. */
function featureLegendItem(def, featureLayer) {
  const props = featureLayer.feature.properties || {};
  const slug = cssToken(props.slug ?? featureLayer.feature.id);
  state.features.set(`${def.key}:${slug}`, featureLayer);
  const name = def.key === "quarters" ? quarterLabel(props) : props.name || props.slug;
  const button = el(
    "button",
    { className: "link-button", text: name || t("common.unnamed"), attrs: { type: "button" }, dataset: { layer: def.key, slug } },
    [el("span", { className: "visually-hidden", text: t("layers.show_on_map") })],
  );
  return el("li", { className: `legend-item legend-item--${def.key}`, dataset: { slug } }, [
    legendSwatch(def.style(featureLayer.feature)),
    button,
    props.approximate ? el("span", { className: "legend-item__note", text: approximateText() }) : null,
  ]);
}

function byName(a, b) {
  const an = a.feature.properties?.name || "";
  const bn = b.feature.properties?.name || "";
  return an.localeCompare(bn, "de");
}

function districtLegendItems(features) {
  const approx = features.filter((f) => f.feature.properties?.approximate).length;
  const official = features.length - approx;
  const items = [];
  if (approx) {
    items.push(
      legendItem(
        legendSwatch(districtStyle({ properties: { approximate: true } })),
        t("layers.dashed", { text: approximateText(), count: approx }),
      ),
    );
  }
  if (official) {
    items.push(
      legendItem(
        legendSwatch(districtStyle({ properties: { approximate: false } })),
        t("layers.solid", { count: official }),
      ),
    );
  }
  return items;
}

/** `features`: the feature layers of a GeoJSON layer, or the places of a tiled one. */
function fillLegend(def, features) {
  const container = $(`legend-${def.key}`);
  if (def.key === "municipalities") {
    const slot = document.querySelector('[data-swatch="municipalities"]');
    slot.replaceChildren(legendSwatch(municipalityStyle({ properties: {} }), "line"));
    return;
  }
  if (!features.length) {
    container.replaceChildren(legendItem(null, t("layers.none")));
  } else if (def.key === "districts") {
    container.replaceChildren(...districtLegendItems(features));
  } else {
    container.replaceChildren(...features.sort(byName).map((f) => featureLegendItem(def, f)));
  }
}

function updateApproximateNote() {
  const parts = [];
  for (const def of LAYERS) {
    const counts = state.approximate.get(def.key);
    if (counts && counts[0] > 0) {
      parts.push(t("layers.approx_part", { layer: t(def.title), count: counts[0], total: counts[1] }));
    }
  }
  $("approx-detail").textContent = parts.length ? t("layers.approx_affects", { list: parts.join(", ") }) : "";
  $("approx-note").hidden = parts.length === 0;
}

function setLayerVisible(key, visible) {
  if (key === "measures") {
    state.measures.setVisible(visible);
    if (state.shapes) {
      if (visible) state.shapes.addTo(state.map);
      else state.shapes.remove();
    }
  } else {
    const layer = state.layers.get(key);
    if (!layer) return;
    if (visible) state.map.addLayer(layer);
    else state.map.removeLayer(layer);
  }
  document.querySelector(`.layer[data-layer="${key}"]`)?.classList.toggle("layer--off", !visible);
}

function onLayerToggle(event) {
  const checkbox = event.target;
  if (checkbox.matches('input[type="checkbox"]')) setLayerVisible(checkbox.value, checkbox.checked);
}

/** click on a quarter/site name in the legend: switch its layer on, zoom to it, open its popup. */
function onLegendClick(event) {
  const button = event.target.closest("button[data-layer][data-slug]");
  if (!button) return;
  const { layer: key, slug } = button.dataset;
  const featureLayer = state.features.get(`${key}:${slug}`);
  if (!featureLayer) return;
  const checkbox = $(`layer-${key}`);
  if (!checkbox.checked) {
    checkbox.checked = true;
    setLayerVisible(key, true);
  }
  if (featureLayer.place) {
    const { bbox, centre } = featureLayer.place;
    if (bbox) fitBbox(state.map, bbox, { padding: [40, 40], maxZoom: 15 });
    if (centre) openTilePopup(LAYERS.find((d) => d.key === key), featureLayer.feature.properties, L.latLng(centre[1], centre[0]));
    return;
  }
  if (featureLayer.getBounds) {
    state.map.fitBounds(featureLayer.getBounds(), { padding: [40, 40], maxZoom: 15 });
  } else if (featureLayer.getLatLng) {
    state.map.setView(featureLayer.getLatLng(), 15);
  }
  featureLayer.openPopup();
}

const TILE_POPUP = { maxWidth: 340, maxHeight: 340, autoPanPadding: [24, 24] };

/**
 * The popup of a tile feature: at once from the tile's properties, then with the full record
 * of the OGC API (description, dates) when it is in.
 */
function openTilePopup(def, properties, latlng) {
  const popup = L.popup(TILE_POPUP)
    .setLatLng(latlng)
    .setContent(def.tiles.popup({ feature: { properties } }))
    .openOn(state.map);
  getItems(def.collection, { ...def.tiles.lookup(properties), limit: 1 })
    .then((fc) => {
      const full = fc.features[0];
      if (full && state.map.hasLayer(popup)) popup.setContent(def.tiles.popup({ feature: full }));
    })
    .catch((err) => console.error(`${def.key} record:`, err));
}

/** A place of /api/places as the feature the legend, labels and style functions take. */
function placeFeature(def, place) {
  const properties = {
    id: Number(place.id),
    slug: place.slug,
    code: place.slug,
    name: place.name,
    city_ags: place.city_ags,
    approximate: Boolean(place.approximate),
  };
  if (def.key === "quarters" && place.detail) properties.name_en = place.detail;
  return { feature: { type: "Feature", properties }, place };
}

/** A tiled base layer: the vector tiles, and for quarters a name label at a point inside. */
async function loadTiledLayer(def) {
  const [, body] = await Promise.all([loadVectorGrid(), searchPlaces({ kind: def.tiles.kind, limit: 1000 })]);
  const entries = (body?.places || []).map((place) => placeFeature(def, place));
  const features = entries.map((e) => e.feature);
  if (def.key === "quarters") registerQuarters(features);
  const tiles = vectorTileLayer(def.collection, def.style, { pane: def.key });
  tiles.on("click", (event) => {
    L.DomEvent.stop(event);
    openTilePopup(def, event.layer?.properties || {}, event.latlng);
  });
  const container = state.map.getContainer();
  tiles.on("loading", () => { container.dataset[`${def.key}Tiles`] = "loading"; });
  tiles.on("load", () => { container.dataset[`${def.key}Tiles`] = "loaded"; });
  const group = L.layerGroup([tiles]);
  if (def.tiles.labels) {
    for (const { feature, place } of entries) {
      if (!place.centre) continue;
      group.addLayer(L.tooltip({ permanent: true, direction: "center", className: "map-label", interactive: false })
        .setLatLng([place.centre[1], place.centre[0]])
        .setContent(el("span", { text: quarterLabel(feature.properties) })));
    }
  }
  return { layer: group, features, entries };
}

async function loadLayer(def) {
  const tiled = def.tiles ? await loadTiledLayer(def) : null;
  const collection = tiled ? { features: tiled.features } : await getItems(def.collection, def.params);
  if (def.key === "quarters") {
    registerQuarters(collection.features);
    state.quarters = collection.features
      .map((f) => ({ slug: f.properties?.slug, name: quarterLabel(f.properties) }))
      .filter((q) => q.slug)
      .sort((a, b) => a.name.localeCompare(b.name));
  }
  if (def.key === "districts") {
    state.districts = collection.features
      .map((f) => ({ id: f.properties?.id ?? f.id, name: f.properties?.name || "", code: f.properties?.code }))
      .filter((d) => d.id !== undefined && d.name)
      .sort((a, b) => a.name.localeCompare(b.name, "de"));
  }
  const layer = tiled ? tiled.layer : createGeoJsonLayer(collection, def.style, def.onEachFeature);
  state.layers.set(def.key, layer);
  const approx = collection.features.filter((f) => f.properties?.approximate).length;
  state.approximate.set(def.key, [approx, collection.features.length]);
  if ($(`layer-${def.key}`).checked) layer.addTo(state.map);
  fillLegend(def, tiled ? tiled.entries : layer.getLayers());
  updateApproximateNote();
  return layer;
}

function markLayerFailed(def, err) {
  $(`layer-${def.key}`).disabled = true;
  $(`legend-${def.key}`).replaceChildren(legendItem(null, t("layers.failed", { reason: describeError(err) })));
}

async function loadAllLayers() {
  setStatus(t("map.layers_loading"));
  const results = await Promise.allSettled(LAYERS.map(loadLayer));
  const failed = [];
  results.forEach((result, i) => {
    if (result.status === "rejected") {
      console.error(`layer ${LAYERS[i].key}:`, result.reason);
      markLayerFailed(LAYERS[i], result.reason);
      failed.push(`${t(LAYERS[i].title)} (${describeError(result.reason)})`);
    }
  });
  fillFilterOptions();
  state.near?.setDistricts(state.districts);
  const total = LAYERS.length;
  if (!failed.length) {
    setStatus(t("map.layers_loaded", { count: total }), "ready");
  } else if (failed.length < total) {
    setStatus(t("map.layers_partly", { loaded: total - failed.length, total, list: failed.join(", ") }), "error");
  } else {
    setStatus(t("map.layers_failed", { list: failed.join(", ") }), "error");
  }
}

// ---------------------------------------------------------------- lines and areas

// Published lines and areas are drawn as shapes from the zoom at which a city fills the map
// (below it they are only their cluster markers); the markers stay the clickable part.
const SHAPES_FROM_ZOOM = 11;

/** The filters keep only some measures: the shapes follow the same set as list and markers. */
function setShownShapes(data, filtered) {
  state.shown = filtered ? new Set(data.points.map((f) => String(f.properties.id))) : null;
  if (state.shapes) state.shapes.eachLayer((layer) => layer.redraw());
}

function shapeStyle(style) {
  return (feature, zoom) =>
    state.shown && !state.shown.has(String(feature.properties?.id)) ? [] : style(feature, zoom);
}

async function loadMeasureShapes() {
  try {
    await loadVectorGrid();
  } catch (err) {
    console.error("shapes:", err);
    return;
  }
  const options = { pane: "measureShapes", minZoom: SHAPES_FROM_ZOOM, interactive: false };
  state.shapes = L.layerGroup([
    vectorTileLayer("measures-areas", shapeStyle(measureAreaStyle), options),
    vectorTileLayer("measures-lines", shapeStyle(measureLineStyle), options),
  ]);
  if ($("layer-measures").checked) state.shapes.addTo(state.map);
}

// ---------------------------------------------------------------- cities

function validBbox(bbox) {
  return Array.isArray(bbox) && bbox.length === 4 && bbox.every(Number.isFinite);
}

function cityButton(city) {
  return el("button", {
    className: "button button--small",
    text: t("map.show_city", { name: city.name }),
    attrs: { type: "button" },
    dataset: { ags: city.ags },
  });
}

function onCityClick(event) {
  const button = event.target.closest("button[data-ags]");
  const city = button && state.cities.get(button.dataset.ags);
  if (city) fitBbox(state.map, city.bbox);
}

function setupCities(cities) {
  const group = $("city-buttons");
  for (const city of cities) state.cities.set(String(city.ags), city);
  if (cities.length) group.replaceChildren(...cities.map(cityButton));
  else group.textContent = t("map.no_config");
  if (state.viewFromUrl) return;
  const chosen = state.filters.city && cities.find((c) => String(c.ags) === state.filters.city);
  const start = chosen || cities.find((c) => c.ags === HALLE_AGS) || cities[0];
  if (start) fitBbox(state.map, start.bbox, { animate: false });
  else state.map.setView(FALLBACK_VIEW.center, FALLBACK_VIEW.zoom);
}

// ---------------------------------------------------------------- sources

function linkOrText(text, href, rel) {
  const safe = safeHttpUrl(href);
  const node = el(safe ? "a" : "span", { text });
  if (safe) {
    node.href = safe;
    node.rel = rel;
  }
  return node;
}

function sourceListItem(source) {
  const li = el("li");
  const name = linkOrText(source.name || source.key || t("footer.source"), source.url, "noopener");
  name.classList.add("source__name");
  li.appendChild(name);
  if (source.publisher) li.append(` – ${source.publisher}`);
  if (source.licence) {
    li.append(t("footer.licence"), linkOrText(source.licence, source.licence_url, "license noopener"));
  }
  if (source.attribution) {
    li.append(t("footer.attribution"), el("span", { className: "source__attribution", text: source.attribution }));
  }
  return li;
}

function renderSources(sources, tileAttribution) {
  const items = sources.map(sourceListItem);
  if (tileAttribution && !sources.some((s) => s.attribution === tileAttribution)) {
    items.push(el("li", { text: t("footer.tiles", { text: tileAttribution }) }));
  }
  $("source-list").replaceChildren(...items);
}

async function loadSources(tileAttribution) {
  try {
    const body = await getSources();
    const sources = (Array.isArray(body?.sources) ? body.sources : []).filter(Boolean);
    state.resolveSources?.(sources);
    renderSources(sources, tileAttribution);
  } catch (err) {
    state.resolveSources?.([]);
    console.error("sources:", err);
    $("source-list").replaceChildren(legendItem(null, t("footer.sources_failed", { reason: describeError(err) })));
  }
}

// ---------------------------------------------------------------- start

let moveTimer = 0;
function onMoveEnd() {
  clearTimeout(moveTimer);
  moveTimer = setTimeout(writeUrl, 150);
}

/** Resolves once the next frame is on screen (or after 100 ms in a hidden tab without frames). */
function afterNextFrame() {
  return new Promise((resolve) => {
    requestAnimationFrame(() => setTimeout(resolve, 0));
    setTimeout(resolve, 100);
  });
}

/** The clusters of the first view: embedded in the page (#page-clusters), else asked for. */
function firstViewClusters() {
  const embedded = embeddedJson("page-clusters");
  if (embedded?.format === "clusters" && typeof embedded.levels === "object") return Promise.resolve(embedded);
  return getMeasureClusters({}).catch((err) => {
    console.error("clusters:", err);
    return null;
  });
}

// The measures are what people come for: ask for them before anything else (catalogue,
// configuration and base layers follow), so the map draws them as early as possible.
// The usual first view (no filters, no map view in the address) is drawn from the server's
// clusters (small, preloaded by index.html); the 10,000 points (also preloaded) are parsed
// and indexed only after that frame, and the page's own index then takes over the markers.
const startParams = readUrl();
const earlyClusters = Object.keys(apiFilters()).length || startParams.get("map")
  ? null
  : firstViewClusters();
const earlyResults = earlyClusters ? [fetchPage(), null] : fetchResults();
for (const pending of earlyResults) pending?.catch(() => {}); // handled where it is awaited
loadConfig().catch(() => {}); // cached; awaited in main()

async function main() {
  await initPage();
  const params = startParams;
  if (!globalThis.L) {
    setStatus(t("map.library_failed"), "error");
    return;
  }
  // What the first view needs (configuration and clusters: embedded in the page or
  // preloaded), awaited before the page is touched: map, view and markers then reach the
  // screen in one frame, without a frame of a map that has no view yet in between.
  setStatus(t("map.config_loading"));
  const [config, clusters] = await Promise.all([
    loadConfig().catch((err) => {
      console.error("config:", err);
      return null;
    }),
    earlyClusters,
  ]);
  state.map = createMap($("map"));
  state.measures = new MeasureLayer(state.map, { cityName: (ags) => cityName(state.config, ags) });
  const view = viewFromParams(params);
  if (view) {
    state.viewFromUrl = true;
    state.map.setView(view.center, view.zoom, { animate: false });
  }
  const layerList = $("layer-list");
  layerList.addEventListener("change", onLayerToggle);
  layerList.addEventListener("click", onLegendClick);
  $("city-buttons").addEventListener("click", onCityClick);
  const form = $("filter-form");
  form.addEventListener("change", onFilterChange);
  form.addEventListener("input", onFilterInput);
  form.addEventListener("submit", onFilterSubmit);
  $("filter-reset").addEventListener("click", onFilterReset);
  $("page-prev").addEventListener("click", onPager);
  $("page-next").addEventListener("click", onPager);
  $("measure-list").addEventListener("click", onListClick);
  syncForm();

  state.config = config;
  applyStatusColours(config);
  $("legend-measures").replaceChildren(...statusLegendItems(config?.statuses || []));
  setupCities((config?.cities || []).filter((c) => c && validBbox(c.bbox)));
  state.map.on("moveend", onMoveEnd);
  // The measures first: usually they are in already (index.html preloads them, their cluster
  // index is built), so they reach the screen in the next frame; the background tiles, the
  // filter options and the near-me search follow right after that frame.
  if (earlyClusters) {
    if (clusters && state.measures.setPreview(clusters)) await afterNextFrame();
    earlyResults[1] = fetchPoints();
  }
  const results = loadResults(earlyResults);
  await afterNextFrame();
  // Background tiles now; the sources' attributions once /api/sources is in (loadSources).
  const sources = new Promise((resolve) => { state.resolveSources = resolve; });
  addBaseMap(state.map, config, { sources, onTileError: showTileFailure });
  fillFilterOptions();
  try {
    // Not needed for the first view: loaded after the measures are drawn.
    const { setupNear } = await import("./public-near.js");
    state.near = setupNear({ map: state.map, config, onChange: writeUrl, params });
  } catch (err) {
    console.error("near:", err);
  }
  try {
    const { setupPlaceSearch } = await import("./place-search.js");
    setupPlaceSearch({
      map: state.map,
      input: $("place-q"),
      list: $("place-list"),
      status: $("place-status"),
      onPlace: (place) => {
        if (place.kind === "measure" || place.kind === "place") state.measures.show(place.id);
      },
    });
  } catch (err) {
    console.error("place search:", err);
  }
  writeUrl();
  // Base layers and sources compete for the same server: they follow the measures.
  await results;
  await Promise.all([loadSources(config?.tile_attribution), loadAllLayers(), loadMeasureShapes()]);
  if (!config) {
    setStatus(`${$("status-data").textContent} ${t("map.config_failed")}`, "error");
  }
}

main();
