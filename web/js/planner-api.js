// API calls of the planning page, on the one HTTP client (core/http.js): sign-in (cookie
// session + CSRF header, kept by the client) and measures with ETags (If-Match).

import { apiUrl, getAllFeatures, HttpError, requestJson, setCsrfToken } from "./core/http.js";

export { HttpError as PlannerApiError, setCsrfToken };

const MAX_PAGES = 50;
const ACCEPT = "application/geo+json, application/json;q=0.9";

/** One request; resolves to {data, etag, status} or throws HttpError (no HTTP cache). */
function request(method, url, { body, etag } = {}) {
  return requestJson(url, { method, body, etag, accept: ACCEPT, cache: "no-store" });
}

// ------------------------------------------------------------------ sign-in

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

/** GET /api/measures (all pages): staff see drafts as well. */
export async function listMeasures() {
  const { features } = await getAllFeatures(apiUrl("measures", { limit: 1000 }), {
    maxPages: MAX_PAGES, accept: ACCEPT, cache: "no-store",
  });
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
  const url = apiUrl("measures/import", dryRun ? { dry_run: "true" } : {});
  const { data } = await requestJson(url, { method: "POST", body: form, cache: "no-store",
    timeout: 120000 });
  return data;
}
