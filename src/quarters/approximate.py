"""Approximate Stadtviertel outlines from point facts (no official geometry needed).

Halle's 43 statistical Stadtteile/-viertel are known here only as facts: a centre
coordinate (Wikipedia infobox), a stated area and a population. No polygons are
available (see ``shared/data/raw/SOURCES.md``). :func:`approximate_districts` turns
those facts into a gap- and overlap-free tiling of the city boundary:

1. Centres come from the facts table. Rows without a usable centre (empty, or a
   coordinate copied from another article) get a documented estimate, see
   :data:`ESTIMATED_CENTRES` and :func:`_fallback_centre`.
2. Stated areas are scaled so that they sum to the boundary area.
3. A *power diagram* (weighted Voronoi diagram) around the centres is fitted so
   that every cell, clipped to the boundary, has its target area. The weights are
   found on a raster of the boundary (the semi-discrete optimal-transport
   formulation): damped Newton steps first, then projected gradient steps. After
   every step the weights are constrained so that each centre stays inside its own
   cell (``w_j - w_i <= (1 - margin) * d_ij**2``). Where that constraint binds (a
   centre hemmed in by close neighbours), the cell cannot reach its target area;
   ``area_deviation`` reports the mismatch per row.
4. Each cell is the intersection of half-planes, clipped to the boundary, so the
   cells tile the boundary without gaps or overlaps (up to float rounding).

The result is a *construction*, not an official boundary: cells are convex pieces
of the boundary and ignore rivers, streets and railways. Every row carries
``approximate=True``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely import affinity, ops
from shapely.geometry import MultiPolygon, Polygon

from quarters.errors import InvalidValue

__all__ = ["ESTIMATED_CENTRES", "COPIED_COORDINATE_MARKER", "approximate_districts"]

#: Hand-placed centres (lat, lon, reason) for rows whose facts lack a usable centre.
ESTIMATED_CENTRES: dict[str, tuple[float, float, str]] = {
    "3 08": (
        51.478056,
        11.986667,
        "estimated: Halle (Saale) Hauptbahnhof (facts/places.csv); the viertel is the "
        "railway land around the station, and its facts coordinate only copies the "
        "Freiimfelde article",
    ),
    "5 72": (
        51.4730,
        11.9265,
        "estimated: hand-placed south of An der Magistrale and east of Zollrain, the "
        "street boundaries named in the halle.de Stadtteilkatalog 2015 (south of the "
        "S-Bahn station Halle-Neustadt, west of Passendorf)",
    ),
    "5 73": (
        51.4790,
        11.9010,
        "estimated: hand-placed west of Nietlebener Straße, south of Nietleben and east "
        "of the B 80, the boundaries named in de.wikipedia 'Westliche Neustadt (Halle)'",
    ),
}

#: Text in ``coord_source`` that marks a coordinate borrowed from another article.
COPIED_COORDINATE_MARKER = "same coordinate as"

DEFAULT_LICENCE = (
    "CC BY 4.0, quarters project (approximate construction); facts: see source column"
)


def approximate_districts(
    facts: pd.DataFrame,
    boundary: Polygon | MultiPolygon,
    *,
    crs: int | str = 25832,
    iterations: int = 30,
    gradient_iterations: int = 80,
    grid_cells: int = 40_000,
    margin: float = 0.05,
    estimated_centres: Mapping[str, tuple[float, float, str]] | None = None,
) -> gpd.GeoDataFrame:
    """Return one approximate MultiPolygon per facts row, tiling ``boundary``.

    Parameters
    ----------
    facts
        The Stadtviertel facts table (``halle_stadtviertel.csv``); strings are fine.
        Needed columns: code, name, lat, lon, area_ha; others are passed through.
    boundary
        City boundary as a shapely (Multi)Polygon in ``crs`` (metres).
    crs
        Projected CRS of ``boundary`` and of the result (default EPSG:25832).
    iterations, gradient_iterations
        Damped Newton steps, then projected gradient steps, both on the raster.
    grid_cells
        Approximate number of raster cells inside the boundary.
    margin
        Fraction of the centre distance kept as slack so centres stay inside.
    estimated_centres
        ``{code: (lat, lon, reason)}`` for rows without a usable centre; defaults
        to :data:`ESTIMATED_CENTRES`.
    """
    if len(facts) == 0:
        raise InvalidValue(code="approximate.no_facts")
    if boundary.is_empty or boundary.area <= 0:
        raise InvalidValue(code="approximate.empty_boundary")
    facts = facts.reset_index(drop=True)
    estimates = ESTIMATED_CENTRES if estimated_centres is None else estimated_centres
    lat, lon, methods = _resolve_centres(facts, estimates)
    sites = _project(lon, lat, crs)
    sites, methods = _ensure_inside(sites, methods, boundary)
    sites, methods = _separate_coincident(sites, methods)
    stated = np.array([_to_float(v) for v in facts.get("area_ha", [None] * len(facts))])
    targets = _target_areas(stated, boundary.area)

    origin = np.array(boundary.centroid.coords[0])
    local_sites = sites - origin
    local_boundary = affinity.translate(boundary, -origin[0], -origin[1])
    weights = _fit_weights_on_grid(
        local_sites, targets, local_boundary, iterations, grid_cells, margin,
        gradient_iterations,
    )
    cells = _power_cells(local_sites, weights, local_boundary)
    geoms = [_as_multipolygon(affinity.translate(c, origin[0], origin[1])) for c in cells]
    return _assemble(facts, geoms, stated, methods, sites, crs)


def _to_float(value: object) -> float | None:
    """Parse a number from a facts cell, or None when empty/invalid."""
    if value is None:
        return None
    try:
        number = float(str(value).strip().replace(",", "."))
    except ValueError:
        return None
    return None if math.isnan(number) else number


def _to_int(value: object) -> int | None:
    """Parse an integer from a facts cell, or None when empty/invalid."""
    number = _to_float(value)
    return None if number is None else int(round(number))


def _text(value: object) -> str | None:
    """Return a stripped string, or None for empty/NaN cells."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _has_usable_centre(row: pd.Series) -> bool:
    """Tell whether a facts row has its own centre coordinate."""
    if _to_float(row.get("lat")) is None or _to_float(row.get("lon")) is None:
        return False
    source = (_text(row.get("coord_source")) or "").lower()
    return COPIED_COORDINATE_MARKER not in source


