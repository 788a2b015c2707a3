// Small fetch helpers for the quarters API (same origin, paths relative to the page).

const API_BASE = new URL("api/", document.baseURI);
const REQUEST_TIMEOUT_MS = 30000;
const MAX_PAGES = 100;

/** Error raised for a failed API request; `status` is the HTTP status or 0 for network errors. */
export class ApiError extends Error {
  constructor(message, status, url) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.url = url;
  }
}

async function fetchJson(url, accept) {
  let response;
  try {
    response = await fetch(url, {
      headers: { Accept: accept },
      credentials: "same-origin",
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (err) {
    throw new ApiError(`network error: ${err.message}`, 0, String(url));
  }
  if (!response.ok) {
    throw new ApiError(`HTTP ${response.status}`, response.status, String(url));
  }
  try {
    return await response.json();
  } catch (err) {
    throw new ApiError(`invalid JSON: ${err.message}`, response.status, String(url));
  }
}

/** GET /api/config: tile URL and attribution, the project cities with their bboxes. */
export function getConfig() {
  return fetchJson(new URL("config", API_BASE), "application/json");
}

/** GET /api/sources: the data sources with publisher, licence and attribution text. */
export function getSources() {
  return fetchJson(new URL("sources", API_BASE), "application/json");
}

function nextLink(page) {
  const links = Array.isArray(page.links) ? page.links : [];
  const next = links.find((link) => link && link.rel === "next" && link.href);
  return next ? next.href : null;
}

// Behind a proxy the server may announce another scheme or host: never leave this origin,
// keep only the path and query of the next link.
function sameOriginNext(href, base) {
  if (!href) return null;
  const url = new URL(href, base);
  return new URL(url.pathname + url.search, API_BASE.origin);
}

/**
 * GET /api/collections/{collection}/items as one GeoJSON FeatureCollection.
 * Follows `links` with rel="next" (on this origin) until the last page.
 */
export async function getItems(collection, params = {}) {
  const url = new URL(`collections/${encodeURIComponent(collection)}/items`, API_BASE);
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null) url.searchParams.set(key, String(value));
  }
  const features = [];
  let pageUrl = url;
  let first = null;
  for (let page = 0; pageUrl && page < MAX_PAGES; page += 1) {
    const body = await fetchJson(pageUrl, "application/geo+json, application/json;q=0.9");
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
