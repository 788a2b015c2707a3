// The measure form: labels from the catalogue, reading and writing the record, client-side checks and the
// server's 422 errors placed next to the matching field. Data reaches the DOM via textContent.

import { $, element } from "./core/dom.js";
import { apiUrl, getJson, GEOJSON } from "./core/http.js";
import { formatDate, formatDateTime, has, label, lang, locale, t } from "./i18n.js";
import { applyLimits } from "./vocabulary.js";

/** Longest text of a measure field (limits.measure of /api/config; 200 until it is known). */
const limit = (name) => state.config?.limits?.measure?.[name]?.max ?? 200;

// ---------------------------------------------------------------- labels

/** {value: text}: each text read from the catalogue when asked (the page's language). */
function labels(values, text) {
  const map = {};
  for (const value of values) Object.defineProperty(map, value, { get: () => text(value), enumerable: true });
  return map;
}

// the statuses themselves come from /api/config: any status asked for is looked up
export const STATUS_LABELS = new Proxy({}, { get: (_, status) => t(`status.${String(status)}`) });

export const PRECISION_LABELS = labels(
  ["exact", "approximate", "city", "unknown"],
  (value) => t(`planner.precision_${value}`),
);

export const MILESTONE_STATUS_LABELS = labels(
  ["offen", "erreicht", "verschoben"],
  (value) => t(`planner.milestone_${value}`),
);

export const OPERATORS = ["<", "<=", ">", ">=", "=", "!="];
// the transfer fieldset speaks the page's language (catalogue keys planner.*)
const DISTRICT_STATUS_KEYS = {
  "geprüft": "planner.dstatus_checked",
  geeignet: "planner.dstatus_suitable",
  ungeeignet: "planner.dstatus_unsuitable",
  "übertragen": "planner.dstatus_transferred",
};
const OPERATOR_LABELS = { "<": "<", "<=": "≤", ">": ">", ">=": "≥", "=": "=", "!=": "≠" };

export const FIELD_LABELS = labels(
  [
    "title", "summary", "description", "plain_summary", "city_ags", "action_field", "status",
    "start_date", "end_date", "milestones", "budget_planned", "budget_spent", "funding_line",
    "responsible_unit", "partners", "parent_id", "links", "source", "licence", "location_precision",
    "location_note", "editions", "transfer", "origin_id", "geometry", "published", "deleted",
  ],
  (field) => t(`planner.field_${field}`),
);

/** The fields of the record a planner sends (MeasureProperties on the server). */
export const RECORD_FIELDS = [
  "title", "summary", "description", "plain_summary", "city_ags", "action_field", "status",
  "start_date", "end_date", "milestones", "budget_planned", "budget_spent", "funding_line",
  "responsible_unit", "partners", "parent_id", "links", "source", "licence",
  "location_precision", "location_note", "editions", "transfer",
];

const TEXT_FIELDS = [
  "title", "summary", "description", "plain_summary", "funding_line", "responsible_unit",
  "source", "licence", "location_note",
];
const SELECT_FIELDS = ["city_ags", "action_field", "status", "location_precision"];
const DATE_FIELDS = ["start_date", "end_date"];
const MONEY_FIELDS = ["budget_planned", "budget_spent"];
const EDITION_PATTERN = /^[a-z0-9-]{1,40}$/;
const URL_PATTERN = /^https?:\/\/\S+$/;

const EURO = new Intl.NumberFormat(locale, { style: "currency", currency: "EUR" });

// ---------------------------------------------------------------- small DOM helpers

function option(value, text, selected = false) {
  const el = document.createElement("option");
  el.value = value;
  el.textContent = text;
  el.selected = selected;
  return el;
}

// ---------------------------------------------------------------- formatting

export { formatDate, formatDateTime };

function countPositions(coords) {
  if (!Array.isArray(coords)) return 0;
  if (typeof coords[0] === "number") return 1;
  return coords.reduce((sum, child) => sum + countPositions(child), 0);
}

/** "Area with 4 corners" etc. for a GeoJSON geometry. */
export function describeGeometry(geometry) {
  if (!geometry || !geometry.type) return t("planner.geom_none");
  const n = countPositions(geometry.coordinates);
  switch (geometry.type) {
    case "Point":
      return t("planner.geom_point");
    case "MultiPoint":
      return t("planner.geom_points", { n });
    case "LineString":
      return t("planner.geom_line", { n });
    case "MultiLineString":
      return t("planner.geom_lines", { lines: geometry.coordinates.length, n });
    case "Polygon": {
      // Closed rings repeat their first position.
      const corners = geometry.coordinates.reduce((s, ring) => s + Math.max(ring.length - 1, 0), 0);
      return t("planner.geom_polygon", { n: corners });
    }
    case "MultiPolygon":
      return t("planner.geom_polygons", { n: geometry.coordinates.length });
    default:
      return geometry.type;
  }
}

