// Analysis page (analysis.html): an analyst picks a reference (pilot quarter, Stadtviertel,
// municipality, Kreis or the place of a measure), the level of the candidates, indicators and
// weights, and gets the ranked candidates with the reasons, a choropleth of the similarity or
// of any indicator, the contributions per candidate, the stability under other weights, the
// excluded units, a Halle ↔ Gera comparison and a downloadable report.
//
// State on <body data-analysis-state="loading|ready|running|done|error">; the map container
// carries data-map-state="loading|ready|error", data-level and data-renderer (svg|canvas).

import * as api from "./analysis-api.js";
import {
  contributionItems,
  contributionsChart,
  contributionsTable,
  sensitivityChart,
} from "./analysis-charts.js";
import {
  $,
  el,
  formatCount,
  formatNumber,
  formatPercent,
  formatScore,
  formatValue,
  noteNode,
  replaceChildren,
  svgEl,
} from "./analysis-format.js";
import * as amap from "./analysis-map.js";
import { lang, startPage, t } from "./i18n.js";

const MAX_INDICATORS = 30;
const SLIDER_MAX = 5;
const SIMILAR_SD = 0.5;
const SEARCH_RESULTS = 30;
const SENSITIVITY_ROWS = 25; // rows of the stability figure (all are in the table)
const RANK_LABELS = 30; // rank labels on the map
const KIND_KEYS = {
  quarter: "analysis.kind_quarter",
  gemeinde: "analysis.kind_gemeinde",
  kreis: "analysis.kind_kreis",
  measure: "analysis.kind_measure",
};
const FIXED_LEVELS = new Set(["gemeinde", "kreis", "quarter"]);

const app = {
  levels: [],
  levelBy: new Map(),
  indicators: [],
  indicatorBy: new Map(),
  names: new Map(), // indicator key -> German name
  quarters: [],
  measures: [],
  unitLists: new Map(), // level -> Promise<[{code, name}]>
  geometry: new Map(), // level -> Promise<{collection, key, classes, k}>
  referenceGeometry: new Map(), // spec -> Promise<feature|null>
  checked: new Map(), // indicator key -> weight (kept across level changes)
  search: null, // {kind, code, name} chosen in the municipality/Kreis search
  result: null,
  body: null,
  scores: null, // {key: "scheme|k", scores}
  selected: null,
  mapToken: 0,
  mapData: null, // {variable, values: Map(code -> {value, cls}), labels, unit}
  busy: false,
};

// ---------------------------------------------------------------- status

function setPageState(value) {
  document.body.dataset.analysisState = value;
}

function setStatus(text, kind = "info") {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("status--error", kind === "error");
  status.classList.toggle("status--success", kind === "success");
}

function setBusy(busy) {
  app.busy = busy;
  $("run-button").disabled = busy;
  $("report-button").disabled = busy;
  $("results").setAttribute("aria-busy", busy ? "true" : "false");
}

// ---------------------------------------------------------------- levels

function levelLabel(level) {
  const lv = app.levelBy.get(level);
  if (!lv) return level;
  return levelName(lv);
}

/** A level's name in the page's language ({label_de, label_en} of the API). */
function levelName(lv) {
  return (lang === "en" ? lv?.label_en : lv?.label_de) || lv?.label_de || lv?.name || "";
}

/** An indicator's name in the page's language (the API's result rows carry name_de only). */
function indName(d) {
  return app.names.get(d.key) || d.name_de || d.key;
}

/** A type's label in the page's language. */
function typeName(x) {
  return (lang === "en" ? x?.label_en : x?.label_de) || x?.label_de || "";
}

function orderedLevels() {
  const districts = app.levels.filter((lv) => !FIXED_LEVELS.has(lv.name));
  const fixed = ["gemeinde", "kreis", "quarter"].map((n) => app.levelBy.get(n)).filter(Boolean);
  return [...districts, ...fixed];
}

function levelOptionText(lv) {
  const label = FIXED_LEVELS.has(lv.name) ? levelName(lv) : `${levelName(lv)} (Halle)`;
  return `${label} – ${t("analysis.units_n", { count: lv.units })}`;
}

function fillLevels() {
  const select = $("level");
  select.replaceChildren(...orderedLevels().map((lv) =>
    el("option", { text: levelOptionText(lv), attrs: { value: lv.name } })));
  const first = orderedLevels()[0];
  if (first) select.value = first.name;
  updateLevelHint();
}

function updateLevelHint() {
  const lv = app.levelBy.get($("level").value);
  const key = { gemeinde: "analysis.level_gemeinde", kreis: "analysis.level_kreis", quarter: "analysis.level_quarter" }[lv?.name] || "analysis.level_district";
  let hint = t(key);
  const approx = lv?.approximate_units || 0;
  if (approx && approx === lv.units) hint += ` ${t("analysis.approx_all", { count: approx })}`;
  else if (approx) hint += ` ${t("analysis.approx_some", { count: approx, total: lv.units })}`;
  $("level-hint").textContent = hint;
  $("filter-hint").textContent = t("analysis.filter_hint", { names: (lv?.filter_properties || []).join(", ") });
  renderIndicatorSources(lv?.name);
}

/** Which indicators exist at `level`, from which source and of which date (catalogue). */
function renderIndicatorSources(level) {
  const rows = indicatorsAt(level || "");
  const defaults = new Set(app.levelBy.get(level)?.default_indicators || []);
  const table = el("table", { className: "data-table", attrs: { id: "indicator-sources-table" } },
    el("caption", { className: "visually-hidden", text: t("analysis.available") }),
    el("thead", {}, el("tr", {}, ...["analysis.src_indicator", "analysis.src_source", "analysis.src_date", "analysis.src_coverage", "analysis.src_default"]
      .map((k) => el("th", { text: t(k), attrs: { scope: "col" } })))),
    el("tbody", {}, ...rows.map((d) => {
      const c = d.coverage[level];
      return el("tr", { dataset: { key: d.key } },
        el("th", { text: lang === "en" ? d.name_en || d.key : d.name_de, attrs: { scope: "row" } }),
        el("td", { text: (c.sources || []).join(", ") }),
        el("td", { text: (c.ref_dates || []).join(" … ") }),
        el("td", { className: "num", text: `${formatCount(c.values)} / ${formatCount(c.units)}` }),
        el("td", { text: defaults.has(d.key) ? t("analysis.yes") : "" }));
    })));
  $("indicator-sources-summary").textContent = t("analysis.available_n", { count: rows.length });
  replaceChildren($("indicator-sources-body"), table);
}

/** Indicators with at least one value at `level`. */
function indicatorsAt(level) {
  return app.indicators.filter((d) => (d.coverage?.[level]?.values || 0) > 0);
}

/** Indicator whose values endpoint also carries the level's geometry. */
function geometryKey(level) {
  const available = indicatorsAt(level).map((d) => d.key);
  if (available.includes("area_geom_km2")) return "area_geom_km2";
  const lv = app.levelBy.get(level);
  return (lv?.default_indicators || []).find((k) => available.includes(k)) || available[0];
}

/** [{code, name}] of a level (names for the search and the Stadtviertel list). */
function unitList(level) {
  if (!app.unitLists.has(level)) {
    const key = geometryKey(level);
    const promise = api.getValues(key, { level, format: "json" }).then((body) =>
      (body.values || []).map((v) => ({ code: String(v.code), name: v.name || String(v.code) })));
    promise.catch(() => app.unitLists.delete(level));
    app.unitLists.set(level, promise);
  }
  return app.unitLists.get(level);
}

// ---------------------------------------------------------------- reference

function referenceKind() {
  return $("reference-kind").value;
}

function districtLevel() {
  const kind = referenceKind();
  return kind.startsWith("district:") ? kind.slice("district:".length) : null;
}

function fillReferenceKinds() {
  const select = $("reference-kind");
  const options = [el("option", { text: t("analysis.kind_quarter"), attrs: { value: "quarter" } })];
  for (const lv of app.levels.filter((l) => !FIXED_LEVELS.has(l.name))) {
    options.push(el("option", { text: `${levelName(lv)} (Halle)`, attrs: { value: `district:${lv.name}` } }));
  }
  options.push(
    el("option", { text: t("analysis.ref_gemeinde"), attrs: { value: "gemeinde" } }),
    el("option", { text: t("analysis.ref_kreis"), attrs: { value: "kreis" } }));
  if (app.measures.length) {
    options.push(el("option", { text: t("analysis.ref_measure"), attrs: { value: "measure" } }));
  }
  select.replaceChildren(...options);
}

