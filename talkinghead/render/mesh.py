"""A planar triangle mesh and its piecewise-affine backward map: one-to-one wherever no triangle flips.

The mesh is the Delaunay triangulation of the control points' source positions (face landmarks, the
head ring, fixed anchors), so it tiles the image without overlaps; `keep_edges` then forces chosen
segments in as edges (the rig keeps the inner-lip lines, so no triangle joins the two lips). Per frame the target vertex positions are
rasterised on a coarse grid: every grid point inside a target triangle gets the source point with the
same barycentric coordinates (the inverse of the triangle's affine map, computed directly, no
iteration), row by row in closed form. `keep_orientation` clamps vertex motion softly so no triangle flips or collapses.
"""

from __future__ import annotations

import cv2
import numpy as np

from .warp import Grid

N_FACE_VERTICES = 468
MIN_AREA_SHARE = 0.02  # a triangle may shrink to this share of its source area before motion is clamped
CLAMP_STEP = 0.6  # each clamping pass scales the offending vertices' motion by this
CLAMP_PASSES = 10
INSIDE_EPS = 1e-6
COLLAPSE_EPS = 1e-3  # eye and mouth openings may close to nothing but not turn inside out  # barycentric tolerance: grid points on shared edges belong to both triangles


def signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(T,) signed areas (positive counter-clockwise in x-right, y-down image axes is negative; see orient)."""
    a, b, c = points[triangles[:, 0]], points[triangles[:, 1]], points[triangles[:, 2]]
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


def _barycentric_inverse(corners: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """(T, 3, 3) inverse of each triangle's rows [x, y, 1] (so [gx, gy, 1] @ inverse = barycentric
    coordinates), written out in closed form; zero for triangles not kept."""
    (x0, y0), (x1, y1), (x2, y2) = (corners[:, k].T for k in range(3))
    det = np.where(keep, x0 * (y1 - y2) + x1 * (y2 - y0) + x2 * (y0 - y1), 1.0)
    inv = np.stack([np.stack([y1 - y2, y2 - y0, y0 - y1], 1),
                    np.stack([x2 - x1, x0 - x2, x1 - x0], 1),
                    np.stack([x1 * y2 - x2 * y1, x2 * y0 - x0 * y2, x0 * y1 - x1 * y0], 1)], 1)  # (T, 3, 3)
    return np.where(keep[:, None, None], inv / det[:, None, None], 0.0)


def delaunay(points: np.ndarray) -> np.ndarray:
    """(T, 3) Delaunay triangles of points (P, 2), all wound with positive signed area.

    OpenCV's incremental Delaunay (cv2.Subdiv2D) is used, so that starting a run does not import SciPy
    (a quarter of a second); where it cannot give a checked tiling (points closer than float32
    resolution), SciPy's Qhull does. Ties (four points on a circle) may be split either way."""
    points = np.asarray(points, np.float64)
    tri = _subdiv_triangles(points)
    if tri is None:
        from scipy.spatial import Delaunay

        tri = Delaunay(points).simplices.copy()
    flip = signed_areas(points, tri) < 0
    tri[flip] = tri[flip][:, [0, 2, 1]]
    return tri


def _subdiv_triangles(points: np.ndarray) -> np.ndarray | None:
    """cv2.Subdiv2D's triangles as indices into points, or None unless they tile the convex hull."""
    f32 = points.astype(np.float32)
    index = {(float(x), float(y)): i for i, (x, y) in enumerate(f32)}
    if len(index) != len(points):
        return None  # points equal in float32
    lo, hi = np.floor(f32.min(0)) - 1, np.ceil(f32.max(0)) + 1
    subdiv = cv2.Subdiv2D((int(lo[0]), int(lo[1]), int(hi[0] - lo[0]) + 1, int(hi[1] - lo[1]) + 1))
    subdiv.insert([(float(x), float(y)) for x, y in f32])
    corners = subdiv.getTriangleList().reshape(-1, 3, 2).astype(np.float32)
    ids = [[index.get((float(x), float(y)), -1) for x, y in triangle] for triangle in corners]
    tri = np.array([t for t in ids if min(t) >= 0], int).reshape(-1, 3)  # triangles on the virtual outer corners go
    hull = cv2.contourArea(cv2.convexHull(f32))
    if not len(tri) or len(np.unique(tri)) != len(points):
        return None
    if abs(np.abs(signed_areas(points, tri)).sum() - hull) > 1e-6 * max(hull, 1.0):
        return None
    return tri


