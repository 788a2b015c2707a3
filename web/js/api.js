// The public pages' endpoints, on the one HTTP client (core/http.js): same origin, absolute
// /api/ paths, so pages at /massnahmen/{id} and /ideen/{id} use the same base.

import { apiUrl, getAllFeatures, getJson, GEOJSON, HttpError } from "./core/http.js";

export { HttpError as ApiError };

const MAX_PAGES = 100;

function fetchJson(url, accept = "application/json") {
  return getJson(url, { accept });
}

/** GET /api/config: tiles, cities with bbox, action fields per city, statuses. */
export function getConfig() {
  return fetchJson(apiUrl("config"));
}

/** GET /api/sources: the data sources with publisher, licence and attribution text. */
export function getSources() {
  return fetchJson(apiUrl("sources"));
}

/** GET /api/collections/{collection}/items as one FeatureCollection (all pages). */
export async function getItems(collection, params = {}) {
  const { features, first } = await getAllFeatures(
    apiUrl(`collections/${encodeURIComponent(collection)}/items`, params), { maxPages: MAX_PAGES });
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
  const data = await getJson(url, { plain: true });
  if (!data || data.format !== "compact" || !Array.isArray(data.id)) {
    throw new HttpError("not the compact points format", { status: 200, url });
  }
  return data;
}

/**
 * GET /api/measures/points?format=clusters: the map's clusters of the same set for the zoom
 * levels of a first view (computed on the server like the page's own index; see
 * MeasureLayer.setPreview). Preloaded by index.html for the unfiltered page, like the points.
 */
export async function getMeasureClusters(params) {
  const url = apiUrl("measures/points", { ...params, limit: 10000, format: "clusters" });
  const data = await getJson(url, { plain: true });
  if (!data || data.format !== "clusters" || typeof data.levels !== "object") {
    throw new HttpError("not the clusters format", { status: 200, url });
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
  return getJson(apiUrl("ideas"), { method: "POST", body: idea });
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
  return getJson(apiUrl(`ideas/${encodeURIComponent(id)}/moderate`), {
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
  return getJson(apiUrl("ideas/workshop-codes"), { method: "POST", body: workshop, csrf });
}

/** POST /api/auth/login → {user, csrf_token}. */
export function login(username, password) {
  return getJson(apiUrl("auth/login"), { method: "POST", body: { username, password } });
}

/** POST /api/auth/logout. */
export function logout(csrf) {
  return getJson(apiUrl("auth/logout"), { method: "POST", body: {}, csrf });
}

/** GET /api/auth/me → {user, csrf_token} or {user: null}. */
export function me() {
  return fetchJson(apiUrl("auth/me"));
}

/** A short reason for a failed request (for status lines). */
export function describeError(err) {
  return err && err.status ? `HTTP ${err.status}` : "—";
}
