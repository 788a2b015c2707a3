// The DOM helpers of every page. Text from data only ever reaches the DOM through textContent
// and setAttribute; escapeHtml is for the few library APIs that take HTML strings only.

export const SVG_NS = "http://www.w3.org/2000/svg";

/** document.getElementById */
export function $(id) {
  return document.getElementById(id);
}

function applyOptions(node, { className, text, attrs, dataset, hidden } = {}) {
  if (className) node.setAttribute("class", className);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const [name, value] of Object.entries(dataset || {})) node.dataset[name] = String(value);
  if (hidden) node.hidden = true;
}

function appendAll(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/**
 * Create an element: el("p", {className: "x", text: "…", attrs: {id: "y"}, dataset: {…}},
 * child, …). Children may be nodes, strings (text nodes), arrays of them or null (skipped).
 */
export function el(tag, options = {}, ...children) {
  const node = document.createElement(tag);
  applyOptions(node, options);
  appendAll(node, children);
  return node;
}

/** The short form: element("li", "class", "text"). */
export function element(tag, className, text) {
  return el(tag, { className, text });
}

/** An SVG element with attributes and an optional text. */
export function svgEl(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

/** Remove all children, then append the given ones. */
export function replaceChildren(node, ...children) {
  node.replaceChildren();
  appendAll(node, children);
}

/** Text for the few library APIs that only take HTML strings (Leaflet attributions). */
export function escapeHtml(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Reduce a value from data to characters that are safe in a CSS class name. */
export function cssToken(value) {
  return String(value ?? "")
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, "-")
    .replace(/^-+|-+$/g, "");
}

/**
 * A JSON answer the server embedded in the page (<script type="application/json" id=…>), or
 * null when there is none (or it cannot be read).
 */
export function embeddedJson(id) {
  const node = document.getElementById(id);
  if (!node) return null;
  try {
    return JSON.parse(node.textContent);
  } catch (err) {
    console.error(`${id}:`, err);
    return null;
  }
}
