"""Point clusters of the public map, computed on the server the way the map's own index does.

The public map clusters its measures with supercluster (web/node_modules/supercluster 8.x,
options ``radius`` 56, ``maxZoom`` 16, ``extent`` 512, ``minPoints`` 2). The page draws its
first view from clusters computed here, before it has loaded and indexed the 10,000 points,
and builds its own index afterwards. So that nothing moves when the page's index takes over,
this is supercluster's algorithm step by step: the same greedy pass over the points in input
order from zoom 16 down to 0, the same spherical-mercator projection, float32 coordinates in
the distance test (supercluster's KD-tree stores ``Float32Array``s), the same cluster ids
(``(index << 5) + zoom + 1 + number of points``) and the same expansion zoom. Only the
neighbour search differs (a grid instead of the KD-tree): it finds the same set; the order in
which neighbours are summed can change the weighted centre in the last bits (≈1e-15°).

Input is the compact points answer of ``/api/measures/points`` (parallel arrays), in its
order and with its rounded coordinates – exactly what the page feeds its own index.
"""

from __future__ import annotations

import math
from array import array
from typing import Any

RADIUS = 56
MAX_ZOOM = 16
MIN_ZOOM = 0
EXTENT = 512
MIN_POINTS = 2
LOCATED = ("exact", "approximate")
# Levels are answered from zoom 0 upwards while a level holds at most this many items, so
# the answer stays small (the first view of a city is at zoom 10–13).
MAX_LEVEL_ITEMS = 1500


def _f32(values: list[float]) -> list[float]:
    """Values rounded to float32 and back (JavaScript's Math.fround / a Float32Array)."""
    return list(array("f", values))


def lng_x(lng: float) -> float:
    """Longitude → spherical mercator x in [0, 1] (supercluster's lngX)."""
    return lng / 360 + 0.5


def lat_y(lat: float) -> float:
    """Latitude → spherical mercator y in [0, 1] (supercluster's latY)."""
    sin = math.sin(lat * math.pi / 180)
    if sin >= 1:
        return 0.0
    if sin <= -1:
        return 1.0
    y = 0.5 - 0.25 * math.log((1 + sin) / (1 - sin)) / math.pi
    return 0.0 if y < 0 else 1.0 if y > 1 else y


def x_lng(x: float) -> float:
    """Mercator x → longitude (supercluster's xLng)."""
    return (x - 0.5) * 360


def y_lat(y: float) -> float:
    """Mercator y → latitude (supercluster's yLat)."""
    y2 = (180 - y * 360) * math.pi / 180
    return 360 * math.atan(math.exp(y2)) / math.pi - 90


class _Level:
    """One zoom level: parallel lists like supercluster's flat ``data`` array."""

    __slots__ = ("x", "y", "fx", "fy", "zoom", "ident", "parent", "num")

    def __init__(self, x: list[float], y: list[float], ident: list[int], num: list[int]) -> None:
        self.x, self.y, self.ident, self.num = x, y, ident, num
        self.fx, self.fy = _f32(x), _f32(y)  # what the KD-tree holds
        self.zoom = [math.inf] * len(x)
        self.parent = [-1] * len(x)

    def __len__(self) -> int:
        return len(self.x)


