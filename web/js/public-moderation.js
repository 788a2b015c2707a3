// Moderation of ideas: sign in, see the submitted ideas (with the contact), accept, reject
// with a public reason (the text stays off the site unless ticked), link to a published
// measure, or hide (spam, abuse, personal data; an internal reason stays with the team).
// No decision is preselected; a decision that makes an idea public is confirmed first.
// Workshop codes let many people on one address submit for a few hours. The CSRF token of
// the session goes with every change. Texts people wrote are set as text.

import { getIdeas, getMeasurePoints, getWorkshops, login, me, moderateIdea, openWorkshop } from "./api.js";
import { formatDateTime, label, lang, t } from "./i18n.js";
import {
  cityName, describeError, el, endSession, ideaBadge, initPageWithConfig, keepSession, showSignInFailure,
} from "./public-common.js";
import { applyLimits } from "./vocabulary.js";

/** Longest reason the server takes (limits.idea of /api/config). */
const reasonMax = (name) => state.config?.limits?.idea?.[name]?.max ?? 2000;
const STATES = ["eingereicht", "angenommen", "abgelehnt", "verknuepft", "verborgen"];
const DECISIONS = ["accept", "reject", "link", "hide"];
const PUBLISHING = new Set(["accept", "reject", "link"]); // these make the idea public
const ROLES = new Set(["moderator", "admin"]);
const $ = (id) => document.getElementById(id);
const state = { csrf: null, user: null, config: null, measures: null };

function showLogin() {
  $("login-card").hidden = false;
  $("queue").hidden = true;
  $("workshops").hidden = true;
  document.body.dataset.modState = "login";
}

async function showQueue() {
  $("login-card").hidden = true;
  $("queue").hidden = false;
  $("workshops").hidden = false;
  $("user-line").textContent = t("mod.signed_in", {
    name: state.user.display_name || state.user.username,
    role: label("role", state.user.role),
  });
  await Promise.all([loadQueue(), loadWorkshops()]);
}

async function measuresByCity() {
  if (!state.measures) {
    // The points endpoint answers parallel arrays (id[i], title[i], city_ags[i], …).
    const points = await getMeasurePoints({});
    const ids = Array.isArray(points.id) ? points.id : [];
    state.measures = ids
      .map((id, i) => ({ id, title: points.title?.[i], city_ags: points.city_ags?.[i] }))
      .sort((a, b) => String(a.title).localeCompare(String(b.title), lang));
  }
  return state.measures;
}