function fillQuarters() {
  const select = $("reference-quarter");
  const quarters = [...app.quarters].sort((a, b) => a.name.localeCompare(b.name, "de"));
  select.replaceChildren(...quarters.map((q) => el("option", { text: q.name, attrs: { value: q.slug } })));
}

function fillMeasures() {
  const select = $("reference-measure");
  const items = [...app.measures].sort((a, b) => a.id - b.id);
  select.replaceChildren(...items.map((m) =>
    el("option", { text: t("analysis.measure_option", { id: m.id, title: m.title }), attrs: { value: String(m.id) } })));
}

let districtFill = null; // {level, promise}: one fill per district level

function fillDistricts() {
  const level = districtLevel();
  if (!level) return Promise.resolve();
  if (districtFill?.level === level) return districtFill.promise;
  const select = $("reference-district");
  select.replaceChildren(el("option", { text: t("analysis.loading_short"), attrs: { value: "" } }));
  const promise = unitList(level).then((units) => {
    const sorted = [...units].sort((a, b) => a.code.localeCompare(b.code, "de", { numeric: true }));
    select.replaceChildren(...sorted.map((u) =>
      el("option", { text: `${u.code} ${u.name}`, attrs: { value: u.code } })));
    updateReferenceCurrent();
  }).catch((err) => {
    districtFill = null;
    select.replaceChildren(el("option", { text: t("analysis.unavailable"), attrs: { value: "" } }));
    setStatus(api.describeError(err), "error");
  });
  districtFill = { level, promise };
  return promise;
}

function showReferenceField() {
  const kind = referenceKind();
  const group = kind.startsWith("district:") ? "district" : kind;
  for (const field of document.querySelectorAll("[data-reference]")) {
    field.hidden = !field.dataset.reference.split(" ").includes(group);
  }
  if (group === "district") fillDistricts();
  if (group === "gemeinde" || group === "kreis") {
    $("reference-search-label").textContent = t(group === "gemeinde" ? "analysis.search_gemeinde" : "analysis.search_kreis");
    if (app.search && app.search.kind !== group) {
      app.search = null;
      $("reference-search").value = "";
    }
    unitList(group).catch(() => {});
  }
  renderIndicators();
  updateReferenceCurrent();
}

/** The reference as {spec, label, kind} or null (with the reason in `problem`). */
function currentReference() {
  const kind = referenceKind();
  if (kind === "quarter") {
    const select = $("reference-quarter");
    if (!select.value) return { problem: t("analysis.need_quarter"), field: select };
    return { spec: `quarter:${select.value}`, label: select.selectedOptions[0].textContent, kind };
  }
  if (kind.startsWith("district:")) {
    const select = $("reference-district");
    if (!select.value) return { problem: t("analysis.need_district"), field: select };
    const text = select.selectedOptions[0].textContent.replace(/^\S+\s/, "");
    return { spec: `${districtLevel()}:${select.value}`, label: text, kind: "district" };
  }
  if (kind === "gemeinde" || kind === "kreis") {
    if (!app.search || app.search.kind !== kind) {
      return {
        problem: kind === "gemeinde"
          ? t("analysis.need_gemeinde")
          : t("analysis.need_kreis"),
        field: $("reference-search"),
      };
    }
    return { spec: `${kind}:${app.search.code}`, label: app.search.name, kind };
  }
  if (kind === "measure") {
    const select = $("reference-measure");
    if (!select.value) return { problem: t("analysis.need_measure"), field: select };
    return { spec: `measure:${select.value}`, label: select.selectedOptions[0].textContent, kind };
  }
  return { problem: t("analysis.need_reference"), field: $("reference-kind") };
}

function updateReferenceCurrent() {
  const ref = currentReference();
  const out = $("reference-current");
  if (ref.problem) {
    out.textContent = t("analysis.no_reference");
    out.classList.add("reference-current--empty");
    return;
  }
  out.classList.remove("reference-current--empty");
  replaceChildren(out, `${t("analysis.reference_label")} `, el("strong", { text: ref.label }), ` (${ref.spec})`);
}

function parseSearch(value, units, kind) {
  const digits = kind === "gemeinde" ? 8 : 5;
  const trimmed = value.trim();
  const inParens = trimmed.match(/\((\d{5}|\d{8})\)\s*$/);
  const code = inParens ? inParens[1] : (new RegExp(`^\\d{${digits}}$`).test(trimmed) ? trimmed : null);
  if (code && code.length === digits) {
    const unit = units?.find((u) => u.code === code);
    return { kind, code, name: unit ? unit.name : code };
  }
  const lower = trimmed.toLocaleLowerCase("de");
  const exact = (units || []).filter((u) => u.name.toLocaleLowerCase("de") === lower);
  return exact.length === 1 ? { kind, code: exact[0].code, name: exact[0].name } : null;
}

let searchTimer = 0;

async function onSearchInput() {
  const kind = referenceKind();
  if (kind !== "gemeinde" && kind !== "kreis") return;
  const input = $("reference-search");
  let units = null;
  try {
    units = await unitList(kind);
  } catch (err) {
    setStatus(api.describeError(err), "error");
  }
  app.search = parseSearch(input.value, units, kind);
  input.removeAttribute("aria-invalid");
  updateReferenceCurrent();
  window.clearTimeout(searchTimer);
  searchTimer = window.setTimeout(() => fillSuggestions(input.value, units || []), 80);
}

function fillSuggestions(value, units) {
  const query = value.trim().toLocaleLowerCase("de");
  const list = $("reference-options");
  if (query.length < 2 || /\(\d+\)\s*$/.test(value)) {
    list.replaceChildren();
    return;
  }
  const starts = [];
  const contains = [];
  for (const unit of units) {
    const name = unit.name.toLocaleLowerCase("de");
    if (name.startsWith(query) || unit.code.startsWith(query)) starts.push(unit);
    else if (name.includes(query)) contains.push(unit);
    if (starts.length >= SEARCH_RESULTS) break;
  }
  const matches = [...starts, ...contains].slice(0, SEARCH_RESULTS);
  list.replaceChildren(...matches.map((u) => el("option", { attrs: { value: `${u.name} (${u.code})` } })));
}

function chooseShortcut(event) {
  const button = event.currentTarget;
  const { kind, code, level } = button.dataset;
  $("reference-kind").value = kind;
  if (kind === "quarter") {
    $("reference-quarter").value = code;
  } else {
    app.search = { kind, code, name: button.textContent.trim() };
    $("reference-search").value = `${app.search.name} (${code})`;
  }
  showReferenceField();
  $("reference-search").removeAttribute("aria-invalid");
  // a sensible level: a city among municipalities (not its own districts), a quarter among
  // the Stadtviertel; the defaults of that level are checked afresh
  if (level && app.levelBy.has(level) && $("level").value !== level) {
    $("level").value = level;
    app.checked.clear();
    $("level").dispatchEvent(new Event("change"));
  }
  updateReferenceCurrent();
}

// ---------------------------------------------------------------- indicators

function coverageText(d, level) {
  const c = d.coverage?.[level];
  if (!c) return t("analysis.cov_none");
  const missing = (c.missing || 0) + (c.absent || 0);
  return missing
    ? t("analysis.cov_some", { values: formatCount(c.values), units: formatCount(c.units) })
    : t("analysis.cov_all", { units: formatCount(c.units) });
}

