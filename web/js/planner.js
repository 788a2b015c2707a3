// Planning page: sign-in, the measures on the map, the form, saving with ETags, publishing,
// deleting, history and the conflict dialogue when a colleague changed the measure meanwhile.

import { getConfig, getItems, getSources } from "./api.js";
import { $, element } from "./core/dom.js";
import { has, label, startPage, t } from "./i18n.js";
import * as api from "./planner-api.js";
import {
  FIELD_LABELS,
  RECORD_FIELDS,
  changedFields,
  clearErrors,
  describeGeometry,
  fillForm,
  fillParentOptions,
  formatDateTime,
  formatValue,
  normaliseRecord,
  readForm,
  serverErrors,
  setupForm,
  showErrors,
  problemText,
  toProperties,
  validateRecord,
} from "./planner-form.js";
import {
  addAttributions,
  addBackground,
  addContext,
  clearPending,
  createPointAtCentre,
  fitCity,
  getMap,
  initMap,
  renderLegend,
  renderMeasures,
  selectOnMap,
  setEditing,
} from "./planner-map.js";

const HALLE_AGS = "15002000";
const EDIT_ROLES = new Set(["planner", "admin"]);
const KEY_FIELDS = ["title", "summary", "status", "action_field", "start_date", "end_date"];

const app = {
  config: null,
  cities: new Map(), // ags -> {ags, name, bbox}
  quarterNames: new Map(), // slug -> name
  user: null,
  canEdit: false,
  features: [], // list of measures (GeoJSON features)
  current: null, // the measure in the form (see loadIntoForm / startNew)
  dirty: false,
  busy: false,
  conflict: null,
};

// ---------------------------------------------------------------- status line

/** The one status line (role="status"): kind info | success | error. */
function setStatus(text, kind = "info") {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("status--error", kind === "error");
  status.classList.toggle("status--success", kind === "success");
  status.dataset.kind = kind;
}

function describeFailure(err) {
  if (!err || err.status === undefined) return t("planner.fail_unknown");
  if (err.status === 0) return t("planner.fail_offline");
  if ([401, 403, 404].includes(err.status)) return t(`planner.fail_${err.status}`);
  if (err.status >= 500) return t("planner.fail_server", { status: err.status });
  return `HTTP ${err.status}`;
}

function cityName(ags) {
  return app.cities.get(ags)?.name || ags;
}

function measureTitle(id) {
  return app.features.find((f) => f.properties?.id === id)?.properties?.title || null;
}

const FORMAT_CONTEXT = { cityName, measureTitle };

// ---------------------------------------------------------------- busy / dirty / buttons

function setBusy(busy) {
  app.busy = busy;
  $("measure-form").setAttribute("aria-busy", busy ? "true" : "false");
  document.body.dataset.plannerBusy = busy ? "true" : "false";
  updateButtons();
}

function updateButtons() {
  const current = app.current;
  const locked = app.busy || !app.canEdit || app.conflict !== null;
  const isNew = current && current.id === null;
  const published = Boolean(current?.published);
  $("save-button").disabled = locked || !current;
  $("save-button").textContent = t(published ? "planner.save_changes" : "planner.save_draft");
  $("publish-button").disabled = locked || !current;
  $("publish-button").textContent = t(published ? "planner.withdraw" : "planner.publish");
  $("delete-button").disabled = locked || !current;
  $("delete-button").textContent = t(isNew ? "planner.discard" : "planner.delete");
  $("new-point-button").disabled = !app.canEdit || app.busy;
  $("conflict-reapply").disabled = app.busy;
  $("conflict-reload").disabled = app.busy;
}

function computeDirty() {
  const current = app.current;
  if (!current) return false;
  if (current.id === null || current.geometryChanged) return true;
  return changedFields(current.baseline, readForm()).length > 0;
}

function refreshDirty() {
  app.dirty = computeDirty();
  // A new measure says "Neu – noch nicht gespeichert" already.
  $("form-dirty").hidden = !app.dirty || app.current?.id === null;
  document.body.dataset.dirty = app.dirty ? "true" : "false";
}

// ---------------------------------------------------------------- confirmation dialog

/** A modal question (native <dialog>): resolves to true when confirmed. */
function confirmAction({ title, text, confirmLabel, danger = true }) {
  const dialog = $("confirm-dialog");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = confirmLabel;
  $("confirm-ok").classList.toggle("button--danger", danger);
  $("confirm-ok").classList.toggle("button--primary", !danger);
  const opener = document.activeElement;
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        resolve(dialog.returnValue === "ok");
        if (opener && document.contains(opener)) opener.focus();
      },
      { once: true },
    );
    dialog.returnValue = "cancel";
    dialog.showModal();
    $("confirm-cancel").focus();
  });
}

async function confirmDiscard() {
  if (!app.dirty) return true;
  return confirmAction({
    title: t("planner.discard_title"),
    text: t("planner.discard_text"),
    confirmLabel: t("planner.discard_ok"),
  });
}

// ---------------------------------------------------------------- measures list

function measureOptionText(p) {
  const state = p.published ? t("planner.published_lower") : t("planner.draft");
  return t("planner.measure_option", { title: p.title || t("planner.untitled"), status: label("status", p.status), state, id: p.id });
}

