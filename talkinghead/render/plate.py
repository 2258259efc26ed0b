"""The background plate: the portrait with the person cut out and the hole filled, made once per
portrait, so a head that turns, tilts or moves back shows background behind it instead of
dragging the background along.

    person mask (face/segmentation.py) -> core: the person grown by PLATE_GROW face widths, and the
                                          face outline grown PLATE_HEAD_SCALE times (ears, earrings and
                                          hair next to the face that the segmenter missed)
    plate  = the portrait outside the core, the core filled from the background around it
    matte  = 1 on the core and MATTE_MARGIN_CELLS grid cells beyond, then falling to 0 over
             PLATE_FEATHER face widths

Per frame the head layer's coarse map (on its grid) carries the matte with the person, and is
upsampled like the map itself; the frame is matte x (warped portrait) + (1 - matte) x plate.
Outside the core the plate *is* the portrait, and the matte is exactly 1 on the core even after the
coarse sampling (the margin covers the interpolation), so where the head is at rest the frame equals
the portrait exactly, soft edge included; the plate only shows where the person moved away from.
The fill is a push-pull pyramid (weighted averages at halving sizes, blended back up) made at a
quarter of the size: smooth, no streaks, a blur of the nearby background rather than invented detail.
"""

from __future__ import annotations

import cv2
import numpy as np

PLATE_GROW = 0.10  # face widths the person mask is grown by (soft edges and stray hair stay with the person)
PLATE_HEAD_SCALE = 1.3  # the face outline grown about its centre: always moves with the head
PLATE_FEATHER = 0.10  # face widths over which the matte falls to 0 outside that
MATTE_MARGIN_CELLS = 2  # the matte stays 1 this many grid cells past the core (coarse sampling stays exact there)
MIN_FILL_SIDE = 4  # the pyramid stops at this size
FILL_DOWNSCALE = 4  # the fill is computed at this fraction of the box's size


class BackgroundPlate:
    """Plate and matte of one portrait over the head box (the only region the head layer moves)."""

    def __init__(self, image: np.ndarray, person: np.ndarray, face_outline: np.ndarray, face_width: float,
                 box: tuple[int, int, int, int], grid_stride: int = 1):
        """image (H, W, 3) uint8; person (H, W) bool; face_outline (N, 2) pixels, in order around the face;
        box (x0, y0, x1, y1) the head layer's region; grid_stride: the pixels between the head map's grid points."""
        feather = max(1.0, PLATE_FEATHER * face_width)
        to_person = cv2.distanceTransform((~person).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        core = (to_person <= PLATE_GROW * face_width).astype(np.uint8)  # the person grown (a disc dilation)
        centre = face_outline.mean(0)
        head = np.round(centre + (face_outline - centre) * PLATE_HEAD_SCALE).astype(np.int32)
        core = cv2.fillPoly(core, [head], 1) > 0
        outside = cv2.distanceTransform((~core).astype(np.uint8), cv2.DIST_L2, 5)
        plateau = MATTE_MARGIN_CELLS * grid_stride
        self.matte = np.clip(1.0 - (outside - plateau) / feather, 0.0, 1.0).astype(np.float32)  # (H, W), source space
        x0, y0, x1, y1 = box
        hole = core[y0:y1, x0:x1]
        region = image[y0:y1, x0:x1]
        h, w = hole.shape
        small = (max(1, w // FILL_DOWNSCALE), max(1, h // FILL_DOWNSCALE))  # the fill is a blur: made small
        known = cv2.resize((~hole).astype(np.float32), small, interpolation=cv2.INTER_AREA)
        weighted = cv2.resize(region.astype(np.float32), small, interpolation=cv2.INTER_AREA) * known[..., None]
        filled = cv2.resize(push_pull_fill(weighted, known), (w, h), interpolation=cv2.INTER_LINEAR)
        self.plate = region.copy()  # (h, w, 3) over the box: the portrait outside the core
        np.copyto(self.plate, np.clip(np.round(filled), 0, 255).astype(np.uint8), where=hole[..., None])
        self.box = box

    def composite(self, warped: np.ndarray, coarse_map: np.ndarray, upsample) -> np.ndarray:
        """warped (h, w, 3) uint8: the head layer over the box; coarse_map (rows, cols, 2) its map on the
        grid, upsample the grid's Upsampler to the box; returns the head layer over the plate."""
        coarse = cv2.remap(self.matte, coarse_map, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        matte = upsample(coarse)
        return cv2.blendLinear(warped, self.plate, matte, 1.0 - matte)


def push_pull_fill(weighted: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Fill where weight is 0: (h, w, 3) float32 image x weight and (h, w) weight in [0, 1] -> (h, w, 3)
    float32 with the known pixels unchanged and the rest from ever coarser weighted averages."""
    h, w = weight.shape
    safe = np.maximum(weight, 1e-6)[..., None]
    if min(h, w) <= MIN_FILL_SIDE or weight.min() >= 1.0:
        if weight.max() <= 0:
            return np.zeros_like(weighted)
        mean = weighted.reshape(-1, weighted.shape[-1]).sum(0) / weight.sum()
        return np.where(weight[..., None] > 0, weighted / safe, mean).astype(np.float32)
    size = (max(1, w // 2), max(1, h // 2))
    coarse = push_pull_fill(cv2.resize(weighted, size, interpolation=cv2.INTER_AREA),
                            cv2.resize(weight, size, interpolation=cv2.INTER_AREA))
    up = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)
    k = np.clip(weight, 0.0, 1.0)[..., None]
    return (weighted / safe * k + up * (1.0 - k)).astype(np.float32)
