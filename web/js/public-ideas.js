// Ideas (Projektaufruf): anyone places an idea on the map and describes it; nothing is public
// before a moderator has decided. Below the form: what became of the moderated ideas.
// Messages about bad input come from the server (in the page language); titles and texts
// people wrote are only ever set as text.

import { getIdeas, getItems, submitIdea } from "./api.js";
import { formatDate, formatNumber, label, t } from "./i18n.js";
import { addTileLayer, createMap, fitBbox } from "./map.js";
import {
  cityName,
  describeError,
  el,
  ideaBadge,
  initPageWithConfig,
} from "./public-common.js";
import { applyLimits } from "./vocabulary.js";

const L = globalThis.L;
const EXCERPT = 260;
const STATES = ["angenommen", "verknuepft", "abgelehnt"];
// problem+json pointer → form control that gets the message and the focus.
const FIELDS = {
  "/title": "idea-title",
  "/text": "idea-text",
  "/action_field": "idea-field",
  "/contact": "idea-contact",
  "/workshop_code": "idea-workshop-code",
  "/geometry": "idea-use-centre",
};
const ERROR_NODES = {
  "/title": "idea-title-error",
  "/text": "idea-text-error",
  "/action_field": "idea-action_field-error",
  "/contact": "idea-contact-error",
  "/workshop_code": "idea-workshop-code-error",
  "/geometry": "idea-geometry-error",
};

const $ = (id) => document.getElementById(id);
const state = { map: null, config: null, point: null, marker: null, ideas: [], ideaLayer: null };

// ---------------------------------------------------------------- place on the map

function cityAt(lon, lat) {
  return (state.config?.cities || []).find((c) => {
    const [minx, miny, maxx, maxy] = c.bbox || [];
    return lon >= minx && lon <= maxx && lat >= miny && lat <= maxy;
  });
}

function fillFields(ags) {
  const select = $("idea-field");
  const current = select.value;
  const fields = (state.config?.action_fields || {})[ags] || [];
  select.replaceChildren(
    el("option", { text: fields.length ? t("ideas.field_choose") : t("ideas.field_city_first"), attrs: { value: "" } }),
    ...fields.map((f) => el("option", { text: label("field", f), attrs: { value: f } })),
  );
  select.value = fields.includes(current) ? current : "";
}

function setPoint(lon, lat) {
  state.point = [Number(lon.toFixed(6)), Number(lat.toFixed(6))];
  const latlng = [state.point[1], state.point[0]];
  if (!state.marker) {
    state.marker = L.marker(latlng, {
      icon: L.divIcon({ className: "idea-marker idea-marker--new", iconSize: [18, 18], iconAnchor: [9, 9], html: "" }),
      keyboard: false,
      interactive: false,
    }).addTo(state.map);
  } else {
    state.marker.setLatLng(latlng);
  }
  const city = cityAt(state.point[0], state.point[1]);
  if (city && $("idea-city").value !== String(city.ags)) {
    $("idea-city").value = String(city.ags);
    fillFields(String(city.ags));
  }
  const box = $("idea-location");
  box.dataset.set = "true";
  box.textContent = t("ideas.place_set", {
    lat: formatNumber(Number(state.point[1].toFixed(5))),
    lon: formatNumber(Number(state.point[0].toFixed(5))),
    city: city ? city.name : t("ideas.outside"),
  });
  clearError("/geometry");
}

function clearPoint() {
  state.point = null;
  if (state.marker) {
    state.marker.remove();
    state.marker = null;
  }
  const box = $("idea-location");
  box.dataset.set = "false";
  box.textContent = t("ideas.no_place");
}

function onCityChange(event) {
  const ags = event.target.value;
  fillFields(ags);
  const city = (state.config?.cities || []).find((c) => String(c.ags) === ags);
  if (city) fitBbox(state.map, city.bbox);
}

// ---------------------------------------------------------------- errors

function clearError(pointer) {
  const node = $(ERROR_NODES[pointer]);
  if (node) {
    node.textContent = "";
    node.hidden = true;
  }
  const control = $(FIELDS[pointer]);
  if (control && control.id !== "idea-use-centre") control.removeAttribute("aria-invalid");
}

function clearErrors() {
  for (const pointer of Object.keys(ERROR_NODES)) clearError(pointer);
  $("idea-errors").hidden = true;
  $("idea-error-list").replaceChildren();
}