def keep_edges(points: np.ndarray, triangles: np.ndarray, edges: list[tuple[int, int]],
               max_flips: int = 500) -> np.ndarray | None:
    """`triangles` (T, 3) of points (P, 2), positively wound, with every edge of `edges` made an edge of
    the mesh by flipping the edges that cross it (Sloan's method for a constrained triangulation).
    None where that fails: a vertex on a wanted edge, no crossing edge that can be flipped (convex
    quadrilateral) within max_flips, or wanted edges that cross each other."""
    pts = np.asarray(points, np.float64)
    tri = [list(map(int, t)) for t in triangles]
    owners: dict[tuple[int, int], list[int]] = {}  # edge (low, high) -> the triangles that have it
    for k, t in enumerate(tri):
        for i in range(3):
            owners.setdefault(_edge(t[i], t[(i + 1) % 3]), []).append(k)
    budget = [max_flips]
    for a, b in edges:
        if _edge(a, b) not in owners and not _insert_edge(pts, tri, owners, a, b, budget):
            return None
    if any(_edge(a, b) not in owners for a, b in edges):
        return None  # edges that cross each other: a later one flipped an earlier one away
    out = np.array(tri, int)
    flip = signed_areas(pts, out) < 0
    out[flip] = out[flip][:, [0, 2, 1]]
    return out


def _edge(u: int, v: int) -> tuple[int, int]:
    return (u, v) if u < v else (v, u)


def _insert_edge(pts: np.ndarray, tri: list[list[int]], owners: dict, a: int, b: int, budget: list[int]) -> bool:
    """Flip the edges crossing segment a-b until it is an edge (tri and owners updated in place)."""
    inner = [e for e, ks in owners.items() if len(ks) == 2]
    ends = np.array(inner, int)
    queue = [inner[i] for i in np.flatnonzero(_segments_cross(pts[a], pts[b], pts[ends[:, 0]], pts[ends[:, 1]]))]
    if not queue:
        return False  # a vertex lies on the segment
    stalled = 0
    while queue:
        c, d = queue.pop(0)
        k1, k2 = owners[(c, d)]
        x = next(v for v in tri[k1] if v not in (c, d))
        y = next(v for v in tri[k2] if v not in (c, d))
        # the quadrilateral c-x-d-y must be convex (x-y separates c from d) for the flip to tile it
        if not _segments_cross(pts[x], pts[y], pts[c][None], pts[d][None])[0]:
            queue.append((c, d))
            stalled += 1
            if stalled > len(queue):
                return False
            continue
        stalled = 0
        tri[k1], tri[k2] = [x, y, c], [y, x, d]
        del owners[(c, d)]
        owners[_edge(x, y)] = [k1, k2]
        for edge, old, new in ((_edge(y, c), k2, k1), (_edge(x, d), k1, k2)):
            ks = owners[edge]
            ks[ks.index(old)] = new
        budget[0] -= 1
        if budget[0] < 0:
            return False
        if _segments_cross(pts[a], pts[b], pts[x][None], pts[y][None])[0]:
            queue.append(_edge(x, y))
    return True