def _resolve_centres(
    facts: pd.DataFrame, estimates: Mapping[str, tuple[float, float, str]]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Return lat, lon and centre_method per row (facts, table estimate or fallback)."""
    n = len(facts)
    lat = np.full(n, np.nan)
    lon = np.full(n, np.nan)
    methods = [""] * n
    seen: set[tuple[float, float]] = set()
    for i, row in facts.iterrows():
        if _has_usable_centre(row):
            key = (round(_to_float(row["lat"]), 6), round(_to_float(row["lon"]), 6))
            if key not in seen:
                lat[i], lon[i] = key
                methods[i] = "facts"
                seen.add(key)
                continue
        code = _text(row.get("code")) or ""
        if code in estimates:
            lat[i], lon[i], methods[i] = estimates[code]
    known = ~np.isnan(lat)
    for i in range(n):
        if not methods[i]:
            lat[i], lon[i], methods[i] = _fallback_centre(facts, i, lat, lon, known)
    return lat, lon, methods


def _fallback_centre(
    facts: pd.DataFrame, i: int, lat: np.ndarray, lon: np.ndarray, known: np.ndarray
) -> tuple[float, float, str]:
    """Place a centre at the mean of known same-Stadtteil (else Stadtbezirk) centres."""
    for column in ("stadtteil", "stadtbezirk_nr"):
        group = _text(facts.at[i, column]) if column in facts else None
        if group is None:
            continue
        mask = (facts[column].map(_text) == group).to_numpy() & known
        if mask.any():
            reason = f"estimated: mean of {int(mask.sum())} known centre(s) of the same {column}"
            return float(lat[mask].mean()), float(lon[mask].mean()), reason
    if not known.any():
        raise InvalidValue(code="approximate.no_centres")
    return float(lat[known].mean()), float(lon[known].mean()), "estimated: mean of all centres"


def _project(lon: np.ndarray, lat: np.ndarray, crs: int | str) -> np.ndarray:
    """Project WGS84 lon/lat arrays to an (n, 2) array in ``crs``."""
    points = gpd.GeoSeries.from_xy(lon, lat, crs=4326).to_crs(crs)
    return np.column_stack([points.x.to_numpy(), points.y.to_numpy()])


def _ensure_inside(
    sites: np.ndarray, methods: list[str], boundary: Polygon | MultiPolygon
) -> tuple[np.ndarray, list[str]]:
    """Move centres lying outside the (generalised) boundary 100 m inside it."""
    sites = sites.copy()
    methods = list(methods)
    inner = boundary.buffer(-100.0)
    inner = boundary if inner.is_empty else inner
    for i, (x, y) in enumerate(sites):
        point = shapely.Point(x, y)
        if boundary.contains(point):
            continue
        _, moved = ops.nearest_points(point, inner)
        methods[i] += f" (moved {point.distance(moved):.0f} m into the boundary)"
        sites[i] = moved.x, moved.y
    return sites, methods


def _separate_coincident(
    sites: np.ndarray, methods: list[str], min_distance: float = 1.0
) -> tuple[np.ndarray, list[str]]:
    """Shift a centre 100 m north while it coincides with an earlier one."""
    sites = sites.copy()
    methods = list(methods)
    for i in range(1, len(sites)):
        while (np.hypot(*(sites[:i] - sites[i]).T) < min_distance).any():
            sites[i, 1] += 100.0
            if "shifted" not in methods[i]:
                methods[i] += " (shifted north to separate it from an identical centre)"
    return sites, methods


def _target_areas(stated: np.ndarray, total: float) -> np.ndarray:
    """Scale stated areas (ha) to m² summing to ``total``; gaps get the median."""
    values = np.array([np.nan if v is None else v for v in stated], dtype=float)
    if np.isnan(values).all():
        values = np.ones_like(values)
    values = np.where(np.isnan(values) | (values <= 0), np.nanmedian(values), values)
    return values / values.sum() * total


def _raster(boundary: Polygon | MultiPolygon, grid_cells: int) -> tuple[np.ndarray, ...]:
    """Return raster step, cell centres inside the boundary and their row/col index."""
    step = math.sqrt(boundary.area / grid_cells)
    minx, miny, maxx, maxy = boundary.bounds
    xs = np.arange(minx + step / 2, maxx, step)
    ys = np.arange(miny + step / 2, maxy, step)
    gx, gy = np.meshgrid(xs, ys)
    inside = shapely.contains_xy(boundary, gx, gy)
    rows, cols = np.nonzero(inside)
    points = np.column_stack([gx[inside], gy[inside]]).astype(np.float32)
    return step, points, rows, cols, inside.shape


def _assign(points: np.ndarray, sites: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Label each point with the site of least power distance |x - p|² - w.

    ``points`` should be float32 in a local frame (metres from the boundary
    centroid); float32 then resolves power distances to well under a metre.
    """
    offset = ((sites**2).sum(axis=1) - weights).astype(np.float32)
    return np.argmin(offset - points @ (2.0 * sites.T).astype(np.float32), axis=1)


def _interfaces_from_raster(
    labels: np.ndarray, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int], k: int,
    step: float,
) -> np.ndarray:
    """Estimate shared border lengths between cells from raster neighbours (k x k, m)."""
    grid = np.full(shape, -1, dtype=int)
    grid[rows, cols] = labels
    lengths = np.zeros((k, k))
    for a, b in ((grid[:, :-1], grid[:, 1:]), (grid[:-1, :], grid[1:, :])):
        mask = (a >= 0) & (b >= 0) & (a != b)
        np.add.at(lengths, (a[mask], b[mask]), step * math.pi / 4)
    return lengths + lengths.T


