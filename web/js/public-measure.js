// The page of one measure at its stable address /massnahmen/{id}: map, record, milestones,
// plain-language summary and source. Everything from data is set as text.

import { feedHref, getIdeas, getItems, getMeasure, getMeasures, getSources } from "./api.js";
import { escapeHtml } from "./core/dom.js";
import { formatDate, formatList, formatMoney, label, t } from "./i18n.js";
import { addBaseMap, applyStatusColours, createMap } from "./map.js";
import {
  LOCATED,
  cityName,
  describeError,
  el,
  idFromPath,
  initPageWithConfig,
  quarterName,
  safeHttpUrl,
  statusBadge,
} from "./public-common.js";

const L = globalThis.L;
const MANY_DISTRICTS = 8;
const $ = (id) => document.getElementById(id);

function fact(list, term, value) {
  if (value === null || value === undefined || value === "" || (Array.isArray(value) && !value.length)) return;
  list.append(el("dt", { text: term }));
  const dd = el("dd");
  if (value instanceof Node) dd.append(value);
  else dd.textContent = String(value);
  list.append(dd);
}

function period(p) {
  const start = formatDate(p.start_date);
  const end = formatDate(p.end_date);
  if (start && end) return t("measure.period", { start, end });
  if (start) return t("measure.since", { start });
  if (end) return t("measure.until", { end });
  return "";
}

function chips(items) {
  return el("ul", { className: "chip-list" }, items.map((text) => el("li", { text })));
}

function districtsNode(districts) {
  const names = districts.map((d) => d.name).filter(Boolean);
  if (names.length <= MANY_DISTRICTS) return chips(names);
  return el("details", {}, [
    el("summary", { text: t("measure.districts_many", { count: names.length }) }),
    chips(names),
  ]);
}

function paragraphs(text) {
  return String(text || "")
    .split(/\n{2,}/)
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part) => el("p", { className: "pre-wrap", text: part }));
}

function renderRecord(feature, cfg) {
  const p = feature.properties || {};
  const title = p.title || t("common.unnamed");
  document.title = t("measure.page_title_named", { title });
  $("m-title").textContent = title;
  $("m-meta").replaceChildren(
    statusBadge(p.status),
    el("span", { text: label("field", p.action_field) }),
    el("span", { text: cityName(cfg, p.city_ags) }),
  );

  if (p.plain_summary) {
    $("m-plain").textContent = p.plain_summary;
    $("m-plain-card").hidden = false;
  }
  const text = $("m-text");
  const parts = [];
  if (p.summary) parts.push(el("p", { className: "lead-text", text: p.summary }));
  parts.push(...paragraphs(p.description));
  if (!parts.length) parts.push(el("p", { text: t("measure.no_text") }));
  text.replaceChildren(...parts);

  const facts = $("m-facts");
  facts.replaceChildren();
  fact(facts, t("measure.status"), statusBadge(p.status));
  fact(facts, t("measure.field"), label("field", p.action_field));
  fact(facts, t("measure.city"), cityName(cfg, p.city_ags));
  fact(facts, t("measure.period_label"), period(p));
  fact(facts, t("measure.responsible"), p.responsible_unit);
  fact(facts, t("measure.partners"), Array.isArray(p.partners) && p.partners.length ? formatList(p.partners) : "");
  fact(facts, t("measure.funding"), p.funding_line);
  fact(facts, t("measure.budget_planned"), Number.isFinite(p.budget_planned) ? formatMoney(p.budget_planned) : "");
  fact(facts, t("measure.budget_spent"), Number.isFinite(p.budget_spent) ? formatMoney(p.budget_spent) : "");
  const quarterNames = (p.quarters || []).map((slug) => cfg?.quarterNames?.get(slug) || slug);
  fact(facts, t("measure.quarters"), quarterNames.length ? chips(quarterNames) : "");
  fact(facts, t("measure.districts"), Array.isArray(p.districts) && p.districts.length ? districtsNode(p.districts) : "");
  fact(facts, t("measure.editions"), Array.isArray(p.editions) && p.editions.length ? formatList(p.editions) : "");
  fact(facts, t("measure.updated"), formatDate(p.updated_at));
  if (Number.isInteger(p.origin_id)) {
    fact(facts, t("measure.transferred_from"), el("a", { text: t("measure.origin_link", { id: p.origin_id }), attrs: { href: `/massnahmen/${encodeURIComponent(p.origin_id)}` } }));
  }

  const milestones = Array.isArray(p.milestones) ? p.milestones : [];
  if (milestones.length) {
    $("m-milestones").replaceChildren(
      ...milestones.map((m) => {
        const done = ["erreicht", "abgeschlossen", "done"].includes(String(m.status || "").toLowerCase());
        return el("li", { className: `timeline__item${done ? " timeline__item--done" : ""}` }, [
          el("span", { className: "timeline__date", text: formatDate(m.date) || t("measure.no_date") }),
          el("span", { text: m.title || "" }),
          m.status ? el("span", { className: "timeline__state", text: ` – ${label("milestone", m.status)}` }) : null,
        ]);
      }),
    );
    $("m-milestones-card").hidden = false;
  }

  const links = (Array.isArray(p.links) ? p.links : [])
    .map((link) => ({ href: safeHttpUrl(link?.url), title: link?.title || link?.url }))
    .filter((link) => link.href);
  if (links.length) {
    $("m-links").replaceChildren(
      ...links.map((link) => el("li", {}, [el("a", { text: link.title, attrs: { href: link.href, rel: "noopener" } })])),
    );
    $("m-links-card").hidden = false;
  }

  const source = $("m-source");
  source.replaceChildren();
  fact(source, t("measure.source_label"), p.source || t("measure.no_source"));
  fact(source, t("measure.licence"), p.licence);
  fact(source, t("measure.published"), formatDate(p.published_at));
}