function indicatorRow(d, level, refLevel) {
  const key = d.key;
  const checked = app.checked.has(key);
  const weight = checked ? app.checked.get(key) : 1;
  const checkbox = el("input", {
    attrs: {
      type: "checkbox", id: `ind-${key}`, name: "indicator", value: key,
      "aria-describedby": `ind-${key}-cov ind-${key}-desc`,
    },
  });
  checkbox.checked = checked;
  const name = el("label", { className: "indicator__name", attrs: { for: `ind-${key}` } },
    el("span", { text: indName(d) }),
    d.unit && d.unit.length <= 16 ? el("span", { className: "indicator__unit", text: d.unit }) : null);
  const notes = [coverageText(d, level)];
  const noRef = refLevel && !(d.coverage?.[refLevel]?.values > 0);
  if (noRef) notes.push(t(refLevel === "quarter" ? "analysis.no_ref_quarter" : "analysis.no_ref"));
  const coverage = el("span", {
    className: `indicator__coverage${noRef ? " indicator__coverage--warn" : ""}`,
    text: notes.join(" · "),
    attrs: { id: `ind-${key}-cov` },
  });
  // the description comes in the page's language (the API answers in Accept-Language)
  const desc = el("span", { className: "visually-hidden", text: d.description || "", attrs: { id: `ind-${key}-desc` } });
  const range = el("input", {
    className: "weight__range",
    attrs: {
      type: "range", id: `weight-range-${key}`, min: 0, max: SLIDER_MAX, step: 0.5,
      "aria-label": t("analysis.weight_slider", { name: indName(d) }),
    },
  });
  range.value = String(Math.min(weight, SLIDER_MAX));
  const number = el("input", {
    className: "weight__number",
    attrs: {
      type: "number", id: `weight-${key}`, min: 0, max: 1000, step: "any", inputmode: "decimal",
      "aria-label": t("analysis.weight_number", { name: indName(d) }),
    },
  });
  number.value = String(weight);
  range.disabled = !checked;
  number.disabled = !checked;
  const weightBox = el("div", { className: "weight" }, range, number);
  const row = el("div", { className: `indicator${checked ? " indicator--on" : ""}`, dataset: { key } },
    checkbox, name, coverage, desc, weightBox);
  checkbox.addEventListener("change", () => {
    if (checkbox.checked) app.checked.set(key, Number(number.value) || 0);
    else app.checked.delete(key);
    range.disabled = !checkbox.checked;
    number.disabled = !checkbox.checked;
    row.classList.toggle("indicator--on", checkbox.checked);
    updateIndicatorCount();
  });
  range.addEventListener("input", () => {
    number.value = range.value;
    if (checkbox.checked) app.checked.set(key, Number(range.value));
    number.removeAttribute("aria-invalid");
  });
  number.addEventListener("input", () => {
    const value = Number(number.value);
    if (Number.isFinite(value)) range.value = String(Math.min(Math.max(value, 0), SLIDER_MAX));
    if (checkbox.checked) app.checked.set(key, value);
    number.removeAttribute("aria-invalid");
  });
  return row;
}

function referenceLevelOfKind() {
  const kind = referenceKind();
  if (kind === "quarter") return "quarter";
  if (kind.startsWith("district:")) return districtLevel();
  if (kind === "gemeinde" || kind === "kreis") return kind;
  return null; // measure: the unit of the level itself
}

function renderIndicators() {
  const level = $("level").value;
  const available = indicatorsAt(level);
  const keys = new Set(available.map((d) => d.key));
  for (const key of [...app.checked.keys()]) if (!keys.has(key)) app.checked.delete(key);
  if (!app.checked.size) {
    const defaults = app.levelBy.get(level)?.default_indicators || [];
    for (const key of defaults) if (keys.has(key)) app.checked.set(key, 1);
  }
  const refLevel = referenceLevelOfKind();
  const core = available.filter((d) => !d.key.startsWith("measures"));
  const more = available.filter((d) => d.key.startsWith("measures"));
  $("indicator-list").replaceChildren(...core.map((d) => indicatorRow(d, level, refLevel)));
  $("indicator-list-more").replaceChildren(...more.map((d) => indicatorRow(d, level, refLevel)));
  $("indicator-more").hidden = more.length === 0;
  $("indicator-more-summary").textContent = t("analysis.more_indicators", { count: more.length });
  if (more.some((d) => app.checked.has(d.key))) $("indicator-more").open = true;
  updateIndicatorCount();
}

function updateIndicatorCount() {
  const n = app.checked.size;
  const out = $("indicator-count");
  out.textContent = n > MAX_INDICATORS
    ? t("analysis.too_many_chosen", { count: n, max: MAX_INDICATORS })
    : t("analysis.chosen_n", { count: n });
  out.classList.toggle("indicator-count--error", n === 0 || n > MAX_INDICATORS);
}

// ---------------------------------------------------------------- the form

class FormProblem extends Error {
  constructor(problems) {
    super(problems.map((p) => p.text).join(" "));
    this.problems = problems;
  }
}

function mapClasses() {
  const k = Math.round(Number($("map-k").value));
  return { classes: $("map-scheme").value, k: Number.isFinite(k) && k >= 2 && k <= 9 ? k : null };
}

/** The request body from the form, or a FormProblem naming the fields to fix. */
function readForm() {
  const problems = [];
  const ref = currentReference();
  if (ref.problem) problems.push({ text: ref.problem, field: ref.field });
  const level = $("level").value;
  const order = indicatorsAt(level).map((d) => d.key);
  const indicators = order.filter((key) => app.checked.has(key));
  const weights = {};
  for (const key of indicators) {
    const w = Number($(`weight-${key}`)?.value);
    if (!Number.isFinite(w) || w < 0) {
      problems.push({ text: t("analysis.bad_weight", { name: app.names.get(key) || key }), field: $(`weight-${key}`) });
    }
    weights[key] = w;
  }
  if (!indicators.length) {
    problems.push({ text: t("analysis.need_indicator"), field: $("indicator-list").querySelector("input") });
  } else if (indicators.length > MAX_INDICATORS) {
    problems.push({ text: t("analysis.max_indicators", { max: MAX_INDICATORS }), field: $("indicator-list").querySelector("input") });
  } else if (Object.values(weights).every((w) => !(w > 0))) {
    problems.push({ text: t("analysis.need_weight"), field: $(`weight-${indicators[0]}`) });
  }
  const metric = $("metric").value;
  const missing = $("missing").value;
  if (missing === "skip_pairwise" && metric === "mahalanobis") {
    problems.push({ text: t("analysis.pairwise_euclid"), field: $("missing") });
  }
  const top = Number($("top").value);
  if (!Number.isInteger(top) || top < 1 || top > 500) {
    problems.push({ text: t("analysis.bad_top", { max: 500 }), field: $("top") });
  }
  const { classes, k } = mapClasses();
  if (k === null) problems.push({ text: t("analysis.bad_k"), field: $("map-k") });
  if (problems.length) throw new FormProblem(problems);
  return {
    reference: ref.spec,
    level,
    indicators,
    weights,
    method: $("method").value,
    metric,
    missing,
    top,
    classes,
    k_classes: k,
    ...($("candidate-filter").value.trim() ? { filter: $("candidate-filter").value.trim() } : {}),
  };
}

function clearFormErrors() {
  const box = $("form-error");
  box.hidden = true;
  box.replaceChildren();
  for (const field of document.querySelectorAll("#analysis-form [aria-invalid]")) field.removeAttribute("aria-invalid");
}

function showFormErrors(problems) {
  const box = $("form-error");
  box.replaceChildren(
    el("p", { className: "error-summary__title", text: t("analysis.please_check") }),
    el("ul", {}, ...problems.map((p) => el("li", { text: p.text }))));
  box.hidden = false;
  for (const p of problems) p.field?.setAttribute("aria-invalid", "true");
  const first = problems.find((p) => p.field)?.field;
  if (first) {
    const details = first.closest("details");
    if (details) details.open = true;
    first.focus();
  }
}

// ---------------------------------------------------------------- run

/**
 * The form read for a request (run, report): on a missing or bad entry the problems are shown
 * next to their fields, the status line says so, and the answer is null.
 */
function checkedForm() {
  clearFormErrors();
  try {
    return readForm();
  } catch (err) {
    if (!(err instanceof FormProblem)) throw err;
    showFormErrors(err.problems);
    setStatus(t("analysis.incomplete"), "error");
    return null;
  }
}

async function run(event) {
  event?.preventDefault();
  if (app.busy) return;
  const form = checkedForm();
  if (!form) return;
  const body = { ...form, sensitivity: true, types: true, scores: true };
  setBusy(true);
  setPageState("running");
  const many = (app.levelBy.get(form.level)?.units || 0) > 2000;
  setStatus(t(many ? "analysis.running_many" : "analysis.running"));
  const started = performance.now();
  try {
    const result = await api.postTransfer(body);
    app.result = result;
    app.body = body;
    app.scores = { key: `${form.classes}|${form.k_classes}`, scores: result.scores };
    const firstCandidate = (result.rows || []).find((r) => !r.is_reference);
    app.selected = firstCandidate ? firstCandidate.code : result.rows?.[0]?.code || null;
    renderResult();
    fillMapVariables("score");
    rememberInUrl(form);
    const seconds = (performance.now() - started) / 1000;
    setStatus(t("analysis.done", { units: t("analysis.units_n", { count: result.n_candidates }), level: levelName(result.level), excluded: formatCount(result.n_excluded), seconds: formatNumber(seconds, 1) }), "success");
    setPageState("done");
    await renderMap();
  } catch (err) {
    setStatus(t("analysis.failed", { reason: api.describeError(err) }), "error");
    setPageState("error");
  } finally {
    setBusy(false);
  }
}

