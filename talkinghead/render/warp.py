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


class SplineField:
    """Thin-plate interpolation from N control points to a grid, as one (G, N) matrix."""

    def __init__(self, sources: np.ndarray, grid: Grid, length_scale: float, fade: np.ndarray | None = None,
                 n_moving: int | None = None):
        """sources: (N, 2) pixel positions; length_scale: pixels per unit used for conditioning;
        fade: optional (rows, cols) weights that take the field to zero at the grid's edges;
        n_moving: only the first n_moving points ever move (the rest are fixed anchors), so
        `forward` takes (n_moving, 2) displacements."""
        self.grid = grid
        self._target = grid.points().reshape(grid.rows, grid.cols, 2).astype(np.float32)
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
        if fade is not None:
            out *= fade.reshape(-1, 1)
        self._matrix = np.ascontiguousarray(out[:, :n_moving])  # fixed anchors contribute nothing

    def forward(self, displacement: np.ndarray) -> np.ndarray:
        """(n_moving, 2) control displacements (pixels) -> (rows, cols, 2) float32 forward field."""
        field = self._matrix @ displacement.astype(np.float32)
        return field.reshape(self.grid.rows, self.grid.cols, 2)

    def backward_map(self, forward: np.ndarray, iterations: int = INVERSION_ITERATIONS) -> np.ndarray:
        """Invert a forward field on the grid: (rows, cols, 2) source pixel position per target grid point."""
        g = self.grid
        target = self._target
        source = target - forward
        for _ in range(iterations - 1):
            sampled = cv2.remap(forward, (source[..., 0] - g.x0) / g.stride, (source[..., 1] - g.y0) / g.stride,
                                cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            source = target - sampled
        return source


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