function decisionForm(idea, measures) {
  const prefix = `d${idea.id}`;
  const radios = DECISIONS.map((decision) =>
    el("label", {}, [
      el("input", {
        attrs: { type: "radio", name: `${prefix}-decision`, value: decision, id: `${prefix}-${decision}` },
      }),
      el("span", { text: t(`mod.decision_${decision}`) }),
    ]),
  );
  const reasonId = `${prefix}-reason`;
  const staffId = `${prefix}-staff-reason`;
  const textPublicId = `${prefix}-text-public`;
  const measureId = `${prefix}-measure`;
  const cityMeasures = measures.filter((m) => m.city_ags === idea.city_ags);
  const form = el("form", { className: "decision-form", attrs: { novalidate: true }, dataset: { id: String(idea.id) } }, [
    el("fieldset", { className: "decision" }, [
      el("legend", { text: t("mod.decision") }),
      el("div", { className: "radio-row" }, radios),
      el("div", { className: "field" }, [
        el("label", { text: t("mod.reason"), attrs: { for: reasonId } }),
        el("textarea", { attrs: { id: reasonId, name: "reason", rows: 3, maxlength: reasonMax("reason"), "aria-describedby": `${reasonId}-hint` } }),
        el("p", { className: "field__hint", text: t("mod.reason_hint"), attrs: { id: `${reasonId}-hint` } }),
      ]),
      el("div", { className: "field field--check" }, [
        el("input", { attrs: { type: "checkbox", id: textPublicId, name: "text_public", "aria-describedby": `${textPublicId}-hint`, checked: Boolean(idea.text_public) } }),
        el("label", { text: t("mod.text_public"), attrs: { for: textPublicId } }),
        el("p", { className: "field__hint", text: t("mod.text_public_hint"), attrs: { id: `${textPublicId}-hint` } }),
      ]),
      el("div", { className: "field" }, [
        el("label", { text: t("mod.staff_reason"), attrs: { for: staffId } }),
        el("textarea", { attrs: { id: staffId, name: "staff_reason", rows: 2, maxlength: reasonMax("staff_reason"), "aria-describedby": `${staffId}-hint` } }),
        el("p", { className: "field__hint", text: t("mod.staff_reason_hint"), attrs: { id: `${staffId}-hint` } }),
      ]),
      el("div", { className: "field" }, [
        el("label", { text: t("mod.measure"), attrs: { for: measureId } }),
        el("select", { attrs: { id: measureId, name: "measure" } }, [
          el("option", { text: t("mod.measure_choose"), attrs: { value: "" } }),
          ...cityMeasures.map((m) => el("option", { text: m.title || String(m.id), attrs: { value: String(m.id) } })),
        ]),
      ]),
      el("div", { className: "notice notice--error", attrs: { role: "alert", hidden: true }, dataset: { role: "error" } }),
      // A non-modal alert dialog inside the form: focus goes to "Yes", Escape or "Cancel"
      // closes it and returns to the save button; changing the form closes it too.
      el("div", {
        className: "notice mod-confirm",
        attrs: { role: "alertdialog", "aria-modal": "false", "aria-labelledby": `${prefix}-confirm-text`, hidden: true },
        dataset: { role: "confirm" },
      }, [
        el("p", { attrs: { id: `${prefix}-confirm-text` }, dataset: { role: "confirm-text" } }),
        el("button", { className: "button button--primary", text: t("mod.confirm_yes"), attrs: { type: "button" }, dataset: { role: "confirm-yes" } }),
        document.createTextNode(" "),
        el("button", { className: "button button--ghost", text: t("mod.confirm_no"), attrs: { type: "button" }, dataset: { role: "confirm-no" } }),
      ]),
      el("button", { className: "button button--primary", text: t("mod.save"), attrs: { type: "submit" }, dataset: { role: "save" } }),
    ]),
  ]);
  form.addEventListener("submit", onDecide);
  form.querySelector('[data-role="confirm-yes"]').addEventListener("click", () => decide(form));
  const cancel = () => {
    form.querySelector('[data-role="confirm"]').hidden = true;
    form.querySelector('[data-role="save"]').focus();
  };
  form.querySelector('[data-role="confirm-no"]').addEventListener("click", cancel);
  form.querySelector('[data-role="confirm"]').addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      cancel();
    }
  });
  form.addEventListener("change", () => {
    form.querySelector('[data-role="confirm"]').hidden = true;
  });
  return form;
}

function ideaItem(idea, measures) {
  const titleId = `mod-idea-${idea.id}`;
  const coords = idea.geometry?.coordinates;
  return el("li", { className: "mod-item", dataset: { id: String(idea.id), state: idea.state || "" } }, [
    el("article", { attrs: { "aria-labelledby": titleId } }, [
      el("h3", { text: idea.title || t("common.unnamed"), attrs: { id: titleId } }),
      el("p", { className: "idea-card__meta" }, [
        ideaBadge(idea.state),
        el("span", { text: cityName(state.config, idea.city_ags) }),
        el("span", { text: label("field", idea.action_field) }),
        el("span", { text: t("mod.submitted", { date: formatDateTime(idea.created_at) }) }),
        Array.isArray(coords) ? el("span", { text: t("idea.coordinates", { lat: coords[1].toFixed(5), lon: coords[0].toFixed(5) }) }) : null,
      ]),
      el("p", { className: "mod-item__text", text: idea.text || "" }),
      el("p", { className: "mod-item__contact" }, [
        el("strong", { text: t("mod.contact") }),
        document.createTextNode(" "),
        el("span", { text: idea.contact || t("mod.no_contact") }),
      ]),
      idea.public_reason
        ? el("p", { className: "mod-item__contact" }, [
            el("strong", { text: t("idea.reason") }),
            document.createTextNode(" "),
            el("span", { text: idea.public_reason }),
          ])
        : null,
      idea.staff_reason
        ? el("p", { className: "mod-item__contact" }, [
            el("strong", { text: t("mod.staff_reason_shown") }),
            document.createTextNode(" "),
            el("span", { text: idea.staff_reason }),
          ])
        : null,
      idea.state !== "eingereicht" && idea.state !== "verborgen"
        ? el("p", {}, [el("a", { text: t("mod.public_page"), attrs: { href: `/ideen/${encodeURIComponent(idea.id)}` } })])
        : null,
      decisionForm(idea, measures),
    ]),
  ]);
}