function rememberInUrl(form) {
  const params = new URLSearchParams();
  params.set("reference", form.reference);
  params.set("level", form.level);
  params.set("indicators", form.indicators.map((k) => `${k}:${form.weights[k]}`).join(","));
  params.set("method", form.method);
  params.set("metric", form.metric);
  params.set("top", String(form.top));
  if (form.filter) params.set("filter", form.filter);
  const chosenLang = new URLSearchParams(location.search).get("lang");
  if (chosenLang) params.set("lang", chosenLang); // the language stays with the address
  history.replaceState(null, "", `?${params}`);
}

// ---------------------------------------------------------------- results

function referenceValues(result) {
  if (result.reference.values) return result.reference.values;
  return (result.rows || []).find((r) => r.is_reference)?.values || {};
}

function renderResult() {
  const result = app.result;
  $("intro").hidden = true;
  renderSummary(result);
  renderRanking(result);
  renderContribSelect(result);
  renderContrib();
  renderSensitivity(result);
  renderNotes(result);
}

function renderSummary(result) {
  const ref = result.reference;
  $("summary").hidden = false;
  $("summary-heading").textContent = t("analysis.summary_heading", { level: levelName(result.level), name: ref.name });
  const kind = KIND_KEYS[ref.kind] ? t(KIND_KEYS[ref.kind]) : levelLabel(ref.kind);
  const refNode = $("summary-reference");
  replaceChildren(refNode, el("strong", { text: `${t("analysis.reference_label")} ${ref.name}` }), ` (${kind}, ${ref.code}). `,
    ref.note ? noteNode(ref.note, app.names) : null);
  const facts = [];
  const used = result.indicators.filter((d) => d.used);
  facts.push([t("analysis.fact_candidates"), t("analysis.fact_candidates_value", { count: formatCount(result.n_candidates), units: formatCount(result.level.units), level: levelName(result.level) })]);
  facts.push([t("analysis.fact_excluded"), result.n_excluded ? t("analysis.fact_excluded_value", { count: formatCount(result.n_excluded) }) : t("analysis.none")]);
  const pre = ref.preconditions;
  if (pre) facts.push([t("analysis.fact_preconditions"), t("analysis.fact_preconditions_value", { conditions: pre.conditions.map(conditionText).join("; "), meeting: pre.candidates_meeting, failing: pre.candidates_failing })]);
  if (result.filter) facts.push([t("analysis.fact_filter"), t("analysis.fact_filter_value", { filter: result.filter, count: result.n_filtered_out })]);
  if (result.part_of_reference?.length) {
    facts.push([t("analysis.fact_parts"), result.part_of_reference.map((p) => `${p.name} (${p.code})`).join(", ")]);
  }
  if (result.n_approximate || ref.approximate) {
    const all = result.n_approximate === result.n_candidates;
    facts.push([t("analysis.fact_approx"), `${all ? t("analysis.approx_rows_all") : t("analysis.approx_rows", { count: result.n_approximate })}${ref.approximate ? ` ${t("analysis.approx_ref")}` : ""}`]);
  }
  facts.push([t("analysis.fact_indicators"), used.map((d) => `${indName(d)} ${formatPercent(d.weight)}`).join(", ")]);
  facts.push([t("analysis.fact_method"), `${t(`analysis.method_${result.method}`)}; ${t(`analysis.metric_${result.metric}`)}`]);
  if (result.sensitivity) {
    facts.push([t("analysis.fact_stability", { top: result.sensitivity.top }), `${formatNumber(result.sensitivity.stability, 2)} – ${stabilityWord(result.sensitivity.stability)}`]);
  }
  if (result.typology) {
    const ty = result.typology;
    const refType = ty.types.find((x) => x.cluster === ty.reference_type);
    facts.push([t("analysis.fact_type"), refType
      ? t(Number.isFinite(ty.silhouette) ? "analysis.fact_type_value_s" : "analysis.fact_type_value",
        { label: typeName(refType), k: ty.k, silhouette: formatNumber(ty.silhouette, 2) })
      : t("analysis.unknown")]);
  }
  const list = $("summary-facts");
  list.replaceChildren(...facts.map(([term, value]) =>
    el("div", { className: "facts__item" }, el("dt", { text: term }), el("dd", { text: value }))));
  // values of an external reference and how they were derived
  const details = $("summary-derivation");
  if (ref.values) {
    const table = el("table", { className: "data-table" },
      el("caption", { className: "visually-hidden", text: t("analysis.ref_values") }),
      el("thead", {}, el("tr", {}, ...["analysis.th_indicator", "analysis.th_value", "analysis.th_derivation"].map((key) => el("th", { text: t(key), attrs: { scope: "col" } })))),
      el("tbody", {}, ...result.indicators.map((d) => el("tr", {},
        el("th", { text: indName(d), attrs: { scope: "row" } }),
        el("td", { className: "num", text: formatValue(ref.values[d.key], d.unit) }),
        el("td", { className: "derivation" }, ref.derivations?.[d.key] ? noteNode(ref.derivations[d.key], app.names) : "–")))));
    replaceChildren($("summary-derivation-body"), table);
    details.hidden = false;
  } else {
    details.hidden = true;
  }
}

function stabilityWord(value) {
  if (value >= 0.9) return t("analysis.stab_very");
  if (value >= 0.75) return t("analysis.stab_stable");
  if (value >= 0.5) return t("analysis.stab_moderate");
  return t("analysis.stab_unstable");
}

function scoreBar(score) {
  const svg = svgEl("svg", { class: "scorebar", viewBox: "0 0 100 8", width: 72, height: 8, "aria-hidden": "true", focusable: "false", preserveAspectRatio: "none" });
  svg.append(svgEl("rect", { x: 0, y: 0, width: 100, height: 8, class: "scorebar__track" }));
  svg.append(svgEl("rect", { x: 0, y: 0, width: Math.max(0, Math.min(100, score)).toFixed(1), height: 8, class: "scorebar__fill" }));
  return svg;
}

function signedSd(diff, method) {
  if (!Number.isFinite(diff)) return t("analysis.no_value");
  const sign = diff > 0.005 ? "+" : diff < -0.005 ? "−" : "±";
  return `${sign}${formatNumber(Math.abs(diff), 1)} ${t(method === "robust" ? "analysis.sd_robust" : "analysis.sd")}`;
}

function reasonList(items, method) {
  return el("ul", { className: "reason-items" }, ...items.map((i) => el("li", {},
    `${app.names.get(i.indicator) || i.indicator} `,
    el("span", { className: "reason-items__sd", text: signedSd(i.diff, method) }))));
}

function similarCell(row, method) {
  const cell = el("td", { className: "reasons reasons--similar" });
  if (row.is_reference) {
    cell.textContent = t("analysis.reference_itself");
    return cell;
  }
  const items = (row.explanation?.most_similar || []).filter((i) => i.abs_diff < SIMILAR_SD);
  cell.append(items.length ? reasonList(items, method) : "–");
  return cell;
}

function differentCell(row, method) {
  const cell = el("td", { className: "reasons reasons--different" });
  if (row.is_reference) {
    cell.textContent = "–";
    return cell;
  }
  const items = (row.explanation?.least_similar || []).filter((i) => i.abs_diff >= SIMILAR_SD);
  cell.append(items.length ? reasonList(items, method) : t("analysis.no_big_differences"));
  return cell;
}

function typeCell(row) {
  if (row.same_type === undefined) return el("td", { text: "–" });
  const label = typeName(row.type) ? t("analysis.quoted", { text: typeName(row.type) }) : t("analysis.no_type");
  const cell = el("td", { className: row.same_type ? "type type--same" : "type type--other" });
  cell.append(
    el("span", { className: "type__icon", text: row.same_type ? "✔" : "○", attrs: { "aria-hidden": "true" } }),
    el("span", { className: "type__text", text: t(row.same_type ? "analysis.same_type" : "analysis.other_type") }),
    el("span", { className: "type__label", text: label }));
  return cell;
}