def _newton_step(
    sites: np.ndarray, lengths: np.ndarray, residual: np.ndarray
) -> np.ndarray:
    """Solve H dw = residual with H the power-diagram area Jacobian (graph Laplacian)."""
    dist = np.sqrt(((sites[:, None, :] - sites[None, :, :]) ** 2).sum(axis=2))
    np.fill_diagonal(dist, 1.0)
    coupling = lengths / (2.0 * dist)
    hessian = np.diag(coupling.sum(axis=1)) - coupling
    hessian += np.eye(len(sites)) * (1e-6 * max(coupling.max(), 1.0))
    return np.linalg.lstsq(hessian, residual, rcond=None)[0]


def _constraint_bounds(sites: np.ndarray, margin: float) -> np.ndarray:
    """Return c_ij = (1 - margin) * d_ij², the largest allowed w_j - w_i."""
    return ((sites[:, None, :] - sites[None, :, :]) ** 2).sum(axis=2) * (1.0 - margin)


def _enforce_containment(weights: np.ndarray, bounds: np.ndarray, sweeps: int = 0) -> np.ndarray:
    """Make weights feasible so every site lies inside its own power cell.

    First up to ``sweeps`` symmetric (Cimmino-style) corrections that move both
    weights of a violated pair towards each other, then a Bellman-Ford pass that
    only lowers weights and guarantees ``w_j - w_i <= bounds[i, j]`` exactly.
    """
    w = weights.copy()
    for _ in range(sweeps):
        excess = np.maximum(w[None, :] - w[:, None] - bounds, 0.0)
        np.fill_diagonal(excess, 0.0)
        if excess.max() <= 1e-2:
            break
        count = (excess > 0).sum(axis=0) + (excess > 0).sum(axis=1) + 1e-9
        w += 0.5 * (excess.sum(axis=1) - excess.sum(axis=0)) / count
    for _ in range(len(w) + 1):
        new = np.minimum(w, (w[:, None] + bounds).min(axis=0))
        if np.allclose(new, w, rtol=0, atol=1e-6):
            break
        w = new
    return w - w.mean()


