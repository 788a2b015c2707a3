// Message catalogues (web/i18n/de.json, en.json), language choice and Intl formatting.
// No user-visible string lives in code: every text comes from a catalogue key.

import { embeddedJson } from "./core/dom.js";

export const LANGUAGES = ["de", "en"];
const COOKIE = "quarters_lang"; // the server reads it too (src/quarters/api/pages.py)
const LOCALES = { de: "de-DE", en: "en-GB" };

let messages = {};
let fallback = {};

/**
 * The language of this page view: the server rendered it into <html lang> (from ?lang=, the
 * cookie, German); ?lang= and the cookie are asked only when the page came from elsewhere.
 */
function pickLanguage() {
  const param = new URLSearchParams(location.search).get("lang");
  if (LANGUAGES.includes(param)) return param;
  const rendered = document.documentElement.lang;
  if (LANGUAGES.includes(rendered)) return rendered;
  const stored = /(?:^|;\s*)quarters_lang=(\w+)/.exec(document.cookie)?.[1];
  return LANGUAGES.includes(stored) ? stored : "de";
}

/** Keep the choice for the next pages (the server sets the same cookie on ?lang=). */
function rememberLanguage(value) {
  document.cookie = `${COOKIE}=${value}; path=/; max-age=31536000; samesite=lax`;
}

export const lang = pickLanguage();
rememberLanguage(lang);
export const locale = LOCALES[lang];

async function fetchCatalogue(code) {
  const response = await fetch(`/i18n/${code}.json`, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`catalogue ${code}: HTTP ${response.status}`);
  return response.json();
}

/**
 * The catalogue the server embedded in the page (<script type="application/json"
 * id="page-catalogue">, the page language's keys over the German ones), or null.
 */
function embeddedCatalogue() {
  const node = document.getElementById("page-catalogue");
  return node?.dataset.lang === lang ? embeddedJson("page-catalogue") : null;
}

/** Load the catalogue of the current language (German as fallback for missing keys). */
export async function loadMessages() {
  const embedded = embeddedCatalogue();
  if (embedded) {
    messages = embedded;
    fallback = embedded;
    document.documentElement.lang = lang;
    return;
  }
  const [own, german] = await Promise.all([
    fetchCatalogue(lang),
    lang === "de" ? null : fetchCatalogue("de").catch(() => ({})),
  ]);
  messages = own;
  fallback = german || own;
  document.documentElement.lang = lang;
}

function lookup(key) {
  if (Object.hasOwn(messages, key)) return messages[key];
  if (Object.hasOwn(fallback, key)) return fallback[key];
  return undefined;
}

/** True when the catalogue has `key`. */
export function has(key) {
  return lookup(key) !== undefined;
}

/**
 * The message `key` with {name} placeholders filled in. A message may be an object of
 * plural forms ({"one": …, "other": …}), chosen by `values.count`.
 */
export function t(key, values = {}) {
  let message = lookup(key);
  if (message === undefined) {
    console.warn(`i18n: missing key ${key}`);
    return key;
  }
  if (typeof message === "object" && message !== null) {
    const form = pluralForm(Number(values.count ?? 0));
    message = message[form] ?? message.other;
  }
  return String(message).replace(/\{(\w+)\}/g, (match, name) => {
    if (!Object.hasOwn(values, name)) return match;
    const value = values[name];
    return typeof value === "number" ? formatNumber(value) : String(value ?? "");
  });
}

/** A catalogue text for a data value (status, action field, …), or the value itself. */
export function label(prefix, value) {
  const key = `${prefix}.${value}`;
  return has(key) ? t(key) : String(value ?? "");
}

// ---------------------------------------------------------------- Intl formatting