function fillMeasureSelect() {
  const select = $("measure-select");
  const options = [new Option(t("planner.none_selected"), "")];
  const groups = new Map();
  for (const f of app.features) {
    const p = f.properties || {};
    if (!groups.has(p.city_ags)) groups.set(p.city_ags, []);
    groups.get(p.city_ags).push(p);
  }
  for (const [ags, list] of groups) {
    const group = document.createElement("optgroup");
    group.label = `${cityName(ags)} (${list.length})`;
    list.sort((a, b) => String(a.title).localeCompare(String(b.title), "de"));
    for (const p of list) group.appendChild(new Option(measureOptionText(p), String(p.id)));
    options.push(group);
  }
  select.replaceChildren(...options);
  select.value = app.current?.id ? String(app.current.id) : "";
}

async function loadMeasures() {
  try {
    app.features = await api.listMeasures();
  } catch (err) {
    console.error("measures:", err);
    setStatus(t("planner.measures_failed", { reason: describeFailure(err) }), "error");
    return false;
  }
  redrawMeasures();
  if (app.current?.id) selectOnMap(app.current.id);
  document.body.dataset.measures = String(app.features.length);
  return true;
}

/** Draw app.features: map, legend and the measure list. */
function redrawMeasures() {
  renderMeasures(app.features);
  renderLegend({
    statuses: app.config?.statuses,
    actionFields: app.config?.action_fields,
    cities: [...app.cities.values()],
    features: app.features,
  });
  fillMeasureSelect();
}

/** Put a saved feature into the list and onto the map without reloading everything. */
function upsertFeature(feature) {
  const index = app.features.findIndex((f) => f.properties?.id === feature.properties.id);
  if (index >= 0) app.features[index] = feature;
  else app.features.push(feature);
  redrawMeasures();
}

function removeFeature(id) {
  app.features = app.features.filter((f) => f.properties?.id !== id);
  renderMeasures(app.features);
  fillMeasureSelect();
}

// ---------------------------------------------------------------- the form

function showForm(visible) {
  $("measure-form").hidden = !visible;
  $("empty-state").hidden = visible;
}

function renderHeader() {
  const current = app.current;
  const props = current.feature?.properties || {};
  $("form-heading").textContent = current.id === null ? t("planner.new_measure") : t("planner.measure_no", { id: current.id });
  const badge = $("form-badge");
  badge.className = "badge";
  if (current.id === null) {
    badge.textContent = t("planner.badge_new");
    badge.classList.add("badge--new");
  } else if (current.published) {
    badge.textContent = t("planner.badge_published");
    badge.classList.add("badge--published");
  } else {
    badge.textContent = t("planner.draft");
    badge.classList.add("badge--draft");
  }
  $("form-version").textContent = current.id === null
    ? ""
    : props.updated_at
      ? t("planner.version_changed", { version: props.version, at: formatDateTime(props.updated_at) })
      : t("planner.version", { version: props.version });
  const places = [];
  const quarters = Array.isArray(props.quarters) ? props.quarters : [];
  if (quarters.length) places.push(t("planner.places_quarter", { names: quarters.map((s) => app.quarterNames.get(s) || s).join(", ") }));
  const districts = Array.isArray(props.districts) ? props.districts : [];
  if (districts.length) places.push(t("planner.places_district", { names: districts.map((d) => d?.name).filter(Boolean).join(", ") }));
  $("form-places").textContent = places.join(" · ");
  $("form-places").hidden = places.length === 0;
  $("measure-form").dataset.measureId = current.id === null ? "new" : String(current.id);
  document.body.dataset.selectedId = current.id === null ? "new" : String(current.id);
}

function renderGeometryInfo() {
  const current = app.current;
  let text = describeGeometry(current.geometry);
  if (current.id !== null && current.geometryChanged) text = t("planner.geometry_unsaved", { geometry: text });
  $("f-geometry").textContent = text;
}

/** Load a measure from the server into the form (the ETag is kept for the next change). */
function loadIntoForm(feature, etag) {
  const props = feature.properties || {};
  app.current = {
    id: props.id,
    etag,
    feature,
    baseline: normaliseRecord(props),
    geometry: feature.geometry,
    geometryChanged: false,
    published: Boolean(props.published),
  };
  clearErrors();
  fillParentOptions(app.features, props.city_ags, props.id, props.parent_id ?? null);
  fillForm(app.current.baseline);
  renderHeader();
  renderGeometryInfo();
  showForm(true);
  refreshDirty();
  updateButtons();
  $("measure-select").value = String(props.id);
  selectOnMap(props.id);
}

function cityForGeometry(geometry) {
  const positions = [];
  const walk = (node) => {
    if (Array.isArray(node) && typeof node[0] === "number") positions.push(node);
    else if (Array.isArray(node)) node.forEach(walk);
  };
  walk(geometry?.coordinates);
  if (!positions.length) return null;
  const lon = positions.reduce((s, p) => s + p[0], 0) / positions.length;
  const lat = positions.reduce((s, p) => s + p[1], 0) / positions.length;
  let best = null;
  let bestDistance = Infinity;
  for (const city of app.cities.values()) {
    const [minx, miny, maxx, maxy] = city.bbox;
    if (lon >= minx && lon <= maxx && lat >= miny && lat <= maxy) return city.ags;
    const d = Math.hypot(lon - (minx + maxx) / 2, lat - (miny + maxy) / 2);
    if (d < bestDistance) {
      bestDistance = d;
      best = city.ags;
    }
  }
  return best;
}