function stabilityCell(row, top) {
  const s = row.sensitivity;
  if (!s) return el("td", { text: row.is_reference ? t("analysis.reference") : "–" });
  return el("td", { className: "stability" },
    el("span", { text: formatPercent(s.share_in_top), attrs: { title: t("analysis.share_title", { top }) } }),
    el("span", { className: "stability__range", text: t("analysis.rank_range", { min: formatNumber(s.rank_min, 0), max: formatNumber(s.rank_max, 0) }) }));
}

/** „Einwohnerdichte ≥ 2.500“ (with the candidate's value when it failed). */
function conditionText(cond) {
  const ops = { "<": "<", "<=": "≤", ">": ">", ">=": "≥", "=": "=", "!=": "≠" };
  const text = `${app.names.get(cond.indicator) || cond.indicator} ${ops[cond.op] || cond.op} ${formatNumber(cond.value)}`;
  if (!("actual" in cond)) return text;
  return `${text} (${cond.actual === null ? t("analysis.no_value") : t("analysis.value_is", { value: formatNumber(cond.actual) })})`;
}

function preconditionCell(row) {
  if (row.is_reference || row.meets_preconditions === undefined) return el("td", { className: "precond", text: "–" });
  const meets = row.meets_preconditions;
  const cell = el("td", {
    className: `precond precond--${meets ? "meets" : "fails"}`,
    dataset: { meets: String(meets) },
    attrs: Number.isInteger(row.similarity_rank) ? { title: t("analysis.similarity_rank", { rank: row.similarity_rank }) } : {},
  },
  el("span", { className: "precond__icon", text: meets ? "✔" : "✗", attrs: { "aria-hidden": "true" } }),
  el("span", { className: "precond__text", text: t(meets ? "analysis.precond_meets" : "analysis.precond_fails") }));
  if (!meets && row.failed_preconditions?.length) {
    cell.append(el("ul", { className: "precond__failed" }, ...row.failed_preconditions.map((c) => el("li", { text: conditionText(c) }))));
  }
  return cell;
}

function renderRanking(result) {
  $("ranking-section").hidden = false;
  $("ranking-heading").textContent = t("analysis.ranking_heading", { count: result.rows.filter((r) => !r.is_reference).length, level: levelName(result.level) });
  $("ranking-caption").textContent = t("analysis.ranking_caption", { level: levelName(result.level), name: result.reference.name });
  const pre = result.reference.preconditions;
  $("ranking-precond-head").hidden = !pre;
  $("precond-hint").hidden = !pre;
  if (pre) $("precond-hint").textContent = t("analysis.precond_hint", { id: pre.measure_id, meeting: pre.candidates_meeting, failing: pre.candidates_failing });
  const top = result.sensitivity?.top || app.body?.top;
  $("band-hint").textContent = t("analysis.band_hint", { count: result.n_candidates });
  const context = [];
  if (result.filter) context.push(t("analysis.fact_filter_value", { filter: result.filter, count: result.n_filtered_out }));
  if (result.part_of_reference?.length) context.push(`${t("analysis.fact_parts")}: ${result.part_of_reference.map((p) => p.name).join(", ")}`);
  $("ranking-context").textContent = context.join(" · ");
  $("ranking-stability-head").textContent = result.sensitivity ? t("analysis.in_top", { top }) : t("analysis.stability");
  const body = $("ranking-body");
  body.replaceChildren(...result.rows.map((row) => {
    const tr = el("tr", { dataset: { code: row.code, rank: row.rank }, className: row.is_reference ? "is-reference" : "" });
    const button = el("button", {
      className: "unit-name__button select-button",
      text: row.name || row.code,
      attrs: { type: "button", "aria-pressed": "false", "aria-describedby": "ranking-select-hint" },
    });
    button.addEventListener("click", () => selectCandidate(row.code, true));
    const nameCell = el("th", { attrs: { scope: "row" }, className: "unit-name" },
      button,
      el("span", { className: "unit-name__code", text: row.code }),
      row.approximate ? el("span", { className: "badge badge--approx", text: t("analysis.approx_badge"), attrs: { title: t("analysis.approx_title") } }) : null,
      row.is_reference ? el("span", { className: "badge badge--reference", text: t("analysis.reference") }) : null);
    if (row.approximate) tr.dataset.approximate = "true";
    if (row.meets_preconditions !== undefined) tr.dataset.meets = String(row.meets_preconditions);
    const score = el("td", { className: "score", dataset: { score: row.score } },
      scoreBar(row.score), el("span", { className: "score__value", text: formatScore(row.score) }));
    const band = row.band ? (lang === "en" ? row.band.en : row.band.de) : "–";
    tr.append(...[
      el("td", { className: "num rank", text: String(row.rank) }),
      nameCell,
      score,
      el("td", { className: "num percentile", text: Number.isFinite(row.percentile) ? formatNumber(row.percentile, 1) : "–" }),
      el("td", { className: `band band--${row.band?.key || "none"}`, text: band, dataset: { band: row.band?.key || "" } }),
      pre ? preconditionCell(row) : null,
      typeCell(row),
      similarCell(row, result.method),
      differentCell(row, result.method),
      stabilityCell(row, top)].filter(Boolean)); // no precondition cell without preconditions
    return tr;
  }));
  markSelected();
}

function markSelected() {
  for (const tr of $("ranking-body").querySelectorAll("tr")) {
    const on = tr.dataset.code === app.selected;
    tr.classList.toggle("is-selected", on);
    tr.querySelector(".select-button")?.setAttribute("aria-pressed", on ? "true" : "false");
  }
  if (app.selected) $("contrib-candidate").value = app.selected;
}

function renderContribSelect(result) {
  const select = $("contrib-candidate");
  select.replaceChildren(...result.rows.map((row) => el("option", {
    text: `${row.rank}. ${row.name}${row.is_reference ? ` (${t("analysis.reference")})` : ""} – ${formatScore(row.score)}`,
    attrs: { value: row.code },
  })));
  if (app.selected) select.value = app.selected;
  $("contrib-section").hidden = false;
}

function selectCandidate(code, fromTable = false) {
  app.selected = code;
  markSelected();
  renderContrib();
  updateMapSelection();
  if (fromTable) {
    $("contrib-section").scrollIntoView({ block: "nearest", behavior: "smooth" });
  }
}

function renderContrib() {
  const result = app.result;
  const row = result?.rows.find((r) => r.code === app.selected);
  const figure = $("contrib-chart");
  if (!row) {
    figure.replaceChildren();
    return;
  }
  const indicators = result.indicators.map((d) => ({ ...d, name: indName(d) }));
  const items = contributionItems(row, indicators, referenceValues(result));
  const chart = contributionsChart(row, items, result.method);
  const caption = el("figcaption", { className: "visually-hidden", text: t("analysis.contrib_caption", { name: row.name }) });
  figure.replaceChildren(chart, caption);
  replaceChildren($("contrib-table-wrap"), contributionsTable(row, items, result.method));
  $("contrib-intro").textContent = row.is_reference
    ? t("analysis.contrib_self", { name: row.name })
    : t("analysis.contrib_intro", { name: row.name, rank: row.rank, score: formatScore(row.score), distance: formatNumber(row.distance, 2), reference: result.reference.name });
}

function renderSensitivity(result) {
  const section = $("sensitivity-section");
  const s = result.sensitivity;
  const all = (result.rows || []).filter((r) => !r.is_reference && r.sensitivity);
  const rows = all.slice(0, SENSITIVITY_ROWS).map((r) => ({
    name: r.name,
    baseRank: result.reference.is_candidate ? r.rank - 1 : r.rank,
    sensitivity: r.sensitivity,
  }));
  if (!s || !rows.length) {
    section.hidden = true;
    return;
  }
  section.hidden = false;
  replaceChildren($("stability-text"),
    el("strong", { className: "stability-value", text: formatNumber(s.stability, 2) }),
    ` – ${stabilityWord(s.stability)}. ${t("analysis.stability_text", { top: s.top, runs: formatCount(s.runs), spread: formatPercent(s.spread) })}`);
  const figure = $("sensitivity-figure");
  replaceChildren(figure, sensitivityChart(rows, { runs: s.runs, spread: s.spread, top: s.top }),
    all.length > rows.length
      ? el("figcaption", { className: "card__hint", text: t("analysis.sens_first", { shown: rows.length, all: all.length, top: s.top }) })
      : null);
}