// Created on first use: each constructor loads locale data (tens of ms together on a slow
// machine), and most pages need only some of them before their first view.
const INTL = {
  plural: () => new Intl.PluralRules(locale),
  number: () => new Intl.NumberFormat(locale, { maximumFractionDigits: 1 }),
  integer: () => new Intl.NumberFormat(locale, { maximumFractionDigits: 0 }),
  percent: () => new Intl.NumberFormat(locale, { style: "percent", maximumFractionDigits: 1 }),
  money: () => new Intl.NumberFormat(locale, { style: "currency", currency: "EUR", maximumFractionDigits: 0 }),
  date: () => new Intl.DateTimeFormat(locale, { day: "numeric", month: "long", year: "numeric" }),
  dateTime: () => new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" }),
  list: () => new Intl.ListFormat(locale, { style: "long", type: "conjunction" }),
};
const intlCache = new Map();

function intl(name) {
  if (!intlCache.has(name)) intlCache.set(name, INTL[name]());
  return intlCache.get(name);
}

// Whole numbers and their plural forms without Intl in the page languages (the same output
// as Intl gives for de-DE and en-GB: digits grouped by three with "." or ","; "one" for 1
// only): the first Intl object of a page loads the locale data, 15–95 ms measured in
// Chromium here, and the first map view (counts in the cluster labels) need not wait for it.
const GROUP_SEPARATOR = { de: ".", en: "," };

function formatInteger(value) {
  const separator = GROUP_SEPARATOR[lang];
  if (!separator || !Number.isSafeInteger(value) || Object.is(value, -0)) return intl("integer").format(value);
  const digits = String(Math.abs(value)).replace(/\B(?=(\d{3})+(?!\d))/g, separator);
  return value < 0 ? `-${digits}` : digits;
}

function pluralForm(count) {
  if (GROUP_SEPARATOR[lang] && Number.isInteger(count)) return Math.abs(count) === 1 ? "one" : "other";
  return intl("plural").select(count);
}

export function formatNumber(value) {
  return Number.isInteger(value) ? formatInteger(value) : intl("number").format(value);
}

export function formatPercent(share) {
  return intl("percent").format(share);
}

export function formatMoney(value) {
  return Number.isFinite(value) ? intl("money").format(value) : "";
}

export function formatList(items) {
  return intl("list").format(items.map(String));
}

/** Metres as "850 m" or "1,6 km" (per language). */
export function formatDistance(metres) {
  if (!Number.isFinite(metres)) return "";
  if (metres < 1000) return t("unit.m", { value: intl("integer").format(Math.round(metres / 10) * 10) });
  return t("unit.km", { value: intl("number").format(metres / 1000) });
}

/** An ISO date (YYYY-MM-DD…) as a long local date; '' when missing. */
export function formatDate(value) {
  const match = /^(\d{4})-(\d{2})-(\d{2})/.exec(String(value ?? ""));
  if (!match) return "";
  return intl("date").format(new Date(Date.UTC(+match[1], +match[2] - 1, +match[3], 12)));
}

export function formatDateTime(value) {
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? "" : intl("dateTime").format(date);
}

// ---------------------------------------------------------------- static markup

/**
 * Fill the static page: [data-i18n] gets its text, [data-i18n-attr="attr:key;attr:key"]
 * its attributes. Runs on the document or a subtree.
 */
export function translate(root = document) {
  // Only what differs is written: the server renders the page in its language already, and
  // an unchanged DOM costs no style and layout pass before the first view.
  for (const el of root.querySelectorAll("[data-i18n]")) {
    const text = t(el.dataset.i18n);
    if (el.textContent !== text) el.textContent = text;
  }
  for (const el of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of el.dataset.i18nAttr.split(";")) {
      const [attr, key] = pair.split(":").map((s) => s.trim());
      if (!attr || !key) continue;
      const value = t(key);
      if (el.getAttribute(attr) !== value) el.setAttribute(attr, value);
    }
  }
}

/** Load the catalogue, translate the static markup, mark the page (body[data-i18n=ready]). */
export async function startPage() {
  try {
    await loadMessages();
    translate();
  } catch (err) {
    console.error("i18n:", err);
  }
  document.body.dataset.i18n = "ready";
}