let queueRequest = 0; // only the newest load may fill the list (loads can overlap)

async function loadQueue() {
  const mine = ++queueRequest;
  const summary = $("queue-summary");
  summary.textContent = t("common.loading");
  document.body.dataset.modState = "loading";
  try {
    const [body, measures] = await Promise.all([getIdeas({ state: $("queue-state").value }), measuresByCity()]);
    if (mine !== queueRequest) return;
    const ideas = Array.isArray(body?.ideas) ? body.ideas : [];
    $("mod-list").replaceChildren(...ideas.map((idea) => ideaItem(idea, measures)));
    summary.textContent = ideas.length ? t("mod.count", { count: ideas.length }) : t("mod.empty");
    document.body.dataset.modState = "queue";
  } catch (err) {
    if (mine !== queueRequest) return;
    if (err.status === 401 || err.status === 403) {
      showLogin();
      return;
    }
    summary.textContent = t("mod.failed", { reason: describeError(err) });
    document.body.dataset.modState = "error";
  }
}

function formBody(form) {
  const decision = form.querySelector('input[type="radio"]:checked')?.value;
  const reason = form.querySelector('textarea[name="reason"]').value.trim();
  const staffReason = form.querySelector('textarea[name="staff_reason"]').value.trim();
  const measure = form.querySelector("select").value;
  const body = { decision };
  if (reason) body.reason = reason;
  if (staffReason) body.staff_reason = staffReason;
  if (decision === "reject") body.text_public = form.querySelector('input[name="text_public"]').checked;
  if (decision === "link" && measure) body.measure_id = Number(measure);
  return body;
}

function missing(body) {
  if (!body.decision) return t("mod.choose_decision");
  if (body.decision === "reject" && !body.reason) return t("mod.reason_missing");
  if (body.decision === "hide" && !body.staff_reason) return t("mod.staff_reason_missing");
  if (body.decision === "link" && !body.measure_id) return t("mod.measure_missing");
  return null;
}

function onDecide(event) {
  event.preventDefault();
  const form = event.target;
  const errorBox = form.querySelector('[data-role="error"]');
  const confirmBox = form.querySelector('[data-role="confirm"]');
  errorBox.hidden = true;
  confirmBox.hidden = true;
  const body = formBody(form);
  const problem = missing(body);
  if (problem) {
    errorBox.textContent = problem;
    errorBox.hidden = false;
    return;
  }
  if (!PUBLISHING.has(body.decision)) {
    decide(form);
    return;
  }
  const title = form.closest(".mod-item")?.querySelector("h3")?.textContent || "";
  confirmBox.querySelector('[data-role="confirm-text"]').textContent = t("mod.confirm_publish", {
    title,
    decision: t(`mod.decision_${body.decision}`),
  });
  confirmBox.hidden = false;
  confirmBox.querySelector('[data-role="confirm-yes"]').focus();
}

async function decide(form) {
  const id = Number(form.dataset.id);
  const body = formBody(form);
  const errorBox = form.querySelector('[data-role="error"]');
  form.querySelector('[data-role="confirm"]').hidden = true;
  errorBox.hidden = true;
  const buttons = form.querySelectorAll("button");
  for (const b of buttons) b.disabled = true;
  try {
    const idea = await moderateIdea(id, body, state.csrf);
    $("page-status").textContent = t("mod.done", { title: idea.title || "", state: label("idea_state", idea.state) });
    const item = form.closest(".mod-item");
    const shown = $("queue-state").value;
    if (shown && shown !== idea.state) {
      item.remove();
      const left = $("mod-list").children.length;
      $("queue-summary").textContent = left ? t("mod.count", { count: left }) : t("mod.empty");
    } else {
      item.replaceWith(ideaItem(idea, state.measures || []));
    }
    $("queue-heading").focus();
  } catch (err) {
    const problems = err.body?.errors?.map((e) => e.problem).filter(Boolean) || [];
    errorBox.textContent = problems.length ? problems.join(" ") : err.body?.detail || describeError(err);
    errorBox.hidden = false;
    if (err.status === 401) showLogin();
  } finally {
    for (const b of buttons) b.disabled = false;
  }
}