function shorten(text, max = 160) {
  const value = String(text);
  return value.length > max ? `${value.slice(0, max - 1)}…` : value;
}

/**
 * A value of a record field as text (conflict table and history).
 * `context` may carry `cityName(ags)` and `measureTitle(id)`.
 */
export function formatValue(field, value, context = {}) {
  if (value === null || value === undefined || value === "") return "–";
  if (Array.isArray(value) && value.length === 0) return "–";
  switch (field) {
    case "status":
      return STATUS_LABELS[value] || String(value);
    case "location_precision":
      return PRECISION_LABELS[value] || String(value);
    case "action_field":
      return label("field", value);
    case "city_ags":
      return (context.cityName && context.cityName(value)) || String(value);
    case "start_date":
    case "end_date":
      return formatDate(value);
    case "budget_planned":
    case "budget_spent":
      return Number.isFinite(Number(value)) ? EURO.format(Number(value)) : String(value);
    case "milestones":
      return value
        .map((m) => `${formatDate(m?.date)} ${m?.title ?? ""} (${MILESTONE_STATUS_LABELS[m?.status] || m?.status || "offen"})`)
        .join("; ");
    case "links":
      return value.map((l) => `${l?.title ?? ""} (${l?.url ?? ""})`).join("; ");
    case "partners":
    case "editions":
      return value.join(", ");
    case "parent_id": {
      const title = context.measureTitle && context.measureTitle(value);
      return title ? t("planner.no_title", { id: value, title }) : t("planner.no", { id: value });
    }
    case "geometry":
      return describeGeometry(value);
    case "transfer":
      return describeTransfer(value);
    case "origin_id":
      return t("planner.no", { id: value });
    case "published":
    case "deleted":
      return value ? t("planner.yes") : t("planner.no_word");
    default:
      return shorten(typeof value === "object" ? JSON.stringify(value) : value);
  }
}

/** A transfer profile in one line (history, conflict table). */
export function describeTransfer(value) {
  if (!value || typeof value !== "object") return "–";
  const parts = [];
  const conditions = Array.isArray(value.preconditions) ? value.preconditions : [];
  if (conditions.length) {
    parts.push(t("planner.tr_preconditions", { list: conditions.map((c) => `${c?.indicator} ${OPERATOR_LABELS[c?.op] || c?.op} ${c?.value}`).join(", ") }));
  }
  if (Number.isFinite(value.follow_up_costs_per_year)) {
    parts.push(t("planner.tr_costs", { amount: EURO.format(value.follow_up_costs_per_year) }));
  }
  const districts = Object.entries(value.districts || {});
  if (districts.length) {
    parts.push(t("planner.tr_districts", { list: districts.map(([code, d]) => `${code} ${DISTRICT_STATUS_KEYS[d?.status] ? t(DISTRICT_STATUS_KEYS[d.status]) : d?.status ?? ""}`).join(", ") }));
  }
  if (value.notes) parts.push(t("planner.tr_notes", { notes: value.notes }));
  return shorten(parts.join("; ") || "–", 240);
}

// ---------------------------------------------------------------- record normalisation

function text(value) {
  if (value === null || value === undefined) return null;
  const trimmed = String(value).trim();
  return trimmed === "" ? null : trimmed;
}

/** A transfer profile normalised (fixed key order, districts sorted); null when empty. */
export function normaliseTransfer(value) {
  if (!value || typeof value !== "object") return null;
  const preconditions = (Array.isArray(value.preconditions) ? value.preconditions : []).map((c) => ({
    indicator: text(c?.indicator),
    op: c?.op || ">=",
    value: typeof c?.value === "number" ? c.value : c?.value === null || c?.value === undefined ? null : Number(c.value),
  }));
  const costs = value.follow_up_costs_per_year;
  const districts = {};
  for (const code of Object.keys(value.districts || {}).sort()) {
    const d = value.districts[code] || {};
    districts[code] = { status: d.status || "geprüft", date: d.date ? String(d.date).slice(0, 10) : null, note: text(d.note) };
  }
  const profile = {
    preconditions,
    follow_up_costs_per_year: typeof costs === "number" ? costs : costs === null || costs === undefined ? null : Number(costs),
    notes: text(value.notes),
    districts,
  };
  const empty = !preconditions.length && profile.follow_up_costs_per_year === null && !profile.notes && !Object.keys(districts).length;
  return empty ? null : profile;
}

