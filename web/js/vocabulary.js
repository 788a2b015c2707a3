// The vocabularies and limits of /api/config on the page: the server defines them once
// (quarters/vocabulary.py); the pages take status colours and field lengths from there.

/** The status colours as CSS custom properties `--st-<status>` on the root element. */
export function applyStatusColours(colours, root = document.documentElement) {
  for (const [status, colour] of Object.entries(colours || {})) {
    if (/^#[0-9a-f]{6}$/i.test(colour)) root.style.setProperty(`--st-${status}`, colour);
  }
}

/** `maxlength` of the fields `#<prefix><name>` (or `-` for `_`) from `limits` ({name: {min, max}}). */
export function applyLimits(limits, prefix) {
  for (const [name, bounds] of Object.entries(limits || {})) {
    const field = document.getElementById(`${prefix}${name}`)
      || document.getElementById(`${prefix}${name.replaceAll("_", "-")}`);
    if (field && Number.isInteger(bounds?.max)) field.maxLength = bounds.max;
  }
}
