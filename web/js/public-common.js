// Shared by the public pages: catalogue start-up, header (language switch, navigation),
// small DOM builders. Text from data only ever reaches the DOM through textContent.

import { describeError as httpDescription, getConfig, logout } from "./api.js";
import { cssToken as cssSafe, el, embeddedJson } from "./core/dom.js";
import { label, lang, startPage, t } from "./i18n.js";
import { applyStatusColours } from "./map.js";

export { cssSafe, el, embeddedJson };

export const HALLE_AGS = "15002000";
export const LOCATED = new Set(["exact", "approximate"]);

/** Load the catalogue and translate the static page (the chrome comes from the server). */
export async function initPage() {
  config().then((cfg) => applyStatusColours(cfg)).catch(() => {});
  await startPage();
}

/** initPage, with /api/config asked for meanwhile: the config, or null (pages work without). */
export async function initPageWithConfig() {
  const pending = config().catch((err) => {
    console.error("config:", err);
    return null;
  });
  await initPage();
  return pending;
}

/** An http(s) URL from data, or null (javascript:, data: and the like are refused). */
export function safeHttpUrl(value) {
  try {
    const url = new URL(value);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}

/** The status of a measure as a badge: the same symbol as on the map, plus the word. */
export function statusBadge(status) {
  const token = cssSafe(status);
  return el("span", { className: `status-badge status-badge--${token}` }, [
    el("span", { className: `mk-symbol mk--${token}`, attrs: { "aria-hidden": "true" } }),
    el("span", { text: label("status", status) }),
  ]);
}

/** The state of an idea as a badge (symbol + word). */
export function ideaBadge(state) {
  const token = cssSafe(state);
  return el("span", { className: `idea-badge idea-badge--${token}` }, [
    el("span", { className: "idea-badge__symbol", attrs: { "aria-hidden": "true" } }),
    el("span", { text: label("idea_state", state) }),
  ]);
}

/** What an error means for a person (HTTP status or no connection). */
export function describeError(err) {
  return err && err.status ? httpDescription(err) : t("error.offline");
}

// ---------------------------------------------------------------- the staff sign-in form
// (templates/forms.html: #login-user, #login-password, #login-error) of moderation and monitoring

/** Keep a signed-in session (user and CSRF token) in `session`; the password field is emptied. */
export function keepSession(session, result) {
  session.user = result.user;
  session.csrf = result.csrf_token;
  document.getElementById("login-password").value = "";
}

/** A failed sign-in under the form: `failedKey` for a wrong name or password, else the reason. */
export function showSignInFailure(err, failedKey) {
  const box = document.getElementById("login-error");
  box.textContent = err.status === 401 ? t(failedKey) : describeError(err);
  box.hidden = false;
  document.getElementById("login-user").focus();
}

/** Sign out (a failure is only logged: the session is forgotten here either way). */
export async function endSession(session) {
  try {
    await logout(session.csrf);
  } catch (err) {
    console.error("logout:", err);
  }
  session.user = null;
  session.csrf = null;
}

let configPromise = null;
/** /api/config once per page (the map page has it embedded: #page-config). */
export function config() {
  if (!configPromise) {
    const embedded = embeddedJson("page-config");
    configPromise = embedded ? Promise.resolve(embedded) : getConfig();
  }
  return configPromise;
}

/** Name of a project city by AGS ("" when unknown). */
export function cityName(cfg, ags) {
  const city = (cfg?.cities || []).find((c) => String(c.ags) === String(ags));
  return city ? city.name : "";
}

/** Location precision in words: exact, approximate, city-wide, unknown. */
export function precisionText(precision) {
  return label("precision", precision || "unknown");
}

/** Name of a pilot quarter in the page language. */
export function quarterName(props) {
  if (!props) return "";
  return (lang === "en" && props.name_en) || props.name || props.slug || "";
}

/** Put a status text into a live region (and its kind as a class). */
export function announce(node, text, kind = "info") {
  node.textContent = text;
  node.dataset.kind = kind;
}

/** Id from the page path: /massnahmen/12 → "12" (digits only) or null. */
export function idFromPath() {
  const match = /\/(\d{1,12})\/?$/.exec(location.pathname);
  return match ? match[1] : null;
}