/** The record fields of a server feature's properties, normalised for comparison. */
export function normaliseRecord(props) {
  const p = props || {};
  const record = {};
  for (const field of TEXT_FIELDS) record[field] = text(p[field]);
  for (const field of SELECT_FIELDS) record[field] = p[field] ?? null;
  for (const field of DATE_FIELDS) record[field] = p[field] ? String(p[field]).slice(0, 10) : null;
  for (const field of MONEY_FIELDS) record[field] = Number.isFinite(p[field]) ? p[field] : null;
  record.milestones = (Array.isArray(p.milestones) ? p.milestones : []).map((m) => ({
    date: m?.date ? String(m.date).slice(0, 10) : null,
    title: text(m?.title),
    status: m?.status || "offen",
  }));
  record.partners = (Array.isArray(p.partners) ? p.partners : []).map(text).filter(Boolean);
  record.parent_id = Number.isInteger(p.parent_id) ? p.parent_id : null;
  record.links = (Array.isArray(p.links) ? p.links : []).map((l) => ({
    title: text(l?.title),
    url: text(l?.url),
  }));
  record.editions = (Array.isArray(p.editions) ? p.editions : []).map(String).sort();
  record.transfer = normaliseTransfer(p.transfer);
  return record;
}

/** Names of the record fields that differ between two normalised records. */
export function changedFields(base, mine) {
  return RECORD_FIELDS.filter((f) => JSON.stringify(base?.[f] ?? null) !== JSON.stringify(mine?.[f] ?? null));
}

// ---------------------------------------------------------------- the form

const state = {
  config: null,
  rowCounter: 0,
  onChange: () => {},
};

function actionFieldsFor(ags) {
  const fields = state.config?.action_fields?.[ags];
  return Array.isArray(fields) ? fields : [];
}

/** Options of the Handlungsfeld select for a city; keeps a value the city does not know. */
function fillActionFields(ags, value) {
  const select = $("f-action_field");
  const fields = actionFieldsFor(ags);
  const options = [option("", t("planner.please_choose"), !value)];
  for (const field of fields) options.push(option(field, label("field", field), field === value));
  if (value && !fields.includes(value)) {
    options.push(option(value, t("planner.not_in_city", { value }), true));
  }
  select.replaceChildren(...options);
}

function onCityChange() {
  const current = $("f-action_field").value;
  const ags = $("f-city_ags").value;
  fillActionFields(ags, actionFieldsFor(ags).includes(current) ? current : "");
  state.onCityChange?.(ags);
}

function renumberRows(listId, noun) {
  const rows = $(listId).querySelectorAll(":scope > li");
  rows.forEach((row, i) => {
    row.dataset.index = String(i);
    for (const suffix of row.querySelectorAll(".row-number")) suffix.textContent = ` (${noun} ${i + 1})`;
    const remove = row.querySelector("button[data-remove]");
    if (remove) remove.setAttribute("aria-label", t("planner.remove_row", { noun, n: i + 1 }));
  });
}

function rowField(row, sub, labelText, control) {
  const id = `row-${state.rowCounter}-${sub}`;
  control.id = id;
  control.dataset.sub = sub;
  const wrap = element("div", `field field--${sub}`);
  const label = element("label", null, labelText);
  label.htmlFor = id;
  label.appendChild(element("span", "visually-hidden row-number"));
  wrap.append(label, control);
  row.appendChild(wrap);
  return control;
}

/** An input of a row: `type`, its value ('' when missing), a longest length for text; dates
 * between 1900 and 2100 as in the form. */
function input(type, value, maxLength = null) {
  const el = element("input");
  el.type = type;
  if (type === "date") {
    el.min = "1900-01-01";
    el.max = "2100-12-31";
  }
  if (maxLength !== null) el.maxLength = maxLength;
  el.value = value || "";
  return el;
}

function newRow(listId, noun) {
  state.rowCounter += 1;
  const li = element("li", "repeat-row");
  const fields = element("div", "repeat-row__fields");
  li.appendChild(fields);
  return { li, fields, noun, listId };
}