function renderNotes(result) {
  $("notes-section").hidden = false;
  const warnings = [...(result.warnings || [])];
  const items = warnings.map((w) => el("li", {}, noteNode(w, app.names)));
  for (const d of result.indicators.filter((x) => !x.used)) {
    items.push(el("li", { text: t("analysis.not_used", { name: indName(d) }) }));
  }
  if (!items.length) items.push(el("li", { className: "warning-list__none", text: t("analysis.no_notes") }));
  $("warnings").replaceChildren(...items);
  renderExcluded(result.excluded || [], result.n_excluded || 0, result);
}

function excludedTable(rows) {
  const table = el("table", { className: "data-table excluded-table", attrs: { id: "excluded-table" } },
    el("caption", { className: "visually-hidden", text: t("analysis.excluded_caption") }),
    el("thead", {}, el("tr", {}, ...["analysis.col_unit", "analysis.th_code", "analysis.th_missing"].map((key) => el("th", { text: t(key), attrs: { scope: "col" } })))));
  const body = el("tbody");
  for (const row of rows) {
    const reasons = el("ul", { className: "reason-list" });
    for (const key of row.missing || Object.keys(row.reasons || {})) {
      reasons.append(el("li", {}, el("span", { className: "reason-list__name", text: `${app.names.get(key) || key}: ` }),
        noteNode(row.reasons?.[key] || t("analysis.no_value"), app.names)));
    }
    body.append(el("tr", {},
      el("th", { text: row.name || row.code, attrs: { scope: "row" } }),
      el("td", { text: row.code }),
      el("td", {}, reasons)));
  }
  table.append(body);
  return table;
}

function renderExcluded(rows, total, result) {
  const text = $("excluded-text");
  const wrap = $("excluded-wrap");
  if (!total) {
    text.textContent = t("analysis.none_excluded");
    wrap.replaceChildren();
    return;
  }
  const parts = [t("analysis.excluded_n", { count: total })];
  const children = [excludedTable(rows)];
  if (rows.length < total) {
    parts.push(t("analysis.excluded_first", { count: formatCount(rows.length) }));
    const more = el("button", {
      className: "button button--small", text: t("analysis.list_all", { count: formatCount(total) }),
      attrs: { type: "button", id: "excluded-all" },
    });
    more.addEventListener("click", () => loadAllExcluded(result, more));
    children.push(el("p", { className: "excluded-more" }, more));
  }
  text.textContent = parts.join(" ");
  wrap.replaceChildren(...children);
}

/** The server lists at most 50 excluded units: derive the full list from the values. */
async function loadAllExcluded(result, button) {
  button.disabled = true;
  button.textContent = t("analysis.loading_short");
  try {
    const used = result.indicators.filter((d) => d.used).map((d) => d.key);
    const tables = await Promise.all(used.map((key) => api.getValues(key, { level: result.level.name })));
    const byCode = new Map();
    tables.forEach((body, i) => {
      for (const v of body.values || []) {
        if (v.value !== null && v.value !== undefined) continue;
        const entry = byCode.get(v.code) || { code: v.code, name: v.name, missing: [], reasons: {} };
        entry.missing.push(used[i]);
        entry.reasons[used[i]] = v.missing_reason || t("analysis.no_value");
        byCode.set(v.code, entry);
      }
    });
    const all = result.missing === "skip_pairwise" ? [...byCode.values()].filter((e) => e.missing.length === used.length) : [...byCode.values()];
    if (result.reference.is_candidate) {
      const i = all.findIndex((e) => e.code === result.reference.code);
      if (i >= 0) all.splice(i, 1);
    }
    all.sort((a, b) => a.code.localeCompare(b.code));
    $("excluded-text").textContent = `${t("analysis.excluded_n", { count: all.length })} ${t("analysis.excluded_full")}`;
    $("excluded-wrap").replaceChildren(excludedTable(all));
  } catch (err) {
    button.disabled = false;
    button.textContent = t("analysis.retry");
    setStatus(api.describeError(err), "error");
  }
}

// ---------------------------------------------------------------- map

function resultLevel() {
  return app.result?.level?.name || null;
}

function fillMapVariables(prefer) {
  const level = $("level").value;
  const select = $("map-variable");
  const previous = prefer || select.value;
  const options = [];
  const scoreAvailable = resultLevel() === level;
  options.push(el("option", {
    text: t(scoreAvailable ? "analysis.var_score" : "analysis.var_score_later"),
    attrs: { value: "score", disabled: !scoreAvailable },
  }));
  for (const d of indicatorsAt(level)) {
    options.push(el("option", { text: d.unit && d.unit.length <= 16 ? `${indName(d)} (${d.unit})` : indName(d), attrs: { value: d.key } }));
  }
  select.replaceChildren(...options);
  const values = new Set(options.filter((o) => !o.disabled).map((o) => o.value));
  const fallback = (app.levelBy.get(level)?.default_indicators || []).find((k) => values.has(k)) || options.find((o) => !o.disabled)?.value;
  select.value = values.has(previous) ? previous : fallback;
}

function loadGeometry(level, key, classes, k) {
  if (!app.geometry.has(level)) {
    // Large levels (the 11,000 municipalities) come as vector tiles of their OGC collection;
    // only the values travel as JSON and are joined onto the tile features by code.
    const lv = app.levelBy.get(level);
    const tiles = (lv?.units || 0) > 2000 && lv.collection
      ? { collection: lv.collection, codeProperty: lv.code_property } : null;
    const format = tiles ? "json" : "geojson";
    const promise = api.getValues(key, { level, classes, k, format }).then((body) => ({
      collection: tiles
        ? { tiles, classification: body.classification, features: body.values.map((v) => ({ properties: v })) }
        : body,
      key, classes, k,
    }));
    promise.catch(() => app.geometry.delete(level));
    app.geometry.set(level, promise);
  }
  return app.geometry.get(level);
}

async function scoreClasses(classes, k) {
  const key = `${classes}|${k}`;
  if (app.scores?.key === key && app.scores.scores) return app.scores.scores;
  const body = { ...app.body, top: 1, sensitivity: false, types: false, scores: true, classes, k_classes: k };
  const result = await api.postTransfer(body);
  app.scores = { key, scores: result.scores };
  return result.scores;
}

function setMapState(value) {
  $("map").dataset.mapState = value;
  $("map").setAttribute("aria-busy", value === "loading" ? "true" : "false");
}

async function renderMap() {
  const token = ++app.mapToken;
  const level = $("level").value;
  const variable = $("map-variable").value;
  const { classes, k } = mapClasses();
  if (!variable || k === null) return;
  setMapState("loading");
  const big = (app.levelBy.get(level)?.units || 0) > 2000;
  const mapStatus = $("map-legend");
  if (!amap.currentLevel() || amap.currentLevel() !== level) {
    replaceChildren(mapStatus, el("p", { className: "map-loading", text: t(big ? "analysis.map_loading_tiles" : "analysis.map_loading") }));
  }
  try {
    const geometryVariable = variable === "score" ? geometryKey(level) : variable;
    const geo = await loadGeometry(level, geometryVariable, classes, k);
    if (token !== app.mapToken) return;
    amap.showLevel(level, geo.collection);
    let classesByCode;
    let classification;
    let title;
    let missingLabel;
    let nMissing;
    const values = new Map();
    if (variable === "score" && resultLevel() === level) {
      const scores = await scoreClasses(classes, k);
      if (token !== app.mapToken) return;
      classesByCode = new Map(scores.units.map((u) => [String(u.code), u.class]));
      for (const u of scores.units) values.set(String(u.code), { value: u.score, cls: u.class });
      classification = scores.classification;
      title = t("analysis.map_title_score", { name: app.result.reference.name, scheme: t(`analysis.scheme_${classification.scheme}`), k: classification.k });
      missingLabel = t("analysis.not_ranked_missing");
      nMissing = Math.max(0, (app.result.level.units || 0) - scores.units.length);
      app.mapData = { variable, values, labels: classification.labels, unit: "", name: t("analysis.col_score") };
    } else {
      const reuse = geo.key === variable && geo.classes === classes && geo.k === k;
      const body = reuse ? geo.collection : await api.getValues(variable, { level, classes, k });
      if (token !== app.mapToken) return;
      const rows = reuse ? geo.collection.features.map((f) => f.properties) : body.values;
      classesByCode = new Map();
      for (const r of rows) {
        classesByCode.set(String(r.code), r.class);
        values.set(String(r.code), { value: r.value, cls: r.class, reason: r.missing_reason });
      }
      classification = body.classification;
      const d = app.indicatorBy.get(variable);
      const dName = d ? indName(d) : variable;
      title = t("analysis.map_title_value", { name: `${dName}${d?.unit && d.unit.length <= 16 ? ` (${d.unit})` : ""}`, scheme: t(`analysis.scheme_${classification.scheme}`), k: classification.k });
      missingLabel = t("analysis.without_value");
      nMissing = classification.n_missing;
      app.mapData = { variable, values, labels: classification.labels, unit: d?.unit || "", name: dName };
    }
    const colours = amap.paint(classesByCode, classification.k);
    const sameLevel = resultLevel() === level;
    if (sameLevel) {
      await drawResultOverlay(token);
      if (token !== app.mapToken) return;
    } else {
      amap.highlightReference(null);
      amap.highlightSelected(null);
      amap.showRanks([]);
    }
    const selectedRow = sameLevel ? app.result.rows.find((r) => r.code === app.selected && !r.is_reference) : null;
    amap.renderLegend($("map-legend"), {
      title,
      labels: classification.labels,
      counts: classification.counts,
      nMissing,
      missingLabel,
      colours,
      reference: sameLevel ? app.result.reference.name : null,
      selected: selectedRow ? selectedRow.name : null,
      ranks: sameLevel ? Math.min(RANK_LABELS, app.result.rows.filter((r) => !r.is_reference).length) : null,
    });
    $("map").setAttribute("aria-label", t("analysis.map_label", { title }));
    $("map").dataset.variable = variable;
    setMapState("ready");
  } catch (err) {
    if (token !== app.mapToken) return;
    setMapState("error");
    replaceChildren(mapStatus, el("p", { className: "map-loading map-loading--error", text: t("analysis.map_failed", { reason: api.describeError(err) }) }));
  }
}

