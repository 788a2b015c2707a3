// Monitoring page (monitoring.html) for the Smart-City office: planners and admins see every
// measure that is not deleted (drafts included, /api/monitoring); everybody else sees the
// public summary over the published measures (/api/monitoring/public). Each table comes as a
// chart (inline SVG built from DOM nodes, role="img" with title and description) with the
// same figures in an accessible table beside it, and a CSV download. Filters: city, strategy
// edition, pilot quarter, days ahead for milestones; they live in the address (permalinks).
// Texts from data only reach the DOM through textContent.

import { login, me } from "./api.js";
import { getJson } from "./core/http.js";
import { formatNumber, label, lang, locale, t } from "./i18n.js";
import { config, describeError, el, endSession, initPage, keepSession, showSignInFailure } from "./public-common.js";

let STATUSES = []; // the measure statuses in order, from /api/config
const STAFF_ROLES = new Set(["planner", "admin"]);
const FILTERS = ["city", "edition", "quarter", "due_days"];
const SVG_NS = "http://www.w3.org/2000/svg";
const WIDTH = 640;
const LABEL_W = 250;
const BAR_W = WIDTH - LABEL_W - 90;
const $ = (id) => document.getElementById(id);
const state = { user: null, csrf: null, options: null, body: null, loading: 0 };

const money = new Intl.NumberFormat(locale, { style: "currency", currency: "EUR", minimumFractionDigits: 2, maximumFractionDigits: 2 });
const moneyShort = new Intl.NumberFormat(locale, { style: "currency", currency: "EUR", notation: "compact", maximumFractionDigits: 1 });
const monthFormat = new Intl.DateTimeFormat(locale, { month: "short", year: "numeric", timeZone: "UTC" });
const dayFormat = new Intl.DateTimeFormat(locale, { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });

// ---------------------------------------------------------------- small helpers

function isStaff() {
  return Boolean(state.user && STAFF_ROLES.has(state.user.role));
}

function view() {
  return isStaff() && $("f-view").value !== "public" ? "staff" : "public";
}

function base() {
  return view() === "staff" ? "/api/monitoring" : "/api/monitoring/public";
}

function filterParams() {
  const params = new URLSearchParams();
  for (const name of FILTERS) {
    const value = $(`f-${name === "due_days" ? "due" : name}`).value.trim();
    if (value) params.set(name, value);
  }
  return params;
}

function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== null) node.textContent = String(text);
  return node;
}

function truncate(text, max) {
  const s = String(text ?? "");
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

function monthLabel(value) {
  const [y, m] = String(value).split("-").map(Number);
  return y && m ? monthFormat.format(new Date(Date.UTC(y, m - 1, 1))) : String(value);
}

function dayLabel(value) {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(value ?? ""));
  return match ? dayFormat.format(new Date(Date.UTC(+match[1], +match[2] - 1, +match[3]))) : "";
}

function cityLabel(ags) {
  const city = (state.options?.cities || []).find((c) => c.ags === ags);
  return city ? city.name : String(ags ?? "");
}

function quarterLabel(slug) {
  if (!slug) return t("mon.no_quarter");
  const q = (state.options?.quarters || []).find((x) => x.slug === slug);
  return q ? (lang === "en" && q.name_en) || q.name : slug;
}

function fieldLabel(row) {
  const field = label("field", row.action_field);
  return $("f-city").value ? field : `${cityLabel(row.city_ags)}: ${field}`;
}

function editionLabel(key) {
  const e = (state.options?.editions || []).find((x) => x.key === key);
  return e ? e.title : String(key);
}

// ---------------------------------------------------------------- chart

let uid = 0;

/**
 * Horizontal bar chart: one row per category, one bar per series (grouped) or one bar of
 * stacked segments. `rows`: [{label, values: [number per series]}]; `series`: [{label, cls}].
 */
