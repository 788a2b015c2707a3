// Analysis page: requests to the analyst API (/api/analysis/…) and the few other endpoints it
// reads (config, sources, collections, measures). Same origin only.

import { lang } from "./i18n.js";

const API_BASE = new URL("api/", document.baseURI);
const TIMEOUT_MS = 120000;
const MAX_PAGES = 50;

/** A failed request: `status` 0 = no connection; `problem` = problem+json body if any. */
export class AnalysisError extends Error {
  constructor(message, status, problem = null) {
    super(message);
    this.name = "AnalysisError";
    this.status = status;
    this.problem = problem;
  }
}

function apiUrl(path, params = {}) {
  const url = new URL(path, API_BASE);
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) {
      for (const item of value) url.searchParams.append(key, String(item));
    } else {
      url.searchParams.set(key, String(value));
    }
  }
  return url;
}

function problemText(body, status) {
  if (!body) return `HTTP ${status}`;
  if (typeof body.detail === "string") return body.detail;
  if (Array.isArray(body.detail)) {
    return body.detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
  }
  if (Array.isArray(body.errors)) {
    return body.errors.map((e) => `${e.pointer || ""} ${e.problem || ""}`.trim()).join("; ");
  }
  return body.title || `HTTP ${status}`;
}

async function send(method, url, { body, accept = "application/json", signal } = {}) {
  const headers = { Accept: `${accept}, application/problem+json;q=0.8` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      signal: signal || AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new AnalysisError(`keine Verbindung zum Server (${err.message})`, 0);
  }
  if (!response.ok) {
    let problem = null;
    try {
      problem = await response.json();
    } catch {
      problem = null;
    }
    throw new AnalysisError(problemText(problem, response.status), response.status, problem);
  }
  return response;
}

async function getJson(path, params, options) {
  const response = await send("GET", apiUrl(path, params), options);
  return response.json();
}

/** Message for the status line. */
export function describeError(err) {
  if (!(err instanceof AnalysisError)) return `Unerwarteter Fehler: ${err?.message || err}`;
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

function sameOriginNext(body, current) {
  const links = Array.isArray(body?.links) ? body.links : [];
  const next = links.find((link) => link && link.rel === "next" && link.href);
  if (!next) return null;
  const url = new URL(next.href, current);
  return new URL(url.pathname + url.search, API_BASE.origin);
}

/** All features of an OGC API collection (following "next" links). */
export async function getItems(collection, params = {}) {
  const features = [];
  let url = apiUrl(`collections/${encodeURIComponent(collection)}/items`, { limit: 1000, ...params });
  for (let page = 0; url && page < MAX_PAGES; page += 1) {
    const response = await send("GET", url, { accept: "application/geo+json" });
    const body = await response.json();
    if (!body || !Array.isArray(body.features)) throw new AnalysisError("keine GeoJSON-Antwort", 200);
    features.push(...body.features);
    url = sameOriginNext(body, url);
  }
  return { type: "FeatureCollection", features };
}

/** Published measures as points: id, title, city. */
export async function getMeasurePoints() {
  const features = [];
  let url = apiUrl("measures/points", { limit: 1000 });
  for (let page = 0; url && page < MAX_PAGES; page += 1) {
    const response = await send("GET", url, { accept: "application/geo+json" });
    const body = await response.json();
    features.push(...(Array.isArray(body?.features) ? body.features : []));
    url = sameOriginNext(body, url);
  }
  return features;
}

/** One published measure (GeoJSON feature). */
export function getMeasure(id) {
  return getJson(`measures/${encodeURIComponent(id)}`, {}, { accept: "application/geo+json" });
}
