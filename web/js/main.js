// Wiring: configuration, background map, the four vector layers, legend and status line.

import { getConfig, getItems, getSources } from "./api.js";
import {
  APPROXIMATE_TEXT,
  addSourceAttributions,
  addTileLayer,
  createGeoJsonLayer,
  createMap,
  cssToken,
  districtStyle,
  fitBbox,
  legendSwatch,
  municipalityStyle,
  onEachDistrict,
  onEachMunicipality,
  onEachQuarter,
  onEachSite,
  quarterStyle,
  registerQuarters,
  siteStyle,
} from "./map.js";

const HALLE_AGS = "15002000";
const FALLBACK_VIEW = { center: [51.18, 12.02], zoom: 9 };
const TILE_FAILURE_TEXT =
  "Hintergrundkarte nicht erreichbar – die Ebenen werden ohne Hintergrund angezeigt.";

// One entry per layer checkbox in index.html (checkbox value = key).
const LAYERS = [
  {
    key: "municipalities",
    collection: "municipalities",
    params: { project_city: true },
    title: "Stadtgrenzen",
    style: municipalityStyle,
    onEachFeature: onEachMunicipality,
  },
  {
    key: "districts",
    collection: "districts",
    params: { limit: 1000 },
    title: "Stadtviertel Halle",
    style: districtStyle,
    onEachFeature: onEachDistrict,
  },
  {
    key: "quarters",
    collection: "quarters",
    params: {},
    title: "Pilotquartiere",
    style: quarterStyle,
    onEachFeature: onEachQuarter,
  },
  {
    key: "sites",
    collection: "sites",
    params: {},
    title: "Standorte",
    style: siteStyle,
    onEachFeature: onEachSite,
  },
];

const state = {
  map: null,
  viewFromConfig: false,
  cities: new Map(), // ags -> city from /api/config
  layers: new Map(), // layer key -> L.GeoJSON
  features: new Map(), // "layerKey:slug" -> feature layer (legend buttons)
  approximate: new Map(), // layer key -> [approximate count, total]
};

// ---------------------------------------------------------------- status line

function setStatus(text, kind = "info") {
  document.getElementById("status-data").textContent = text;
  document.getElementById("status").classList.toggle("status--error", kind === "error");
  document.body.dataset.mapState = kind === "info" ? "loading" : kind;
}

/** tileerror (once): say so in German, keep the vector layers on a plain background. */
function showTileFailure() {
  document.getElementById("status-tiles").textContent = TILE_FAILURE_TEXT;
  document.getElementById("map").classList.add("map--no-tiles");
  document.body.dataset.tiles = "failed";
}

function describeError(err) {
  return err && err.status ? `HTTP ${err.status}` : "keine Verbindung";
}

// ---------------------------------------------------------------- legend

function legendItem(swatch, text) {
  const li = document.createElement("li");
  li.className = "legend-item";
  if (swatch) li.appendChild(swatch);
  const label = document.createElement("span");
  label.className = "legend-item__text";
  label.textContent = text;
  li.appendChild(label);
  return li;
}

/** A legend entry for one quarter or site: swatch, a button that shows it, approximation note. */
function featureLegendItem(def, featureLayer) {
  const props = featureLayer.feature.properties || {};
  const slug = cssToken(props.slug ?? featureLayer.feature.id);
  state.features.set(`${def.key}:${slug}`, featureLayer);

  const li = document.createElement("li");
  li.className = `legend-item legend-item--${def.key}`;
  li.dataset.slug = slug;
  li.appendChild(legendSwatch(def.style(featureLayer.feature)));
  const button = document.createElement("button");
  button.type = "button";
  button.className = "link-button";
  button.dataset.layer = def.key;
  button.dataset.slug = slug;
  button.textContent = props.name || props.slug || "(ohne Namen)";
  const hint = document.createElement("span");
  hint.className = "visually-hidden";
  hint.textContent = " – auf der Karte zeigen";
  button.appendChild(hint);
  li.appendChild(button);
  if (props.approximate) {
    const note = document.createElement("span");
    note.className = "legend-item__note";
    note.textContent = APPROXIMATE_TEXT;
    li.appendChild(note);
  }
  return li;
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
        `gestrichelt: ${APPROXIMATE_TEXT} (${approx} Viertel)`,
      ),
    );
  }
  if (official) {
    items.push(
      legendItem(
        legendSwatch(districtStyle({ properties: { approximate: false } })),
        `durchgezogen: amtlicher Umriss (${official} Viertel)`,
      ),
    );
  }
  return items;
}