def _grid(level: _Level, r: float) -> tuple[dict[tuple[int, int], list[int]], float]:
    cell = r if r > 0 else 1.0
    grid: dict[tuple[int, int], list[int]] = {}
    for i, (x, y) in enumerate(zip(level.fx, level.fy, strict=True)):
        grid.setdefault((int(x // cell), int(y // cell)), []).append(i)
    return grid, cell


def _cluster(level: _Level, zoom: int, total: int) -> _Level:
    """supercluster's ``_cluster``: the next coarser level from ``level`` at ``zoom``."""
    r = RADIUS / (EXTENT * math.pow(2, zoom))
    r2 = r * r
    grid, cell = _grid(level, r)
    fx, fy, zooms, nums = level.fx, level.fy, level.zoom, level.num
    nx: list[float] = []
    ny: list[float] = []
    nident: list[int] = []
    nnum: list[int] = []
    for i in range(len(level)):
        if zooms[i] <= zoom:
            continue
        zooms[i] = zoom
        x, y = level.x[i], level.y[i]
        cx, cy = int(x // cell), int(y // cell)
        neighbours = []
        for gx in (cx - 1, cx, cx + 1):
            for gy in (cy - 1, cy, cy + 1):
                for k in grid.get((gx, gy), ()):
                    dx = fx[k] - x
                    dy = fy[k] - y
                    if dx * dx + dy * dy <= r2:
                        neighbours.append(k)
        origin = nums[i]
        count = origin + sum(nums[k] for k in neighbours if zooms[k] > zoom)
        if count > origin and count >= MIN_POINTS:
            wx, wy = x * origin, y * origin
            ident = (i << 5) + (zoom + 1) + total
            for k in neighbours:
                if zooms[k] <= zoom:
                    continue
                zooms[k] = zoom
                wx += level.x[k] * nums[k]
                wy += level.y[k] * nums[k]
                level.parent[k] = ident
            level.parent[i] = ident
            nx.append(wx / count)
            ny.append(wy / count)
            nident.append(ident)
            nnum.append(count)
        else:
            # with minPoints 2 a point without unclaimed neighbours stays as it is
            nx.append(x)
            ny.append(y)
            nident.append(level.ident[i])
            nnum.append(origin)
    return _Level(nx, ny, nident, nnum)


def build(lon: list[float], lat: list[float]) -> dict[int, _Level]:
    """The levels ``MAX_ZOOM + 1`` (the points) down to ``MIN_ZOOM``, as supercluster's load()."""
    total = len(lon)
    x = _f32([lng_x(v) for v in lon])
    y = _f32([lat_y(v) for v in lat])
    levels = {MAX_ZOOM + 1: _Level(x, y, list(range(total)), [1] * total)}
    for zoom in range(MAX_ZOOM, MIN_ZOOM - 1, -1):
        levels[zoom] = _cluster(levels[zoom + 1], zoom, total)
    return levels


def expansion_zoom(children: dict[int, list[int]], cluster_id: int, total: int) -> int:
    """supercluster's ``getClusterExpansionZoom``: the zoom at which the cluster splits."""
    zoom = (cluster_id - total) % 32 - 1
    while zoom <= MAX_ZOOM:
        kids = children.get(cluster_id, [])
        zoom += 1
        if len(kids) != 1:
            break
        cluster_id = kids[0]
    return zoom


def children_of(levels: dict[int, _Level]) -> dict[int, list[int]]:
    """cluster id → ids of its children (cluster ids, or point indexes as ``-1 - index``)."""
    children: dict[int, list[int]] = {}
    for level in levels.values():
        for i in range(len(level)):
            parent = level.parent[i]
            if parent == -1:
                continue
            ident = level.ident[i] if level.num[i] > 1 else -1 - level.ident[i]
            children.setdefault(parent, []).append(ident)
    return children


def located(points: dict[str, Any]) -> list[int]:
    """Indexes of the compact answer's points that the map draws (as public-measures.js)."""
    lon, lat, precision = points["lon"], points["lat"], points["location_precision"]
    return [i for i in range(len(lon))
            if isinstance(lon[i], (int, float)) and isinstance(lat[i], (int, float))
            and precision[i] in LOCATED]


POINT_FIELDS = ("id", "title", "status", "action_field", "city_ags", "location_precision")


def levels_body(points: dict[str, Any]) -> dict[str, Any]:
    """The answer of ``/api/measures/points?format=clusters`` for a compact points answer.

    ``levels`` maps a zoom to its items: clusters as ``[lon, lat, count, cluster_id,
    expansion_zoom]``, single measures as ``[lon, lat, 1, index]`` where ``index`` points into
    ``points`` (the same fields as the compact format, for the markers' labels and popups).
    ``count`` is the number of located measures the levels represent – what the page's own
    index will hold.
    """
    keep = located(points)
    lon = [float(points["lon"][i]) for i in keep]
    lat = [float(points["lat"][i]) for i in keep]
    total = len(keep)
    levels = build(lon, lat) if total else {}
    children = children_of(levels)
    out: dict[str, list[list[Any]]] = {}
    singles: dict[int, int] = {}  # position in keep → position in the answer's points
    for zoom in range(MIN_ZOOM, MAX_ZOOM + 1):
        level = levels.get(zoom)
        if level is None or len(level) > MAX_LEVEL_ITEMS:
            break
        items: list[list[Any]] = []
        for i in range(len(level)):
            if level.num[i] > 1:
                ident = level.ident[i]
                items.append([x_lng(level.x[i]), y_lat(level.y[i]), level.num[i], ident,
                              expansion_zoom(children, ident, total)])
            else:
                p = level.ident[i]
                slot = singles.setdefault(p, len(singles))
                items.append([lon[p], lat[p], 1, slot])
        out[str(zoom)] = items
    order = sorted(singles, key=singles.get)  # type: ignore[arg-type]
    single_points = {name: [points[name][keep[p]] for p in order] for name in POINT_FIELDS}
    return {"format": "clusters", "count": total,
            "numberMatched": points.get("numberMatched"),
            "numberReturned": points.get("numberReturned"),
            "options": {"radius": RADIUS, "maxZoom": MAX_ZOOM, "extent": EXTENT,
                        "minPoints": MIN_POINTS},
            "levels": out, "points": single_points}