function barChart({ title, rows, series, stacked = false, format = formatNumber }) {
  uid += 1;
  const titleId = `mon-chart-title-${uid}`;
  const descId = `mon-chart-desc-${uid}`;
  const barH = stacked ? 18 : 16;
  const rowH = stacked ? 28 : barH * series.length + 12;
  const height = Math.max(1, rows.length) * rowH + 8;
  const totals = rows.map((r) => (stacked ? r.values.reduce((a, b) => a + (b || 0), 0) : Math.max(0, ...r.values.map((v) => v || 0))));
  const max = Math.max(0, ...totals) || 1;
  const node = svg("svg", { class: "mon-chart", viewBox: `0 0 ${WIDTH} ${height}`, width: "100%", role: "img", "aria-labelledby": `${titleId} ${descId}`, focusable: "false", preserveAspectRatio: "xMinYMin meet" });
  node.append(svg("title", { id: titleId }, title), svg("desc", { id: descId }, t("mon.chart_desc", { count: rows.length })));
  rows.forEach((row, i) => {
    const y = 4 + i * rowH;
    const g = svg("g", { class: "mon-chart__row" });
    g.append(svg("text", { x: LABEL_W - 8, y: y + rowH / 2, class: "mon-chart__label", "text-anchor": "end", "dominant-baseline": "middle" }, truncate(row.label, 34)));
    let x = LABEL_W;
    row.values.forEach((value, s) => {
      const w = ((value || 0) / max) * BAR_W;
      const by = stacked ? y + (rowH - barH) / 2 : y + 6 + s * barH;
      if (w > 0) g.append(svg("rect", { x: stacked ? x : LABEL_W, y: by, width: Math.max(w, 1), height: barH - 2, class: `mon-bar ${series[s].cls}` }));
      if (!stacked) g.append(svg("text", { x: LABEL_W + w + 4, y: by + (barH - 2) / 2, class: "mon-chart__value", "dominant-baseline": "middle" }, format(value || 0)));
      if (stacked) x += w;
    });
    if (stacked) g.append(svg("text", { x: x + 4, y: y + rowH / 2, class: "mon-chart__value", "dominant-baseline": "middle" }, format(totals[i])));
    node.append(g);
  });
  const key = el("ul", { className: "mon-key", attrs: { "aria-label": t("mon.key") } },
    series.map((s) => el("li", {}, [el("span", { className: `mon-key__swatch ${s.cls}`, attrs: { "aria-hidden": "true" } }), document.createTextNode(s.label)])));
  return el("figure", { className: "mon-figure" }, [node, series.length > 1 ? key : null]);
}

// ---------------------------------------------------------------- table

/** `columns`: [{key, label, kind: text|num|money|date|month, value(row) optional}]; the first column heads each row. */
function dataTable(caption, columns, rows) {
  const head = el("tr", {}, columns.map((c) => el("th", { text: c.label, className: c.kind && c.kind !== "text" ? "num" : "", attrs: { scope: "col" } })));
  const body = rows.map((row) => el("tr", {}, columns.map((c, i) => {
    const raw = c.value ? c.value(row) : row[c.key];
    const text = c.kind === "money" ? money.format(raw || 0) : c.kind === "num" ? formatNumber(raw ?? 0) : c.kind === "date" ? dayLabel(raw) : c.kind === "month" ? monthLabel(raw) : raw;
    const content = c.link && c.link(row) ? [el("a", { text, attrs: { href: c.link(row) } })] : [];
    const cell = el(i === 0 ? "th" : "td", { text: content.length ? undefined : text, className: c.kind && c.kind !== "text" && c.kind !== "date" && c.kind !== "month" ? "num" : "", attrs: i === 0 ? { scope: "row" } : {} }, content);
    return cell;
  })));
  const table = el("table", { className: "mon-table" }, [el("caption", { text: caption }), el("thead", {}, [head]), el("tbody", {}, body)]);
  return el("div", { className: "table-scroll mon-table-wrap", attrs: { tabindex: "0", role: "region", "aria-label": caption } }, [table]);
}

function csvLink(table) {
  const params = filterParams();
  const query = params.toString();
  return el("a", {
    className: "button button--small mon-csv",
    text: t("mon.csv", { table: t(`mon.table.${table}`) }),
    attrs: { href: `${base()}/${table}.csv${query ? `?${query}` : ""}`, download: "" },
    dataset: { table },
  });
}

function section(id, heading, hint, parts) {
  const headingId = `${id}-heading`;
  return el("section", { className: "card mon-section", attrs: { id, "aria-labelledby": headingId } }, [
    el("h2", { text: heading, attrs: { id: headingId } }),
    hint ? el("p", { className: "field__hint", text: hint }) : null,
    ...parts,
  ]);
}

function pair(chart, table, csv) {
  return el("div", { className: "mon-pair" }, [chart, el("div", {}, [table, el("p", { className: "mon-actions" }, [csv])])]);
}