/** A new measure from a drawn geometry (the form keeps what was typed for a redrawn shape). */
function startNew(geometry) {
  if (app.current && app.current.id === null) {
    app.current.geometry = geometry;
    renderGeometryInfo();
    refreshDirty();
    setStatus(t("planner.drawing_replaced"));
    return;
  }
  const ags = cityForGeometry(geometry) || HALLE_AGS;
  const record = normaliseRecord({ city_ags: ags, status: "idee", location_precision: "exact" });
  app.current = {
    id: null,
    etag: null,
    feature: null,
    baseline: record,
    geometry,
    geometryChanged: true,
    published: false,
  };
  hideConflict();
  clearErrors();
  fillParentOptions(app.features, ags, null, null);
  fillForm(record);
  renderHeader();
  renderGeometryInfo();
  showForm(true);
  refreshDirty();
  updateButtons();
  renderHistory(null);
  $("measure-select").value = "";
  selectOnMap(null);
  setStatus(t("planner.new_started", { geometry: describeGeometry(geometry), city: cityName(ags) }));
  $("f-title").focus();
}

/** Undo an unsaved reshape on the map (the layers are redrawn from the saved features). */
function resetEditedGeometry() {
  if (app.current && app.current.id !== null && app.current.geometryChanged) {
    app.current.geometryChanged = false;
    renderMeasures(app.features);
  }
}

function closeForm() {
  resetEditedGeometry();
  app.current = null;
  clearPending();
  clearErrors();
  hideConflict();
  showForm(false);
  renderHistory(null);
  refreshDirty();
  updateButtons();
  $("measure-select").value = "";
  delete document.body.dataset.selectedId;
  selectOnMap(null);
}

/** Select a measure (map click or list): GET with ETag, then into the form. */
async function selectMeasure(id, { zoom = false } = {}) {
  if (app.current?.id === id && !app.conflict) {
    selectOnMap(id, { zoom });
    return;
  }
  if (!(await confirmDiscard())) {
    $("measure-select").value = app.current?.id ? String(app.current.id) : "";
    return;
  }
  clearPending();
  resetEditedGeometry();
  hideConflict();
  setBusy(true);
  setStatus(t("planner.measure_loading"));
  try {
    const { feature, etag } = await api.getMeasure(id);
    loadIntoForm(feature, etag);
    selectOnMap(id, { zoom });
    setStatus(t("planner.measure_loaded", { title: feature.properties.title }));
    loadHistory(id);
  } catch (err) {
    console.error("measure:", err);
    setStatus(t("planner.measure_failed", { reason: describeFailure(err) }), "error");
    if (err.status === 404) await loadMeasures();
  } finally {
    setBusy(false);
  }
}

// ---------------------------------------------------------------- saving

function pick(record, fields) {
  return toProperties(record, fields);
}

/** Errors the server answered with, shown in German; returns true when handled. */
async function handleWriteError(err, action) {
  if (err.status === 412 && app.current?.id) {
    await showConflict(err, action);
    return true;
  }
  if (err.status === 422) {
    showErrors(serverErrors(err.problem));
    setStatus(t("planner.rejected_fields"), "error");
    return true;
  }
  if (err.status === 401) {
    setStatus(t("planner.session_expired"), "error");
    showLogin(true);
    return true;
  }
  if (err.status === 404) {
    setStatus(t("planner.gone"), "error");
    return true;
  }
  setStatus(t("planner.not_saved", { reason: `${describeFailure(err)}${err.message && err.status ? `: ${err.message}` : ""}` }), "error");
  return true;
}

/** Save the form: POST for a new measure, PATCH (only the changed fields) with If-Match. */
async function save() {
  const current = app.current;
  if (!current || app.busy) return false;
  const record = readForm();
  const errors = validateRecord(record, { geometry: current.geometry || null });
  if (errors.length) {
    showErrors(errors);
    setStatus(t("planner.check_fields"), "error");
    return false;
  }
  clearErrors();
  setBusy(true);
  setStatus(t("planner.saving"));
  try {
    if (current.id === null) {
      const { feature, etag } = await api.createMeasure({
        type: "Feature",
        geometry: current.geometry,
        properties: toProperties(record),
      });
      clearPending();
      upsertFeature(feature);
      loadIntoForm(feature, etag);
      setStatus(t("planner.draft_created", { title: feature.properties.title, id: feature.properties.id }), "success");
      loadHistory(feature.properties.id);
      return true;
    }
    const fields = changedFields(current.baseline, record);
    if (!fields.length && !current.geometryChanged) {
      setStatus(t("planner.nothing_to_save"));
      return true;
    }
    const patch = { properties: pick(record, fields) };
    if (current.geometryChanged) patch.geometry = current.geometry;
    const { feature, etag } = await api.patchMeasure(current.id, current.etag, patch);
    upsertFeature(feature);
    loadIntoForm(feature, etag);
    setStatus(
      t(feature.properties.published ? "planner.changes_saved" : "planner.draft_saved", { title: feature.properties.title, version: feature.properties.version }),
      "success",
    );
    loadHistory(feature.properties.id);
    return true;
  } catch (err) {
    console.error("save:", err);
    await handleWriteError(err, { kind: "save", record, fields: changedFields(current.baseline, record) });
    return false;
  } finally {
    setBusy(false);
  }
}

