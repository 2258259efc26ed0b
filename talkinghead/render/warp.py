"""The coarse sampling grid of the head layer and its bilinear upsampling to every pixel.

The mesh (render/mesh.py) computes the backward map on a `Grid`; `untangle` makes every grid cell of
it keep its orientation, and an `Upsampler` brings it to every pixel of the head box before the
portrait is sampled once with cv2.remap.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np


@dataclass(frozen=True)
class Grid:
    """A coarse sampling grid: point (i, j) sits at pixel (x0 + j * stride, y0 + i * stride)."""

    stride: int
    rows: int
    cols: int
    x0: float = 0.0
    y0: float = 0.0

    @staticmethod
    def for_box(x0: int, y0: int, x1: int, y1: int, stride: int) -> "Grid":
        """Grid for pixels [x0, x1) x [y0, y1) laid out as cv2.resize samples it: with a scale of exactly
        `stride`, output pixel q reads grid position (q + 0.5) / stride - 0.5, so the points sit at the
        centres of stride-wide cells, plus one cell of margin on each side (no edge is clamped)."""
        half = (stride - 1) / 2 - stride
        return Grid(stride, -(-(y1 - y0) // stride) + 2, -(-(x1 - x0) // stride) + 2, x0 + half, y0 + half)

    def points(self) -> np.ndarray:
        """(rows * cols, 2) float pixel coordinates x, y."""
        ys, xs = np.mgrid[0:self.rows, 0:self.cols].astype(np.float64) * self.stride
        return np.stack([xs.ravel() + self.x0, ys.ravel() + self.y0], 1)

    @cached_property
    def _points_image(self) -> np.ndarray:
        image = self.points().reshape(self.rows, self.cols, 2).astype(np.float32)
        image.flags.writeable = False
        return image

    def points_image(self) -> np.ndarray:
        """(rows, cols, 2) float32 pixel x, y of every point (read-only; computed once)."""
        return self._points_image


class Upsampler:
    """Bilinear upsampling of a coarse grid map to every pixel of a box (cv2.resize by the grid's stride)."""

    def __init__(self, grid: Grid, box: tuple[int, int, int, int]):
        """Sample the grid at every pixel of box (x0, y0, x1, y1), x1/y1 exclusive."""
        x0, y0, x1, y1 = box
        # resized pixel q sits at grid.x0 + q + 0.5 - stride / 2
        qx, qy = (v - g + (grid.stride - 1) / 2 for v, g in ((x0, grid.x0), (y0, grid.y0)))
        if qx != int(qx) or qy != int(qy) or qx < 0 or qy < 0:
            raise ValueError("the box must start on a pixel of the grid's resize layout (Grid.for_box)")
        self._size = (grid.cols * grid.stride, grid.rows * grid.stride)
        self._crop = (slice(int(qy), int(qy) + y1 - y0), slice(int(qx), int(qx) + x1 - x0))
        if self._crop[0].stop > self._size[1] or self._crop[1].stop > self._size[0]:
            raise ValueError("the grid does not cover the box")

    def __call__(self, coarse: np.ndarray) -> np.ndarray:
        """(rows, cols, C) float32 -> (y1 - y0, x1 - x0, C) float32."""
        return cv2.resize(coarse, self._size, interpolation=cv2.INTER_LINEAR)[self._crop]


UNTANGLE_PASSES = 30  # at most this many smoothing passes (a few cells of a frame need 1-5)
UNTANGLE_WEIGHT = 0.5  # each pass moves an offending grid point this share of the way to its neighbours' mean
MIN_CORNER_DET = 1e-6  # a cell corner's cross product must exceed this share of an unmoved cell's (stride^2): positive


def folded_cells(coarse: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """(rows - 1, cols - 1) bool: grid cells of a map (rows, cols, 2) where the cross product of the
    cell's two edges at one of its four corners is at or below floor.

    The map bilinearly interpolated inside a cell, f(u, v) = a + b u + c v + d u v, has the Jacobian
    determinant b x c + u (b x d) + v (d x c): affine in u and v, so it is positive over the whole cell
    exactly when it is at the four corners, where it is these cross products."""
    m = np.asarray(coarse)
    across = m[:, 1:] - m[:, :-1]
    down = m[1:] - m[:-1]
    ax, ay, dx, dy = across[..., 0], across[..., 1], down[..., 0], down[..., 1]
    bad = np.zeros((m.shape[0] - 1, m.shape[1] - 1), bool)
    for a in (slice(None, -1), slice(1, None)):  # top and bottom edge of each cell
        for d in (slice(None, -1), slice(1, None)):  # left and right edge
            bad |= ax[a] * dy[:, d] - ay[a] * dx[:, d] <= floor
    return bad


def untangle(coarse: np.ndarray, stride: int) -> np.ndarray:
    """The coarse map (rows, cols, 2) with every cell positively oriented at its four corners, so the
    map upsampled from it keeps its orientation at every pixel (no mirrored sliver).

    A piecewise-affine map sampled on a grid can give a cell whose corners come from two triangles
    with very different maps (a compressed cheek next to stretched hair at a large turn, the far side of
    an occlusion edge, a stretched mouth opening): its bilinear interpolant then turns over inside the
    cell, though the mesh itself does not. Only the corners of such cells move, a share of the way to
    their four neighbours' mean per pass (local Laplacian untangling), until none is left (at most
    UNTANGLE_PASSES passes; the pose sweep's frames need a few); a map with nothing to mend is returned
    as it is, and every cell away from the mended ones keeps its values to the bit."""
    floor = MIN_CORNER_DET * stride * stride
    bad = folded_cells(coarse, floor)
    if not bad.any():
        return coarse
    m = coarse.astype(np.float64)
    for _ in range(UNTANGLE_PASSES):
        corners = np.zeros(m.shape[:2], bool)
        for row in (0, 1):
            for col in (0, 1):
                corners[row:row + bad.shape[0], col:col + bad.shape[1]] |= bad
        i, j = np.nonzero(corners)
        up, down = np.maximum(i - 1, 0), np.minimum(i + 1, m.shape[0] - 1)
        left, right = np.maximum(j - 1, 0), np.minimum(j + 1, m.shape[1] - 1)
        mean = (m[up, j] + m[down, j] + m[i, left] + m[i, right]) / 4  # every point moves from the same pass's values
        m[i, j] += UNTANGLE_WEIGHT * (mean - m[i, j])
        bad = folded_cells(m, floor)
        if not bad.any():
            break
    return m.astype(coarse.dtype)
