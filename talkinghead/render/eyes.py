"""The eye layer: eyeballs drawn inside the target eye openings, and a lash line when the lids close.

Once per portrait, each iris (its own texture, cut to the part visible between the lids) is lifted off
a sclera plate: the portrait with both irises painted over in the eye's own sclera colour. Per frame,
inside each target eye opening, the plate is drawn with the head layer's map and the iris is drawn
at its target centre (it moves the full requested gaze, scaled with the eye); the lids are the mesh's,
so a closing lid covers the eyeball. As the lids meet, a lash line is drawn along the closed lid.
"""

from __future__ import annotations

import cv2
import numpy as np

IRIS_MARGIN = 1.08  # the painted-over disc is this much wider than the tracked iris radius
SCLERA_MIN_PIXELS = 6  # fewer visible sclera pixels than this: use the whole opening
SCLERA_PERCENTILE = 60  # the sclera colour: median of the opening's pixels brighter than this percentile
IRIS_KEEP_INSIDE = 0.2  # the iris centre stays this share of the opening's height inside each lid (soft)
LASH_WIDTH = 0.07  # lash line thickness, in eye widths (at least 1 px)
LASH_FROM, LASH_FULL = 0.45, 0.85  # the lash line fades in between these lid closures
OPENING_SOFTNESS_PX = 0.6
LASH_PERCENTILE = 10
LASH_BAND = 0.2  # eye widths above the upper lid replaced by skin as the lid closes (lashes, liner)
LID_BOX_UP = 0.35  # the eye's drawing box reaches this many eye widths above the lids  # the lash colour: this percentile of brightness along the upper lid


