// Analysis page: DOM helpers, number formatting (in the page's locale) and German wording of
// the API's English notes (German pages only). Data only ever reaches the DOM through
// textContent / setAttribute.

import { lang, locale } from "./i18n.js";

export const SVG_NS = "http://www.w3.org/2000/svg";

/** document.getElementById */
export function $(id) {
  return document.getElementById(id);
}

/**
 * Create an element: el("p", {className: "x", text: "…", attrs: {id: "y"}}, child, …).
 * Children may be nodes, strings (text nodes) or null (skipped).
 */
export function el(tag, options = {}, ...children) {
  const node = document.createElement(tag);
  applyOptions(node, options);
  appendAll(node, children);
  return node;
}

/** The same for SVG elements. */
export function svgEl(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function applyOptions(node, { className, text, attrs, dataset, hidden } = {}) {
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const [name, value] of Object.entries(dataset || {})) node.dataset[name] = String(value);
  if (hidden) node.hidden = true;
}

function appendAll(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Remove all children, then append the given ones. */
export function replaceChildren(node, ...children) {
  node.replaceChildren();
  appendAll(node, children);
}

// ---------------------------------------------------------------- numbers

const formatters = new Map();

function formatter(digits) {
  const key = `${digits}`;
  if (!formatters.has(key)) {
    formatters.set(key, new Intl.NumberFormat(locale, {
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    }));
  }
  return formatters.get(key);
}

/** Decimals that suit a value: 0 from 100 on, 1 from 10 on, else 2. */
export function autoDigits(value) {
  const abs = Math.abs(value);
  if (abs >= 100) return 0;
  if (abs >= 10) return 1;
  return 2;
}

/** German number; `digits` decimals or automatic; "–" for missing values. */
export function formatNumber(value, digits) {
  if (value === null || value === undefined || !Number.isFinite(Number(value))) return "–";
  const v = Number(value);
  const text = formatter(digits ?? autoDigits(v)).format(v);
  return text === "-0" || /^-0[.,]0+$/.test(text) ? text.slice(1) : text;
}

/** A value with its unit ("40.017 Einw."), unit left out for class-like units. */
export function formatValue(value, unit) {
  const number = formatNumber(value);
  if (number === "–" || !unit) return number;
  if (unit.length > 16) return number; // e.g. "Klasse (1 dicht, 2 mittel, 3 gering besiedelt)"
  return unit === "%" ? `${number} %` : `${number} ${unit}`;
}

/** Share 0–1 as "82 %". */
export function formatPercent(share, digits = 0) {
  if (share === null || share === undefined || !Number.isFinite(share)) return "–";
  return `${formatNumber(share * 100, digits)} %`;
}

/** Score 0–100 with one decimal. */
export function formatScore(score) {
  return formatNumber(score, 1);
}

/** Integer count with thousands separator. */
export function formatCount(n) {
  return formatNumber(n, 0);
}


// ---------------------------------------------------------------- wording

/** The API's English notes in German where the wording is known; else the original text. */
export function translateNote(text, names = new Map()) {
  const s = String(text ?? "");
  const name = (key) => names.get(key) || key;
  const rules = [
    [/^(\d+) unit\(s\) excluded from the ranking because of missing indicator values/,
      (m) => `${formatCount(Number(m[1]))} ${Number(m[1]) === 1 ? "Einheit wurde" : "Einheiten wurden"} wegen fehlender Indikatorwerte aus der Rangfolge ausgeschlossen.`],
    [/^(\d+) unit\(s\) compared on fewer indicators/,
      (m) => `${formatCount(Number(m[1]))} Einheiten wurden nur über die vorhandenen Indikatoren verglichen (fehlende paarweise ausgelassen).`],
    [/^indicator '([^']+)' is missing for the reference and was dropped/,
      (m) => `Indikator „${name(m[1])}“ fehlt für die Referenz und wurde nicht verwendet.`],
    [/^indicator '([^']+)' has zero spread among the candidates and contributes 0/,
      (m) => `Indikator „${name(m[1])}“ streut unter den Kandidaten nicht und trägt nichts bei.`],
    [/^top=(\d+) exceeds the (\d+) candidates; using top=(\d+)/,
      (m) => `Top ${m[1]} ist mehr als die ${m[2]} Kandidaten; es werden ${m[3]} gezeigt.`],
    [/^sensitivity check skipped: (.*)$/,
      (m) => `Stabilitätsprüfung ausgelassen (${m[1]}).`],
    [/^typology skipped: (.*)$/, (m) => `Typologie ausgelassen (${m[1]}).`],
    [/^type of the reference unknown: (.*)$/, (m) => `Typ der Referenz unbekannt (${m[1]}).`],
    [/^profile of the quarter derived from its (\S+) \(coverage ([\d.,]+ %)\)/,
      (m) => `Profil des Pilotquartiers, abgeleitet aus den überlappenden Einheiten der Ebene „${name(m[1])}“ (Abdeckung ${m[2]}).`],
    [/^values of the (\S+) unit compared with (\S+) units/,
      (m) => `Werte der Einheit (Ebene „${name(m[1])}“) verglichen mit den Einheiten der Ebene „${name(m[2])}“; als externe Referenz beeinflusst sie die Standardisierung nicht.`],
    [/^unit containing measure (\d+) (.*)$/,
      (m) => `Einheit, in der Maßnahme ${m[1]} ${m[2]} liegt.`],
    [/^no value loaded/, () => "kein Wert geladen"],
    [/^no inhabitants \(uninhabited area\)/, () => "keine Einwohner (unbewohntes Gebiet): Anteil nicht definiert"],
    [/^no row for this AGS in the Destatis Gemeindeverzeichnis extract/,
      () => "keine Zeile für diesen AGS im Destatis-Gemeindeverzeichnis (abweichender Gebietsstand)"],
  ];
  for (const [pattern, build] of rules) {
    const m = s.match(pattern);
    if (m) return { text: build(m), lang: "de" };
  }
  return { text: s, lang: "en" };
}

/** A <span> with the note in the page's language; lang="en" when it stayed English. */
export function noteNode(text, names, tag = "span") {
  // the API's notes are English: an English page shows them as they are
  const { text: out, lang: noteLang } = lang === "en" ? { text: String(text ?? ""), lang: "en" } : translateNote(text, names);
  const node = el(tag, { text: out });
  if (noteLang !== lang) node.lang = noteLang;
  return node;
}