function finishRow({ li, fields, noun, listId }) {
  const remove = element("button", "button button--small button--ghost", t("planner.remove"));
  remove.type = "button";
  remove.dataset.remove = "";
  fields.appendChild(remove);
  const error = element("p", "field__error");
  error.hidden = true;
  error.id = `row-${state.rowCounter}-error`;
  li.appendChild(error);
  for (const control of fields.querySelectorAll("input, select")) {
    control.setAttribute("aria-describedby", error.id);
  }
  $(listId).appendChild(li);
  renumberRows(listId, noun);
  return li;
}

/** Add a milestone row (optionally filled). */
export function addMilestoneRow(milestone = {}) {
  const row = newRow("milestone-rows", rowNoun("milestone-rows"));
  rowField(row.fields, "date", t("planner.row_date"), input("date", milestone.date));
  rowField(row.fields, "title", t("planner.row_title"), input("text", milestone.title, limit("milestone_title")));
  const status = element("select");
  for (const [value, label] of Object.entries(MILESTONE_STATUS_LABELS)) {
    status.appendChild(option(value, label, value === (milestone.status || "offen")));
  }
  rowField(row.fields, "status", t("planner.row_status"), status);
  return finishRow(row);
}

/** Add a link row (optionally filled). */
export function addLinkRow(link = {}) {
  const row = newRow("link-rows", rowNoun("link-rows"));
  const title = element("input");
  title.type = "text";
  title.maxLength = limit("link_title");
  title.value = link.title || "";
  rowField(row.fields, "title", t("planner.row_title"), title);
  const url = element("input");
  url.type = "url";
  url.maxLength = limit("link_url");
  url.placeholder = "https://…";
  url.spellcheck = false;
  url.value = link.url || "";
  rowField(row.fields, "url", t("planner.row_url"), url);
  return finishRow(row);
}

const ROW_NOUN_KEYS = {
  "milestone-rows": "planner.milestone",
  "link-rows": "planner.link",
  "precondition-rows": "planner.precondition",
  "transfer-district-rows": "planner.district",
};

function rowNoun(listId) {
  return t(ROW_NOUN_KEYS[listId] || "planner.entry");
}

/** Add a precondition row: indicator (key, suggestions from the analysis), comparison, value. */
export function addPreconditionRow(condition = {}) {
  const row = newRow("precondition-rows", rowNoun("precondition-rows"));
  const indicator = element("input");
  indicator.type = "text";
  indicator.maxLength = 80;
  indicator.spellcheck = false;
  indicator.autocapitalize = "none";
  indicator.setAttribute("list", "indicator-keys");
  indicator.value = condition.indicator || "";
  rowField(row.fields, "indicator", t("planner.pre_indicator"), indicator);
  const op = element("select");
  for (const value of OPERATORS) op.appendChild(option(value, OPERATOR_LABELS[value], value === (condition.op || ">=")));
  rowField(row.fields, "op", t("planner.pre_op"), op);
  const value = element("input");
  value.type = "number";
  value.step = "any";
  value.inputMode = "decimal";
  value.value = condition.value ?? "";
  rowField(row.fields, "value", t("planner.pre_value"), value);
  return finishRow(row);
}

/** Add a district row: code (suggestions: the city's Stadtviertel), status, date, note and the
 * one-step transfer button. */
export function addTransferDistrictRow(code = "", entry = {}) {
  const row = newRow("transfer-district-rows", rowNoun("transfer-district-rows"));
  const district = element("input");
  district.type = "text";
  district.maxLength = 40;
  district.spellcheck = false;
  district.setAttribute("list", "district-codes");
  district.value = code;
  rowField(row.fields, "code", t("planner.district_code"), district);
  const status = element("select");
  for (const [value, key] of Object.entries(DISTRICT_STATUS_KEYS)) {
    status.appendChild(option(value, t(key), value === (entry.status || "geprüft")));
  }
  rowField(row.fields, "status", t("planner.district_status"), status);
  const date = input("date", entry.date || new Date().toISOString().slice(0, 10));
  rowField(row.fields, "date", t("planner.district_date"), date);
  rowField(row.fields, "note", t("planner.district_note"), input("text", entry.note, limit("district_note")));
  const transfer = element("button", "button button--small", t("planner.transfer_button"));
  transfer.type = "button";
  transfer.dataset.transfer = "";
  transfer.setAttribute("aria-describedby", "transfer-button-hint");
  row.fields.appendChild(transfer);
  return finishRow(row);
}

