"""Dense warp fields from sparse control-point motion (thin-plate splines) and their inversion.

A `SplineField` is built once per portrait on the control points' source positions; per frame,
`forward(displacement)` is one matrix product giving the forward displacement on a coarse grid,
and `backward_map` inverts it by fixed-point iteration s <- t - F(s) (converges where the warp
does not fold, |dF/ds| < 1), giving the source position sampled by each target grid point.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

TPS_REGULARISATION = 1e-3  # smoothing, relative to the kernel's scale; keeps dense points stable
INVERSION_ITERATIONS = 5


def _tps_kernel(r2: np.ndarray) -> np.ndarray:
    """U(r) = r^2 log r^2, with U(0) = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        k = r2 * np.log(r2)
    k[r2 == 0] = 0
    return k


@dataclass(frozen=True)
class Grid:
    """A coarse sampling grid over an image: point (i, j) sits at pixel (j * stride, i * stride)."""

    stride: int
    rows: int
    cols: int

    @staticmethod
    def for_image(height: int, width: int, stride: int) -> "Grid":
        """Grid covering the image, its last row/column on or past the last pixel."""
        return Grid(stride, -(-(height - 1) // stride) + 1, -(-(width - 1) // stride) + 1)

    def points(self) -> np.ndarray:
        """(rows * cols, 2) float pixel coordinates x, y."""
        ys, xs = np.mgrid[0:self.rows, 0:self.cols].astype(np.float64) * self.stride
        return np.stack([xs.ravel(), ys.ravel()], 1)


class SplineField:
    """Thin-plate interpolation from N control points to a grid, as one (G, N) matrix."""

    def __init__(self, sources: np.ndarray, grid: Grid, length_scale: float):
        """sources: (N, 2) pixel positions; length_scale: pixels per unit used for conditioning."""
        self.grid = grid
        pts = sources / length_scale
        n = len(pts)
        d2 = ((pts[:, None] - pts[None]) ** 2).sum(-1)
        k = _tps_kernel(d2)
        k += TPS_REGULARISATION * np.abs(k).mean() * np.eye(n)
        p = np.hstack([np.ones((n, 1)), pts])
        system = np.zeros((n + 3, n + 3))
        system[:n, :n], system[:n, n:], system[n:, :n] = k, p, p.T
        inverse = np.linalg.inv(system)[:, :n]  # (N+3, N): weights and affine part from values
        g = grid.points() / length_scale
        # evaluate in blocks to bound memory: (G, N+3) @ (N+3, N)
        out = np.empty((len(g), n), np.float32)
        for start in range(0, len(g), 4096):
            gb = g[start:start + 4096]
            ug = _tps_kernel(((gb[:, None] - pts[None]) ** 2).sum(-1))
            out[start:start + 4096] = np.hstack([ug, np.ones((len(gb), 1)), gb]) @ inverse
        self._matrix = out

    def forward(self, displacement: np.ndarray) -> np.ndarray:
        """(N, 2) control displacements (pixels) -> (rows, cols, 2) float32 forward field."""
        field = self._matrix @ displacement.astype(np.float32)
        return field.reshape(self.grid.rows, self.grid.cols, 2)

    def backward_map(self, forward: np.ndarray, iterations: int = INVERSION_ITERATIONS) -> np.ndarray:
        """Invert a forward field on the grid: (rows, cols, 2) source pixel position per target grid point."""
        s = self.grid.stride
        target = self.grid.points().reshape(self.grid.rows, self.grid.cols, 2).astype(np.float32)
        source = target - forward
        for _ in range(iterations - 1):
            sampled = cv2.remap(forward, source[..., 0] / s, source[..., 1] / s, cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
            source = target - sampled
        return source


class Upsampler:
    """Bilinear upsampling of a coarse grid map to every pixel (sampling maps precomputed once)."""

    def __init__(self, grid: Grid, height: int, width: int):
        ys = np.arange(height, dtype=np.float32) / grid.stride
        xs = np.arange(width, dtype=np.float32) / grid.stride
        self._mx, self._my = np.meshgrid(xs, ys)

    def __call__(self, coarse: np.ndarray) -> np.ndarray:
        """(rows, cols, C) float32 -> (H, W, C) float32."""
        return cv2.remap(coarse, self._mx, self._my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
