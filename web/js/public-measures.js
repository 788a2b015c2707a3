// The published measures on the public map: thousands of points stay fluid because they are
// clustered (supercluster) and only the clusters and markers in view are drawn.

import { label, t } from "./i18n.js";
import { cssSafe, el, LOCATED } from "./public-common.js";

const L = globalThis.L;
const CLUSTER_RADIUS = 56;
const MAX_CLUSTER_ZOOM = 16;

/** Marker symbol of a status (outline → half → full, so shape carries the meaning too). */
export function statusSymbol(status) {
  return el("span", { className: `mk-symbol mk--${cssSafe(status)}`, attrs: { "aria-hidden": "true" } });
}

/** Legend entries: one per status (in the order of /api/config), the map symbol and the word. */
export function statusLegendItems(statuses) {
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
 * The located measures (exact, approximate) as point features, from the compact format of
 * /api/measures/points (parallel arrays) or from a GeoJSON FeatureCollection.
 */
export function locatedPoints(data) {
  if (data?.format !== "compact") {
    return (data?.features || []).filter(
      (f) => f?.geometry?.type === "Point" && LOCATED.has(f.properties?.location_precision),
    );
  }
  const { id, lon, lat, title, status, action_field: field, city_ags: city } = data;
  const precision = data.location_precision;
  const points = [];
  for (let i = 0; i < id.length; i += 1) {
    if (typeof lon[i] !== "number" || typeof lat[i] !== "number" || !LOCATED.has(precision[i])) continue;
    points.push({
      type: "Feature",
      geometry: { type: "Point", coordinates: [lon[i], lat[i]] },
      properties: {
        id: id[i],
        title: title[i],
        status: status[i],
        action_field: field[i],
        city_ags: city[i],
        location_precision: precision[i],
      },
    });
  }
  return points;
}

const SUPERCLUSTER_SRC = "/vendor/supercluster/dist/supercluster.min.js";
let superclusterLoading = null;

/**
 * supercluster, loaded on first use: the first view is drawn from the server's clusters, so
 * the library is not among the scripts the page waits for before its first paint.
 */
export function loadSupercluster() {
  if (globalThis.Supercluster) return Promise.resolve(globalThis.Supercluster);
  superclusterLoading ||= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = SUPERCLUSTER_SRC;
    script.onload = () => (globalThis.Supercluster ? resolve(globalThis.Supercluster) : reject(new Error("supercluster missing")));
    script.onerror = () => {
      superclusterLoading = null;
      reject(new Error("supercluster could not be loaded"));
    };
    document.head.append(script);
  });
  return superclusterLoading;
}

/**
 * The located points of an answer and their cluster index (needs loadSupercluster() first). Needs no map, so the page can
 * build it as soon as the answer is in, while it still waits for the rest of its start-up.
 */
export function clusterIndex(data) {
  const points = locatedPoints(data);
  const index = new globalThis.Supercluster({ radius: CLUSTER_RADIUS, maxZoom: MAX_CLUSTER_ZOOM });
  index.load(points);
  return { points, index };
}

/**
 * The clusters of /api/measures/points?format=clusters in the shape of a supercluster index,
 * for the zoom levels the server sent: the first view is drawn from them while the page's own
 * index of all points is still being loaded and built. The server computes them with
 * supercluster's algorithm and options, so cluster ids, counts, positions and expansion zooms
 * are the ones the page's index gives and no marker moves when it takes over.
 */
class LevelIndex {
  constructor(body) {
    this.preview = true;
    this.levels = body.levels || {};
    this.points = body.points || {};
    this.expansion = new Map();
    for (const items of Object.values(this.levels)) {
      for (const item of items) if (item[2] > 1) this.expansion.set(item[3], item[4]);
    }
  }

  has(zoom) {
    return Object.hasOwn(this.levels, String(zoom));
  }

  getClusters([west, south, east, north], zoom) {
    const p = this.points;
    const out = [];
    for (const [lon, lat, count, ref] of this.levels[String(zoom)] || []) {
      if (lon < west || lon > east || lat < south || lat > north) continue;
      const geometry = { type: "Point", coordinates: [lon, lat] };
      const properties = count > 1
        ? { cluster: true, cluster_id: ref, point_count: count }
        : {
          id: p.id[ref],
          title: p.title[ref],
          status: p.status[ref],
          action_field: p.action_field[ref],
          city_ags: p.city_ags[ref],
          location_precision: p.location_precision[ref],
        };
      out.push({ type: "Feature", geometry, properties });
    }
    return out;
  }

  getClusterExpansionZoom(clusterId) {
    return this.expansion.get(clusterId) ?? MAX_CLUSTER_ZOOM + 1;
  }
}

/**
 * Clustered measure markers. `setData` takes /api/measures/points (compact or GeoJSON),
 * keeps the located ones (exact, approximate) and draws what is in view; on every draw of new
 * data it sets data-measures-drawn on the map container and a performance mark.
 */
export class MeasureLayer {
  constructor(map, { cityName = () => "" } = {}) {
    this.map = map;
    this.cityName = cityName;
    this.group = L.layerGroup();
    this.index = null;
    this.byId = new Map();
    this.markers = new Map(); // key → marker currently drawn
    this.generation = 0;
    this.visible = true;
    this.group.addTo(map);
    map.on("moveend", () => this.render());
  }

