"""Map classification of one indicator (choropleth classes and legend labels) via mapclassify.

Rules
-----
* Classes are numbered 0 … k−1 from low to high; class ``i`` holds the values ``x`` with
  ``bins[i−1] < x ≤ bins[i]`` (``bins`` are the upper bounds, as in mapclassify).
* Missing values (NaN/None) are not classified: their class is **−1**, so the class Series stays
  integer; they are counted separately in ``n_missing`` and get no legend entry.
* Fewer distinct values than ``k``: the number of classes is reduced to the number of distinct
  values (one class per value, its bin is the value itself), and a note is added to
  ``warnings``; no class is ever empty by construction of duplicate bins.
* ``natural_breaks`` is mapclassify's ``NaturalBreaks`` (Jenks' criterion via 1-D k-means), run
  with a fixed seed so the result is reproducible.  The exact ``FisherJenks`` takes minutes for
  10,000 values without numba and is therefore not used.
* Legend labels read ``"lower – upper"`` (en dash), the first class starting at the minimum.
  ``locale="de"``: decimal comma and a narrow no-break space (U+202F, the "thin space" of
  DIN 5008 that does not break lines) as thousands separator, e.g. ``"12 345,6 – 23 456,7"``;
  ``locale="en"``: ``"12,345.6 – 23,456.7"``.
"""

from __future__ import annotations

import warnings as _warnings
from typing import Any, Literal

import mapclassify
import numpy as np
import pandas as pd

from quarters.errors import InvalidValue
from quarters.messages import Note

from .similarity import _check_option

__all__ = ["THIN_SPACE", "classify", "format_number"]

Scheme = Literal["quantiles", "natural_breaks", "equal_interval"]
THIN_SPACE = "\u202f"
_SCHEMES = ("quantiles", "natural_breaks", "equal_interval")
_LOCALES = ("de", "en")


def format_number(x: float, digits: int = 1, locale: str = "de") -> str:
    """Format ``x`` with ``digits`` decimals and the locale's separators (``"de"`` or ``"en"``)."""
    _check_option("locale", locale, _LOCALES)
    s = f"{x:,.{digits}f}"
    if s in ("-0", "-0." + "0" * digits):  # avoid "-0,0" for tiny negatives
        s = s[1:]
    if locale == "en":
        return s
    return s.replace(",", THIN_SPACE).replace(".", ",")


def _auto_digits(values: np.ndarray, edges: np.ndarray) -> int:
    """Fewest decimals (0 for integer data, else ≥ 1) that keep all legend edges distinct."""
    integral = bool(np.all(np.equal(np.mod(values, 1), 0)))
    start = 0 if integral else 1
    for d in range(start, 7):
        rounded = np.round(edges, d)
        if len(np.unique(rounded)) == len(np.unique(edges)):
            return d
    return 6


def _bins(x: np.ndarray, scheme: str, k: int, seed: int) -> np.ndarray:
    """Upper bounds for ``k`` classes (k ≤ number of distinct values) with mapclassify."""
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore", UserWarning)
        if scheme == "quantiles":
            b = mapclassify.Quantiles(x, k=k).bins
        elif scheme == "equal_interval":
            b = mapclassify.EqualInterval(x, k=k).bins
        else:
            state = np.random.get_state()  # NaturalBreaks draws from the global generator
            try:
                np.random.seed(seed)
                b = mapclassify.NaturalBreaks(x, k=k).bins
            finally:
                np.random.set_state(state)
    b = np.unique(np.asarray(b, dtype=float))
    b[-1] = max(b[-1], x.max())  # the last bound always covers the maximum
    return b


def classify(
    series: pd.Series,
    scheme: Scheme = "quantiles",
    k: int = 5,
    *,
    locale: str = "de",
    digits: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Classify ``series`` into ``k`` classes; return bins, classes, counts and legend labels.

    Returns
    -------
    dict
        ``scheme``, ``k`` (classes actually formed), ``bins`` (upper bounds, list of float),
        ``lower`` (minimum), ``classes`` (Series of int aligned with ``series``, −1 = missing),
        ``counts`` (list of int per class), ``n_missing``, ``labels`` (legend strings),
        ``digits`` and ``warnings``.
    """
    _check_option("scheme", scheme, _SCHEMES)
    _check_option("locale", locale, _LOCALES)
    if not isinstance(k, int | np.integer) or k < 1:
        raise InvalidValue(code="analysis.at_least", pointer="k",
                           params={"name": "k", "min": 1, "value": str(k)[:40]})
    s = pd.Series(series)
    try:
        vals = pd.to_numeric(s, errors="raise").astype(float).to_numpy()
    except (TypeError, ValueError) as exc:
        raise InvalidValue(code="analysis.columns_not_numeric",
                           params={"reason": str(exc)[:120]}) from exc
    if np.isinf(vals).any():
        raise InvalidValue(code="analysis.series_infinite")
    ok = ~np.isnan(vals)
    x = vals[ok]
    notes: list[str] = []
    classes = np.full(len(vals), -1, dtype=np.int64)
    if len(x) == 0:
        notes.append(Note("classes_all_missing"))
        return _result(scheme, [], float("nan"), s, classes, [], [], 0, notes)
    n_unique = len(np.unique(x))
    if n_unique < k:
        notes.append(Note("classes_few_values", count=n_unique, k=int(k)))
        bins = np.unique(x)
    else:
        bins = _bins(x, scheme, int(k), seed)
        if len(bins) < k:
            notes.append(Note("classes_few_bounds", scheme=scheme, count=len(bins), k=int(k)))
    classes[ok] = np.searchsorted(bins, x, side="left")
    counts = np.bincount(classes[ok], minlength=len(bins)).tolist()
    lower = float(x.min())
    d = _auto_digits(x, np.concatenate([[lower], bins])) if digits is None else int(digits)
    edges = [lower, *bins.tolist()]
    labels = [
        format_number(edges[i], d, locale) + " – " + format_number(edges[i + 1], d, locale)
        for i in range(len(bins))
    ]
    return _result(scheme, bins.tolist(), lower, s, classes, counts, labels, d, notes)


def _result(
    scheme: str,
    bins: list[float],
    lower: float,
    s: pd.Series,
    classes: np.ndarray,
    counts: list[int],
    labels: list[str],
    digits: int,
    notes: list[str],
) -> dict[str, Any]:
    """Assemble the dict returned by :func:`classify`."""
    return {
        "scheme": scheme,
        "k": len(bins),
        "bins": bins,
        "lower": lower,
        "classes": pd.Series(classes, index=s.index, name=s.name),
        "counts": counts,
        "n_missing": int((classes == -1).sum()),
        "labels": labels,
        "digits": digits,
        "warnings": notes,
    }
