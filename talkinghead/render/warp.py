"""The coarse sampling grid of the head layer and its bilinear upsampling to every pixel.

The mesh (render/mesh.py) computes the backward map on a `Grid`; an `Upsampler` brings it to every
pixel of the head box before the portrait is sampled once with cv2.remap.
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
