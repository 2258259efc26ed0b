"""Fold check: the Jacobian determinant of a backward sampling map.

A backward map gives, for every output pixel, the source position it samples. Where the map is
one-to-one and keeps orientation its Jacobian determinant is positive; where it is 0 or negative the
image folds over itself (tearing, smears, mirrored strips). Used by tests and scripts/pose_sweep.py.
"""

from __future__ import annotations

import numpy as np


def jacobian_determinant(sampling_map: np.ndarray) -> np.ndarray:
    """(h, w, 2) source x, y per pixel -> (h - 1, w - 1) float64 det d(source)/d(target), central per cell."""
    m = np.asarray(sampling_map, np.float64)
    # forward differences averaged over each 2x2 cell, so both derivatives sit at the same point
    dx = ((m[:-1, 1:] - m[:-1, :-1]) + (m[1:, 1:] - m[1:, :-1])) / 2  # (h-1, w-1, 2) d/dx
    dy = ((m[1:, :-1] - m[:-1, :-1]) + (m[1:, 1:] - m[:-1, 1:])) / 2  # (h-1, w-1, 2) d/dy
    return dx[..., 0] * dy[..., 1] - dx[..., 1] * dy[..., 0]


def fold_share(sampling_map: np.ndarray, mask: np.ndarray | None = None) -> tuple[float, float]:
    """(share of cells with det <= 0, smallest det) over the map, or over the cells where mask (h-1, w-1) is true."""
    det = jacobian_determinant(sampling_map)
    if mask is not None:
        det = det[mask]
    if det.size == 0:
        return 0.0, 1.0
    return float((det <= 0).mean()), float(det.min())


def single_layer_cells(layers: np.ndarray) -> np.ndarray:
    """(rows - 1, cols - 1) bool: grid cells whose four corners are each covered by exactly one triangle.
    Elsewhere a near surface overlaps a far one (an occlusion edge: the map jumps there by design) or a
    corner lies on a shared edge."""
    return (layers[:-1, :-1] == 1) & (layers[:-1, 1:] == 1) & (layers[1:, :-1] == 1) & (layers[1:, 1:] == 1)


def mesh_fold_check(renderer, expression: np.ndarray, head: np.ndarray, gaze: np.ndarray) -> dict:
    """Fold check of one frame on the renderer's coarse mesh map (before upsampling): folds (single-layer
    cells with det <= 0), holes (grid points inside the image that no triangle drew), overlap cells."""
    rig = renderer.rig
    targets = rig.targets(expression, head, gaze)
    coarse, owner, layers = rig.mesh.backward_map(targets.control, targets.depth, rig.head_grid, draw_unmoved=True)
    det = jacobian_determinant(coarse)
    single = single_layer_cells(layers)
    pts = rig.head_grid.points().reshape(owner.shape + (2,))
    in_image = (pts >= 0).all(-1) & (pts[..., 0] <= rig.width - 1) & (pts[..., 1] <= rig.height - 1)
    return {"folds": int((single & (det <= 0)).sum()), "min_det": float(det[single].min()) if single.any() else 1.0,
            "holes": int((in_image & (owner < 0)).sum()), "overlap_cells": int((~single).sum()),
            "cells": int(single.size)}
