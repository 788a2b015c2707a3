// Fetch helpers for the quarters API (same origin, absolute /api/ paths, so pages at
// /massnahmen/{id} and /ideen/{id} use the same base).

import { lang } from "./i18n.js";

const API_BASE = new URL("/api/", location.origin);
const REQUEST_TIMEOUT_MS = 30000;
const MAX_PAGES = 100;

/** Error raised for a failed API request; `status` is the HTTP status or 0 for network errors. */
export class ApiError extends Error {
  constructor(message, status, url, body = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.url = url;
    this.body = body;
  }
}

function apiUrl(path, params = {}) {
  const url = new URL(path, API_BASE);
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, String(value));
  }
  return url;
}

async function request(url, { method = "GET", accept = "application/json", body, csrf } = {}) {
  const headers = { Accept: accept, "Accept-Language": lang };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (csrf) headers["X-CSRF-Token"] = csrf;
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (err) {
    throw new ApiError(`network error: ${err.message}`, 0, String(url));
  }
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    if (response.ok) throw new ApiError(`invalid JSON: ${err.message}`, response.status, String(url));
  }
  if (!response.ok) {
    throw new ApiError(`HTTP ${response.status}`, response.status, String(url), data);
  }
  return data;
}

function fetchJson(url, accept = "application/json") {
  return request(url, { accept });
}

const GEOJSON = "application/geo+json, application/json;q=0.9";

/** GET /api/config: tiles, cities with bbox, action fields per city, statuses. */
export function getConfig() {
  return fetchJson(apiUrl("config"));
}

/** GET /api/sources: the data sources with publisher, licence and attribution text. */
export function getSources() {
  return fetchJson(apiUrl("sources"));
}

function nextLink(page) {
  const links = Array.isArray(page.links) ? page.links : [];
  const next = links.find((link) => link && link.rel === "next" && link.href);
  return next ? next.href : null;
}

// Behind a proxy the server may announce another scheme or host: never leave this origin.
function sameOriginNext(href, base) {
  if (!href) return null;
  const url = new URL(href, base);
  return new URL(url.pathname + url.search, API_BASE.origin);
}

/** GET /api/collections/{collection}/items as one FeatureCollection (all pages). */
export async function getItems(collection, params = {}) {
  const features = [];
  let pageUrl = apiUrl(`collections/${encodeURIComponent(collection)}/items`, params);
  let first = null;
  for (let page = 0; pageUrl && page < MAX_PAGES; page += 1) {
    const body = await fetchJson(pageUrl, GEOJSON);
    if (!body || body.type !== "FeatureCollection" || !Array.isArray(body.features)) {
      throw new ApiError("not a GeoJSON FeatureCollection", 200, String(pageUrl));
    }
    first = first || body;
    features.push(...body.features);
    pageUrl = sameOriginNext(nextLink(body), pageUrl);
  }
  if (pageUrl) throw new ApiError(`more than ${MAX_PAGES} pages`, 200, String(pageUrl));
  return {
    type: "FeatureCollection",
    features,
    numberMatched: first && Number.isInteger(first.numberMatched) ? first.numberMatched : undefined,
    numberReturned: features.length,
  };
}

/** GET /api/measures: one page of published measures (filters as query parameters). */
export function getMeasures(params) {
  return fetchJson(apiUrl("measures", { ...params, view: "public" }), GEOJSON);
}

/** Address of the map points of the public list's filters, in the compact format. */
export function measurePointsUrl(params = {}) {
  return apiUrl("measures/points", { ...params, limit: 10000, format: "compact" });
}

/**
 * GET /api/measures/points?format=compact: the same set as the public list, as parallel
 * arrays (id, title, status, action_field, city_ags, location_precision, lon, lat) for the map.
 * Sent without extra headers, so that it is the same request as the
 * <link rel="preload" as="fetch" crossorigin> in index.html (unfiltered page) and takes over
 * the preloaded answer instead of asking again.
 */
export async function getMeasurePoints(params) {
  const url = measurePointsUrl(params);
  let response;
  try {
    response = await fetch(url, { credentials: "same-origin", signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  } catch (err) {
    throw new ApiError(`network error: ${err.message}`, 0, String(url));
  }
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    if (response.ok) throw new ApiError(`invalid JSON: ${err.message}`, response.status, String(url));
  }
  if (!response.ok) throw new ApiError(`HTTP ${response.status}`, response.status, String(url), data);
  if (!data || data.format !== "compact" || !Array.isArray(data.id)) {
    throw new ApiError("not the compact points format", response.status, String(url));
  }
  return data;
}

/** GET /api/places: places whose name contains `q` (or every place of one `kind`). */
export function searchPlaces(params) {
  return fetchJson(apiUrl("places", params));
}

/** GET /api/measures/{id}: the full record of one published measure. */
export function getMeasure(id) {
  return fetchJson(apiUrl(`measures/${encodeURIComponent(id)}`), GEOJSON);
}

/** GET /api/near: measures around a point (lon, lat) or a district, within radius metres. */
export function getNear(params) {
  return fetchJson(apiUrl("near", params));
}

/** Address of the Atom feed of published changes at a place. */
export function feedHref(params) {
  const url = apiUrl("feeds/changes.atom", params);
  return url.pathname + url.search;
}

/** POST /api/ideas (202 on success; ApiError with problem+json body on 422/429). */
export function submitIdea(idea) {
  return request(apiUrl("ideas"), { method: "POST", body: idea });
}

/** GET /api/ideas: moderated ideas (moderators: all, optionally by state). */
export function getIdeas(params = {}) {
  return fetchJson(apiUrl("ideas", params));
}

/** GET /api/ideas/{id}. */
export function getIdea(id) {
  return fetchJson(apiUrl(`ideas/${encodeURIComponent(id)}`));
}

/** POST /api/ideas/{id}/moderate (moderators; CSRF token of the session). */
export function moderateIdea(id, decision, csrf) {
  return request(apiUrl(`ideas/${encodeURIComponent(id)}/moderate`), {
    method: "POST",
    body: decision,
    csrf,
  });
}

/** GET /api/ideas/workshop-codes (moderators): codes still valid. */
export function getWorkshops() {
  return fetchJson(apiUrl("ideas/workshop-codes"));
}

/** POST /api/ideas/workshop-codes (moderators; CSRF token of the session). */
export function openWorkshop(workshop, csrf) {
  return request(apiUrl("ideas/workshop-codes"), { method: "POST", body: workshop, csrf });
}

/** POST /api/auth/login → {user, csrf_token}. */
export function login(username, password) {
  return request(apiUrl("auth/login"), { method: "POST", body: { username, password } });
}

/** POST /api/auth/logout. */
export function logout(csrf) {
  return request(apiUrl("auth/logout"), { method: "POST", body: {}, csrf });
}

/** GET /api/auth/me → {user, csrf_token} or {user: null}. */
export function me() {
  return fetchJson(apiUrl("auth/me"));
}

/** A short reason for a failed request (for status lines). */
export function describeError(err) {
  return err && err.status ? `HTTP ${err.status}` : "—";
}
