// The page of one idea at its stable address /ideen/{id}: what it says and what became of it
// (accepted, rejected with the public reason, or taken into a measure). Only moderated ideas
// are public; texts people wrote are set as text.

import { getIdea, getMeasure } from "./api.js";
import { formatDate, label, t } from "./i18n.js";
import { addTileLayer, createMap } from "./map.js";
import {
  cityName,
  describeError,
  el,
  idFromPath,
  ideaBadge,
  initPageWithConfig,
} from "./public-common.js";

const L = globalThis.L;
const $ = (id) => document.getElementById(id);

function fact(list, term, value) {
  if (!value) return;
  list.append(el("dt", { text: term }), el("dd", { text: value }));
}

async function renderOutcome(idea) {
  const box = $("i-outcome");
  const text = $("i-outcome-text");
  const extra = $("i-outcome-extra");
  extra.replaceChildren();
  box.className = "notice";
  if (idea.state === "abgelehnt") {
    box.classList.add("notice--warn");
    text.textContent = t("idea.rejected");
    extra.append(el("strong", { text: t("idea.reason") }), " ", el("span", { className: "idea-reason", text: idea.public_reason || "" }));
  } else if (idea.state === "verknuepft") {
    box.classList.add("notice--success");
    text.textContent = t("idea.linked");
    let title = t("idea.linked_measure");
    try {
      const measure = await getMeasure(idea.measure_id);
      title = measure?.properties?.title || title;
    } catch (err) {
      console.error("measure:", err);
    }
    extra.append(el("a", { text: title, attrs: { href: `/massnahmen/${encodeURIComponent(idea.measure_id)}` } }));
    if (idea.public_reason) extra.append(el("span", { text: ` – ${idea.public_reason}` }));
  } else {
    box.classList.add("notice--success");
    text.textContent = t("idea.accepted");
    if (idea.public_reason) extra.append(el("span", { text: idea.public_reason }));
  }
}

function renderMap(idea, cfg) {
  const coords = idea.geometry?.coordinates;
  if (!L || !Array.isArray(coords)) return;
  const map = createMap($("i-map"));
  const latlng = [coords[1], coords[0]];
  map.setView(latlng, 15, { animate: false });
  L.marker(latlng, {
    icon: L.divIcon({ className: "idea-marker idea-marker--new", iconSize: [18, 18], iconAnchor: [9, 9], html: "" }),
    keyboard: false,
    interactive: false,
  }).addTo(map);
  if (cfg?.tile_url) {
    addTileLayer(map, cfg.tile_url, cfg.tile_attribution || "", () => $("i-map").classList.add("map--no-tiles"));
  }
  $("i-place-text").textContent = t("idea.coordinates", { lat: coords[1].toFixed(5), lon: coords[0].toFixed(5) });
}

async function main() {
  const cfg = await initPageWithConfig();
  const status = $("page-status");
  const id = idFromPath() || new URLSearchParams(location.search).get("id");
  let idea = null;
  try {
    if (id) idea = await getIdea(id);
  } catch (err) {
    if (err.status !== 404 && err.status !== 422) {
      status.textContent = t("idea.failed", { reason: describeError(err) });
      document.body.dataset.pageState = "error";
      return;
    }
  }
  status.textContent = "";
  if (!idea) {
    $("not-found").hidden = false;
    document.body.dataset.pageState = "not-found";
    return;
  }
  const title = idea.title || t("common.unnamed");
  document.title = t("idea.page_title_named", { title });
  $("i-title").textContent = title;
  $("i-meta").replaceChildren(ideaBadge(idea.state), el("span", { text: cityName(cfg, idea.city_ags) }));
  $("i-text").textContent = idea.text ?? t("idea.text_withheld"); // rejected: text withheld
  const facts = $("i-facts");
  facts.replaceChildren();
  fact(facts, t("idea.state"), label("idea_state", idea.state));
  fact(facts, t("measure.city"), cityName(cfg, idea.city_ags));
  fact(facts, t("measure.field"), label("field", idea.action_field));
  fact(facts, t("idea.submitted"), formatDate(idea.created_at));
  fact(facts, t("idea.decided"), formatDate(idea.moderated_at));
  await renderOutcome(idea);
  $("idea").hidden = false;
  renderMap(idea, cfg);
  document.body.dataset.pageState = "ready";
}

main();
