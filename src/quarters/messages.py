"""Messages people read, German first, English second (one catalogue, no strings in code)."""

from __future__ import annotations

CATALOGUE: dict[str, dict[str, str]] = {
    "idea.title": {"de": "Bitte geben Sie einen Titel mit 3 bis 120 Zeichen an.",
                   "en": "Please give a title of 3 to 120 characters."},
    "idea.text": {"de": "Bitte beschreiben Sie Ihre Idee mit 10 bis 4000 Zeichen.",
                  "en": "Please describe your idea in 10 to 4000 characters."},
    "idea.action_field": {"de": "Bitte wählen Sie ein Handlungsfeld der Stadt aus.",
                          "en": "Please choose one of the city's action fields."},
    "idea.location": {"de": "Bitte setzen Sie einen Punkt auf der Karte innerhalb der Stadt.",
                      "en": "Please place a point on the map inside the city."},
    "idea.contact": {"de": "Die Kontaktangabe darf höchstens 200 Zeichen haben.",
                     "en": "The contact may have at most 200 characters."},
    "idea.unknown_field": {"de": "Unbekanntes Feld: {field}.", "en": "Unknown field: {field}."},
    "idea.invalid_char": {"de": "Der Text enthält ein unzulässiges Zeichen.",
                          "en": "The text contains a character that is not allowed."},
    "idea.rate_limited": {
        "de": "Sie haben in kurzer Zeit viele Ideen eingereicht. Bitte versuchen Sie es später "
              "noch einmal.",
        "en": "You have submitted many ideas in a short time. Please try again later."},
    "idea.received": {
        "de": "Danke! Ihre Idee ist eingegangen und wird vor der Veröffentlichung geprüft.",
        "en": "Thank you! Your idea has arrived and will be reviewed before it is published."},
    "idea.reason_required": {"de": "Eine Ablehnung braucht eine öffentliche Begründung.",
                             "en": "A rejection needs a public reason."},
    "idea.measure_required": {"de": "Bitte wählen Sie eine veröffentlichte Maßnahme aus.",
                              "en": "Please choose a published measure."},
    "idea.hide_reason_required": {
        "de": "Bitte notieren Sie für das Team, warum die Idee verborgen wird.",
        "en": "Please note for the team why the idea is hidden."},
    "idea.workshop_code": {
        "de": "Der Werkstatt-Code ist unbekannt oder abgelaufen.",
        "en": "The workshop code is unknown or has expired."},
    "feed.new": {"de": "Neue Maßnahme: {title}", "en": "New measure: {title}"},
    "feed.status": {"de": "Status geändert: {title} ({before} → {after})",
                    "en": "Status changed: {title} ({before} → {after})"},
    "feed.milestone": {"de": "Meilenstein bei {title}: {milestone}",
                       "en": "Milestone of {title}: {milestone}"},
    "feed.title": {"de": "quarters – Änderungen für {place}", "en": "quarters – changes for {place}"},
}
LANGUAGES = ("de", "en")


def language(accept_language: str | None) -> str:
    """Pick de or en from an Accept-Language header (German by default)."""
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "de"


def t(key: str, lang: str = "de", **values: object) -> str:
    """The message ``key`` in ``lang`` with values filled in."""
    entry = CATALOGUE[key]
    return entry.get(lang, entry["de"]).format(**values)