function empty(text) {
  return el("p", { className: "mon-empty", text });
}

// ---------------------------------------------------------------- sections

const STATUS_SERIES = () => STATUSES.map((s) => ({ label: label("status", s), cls: `mon-st--${s}` }));
const BUDGET_SERIES = () => [
  { label: t("mon.col.budget_planned"), cls: "mon-bar--planned" },
  { label: t("mon.col.budget_spent"), cls: "mon-bar--spent" },
];

function budgetSection(id, table, rowLabel, firstLabel) {
  const rows = state.body.tables[table];
  const chart = rows.length
    ? barChart({ title: t(`mon.table.${table}`), series: BUDGET_SERIES(), format: (v) => moneyShort.format(v), rows: rows.map((r) => ({ label: rowLabel(r), values: [r.budget_planned, r.budget_spent] })) })
    : empty(t("mon.none"));
  const columns = [
    { key: "label", label: firstLabel, value: rowLabel },
    { key: "measures", label: t("mon.col.measures"), kind: "num" },
    { key: "with_budget", label: t("mon.col.with_budget"), kind: "num" },
    { key: "budget_planned", label: t("mon.col.budget_planned"), kind: "money" },
    { key: "budget_spent", label: t("mon.col.budget_spent"), kind: "money" },
  ];
  return section(id, t(`mon.table.${table}`), t(`mon.hint.${table}`), [pair(chart, dataTable(t(`mon.table.${table}`), columns, rows), csvLink(table))]);
}