function fillLegend(def, layer) {
  const container = document.getElementById(`legend-${def.key}`);
  const features = layer.getLayers();
  if (def.key === "municipalities") {
    const slot = document.querySelector('[data-swatch="municipalities"]');
    slot.replaceChildren(legendSwatch(municipalityStyle({ properties: {} }), "line"));
    return;
  }
  if (!features.length) {
    container.replaceChildren(legendItem(null, "keine Einträge"));
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
    if (counts && counts[0] > 0) parts.push(`${def.title} (${counts[0]} von ${counts[1]})`);
  }
  document.getElementById("approx-detail").textContent = parts.length
    ? `Betrifft ${parts.join(", ")}.`
    : "";
  document.getElementById("approx-note").hidden = parts.length === 0;
}

// ---------------------------------------------------------------- layers

function setLayerVisible(key, visible) {
  const layer = state.layers.get(key);
  if (!layer) return;
  if (visible) state.map.addLayer(layer);
  else state.map.removeLayer(layer);
  document.querySelector(`.layer[data-layer="${key}"]`)?.classList.toggle("layer--off", !visible);
}

/** change on a layer checkbox: show or hide that layer. */
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
  const checkbox = document.getElementById(`layer-${key}`);
  if (!checkbox.checked) {
    checkbox.checked = true;
    setLayerVisible(key, true);
  }
  if (featureLayer.getBounds) {
    state.map.fitBounds(featureLayer.getBounds(), { padding: [40, 40], maxZoom: 15 });
  } else if (featureLayer.getLatLng) {
    state.map.setView(featureLayer.getLatLng(), 15);
  }
  featureLayer.openPopup();
}

async function loadLayer(def) {
  const collection = await getItems(def.collection, def.params);
  if (def.key === "quarters") registerQuarters(collection.features);
  const layer = createGeoJsonLayer(collection, def.style, def.onEachFeature);
  state.layers.set(def.key, layer);
  const approx = collection.features.filter((f) => f.properties?.approximate).length;
  state.approximate.set(def.key, [approx, collection.features.length]);
  if (document.getElementById(`layer-${def.key}`).checked) layer.addTo(state.map);
  if (def.key === "municipalities" && !state.viewFromConfig && collection.features.length) {
    state.map.fitBounds(layer.getBounds(), { padding: [16, 16], animate: false });
  }
  fillLegend(def, layer);
  updateApproximateNote();
  return layer;
}

function markLayerFailed(def, err) {
  document.getElementById(`layer-${def.key}`).disabled = true;
  document
    .getElementById(`legend-${def.key}`)
    .replaceChildren(legendItem(null, `nicht geladen (${describeError(err)})`));
}

async function loadAllLayers() {
  setStatus("Ebenen werden geladen …");
  const results = await Promise.allSettled(LAYERS.map(loadLayer));
  const failed = [];
  results.forEach((result, i) => {
    if (result.status === "rejected") {
      console.error(`layer ${LAYERS[i].key}:`, result.reason);
      markLayerFailed(LAYERS[i], result.reason);
      failed.push(`${LAYERS[i].title} (${describeError(result.reason)})`);
    }
  });
  const total = LAYERS.length;
  if (!failed.length) {
    setStatus(`Alle ${total} Ebenen geladen.`, "ready");
  } else if (failed.length < total) {
    setStatus(
      `${total - failed.length} von ${total} Ebenen geladen. Nicht geladen: ${failed.join(", ")}.`,
      "error",
    );
  } else {
    setStatus(`Die Ebenen konnten nicht geladen werden: ${failed.join(", ")}.`, "error");
  }
}

// ---------------------------------------------------------------- cities