function renderPlace(feature) {
  const p = feature.properties || {};
  const precision = p.location_precision || "unknown";
  const note = $("m-place-note");
  $("m-place-text").textContent = [label("precision", precision), p.location_note].filter(Boolean).join(" – ");
  if (!LOCATED.has(precision) || !feature.geometry) {
    // The geometry is only the city outline as a stand-in: say so, draw nothing.
    note.replaceChildren(
      el("strong", { text: label("precision", precision) }),
      el("span", { text: ` – ${t(precision === "city" ? "measure.citywide_note" : "measure.unknown_note")}` }),
    );
    note.hidden = false;
    return;
  }
  const mapNode = $("m-map");
  mapNode.hidden = false;
  const map = createMap(mapNode);
  const layer = L.geoJSON(feature, {
    style: { color: "#12414a", weight: 3, fillColor: "#12414a", fillOpacity: 0.2, dashArray: precision === "approximate" ? "8 5" : null },
    pointToLayer: (f, latlng) =>
      L.circleMarker(latlng, { radius: 9, color: "#12414a", weight: 3, fillColor: "#ffd166", fillOpacity: 1 }),
    interactive: false,
  }).addTo(map);
  const bounds = layer.getBounds();
  map.fitBounds(bounds, { maxZoom: 16, padding: [30, 30], animate: false });
  if (precision === "approximate") {
    note.replaceChildren(el("span", { text: t("measure.approximate_note") }));
    note.hidden = false;
  }
  const centre = bounds.getCenter();
  const feed = $("m-feed");
  feed.href = feedHref({ lon: centre.lng.toFixed(5), lat: centre.lat.toFixed(5), radius: 1000 });
  feed.hidden = false;
  const overview = $("m-on-map");
  overview.href = `/?map=16/${centre.lat.toFixed(5)}/${centre.lng.toFixed(5)}`;
  overview.hidden = false;
  return map;
}

// Status values of the record (not texts: the labels come from the catalogue).
const TRANSFERRED = "\u00fcbertragen";
const SUITABLE = "geeignet";
const SHOWN_STATUSES = [TRANSFERRED, SUITABLE];
const SWATCH = { [TRANSFERRED]: "transferred", [SUITABLE]: "suitable" };
const TRANSFER_STYLE = {
  [TRANSFERRED]: { color: "#12414a", weight: 2, fillColor: "#12414a", fillOpacity: 0.45 },
  [SUITABLE]: { color: "#8a6d00", weight: 2, fillColor: "#ffd166", fillOpacity: 0.35, dashArray: "6 4" },
};

/** Where the (published) measure was transferred or is suitable: a small map of those
 * districts and the same as a list; links only to transferred measures that are published. */
