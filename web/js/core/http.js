// The one HTTP client of every page: same-origin /api/ base, Accept-Language of the page,
// the session's CSRF token on unsafe methods, If-Match, timeouts, and problem+json answers
// decoded into one error class (code, pointer, params, detail next to status and ETag).
// The page modules (api.js, planner-api.js, analysis-api.js) only name their endpoints.

import { lang } from "../i18n.js";

export const API_BASE = new URL("/api/", location.origin);
export const GEOJSON = "application/geo+json, application/json;q=0.9";
const DEFAULT_TIMEOUT_MS = 30000;
const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

let csrfToken = null;

/** Remember the CSRF token of the current session (null when signed out). */
export function setCsrfToken(token) {
  csrfToken = typeof token === "string" && token ? token : null;
}

/**
 * A failed request. `status`: HTTP status, 0 without a connection; `problem`: the
 * problem+json body (null without one); `code`, `pointer`, `params`, `detail`: the problem's
 * (of its first error when the body lists several); `errors`: all listed errors;
 * `etag`: the answer's ETag (a 412 carries the current one).
 */
export class HttpError extends Error {
  constructor(message, { status = 0, url = "", problem = null, etag = null } = {}) {
    super(message);
    this.name = "HttpError";
    this.status = status;
    this.url = String(url);
    this.problem = problem && typeof problem === "object" ? problem : null;
    this.etag = etag;
    this.errors = Array.isArray(this.problem?.errors) ? this.problem.errors : [];
    const first = this.errors[0] || {};
    this.code = this.problem?.code ?? first.code ?? null;
    this.pointer = this.problem?.pointer ?? first.pointer ?? null;
    this.params = this.problem?.params ?? first.params ?? {};
    this.detail = typeof this.problem?.detail === "string" ? this.problem.detail : null;
  }

  /** The problem body under its older name (public pages). */
  get body() {
    return this.problem;
  }
}

/** An /api/ address; array values repeat the parameter, empty values are left out. */
export function apiUrl(path, params = {}) {
  const url = new URL(path, API_BASE);
  for (const [key, value] of Object.entries(params || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const item of Array.isArray(value) ? value : [value]) url.searchParams.append(key, String(item));
  }
  return url;
}

function isRawBody(body) {
  return body instanceof FormData || body instanceof Blob || body instanceof URLSearchParams
    || typeof body === "string";
}

async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

/**
 * One request; resolves to the Response (2xx) or throws HttpError. Options: method, accept,
 * body (JSON unless FormData/Blob/string), etag (If-Match), csrf (else the session's token on
 * unsafe methods), signal (else a timeout of `timeout` ms), cache, plain (no headers at all:
 * the same request as a <link rel=preload as=fetch crossorigin>).
 */
export async function request(url, {
  method = "GET", accept = "application/json", body, etag, csrf, signal, cache,
  timeout = DEFAULT_TIMEOUT_MS, plain = false,
} = {}) {
  const headers = plain ? {} : {
    Accept: `${accept}, application/problem+json;q=0.8`,
    "Accept-Language": lang,
  };
  if (body !== undefined && !isRawBody(body)) headers["Content-Type"] = "application/json";
  const token = csrf || csrfToken;
  if (UNSAFE.has(method) && token) headers["X-CSRF-Token"] = token;
  if (etag) headers["If-Match"] = etag;
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined || isRawBody(body) ? body : JSON.stringify(body),
      credentials: "same-origin",
      cache,
      signal: signal || AbortSignal.timeout(timeout),
    });
  } catch (err) {
    if (err && err.name === "AbortError") throw err; // the caller's own cancel
    throw new HttpError(`network error: ${err.message}`, { status: 0, url });
  }
  if (!response.ok) {
    const problem = await problemOf(response);
    const detail = typeof problem?.detail === "string" ? problem.detail : `HTTP ${response.status}`;
    throw new HttpError(detail, {
      status: response.status, url, problem, etag: response.headers.get("ETag"),
    });
  }
  return response;
}

/** A request whose answer is JSON (or empty): {data, etag, status}. */
export async function requestJson(url, options = {}) {
  const response = await request(url, options);
  const etag = response.headers.get("ETag");
  if (response.status === 204) return { data: null, etag, status: response.status };
  const text = await response.text();
  if (!text) return { data: null, etag, status: response.status };
  try {
    return { data: JSON.parse(text), etag, status: response.status };
  } catch (err) {
    throw new HttpError(`invalid JSON: ${err.message}`, { status: response.status, url });
  }
}

/** GET (or another method) → the JSON body. */
export async function getJson(url, options = {}) {
  return (await requestJson(url, options)).data;
}

// Behind a proxy the server may announce another scheme or host: never leave this origin.
function nextPage(body, current) {
  const links = Array.isArray(body?.links) ? body.links : [];
  const next = links.find((link) => link && link.rel === "next" && link.href);
  if (!next) return null;
  const url = new URL(next.href, current);
  return new URL(url.pathname + url.search, API_BASE.origin);
}

/**
 * All features of a paged GeoJSON answer, following its "next" links:
 * {features, first} (first: the first page, for numberMatched and the like).
 */
export async function getAllFeatures(url, { maxPages = 100, accept = GEOJSON, ...options } = {}) {
  const features = [];
  let first = null;
  let pageUrl = url;
  for (let page = 0; pageUrl && page < maxPages; page += 1) {
    const body = await getJson(pageUrl, { accept, ...options });
    if (!body || !Array.isArray(body.features)) {
      throw new HttpError("not a GeoJSON FeatureCollection", { status: 200, url: pageUrl });
    }
    first = first || body;
    features.push(...body.features);
    pageUrl = nextPage(body, pageUrl);
  }
  if (pageUrl) throw new HttpError(`more than ${maxPages} pages`, { status: 200, url: pageUrl });
  return { features, first };
}
