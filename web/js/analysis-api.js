// Analysis page: requests to the analyst API (/api/analysis/…) and the few other endpoints it
// reads (config, sources, collections, measures), on the one HTTP client (core/http.js).

import { apiUrl, getAllFeatures, HttpError, request } from "./core/http.js";
import { lang } from "./i18n.js";

export { HttpError as AnalysisError };

const TIMEOUT_MS = 120000;
const MAX_PAGES = 50;

function send(method, url, { body, accept = "application/json", signal } = {}) {
  return request(url, { method, body, accept, signal, timeout: TIMEOUT_MS });
}

async function getJson(path, params, options) {
  const response = await send("GET", apiUrl(path, params), options);
  return response.json();
}

/** Message for the status line. */
export function describeError(err) {
  if (!(err instanceof HttpError)) return `Unerwarteter Fehler: ${err?.message || err}`;
  if (err.status === 0) return `Der Server ist nicht erreichbar: ${err.message}.`;
  const title = err.problem?.title ? `${err.problem.title}: ` : "";
  return `${title}${err.message} (HTTP ${err.status})`;
}

// ---------------------------------------------------------------- service

export const getConfig = () => getJson("config");
export const getSources = () => getJson("sources");

// ---------------------------------------------------------------- analysis

export const getLevels = () => getJson("analysis/levels");
export const getIndicators = () => getJson("analysis/indicators");

/** GET /api/analysis/indicators/{key}/values (format json or geojson). */
export function getValues(key, { level, classes, k, format = "json", signal } = {}) {
  return getJson(`analysis/indicators/${encodeURIComponent(key)}/values`,
    { level, classes, k, format, locale: lang },
    { accept: format === "geojson" ? "application/geo+json" : "application/json", signal });
}

/** POST /api/analysis/transfer. */
export async function postTransfer(body, signal) {
  const response = await send("POST", apiUrl("analysis/transfer"), { body, signal });
  return response.json();
}

/** POST /api/analysis/report → {blob, filename}. */
export async function postReport(body) {
  const response = await send("POST", apiUrl("analysis/report"), { body, accept: "text/html" });
  const disposition = response.headers.get("Content-Disposition") || "";
  const match = disposition.match(/filename="?([^";]+)"?/i);
  const blob = await response.blob();
  return { blob, filename: match ? match[1] : "uebertragbarkeit.html" };
}

/** GET /api/analysis/cross-city. */
export function getCrossCity({ level, top, indicators, weights, method }) {
  return getJson("analysis/cross-city", {
    level,
    top,
    method,
    indicators: indicators && indicators.length ? indicators.join(",") : undefined,
    weights: weights && Object.keys(weights).length
      ? Object.entries(weights).map(([k, w]) => `${k}=${w}`).join(",")
      : undefined,
  });
}

// ---------------------------------------------------------------- features

/** All features of an OGC API collection (following "next" links). */
export async function getItems(collection, params = {}) {
  const url = apiUrl(`collections/${encodeURIComponent(collection)}/items`, { limit: 1000, ...params });
  const { features } = await getAllFeatures(url, { maxPages: MAX_PAGES, timeout: TIMEOUT_MS });
  return { type: "FeatureCollection", features };
}

/** Published measures as points: id, title, city. */
export async function getMeasurePoints() {
  const url = apiUrl("measures/points", { limit: 1000 });
  const { features } = await getAllFeatures(url, { maxPages: MAX_PAGES, timeout: TIMEOUT_MS });
  return features;
}

/** One published measure (GeoJSON feature). */
export function getMeasure(id) {
  return getJson(`measures/${encodeURIComponent(id)}`, {}, { accept: "application/geo+json" });
}