async function renderTransfer(feature, cfg) {
  const p = feature.properties || {};
  const entries = Object.entries(p.transfer?.districts || {})
    .filter(([, d]) => SHOWN_STATUSES.includes(d?.status))
    .sort((a, b) => SHOWN_STATUSES.indexOf(a[1].status) - SHOWN_STATUSES.indexOf(b[1].status) || a[0].localeCompare(b[0], "de", { numeric: true }));
  if (!entries.length) return;
  let outlines = [];
  let published = [];
  let attribution = "";
  try {
    const [districts, children, sources] = await Promise.all([
      getItems("districts", { city_ags: p.city_ags, limit: 1000 }),
      getMeasures({ origin_id: p.id, limit: 1000 }).catch(() => ({ features: [] })),
      pageSources(),
    ]);
    const codes = new Set(entries.map(([code]) => code));
    outlines = districts.features.filter((f) => codes.has(String(f.properties?.code)));
    published = children?.features || [];
    const keys = new Set(outlines.map((f) => f.properties?.source).filter(Boolean));
    const list = Array.isArray(sources) ? sources : sources?.sources || [];
    attribution = [...new Set(list.filter((s) => keys.has(s.key)).map((s) => s.attribution).filter(Boolean))].join("; ");
  } catch (err) {
    console.error("transfer:", err);
  }
  const byCode = new Map(outlines.map((f) => [String(f.properties.code), f]));
  $("m-transfer-list").replaceChildren(
    ...entries.map(([code, d]) => {
      const outline = byCode.get(code);
      const name = outline?.properties?.name || code;
      const item = el("li", { attrs: { "data-code": code, "data-status": d.status } }, [
        el("span", { className: `transfer-swatch transfer-swatch--${SWATCH[d.status]}`, attrs: { "aria-hidden": "true" } }),
        el("span", { text: t("measure.transfer_item", { name, code, status: t(`measure.transfer_status.${SWATCH[d.status]}`), date: formatDate(d.date) }) }),
      ]);
      const child = published.find((m) => (m.properties?.districts || []).some((x) => String(x) === String(outline?.id ?? outline?.properties?.id)));
      if (child) {
        item.append(" – ", el("a", { text: t("measure.transfer_link"), attrs: { href: `/massnahmen/${encodeURIComponent(child.id ?? child.properties.id)}` } }));
      }
      return item;
    }),
  );
  $("m-transfer-card").hidden = false;
  if (!globalThis.L || !outlines.length) {
    $("m-transfer-map").hidden = true;
    return;
  }
  const map = createMap($("m-transfer-map"));
  const statusOf = new Map(entries.map(([code, d]) => [code, d.status]));
  const layer = L.geoJSON({ type: "FeatureCollection", features: outlines }, {
    style: (f) => TRANSFER_STYLE[statusOf.get(String(f.properties.code))],
    attribution: attribution ? escapeHtml(t("measure.transfer_districts_source", { attribution })) : undefined,
    interactive: false,
  }).addTo(map);
  if (feature.geometry && LOCATED.has(p.location_precision || "unknown")) {
    L.geoJSON(feature, {
      style: { color: "#c0392b", weight: 3, fillOpacity: 0 },
      pointToLayer: (f, latlng) => L.circleMarker(latlng, { radius: 6, color: "#c0392b", weight: 3, fillColor: "#fff", fillOpacity: 1 }),
      interactive: false,
    }).addTo(map);
  }
  map.fitBounds(layer.getBounds(), { paddingTopLeft: [48, 20], paddingBottomRight: [20, 56], animate: false });
  addBaseMap(map, cfg, { sources: pageSources(), onTileError: () => $("m-transfer-map").classList.add("map--no-tiles") });
  $("m-transfer-map").dataset.districts = String(outlines.length);
}

let sourcesRequest = null;
/** /api/sources once for both maps of the page (their attributions). */
function pageSources() {
  sourcesRequest ||= getSources().catch(() => []);
  return sourcesRequest;
}

async function renderIdeas(id) {
  try {
    const body = await getIdeas();
    const linked = (body?.ideas || []).filter((idea) => String(idea.measure_id) === String(id));
    if (!linked.length) return;
    $("m-ideas").replaceChildren(
      ...linked.map((idea) =>
        el("li", {}, [el("a", { text: idea.title || t("common.unnamed"), attrs: { href: `/ideen/${encodeURIComponent(idea.id)}` } })]),
      ),
    );
    $("m-ideas-card").hidden = false;
  } catch (err) {
    console.error("ideas:", err);
  }
}

async function main() {
  const cfg = await initPageWithConfig();
  const status = $("page-status");
  const id = idFromPath() || new URLSearchParams(location.search).get("id");
  applyStatusColours(cfg);
  if (!id) {
    status.textContent = "";
    $("not-found").hidden = false;
    document.body.dataset.pageState = "not-found";
    return;
  }
  let feature;
  try {
    feature = await getMeasure(id);
  } catch (err) {
    if (err.status === 404 || err.status === 422) {
      status.textContent = "";
      $("not-found").hidden = false;
      document.body.dataset.pageState = "not-found";
    } else {
      status.textContent = t("measure.failed", { reason: describeError(err) });
      document.body.dataset.pageState = "error";
    }
    return;
  }
  try {
    const quarters = await getItems("quarters");
    cfg = { ...(cfg || {}), quarterNames: new Map(quarters.features.map((f) => [f.properties.slug, quarterName(f.properties)])) };
  } catch (err) {
    console.error("quarters:", err);
  }
  renderRecord(feature, cfg);
  $("measure").hidden = false;
  status.textContent = "";
  const map = globalThis.L ? renderPlace(feature) : null;
  if (map) addBaseMap(map, cfg, { sources: pageSources(), onTileError: () => $("m-map").classList.add("map--no-tiles") });
  await Promise.all([renderIdeas(id), renderTransfer(feature, cfg)]);
  document.body.dataset.pageState = "ready";
}

main();