function onTransferClick(event) {
  const button = event.target.closest("button[data-transfer]");
  if (!button) return;
  const row = button.closest("li");
  const code = row.querySelector('[data-sub="code"]').value.trim();
  state.onTransfer?.(code, button);
}

/** Suggestions for the district code inputs: the Stadtviertel of a city. */
async function loadDistrictCodes(ags) {
  const list = $("district-codes");
  list.replaceChildren();
  if (!ags) return;
  try {
    const url = apiUrl("collections/districts/items", { city_ags: ags, limit: 1000 });
    const data = await getJson(url, { accept: GEOJSON });
    const props = (data.features || []).map((f) => f.properties || {})
      .sort((a, b) => String(a.code).localeCompare(String(b.code), "de", { numeric: true }));
    list.replaceChildren(...props.map((p) => option(String(p.code), `${p.code} ${p.name}`)));
  } catch (err) {
    console.error("districts:", err);
  }
}

async function loadIndicatorKeys() {
  try {
    const data = await getJson(apiUrl("analysis/indicators"));
    const items = Array.isArray(data.indicators) ? data.indicators : [];
    $("indicator-keys").replaceChildren(...items.map((i) => option(String(i.key), `${i.key} – ${(lang === "en" && i.name_en) || i.name_de || ""}`)));
  } catch (err) {
    console.error("indicators:", err);
  }
}

function onRowRemove(event) {
  const button = event.target.closest("button[data-remove]");
  if (!button) return;
  const list = button.closest("ol");
  const row = button.closest("li");
  const noun = rowNoun(list.id);
  const rows = [...list.children];
  const next = rows[rows.indexOf(row) + 1] || rows[rows.indexOf(row) - 1];
  row.remove();
  renumberRows(list.id, noun);
  // Keep the keyboard focus in the list (or on the add button when the list is empty).
  const focusTarget = next ? next.querySelector("input, select") : list.parentElement.querySelector("button.button--small");
  focusTarget?.focus();
  state.onChange();
}

/**
 * Prepare the form once: options from /api/config, add/remove rows, change notifications.
 * `onChange()` runs after every edit; `onCityChange(ags)` after the city changed.
 */
export function setupForm(config, { onChange, onCityChange: cityChanged, onTransfer }) {
  state.config = config;
  state.onTransfer = onTransfer;
  state.onChange = onChange || (() => {});
  state.onCityChange = cityChanged;
  applyLimits(config?.limits?.measure, "f-");
  const cities = Array.isArray(config?.cities) ? config.cities : [];
  $("f-city_ags").replaceChildren(...cities.map((c) => option(c.ags, c.name)));
  const statuses = Array.isArray(config?.statuses) && config.statuses.length ? config.statuses : Object.keys(STATUS_LABELS);
  $("f-status").replaceChildren(...statuses.map((s) => option(s, STATUS_LABELS[s] || s)));
  const precisions = Array.isArray(config?.location_precisions) && config.location_precisions.length
    ? config.location_precisions
    : Object.keys(PRECISION_LABELS);
  $("f-location_precision").replaceChildren(...precisions.map((p) => option(p, PRECISION_LABELS[p] || p)));
  $("f-city_ags").addEventListener("change", onCityChange);
  // the lists of rows: the add button appends one (focus in it), a row's remove button drops it
  for (const [button, rows, addRow] of [
    ["add-milestone", "milestone-rows", addMilestoneRow],
    ["add-link", "link-rows", addLinkRow],
    ["add-precondition", "precondition-rows", addPreconditionRow],
    ["add-transfer-district", "transfer-district-rows", addTransferDistrictRow],
  ]) {
    $(button).addEventListener("click", () => {
      addRow().querySelector("input")?.focus();
      state.onChange();
    });
    $(rows).addEventListener("click", onRowRemove);
  }
  $("transfer-district-rows").addEventListener("click", onTransferClick);
  $("f-city_ags").addEventListener("change", () => loadDistrictCodes($("f-city_ags").value));
  loadIndicatorKeys();
  const form = $("measure-form");
  form.addEventListener("input", () => state.onChange());
  form.addEventListener("change", () => state.onChange());
}

