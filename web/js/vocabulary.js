// The vocabularies and limits of /api/config on the page: the server defines them once
// (quarters/vocabulary.py); the pages take field lengths from there (status colours: map.js).

/** `maxlength` of the fields `#<prefix><name>` (or `-` for `_`) from `limits` ({name: {min, max}}). */
export function applyLimits(limits, prefix) {
  for (const [name, bounds] of Object.entries(limits || {})) {
    const field = document.getElementById(`${prefix}${name}`)
      || document.getElementById(`${prefix}${name.replaceAll("_", "-")}`);
    if (field && Number.isInteger(bounds?.max)) field.maxLength = bounds.max;
  }
}
