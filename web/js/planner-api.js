// API calls of the planning page: sign-in (cookie session + CSRF header) and measures with ETags.
// Same origin only; every unsafe request carries X-CSRF-Token, every change If-Match.

const API_BASE = new URL("api/", document.baseURI);
const REQUEST_TIMEOUT_MS = 30000;
const MAX_PAGES = 50;
const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

let csrfToken = null;

/**
 * A failed request. `status` is the HTTP status (0: no connection), `problem` the
 * problem+json body if there was one, `etag` the ETag header (412 carries the current one).
 */
export class PlannerApiError extends Error {
  constructor(message, status, problem = null, etag = null) {
    super(message);
    this.name = "PlannerApiError";
    this.status = status;
    this.problem = problem;
    this.etag = etag;
  }
}

function apiUrl(path, params) {
  const url = new URL(path, API_BASE);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null) url.searchParams.set(key, String(value));
  }
  return url;
}

async function parseBody(response) {
  if (response.status === 204) return null;
  const type = (response.headers.get("Content-Type") || "").toLowerCase();
  if (!type.includes("json")) return null;
  try {
    return await response.json();
  } catch {
    return null;
  }
}

/** One request; resolves to {data, etag, status} or throws PlannerApiError. */
async function request(method, url, { body, etag } = {}) {
  const headers = { Accept: "application/geo+json, application/json;q=0.9, application/problem+json;q=0.8" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (UNSAFE.has(method) && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  if (etag) headers["If-Match"] = etag;
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (err) {
    throw new PlannerApiError(`keine Verbindung (${err.message})`, 0);
  }
  const data = await parseBody(response);
  const responseEtag = response.headers.get("ETag");
  if (!response.ok) {
    const detail = data && typeof data.detail === "string" ? data.detail : `HTTP ${response.status}`;
    throw new PlannerApiError(detail, response.status, data, responseEtag);
  }
  return { data, etag: responseEtag, status: response.status };
}

// ------------------------------------------------------------------ sign-in

/** Remember the CSRF token of the current session (null when signed out). */
export function setCsrfToken(token) {
  csrfToken = typeof token === "string" && token ? token : null;
}

/** POST /api/auth/login → {user, csrf_token}; keeps the CSRF token for later requests. */
export async function login(username, password) {
  const { data } = await request("POST", apiUrl("auth/login"), { body: { username, password } });
  setCsrfToken(data?.csrf_token);
  return { user: data?.user || null };
}

/** GET /api/auth/me → {user} (null for the public); keeps the CSRF token. */
export async function currentUser() {
  const { data } = await request("GET", apiUrl("auth/me"));
  setCsrfToken(data?.csrf_token);
  return { user: data?.user || null };
}

/** POST /api/auth/logout. */
export async function logout() {
  try {
    await request("POST", apiUrl("auth/logout"));
  } finally {
    setCsrfToken(null);
  }
}

// ------------------------------------------------------------------ measures

function sameOriginNext(body, current) {
  const links = Array.isArray(body?.links) ? body.links : [];
  const next = links.find((link) => link && link.rel === "next" && link.href);
  if (!next) return null;
  const url = new URL(next.href, current);
  return new URL(url.pathname + url.search, API_BASE.origin);
}

/** GET /api/measures (all pages): staff see drafts as well. */
export async function listMeasures() {
  const features = [];
  let url = apiUrl("measures", { limit: 1000 });
  for (let page = 0; url && page < MAX_PAGES; page += 1) {
    const { data } = await request("GET", url);
    if (!data || data.type !== "FeatureCollection" || !Array.isArray(data.features)) {
      throw new PlannerApiError("keine GeoJSON-FeatureCollection", 200);
    }
    features.push(...data.features);
    url = sameOriginNext(data, url);
  }
  return features;
}

/** GET /api/measures/{id} → {feature, etag}. */
export async function getMeasure(id) {
  const { data, etag } = await request("GET", apiUrl(`measures/${encodeURIComponent(id)}`));
  return { feature: data, etag };
}

/** POST /api/measures (a draft) → {feature, etag}. */
export async function createMeasure(feature) {
  const { data, etag } = await request("POST", apiUrl("measures"), { body: feature });
  return { feature: data, etag };
}

/** PATCH /api/measures/{id} with If-Match → {feature, etag}. */
export async function patchMeasure(id, etag, patch) {
  const result = await request("PATCH", apiUrl(`measures/${encodeURIComponent(id)}`), {
    body: patch,
    etag,
  });
  return { feature: result.data, etag: result.etag };
}

/** POST /api/measures/{id}/publish or /unpublish with If-Match → {feature, etag}. */
export async function setPublished(id, etag, published) {
  const action = published ? "publish" : "unpublish";
  const result = await request("POST", apiUrl(`measures/${encodeURIComponent(id)}/${action}`), {
    etag,
  });
  return { feature: result.data, etag: result.etag };
}

/** DELETE /api/measures/{id} with If-Match (soft delete). */
export async function deleteMeasure(id, etag) {
  await request("DELETE", apiUrl(`measures/${encodeURIComponent(id)}`), { etag });
}

/** GET /api/measures/{id}/history → list of {version, action, actor, at, changes}. */
export async function getHistory(id) {
  const { data } = await request("GET", apiUrl(`measures/${encodeURIComponent(id)}/history`));
  return Array.isArray(data?.history) ? data.history : [];
}

/** POST /api/measures/{id}/transfer {district_code} with the origin's If-Match → {feature, etag}
 * of the new draft (the origin changed too: load it again for its new ETag). */
export async function transferMeasure(id, etag, districtCode) {
  const result = await request("POST", apiUrl(`measures/${encodeURIComponent(id)}/transfer`), {
    body: { district_code: districtCode },
    etag,
  });
  return { feature: result.data, etag: result.etag };
}

/** POST /api/measures/{id}/history/{version}/restore with If-Match (admin) → {feature, etag}:
 * the record of that version becomes the new current version. */
export async function restoreVersion(id, etag, version) {
  const path = `measures/${encodeURIComponent(id)}/history/${encodeURIComponent(version)}/restore`;
  const result = await request("POST", apiUrl(path), { etag });
  return { feature: result.data, etag: result.etag };
}

/** POST /api/measures/import (multipart field "file"); dryRun checks only. → the report
 * {rows, created, problems, dry_run, stored, valid}. */
export async function importMeasures(file, { dryRun }) {
  const form = new FormData();
  form.append("file", file, file.name);
  const headers = { Accept: "application/json, application/problem+json;q=0.8" };
  if (csrfToken) headers["X-CSRF-Token"] = csrfToken;
  let response;
  try {
    response = await fetch(apiUrl("measures/import", dryRun ? { dry_run: "true" } : {}), {
      method: "POST",
      headers,
      body: form,
      credentials: "same-origin",
      cache: "no-store",
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS * 4),
    });
  } catch (err) {
    throw new PlannerApiError(`keine Verbindung (${err.message})`, 0);
  }
  const data = await parseBody(response);
  if (!response.ok) {
    const detail = data && typeof data.detail === "string" ? data.detail : `HTTP ${response.status}`;
    throw new PlannerApiError(detail, response.status, data);
  }
  return data;
}