def _segments_cross(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
    """(M,) whether segment a-b (2,) crosses each segment c-d (M, 2) at an interior point (a shared
    end point does not count)."""
    def side(o, p, q):
        return (p[..., 0] - o[..., 0]) * (q[..., 1] - o[..., 1]) - (p[..., 1] - o[..., 1]) * (q[..., 0] - o[..., 0])

    return (side(a, b, c) * side(a, b, d) < 0) & (side(c, d, a) * side(c, d, b) < 0)


class TriangleMesh:
    """Triangles over source vertices (V, 2) pixels, all with positive source area (a planar tiling) but
    the collapsible ones, which may be closed or crossed there."""

    def __init__(self, sources: np.ndarray, triangles: np.ndarray, collapsible: np.ndarray | None = None,
                 may_turn_away: np.ndarray | None = None, opened_sources: np.ndarray | None = None):
        """collapsible: (T,) bool, triangles allowed to shrink to nothing (eye and mouth openings; these
        may also be closed or crossed in the source, a portrait whose lips touch); may_turn_away: (T,)
        bool, triangles of the face surface, which may face away (then not drawn); opened_sources: (V, 2)
        where the collapsible triangles closed or crossed in the source sample instead once they open
        (the rig: the lips parted), so their map is never mirrored (default: sources)."""
        self.sources = np.asarray(sources, np.float64)
        self.triangles = np.asarray(triangles, int)
        self.source_area = signed_areas(self.sources, self.triangles)  # (T,)
        none = np.zeros(len(self.triangles), bool)
        self.collapsible = none if collapsible is None else np.asarray(collapsible, bool)
        closed = self.source_area <= 0
        if (closed & ~self.collapsible).any():
            raise ValueError("TriangleMesh needs positively wound, non-degenerate source triangles")
        self.corner_sources = self.sources[self.triangles]  # (T, 3, 2) what each triangle samples
        if opened_sources is not None:
            self.corner_sources[closed] = np.asarray(opened_sources, np.float64)[self.triangles[closed]]
        edges = np.concatenate([self.triangles[:, [0, 1]], self.triangles[:, [1, 2]], self.triangles[:, [2, 0]]])
        self.edges = np.unique(np.sort(edges, axis=1), axis=0)  # (E, 2) each edge once
        self.degree = np.bincount(self.edges.ravel(), minlength=len(self.sources)).astype(np.float64)
        self.may_turn_away = none if may_turn_away is None else np.asarray(may_turn_away, bool)

    def keep_orientation(self, targets: np.ndarray, base: np.ndarray, movable: np.ndarray,
                         spread: bool = True) -> np.ndarray:
        """Targets (V, 2) with the motion of offending vertices pulled back towards base (V, 2) (a soft
        clamp), so that no triangle keeps less than MIN_AREA_SHARE of its source area, and none of the
        collapsible ones turns inside out; base itself must satisfy that. `spread`: each pull-back is
        shared with the neighbours (see _neighbour_mean); without it only the offending vertices give way."""
        alpha = np.ones(len(targets))
        floor = np.where(self.collapsible, -COLLAPSE_EPS * self.source_area, MIN_AREA_SHARE * self.source_area)
        floor[self.may_turn_away & ~self.collapsible] = -np.inf
        floor[self.collapsible & (self.source_area <= 0)] = -np.inf  # closed in the source: any way it goes
        for step in range(CLAMP_PASSES + 1):
            out = base + alpha[:, None] * (targets - base)
            bad = signed_areas(out, self.triangles) < floor
            if not bad.any():
                break
            offending = np.unique(self.triangles[bad])
            offending = offending[movable[offending]]
            alpha[offending] *= CLAMP_STEP
            if spread:
                alpha = np.where(movable, np.minimum(alpha, (alpha + self._neighbour_mean(alpha)) / 2), alpha)
        return out

    def _neighbour_mean(self, values: np.ndarray) -> np.ndarray:
        """(V,) mean of each vertex's neighbours' values. Each pass of the clamp spreads its pull-backs to
        the neighbours this way, so that a row of vertices along the face outline is pulled back
        together; pulled back one by one, every other one, they made a saw-tooth edge."""
        (a, b), n = self.edges.T, len(values)
        sums = np.bincount(a, values[b], minlength=n) + np.bincount(b, values[a], minlength=n)
        return sums / np.maximum(self.degree, 1.0)

    def backward_map(self, targets: np.ndarray, depth: np.ndarray, grid: Grid, draw_unmoved: bool = False,
                     coverage: bool = True) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Rasterise the target mesh with a depth test: (rows, cols, 2) float32 source pixel position of
        every grid point, (rows, cols) int32 id of the triangle drawn there (-1: none; the point keeps
        its own position) and (rows, cols) int count of the triangles covering each point (both None
        unless `coverage`: the renderer needs only the map). depth: (V,) per vertex, smaller is nearer.
        Flipped or collapsed triangles face away from the camera and are not drawn; where triangles
        overlap the nearest wins. Background triangles none of whose corners moved map points to
        themselves and are skipped unless draw_unmoved (the fold check draws them)."""
        out = grid.points_image().copy()
        t = (np.asarray(targets, np.float64) - (grid.x0, grid.y0)) / grid.stride  # grid units
        corners = t[self.triangles]  # (T, 3, 2)
        lo = np.maximum(np.ceil(corners.min(1) - INSIDE_EPS).astype(int), 0)  # candidate boxes clipped to the grid
        hi = np.minimum(np.floor(corners.max(1) + INSIDE_EPS).astype(int), (grid.cols - 1, grid.rows - 1))
        keep = (signed_areas(t, self.triangles) > 1e-9) & (hi >= lo).all(1)
        if not draw_unmoved:
            moved = np.abs(np.asarray(targets, np.float64) - self.sources).max(1) > 1e-9
            keep &= moved[self.triangles].any(1) | self.may_turn_away  # face triangles may overlap: always drawn
        ids = np.nonzero(keep)[0]
        # the layers around the face (hair, ears, neck, background) first, then the face's own triangles,
        # each far first (ranked by mean depth): scanned in this order the nearest is written last, and no
        # stretched triangle of hair or background is laid over the face where a turned cheek reaches past
        # the outline (ranking those by their corners' mean depth put some in front of the far cheek)
        order = np.lexsort((-depth[self.triangles[ids]].mean(1), self.may_turn_away[ids]))
        ids = ids[order]
        inverse = _barycentric_inverse(corners[ids], np.ones(len(ids), bool))  # (K, 3, 3)
        which, gx, gy = _scan(inverse, lo[ids], hi[ids])  # grouped by triangle, in that order
        # per triangle, [gx, gy, 1] @ inverse @ corners' sources = source position: one (3, 2) affine map
        affine = (inverse @ self.corner_sources[ids])[which]  # (P, 3, 2)
        out[gy, gx] = gx[:, None] * affine[:, 0] + gy[:, None] * affine[:, 1] + affine[:, 2]
        if not coverage:
            return out, None, None
        layers = np.bincount(gy * grid.cols + gx, minlength=grid.rows * grid.cols).reshape(grid.rows, grid.cols)
        owner = np.full((grid.rows, grid.cols), -1, np.int32)
        owner[gy, gx] = ids[which]
        return out, owner, layers


def _scan(inverse: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid points inside each triangle, row by row: (triangle index, gx, gy), each (P,).

    inverse: (K, 3, 3) barycentric inverses; lo, hi: (K, 2) inclusive candidate boxes. On row y,
    barycentric j is a_j x + c_j, so each of the three half-planes bounds x from one side."""
    heights = hi[:, 1] - lo[:, 1] + 1
    tri = np.repeat(np.arange(len(inverse)), heights)  # (R,) one entry per candidate row
    y = lo[tri, 1] + (np.arange(len(tri)) - np.repeat(np.cumsum(heights) - heights, heights))
    a = inverse[tri, 0]  # (R, 3)
    c = y[:, None] * inverse[tri, 1] + inverse[tri, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = (-INSIDE_EPS - c) / a
    lower = np.where(a > 0, bound, -np.inf).max(1)
    upper = np.where(a < 0, bound, np.inf).min(1)
    empty = ((a == 0) & (c < -INSIDE_EPS)).any(1)
    x0 = np.maximum(np.ceil(lower), lo[tri, 0])
    x1 = np.minimum(np.floor(upper), hi[tri, 0])
    count = np.where(empty, 0, np.maximum(x1 - x0 + 1, 0)).astype(int)
    row = np.repeat(np.arange(len(tri)), count)
    gx = x0[row].astype(int) + (np.arange(len(row)) - np.repeat(np.cumsum(count) - count, count))
    return tri[row], gx, y[row]