/** Options of the parent select: measures of `ags` except `selfId` and its descendants. */
export function fillParentOptions(measures, ags, selfId, value) {
  const excluded = new Set(selfId ? [selfId] : []);
  // Descendants of the measure itself would create a cycle.
  let grew = true;
  while (grew) {
    grew = false;
    for (const m of measures) {
      const p = m.properties || {};
      if (!excluded.has(p.id) && excluded.has(p.parent_id)) {
        excluded.add(p.id);
        grew = true;
      }
    }
  }
  const candidates = measures
    .map((m) => m.properties || {})
    .filter((p) => p.city_ags === ags && !excluded.has(p.id))
    .sort((a, b) => String(a.title).localeCompare(String(b.title), "de"));
  const options = [option("", t("planner.parent_none"), value === null || value === undefined)];
  for (const p of candidates) options.push(option(String(p.id), t("planner.parent_option", { title: p.title, id: p.id }), p.id === value));
  if (value && !candidates.some((p) => p.id === value)) {
    options.push(option(String(value), t("planner.no", { id: value }), true));
  }
  $("f-parent_id").replaceChildren(...options);
}

/** Write a normalised record into the form. */
export function fillForm(record) {
  for (const field of TEXT_FIELDS) $(`f-${field}`).value = record[field] ?? "";
  const cities = [...$("f-city_ags").options].map((o) => o.value);
  $("f-city_ags").value = cities.includes(record.city_ags) ? record.city_ags : cities[0] || "";
  fillActionFields($("f-city_ags").value, record.action_field);
  $("f-status").value = record.status || "idee";
  $("f-location_precision").value = record.location_precision || "exact";
  for (const field of DATE_FIELDS) $(`f-${field}`).value = record[field] || "";
  for (const field of MONEY_FIELDS) $(`f-${field}`).value = record[field] ?? "";
  $("f-partners").value = (record.partners || []).join("\n");
  $("f-editions").value = (record.editions || []).join(", ");
  $("milestone-rows").replaceChildren();
  for (const m of record.milestones || []) addMilestoneRow(m);
  $("link-rows").replaceChildren();
  for (const l of record.links || []) addLinkRow(l);
  $("f-parent_id").value = record.parent_id ? String(record.parent_id) : "";
  const transfer = record.transfer || {};
  $("precondition-rows").replaceChildren();
  for (const c of transfer.preconditions || []) addPreconditionRow(c);
  $("f-transfer_costs").value = transfer.follow_up_costs_per_year ?? "";
  $("f-transfer_notes").value = transfer.notes ?? "";
  $("transfer-district-rows").replaceChildren();
  for (const [code, entry] of Object.entries(transfer.districts || {})) addTransferDistrictRow(code, entry);
  loadDistrictCodes($("f-city_ags").value);
}

function readTransfer() {
  const preconditions = [...$("precondition-rows").children]
    .map((row) => {
      const raw = row.querySelector('[data-sub="value"]');
      return {
        indicator: text(row.querySelector('[data-sub="indicator"]').value),
        op: row.querySelector('[data-sub="op"]').value || ">=",
        value: raw.validity.badInput ? Number.NaN : raw.value.trim() === "" ? null : Number(raw.value),
      };
    })
    .filter((c) => c.indicator || c.value !== null);
  const districts = {};
  for (const row of $("transfer-district-rows").children) {
    const code = row.querySelector('[data-sub="code"]').value.trim();
    if (!code) continue;
    districts[code] = {
      status: row.querySelector('[data-sub="status"]').value,
      date: row.querySelector('[data-sub="date"]').value || null,
      note: text(row.querySelector('[data-sub="note"]').value),
    };
  }
  return normaliseTransfer({
    preconditions,
    follow_up_costs_per_year: moneyValue("f-transfer_costs"),
    notes: $("f-transfer_notes").value,
    districts,
  });
}

/** Split partners: one per line, or (on a single line) by comma. */
export function splitPartners(value) {
  const raw = String(value ?? "");
  const parts = /\n/.test(raw) ? raw.split(/\r?\n/) : raw.split(",");
  return parts.map((p) => p.trim()).filter(Boolean);
}

function moneyValue(id) {
  const input = $(id);
  if (input.validity.badInput) return Number.NaN;
  if (input.value.trim() === "") return null;
  return Number(input.value);
}

