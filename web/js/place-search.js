// Place search on the public map (ARIA 1.2 combobox with a listbox popup): districts,
// quarters, sites, measures and the municipalities, from /api/places (the database; a
// geocoder only when the server is configured with one). Arrow keys move through the
// suggestions, Enter moves the map to the chosen place, Escape closes the list.

import { searchPlaces } from "./api.js";
import { label, t } from "./i18n.js";
import { fitBbox } from "./map.js";
import { el } from "./public-common.js";

const MIN_LENGTH = 2;
const DELAY_MS = 200;
const LIMIT = 10;

/**
 * Wire the combobox: `input` (role=combobox), `list` (role=listbox), `status` (a polite
 * live region). `onPlace(place)` runs after the map has moved (e.g. to open a measure).
 */
export function setupPlaceSearch({ map, input, list, status, onPlace = () => {} }) {
  let places = [];
  let active = -1;
  let timer = 0;
  let request = 0;

  function optionId(i) {
    return `${list.id}-option-${i}`;
  }

  function kindText(place) {
    return t(`places.kind.${place.kind}`);
  }

  function detailText(place) {
    if (place.kind === "measure") return label("status", place.detail);
    if (place.kind === "place") return place.detail ? String(place.detail).slice(0, 80) : "";
    return place.detail || "";
  }

  function close() {
    list.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  }

  function setActive(i) {
    const options = list.querySelectorAll('[role="option"]');
    if (!options.length) return;
    active = (i + options.length) % options.length;
    options.forEach((option, j) => option.setAttribute("aria-selected", String(j === active)));
    input.setAttribute("aria-activedescendant", optionId(active));
    options[active].scrollIntoView({ block: "nearest" });
  }

  function render() {
    list.replaceChildren(
      ...places.map((place, i) =>
        el("li", {
          className: `place-option place-option--${place.kind}`,
          attrs: { id: optionId(i), role: "option", "aria-selected": "false" },
          dataset: { index: String(i), kind: place.kind, id: String(place.id) },
        }, [
          el("span", { className: "place-option__name", text: place.name || t("common.unnamed") }),
          el("span", { className: "place-option__kind", text: [kindText(place), detailText(place)].filter(Boolean).join(" · ") }),
        ]),
      ),
    );
    active = -1;
    input.removeAttribute("aria-activedescendant");
    const open = places.length > 0;
    list.hidden = !open;
    input.setAttribute("aria-expanded", String(open));
    status.textContent = t("places.found", { count: places.length });
    input.closest("[data-place-state]")?.setAttribute("data-place-state", "ready");
  }

  async function search() {
    const q = input.value.trim();
    const mine = ++request;
    if (q.length < MIN_LENGTH) {
      places = [];
      close();
      list.replaceChildren();
      status.textContent = "";
      return;
    }
    input.closest("[data-place-state]")?.setAttribute("data-place-state", "loading");
    try {
      const body = await searchPlaces({ q, limit: LIMIT });
      if (mine !== request) return;
      places = Array.isArray(body?.places) ? body.places : [];
      render();
    } catch (err) {
      if (mine !== request) return;
      console.error("places:", err);
      places = [];
      close();
      status.textContent = t("places.failed");
      input.closest("[data-place-state]")?.setAttribute("data-place-state", "error");
    }
  }

  function choose(i) {
    const place = places[i];
    if (!place) return;
    input.value = place.name || "";
    close();
    if (place.kind === "measure" || place.kind === "place") {
      if (place.centre) map.setView([place.centre[1], place.centre[0]], 17);
    } else if (place.bbox) {
      fitBbox(map, place.bbox, { maxZoom: 16 });
    } else if (place.centre) {
      map.setView([place.centre[1], place.centre[0]], 15);
    }
    status.textContent = t("places.shown", { name: place.name || "" });
    map.getContainer().dataset.place = `${place.kind}:${place.id}`;
    onPlace(place);
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, DELAY_MS);
  });
  input.addEventListener("keydown", (event) => {
    const open = !list.hidden;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!open && places.length) {
        list.hidden = false;
        input.setAttribute("aria-expanded", "true");
      }
      setActive(active < 0 && event.key === "ArrowUp" ? -1 : active + (event.key === "ArrowDown" ? 1 : -1));
    } else if (event.key === "Enter") {
      if (open && active >= 0) {
        event.preventDefault();
        choose(active);
      } else if (places.length && open) {
        event.preventDefault();
        choose(0);
      }
    } else if (event.key === "Escape") {
      if (open) {
        event.preventDefault();
        close();
      } else {
        input.value = "";
      }
    }
  });
  input.addEventListener("blur", () => setTimeout(close, 150));
  // mousedown keeps the focus in the input (the option is chosen before blur closes the list)
  list.addEventListener("mousedown", (event) => event.preventDefault());
  list.addEventListener("click", (event) => {
    const option = event.target.closest('[role="option"]');
    if (option) choose(Number(option.dataset.index));
  });
}