def _fit_weights_on_grid(
    sites: np.ndarray,
    targets: np.ndarray,
    boundary: Polygon | MultiPolygon,
    iterations: int,
    grid_cells: int,
    margin: float,
    gradient_iterations: int,
) -> np.ndarray:
    """Fit power weights so raster cell areas approach the targets.

    Damped Newton steps first (fast where no containment bound binds), then
    projected gradient steps, which handle binding bounds better.
    """
    step, points, rows, cols, shape = _raster(boundary, grid_cells)
    cell_area = boundary.area / len(points)
    bounds = _constraint_bounds(sites, margin)
    k = len(sites)
    weights = np.zeros(k)

    def evaluate(w: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        labels = _assign(points, sites, w)
        areas = np.bincount(labels, minlength=k) * cell_area
        return float(np.abs(areas / targets - 1.0).mean()), areas, labels

    error, areas, labels = evaluate(weights)
    for _ in range(iterations):
        lengths = _interfaces_from_raster(labels, rows, cols, shape, k, step)
        delta = _newton_step(sites, lengths, targets - areas)
        tau = 1.0
        while tau > 1e-3:
            trial = _enforce_containment(weights + tau * delta, bounds)
            trial_error, trial_areas, trial_labels = evaluate(trial)
            if trial_error < error:
                break
            tau /= 2.0
        else:
            break
        weights, error, areas, labels = trial, trial_error, trial_areas, trial_labels

    best = (error, weights)
    for _ in range(gradient_iterations):
        lengths = _interfaces_from_raster(labels, rows, cols, shape, k, step)
        slope = _area_slopes(sites, lengths)
        weights = _enforce_containment(weights + 0.5 * (targets - areas) / slope, bounds, 100)
        error, areas, labels = evaluate(weights)
        if error < best[0]:
            best = (error, weights)
    return best[1]


def _area_slopes(sites: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Return d(area_i)/d(w_i) = sum_j L_ij / (2 d_ij), the Jacobian diagonal."""
    dist = np.sqrt(((sites[:, None, :] - sites[None, :, :]) ** 2).sum(axis=2))
    np.fill_diagonal(dist, 1.0)
    return (lengths / (2.0 * dist)).sum(axis=1) + 1e-9


def _clip_halfplane(poly: np.ndarray, normal: np.ndarray, offset: float) -> np.ndarray:
    """Clip a convex polygon (m, 2) to {x : normal . x <= offset} (Sutherland-Hodgman)."""
    if len(poly) == 0:
        return poly
    side = poly @ normal - offset
    out = []
    for a in range(len(poly)):
        b = (a + 1) % len(poly)
        pa, pb, sa, sb = poly[a], poly[b], side[a], side[b]
        if sa <= 0:
            out.append(pa)
        if (sa < 0 < sb) or (sb < 0 < sa):
            out.append(pa + (pb - pa) * (sa / (sa - sb)))
    return np.array(out) if out else np.empty((0, 2))


def _power_cells(
    sites: np.ndarray, weights: np.ndarray, boundary: Polygon | MultiPolygon
) -> list:
    """Return the power cells of all sites, clipped to the boundary."""
    minx, miny, maxx, maxy = boundary.bounds
    pad = max(maxx - minx, maxy - miny)
    box = np.array(
        [[minx - pad, miny - pad], [maxx + pad, miny - pad], [maxx + pad, maxy + pad],
         [minx - pad, maxy + pad]]
    )
    norms = (sites**2).sum(axis=1) - weights
    cells = []
    for i in range(len(sites)):
        poly = box
        for j in range(len(sites)):
            if j != i:
                poly = _clip_halfplane(poly, 2.0 * (sites[j] - sites[i]), norms[j] - norms[i])
        cell = Polygon(poly) if len(poly) >= 3 else Polygon()
        cells.append(shapely.make_valid(shapely.intersection(cell, boundary)))
    return cells


def _as_multipolygon(geom) -> MultiPolygon:
    """Return the polygonal parts of ``geom`` as one valid MultiPolygon."""
    return MultiPolygon([p for p in _polygons(shapely.make_valid(geom)) if p.area > 0.01])


def _polygons(geom) -> list[Polygon]:
    """Flatten any geometry (collections, multi-parts) into its non-empty Polygons."""
    if isinstance(geom, Polygon):
        return [] if geom.is_empty else [geom]
    if hasattr(geom, "geoms"):
        return [p for part in geom.geoms for p in _polygons(part)]
    return []


def _assemble(
    facts: pd.DataFrame,
    geoms: list[MultiPolygon],
    stated: np.ndarray,
    methods: list[str],
    sites: np.ndarray,
    crs: int | str,
) -> gpd.GeoDataFrame:
    """Build the output GeoDataFrame with facts columns and fit diagnostics."""
    def column(name: str) -> list[str | None]:
        return [_text(v) for v in facts[name]] if name in facts else [None] * len(facts)

    area_cell = [g.area / 1e4 for g in geoms]
    deviation = [None if s is None else a / s - 1.0 for a, s in zip(area_cell, stated, strict=True)]
    centres = gpd.GeoSeries.from_xy(sites[:, 0], sites[:, 1], crs=crs).to_crs(4326)
    licence = [
        f"{DEFAULT_LICENCE}; facts licence: {lic}" if lic else DEFAULT_LICENCE
        for lic in column("licence")
    ]
    data = {
        "code": column("code"),
        "code3": column("code3"),
        "name": column("name"),
        "stadtteil": column("stadtteil"),
        "stadtbezirk_nr": column("stadtbezirk_nr"),
        "stadtbezirk": column("stadtbezirk"),
        "area_ha_stated": [None if s is None else float(s) for s in stated],
        "population": [_to_int(v) for v in facts.get("population", [None] * len(facts))],
        "population_date": column("population_date"),
        "approximate": [True] * len(facts),
        "centre_method": methods,
        "centre_lat": centres.y.round(6).to_list(),
        "centre_lon": centres.x.round(6).to_list(),
        "area_ha_cell": area_cell,
        "area_deviation": deviation,
        "source": column("source"),
        "licence": licence,
        "confidence": column("confidence"),
    }
    for name in ("area_ha_stated", "population", "area_deviation"):
        data[name] = pd.Series(data[name], dtype=object)  # keep None, not NaN
    frame = pd.DataFrame(data)
    return gpd.GeoDataFrame(frame, geometry=geoms, crs=crs)