/** One-step transfer: a new linked draft in the district, the origin marked „übertragen“. */
async function transferTo(code) {
  const current = app.current;
  if (!current || app.busy) return;
  if (current.id === null) {
    setStatus(t("planner.transfer_save_first"), "error");
    return;
  }
  if (!code) {
    setStatus(t("planner.transfer_need_code"), "error");
    return;
  }
  if (app.dirty) {
    // The origin changes too: save the form first so nothing is lost.
    if (!(await save())) return;
  }
  const origin = app.current;
  setBusy(true);
  setStatus(t("planner.transfer_running", { code }));
  try {
    const { feature } = await api.transferMeasure(origin.id, origin.etag, code);
    upsertFeature(feature);
    const reloaded = await api.getMeasure(origin.id);
    upsertFeature(reloaded.feature);
    loadIntoForm(reloaded.feature, reloaded.etag);
    loadHistory(origin.id);
    setStatus(
      t("planner.transfer_done", { title: feature.properties.title, id: feature.properties.id, code }),
      "success",
    );
  } catch (err) {
    console.error("transfer:", err);
    if (err.status === 412) {
      // Never through the conflict dialog (its "apply again" knows save/publish/delete only).
      const reloaded = await api.getMeasure(origin.id).catch(() => null);
      if (reloaded) loadIntoForm(reloaded.feature, reloaded.etag);
      setStatus(t("planner.transfer_conflict"), "error");
    } else if (err.status === 422) {
      showErrors([{ field: "transfer", message: t("planner.transfer_error", { code, message: problemText(err.problem?.errors?.[0] || err.problem || err.message) }) }]);
      setStatus(t("planner.transfer_rejected"), "error");
    } else {
      await handleWriteError(err, { kind: "transfer" });
    }
  } finally {
    setBusy(false);
  }
}

async function togglePublished() {
  const current = app.current;
  if (!current || app.busy) return;
  const publish = !current.published;
  if (app.dirty) {
    // Save first so what goes public is what the form shows.
    if (!(await save())) return;
  }
  const target = app.current;
  setBusy(true);
  setStatus(t(publish ? "planner.publishing" : "planner.withdrawing"));
  try {
    const { feature, etag } = await api.setPublished(target.id, target.etag, publish);
    upsertFeature(feature);
    loadIntoForm(feature, etag);
    setStatus(
      publish
        ? t("planner.published_done", { title: feature.properties.title })
        : t("planner.withdrawn_done", { title: feature.properties.title }),
      "success",
    );
    loadHistory(feature.properties.id);
  } catch (err) {
    console.error("publish:", err);
    await handleWriteError(err, { kind: publish ? "publish" : "unpublish" });
  } finally {
    setBusy(false);
  }
}

async function removeCurrent({ fromMap = false } = {}) {
  const current = app.current;
  if (!current || app.busy) {
    if (fromMap) renderMeasures(app.features);
    return;
  }
  if (current.id === null) {
    closeForm();
    setStatus(t("planner.drawing_discarded"));
    return;
  }
  const title = current.baseline.title || t("planner.no", { id: current.id });
  const ok = await confirmAction({
    title: t("planner.delete_title"),
    text: t(current.published ? "planner.delete_text_public" : "planner.delete_text", { title }),
    confirmLabel: t("planner.delete_ok"),
  });
  if (!ok) {
    if (fromMap) renderMeasures(app.features);
    setStatus(t("planner.not_deleted"));
    return;
  }
  setBusy(true);
  setStatus(t("planner.deleting"));
  try {
    await api.deleteMeasure(current.id, current.etag);
    removeFeature(current.id);
    app.dirty = false;
    closeForm();
    setStatus(t("planner.deleted", { title }), "success");
  } catch (err) {
    console.error("delete:", err);
    if (fromMap) renderMeasures(app.features);
    await handleWriteError(err, { kind: "delete" });
  } finally {
    setBusy(false);
  }
}

// ---------------------------------------------------------------- conflict (412)

function hideConflict() {
  app.conflict = null;
  $("conflict-panel").hidden = true;
  $("conflict-rows").replaceChildren();
  document.body.dataset.conflict = "false";
  updateButtons();
}

async function lastActor(id) {
  try {
    const history = await api.getHistory(id);
    const last = history[history.length - 1];
    return last?.actor || null;
  } catch {
    return null;
  }
}

function conflictRow(field, mineValue, theirsValue, tag) {
  const tr = document.createElement("tr");
  tr.dataset.field = field;
  if (tag) tr.classList.add(`conflict-row--${tag.kind}`);
  const th = element("th", null, FIELD_LABELS[field] || field);
  th.scope = "row";
  if (tag) th.appendChild(element("span", `conflict-tag conflict-tag--${tag.kind}`, tag.text));
  tr.append(th, element("td", "conflict-mine", mineValue), element("td", "conflict-theirs", theirsValue));
  return tr;
}

