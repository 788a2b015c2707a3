// Analysis page: charts as inline SVG built with DOM APIs (no library, no innerHTML), each with
// role="img", a title and a description, and a data table as the accessible alternative.

import { el, formatNumber, formatPercent, formatValue, svgEl } from "./analysis-format.js";
import { t } from "./i18n.js";

const WIDTH = 640;
const SIMILAR_SD = 0.5; // below this standardised difference an indicator counts as similar
const COLOUR_SIMILAR = "#2c7fb8";
const COLOUR_DIFFERENT = "#b35806";
let uid = 0;

function nextId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

function truncate(text, max) {
  const s = String(text ?? "");
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** "3,85 SD niedriger" / "gleich" for a signed standardised difference. */
export function describeDiff(diff, method) {
  if (diff === null || diff === undefined || !Number.isFinite(diff)) return t("analysis.no_value");
  const sd = t(method === "robust" ? "analysis.sd_robust" : "analysis.sd");
  if (Math.abs(diff) < 0.005) return t("analysis.diff_equal");
  return t(diff > 0 ? "analysis.diff_higher" : "analysis.diff_lower", { value: formatNumber(Math.abs(diff), 2), sd });
}

function startSvg(height, titleText, descText, className) {
  const titleId = nextId("chart-title");
  const descId = nextId("chart-desc");
  const svg = svgEl("svg", {
    class: className,
    viewBox: `0 0 ${WIDTH} ${height}`,
    width: "100%",
    role: "img",
    "aria-labelledby": `${titleId} ${descId}`,
    focusable: "false",
    preserveAspectRatio: "xMinYMin meet",
  });
  svg.append(svgEl("title", { id: titleId }, titleText), svgEl("desc", { id: descId }, descText));
  return svg;
}

// ---------------------------------------------------------------- contributions

/**
 * Items of the contributions chart: one per used indicator, largest contribution first.
 * `indicators`: [{key, name?, name_de, unit, weight}] (`name`: in the page's language),
 * `reference`: key → reference value.
 */
export function contributionItems(row, indicators, reference) {
  const items = indicators
    .filter((d) => d.used !== false && row.contributions && d.key in row.contributions)
    .map((d) => ({
      key: d.key,
      name: d.name || d.name_de || d.key,
      unit: d.unit,
      weight: d.weight,
      value: row.values?.[d.key],
      reference: reference?.[d.key],
      contribution: row.contributions[d.key],
      share: row.shares?.[d.key],
      diff: row.differences?.[d.key],
    }));
  items.sort((a, b) => (b.contribution ?? -Infinity) - (a.contribution ?? -Infinity));
  return items;
}

/**
 * Bar chart of the contributions of each indicator to the distance of one candidate
 * (sum = distance²). Bars carry the indicator name, the share and the values as text.
 */
export function contributionsChart(row, items, method) {
  const rowHeight = 60;
  const top = 8;
  const height = top + items.length * rowHeight + 4;
  const values = items.map((i) => (Number.isFinite(i.contribution) ? i.contribution : 0));
  const max = Math.max(0, ...values);
  const min = Math.min(0, ...values);
  const span = max - min || 1;
  const barWidth = WIDTH - 96;
  const zeroX = (Math.abs(min) / span) * barWidth;
  const summary = items.length
    ? items.map((i) => `${i.name} ${formatPercent(i.share)}`).join(", ")
    : t("analysis.no_indicators");
  const isReference = row.is_reference || row.distance === 0;
  const svg = startSvg(
    height,
    t("analysis.chart_contrib_title", { name: row.name }),
    isReference
      ? t("analysis.chart_contrib_self", { name: row.name })
      : t("analysis.chart_contrib_desc", { summary }),
    "chart contrib-chart",
  );
  items.forEach((item, i) => {
    const y = top + i * rowHeight;
    const c = Number.isFinite(item.contribution) ? item.contribution : 0;
    const length = (Math.abs(c) / span) * barWidth;
    const x = c >= 0 ? zeroX : zeroX - length;
    const similar = Number.isFinite(item.diff) && Math.abs(item.diff) < SIMILAR_SD;
    const g = svgEl("g", { class: "contrib-row", "data-indicator": item.key });
    g.append(svgEl("text", { x: 0, y: y + 13, class: "chart-label" }, item.name));
    g.append(svgEl("rect", {
      x: 0, y: y + 19, width: barWidth, height: 16, class: "contrib-track", rx: 2,
    }));
    g.append(svgEl("rect", {
      x: x.toFixed(2), y: y + 19, width: Math.max(length, 1.5).toFixed(2), height: 16, rx: 2,
      class: `contrib-bar ${similar ? "contrib-bar--similar" : "contrib-bar--different"}`,
      fill: similar ? COLOUR_SIMILAR : COLOUR_DIFFERENT,
      "data-contribution": c,
    }));
    g.append(svgEl("text", {
      x: (Math.max(x + length, zeroX) + 6).toFixed(2), y: y + 32, class: "chart-value",
    }, formatPercent(item.share)));
    const detail = [
      t("analysis.chart_value", { value: formatValue(item.value, item.unit) }),
      t("analysis.chart_reference", { value: formatValue(item.reference, item.unit) }),
      describeDiff(item.diff, method),
      t(similar ? "analysis.similar" : "analysis.different"),
    ].join(" · ");
    g.append(svgEl("text", { x: 0, y: y + 52, class: "chart-detail" }, detail));
    svg.append(g);
  });
  if (min < 0) {
    svg.append(svgEl("line", {
      x1: zeroX, x2: zeroX, y1: top, y2: height - 4, class: "chart-zero",
    }));
  }
  return svg;
}

/** The same numbers as a table (accessible alternative and for copying). */
export function contributionsTable(row, items, method) {
  const table = el("table", { className: "data-table contrib-table", attrs: { id: "contrib-table" } });
  table.append(el("caption", { text: t("analysis.contrib_table_caption", { name: row.name }) }));
  const head = el("tr", {},
    ...["analysis.th_indicator", "analysis.th_weight", "analysis.th_value", "analysis.reference", "analysis.th_difference", "analysis.th_contribution", "analysis.th_share"]
      .map((key) => el("th", { text: t(key), attrs: { scope: "col" } })));
  table.append(el("thead", {}, head));
  const body = el("tbody");
  for (const item of items) {
    body.append(el("tr", {},
      el("th", { text: item.name, attrs: { scope: "row" } }),
      el("td", { className: "num", text: formatPercent(item.weight) }),
      el("td", { className: "num", text: formatValue(item.value, item.unit) }),
      el("td", { className: "num", text: formatValue(item.reference, item.unit) }),
      el("td", { text: describeDiff(item.diff, method) }),
      el("td", { className: "num", text: formatNumber(item.contribution, 3) }),
      el("td", { className: "num", text: formatPercent(item.share) })));
  }
  table.append(body);
  return table;
}

// ---------------------------------------------------------------- sensitivity

function niceStep(range) {
  for (const step of [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]) {
    if (range / step <= 8) return step;
  }
  return 10000;
}

/**
 * Rank ranges under perturbed weights: per candidate a line from the best to the worst rank,
 * a dot at the median and a diamond at the rank with the chosen weights; the share of runs in
 * the top N as text. `rows`: [{name, baseRank, sensitivity}], `info`: {runs, spread, top}.
 */
export function sensitivityChart(rows, info) {
  const rowHeight = 26;
  const top = 30;
  const left = 200;
  const right = 92;
  const height = top + rows.length * rowHeight + 10;
  const plot = WIDTH - left - right;
  const maxRank = Math.max(info.top + 1, ...rows.map((r) => r.sensitivity.rank_max || 1));
  const x = (rank) => left + ((rank - 1) / Math.max(maxRank - 1, 1)) * plot;
  const desc = rows.map((r) => t("analysis.sens_row", { name: r.name, min: formatNumber(r.sensitivity.rank_min, 0), max: formatNumber(r.sensitivity.rank_max, 0), share: formatPercent(r.sensitivity.share_in_top), top: info.top })).join("; ");
  const svg = startSvg(height, t("analysis.sens_title", { spread: formatPercent(info.spread), runs: info.runs }), desc, "chart sensitivity-chart");
  // axis
  const step = niceStep(maxRank - 1);
  const axis = svgEl("g", { class: "chart-axis" });
  for (let r = 1; r <= maxRank; r += step) {
    axis.append(svgEl("line", { x1: x(r), x2: x(r), y1: top - 6, y2: height - 8, class: "chart-grid" }));
    axis.append(svgEl("text", { x: x(r), y: top - 10, class: "chart-tick" }, formatNumber(r, 0)));
  }
  axis.append(svgEl("text", { x: left - 8, y: top - 10, class: "chart-tick chart-tick--start" }, t("analysis.col_rank")));
  axis.append(svgEl("text", { x: WIDTH - 2, y: top - 10, class: "chart-tick chart-tick--end" }, t("analysis.in_top_lower", { top: info.top })));
  const cut = x(info.top + 0.5);
  axis.append(svgEl("line", { x1: cut, x2: cut, y1: top - 6, y2: height - 8, class: "chart-cut" }));
  svg.append(axis);
  rows.forEach((row, i) => {
    const s = row.sensitivity;
    const y = top + i * rowHeight + rowHeight / 2;
    const g = svgEl("g", { class: "sens-row" });
    const label = svgEl("text", { x: left - 8, y: y + 4, class: "chart-label chart-label--end" }, truncate(row.name, 28));
    g.append(label);
    g.append(svgEl("line", { x1: x(s.rank_min), x2: x(s.rank_max), y1: y, y2: y, class: "sens-range" }));
    g.append(svgEl("circle", { cx: x(s.rank_median), cy: y, r: 4.5, class: "sens-median" }));
    const bx = x(row.baseRank);
    g.append(svgEl("path", { d: `M${bx} ${y - 6} L${bx + 6} ${y} L${bx} ${y + 6} L${bx - 6} ${y} Z`, class: "sens-base" }));
    g.append(svgEl("text", { x: WIDTH - 2, y: y + 4, class: "chart-value chart-value--end" }, formatPercent(s.share_in_top)));
    svg.append(g);
  });
  return svg;
}
