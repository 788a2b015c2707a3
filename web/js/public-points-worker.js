// The cluster index of the public map, off the page's main thread (a classic Web Worker,
// same origin, so the page's CSP script-src 'self' covers it and its importScripts).
//
// The page fetches /api/measures/points?format=compact (index.html preloads the first one) and
// hands over the raw bytes (a transferred ArrayBuffer, no copy); the JSON is parsed here, not
// on the page. The worker keeps the located measures (exact, approximate), builds the
// supercluster index and answers the page's small questions: the clusters and markers in a
// view, the measures of a cluster, one measure by id. Protocol (public-points.js is the page's
// end):
//
//   page → worker {id, type: "load", data, body}           → {id, ok, count, total}
//   page → worker {id, type: "clusters", data, bbox, zoom} → {id, ok, items}
//   page → worker {id, type: "leaves", data, cluster, limit} → {id, ok, items}
//   page → worker {id, type: "point", data, measure}      → {id, ok, item | null}
//
// `data` names one load; only the latest load is kept, questions about an older one are
// answered with {ok: false, stale: true}. Failures answer {ok: false, status, message}.

"use strict";

const CLUSTER_RADIUS = 56;
const MAX_CLUSTER_ZOOM = 16;
const LOCATED = new Set(["exact", "approximate"]);
const PROPERTIES = ["id", "title", "status", "action_field", "city_ags", "location_precision"];

// Loaded as soon as the worker starts, while the page still waits for the points.
importScripts("/vendor/supercluster/dist/supercluster.min.js");

let latestLoad = 0; // data id of the newest load handed over
let current = null; // {data, index, byId}

/** The located measures of a compact answer as GeoJSON point features. */
function locatedFeatures(body) {
  const { lon, lat, location_precision: precision } = body;
  const features = [];
  for (let i = 0; i < body.id.length; i += 1) {
    if (typeof lon[i] !== "number" || typeof lat[i] !== "number" || !LOCATED.has(precision[i])) continue;
    const properties = {};
    for (const name of PROPERTIES) properties[name] = body[name]?.[i] ?? null;
    features.push({ type: "Feature", geometry: { type: "Point", coordinates: [lon[i], lat[i]] }, properties });
  }
  return features;
}

class RequestFailed extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

function load({ data, body: bytes }) {
  latestLoad = Math.max(latestLoad, data);
  let body;
  try {
    body = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new RequestFailed(`invalid JSON: ${err.message}`, 200);
  }
  if (!body || body.format !== "compact" || !Array.isArray(body.id)) {
    throw new RequestFailed("not the compact points format", 200);
  }
  const features = locatedFeatures(body);
  if (data < latestLoad) return { stale: true };
  const index = new self.Supercluster({ radius: CLUSTER_RADIUS, maxZoom: MAX_CLUSTER_ZOOM });
  index.load(features);
  const byId = new Map(features.map((f) => [String(f.properties.id), f]));
  current = { data, index, byId };
  return { count: features.length, total: body.id.length };
}

function dataset(data) {
  if (!current || current.data !== data) throw Object.assign(new Error("stale"), { stale: true });
  return current;
}

/** What the page draws: clusters (with the zoom that splits them) and single measures. */
function clusters({ data, bbox, zoom }) {
  const { index } = dataset(data);
  const items = index.getClusters(bbox, zoom).map((item) => {
    const [lon, lat] = item.geometry.coordinates;
    const props = item.properties;
    if (!props.cluster) return { lon, lat, properties: props };
    return {
      lon,
      lat,
      cluster: props.cluster_id,
      count: props.point_count,
      expansion: index.getClusterExpansionZoom(props.cluster_id),
    };
  });
  return { items };
}

function leaves({ data, cluster, limit }) {
  const { index } = dataset(data);
  return { items: index.getLeaves(cluster, limit).map((leaf) => leaf.properties) };
}

function point({ data, measure }) {
  const feature = dataset(data).byId.get(String(measure));
  if (!feature) return { item: null };
  const [lon, lat] = feature.geometry.coordinates;
  return { item: { lon, lat, properties: feature.properties } };
}

const HANDLERS = { load, clusters, leaves, point };

self.onmessage = async (event) => {
  const message = event.data || {};
  const handler = HANDLERS[message.type];
  try {
    if (!handler) throw new RequestFailed(`unknown request ${message.type}`, 0);
    const answer = await handler(message);
    self.postMessage({ id: message.id, ok: !answer.stale, ...answer });
  } catch (err) {
    self.postMessage({
      id: message.id,
      ok: false,
      stale: Boolean(err.stale),
      status: err.status ?? 0,
      message: String(err.message || err),
    });
  }
};