def _polygon_mask(shape: tuple[int, int], polygon: np.ndarray, offset=(0, 0)) -> np.ndarray:
    """(h, w) float32 coverage of a polygon (pixels, minus offset), antialiased by supersampling."""
    h, w = shape
    mask = np.zeros((h * 4, w * 4), np.uint8)
    pts = np.round((polygon - offset + 0.5) * 4 * 16 - 0.5 * 16).astype(np.int32)  # 4x supersampling, 4 bits subpixel
    cv2.fillPoly(mask, [pts], 255, cv2.LINE_8, 4)
    return cv2.resize(mask, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _soft_clip(value: float, lo: float, hi: float) -> float:
    """value kept within [lo, hi]: unchanged in the middle 60%, easing into the ends (tanh knee)."""
    if hi <= lo:
        return (lo + hi) / 2
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    knee = 0.6 * half
    d = value - mid
    if abs(d) <= knee:
        return value
    return mid + np.sign(d) * (knee + (half - knee) * np.tanh((abs(d) - knee) / (half - knee)))


class EyeLayer:
    """Both eyes of one portrait. image: (H, W, 3) uint8 RGB; loops: two (16, 2) eye contours; irises: two (5, 2)."""

    def __init__(self, image: np.ndarray, loops: list[np.ndarray], irises: list[np.ndarray]):
        self.image = image
        self.plate = image.copy()  # both irises painted over with sclera
        self.iris_alpha = np.zeros(image.shape[:2], np.float32)  # visible iris pixels of the portrait
        self.centres, self.radii, self.widths, self.lash = [], [], [], []
        h, w = image.shape[:2]
        lid_mask = np.zeros((h, w), np.uint8)  # each eye's opening and the lash band above it
        for loop, iris in zip(loops, irises):
            centre = iris[0].astype(np.float64)
            radius = float(np.linalg.norm(iris[1:] - centre, axis=1).mean())
            opening = _polygon_mask((h, w), loop)
            ys, xs = np.mgrid[0:h, 0:w]
            disc = np.clip(radius * IRIS_MARGIN + 0.5 - np.hypot(xs - centre[0], ys - centre[1]), 0, 1).astype(np.float32)
            self.iris_alpha = np.maximum(self.iris_alpha, disc * opening)
            sclera = self._sclera_colour(opening, centre, radius)
            paint = (disc * opening)[..., None]
            self.plate = (self.plate * (1 - paint) + sclera * paint).astype(np.uint8)
            self.centres.append(centre)
            self.radii.append(radius)
            self.widths.append(float(np.ptp(loop[:, 0])))
            self.lash.append(self._lash_colour(loop))
            lid_mask = np.maximum(lid_mask, self._lid_band(loop, (h, w)))
        # closed lids: the openings and lash bands filled from the surrounding skin (Telea inpainting)
        self.closed = cv2.inpaint(image, lid_mask, 3, cv2.INPAINT_TELEA)
        self.closed_alpha = cv2.GaussianBlur(lid_mask.astype(np.float32) / 255.0, (0, 0), 1.0)

    def _sclera_colour(self, opening: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
        """(H, W, 3) float32 sclera fill: the median colours of the visible white left and right of the
        iris (a band at the iris centre's height), blended across the disc from left to right."""
        h, w = opening.shape
        ys, xs = np.mgrid[0:h, 0:w]
        band = (opening > 0.9) & (np.abs(ys - centre[1]) <= max(radius * 0.4, 1.0))
        sides = []
        for sign in (-1, 1):
            d = sign * (xs - centre[0])
            pixels = self.image[band & (d > radius * IRIS_MARGIN + 0.5) & (d < radius * 2.5)]
            if len(pixels) < SCLERA_MIN_PIXELS:
                pixels = self.image[(opening > 0.5)].reshape(-1, 3)
                bright = pixels.astype(np.float32).sum(1)
                pixels = pixels[bright >= np.percentile(bright, SCLERA_PERCENTILE)] if len(pixels) else np.full((1, 3), 200)
            sides.append(np.median(pixels.reshape(-1, 3), 0).astype(np.float32))
        t = np.clip((xs - centre[0]) / (2 * radius * IRIS_MARGIN) + 0.5, 0, 1)[..., None].astype(np.float32)
        return sides[0] * (1 - t) + sides[1] * t

    @staticmethod
    def _lid_band(loop: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """(H, W) uint8 mask of the eye opening and the band of lashes above it (LASH_BAND eye widths)."""
        half = len(loop) // 2
        band = np.concatenate([loop[: half + 1], loop[half::-1] - (0, LASH_BAND * float(np.ptp(loop[:, 0])))])
        mask = np.zeros(shape, np.uint8)
        cv2.fillPoly(mask, [np.round(loop).astype(np.int32), np.round(band).astype(np.int32)], 255)
        return cv2.dilate(mask, np.ones((3, 3), np.uint8))

    def _lash_colour(self, loop: np.ndarray) -> np.ndarray:
        """(3,) float32 dark colour of the upper lid margin (the loop's first half is the upper lid)."""
        upper = np.round(loop[: len(loop) // 2 + 1]).astype(int)
        h, w = self.image.shape[:2]
        samples = [self.image[np.clip(y + dy, 0, h - 1), np.clip(x, 0, w - 1)] for x, y in upper for dy in (-1, 0)]
        samples = np.array(samples, np.float32)
        bright = samples.sum(1)
        return samples[bright <= np.percentile(bright, LASH_PERCENTILE)].mean(0)

    def draw(self, frame: np.ndarray, head_map: np.ndarray, head_box, eye: int, loop: np.ndarray,
             iris_centre: np.ndarray, closure: float) -> None:
        """Draw eye `eye` (0 right, 1 left) into frame (H, W, 3) uint8 in place; loop (16, 2), iris_centre (2,) target pixels."""
        h, w = frame.shape[:2]
        hx0, hy0, hx1, hy1 = head_box
        x0, y0 = np.floor(loop.min(0) - (2, 2 + LID_BOX_UP * self.widths[eye])).astype(int)
        x1, y1 = np.ceil(loop.max(0) + 3).astype(int)
        x0, y0, x1, y1 = max(x0, hx0), max(y0, hy0), min(x1, hx1, w), min(y1, hy1, h)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return
        opening = _polygon_mask((y1 - y0, x1 - x0), loop, (x0, y0))
        region = frame[y0:y1, x0:x1].astype(np.float32)
        if opening.max() > 0:
            sub = head_map[y0 - hy0:y1 - hy0, x0 - hx0:x1 - hx0]
            plate = cv2.remap(self.plate, sub[..., 0], sub[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            scale = max(float(np.ptp(loop[:, 0])) / max(self.widths[eye], 1e-3), 1e-3)
            iris_centre = self._keep_inside(loop, iris_centre, self.radii[eye] * scale)
            ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
            sx = (self.centres[eye][0] + (xs - iris_centre[0]) / scale).astype(np.float32)
            sy = (self.centres[eye][1] + (ys - iris_centre[1]) / scale).astype(np.float32)
            iris = cv2.remap(self.image, sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT).astype(np.float32)
            alpha = cv2.remap(self.iris_alpha, sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)[..., None]
            ball = plate.astype(np.float32) * (1 - alpha) + iris * alpha
            region += opening[..., None] * (ball - region)
        fade = float(np.clip((closure - LASH_FROM) / (LASH_FULL - LASH_FROM), 0, 1))
        if closure > 0:
            sub = head_map[y0 - hy0:y1 - hy0, x0 - hx0:x1 - hx0]
            weight = cv2.remap(self.closed_alpha, sub[..., 0], sub[..., 1], cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT)[..., None] * closure * closure * (3 - 2 * closure)
            skin = cv2.remap(self.closed, sub[..., 0], sub[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            region += weight * (skin.astype(np.float32) - region)
        if fade > 0:
            region = self._lash_line(region, loop, (x0, y0), fade, eye)
        frame[y0:y1, x0:x1] = np.clip(region, 0, 255).astype(np.uint8)

    @staticmethod
    def _keep_inside(loop: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
        """The iris centre (2,) softly clamped into the opening: a 2D eye cannot show an iris behind the lids."""
        half = len(loop) // 2
        upper, lower = loop[: half + 1], np.concatenate([loop[half:], loop[:1]])
        x = float(np.clip(centre[0], loop[:, 0].min() + 0.5 * radius, loop[:, 0].max() - 0.5 * radius))
        top = np.interp(x, *upper[np.argsort(upper[:, 0])].T)
        bottom = np.interp(x, *lower[np.argsort(lower[:, 0])].T)
        margin = IRIS_KEEP_INSIDE * max(bottom - top, 0.0)
        y = _soft_clip(float(centre[1]), top + margin, bottom - margin)
        return np.array([_soft_clip(float(centre[0]), loop[:, 0].min() + 0.5 * radius, loop[:, 0].max() - 0.5 * radius), y])

    def _lash_line(self, region: np.ndarray, loop: np.ndarray, offset, fade: float, eye: int) -> np.ndarray:
        """Darken a line along the (closing) upper lid, opacity `fade`."""
        upper = loop[: len(loop) // 2 + 1] - offset
        thickness = max(1, int(round(LASH_WIDTH * self.widths[eye])))
        mask = np.zeros(region.shape[:2], np.uint8)
        cv2.polylines(mask, [np.round(upper * 16).astype(np.int32)], False, 255, thickness, cv2.LINE_AA, 4)
        a = (mask.astype(np.float32) / 255.0 * fade)[..., None]
        return region * (1 - a) + self.lash[eye] * a