/** Read the form into a normalised record (rows that are completely empty are dropped). */
export function readForm() {
  const record = {};
  for (const field of TEXT_FIELDS) record[field] = text($(`f-${field}`).value);
  for (const field of SELECT_FIELDS) record[field] = $(`f-${field}`).value || null;
  for (const field of DATE_FIELDS) record[field] = $(`f-${field}`).value || null;
  for (const field of MONEY_FIELDS) record[field] = moneyValue(`f-${field}`);
  record.milestones = [...$("milestone-rows").children]
    .map((row) => ({
      date: row.querySelector('[data-sub="date"]').value || null,
      title: text(row.querySelector('[data-sub="title"]').value),
      status: row.querySelector('[data-sub="status"]').value || "offen",
    }))
    .filter((m) => m.date || m.title);
  record.partners = splitPartners($("f-partners").value);
  record.parent_id = $("f-parent_id").value ? Number($("f-parent_id").value) : null;
  record.links = [...$("link-rows").children]
    .map((row) => ({
      title: text(row.querySelector('[data-sub="title"]').value),
      url: text(row.querySelector('[data-sub="url"]').value),
    }))
    .filter((l) => l.title || l.url);
  record.editions = $("f-editions").value.split(",").map((e) => e.trim()).filter(Boolean).sort();
  record.transfer = readTransfer();
  return record;
}

/** The record as the server takes it: every field, null for empty optional ones. */
export function toProperties(record, fields = RECORD_FIELDS) {
  const props = {};
  for (const field of fields) {
    const value = record[field];
    props[field] = value === undefined ? null : value;
  }
  return props;
}

// ---------------------------------------------------------------- checks

/**
 * Client-side basics. Returns errors [{field, message, row?, sub?}] (empty when fine).
 * The server checks everything again.
 */
export function validateRecord(record, { geometry } = {}) {
  const errors = [];
  if (!record.title) errors.push({ field: "title", message: t("planner.need_title") });
  if (!record.city_ags) errors.push({ field: "city_ags", message: t("planner.need_city") });
  if (!record.action_field) errors.push({ field: "action_field", message: t("planner.need_field") });
  if (record.start_date && record.end_date && record.end_date < record.start_date) {
    errors.push({ field: "end_date", message: t("planner.end_before_start") });
  }
  for (const field of MONEY_FIELDS) {
    const value = record[field];
    if (Number.isNaN(value)) errors.push({ field, message: t("planner.need_number") });
    else if (value !== null && value < 0) errors.push({ field, message: t("planner.negative") });
  }
  record.milestones.forEach((m, i) => {
    if (!m.date) errors.push({ field: "milestones", row: i, sub: "date", message: t("planner.need_date") });
    if (!m.title) errors.push({ field: "milestones", row: i, sub: "title", message: t("planner.need_label") });
  });
  record.links.forEach((l, i) => {
    if (!l.title) errors.push({ field: "links", row: i, sub: "title", message: t("planner.need_label") });
    if (!l.url || !URL_PATTERN.test(l.url)) {
      errors.push({ field: "links", row: i, sub: "url", message: t("planner.need_url") });
    }
  });
  const badEdition = record.editions.find((e) => !EDITION_PATTERN.test(e));
  if (badEdition) {
    errors.push({
      field: "editions",
      message: t("planner.bad_edition", { edition: badEdition }),
    });
  }
  const transfer = record.transfer;
  if (transfer) {
    transfer.preconditions.forEach((c, i) => {
      if (!c.indicator) errors.push({ field: "transfer", message: t("planner.pre_need_indicator", { n: i + 1 }) });
      if (c.value === null || !Number.isFinite(c.value)) {
        errors.push({ field: "transfer", message: t("planner.pre_need_value", { n: i + 1 }) });
      }
    });
    const costs = transfer.follow_up_costs_per_year;
    if (Number.isNaN(costs)) errors.push({ field: "transfer", message: t("planner.costs_need_number") });
    else if (costs !== null && costs < 0) errors.push({ field: "transfer", message: t("planner.costs_negative") });
    for (const [code, d] of Object.entries(transfer.districts)) {
      if (!d.date) errors.push({ field: "transfer", message: t("planner.district_need_date", { code }) });
    }
  }
  if (geometry === null) {
    errors.push({ field: "geometry", message: t("planner.need_geometry") });
  }
  return errors;
}

/**
 * A server problem (an `errors` entry or the problem body) in the page's language: the
 * catalogue text of its `code` with its `params`, else the server's own text (already in the
 * language the page asked for). No server prose is translated here.
 */
export function problemText(problem) {
  if (problem && typeof problem === "object") {
    const key = `problem.${problem.code}`;
    if (problem.code && has(key)) return t(key, problem.params || {});
    return String(problem.problem ?? problem.detail ?? "").trim() || t("planner.rejected");
  }
  return String(problem ?? "").trim() || t("planner.rejected");
}