function showErrors(problems) {
  clearErrors();
  const items = [];
  for (const problem of problems) {
    const pointer = problem.pointer || "";
    const text = problem.problem || "";
    const node = $(ERROR_NODES[pointer]);
    if (node) {
      node.textContent = text;
      node.hidden = false;
    }
    const control = $(FIELDS[pointer]);
    if (control && control.id !== "idea-use-centre") control.setAttribute("aria-invalid", "true");
    const target = control ? control.id : "idea-title";
    const link = el("a", { text, attrs: { href: `#${target}` } });
    link.addEventListener("click", (event) => {
      event.preventDefault();
      $(target).focus();
    });
    items.push(el("li", { dataset: { pointer } }, [link]));
  }
  $("idea-error-list").replaceChildren(...items);
  $("idea-errors").hidden = false;
  $("idea-errors").focus();
}

// ---------------------------------------------------------------- submit

function updateCount() {
  const length = $("idea-text").value.length;
  $("idea-text-count").textContent = t("ideas.count", { count: length, max: formatNumber($("idea-text").maxLength) });
}

async function onSubmit(event) {
  event.preventDefault();
  const button = $("idea-submit");
  if (button.disabled) return;
  $("idea-success").hidden = true;
  const idea = {
    title: $("idea-title").value,
    text: $("idea-text").value,
    action_field: $("idea-field").value,
    website: $("idea-website").value,
  };
  const contact = $("idea-contact").value.trim();
  if (contact) idea.contact = contact;
  const code = $("idea-workshop-code").value.trim();
  if (code) idea.workshop_code = code;
  if (state.point) idea.geometry = { type: "Point", coordinates: state.point };
  button.disabled = true;
  document.body.dataset.submit = "sending";
  try {
    const result = await submitIdea(idea);
    clearErrors();
    $("idea-form").reset();
    $("idea-workshop-code").value = code; // the next person at the workshop uses it too
    clearPoint();
    fillFields($("idea-city").value);
    updateCount();
    const notice = $("idea-success");
    const parts = [
      el("h3", { text: t("ideas.thanks_title") }),
      el("p", { text: result?.message || t("ideas.thanks") }),
      el("p", { text: t("ideas.thanks_next") }),
      result?.id
        ? el("p", {}, [
            el("span", { text: t("ideas.follow") }),
            document.createTextNode(" "),
            el("a", { text: t("ideas.follow_link", { id: result.id }), attrs: { href: `/ideen/${encodeURIComponent(result.id)}`, id: "idea-follow" } }),
          ])
        : null,
    ];
    notice.replaceChildren(...parts.filter(Boolean));
    notice.hidden = false;
    notice.focus();
    document.body.dataset.submit = "sent";
  } catch (err) {
    const body = err.body || {};
    if (err.status === 422 && Array.isArray(body.errors) && body.errors.length) {
      showErrors(body.errors);
    } else if (err.status === 429) {
      showErrors([{ pointer: "", problem: body.detail || t("ideas.too_many") }]);
    } else {
      showErrors([{ pointer: "", problem: t("ideas.failed", { reason: describeError(err) }) }]);
    }
    document.body.dataset.submit = "error";
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------- list of moderated ideas

function excerpt(text) {
  const value = String(text || "").trim();
  return value.length > EXCERPT ? `${value.slice(0, EXCERPT - 1).trimEnd()}…` : value;
}

function outcome(idea) {
  if (idea.state === "abgelehnt" && idea.public_reason) {
    return el("p", { className: "idea-card__outcome" }, [
      el("strong", { text: t("ideas.reason") }),
      document.createTextNode(" "),
      el("span", { className: "idea-card__reason", text: idea.public_reason }),
    ]);
  }
  if (idea.state === "verknuepft" && idea.measure_id) {
    return el("p", { className: "idea-card__outcome" }, [
      el("a", { text: t("ideas.to_measure"), attrs: { href: `/massnahmen/${encodeURIComponent(idea.measure_id)}` } }),
    ]);
  }
  if (idea.public_reason) {
    return el("p", { className: "idea-card__outcome", text: idea.public_reason });
  }
  return null;
}

function ideaCard(idea) {
  const titleId = `idea-${idea.id}`;
  return el("li", { dataset: { id: String(idea.id), state: idea.state || "" } }, [
    el("article", { className: "idea-card", attrs: { "aria-labelledby": titleId } }, [
      el("h3", {}, [
        el("a", { text: idea.title || t("common.unnamed"), attrs: { id: titleId, href: `/ideen/${encodeURIComponent(idea.id)}` } }),
      ]),
      el("p", { className: "idea-card__meta" }, [
        ideaBadge(idea.state),
        el("span", { text: cityName(state.config, idea.city_ags) }),
        el("span", { text: label("field", idea.action_field) }),
        el("span", { text: formatDate(idea.created_at) }),
      ]),
      el("p", { className: "idea-card__text", text: excerpt(idea.text) }),
      outcome(idea),
    ]),
  ]);
}

function renderIdeas() {
  const wantedState = $("ideas-state").value;
  const wantedCity = $("ideas-city").value;
  const shown = state.ideas.filter(
    (idea) => (!wantedState || idea.state === wantedState) && (!wantedCity || idea.city_ags === wantedCity),
  );
  $("idea-list").replaceChildren(...shown.map(ideaCard));
  const summary = $("ideas-summary");
  summary.textContent = shown.length ? t("ideas.shown", { count: shown.length }) : t("ideas.none");
  summary.dataset.count = String(shown.length);
  drawIdeaMarkers(shown);
}

function drawIdeaMarkers(ideas) {
  if (!state.ideaLayer) return;
  state.ideaLayer.clearLayers();
  for (const idea of ideas) {
    const coords = idea.geometry?.coordinates;
    if (!Array.isArray(coords) || coords.length !== 2) continue;
    const marker = L.marker([coords[1], coords[0]], {
      icon: L.divIcon({ className: "idea-marker", iconSize: [18, 18], iconAnchor: [9, 9], html: "" }),
      keyboard: false,
    });
    marker.bindPopup(() =>
      el("div", { className: "popup" }, [
        el("h3", { className: "popup__title", text: idea.title || t("common.unnamed") }),
        el("p", {}, [ideaBadge(idea.state)]),
        el("p", { className: "popup__more" }, [
          el("a", { text: t("ideas.open"), attrs: { href: `/ideen/${encodeURIComponent(idea.id)}` } }),
        ]),
      ]),
    );
    state.ideaLayer.addLayer(marker);
  }
}

async function loadIdeas() {
  try {
    const body = await getIdeas();
    state.ideas = Array.isArray(body?.ideas) ? body.ideas : [];
    renderIdeas();
    document.body.dataset.ideas = "ready";
  } catch (err) {
    console.error("ideas:", err);
    $("ideas-summary").textContent = t("ideas.list_failed", { reason: describeError(err) });
    document.body.dataset.ideas = "error";
  }
}

// ---------------------------------------------------------------- start

function fillSelect(select, allText, entries) {
  select.replaceChildren(
    el("option", { text: allText, attrs: { value: "" } }),
    ...entries.map(([value, text]) => el("option", { text, attrs: { value } })),
  );
}

async function main() {
  state.config = await initPageWithConfig();
  applyLimits(state.config?.limits?.idea, "idea-");
  const cities = state.config?.cities || [];
  fillSelect($("idea-city"), t("ideas.city_choose"), cities.map((c) => [String(c.ags), c.name]));
  fillSelect($("ideas-city"), t("filter.all_cities"), cities.map((c) => [String(c.ags), c.name]));
  fillSelect($("ideas-state"), t("ideas.all_states"), STATES.map((s) => [s, label("idea_state", s)]));
  fillFields("");
  updateCount();

  $("idea-form").addEventListener("submit", onSubmit);
  $("idea-city").addEventListener("change", onCityChange);
  $("idea-text").addEventListener("input", updateCount);
  // A workshop's link (/ideas.html?code=…) fills in its code.
  const preset = new URLSearchParams(window.location.search).get("code");
  if (preset) $("idea-workshop-code").value = preset.slice(0, 40);
  $("ideas-state").addEventListener("change", renderIdeas);
  $("ideas-city").addEventListener("change", renderIdeas);
  for (const [pointer, id] of Object.entries(FIELDS)) {
    if (id !== "idea-use-centre") $(id).addEventListener("input", () => clearError(pointer));
  }

  if (L) {
    state.map = createMap($("idea-map"));
    state.ideaLayer = L.layerGroup().addTo(state.map);
    const halle = cities.find((c) => c.ags === "15002000") || cities[0];
    if (halle) fitBbox(state.map, halle.bbox, { animate: false });
    else state.map.setView([51.18, 12.02], 9);
    if (state.config?.tile_url) {
      addTileLayer(state.map, state.config.tile_url, state.config.tile_attribution || "", () => {
        $("idea-map").classList.add("map--no-tiles");
        $("idea-map-note").textContent = t("ideas.tiles_failed");
      });
    }
    state.map.on("click", (event) => setPoint(event.latlng.lng, event.latlng.lat));
    $("idea-use-centre").addEventListener("click", () => {
      const c = state.map.getCenter();
      setPoint(c.lng, c.lat);
    });
    getItems("municipalities", { project_city: true })
      .then((outlines) =>
        L.geoJSON(outlines, { style: { color: "#1f1f1f", weight: 2.5, fill: false }, interactive: false }).addTo(state.map),
      )
      .catch((err) => console.error("municipalities:", err));
  }
  if (location.hash === "#idea-form-heading") $("idea-form-heading").focus();
  document.body.dataset.pageState = "ready";
  await loadIdeas();
}

main();