// ---------------------------------------------------------------- workshop codes

function workshopItem(w) {
  const link = `/ideas.html?code=${encodeURIComponent(w.code)}`;
  return el("li", { className: "mod-item", dataset: { id: String(w.id), code: w.code } }, [
    el("p", {
      text: t("mod.workshop_item", {
        code: w.code,
        label: w.label,
        until: formatDateTime(w.expires_at),
        count: w.ideas,
        max: w.max_ideas,
      }),
    }),
    el("p", {}, [el("a", { text: t("mod.workshop_link"), attrs: { href: link } })]),
  ]);
}

async function loadWorkshops() {
  const status = $("workshop-status");
  try {
    const body = await getWorkshops();
    const list = Array.isArray(body?.workshops) ? body.workshops : [];
    $("workshop-list").replaceChildren(...list.map(workshopItem));
    status.textContent = list.length ? "" : t("mod.workshop_none");
  } catch (err) {
    status.textContent = t("mod.failed", { reason: describeError(err) });
  }
}

async function onWorkshop(event) {
  event.preventDefault();
  const errorBox = $("workshop-error");
  errorBox.hidden = true;
  const button = event.target.querySelector('button[type="submit"]');
  button.disabled = true;
  try {
    const created = await openWorkshop({
      label: $("workshop-label").value.trim(),
      hours: Number($("workshop-hours").value),
      max_ideas: Number($("workshop-max").value),
    }, state.csrf);
    $("workshop-label").value = "";
    await loadWorkshops();
    $("workshop-status").textContent = t("mod.workshop_done", { code: created.code });
  } catch (err) {
    const problems = err.body?.errors?.map((e) => e.problem).filter(Boolean) || [];
    errorBox.textContent = t("mod.workshop_failed", {
      reason: problems.length ? problems.join(" ") : err.body?.detail || describeError(err),
    });
    errorBox.hidden = false;
    if (err.status === 401) showLogin();
  } finally {
    button.disabled = false;
  }
}

async function onLogin(event) {
  event.preventDefault();
  const errorBox = $("login-error");
  errorBox.hidden = true;
  try {
    const result = await login($("login-user").value, $("login-password").value);
    if (!ROLES.has(result?.user?.role)) {
      errorBox.textContent = t("mod.not_moderator");
      errorBox.hidden = false;
      return;
    }
    keepSession(state, result);
    await showQueue();
    $("queue-heading").focus();
  } catch (err) {
    showSignInFailure(err, "mod.login_failed");
  }
}

async function onLogout() {
  await endSession(state);
  $("page-status").textContent = t("mod.signed_out");
  showLogin();
  $("login-user").focus();
}

async function main() {
  state.config = await initPageWithConfig();
  applyLimits({ label: state.config?.limits?.idea?.workshop_label }, "workshop-");
  const select = $("queue-state");
  select.replaceChildren(
    ...STATES.map((s) => el("option", { text: label("idea_state", s), attrs: { value: s } })),
    el("option", { text: t("mod.all"), attrs: { value: "" } }),
  );
  select.addEventListener("change", loadQueue);
  $("login-form").addEventListener("submit", onLogin);
  $("workshop-form").addEventListener("submit", onWorkshop);
  $("logout").addEventListener("click", onLogout);
  try {
    const who = await me();
    if (who?.user && ROLES.has(who.user.role)) {
      state.user = who.user;
      state.csrf = who.csrf_token;
      await showQueue();
      return;
    }
  } catch (err) {
    console.error("me:", err);
  }
  showLogin();
}

main();
