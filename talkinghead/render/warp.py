"""The coarse sampling grid of the head layer and its bilinear upsampling to every pixel.

The mesh (render/mesh.py) computes the backward map on a `Grid`; an `Upsampler` brings it to every
pixel of the head box before the portrait is sampled once with cv2.remap.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Grid:
    """A coarse sampling grid over a pixel box: point (i, j) sits at (x0 + j * stride, y0 + i * stride)."""

    stride: int
    rows: int
    cols: int
    x0: int = 0
    y0: int = 0

    @staticmethod
    def for_box(x0: int, y0: int, x1: int, y1: int, stride: int) -> "Grid":
        """Grid covering pixels [x0, x1) x [y0, y1), its last row/column on or past the last pixel."""
        return Grid(stride, -(-(y1 - y0 - 1) // stride) + 1, -(-(x1 - x0 - 1) // stride) + 1, x0, y0)

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) pixel box the grid was made for (x1, y1 exclusive, may overshoot by < stride)."""
        return self.x0, self.y0, self.x0 + (self.cols - 1) * self.stride + 1, self.y0 + (self.rows - 1) * self.stride + 1

    def points(self) -> np.ndarray:
        """(rows * cols, 2) float pixel coordinates x, y."""
        ys, xs = np.mgrid[0:self.rows, 0:self.cols].astype(np.float64) * self.stride
        return np.stack([xs.ravel() + self.x0, ys.ravel() + self.y0], 1)


class Upsampler:
    """Bilinear upsampling of a coarse grid map to every pixel (sampling maps precomputed once)."""

    def __init__(self, grid: Grid, box: tuple[int, int, int, int]):
        """Sample the grid at every pixel of box (x0, y0, x1, y1), x1/y1 exclusive."""
        x0, y0, x1, y1 = box
        ys = (np.arange(y0, y1, dtype=np.float32) - grid.y0) / grid.stride
        xs = (np.arange(x0, x1, dtype=np.float32) - grid.x0) / grid.stride
        self._mx, self._my = np.meshgrid(xs, ys)

    def __call__(self, coarse: np.ndarray) -> np.ndarray:
        """(rows, cols, C) float32 -> (y1 - y0, x1 - x0, C) float32."""
        return cv2.remap(coarse, self._mx, self._my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
