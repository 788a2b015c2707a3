"""Typology of spatial units: cluster indicator profiles into a few named types.

Units are standardised exactly as in :mod:`quarters.analysis.similarity` (z-score or robust,
zero-spread indicators set to 0) and multiplied by ``sqrt(weight)``, so that the Euclidean
distance used by the clustering is the weighted similarity distance.  Units missing any
indicator are not clustered: their label is ``<NA>`` and they are listed in ``excluded``.

Clusters are renumbered 0 … k−1 by size (largest first) so results are reproducible.  When
``k`` is None it is chosen by the highest silhouette over ``k_range`` (the silhouette is computed
on a seeded sample of 5,000 units when there are more).  ``"agglomerative"`` is Ward linkage
(scipy's ``linkage(method="ward")``, which is what scikit-learn's ``AgglomerativeClustering``
with ``linkage="ward"`` computes; the tree is built once and cut at every k).  It needs memory
quadratic in the number of units (≈ 0.5 GB for 11,000), so ``max_ward_units`` refuses it above a
size (the public API sets it); k-means and the sampled silhouette need memory linear in the
units (the silhouette's distance blocks are capped at ``_SILHOUETTE_MEMORY_MB``).

Type names: for each cluster the indicators whose mean standardised value is at least
``threshold`` (default 0.5) away from 0 are named, strongest first (at most ``terms``), as
"<indicator> hoch/niedrig" and "high/low <indicator>", or with the phrases given in ``phrases``
(indicator -> (de_high, de_low, en_high, en_low), e.g. ``("hohe Dichte", "geringe Dichte",
"high density", "low density")``).  A cluster with no such indicator is "durchschnittlich" /
"average".  Duplicate names get the suffix " (Typ n)" / " (type n)".
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from quarters.errors import InvalidValue
from quarters.messages import Note

from .similarity import _check_option, _check_values, _numeric, resolve_weights, standardise

__all__ = ["TypologyResult", "assign", "same_type", "typology"]

_CLUSTER_METHODS = ("kmeans", "agglomerative")
_SILHOUETTE_SAMPLE = 5000
_SILHOUETTE_MEMORY_MB = 32  # scikit-learn's default working memory is 1 GB per distance block


@dataclass
class TypologyResult:
    """Outcome of :func:`typology`.

    Attributes
    ----------
    labels
        Cluster number per unit (Int64, ``<NA>`` for excluded units), indexed like ``values``.
    k, silhouette
        Number of clusters and the silhouette of the result (−1 … 1, higher = better separated).
    centres
        Mean indicator values per cluster in the original units (clusters x indicators).
    centres_z
        The same in standardised (unweighted) units; used for naming.
    profiles
        Per cluster: ``size``, ``label_de``, ``label_en``.
    """

    labels: pd.Series
    k: int
    silhouette: float
    centres: pd.DataFrame
    centres_z: pd.DataFrame
    profiles: pd.DataFrame
    silhouette_by_k: dict[int, float]
    method: str
    scaling: str
    weights: pd.Series
    center: pd.Series
    scale: pd.Series
    indicators: list[str]
    excluded: dict[Hashable, list[str]]
    warnings: list[str] = field(default_factory=list)


def _cluster(x: np.ndarray, ks: Sequence[int], method: str, seed: int) -> dict[int, np.ndarray]:
    """Cluster ``x`` for every k in ``ks``; return raw labels per k."""
    if method == "kmeans":
        return {k: KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x) for k in ks}
    tree = linkage(x, method="ward")
    return {k: fcluster(tree, t=k, criterion="maxclust") - 1 for k in ks}


def _silhouette(x: np.ndarray, labels: np.ndarray, seed: int) -> float:
    """Silhouette score (sampled beyond 5,000 units); −1 if only one cluster was formed."""
    if len(np.unique(labels)) < 2:
        return -1.0
    from sklearn import config_context

    size = _SILHOUETTE_SAMPLE if len(x) > _SILHOUETTE_SAMPLE else None
    with config_context(working_memory=_SILHOUETTE_MEMORY_MB):
        return float(silhouette_score(x, labels, sample_size=size, random_state=seed))


def _renumber(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0 … k−1 by size descending (ties: first appearance)."""
    uniq, first, counts = np.unique(labels, return_index=True, return_counts=True)
    order = np.lexsort((first, -counts))
    mapping = np.empty(uniq.max() + 1, dtype=np.int64)
    mapping[uniq[order]] = np.arange(len(uniq))
    return mapping[labels]


