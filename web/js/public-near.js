// Near me: a click on the map, the map centre, the browser's location or a Stadtviertel by
// name; /api/near answers with the measures within the radius (metres, computed in the
// database), nearest first, and the district's pilot-quarter membership.

import { feedHref, getNear } from "./api.js";
import { formatDistance, formatList, formatNumber, formatPercent, label, t } from "./i18n.js";
import { describeError, el, statusBadge } from "./public-common.js";

const L = globalThis.L;
const RADII = [250, 500, 1000, 2000, 5000, 10000];
const DEFAULT_RADIUS = 1000;

const $ = (id) => document.getElementById(id);

export function setupNear({ map, onChange, params }) {
  const state = { place: null, result: null, picking: false, layer: L.layerGroup().addTo(map), request: 0 };
  const section = $("near-section");
  const message = $("near-message");

  const radiusSelect = $("near-radius");
  radiusSelect.replaceChildren(
    ...RADII.map((r) => el("option", { text: formatDistance(r), attrs: { value: r } })),
  );
  const wantedRadius = Number(params.get("r"));
  radiusSelect.value = String(RADII.includes(wantedRadius) ? wantedRadius : DEFAULT_RADIUS);

  function radius() {
    return Number(radiusSelect.value) || DEFAULT_RADIUS;
  }

  function say(text, kind = "info") {
    message.textContent = text;
    message.dataset.kind = kind;
  }

  function setPicking(on) {
    state.picking = on;
    $("near-pick").setAttribute("aria-pressed", String(on));
    map.getContainer().classList.toggle("map--picking", on);
    if (on) say(t("near.pick_hint"));
  }

  function drawPlace(result, fit) {
    state.layer.clearLayers();
    const centre = [result.point.lat, result.point.lon];
    const circle = L.circle(centre, {
      radius: result.radius_m,
      pane: "near",
      className: "near-circle",
      color: "#12414a",
      weight: 2,
      dashArray: "6 4",
      fillColor: "#12414a",
      fillOpacity: 0.06,
      interactive: false,
    });
    const dot = L.circleMarker(centre, {
      radius: 6,
      pane: "near",
      className: "near-centre",
      color: "#ffffff",
      weight: 2,
      fillColor: "#c8102e",
      fillOpacity: 1,
      interactive: false,
    });
    state.layer.addLayer(circle).addLayer(dot);
    if (fit) map.fitBounds(circle.getBounds(), { padding: [24, 24], animate: false });
  }

  function placeHeading(result) {
    const district = result.district;
    const city = result.city?.name;
    if (state.place?.district && district) return t("near.place_district", { name: district.name, city: city || "" });
    if (district) return t("near.place_point_in", { name: district.name, city: city || "" });
    if (city) return t("near.place_city", { city });
    return t("near.place_outside");
  }

  function quartersText(result) {
    const district = result.district;
    if (!district) return "";
    const quarters = Array.isArray(district.quarters) ? district.quarters : [];
    if (!quarters.length) return t("near.no_quarter", { name: district.name });
    const parts = quarters.map((q) =>
      t("near.quarter_share", { name: q.name, share: formatPercent(Number(q.share) || 0) }),
    );
    return t("near.in_quarters", { name: district.name, list: formatList(parts) });
  }

  function measureItem(m) {
    return el("li", { className: "near-item", dataset: { id: String(m.id), distance: String(m.distance_m) } }, [
      el("a", { text: m.title || t("common.unnamed"), attrs: { href: `/massnahmen/${encodeURIComponent(m.id)}` } }),
      el("span", { className: "near-item__meta" }, [
        el("span", { className: "near-item__distance", text: formatDistance(m.distance_m) }),
        statusBadge(m.status),
        el("span", { text: label("field", m.action_field) }),
      ]),
    ]);
  }

  function render(result, fit) {
    state.result = result;
    $("near-results").hidden = false;
    $("near-place").textContent = placeHeading(result);
    const quarters = quartersText(result);
    $("near-quarters").textContent = quarters;
    $("near-quarters").hidden = !quarters;
    const feed = state.place.district
      ? { district: state.place.district }
      : { lon: result.point.lon.toFixed(5), lat: result.point.lat.toFixed(5), radius: result.radius_m };
    $("near-feed").href = feedHref(feed);
    const measures = Array.isArray(result.measures) ? result.measures : [];
    $("near-list-heading").textContent = t("near.count", {
      count: measures.length,
      radius: formatDistance(result.radius_m),
    });
    $("near-list").replaceChildren(...measures.map(measureItem));
    const cityWide = Array.isArray(result.city_wide) ? result.city_wide : [];
    $("near-citywide-box").hidden = cityWide.length === 0;
    $("near-citywide-heading").textContent = t("near.citywide", {
      count: cityWide.length,
      city: result.city?.name || "",
    });
    $("near-citywide").replaceChildren(
      ...cityWide.map((m) =>
        el("li", { className: "near-item" }, [
          el("a", { text: m.title || t("common.unnamed"), attrs: { href: `/massnahmen/${encodeURIComponent(m.id)}` } }),
          el("span", { className: "near-item__meta" }, [
            statusBadge(m.status),
            el("span", { text: label("precision", m.location_precision) }),
          ]),
        ]),
      ),
    );
    say(t("near.done", { count: measures.length, radius: formatDistance(result.radius_m) }), "ready");
    section.dataset.state = "ready";
    drawPlace(result, fit);
  }

  async function run(place, { fit = true } = {}) {
    const request = ++state.request;
    state.place = place;
    section.open = true;
    section.dataset.state = "loading";
    say(t("near.loading"));
    const query = place.district
      ? { district: place.district, radius: radius() }
      : { lon: place.lon.toFixed(6), lat: place.lat.toFixed(6), radius: radius() };
    try {
      const result = await getNear(query);
      if (request !== state.request) return;
      render(result, fit);
    } catch (err) {
      if (request !== state.request) return;
      console.error("near:", err);
      section.dataset.state = "error";
      say(t("near.failed", { reason: describeError(err) }), "error");
    }
    onChange();
  }

  function clear() {
    state.request += 1;
    state.place = null;
    state.result = null;
    state.layer.clearLayers();
    $("near-results").hidden = true;
    section.dataset.state = "";
    say("");
    setPicking(false);
    onChange();
    $("near-pick").focus();
  }

  $("near-pick").addEventListener("click", () => setPicking(!state.picking));
  $("near-centre").addEventListener("click", () => {
    setPicking(false);
    const c = map.getCenter();
    run({ lon: c.lng, lat: c.lat });
  });
  $("near-locate").addEventListener("click", () => {
    setPicking(false);
    if (!navigator.geolocation) {
      say(t("near.locate_unsupported"), "error");
      return;
    }
    say(t("near.locating"));
    navigator.geolocation.getCurrentPosition(
      (position) => run({ lon: position.coords.longitude, lat: position.coords.latitude }),
      () => say(t("near.locate_failed"), "error"),
      { enableHighAccuracy: false, timeout: 15000, maximumAge: 60000 },
    );
  });
  $("near-district-go").addEventListener("click", () => {
    const id = $("near-district").value;
    if (!id) {
      say(t("near.choose_district"), "error");
      $("near-district").focus();
      return;
    }
    setPicking(false);
    run({ district: id });
  });
  radiusSelect.addEventListener("change", () => {
    if (state.place) run(state.place);
  });
  $("near-clear").addEventListener("click", clear);
  // In picking mode a click anywhere on the map (also on an outline or a marker) chooses the
  // place: listen on the container in the capture phase, before Leaflet's own handlers.
  const container = map.getContainer();
  let down = null;
  container.addEventListener("pointerdown", (event) => {
    down = [event.clientX, event.clientY];
  }, true);
  container.addEventListener("click", (event) => {
    if (!state.picking || event.target.closest(".leaflet-control")) return;
    const moved = down && Math.hypot(event.clientX - down[0], event.clientY - down[1]) > 5;
    if (moved) return; // the end of a pan, not a choice
    event.stopPropagation();
    event.preventDefault();
    setPicking(false);
    const latlng = map.mouseEventToLatLng(event);
    run({ lon: latlng.lng, lat: latlng.lat });
  }, true);
  // Escape leaves the picking mode.
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && state.picking) {
      setPicking(false);
      say("");
    }
  });

  // Restore a place from the permalink: near=lon,lat or near=d<id>.
  const near = params.get("near") || "";
  const district = /^d(\d{1,9})$/.exec(near);
  const point = near.split(",").map(Number);
  const fit = !params.get("map");
  if (district) run({ district: district[1] }, { fit });
  else if (point.length === 2 && point.every(Number.isFinite)) run({ lon: point[0], lat: point[1] }, { fit });

  return {
    urlParams() {
      if (!state.place) return { near: null, r: null };
      const value = state.place.district
        ? `d${state.place.district}`
        : `${state.place.lon.toFixed(5)},${state.place.lat.toFixed(5)}`;
      return { near: value, r: String(radius()) };
    },
    setDistricts(districts) {
      const select = $("near-district");
      const current = select.value || (district ? district[1] : "");
      select.replaceChildren(
        el("option", { text: t("near.district_choose"), attrs: { value: "" } }),
        ...districts.map((d) => el("option", { text: d.name, attrs: { value: String(d.id) } })),
      );
      select.value = current;
    },
    formatNumber,
  };
}