function validBbox(bbox) {
  return Array.isArray(bbox) && bbox.length === 4 && bbox.every(Number.isFinite);
}

function cityButton(city) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "city-button";
  button.dataset.ags = city.ags;
  button.textContent = `${city.name} zeigen`;
  return button;
}

/** click on a city button: fit the map to that city's bbox from /api/config. */
function onCityClick(event) {
  const button = event.target.closest("button[data-ags]");
  const city = button && state.cities.get(button.dataset.ags);
  if (city) fitBbox(state.map, city.bbox);
}

function setupCities(cities) {
  const group = document.getElementById("city-buttons");
  for (const city of cities) state.cities.set(String(city.ags), city);
  if (cities.length) group.replaceChildren(...cities.map(cityButton));
  else group.textContent = "Nicht verfügbar (Kartenkonfiguration fehlt).";
  const start = cities.find((c) => c.ags === HALLE_AGS) || cities[0];
  state.viewFromConfig = Boolean(start);
  if (start) fitBbox(state.map, start.bbox, { animate: false });
  else state.map.setView(FALLBACK_VIEW.center, FALLBACK_VIEW.zoom);
}

// ---------------------------------------------------------------- sources

function safeHttpUrl(value) {
  try {
    const url = new URL(value);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}

function linkOrText(text, href, rel) {
  const safe = safeHttpUrl(href);
  const el = document.createElement(safe ? "a" : "span");
  el.textContent = text;
  if (safe) {
    el.href = safe;
    el.rel = rel;
  }
  return el;
}

function sourceListItem(source) {
  const li = document.createElement("li");
  const name = linkOrText(source.name || source.key || "Quelle", source.url, "noopener");
  name.classList.add("source__name");
  li.appendChild(name);
  if (source.publisher) li.append(` – ${source.publisher}`);
  if (source.licence) {
    li.append(", Lizenz: ", linkOrText(source.licence, source.licence_url, "license noopener"));
  }
  if (source.attribution) {
    const attribution = document.createElement("span");
    attribution.className = "source__attribution";
    attribution.textContent = source.attribution;
    li.append(". Namensnennung: ", attribution);
  }
  return li;
}

function renderSources(sources, tileAttribution) {
  const items = sources.map(sourceListItem);
  if (tileAttribution && !sources.some((s) => s.attribution === tileAttribution)) {
    const li = document.createElement("li");
    li.textContent = `Hintergrundkarte: ${tileAttribution}`;
    items.push(li);
  }
  document.getElementById("source-list").replaceChildren(...items);
}

async function loadSources(tileAttribution) {
  try {
    const body = await getSources();
    const sources = (Array.isArray(body?.sources) ? body.sources : []).filter(Boolean);
    addSourceAttributions(state.map, sources);
    renderSources(sources, tileAttribution);
  } catch (err) {
    console.error("sources:", err);
    document
      .getElementById("source-list")
      .replaceChildren(legendItem(null, `Quellenangaben nicht erreichbar (${describeError(err)}).`));
  }
}

// ---------------------------------------------------------------- start

async function main() {
  if (!globalThis.L) {
    setStatus("Die Kartenbibliothek (Leaflet) konnte nicht geladen werden.", "error");
    return;
  }
  state.map = createMap(document.getElementById("map"));
  const layerList = document.getElementById("layer-list");
  layerList.addEventListener("change", onLayerToggle);
  layerList.addEventListener("click", onLegendClick);
  document.getElementById("city-buttons").addEventListener("click", onCityClick);

  setStatus("Kartenkonfiguration wird geladen …");
  let config = null;
  try {
    config = await getConfig();
  } catch (err) {
    console.error("config:", err);
  }
  setupCities((config?.cities || []).filter((c) => c && validBbox(c.bbox)));
  if (config?.tile_url) {
    addTileLayer(state.map, config.tile_url, config.tile_attribution || "", showTileFailure);
  } else {
    showTileFailure();
  }

  await Promise.all([loadSources(config?.tile_attribution), loadAllLayers()]);
  if (!config) {
    const current = document.getElementById("status-data").textContent;
    setStatus(`${current} Kartenkonfiguration nicht erreichbar.`, "error");
  }
}

main();