def _names(
    centres_z: pd.DataFrame,
    phrases: Mapping[str, tuple[str, str, str, str]] | None,
    threshold: float,
    terms: int,
) -> tuple[list[str], list[str]]:
    """German and English type names from the standardised cluster centres."""
    de_all, en_all = [], []
    for _, row in centres_z.iterrows():
        strong = row[row.abs() >= threshold]
        strong = strong.reindex(strong.abs().sort_values(ascending=False, kind="stable").index)
        de, en = [], []
        for ind, zv in strong.iloc[:terms].items():
            p = (phrases or {}).get(ind) or (
                f"{ind} hoch",
                f"{ind} niedrig",
                f"high {ind}",
                f"low {ind}",
            )
            de.append(p[0] if zv > 0 else p[1])
            en.append(p[2] if zv > 0 else p[3])
        de_all.append(", ".join(de) or "durchschnittlich")
        en_all.append(", ".join(en) or "average")
    for names, word in ((de_all, "Typ"), (en_all, "type")):
        counts = pd.Series(names).value_counts()
        for i, nm in enumerate(list(names)):
            if counts[nm] > 1:
                names[i] = f"{nm} ({word} {i})"
    return de_all, en_all


def typology(
    values: pd.DataFrame,
    weights: Mapping[str, float] | None = None,
    *,
    k: int | None = None,
    method: str = "kmeans",
    seed: int = 0,
    k_range: Sequence[int] = range(3, 9),
    scaling: str = "zscore",
    phrases: Mapping[str, tuple[str, str, str, str]] | None = None,
    threshold: float = 0.5,
    terms: int = 2,
    max_ward_units: int | None = None,
) -> TypologyResult:
    """Cluster the units of ``values`` into types (k-means or Ward); choose k by silhouette.

    ``values`` and ``weights`` are those of :func:`similarity` (weight-0 indicators are
    ignored). Further parameters:

    k
        Number of types; None = best silhouette over ``k_range``.
    method
        ``"kmeans"`` (``n_init=10``, seeded) or ``"agglomerative"`` (Ward).
    scaling
        ``"zscore"`` or ``"robust"``, as ``method`` in :func:`similarity`.
    max_ward_units
        ``"agglomerative"`` on more complete units than this raises ValueError (its memory
        grows with the square of the units); None = no limit.
    """
    _check_values(values)
    _check_option("method", method, _CLUSTER_METHODS)
    _check_option("scaling", scaling, ("zscore", "robust"))
    w = resolve_weights(values, weights)
    raw = _numeric(values, list(w.index))
    miss = raw.isna().to_numpy()
    bad = miss.any(axis=1)
    cols = np.asarray(raw.columns, dtype=object)
    excluded = {uid: cols[m].tolist() for uid, m in zip(raw.index[bad], miss[bad], strict=True)}
    notes = [Note("not_clustered", count=len(excluded))] if excluded else []
    data = raw[~bad]
    n = len(data)
    if method == "agglomerative" and max_ward_units is not None and n > max_ward_units:
        raise InvalidValue(code="analysis.ward_units", pointer="cluster_method",
                           params={"count": n, "max": max_ward_units})
    ks = [k] if k is not None else sorted({int(x) for x in k_range if 2 <= x < n})
    if k is not None and not (isinstance(k, int | np.integer) and 2 <= k < n):
        raise InvalidValue(code="analysis.k_range", pointer="k",
                           params={"count": n, "value": str(k)[:40]})
    if not ks:
        raise InvalidValue(code="analysis.no_usable_k", pointer="k", params={
            "range": ", ".join(map(str, k_range)), "count": n})
    zdf, center, scale, zero = standardise(data, scaling)
    notes += [Note("zero_spread_types", indicator=str(c)) for c in zero]
    x = zdf.to_numpy() * np.sqrt(w.to_numpy())
    runs = _cluster(x, ks, method, seed)
    sil = {kk: _silhouette(x, lab, seed) for kk, lab in runs.items()}
    best = max(sil, key=lambda kk: (sil[kk], -kk))  # ties: fewer types
    lab = _renumber(runs[best])
    kk = int(lab.max()) + 1
    centres = data.groupby(lab).mean()
    centres_z = zdf.groupby(lab).mean()
    centres.index.name = centres_z.index.name = "cluster"
    de, en = _names(centres_z, phrases, threshold, terms)
    profiles = pd.DataFrame(
        {"size": np.bincount(lab, minlength=kk), "label_de": de, "label_en": en},
        index=pd.Index(range(kk), name="cluster"),
    )
    labels = pd.Series(pd.NA, index=values.index, dtype="Int64", name="cluster")
    labels.loc[data.index] = lab
    return TypologyResult(
        labels=labels,
        k=kk,
        silhouette=sil[best],
        centres=centres,
        centres_z=centres_z,
        profiles=profiles,
        silhouette_by_k=sil,
        method=method,
        scaling=scaling,
        weights=w,
        center=center,
        scale=scale,
        indicators=list(w.index),
        excluded=excluded,
        warnings=notes,
    )