function renderSections() {
  const b = state.body;
  const tables = b.tables;
  const out = [];

  out.push(section("mon-status", t("mon.table.status"), t("mon.hint.status"), [pair(
    barChart({ title: t("mon.table.status"), series: [{ label: t("mon.col.measures"), cls: "mon-bar--count" }], rows: tables.status.map((r) => ({ label: label("status", r.status), values: [r.measures] })) }),
    dataTable(t("mon.table.status"), [
      { key: "status", label: t("mon.col.status"), value: (r) => label("status", r.status) },
      { key: "measures", label: t("mon.col.measures"), kind: "num" },
    ], tables.status),
    csvLink("status"))]));

  const byField = tables.status_by_field;
  out.push(section("mon-fields", t("mon.table.status_by_field"), t("mon.hint.status_by_field"), [pair(
    byField.length ? barChart({ title: t("mon.table.status_by_field"), series: STATUS_SERIES(), stacked: true, rows: byField.map((r) => ({ label: fieldLabel(r), values: STATUSES.map((s) => r[s]) })) }) : empty(t("mon.none")),
    dataTable(t("mon.table.status_by_field"), [
      { key: "action_field", label: t("mon.col.action_field"), value: fieldLabel },
      ...STATUSES.map((s) => ({ key: s, label: label("status", s), kind: "num" })),
      { key: "total", label: t("mon.col.total"), kind: "num" },
    ], byField),
    csvLink("status_by_field"))]));

  out.push(budgetSection("mon-budget-field", "budget_by_field", fieldLabel, t("mon.col.action_field")));
  out.push(budgetSection("mon-budget-quarter", "budget_by_quarter", (r) => quarterLabel(r.quarter), t("mon.col.quarter")));
  out.push(budgetSection("mon-budget-funding", "budget_by_funding", (r) => r.funding_line || t("mon.no_funding"), t("mon.col.funding_line")));

  const ms = tables.milestones;
  const months = [...new Set(ms.map((m) => m.date.slice(0, 7)))].sort();
  out.push(section("mon-milestones", t("mon.table.milestones"), t("mon.hint.milestones", { from: dayLabel(b.filters.as_of), until: dayLabel(b.filters.due_until) }), [pair(
    ms.length
      ? barChart({ title: t("mon.table.milestones"), stacked: true, series: [{ label: t("mon.state.overdue"), cls: "mon-bar--overdue" }, { label: t("mon.state.due"), cls: "mon-bar--due" }],
          rows: months.map((m) => ({ label: monthLabel(m), values: ["overdue", "due"].map((s) => ms.filter((x) => x.state === s && x.date.startsWith(m)).length) })) })
      : empty(t("mon.no_milestones")),
    dataTable(t("mon.table.milestones"), [
      { key: "date", label: t("mon.col.date"), kind: "date" },
      { key: "state", label: t("mon.col.state"), value: (r) => `${t(`mon.state.${r.state}`)} (${r.state === "overdue" ? t("mon.overdue_for", { count: -r.days }) : t("mon.due_in", { count: r.days })})` },
      { key: "milestone", label: t("mon.col.milestone") },
      { key: "title", label: t("mon.col.measure"), link: (r) => (b.view === "public" ? `/massnahmen/${encodeURIComponent(r.measure_id)}` : null) },
      { key: "action_field", label: t("mon.col.action_field"), value: fieldLabel },
      { key: "measure_status", label: t("mon.col.status"), value: (r) => label("status", r.measure_status) },
    ], ms),
    csvLink("milestones"))]));

  const eds = tables.editions;
  const changes = tables.edition_changes;
  out.push(section("mon-editions", t("mon.table.editions"), t("mon.hint.editions"), [
    pair(
      eds.length ? barChart({ title: t("mon.table.editions"), series: [{ label: t("mon.col.measures"), cls: "mon-bar--count" }], rows: eds.map((r) => ({ label: r.title, values: [r.measures] })) }) : empty(t("mon.none")),
      dataTable(t("mon.table.editions"), [
        { key: "title", label: t("mon.col.edition") },
        { key: "year", label: t("mon.col.year") },
        { key: "measures", label: t("mon.col.measures"), kind: "num" },
        { key: "added", label: t("mon.col.added"), kind: "num" },
        { key: "removed", label: t("mon.col.removed"), kind: "num" },
        { key: "changed", label: t("mon.col.changed"), kind: "num" },
      ], eds),
      csvLink("editions")),
    el("h3", { className: "mon-subheading", text: t("mon.table.edition_changes") }),
    changes.length
      ? dataTable(t("mon.table.edition_changes"), [
          { key: "title", label: t("mon.col.measure") },
          { key: "from", label: t("mon.col.between"), value: (r) => `${editionLabel(r.from)} → ${editionLabel(r.to)}` },
          { key: "change", label: t("mon.col.change"), value: (r) => t(`mon.change.${r.change}`) },
          { key: "status", label: t("mon.col.status"), value: (r) => label("status", r.status) },
          { key: "fields", label: t("mon.col.fields") },
        ], changes)
      : empty(t("mon.no_changes")),
    el("p", { className: "mon-actions" }, [csvLink("edition_changes")]),
  ]));

  const hist = tables.status_history;
  out.push(section("mon-history", t("mon.table.status_history"), t("mon.hint.status_history"), [pair(
    hist.length ? barChart({ title: t("mon.table.status_history"), series: STATUS_SERIES(), stacked: true, rows: hist.map((r) => ({ label: monthLabel(r.month), values: STATUSES.map((s) => r[s]) })) }) : empty(t("mon.none")),
    dataTable(t("mon.table.status_history"), [
      { key: "month", label: t("mon.col.month"), kind: "month" },
      ...STATUSES.map((s) => ({ key: s, label: label("status", s), kind: "num" })),
      { key: "total", label: t("mon.col.total"), kind: "num" },
    ], hist),
    csvLink("status_history"))]));

  $("sections").replaceChildren(...out);
}

function renderTotals() {
  const x = state.body.totals;
  const facts = [
    ["mon.col.measures", formatNumber(x.measures)],
    ["mon.col.budget_planned", money.format(x.budget_planned)],
    ["mon.col.budget_spent", money.format(x.budget_spent)],
    ["mon.total.overdue", formatNumber(x.milestones_overdue)],
    ["mon.total.due", formatNumber(x.milestones_due)],
  ];
  $("totals").replaceChildren(...facts.map(([key, value]) => el("div", { className: "mon-fact" }, [el("dt", { text: t(key) }), el("dd", { text: value })])));
}

// ---------------------------------------------------------------- filters and view

function fillSelect(select, allText, items, keep) {
  select.replaceChildren(el("option", { text: allText, attrs: { value: "" } }), ...items.map(([value, text]) => el("option", { text, attrs: { value } })));
  select.value = items.some(([value]) => value === keep) ? keep : "";
}

