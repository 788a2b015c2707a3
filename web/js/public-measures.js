// The published measures on the public map: thousands of points stay fluid because they are
// clustered (supercluster, in a Web Worker: public-points.js) and only the clusters and
// markers in view are drawn.

import { label, t } from "./i18n.js";
import { cssSafe, el } from "./public-common.js";

const L = globalThis.L;
const MAX_CLUSTER_ZOOM = 16;
const STATUS_ORDER = ["idee", "geplant", "in_umsetzung", "abgeschlossen", "eingestellt"];

/** Marker symbol of a status (outline → half → full, so shape carries the meaning too). */
export function statusSymbol(status) {
  return el("span", { className: `mk-symbol mk--${cssSafe(status)}`, attrs: { "aria-hidden": "true" } });
}

/** Legend entries: one per status, the map symbol and the word. */
export function statusLegendItems(statuses = STATUS_ORDER) {
  return statuses.map((status) =>
    el("li", { className: "legend-item legend-item--status" }, [
      statusSymbol(status),
      el("span", { className: "legend-item__text", text: label("status", status) }),
    ]),
  );
}

function clusterSize(count) {
  if (count < 10) return "s";
  if (count < 100) return "m";
  if (count < 1000) return "l";
  return "xl";
}

const markerIcons = new Map();
function markerIcon(status) {
  const token = cssSafe(status);
  if (!markerIcons.has(token)) {
    markerIcons.set(
      token,
      L.divIcon({ className: `mk mk--${token}`, iconSize: [22, 22], iconAnchor: [11, 11], html: "" }),
    );
  }
  return markerIcons.get(token);
}

function clusterIcon(count) {
  const size = clusterSize(count);
  const px = { s: 30, m: 36, l: 42, xl: 48 }[size];
  return L.divIcon({
    className: `mk-cluster mk-cluster--${size}`,
    iconSize: [px, px],
    iconAnchor: [px / 2, px / 2],
    html: el("span", { className: "mk-cluster__count", text: count, attrs: { "aria-hidden": "true" } }),
  });
}

/** Popup of one measure: title (as text), status, action field, link to its page. */
function measurePopup(props, cityName) {
  return el("div", { className: "popup popup--measure" }, [
    el("h3", { className: "popup__title", text: props.title || t("common.unnamed") }),
    el("dl", { className: "popup__facts" }, [
      el("dt", { text: t("measure.status") }),
      el("dd", { text: label("status", props.status) }),
      el("dt", { text: t("measure.field") }),
      el("dd", { text: label("field", props.action_field) }),
      el("dt", { text: t("measure.city") }),
      el("dd", { text: cityName(props.city_ags) }),
      el("dt", { text: t("measure.place") }),
      el("dd", { text: label("precision", props.location_precision) }),
    ]),
    el("p", { className: "popup__more" }, [
      el("a", { text: t("measure.open"), attrs: { href: `/massnahmen/${encodeURIComponent(props.id)}` } }),
    ]),
  ]);
}

function setLabel(event) {
  const element = event.target.getElement?.();
  if (element && event.target.options.ariaLabel) {
    element.setAttribute("aria-label", event.target.options.ariaLabel);
  }
}

/**
 * Clustered measure markers. The cluster index lives in a Web Worker (public-points.js):
 * `setData` takes a load of it ({data, count}), and every draw asks the worker for the
 * clusters and markers in view. On every draw of new data it sets data-measures-drawn on the
 * map container and a performance mark, in the frame after the markers are on the map.
 */
export class MeasureLayer {
  constructor(map, { points, cityName = () => "" } = {}) {
    this.map = map;
    this.points = points;
    this.cityName = cityName;
    this.group = L.layerGroup();
    this.data = null; // the worker's name of the current load
    this.located = 0;
    this.markers = new Map(); // key → marker currently drawn
    this.generation = 0;
    this.drawing = 0; // number of the newest draw asked for
    this.unannounced = null; // generation whose first draw is still to be announced
    this.visible = true;
    this.group.addTo(map);
    map.on("moveend", () => this.render());
  }

  /** Number of located measures in the current data. */
  get count() {
    return this.located;
  }

  /** Draw a new load of the points index ({data, count}); returns the number of located measures. */
  setData(load) {
    this.data = load.data;
    this.located = load.count;
    this.group.clearLayers();
    this.markers.clear();
    this.generation += 1;
    this.unannounced = this.generation;
    delete this.map.getContainer().dataset.measuresDrawn;
    this.render();
    return load.count;
  }