async function referenceFeature(result) {
  const ref = result.reference;
  if (ref.is_candidate) return amap.featureOf(ref.code);
  if (!app.referenceGeometry.has(ref.spec)) {
    const lv = app.levelBy.get(ref.level);
    const promise = (async () => {
      if (!lv) return null;
      const params = { [lv.code_property]: ref.code };
      if (lv.collection === "districts") params.level = lv.name;
      const fc = await api.getItems(lv.collection, params);
      return fc.features[0] || null;
    })();
    promise.catch(() => app.referenceGeometry.delete(ref.spec));
    app.referenceGeometry.set(ref.spec, promise);
  }
  return app.referenceGeometry.get(ref.spec);
}

async function drawResultOverlay(token) {
  const result = app.result;
  let feature = null;
  let measure = null;
  try {
    feature = await referenceFeature(result);
    if (result.reference.kind === "measure") {
      const id = result.reference.spec.split(":")[1];
      measure = await api.getMeasure(id).catch(() => null);
    }
  } catch {
    feature = null;
  }
  if (token !== app.mapToken) return;
  amap.highlightReference(feature, `${t("analysis.reference_label")} ${result.reference.name}`, measure);
  amap.showRanks(result.rows.filter((r) => !r.is_reference).slice(0, RANK_LABELS));
  updateMapSelection(false);
}

function updateMapSelection(withLegend = true) {
  if (resultLevel() !== amap.currentLevel()) return;
  const row = app.result?.rows.find((r) => r.code === app.selected && !r.is_reference);
  amap.highlightSelected(row ? row.code : null);
  if (withLegend) {
    const item = $("map-legend").querySelector(".legend-list--marks li:nth-child(2) span:last-child");
    if (item && row) item.textContent = t("analysis.selected", { name: row.name });
  }
}

function popupContent(code, name) {
  const data = app.mapData?.values.get(code);
  const root = el("div", { className: "unit-popup" });
  root.append(el("h3", { className: "unit-popup__title", text: name || code }));
  const list = el("dl", { className: "unit-popup__facts" });
  const add = (term, value) => list.append(el("dt", { text: term }), el("dd", { text: value }));
  add(t("analysis.th_code"), code);
  if (app.mapData?.variable === "score") {
    add(t("analysis.col_score"), data ? formatScore(data.value) : t("analysis.not_ranked"));
  } else if (app.mapData) {
    add(app.mapData.name, data && data.value !== null && data.value !== undefined
      ? formatValue(data.value, app.mapData.unit) : t("analysis.no_value"));
    if (data?.reason) list.append(el("dt", { text: t("analysis.reason") }), el("dd", {}, noteNode(data.reason, app.names)));
  }
  if (data && data.cls >= 0) add(t("analysis.class"), `${data.cls + 1}: ${app.mapData.labels[data.cls]}`);
  const row = resultLevel() === amap.currentLevel() ? app.result?.rows.find((r) => r.code === code) : null;
  if (row) add(t("analysis.col_rank"), row.is_reference ? t("analysis.reference") : String(row.rank));
  root.append(list);
  return root;
}

// ---------------------------------------------------------------- report

async function downloadReport() {
  if (app.busy) return;
  const form = checkedForm();
  if (!form) return;
  setBusy(true);
  setStatus(t("analysis.report_running"));
  try {
    const { blob, filename } = await api.postReport({ ...form, sensitivity: true, types: true });
    const url = URL.createObjectURL(blob);
    const link = el("a", { attrs: { href: url, download: filename }, className: "visually-hidden", text: filename });
    document.body.append(link);
    link.click();
    link.remove();
    window.setTimeout(() => URL.revokeObjectURL(url), 60000);
    setStatus(t("analysis.report_done", { filename }), "success");
  } catch (err) {
    setStatus(t("analysis.report_failed", { reason: api.describeError(err) }), "error");
  } finally {
    setBusy(false);
  }
}

// ---------------------------------------------------------------- cross-city

function pairStatements(pair, nCandidates, level) {
  const items = [];
  if (Array.isArray(pair)) {
    for (const p of pair) {
      items.push({
        head: t("analysis.pair_head", { city: p.city, of: p.in_ranking_of, rank: formatCount(p.rank), n: formatCount(nCandidates), score: formatScore(p.score) }),
        text: lang === "en" ? p.explanation_en || p.explanation : p.explanation_de,
      });
    }
  } else if (pair && typeof pair === "object") {
    for (const [key, p] of Object.entries(pair)) {
      const m = key.match(/^(.*) in the ranking of (.*)$/);
      const head = m
        ? t("analysis.pair_head", { city: m[1], of: m[2], rank: formatCount(p.rank), n: formatCount(nCandidates), score: formatScore(p.score) })
        : t("analysis.pair_short", { key, rank: formatCount(p.rank), score: formatScore(p.score) });
      items.push({ head, text: lang === "en" ? p.explanation_en || p.explanation : p.explanation_de || p.explanation });
    }
  }
  return el("ul", { className: "pair-list" }, ...items.map((i) => el("li", {},
    el("strong", { text: i.head }), i.text ? el("span", { className: "pair-list__why", text: ` ${i.text}` }) : null)));
}

function crossCityTable(city, level) {
  const table = el("table", { className: "data-table crosscity-table" },
    el("caption", { text: t("analysis.similar_to", { name: city.name }) }),
    el("thead", {}, el("tr", {}, ...[["analysis.col_rank", "num"], ["analysis.col_unit", ""], ["analysis.col_score", "num"]].map(([key, c]) =>
      el("th", { text: t(key), className: c, attrs: { scope: "col" } })))));
  const body = el("tbody");
  for (const row of city.rows) {
    body.append(el("tr", { className: row.is_reference ? "is-reference" : "" },
      el("td", { className: "num", text: String(row.rank) }),
      el("th", { attrs: { scope: "row" }, className: "unit-name" },
        el("span", { className: "unit-name__text", text: row.name }),
        el("span", { className: "unit-name__code", text: row.code }),
        row.is_reference ? el("span", { className: "badge badge--reference", text: t("analysis.reference") }) : null),
      el("td", { className: "score" }, scoreBar(row.score), el("span", { className: "score__value", text: formatScore(row.score) }))));
  }
  table.append(body);
  return el("div", { className: "table-scroll" }, table);
}

