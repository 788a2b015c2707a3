// The map points of the public list, through the cluster index in a Web Worker
// (web/js/public-points-worker.js): the page only fetches the compact points as bytes and
// hands them over (transferred, not copied); parsing and indexing happen off the main thread,
// which only asks for the few clusters and markers in view.
//
// index.html loads this module as an async module script, so it runs before the rest of the
// page: it starts the worker and the unfiltered (or permalinked) points request at once.
// main.js imports the same module instance and takes over that first load. It imports
// nothing, so it starts after one small request.

const WORKER_URL = "/js/public-points-worker.js";
const POINTS_LIMIT = 10000;
const REQUEST_TIMEOUT_MS = 30000;

/** A failed load or question; `status` is the HTTP status or 0 (network, worker). */
export class PointsError extends Error {
  constructor(message, status, url) {
    super(message);
    this.name = "PointsError";
    this.status = status;
    this.url = url;
  }
}

// URL parameter of the public page → API query parameter of /api/measures (and its points).
export const FILTERS = {
  q: "q",
  city: "city_ags",
  field: "action_field",
  status: "status",
  quarter: "quarter",
  district: "district",
};

/** The filters of a query string (URL names, trimmed, at most 100 characters). */
export function filtersFromUrl(search) {
  const params = new URLSearchParams(search);
  const filters = {};
  for (const name of Object.keys(FILTERS)) {
    const value = (params.get(name) || "").trim();
    if (value) filters[name] = value.slice(0, 100);
  }
  return filters;
}

/** The API query parameters of the filters (URL names → API names). */
export function apiFilters(filters) {
  const params = {};
  for (const [name, apiName] of Object.entries(FILTERS)) {
    if (filters[name]) params[apiName] = filters[name];
  }
  return params;
}

/** Address of the map points of `filters` in the compact format (as measurePointsUrl in api.js). */
export function pointsUrl(filters) {
  const url = new URL("/api/measures/points", location.origin);
  for (const [key, value] of Object.entries({ ...apiFilters(filters), limit: POINTS_LIMIT, format: "compact" })) {
    url.searchParams.set(key, String(value));
  }
  return String(url);
}

/**
 * The answer of a points request as bytes (an ArrayBuffer, not parsed). Sent without extra
 * headers, so that the first one is the same request as the <link rel="preload" as="fetch"
 * crossorigin> in index.html and takes over its answer.
 */
async function fetchBytes(url) {
  let response;
  try {
    response = await fetch(url, { credentials: "same-origin", signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  } catch (err) {
    throw new PointsError(`network error: ${err.message}`, 0, url);
  }
  if (!response.ok) throw new PointsError(`HTTP ${response.status}`, response.status, url);
  try {
    return await response.arrayBuffer();
  } catch (err) {
    throw new PointsError(`network error: ${err.message}`, 0, url);
  }
}

/** Talks to the worker: each question gets an id, its answer settles the matching promise. */
class PointsIndex {
  constructor() {
    this.worker = null;
    this.failure = null;
    this.nextId = 0;
    this.nextData = 0;
    this.pending = new Map(); // message id → {resolve, reject, url}
    this.early = null; // {url, promise}: the load started before main.js ran
  }

  start() {
    if (this.worker || this.failure) return;
    try {
      this.worker = new Worker(WORKER_URL, { name: "measure-points" });
    } catch (err) {
      this.failure = new PointsError(`worker: ${err.message}`, 0, WORKER_URL);
      return;
    }
    this.worker.onmessage = (event) => this.answer(event.data || {});
    this.worker.onerror = (event) => {
      event.preventDefault?.();
      this.fail(new PointsError(`worker: ${event.message || "failed"}`, 0, WORKER_URL));
    };
  }

  fail(err) {
    this.failure = err;
    for (const { reject } of this.pending.values()) reject(err);
    this.pending.clear();
  }

  answer(message) {
    const request = this.pending.get(message.id);
    if (!request) return;
    this.pending.delete(message.id);
    if (message.ok) request.resolve(message);
    else if (message.stale) request.resolve(null);
    else request.reject(new PointsError(message.message, message.status, request.url));
  }

  ask(type, payload, url = WORKER_URL, transfer = []) {
    this.start();
    if (this.failure) return Promise.reject(this.failure);
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, url });
      this.worker.postMessage({ id, type, ...payload }, transfer);
    });
  }

  /**
   * Load the points of `filters` (URL names) into the index: resolves to {data, count, total}
   * (data names this load in later questions) or null when a newer load overtook it.
   */
  load(filters) {
    const url = pointsUrl(filters);
    if (this.early) {
      const early = this.early;
      this.early = null;
      if (early.url === url) return early.promise;
    }
    const data = ++this.nextData;
    this.start();
    return fetchBytes(url)
      .then((body) => this.ask("load", { data, body }, url, [body]))
      .then((answer) => (answer ? { data, count: answer.count, total: answer.total } : null));
  }

  /** Start the load for the address the page was opened with (main.js takes it over). */
  preload(search) {
    const filters = filtersFromUrl(search);
    const promise = this.load(filters);
    promise.catch(() => {}); // handled where main.js awaits it
    this.early = { url: pointsUrl(filters), promise };
  }

  /** Clusters and single measures in bbox [w, s, e, n] at an integer zoom, or null (stale). */
  async clusters(data, bbox, zoom) {
    const answer = await this.ask("clusters", { data, bbox, zoom });
    return answer && answer.items;
  }

  /** Properties of up to `limit` measures of a cluster, or null (stale). */
  async leaves(data, cluster, limit) {
    const answer = await this.ask("leaves", { data, cluster, limit });
    return answer && answer.items;
  }

  /** {lon, lat, properties} of one located measure, or null (unknown or stale). */
  async point(data, measure) {
    const answer = await this.ask("point", { data, measure });
    return answer && answer.item;
  }
}

export const points = new PointsIndex();
points.preload(location.search);