  /** Number of located measures in the current data. */
  get count() {
    return this.byId.size;
  }

  /**
   * Draw the first view from the server's clusters (getMeasureClusters) before the points
   * are in: only if they hold the map's zoom. Sets data-measures-drawn (the number of located
   * measures the clusters represent) and the 'measures-drawn' mark in the frame after; the
   * next setData (the page's own index) keeps the markers that are the same.
   */
  setPreview(body) {
    const preview = new LevelIndex(body);
    if (!preview.has(Math.round(this.map.getZoom()))) return false;
    this.index = preview;
    this.byId = new Map();
    this.group.clearLayers();
    this.markers.clear();
    this.generation += 1;
    const generation = this.generation;
    const container = this.map.getContainer();
    delete container.dataset.measuresDrawn;
    this.render();
    requestAnimationFrame(() => {
      if (generation !== this.generation) return;
      this.previewDrawn = true;
      container.dataset.measuresDrawn = String(body.count);
      performance.mark("measures-drawn");
    });
    return true;
  }

  /** Draw new data: an answer of /api/measures/points or what clusterIndex made of one. */
  setData(data) {
    const { points, index } = data?.index ? data : clusterIndex(data);
    this.byId = new Map(points.map((f) => [String(f.properties.id), f]));
    // After a preview of the same clusters, render() keeps the markers that are already right.
    const afterPreview = Boolean(this.index?.preview && this.previewDrawn);
    this.previewDrawn = false;
    this.index = index;
    if (!afterPreview) {
      this.group.clearLayers();
      this.markers.clear();
    }
    this.generation += 1;
    const generation = this.generation;
    const container = this.map.getContainer();
    if (!afterPreview || container.dataset.measuresDrawn !== String(points.length)) {
      delete container.dataset.measuresDrawn;
    }
    this.render();
    requestAnimationFrame(() => {
      if (generation !== this.generation) return;
      container.dataset.measuresDrawn = String(points.length);
      container.dataset.measuresIndexed = String(points.length);
      performance.mark(afterPreview ? "measures-indexed" : "measures-drawn");
    });
    return points.length;
  }

  setVisible(visible) {
    this.visible = visible;
    if (visible) this.group.addTo(this.map);
    else this.group.remove();
  }

  render() {
    if (!this.index) return;
    const zoom = Math.round(this.map.getZoom());
    if (this.index.preview && !this.index.has(zoom)) return; // keep the preview until the index
    const bounds = this.map.getBounds().pad(0.25);
    const bbox = [bounds.getWest(), bounds.getSouth(), bounds.getEast(), bounds.getNorth()];
    const items = this.index.getClusters(bbox, zoom);
    const wanted = new Map();
    for (const item of items) {
      const props = item.properties;
      const key = props.cluster ? `c${props.cluster_id}:${zoom}` : `m${props.id}`;
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
      const marker = item.properties.cluster ? this.clusterMarker(item) : this.measureMarker(item);
      this.markers.set(key, marker);
      this.group.addLayer(marker);
    }
  }

  clusterMarker(item) {
    const [lon, lat] = item.geometry.coordinates;
    const count = item.properties.point_count;
    const marker = L.marker([lat, lon], {
      icon: clusterIcon(count),
      ariaLabel: t("map.cluster_label", { count }),
      pane: "measureMarkers",
      riseOnHover: true,
    });
    marker.on("add", setLabel);
    const id = item.properties.cluster_id;
    const expansion = this.index.getClusterExpansionZoom(id);
    if (expansion > MAX_CLUSTER_ZOOM) {
      // Measures at (almost) the same place: list them instead of zooming in for ever.
      marker.bindPopup(() => this.leavesPopup(id), { maxWidth: 340, maxHeight: 320 });
    } else {
      marker.on("click", () => this.map.setView([lat, lon], expansion));
    }
    return marker;
  }

  leavesPopup(clusterId) {
    if (this.index.preview) return el("p", { className: "popup", text: t("common.loading") });
    const leaves = this.index.getLeaves(clusterId, 200);
    return el("div", { className: "popup popup--measure" }, [
      el("h3", { className: "popup__title", text: t("map.same_place", { count: leaves.length }) }),
      el(
        "ul",
        { className: "popup__list" },
        leaves.map((leaf) =>
          el("li", {}, [
            statusSymbol(leaf.properties.status),
            el("a", {
              text: leaf.properties.title || t("common.unnamed"),
              attrs: { href: `/massnahmen/${encodeURIComponent(leaf.properties.id)}` },
            }),
          ]),
        ),
      ),
    ]);
  }

  measureMarker(item) {
    const [lon, lat] = item.geometry.coordinates;
    const props = item.properties;
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

  /** Centre the map on a measure and open its popup. */
  show(id) {
    const feature = this.byId.get(String(id));
    if (!feature) return false;
    const [lon, lat] = feature.geometry.coordinates;
    this.map.setView([lat, lon], MAX_CLUSTER_ZOOM + 1, { animate: false });
    this.render();
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