/** 412: show the colleague's current version next to ours and offer both ways out. */
async function showConflict(err, action) {
  const current = app.current;
  const theirsFeature = err.problem?.current;
  const theirsProps = theirsFeature?.properties || {};
  const version = theirsProps.version;
  const etag = err.etag || (Number.isInteger(version) ? `"m${current.id}-v${version}"` : null);
  const actor = await lastActor(current.id);
  const who = actor ? t("planner.who_quoted", { name: actor }) : t("planner.who_colleague");

  const mine = action.kind === "save" ? action.record : readForm();
  const theirs = normaliseRecord(theirsProps);
  const myFields = action.kind === "save" ? action.fields : [];
  const theirFields = changedFields(current.baseline, theirs);
  const fields = [...new Set([...KEY_FIELDS, ...myFields, ...theirFields])].filter((f) => RECORD_FIELDS.includes(f));

  const rows = fields.map((field) => {
    const mineChanged = myFields.includes(field);
    const theirsChanged = theirFields.includes(field);
    let tag = null;
    if (mineChanged && theirsChanged) tag = { kind: "both", text: t("planner.tag_both") };
    else if (mineChanged) tag = { kind: "mine", text: t("planner.tag_mine") };
    else if (theirsChanged) tag = { kind: "theirs", text: t("planner.tag_theirs") };
    return conflictRow(field, formatValue(field, mine[field], FORMAT_CONTEXT), formatValue(field, theirs[field], FORMAT_CONTEXT), tag);
  });
  const theirGeometryChanged = JSON.stringify(theirsFeature?.geometry) !== JSON.stringify(current.feature?.geometry);
  if (current.geometryChanged || theirGeometryChanged) {
    const tag = current.geometryChanged && theirGeometryChanged
      ? { kind: "both", text: t("planner.tag_both") }
      : current.geometryChanged
        ? { kind: "mine", text: t("planner.tag_mine") }
        : { kind: "theirs", text: t("planner.tag_theirs") };
    rows.push(conflictRow("geometry", formatValue("geometry", current.geometry), formatValue("geometry", theirsFeature?.geometry), tag));
  }
  if (Boolean(theirsProps.published) !== current.published) {
    rows.push(conflictRow("published", formatValue("published", current.published), formatValue("published", theirsProps.published), { kind: "theirs", text: t("planner.tag_theirs") }));
  }
  $("conflict-rows").replaceChildren(...rows);
  $("conflict-current-heading").textContent = actor ? t("planner.current_by", { name: actor }) : t("planner.current_version");

  $("conflict-message").textContent = t("planner.conflict_message", { who, version: version ?? "?" });
  const both = myFields.filter((f) => theirFields.includes(f)).map((f) => FIELD_LABELS[f] || f);
  let note;
  if (action.kind === "save") {
    const list = myFields.map((f) => FIELD_LABELS[f] || f);
    if (current.geometryChanged) list.push(FIELD_LABELS.geometry);
    note = t("planner.note_save", { fields: list.join(", ") || t("planner.nothing") });
    if (both.length) note += t("planner.note_both", { fields: both.join(", ") });
  } else if (action.kind === "publish" || action.kind === "unpublish") {
    note = t(`planner.note_${action.kind}`);
  } else {
    note = t("planner.note_delete");
  }
  $("conflict-note").textContent = note;

  app.conflict = { action, etag, feature: theirsFeature, mine, actor };
  $("conflict-panel").hidden = false;
  document.body.dataset.conflict = "true";
  updateButtons();
  setStatus(t("planner.conflict_status", { who }), "error");
  $("conflict-panel").scrollIntoView({ block: "nearest" });
  $("conflict-panel").focus();
}

/** "Ihre Änderungen verwerfen und neu laden": the current version into the form. */
async function conflictReload() {
  const conflict = app.conflict;
  if (!conflict || !app.current) return;
  setBusy(true);
  try {
    const { feature, etag } = await api.getMeasure(app.current.id);
    hideConflict();
    upsertFeature(feature);
    loadIntoForm(feature, etag);
    setStatus(t("planner.reloaded"), "success");
    loadHistory(feature.properties.id);
  } catch (err) {
    console.error("reload:", err);
    if (err.status === 404) {
      hideConflict();
      removeFeature(app.current.id);
      closeForm();
      setStatus(t("planner.deleted_meanwhile"), "error");
    } else {
      setStatus(t("planner.reload_failed", { reason: describeFailure(err) }), "error");
    }
  } finally {
    setBusy(false);
  }
}

/** "Meine Änderungen erneut anwenden": the same change again, with the new ETag. */
async function conflictReapply() {
  const conflict = app.conflict;
  const current = app.current;
  if (!conflict || !current) return;
  const { action, etag } = conflict;
  setBusy(true);
  setStatus(t("planner.reapplying"));
  try {
    let result;
    if (action.kind === "save") {
      const patch = { properties: pick(action.record, action.fields) };
      if (current.geometryChanged) patch.geometry = current.geometry;
      result = await api.patchMeasure(current.id, etag, patch);
    } else if (action.kind === "publish" || action.kind === "unpublish") {
      result = await api.setPublished(current.id, etag, action.kind === "publish");
    } else {
      await api.deleteMeasure(current.id, etag);
      const title = current.baseline.title;
      hideConflict();
      removeFeature(current.id);
      closeForm();
      setStatus(t("planner.deleted", { title }), "success");
      return;
    }
    hideConflict();
    upsertFeature(result.feature);
    loadIntoForm(result.feature, result.etag);
    setStatus(
      t("planner.reapplied", { version: result.feature.properties.version }),
      "success",
    );
    loadHistory(current.id);
  } catch (err) {
    console.error("reapply:", err);
    if (err.status === 412) {
      // Changed yet again: compare with the newest version.
      await showConflict(err, action);
    } else {
      hideConflict();
      await handleWriteError(err, action);
    }
  } finally {
    setBusy(false);
  }
}

// ---------------------------------------------------------------- history

function actionLabel(action) {
  const revert = /^revert:(\d+)$/.exec(String(action));
  if (revert) return t("planner.reverted", { version: revert[1] });
  return has(`planner.action_${action}`) ? t(`planner.action_${action}`) : String(action);
}