function fillFilters(initial = {}) {
  const o = state.options;
  if (!o) return;
  const city = initial.city ?? $("f-city").value;
  fillSelect($("f-city"), t("mon.all_cities"), o.cities.map((c) => [c.ags, c.name]), city);
  const chosen = $("f-city").value;
  const ofCity = (x) => !chosen || x.city_ags === chosen;
  fillSelect($("f-edition"), t("mon.all_editions"), o.editions.filter(ofCity).map((e) => [e.key, e.title]), initial.edition ?? $("f-edition").value);
  fillSelect($("f-quarter"), t("mon.all_quarters"), o.quarters.filter(ofCity).map((q) => [q.slug, (lang === "en" && q.name_en) || q.name]), initial.quarter ?? $("f-quarter").value);
}

function renderView() {
  const staff = isStaff();
  $("f-view-field").hidden = !staff;
  $("user-bar").hidden = !state.user;
  $("login-details").hidden = Boolean(state.user);
  if (state.user) {
    $("user-line").textContent = t("mon.signed_in", { name: state.user.display_name || state.user.username, role: label("role", state.user.role) });
  }
  const key = view() === "staff" ? "mon.view_line_staff" : state.user && !staff ? "mon.view_line_not_staff" : "mon.view_line_public";
  $("view-line").textContent = t(key);
  document.body.dataset.monitoringView = view();
}

function remember() {
  const url = new URL(location.href);
  for (const name of [...FILTERS, "view"]) url.searchParams.delete(name);
  for (const [name, value] of filterParams()) url.searchParams.set(name, value);
  if (isStaff() && $("f-view").value === "public") url.searchParams.set("view", "public");
  history.replaceState(null, "", url.pathname + url.search + url.hash);
}

async function load() {
  const ticket = ++state.loading;
  document.body.dataset.pageState = "loading";
  $("page-status").textContent = t("common.loading");
  renderView();
  const query = filterParams().toString();
  try {
    const body = await getJson(`${base()}${query ? `?${query}` : ""}`);
    if (ticket !== state.loading) return;
    state.body = body;
    state.options = body.options;
    fillFilters();
    $("f-due").placeholder = String(body.filters.due_days);
    renderTotals();
    renderSections();
    $("page-status").textContent = t(body.view === "staff" ? "mon.loaded_staff" : "mon.loaded_public", { count: body.totals.measures });
    document.body.dataset.pageState = "ready";
    remember();
  } catch (err) {
    if (ticket !== state.loading) return;
    if ((err.status === 401 || err.status === 403) && view() === "staff") {
      state.user = null;
      return load();
    }
    const detail = err.body && err.body.detail ? `${describeError(err)}: ${err.body.detail}` : describeError(err);
    $("page-status").textContent = t("mon.failed", { reason: detail });
    document.body.dataset.pageState = "error";
  }
}

async function onLogin(event) {
  event.preventDefault();
  const box = $("login-error");
  box.hidden = true;
  try {
    keepSession(state, await login($("login-user").value.trim(), $("login-password").value));
    if (!isStaff()) $("page-status").textContent = t("mon.view_line_not_staff");
    await load();
    $("view-heading").focus();
  } catch (err) {
    showSignInFailure(err, "mon.login_failed");
  }
}

async function onLogout() {
  await endSession(state);
  $("f-view").value = "staff";
  await load();
  $("login-details").querySelector("summary").focus();
}

async function main() {
  await initPage();
  const params = new URLSearchParams(location.search);
  const initial = Object.fromEntries(FILTERS.map((name) => [name, params.get(name) || ""]));
  // Before the first answer the selects hold the address's values as their only options.
  for (const name of ["city", "edition", "quarter"]) {
    fillSelect($(`f-${name}`), t(`mon.all_${name === "city" ? "cities" : `${name}s`}`), initial[name] ? [[initial[name], initial[name]]] : [], initial[name]);
  }
  $("f-due").value = initial.due_days;
  if (params.get("view") === "public") $("f-view").value = "public";
  $("view-heading").setAttribute("tabindex", "-1");
  $("filter-form").addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  $("f-city").addEventListener("change", () => fillFilters());
  $("login-form").addEventListener("submit", onLogin);
  $("logout").addEventListener("click", onLogout);
  try {
    const who = await me();
    if (who?.user) {
      state.user = who.user;
      state.csrf = who.csrf_token;
    }
  } catch (err) {
    console.error("me:", err);
  }
  try {
    STATUSES = (await config()).statuses || [];
  } catch (err) {
    console.error("config:", err);
  }
  await load();
}

main();