  /** After the first draw of new data: data-measures-drawn and the mark, in the next frame. */
  announce() {
    if (this.unannounced !== this.generation) return;
    this.unannounced = null;
    const generation = this.generation;
    requestAnimationFrame(() => {
      if (generation !== this.generation) return;
      this.map.getContainer().dataset.measuresDrawn = String(this.located);
      performance.mark("measures-drawn");
    });
  }

  setVisible(visible) {
    this.visible = visible;
    if (visible) this.group.addTo(this.map);
    else this.group.remove();
  }

  /** Ask the worker for what is in view and draw it; resolves true once drawn (false if overtaken). */
  async render() {
    if (this.data === null) return false;
    const drawing = ++this.drawing;
    const data = this.data;
    const bounds = this.map.getBounds().pad(0.25);
    const bbox = [bounds.getWest(), bounds.getSouth(), bounds.getEast(), bounds.getNorth()];
    const zoom = Math.round(this.map.getZoom());
    let items;
    try {
      items = await this.points.clusters(data, bbox, zoom);
    } catch (err) {
      console.error("measures:", err);
      return false;
    }
    if (!items || drawing !== this.drawing || data !== this.data) return false;
    const wanted = new Map();
    for (const item of items) {
      const key = item.cluster !== undefined ? `c${item.cluster}:${zoom}` : `m${item.properties.id}`;
      wanted.set(key, item);
    }
    for (const [key, marker] of this.markers) {
      if (!wanted.has(key)) {
        this.group.removeLayer(marker);
        this.markers.delete(key);
      }
    }
    for (const [key, item] of wanted) {
      if (this.markers.has(key)) continue;
      const marker = item.cluster !== undefined ? this.clusterMarker(item) : this.measureMarker(item);
      this.markers.set(key, marker);
      this.group.addLayer(marker);
    }
    this.announce();
    return true;
  }

  clusterMarker(item) {
    const { lon, lat, count, expansion } = item;
    const marker = L.marker([lat, lon], {
      icon: clusterIcon(count),
      ariaLabel: t("map.cluster_label", { count }),
      pane: "measureMarkers",
      riseOnHover: true,
    });
    marker.on("add", setLabel);
    if (expansion > MAX_CLUSTER_ZOOM) {
      // Measures at (almost) the same place: list them instead of zooming in for ever.
      marker.bindPopup(() => this.leavesPopup(marker, item.cluster), { maxWidth: 340, maxHeight: 320 });
    } else {
      marker.on("click", () => this.map.setView([lat, lon], expansion));
    }
    return marker;
  }

  /** The list of a cluster's measures; filled in when the worker has answered. */
  leavesPopup(marker, cluster) {
    const title = el("h3", { className: "popup__title", text: t("common.loading") });
    const list = el("ul", { className: "popup__list" });
    const data = this.data;
    this.points.leaves(data, cluster, 200).then(
      (leaves) => {
        if (!leaves) return;
        title.textContent = t("map.same_place", { count: leaves.length });
        list.replaceChildren(
          ...leaves.map((leaf) =>
            el("li", {}, [
              statusSymbol(leaf.status),
              el("a", {
                text: leaf.title || t("common.unnamed"),
                attrs: { href: `/massnahmen/${encodeURIComponent(leaf.id)}` },
              }),
            ]),
          ),
        );
        marker.getPopup()?.update();
      },
      (err) => console.error("measures:", err),
    );
    return el("div", { className: "popup popup--measure" }, [title, list]);
  }

  measureMarker(item) {
    const { lon, lat, properties: props } = item;
    const marker = L.marker([lat, lon], {
      icon: markerIcon(props.status),
      ariaLabel: t("map.marker_label", { title: props.title || "", status: label("status", props.status) }),
      pane: "measureMarkers",
      riseOnHover: true,
    });
    marker.measureId = String(props.id);
    marker.on("add", setLabel);
    marker.bindPopup(() => measurePopup(props, this.cityName), { maxWidth: 320, autoPanPadding: [24, 24] });
    return marker;
  }

  /** Centre the map on a measure and open its popup (resolves false for an unknown one). */
  async show(id) {
    const data = this.data;
    const item = data === null ? null : await this.points.point(data, id);
    if (!item || data !== this.data) return false;
    const { lon, lat } = item;
    this.map.setView([lat, lon], MAX_CLUSTER_ZOOM + 1, { animate: false });
    await this.render();
    const marker = this.markers.get(`m${id}`);
    if (marker) {
      marker.openPopup();
    } else {
      // Still inside a cluster of measures at the same place: open that cluster's list.
      for (const other of this.markers.values()) {
        if (other.getLatLng().equals([lat, lon], 1e-6) && other.getPopup()) other.openPopup();
      }
    }
    return true;
  }
}