function historyEntry(entry) {
  const li = element("li", "history__entry");
  li.dataset.action = String(entry.action);
  li.dataset.version = String(entry.version);
  const head = element("p", "history__head");
  head.append(
    element("span", `history__action history__action--${String(entry.action).replace(/[^a-z]/g, "")}`, actionLabel(entry.action)),
    element("span", "history__version", t("planner.version", { version: entry.version })),
  );
  const meta = element("p", "history__meta");
  meta.append(t("planner.history_by"), element("span", "history__actor", entry.actor || t("planner.unknown_actor")), " · ");
  const time = element("time", null, formatDateTime(entry.at));
  time.dateTime = String(entry.at);
  meta.appendChild(time);
  li.append(head, meta);
  const restore = restoreButton(entry);
  if (restore) li.appendChild(restore);

  const changes = entry.changes && typeof entry.changes === "object" ? entry.changes : {};
  const implied = { publish: ["published"], unpublish: ["published"], delete: ["deleted"], restore: ["deleted"] };
  const fields = Object.keys(changes).filter((f) => !(implied[entry.action] || []).includes(f));
  if (entry.action !== "create" && fields.length) {
    li.appendChild(element("p", "history__fields", t("planner.changed_fields", { fields: fields.map((f) => FIELD_LABELS[f] || f).join(", ") })));
    const details = element("details", "history__details");
    details.appendChild(element("summary", null, t("planner.before_after")));
    const dl = element("dl", "history__changes");
    for (const field of fields) {
      dl.appendChild(element("dt", null, FIELD_LABELS[field] || field));
      const dd = element("dd");
      dd.append(
        element("span", "history__before", formatValue(field, changes[field]?.before, FORMAT_CONTEXT)),
        " → ",
        element("span", "history__after", formatValue(field, changes[field]?.after, FORMAT_CONTEXT)),
      );
      dl.appendChild(dd);
    }
    details.appendChild(dl);
    li.appendChild(details);
  }
  return li;
}

/** An admin may make an earlier version the current one again (not the current version,
 * not a deletion, which has no record of its own). */
function restoreButton(entry) {
  const current = app.current;
  const version = Number(entry.version);
  const latest = Number(current?.feature?.properties?.version);
  if (app.user?.role !== "admin" || !current?.id || !Number.isInteger(version)) return null;
  if (!(version < latest) || entry.action === "delete") return null;
  const button = element("button", "button button--small history__restore", t("planner.restore_button"));
  button.type = "button";
  button.dataset.version = String(version);
  button.setAttribute("aria-label", t("planner.restore_label", { version }));
  button.addEventListener("click", () => restoreVersion(version));
  return button;
}

/** Restore an earlier version (If-Match with the current ETag), then show the new state. */
async function restoreVersion(version) {
  const current = app.current;
  if (!current?.id || app.busy) return;
  if (app.dirty && !(await confirmDiscard())) return;
  const ok = await confirmAction({
    title: t("planner.restore_confirm_title", { version }),
    text: t("planner.restore_confirm_text", { version, title: current.baseline.title || `Nr. ${current.id}` }),
    confirmLabel: t("planner.restore_confirm_ok"),
    danger: false,
  });
  if (!ok) {
    setStatus(t("planner.restore_cancelled"));
    return;
  }
  const id = current.id;
  setBusy(true);
  setStatus(t("planner.restore_running", { version }));
  try {
    const { feature, etag } = await api.restoreVersion(id, current.etag, version);
    app.dirty = false;
    upsertFeature(feature);
    loadIntoForm(feature, etag);
    selectOnMap(id);
    await loadHistory(id);
    setStatus(t("planner.restore_done", { version, now: feature.properties.version, title: feature.properties.title }), "success");
  } catch (err) {
    console.error("restore:", err);
    if (err.status === 412) {
      const reloaded = await api.getMeasure(id).catch(() => null);
      if (reloaded) {
        loadIntoForm(reloaded.feature, reloaded.etag);
        loadHistory(id);
      }
      setStatus(t("planner.restore_conflict"), "error");
    } else if (err.status === 403) {
      setStatus(t("planner.restore_forbidden"), "error");
    } else {
      await handleWriteError(err, { kind: "restore" });
    }
  } finally {
    setBusy(false);
  }
}

function renderHistory(entries) {
  const panel = $("history-panel");
  if (entries === null) {
    panel.hidden = true;
    $("history-list").replaceChildren();
    return;
  }
  panel.hidden = false;
  const items = [...entries].reverse().map(historyEntry);
  $("history-list").replaceChildren(...items);
  $("history-empty").hidden = items.length > 0;
}

async function loadHistory(id) {
  try {
    const entries = await api.getHistory(id);
    if (app.current?.id === id) renderHistory(entries);
  } catch (err) {
    console.error("history:", err);
    if (app.current?.id === id) {
      renderHistory([]);
      $("history-empty").textContent = t("planner.history_failed", { reason: describeFailure(err) });
    }
  }
}

// ---------------------------------------------------------------- import (dry run first)

const importState = { file: null, checked: false };

function problemRow(problem) {
  const li = element("li", "import-report__problem");
  const where = problem.field
    ? t("planner.import_row_field", { row: problem.row, field: FIELD_LABELS[problem.field] || problem.field })
    : t("planner.import_row", { row: problem.row });
  li.append(element("strong", null, where), " ", element("span", null, problemText(problem)));
  return li;
}

function renderImportReport(report, { stored }) {
  const box = $("import-report");
  const problems = Array.isArray(report?.problems) ? report.problems : [];
  const parts = [];
  if (stored) {
    parts.push(element("p", "import-report__summary", t("planner.import_stored", { count: report.created.length })));
  } else {
    parts.push(element("p", "import-report__summary", t("planner.import_checked", { rows: report.rows, valid: report.valid ?? 0, count: report.rows })));
    parts.push(element("p", "import-report__note", problems.length
      ? t("planner.import_has_problems", { count: problems.length })
      : t("planner.import_ready")));
  }
  if (problems.length) {
    const list = element("ul", "import-report__problems");
    list.append(...problems.slice(0, 200).map(problemRow));
    parts.push(list);
  }
  box.replaceChildren(...parts);
  box.dataset.state = stored ? "stored" : problems.length ? "problems" : "checked";
}

