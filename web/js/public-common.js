// Shared by the public pages: catalogue start-up, header (language switch, navigation),
// small DOM builders. Text from data only ever reaches the DOM through textContent.

import { describeError as httpDescription, getConfig } from "./api.js";
import { label, lang, languageHref, loadMessages, t, translate } from "./i18n.js";
import { applyStatusColours } from "./vocabulary.js";

export const HALLE_AGS = "15002000";
export const LOCATED = new Set(["exact", "approximate"]);

/** Load the catalogue, translate the static page, wire the header. */
export async function initPage() {
  config().then((cfg) => applyStatusColours(cfg?.status_colours)).catch(() => {});
  try {
    await loadMessages();
    translate();
  } catch (err) {
    console.error("i18n:", err);
  }
  for (const link of document.querySelectorAll(".lang-switch a[data-lang]")) {
    link.href = languageHref(link.dataset.lang);
    if (link.dataset.lang === lang) link.setAttribute("aria-current", "true");
    else link.removeAttribute("aria-current");
  }
  const page = document.body.dataset.page;
  for (const link of document.querySelectorAll(".main-nav a[data-nav]")) {
    if (link.dataset.nav === page) link.setAttribute("aria-current", "page");
  }
  document.body.dataset.i18n = "ready";
}

/** Create an element; `text` is set with textContent, `attrs` with setAttribute. */
export function el(tag, options = {}, children = []) {
  const node = document.createElement(tag);
  const { className, text, attrs, dataset } = options;
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(name, String(value));
  }
  Object.assign(node.dataset, dataset || {});
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
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

/** Reduce a value to characters that are safe in a CSS class name. */
export function cssSafe(value) {
  return String(value ?? "")
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, "-")
    .replace(/^-+|-+$/g, "");
}

/** What an error means for a person (HTTP status or no connection). */
export function describeError(err) {
  return err && err.status ? httpDescription(err) : t("error.offline");
}

let configPromise = null;
/** /api/config once per page. */
export function config() {
  configPromise = configPromise || getConfig();
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