async function runCrossCity(event) {
  event?.preventDefault();
  const level = $("crosscity-level").value;
  const top = Number($("crosscity-top").value);
  const out = $("crosscity-result");
  if (!Number.isInteger(top) || top < 1 || top > 50) {
    $("crosscity-top").setAttribute("aria-invalid", "true");
    replaceChildren(out, el("p", { className: "field__error", text: t("analysis.bad_top", { max: 50 }) }));
    $("crosscity-top").focus();
    return;
  }
  $("crosscity-top").removeAttribute("aria-invalid");
  const params = { level, top, method: $("method").value };
  if ($("crosscity-own").checked) {
    const keys = new Set(indicatorsAt(level).map((d) => d.key));
    const chosen = [...app.checked.entries()].filter(([key]) => keys.has(key));
    if (chosen.length) {
      params.indicators = chosen.map(([key]) => key);
      params.weights = Object.fromEntries(chosen);
    }
  }
  const button = $("crosscity-button");
  button.disabled = true;
  out.setAttribute("aria-busy", "true");
  replaceChildren(out, el("p", { className: "map-loading", text: t("analysis.cross_running") }));
  try {
    const body = await api.getCrossCity(params);
    const names = (body.indicators || []).map((k) => app.names.get(k) || k).join(", ");
    const label = t(level === "gemeinde" ? "analysis.cross_gemeinden" : "analysis.cross_kreise");
    const warnings = [...new Map((body.cities || []).flatMap((c) => c.warnings || [])
      .map((w) => [JSON.stringify(w), w])).values()];
    replaceChildren(out,
      el("p", { className: "crosscity__meta", text: t("analysis.cross_meta", { count: formatCount(body.n_candidates), label, names }) }),
      pairStatements(body.pair, body.n_candidates, level),
      el("div", { className: "crosscity__tables" }, ...(body.cities || []).map((c) => crossCityTable(c, level))),
      warnings.length ? el("ul", { className: "warning-list" }, ...warnings.map((w) => el("li", {}, noteNode(w, app.names)))) : null);
    out.dataset.state = "done";
  } catch (err) {
    replaceChildren(out, el("p", { className: "field__error", text: t("analysis.cross_failed", { reason: api.describeError(err) }) }));
    out.dataset.state = "error";
  } finally {
    button.disabled = false;
    out.setAttribute("aria-busy", "false");
  }
}

// ---------------------------------------------------------------- sources

function renderSources(sources, tileAttribution) {
  const items = sources.map((s) => {
    const li = el("li", { className: "source" });
    li.append(el("span", { className: "source__name", text: s.name || s.key }));
    if (s.publisher) li.append(` – ${s.publisher}`);
    if (s.licence) {
      li.append(`, ${t("analysis.licence")} `);
      if (s.licence_url && /^https?:\/\//.test(s.licence_url)) {
        li.append(el("a", { text: s.licence, attrs: { href: s.licence_url, rel: "license noopener", target: "_blank" } }));
      } else {
        li.append(s.licence);
      }
    }
    if (s.attribution) li.append(el("span", { className: "source__attribution", text: ` – ${s.attribution}` }));
    return li;
  });
  if (tileAttribution) {
    items.push(el("li", { className: "source" }, el("span", { className: "source__name", text: t("analysis.basemap") }), ` – ${tileAttribution}`));
  }
  $("source-list").replaceChildren(...items);
}

// ---------------------------------------------------------------- start

async function applyUrl() {
  const params = new URLSearchParams(location.search);
  const reference = params.get("reference");
  const level = params.get("level");
  if (level && app.levelBy.has(level)) $("level").value = level;
  if (params.get("indicators")) {
    app.checked.clear();
    for (const part of params.get("indicators").split(",")) {
      const [key, w] = part.split(":");
      if (app.indicatorBy.has(key)) app.checked.set(key, w === undefined ? 1 : Number(w) || 0);
    }
  }
  for (const name of ["method", "metric"]) {
    const value = params.get(name);
    if (value && [...$(name).options].some((o) => o.value === value)) $(name).value = value;
  }
  if (params.get("top")) $("top").value = params.get("top");
  if (params.get("filter")) $("candidate-filter").value = params.get("filter");
  if (!reference) return false;
  const [kind, code] = reference.split(":");
  if (kind === "quarter") {
    $("reference-kind").value = "quarter";
    $("reference-quarter").value = code;
  } else if (kind === "gemeinde" || kind === "kreis") {
    $("reference-kind").value = kind;
    app.search = { kind, code, name: code };
    $("reference-search").value = code;
    unitList(kind).then((units) => {
      const unit = units.find((u) => u.code === code);
      if (unit && app.search?.code === code) {
        app.search.name = unit.name;
        $("reference-search").value = `${unit.name} (${code})`;
        updateReferenceCurrent();
      }
    }).catch(() => {});
  } else if (kind === "measure") {
    $("reference-kind").value = "measure";
    $("reference-measure").value = code;
  } else if (app.levelBy.has(kind)) {
    $("reference-kind").value = `district:${kind}`;
    await fillDistricts();
    $("reference-district").value = code;
  }
  return true;
}

function wire() {
  $("analysis-form").addEventListener("submit", run);
  $("report-button").addEventListener("click", downloadReport);
  $("reference-kind").addEventListener("change", showReferenceField);
  for (const id of ["reference-quarter", "reference-district", "reference-measure"]) {
    $(id).addEventListener("change", updateReferenceCurrent);
  }
  $("reference-search").addEventListener("input", onSearchInput);
  for (const button of document.querySelectorAll(".shortcuts button")) button.addEventListener("click", chooseShortcut);
  $("level").addEventListener("change", () => {
    updateLevelHint();
    renderIndicators();
    fillMapVariables(resultLevel() === $("level").value ? "score" : null);
    renderMap();
  });
  $("map-variable").addEventListener("change", renderMap);
  $("map-scheme").addEventListener("change", renderMap);
  $("map-k").addEventListener("change", () => {
    const { k } = mapClasses();
    $("map-k").toggleAttribute("aria-invalid", k === null);
    if (k !== null) renderMap();
  });
  $("contrib-candidate").addEventListener("change", (e) => selectCandidate(e.target.value));
  $("contrib-zoom").addEventListener("click", () => {
    if (!app.selected || resultLevel() !== amap.currentLevel()) return;
    $("map").scrollIntoView({ block: "center", behavior: "smooth" });
    amap.zoomTo(app.selected);
  });
  $("crosscity-form").addEventListener("submit", runCrossCity);
  $("tiles-note").hidden = true;
}

function onTileError() {
  $("map").classList.add("map--no-tiles");
  $("tiles-note").hidden = false;
}

async function start() {
  setPageState("loading");
  await startPage();
  wire();
  if (!globalThis.L) {
    setStatus(t("analysis.no_leaflet"), "error");
    setPageState("error");
    return;
  }
  amap.initMap($("map"));
  amap.setPopupBuilder(popupContent);
  try {
    const [config, sources, levels, indicators, quarters, measures] = await Promise.all([
      api.getConfig().catch(() => ({})),
      api.getSources().catch(() => ({ sources: [] })),
      api.getLevels(),
      api.getIndicators(),
      api.getItems("quarters").catch(() => ({ features: [] })),
      api.getMeasurePoints().catch(() => []),
    ]);
    amap.addTiles(config.tile_url, config.tile_attribution, onTileError);
    const sourceList = (sources.sources || []).filter(Boolean);
    amap.addAttributions(sourceList);
    renderSources(sourceList, config.tile_attribution);
    app.levels = levels.levels || [];
    app.levelBy = new Map(app.levels.map((lv) => [lv.name, lv]));
    app.indicators = indicators.indicators || [];
    app.indicatorBy = new Map(app.indicators.map((d) => [d.key, d]));
    // indicator keys and level names → names in the page's language
    app.names = new Map([
      ...app.levels.map((lv) => [lv.name, levelName(lv)]),
      ...app.indicators.map((d) => [d.key, (lang === "en" ? d.name_en : d.name_de) || d.name_de || d.key]),
    ]);
    app.quarters = quarters.features.map((f) => ({ slug: f.properties.slug, name: f.properties.name }));
    app.measures = measures.map((f) => ({ id: f.properties.id ?? f.id, title: f.properties.title || t("analysis.untitled") }));
    fillLevels();
    fillReferenceKinds();
    fillQuarters();
    fillMeasures();
    const autoRun = await applyUrl();
    showReferenceField();
    updateLevelHint();
    fillMapVariables();
    setPageState("ready");
    setStatus(t("analysis.ready"));
    if (autoRun) run();
    else renderMap();
  } catch (err) {
    setStatus(t("analysis.start_failed", { reason: api.describeError(err) }), "error");
    setPageState("error");
  }
}

start();