function importFailure(err) {
  const problems = Array.isArray(err.problem?.errors) ? err.problem.errors : [];
  const box = $("import-report");
  const parts = [element("p", "import-report__summary status--error", t("planner.import_refused", {
    reason: err.problem ? problemText(err.problem) : (err.message || describeFailure(err)),
  }))];
  if (problems.length && problems.every((p) => p && p.row !== undefined)) {
    const list = element("ul", "import-report__problems");
    list.append(...problems.slice(0, 200).map(problemRow));
    parts.push(list);
  }
  box.replaceChildren(...parts);
  box.dataset.state = "refused";
}

async function onImportCheck(event) {
  event.preventDefault();
  const file = $("import-file").files?.[0];
  importState.checked = false;
  $("import-run").disabled = true;
  if (!file) {
    $("import-report").replaceChildren(element("p", "import-report__summary", t("planner.import_no_file")));
    $("import-report").dataset.state = "empty";
    $("import-file").focus();
    return;
  }
  importState.file = file;
  $("import-check").disabled = true;
  $("import-report").dataset.state = "checking";
  $("import-report").replaceChildren(element("p", null, t("planner.import_checking", { name: file.name })));
  try {
    const report = await api.importMeasures(file, { dryRun: true });
    renderImportReport(report, { stored: false });
    importState.checked = !report.problems?.length && (report.valid ?? 0) > 0;
    $("import-run").disabled = !importState.checked;
  } catch (err) {
    console.error("import check:", err);
    importFailure(err);
    if (err.status === 401) showLogin(true);
  } finally {
    $("import-check").disabled = false;
    $("import-report").focus();
  }
}

async function onImportRun() {
  const file = importState.file;
  if (!file || !importState.checked || app.busy) return;
  $("import-run").disabled = true;
  $("import-check").disabled = true;
  $("import-report").dataset.state = "storing";
  try {
    const report = await api.importMeasures(file, { dryRun: false });
    renderImportReport(report, { stored: true });
    importState.checked = false;
    $("import-file").value = "";
    await loadMeasures();
    setStatus(t("planner.import_stored", { count: report.created.length }), "success");
  } catch (err) {
    console.error("import:", err);
    importFailure(err);
  } finally {
    $("import-check").disabled = false;
    $("import-report").focus();
  }
}

// ---------------------------------------------------------------- sign-in

function showLogin(visible) {
  $("login-section").hidden = !visible;
  if (visible) $("login-username").focus();
}

async function applyUser(user) {
  app.user = user;
  app.canEdit = Boolean(user && EDIT_ROLES.has(user.role));
  $("user-box").hidden = !user;
  $("user-name").textContent = user ? user.display_name || user.username : "";
  $("user-role").textContent = user ? `(${has(`planner.role_${user.role}`) ? t(`planner.role_${user.role}`) : user.role})` : "";
  $("work-section").hidden = !user;
  $("login-section").hidden = Boolean(user);
  $("readonly-note").hidden = !user || app.canEdit;
  $("import-section").hidden = !app.canEdit;
  setEditing(app.canEdit);
  document.body.dataset.plannerState = user ? "signed-in" : "signed-out";
  updateButtons();
}

async function onLogin(event) {
  event.preventDefault();
  const username = $("login-username").value.trim();
  const password = $("login-password").value;
  const error = $("login-error");
  error.hidden = true;
  if (!username || !password) {
    error.textContent = t("planner.login_missing");
    error.hidden = false;
    (username ? $("login-password") : $("login-username")).focus();
    return;
  }
  $("login-button").disabled = true;
  setStatus(t("planner.signing_in"));
  try {
    const { user } = await api.login(username, password);
    $("login-password").value = "";
    const wasSignedIn = Boolean(app.user);
    await applyUser(user);
    setStatus(t("planner.signed_in", { name: user.display_name || user.username }), "success");
    if (!wasSignedIn && !app.current) await loadMeasures();
    (app.current ? $("f-title") : $("measure-select")).focus();
  } catch (err) {
    error.textContent = err.status === 401
      ? t("planner.login_wrong")
      : t("planner.login_failed", { reason: describeFailure(err) });
    error.hidden = false;
    setStatus(t("planner.not_signed_in"), "error");
    $("login-password").focus();
  } finally {
    $("login-button").disabled = false;
  }
}

async function onLogout() {
  if (!(await confirmDiscard())) return;
  try {
    await api.logout();
  } catch (err) {
    console.error("logout:", err);
  }
  app.dirty = false;
  closeForm();
  await applyUser(null);
  await loadMeasures();
  setStatus(t("planner.signed_out"));
}

// ---------------------------------------------------------------- map callbacks

async function onDrawn(geometry) {
  if (app.current && app.current.id !== null && app.dirty) {
    if (!(await confirmDiscard())) {
      clearPending();
      return;
    }
  }
  app.dirty = false;
  if (app.current && app.current.id !== null) {
    resetEditedGeometry();
    app.current = null;
    hideConflict();
  }
  startNew(geometry);
}

function onGeometryEdited(id, geometry) {
  const current = app.current;
  if (!current) return;
  if (id === "new" && current.id === null) {
    current.geometry = geometry;
  } else if (id === current.id) {
    current.geometry = geometry;
    current.geometryChanged = true;
    setStatus(t("planner.geometry_changed"));
  } else {
    return;
  }
  renderGeometryInfo();
  refreshDirty();
}

function onPendingRemoved() {
  if (app.current && app.current.id === null) {
    closeForm();
    setStatus(t("planner.drawing_discarded"));
  }
}