def assign(result: TypologyResult, profile: pd.Series | Mapping[str, float]) -> int:
    """Cluster number of an external profile: the nearest centre in weighted standardised space.

    The profile must have a value for every indicator of the typology.
    """
    prof = pd.Series(profile, dtype=float) if isinstance(profile, Mapping) else profile
    try:
        ref = pd.to_numeric(prof.reindex(result.indicators), errors="raise").astype(float)
    except (TypeError, ValueError) as exc:
        raise InvalidValue(code="analysis.reference_not_numeric", pointer="reference",
                           params={"reason": str(exc)[:120]}) from exc
    missing = ref.index[ref.isna()].tolist()
    if missing:
        raise InvalidValue(code="analysis.profile_lacks", pointer="reference",
                           params={"keys": ", ".join(map(str, missing))})
    scale = result.scale.where(result.scale > 0, np.inf)  # zero spread -> z = 0
    z = ((ref - result.center) / scale).to_numpy()
    sw = np.sqrt(result.weights.to_numpy())
    d2 = (np.square(result.centres_z.to_numpy() - z) * sw**2).sum(axis=1)
    return int(result.centres_z.index[int(np.argmin(d2))])


def same_type(
    result: TypologyResult, reference: Hashable | pd.Series | Mapping[str, float]
) -> pd.Series:
    """Boolean Series over all units: is the unit of the same type as ``reference``?

    ``reference`` is a unit id (looked up first), a cluster number, a type name (``label_de`` or
    ``label_en``), or an external profile (Series/mapping), which is assigned to the nearest
    centre.  Units that were not clustered are False.
    """
    if isinstance(reference, pd.Series | Mapping):
        cluster = assign(result, reference)
    else:
        cluster = _lookup(result, reference)
    return (result.labels == cluster).fillna(False).astype(bool)


def _lookup(result: TypologyResult, reference: Hashable) -> int:
    """Resolve a unit id, cluster number or type name to a cluster number."""
    try:
        in_index = reference in result.labels.index
    except TypeError:
        in_index = False
    if in_index:
        value = result.labels.loc[reference]
        if pd.isna(value):
            raise InvalidValue(code="analysis.unit_not_clustered", pointer="reference", params={
                "unit": repr(reference),
                "keys": ", ".join(map(str, result.excluded.get(reference) or []))})
        return int(value)
    if isinstance(reference, int | np.integer) and 0 <= reference < result.k:
        return int(reference)
    prof = result.profiles
    hit = prof.index[(prof["label_de"] == reference) | (prof["label_en"] == reference)]
    if len(hit):
        return int(hit[0])
    raise InvalidValue(code="analysis.type_reference", pointer="reference", params={
        "value": repr(reference)[:80], "max": result.k - 1,
        "names": ", ".join(prof["label_de"].tolist())})