/** problem+json `errors` → [{field, message, row?, sub?}] for showErrors(). */
export function serverErrors(problem) {
  const list = Array.isArray(problem?.errors) ? problem.errors : [];
  const errors = [];
  for (const item of list) {
    const pointer = String(item?.pointer ?? "");
    const message = problemText(item);
    const parts = pointer.split("/").filter(Boolean);
    if (parts[0] === "geometry") {
      errors.push({ field: "geometry", message });
    } else if (parts[0] === "properties" && parts.length >= 2 && RECORD_FIELDS.includes(parts[1])) {
      const field = parts[1];
      const index = parts.length >= 3 && /^\d+$/.test(parts[2]) ? Number(parts[2]) : null;
      if (field === "transfer" && parts.length >= 3) {
        const where = parts[2] === "preconditions" && /^\d+$/.test(parts[3] || "")
          ? `${t("planner.where_precondition", { n: Number(parts[3]) + 1 })}${parts[4] ? ` (${parts[4]})` : ""}`
          : parts[2] === "districts" ? `${t("planner.where_district", { code: parts[3] ?? "" })}${parts[4] ? ` (${parts[4]})` : ""}`
            : parts[2] === "follow_up_costs_per_year" ? t("planner.where_costs") : parts[2] === "notes" ? t("planner.where_notes") : parts[2];
        errors.push({ field, message: `${where}: ${message}` });
      } else if ((field === "milestones" || field === "links") && index !== null) {
        errors.push({ field, row: index, sub: parts[3] || null, message });
      } else if ((field === "partners" || field === "editions") && index !== null) {
        errors.push({ field, message: t("planner.entry_n", { n: index + 1, message }) });
      } else {
        errors.push({ field, message });
      }
    } else {
      errors.push({ field: null, message });
    }
  }
  if (!errors.length && problem?.detail) errors.push({ field: null, message: problemText(problem) });
  return errors;
}

// ---------------------------------------------------------------- showing errors

function errorTarget(error) {
  if (error.field && error.row !== null && error.row !== undefined) {
    const list = $(error.field === "milestones" ? "milestone-rows" : "link-rows");
    const row = list?.children[error.row];
    if (row) {
      const control = (error.sub && row.querySelector(`[data-sub="${error.sub}"]`)) || row.querySelector("input, select");
      return { box: row.querySelector(".field__error"), control, label: `${FIELD_LABELS[error.field]} ${error.row + 1}` };
    }
  }
  if (error.field) {
    const box = $(`f-${error.field}-error`);
    const control = $(`f-${error.field}`) || document.querySelector(`[data-field="${error.field}"] input, [data-field="${error.field}"] select`);
    if (box) return { box, control, label: FIELD_LABELS[error.field] || error.field };
  }
  return { box: null, control: null, label: null };
}

/** Remove every inline error and the summary. */
export function clearErrors() {
  for (const box of document.querySelectorAll("#measure-form .field__error")) {
    box.hidden = true;
    box.textContent = "";
  }
  for (const control of document.querySelectorAll('#measure-form [aria-invalid="true"]')) {
    control.removeAttribute("aria-invalid");
  }
  for (const field of document.querySelectorAll("#measure-form .field--invalid")) {
    field.classList.remove("field--invalid");
  }
  $("form-errors").hidden = true;
  $("form-errors-list").replaceChildren();
}

/**
 * Show errors next to their fields and as a linked summary above the form; the summary takes
 * the focus so keyboard and screen reader users hear what to fix.
 */
export function showErrors(errors) {
  clearErrors();
  const items = [];
  for (const error of errors) {
    const { box, control, label } = errorTarget(error);
    if (box) {
      box.textContent = box.hidden || !box.textContent ? error.message : `${box.textContent} ${error.message}`;
      box.hidden = false;
      box.closest(".field, .repeat-row")?.classList.add("field--invalid");
    }
    if (control) control.setAttribute("aria-invalid", "true");
    const li = document.createElement("li");
    if (control && control.id) {
      const link = element("a", null, label ? `${label}: ${error.message}` : error.message);
      link.href = `#${control.id}`;
      link.addEventListener("click", (event) => {
        event.preventDefault();
        control.focus();
      });
      li.appendChild(link);
    } else {
      li.textContent = label ? `${label}: ${error.message}` : error.message;
    }
    items.push(li);
  }
  $("form-errors-list").replaceChildren(...items);
  $("form-errors").hidden = items.length === 0;
  if (items.length) $("form-errors").focus();
}