function onRemoveRequested(id) {
  if (app.current?.id === id) removeCurrent({ fromMap: true });
  else renderMeasures(app.features);
}

// ---------------------------------------------------------------- start

function onTileError() {
  $("tiles-note").hidden = false;
  $("map").classList.add("map--no-tiles");
  document.body.dataset.tiles = "failed";
}

function safeHttpUrl(value) {
  try {
    const url = new URL(value);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}

function renderSources(sources, tileAttribution) {
  const items = sources.map((source) => {
    const li = document.createElement("li");
    const href = safeHttpUrl(source.url);
    const name = element(href ? "a" : "span", "source__name", source.name || source.key || t("planner.source"));
    if (href) {
      name.href = href;
      name.rel = "noopener";
    }
    li.appendChild(name);
    if (source.licence) li.append(t("footer.licence"), source.licence);
    if (source.attribution) li.append(t("footer.attribution"), source.attribution);
    return li;
  });
  if (tileAttribution) items.push(element("li", null, t("planner.background_map", { attribution: tileAttribution })));
  $("source-list").replaceChildren(...items);
}

async function loadSources(tileAttribution) {
  try {
    const body = await getSources();
    const sources = (Array.isArray(body?.sources) ? body.sources : []).filter(Boolean);
    addAttributions(sources);
    renderSources(sources, tileAttribution);
  } catch (err) {
    console.error("sources:", err);
    $("source-list").replaceChildren(element("li", null, t("planner.sources_failed", { reason: describeFailure(err) })));
  }
}

async function loadContext() {
  const [municipalities, quarters] = await Promise.allSettled([
    getItems("municipalities", { project_city: true }),
    getItems("quarters"),
  ]);
  if (quarters.status === "fulfilled") {
    for (const f of quarters.value.features) app.quarterNames.set(f.properties?.slug, f.properties?.name);
  }
  addContext(
    municipalities.status === "fulfilled" ? municipalities.value : null,
    quarters.status === "fulfilled" ? quarters.value : null,
  );
  return municipalities.status === "fulfilled" && quarters.status === "fulfilled";
}

function wireEvents() {
  $("login-form").addEventListener("submit", onLogin);
  $("logout-button").addEventListener("click", onLogout);
  $("measure-form").addEventListener("submit", (event) => {
    event.preventDefault();
    save();
  });
  $("publish-button").addEventListener("click", togglePublished);
  $("delete-button").addEventListener("click", () => removeCurrent());
  $("conflict-reload").addEventListener("click", conflictReload);
  $("conflict-reapply").addEventListener("click", conflictReapply);
  $("import-form").addEventListener("submit", onImportCheck);
  $("import-run").addEventListener("click", onImportRun);
  $("import-file").addEventListener("change", () => {
    importState.checked = false;
    $("import-run").disabled = true;
  });
  $("new-point-button").addEventListener("click", () => {
    createPointAtCentre();
  });
  $("measure-select").addEventListener("change", async (event) => {
    const id = Number(event.target.value);
    if (Number.isInteger(id) && id > 0) {
      selectMeasure(id, { zoom: true });
    } else if (event.target.value === "" && app.current) {
      if (await confirmDiscard()) {
        app.dirty = false;
        closeForm();
        setStatus(t("planner.nothing_selected"));
      } else {
        event.target.value = app.current.id ? String(app.current.id) : "";
      }
    }
  });
  window.addEventListener("beforeunload", (event) => {
    if (app.dirty) event.preventDefault();
  });
}

async function main() {
  if (!globalThis.L) {
    setStatus(t("planner.no_leaflet"), "error");
    return;
  }
  await startPage();
  const map = initMap($("map"), {
    onSelect: (id) => selectMeasure(id),
    onDrawn,
    onGeometryEdited,
    onRemoveRequested,
    onPendingRemoved,
  });
  // For tests and the browser console: the Leaflet map (read-only use).
  window.quartersPlanner = Object.freeze({ map });
  if (!map.pm) setStatus(t("planner.no_geoman"), "error");
  wireEvents();

  setStatus(t("planner.config_loading"));
  let config = null;
  let me = { user: null };
  try {
    [config, me] = await Promise.all([getConfig(), api.currentUser()]);
  } catch (err) {
    console.error("start:", err);
    setStatus(t("planner.start_failed", { reason: describeFailure(err) }), "error");
    document.body.dataset.plannerState = "failed";
    return;
  }
  app.config = config;
  for (const city of config.cities || []) app.cities.set(String(city.ags), city);
  setupForm(config, {
    onChange: () => refreshDirty(),
    onCityChange: (ags) => fillParentOptions(app.features, ags, app.current?.id ?? null, null),
    onTransfer: (code) => transferTo(code),
  });
  const start = app.cities.get(HALLE_AGS) || [...app.cities.values()][0];
  if (start) fitCity(start.bbox, { animate: false });
  addBackground(config, onTileError);

  await applyUser(me.user);
  const [contextOk, measuresOk] = await Promise.all([
    loadContext(),
    loadMeasures(),
    loadSources(config.tile_attribution),
  ]);
  if (!measuresOk) return;
  const count = app.features.length;
  const context = contextOk ? "" : t("planner.context_missing");
  if (me.user) {
    setStatus(t("planner.ready_signed_in", { name: me.user.display_name || me.user.username, count, context }), contextOk ? "info" : "error");
  } else {
    setStatus(t("planner.ready_signed_out", { count, context }), contextOk ? "info" : "error");
  }
  document.body.dataset.plannerReady = "true";
}

main();
