"""A planar triangle mesh and its piecewise-affine backward map: one-to-one wherever no triangle flips.

The mesh is the Delaunay triangulation of the control points' source positions (face landmarks, the
head ring, fixed anchors), so it tiles the image without overlaps. Per frame the target vertex positions are
rasterised on a coarse grid: every grid point inside a target triangle gets the source point with the
same barycentric coordinates (the inverse of the triangle's affine map, computed directly, no
iteration). `keep_orientation` clamps vertex motion softly so no triangle flips or collapses.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import Delaunay

from .warp import Grid

N_FACE_VERTICES = 468
SIZE_CLASSES = (2, 3, 4, 6, 8)  # candidate-box sides (grid points) tested point by point; larger triangles are rasterised
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
    """(T, 3) Delaunay triangles of points (P, 2), all wound with positive signed area."""
    tri = Delaunay(points).simplices.copy()
    flip = signed_areas(points, tri) < 0
    tri[flip] = tri[flip][:, [0, 2, 1]]
    return tri


class TriangleMesh:
    """Triangles over source vertices (V, 2) pixels, all with positive source area (a planar tiling)."""

    def __init__(self, sources: np.ndarray, triangles: np.ndarray, collapsible: np.ndarray | None = None,
                 may_turn_away: np.ndarray | None = None):
        """collapsible: (T,) bool, triangles allowed to shrink to nothing (eye and mouth openings);
        may_turn_away: (T,) bool, triangles of the face surface, which may face away (then not drawn)."""
        self.sources = np.asarray(sources, np.float64)
        self.triangles = np.asarray(triangles, int)
        self.source_area = signed_areas(self.sources, self.triangles)  # (T,)
        if (self.source_area <= 0).any():
            raise ValueError("TriangleMesh needs positively wound, non-degenerate source triangles")
        none = np.zeros(len(self.triangles), bool)
        self.collapsible = none if collapsible is None else np.asarray(collapsible, bool)
        self.may_turn_away = none if may_turn_away is None else np.asarray(may_turn_away, bool)

    def keep_orientation(self, targets: np.ndarray, base: np.ndarray, movable: np.ndarray) -> np.ndarray:
        """Targets (V, 2) with the motion of offending vertices pulled back towards base (V, 2) (a soft
        clamp), so that no triangle keeps less than MIN_AREA_SHARE of its source area, and none of the
        collapsible ones turns inside out; base itself must satisfy that."""
        alpha = np.ones(len(targets))
        floor = np.where(self.collapsible, -COLLAPSE_EPS * self.source_area, MIN_AREA_SHARE * self.source_area)
        floor[self.may_turn_away & ~self.collapsible] = -np.inf
        for step in range(CLAMP_PASSES + 1):
            out = base + alpha[:, None] * (targets - base)
            bad = signed_areas(out, self.triangles) < floor
            if not bad.any():
                break
            offending = np.unique(self.triangles[bad])
            offending = offending[movable[offending]]
            alpha[offending] *= CLAMP_STEP
        return out

    def backward_map(self, targets: np.ndarray, depth: np.ndarray, grid: Grid,
                     exact_layers: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rasterise the target mesh with a depth test: (rows, cols, 2) float32 source pixel position of
        every grid point, (rows, cols) int32 id of the triangle drawn there (-1 outside the mesh: the
        point keeps its own position) and (rows, cols) int count of the triangles covering each point
        (exact only with exact_layers, which tests every triangle point by point: slower, for checks). depth: (V,) per vertex, smaller is nearer. Flipped or collapsed
        triangles face away from the camera and are not drawn; where triangles overlap the nearest wins."""
        out = grid.points().reshape(grid.rows, grid.cols, 2).astype(np.float32)
        owner = np.full((grid.rows, grid.cols), -1, np.int32)
        t = (np.asarray(targets, np.float64) - (grid.x0, grid.y0)) / grid.stride  # grid units
        corners = t[self.triangles]  # (T, 3, 2)
        lo = np.maximum(np.floor(corners.min(1)).astype(int), 0)  # candidate boxes clipped to the grid
        hi = np.minimum(np.floor(corners.max(1)).astype(int), (grid.cols - 1, grid.rows - 1))
        keep = (signed_areas(t, self.triangles) > 1e-9) & (hi >= lo).all(1)
        side = (hi - lo + 1).max(1)
        inverse = _barycentric_inverse(corners, keep)
        classes = SIZE_CLASSES + (max(int(side.max()), 1),) if exact_layers else SIZE_CLASSES
        hits = [self._raster_big(np.nonzero(keep & (side > classes[-1]))[0], corners, depth, grid)]
        start = 0
        for size in classes:  # small triangles: test every grid point of a size x size box
            ids = np.nonzero(keep & (side <= size) & (side > start))[0]
            start = size
            if len(ids):
                hits.append(self._candidates(ids, lo[ids], size, inverse, grid))
        ids, gx, gy = (np.concatenate(h) for h in zip(*hits))
        # far first, so the nearest triangle is written last (triangles ranked by mean depth; an int16
        # key lets numpy's stable sort use a radix sort)
        rank = np.empty(len(self.triangles), np.int16)
        rank[np.argsort(-depth[self.triangles].mean(1), kind="stable")] = np.arange(len(self.triangles))
        order = np.argsort(rank[ids], kind="stable")
        ids, gx, gy = ids[order], gx[order], gy[order]
        bary = gx[:, None] * inverse[ids, 0] + gy[:, None] * inverse[ids, 1] + inverse[ids, 2]  # (K, 3)
        out[gy, gx] = np.einsum("kj,kjd->kd", bary, self.sources[self.triangles[ids]])
        owner[gy, gx] = ids
        layers = np.bincount(gy * grid.cols + gx, minlength=grid.rows * grid.cols).reshape(grid.rows, grid.cols)
        return out, owner, layers

    def _raster_big(self, ids: np.ndarray, corners: np.ndarray, depth: np.ndarray, grid: Grid):
        """(triangle ids, gx, gy) of the grid points covered by large triangles (drawn far to near)."""
        import cv2

        owner = np.full((grid.rows, grid.cols), -1, np.int32)
        for k in ids[np.argsort(-depth[self.triangles[ids]].mean(1), kind="stable")]:
            cv2.fillConvexPoly(owner, np.round(corners[k] * 16).astype(np.int32), int(k), cv2.LINE_8, 4)
        gy, gx = np.nonzero(owner >= 0)
        return owner[gy, gx], gx, gy

    def _candidates(self, ids: np.ndarray, lo: np.ndarray, size: int, inverse: np.ndarray, grid: Grid):
        """(triangle ids, gx, gy) of the grid points inside triangles ids (candidates: size x size from lo)."""
        oy, ox = np.mgrid[0:size, 0:size]
        gx = lo[:, 0, None] + ox.ravel()[None]  # (n, size^2)
        gy = lo[:, 1, None] + oy.ravel()[None]
        inv = inverse[ids]
        bary = gx[..., None] * inv[:, None, 0] + gy[..., None] * inv[:, None, 1] + inv[:, None, 2]  # (n, size^2, 3)
        inside = (bary >= -INSIDE_EPS).all(-1) & (gx < grid.cols) & (gy < grid.rows)
        which, cand = np.nonzero(inside)
        return ids[which], gx[which, cand], gy[which, cand]
