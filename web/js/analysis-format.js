// Analysis page: DOM helpers, number formatting (German) and the API's notes by their codes
// (web/i18n). Data only ever reaches the DOM through textContent / setAttribute.

import { has, t } from "./i18n.js";

import { $, el, replaceChildren, SVG_NS, svgEl } from "./core/dom.js";
import { locale } from "./i18n.js";

export { $, el, replaceChildren, SVG_NS, svgEl };

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

// Notes the API names by code: these parameters are keys that the page shows by their names.
const NAMED_PARAMS = ["indicator", "level", "ref_level"];

/**
 * A note of the API in the page's language: `t("warning." + code, params)` (indicator and
 * level keys shown by their names, a note inside a note written out too), else the API's
 * `detail` (already in the language the page asked for). Plain strings are data (e.g. a
 * stored reason) and are shown as they are.
 */
export function noteText(note, names = new Map()) {
  if (Array.isArray(note)) return note.map((n) => noteText(n, names)).join("; ");
  if (note && typeof note === "object") {
    const params = { ...(note.params || {}) };
    for (const [name, value] of Object.entries(params)) {
      if (value && typeof value === "object") params[name] = noteText(value, names);
    }
    for (const name of NAMED_PARAMS) {
      if (name in params) params[name] = names.get(params[name]) || params[name];
    }
    const key = `warning.${note.code}`;
    return note.code && has(key) ? t(key, params) : String(note.detail ?? "");
  }
  return String(note ?? "");
}

/** A <span> (or `tag`) with the note's text. */
export function noteNode(note, names, tag = "span") {
  return el(tag, { text: noteText(note, names) });
}
