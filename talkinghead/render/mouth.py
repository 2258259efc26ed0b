"""The mouth interior: cavity, teeth and tongue drawn where the lips part.

Works in a mouth-aligned frame: u runs 0..1 from the right inner mouth corner to the left one,
w is the pixel distance perpendicular to that axis (down is positive). Inside the target opening,
a pixel at depth v below the upper lip shows the portrait's own mouth interior at the same depth
below its upper lip, where the portrait's mouth is open that far (its own teeth move with the
upper lip, unstretched); elsewhere it shows synthesized upper teeth, lower teeth, tongue and cavity.

The synthesized upper teeth are fixed to the skull, not hung from the upper lip: their edge is
UPPER_TEETH_SHOWN below where the portrait's own upper lip rests (moved with the head), so a lip
that rises (a smile) shows more of them and one that comes down covers them. The lower teeth ride
the jaw, with the lower lip. Real speakers (scripts/mouth_sheet.py --real) show their upper teeth
across most of a small opening, so the display is wide: about 5 mm of a 50 mm mouth.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

UPPER_TEETH_SHOWN = 0.10  # upper incisal edge below where the upper lip rests, in mouth widths (at the centre)
UPPER_TEETH_CROWN = 0.2  # no more of the upper teeth than this shows, however far the lip rises
LOWER_TEETH_HEIGHT = 0.06
LOWER_TEETH_MIN_GAP = 0.12  # lower teeth show once the opening exceeds this many mouth widths
TEETH_ACROSS = 8  # tooth-gap shading period across the opening
TEETH_RGB = np.array([232, 226, 212], np.float32)
LOWER_TEETH_RGB = np.array([176, 160, 146], np.float32)  # in the mouth's shadow: darker and warmer
CAVITY_RGB = np.array([58, 22, 26], np.float32)
TONGUE_RGB = np.array([150, 72, 78], np.float32)
LIP_SHADOW_PX = 2.0
MIN_OPEN_PX = 0.75  # narrower openings are left to the warp alone


def _curve(points: np.ndarray, origin: np.ndarray, axis: np.ndarray, normal: np.ndarray,
           width: float) -> tuple[np.ndarray, np.ndarray]:
    """(u, w) of points (K, 2) in the mouth frame (origin, axis, normal, width), ordered by u."""
    rel = points - origin
    u, w = rel @ axis / width, rel @ normal
    order = np.argsort(u)
    return u[order].astype(np.float32), w[order].astype(np.float32)


@dataclass(frozen=True)
class MouthFrame:
    """Inner-lip curves in a mouth-aligned frame (see module docstring)."""

    origin: np.ndarray  # (2,) right inner corner, pixels
    axis: np.ndarray  # (2,) unit vector towards the left inner corner
    normal: np.ndarray  # (2,) unit vector pointing down the face
    width: float  # corner-to-corner distance, pixels
    upper: tuple[np.ndarray, np.ndarray]  # (u, w) samples of the upper inner lip, u increasing
    lower: tuple[np.ndarray, np.ndarray]

    @staticmethod
    def from_lips(upper_xy: np.ndarray, lower_xy: np.ndarray) -> "MouthFrame":
        """Build from inner-lip points (K, 2) ordered corner to corner, sharing both corners."""
        origin = upper_xy[0].astype(np.float32)
        span = upper_xy[-1] - upper_xy[0]
        width = float(max(np.linalg.norm(span), 1e-3))
        axis = (span / width).astype(np.float32)
        normal = np.array([-axis[1], axis[0]], np.float32)

        return MouthFrame(origin, axis, normal, width, _curve(upper_xy, origin, axis, normal, width),
                          _curve(lower_xy, origin, axis, normal, width))

    def locate(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(u, w) of points (K, 2) in this frame, ordered by u."""
        return _curve(points, self.origin, self.axis, self.normal, self.width)

    def curves_at(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Upper and lower inner-lip w at positions u."""
        return np.interp(u, *self.upper), np.interp(u, *self.lower)

    def gap_at(self, u: np.ndarray) -> np.ndarray:
        """Opening height (pixels) at positions u."""
        up, lo = self.curves_at(u)
        return lo - up


@dataclass(frozen=True)
class MouthStyle:
    """Colours fitted to the portrait (float32 RGB)."""

    teeth: np.ndarray
    lower_teeth: np.ndarray
    cavity: np.ndarray
    tongue: np.ndarray

    @staticmethod
    def for_portrait(image: np.ndarray, face_box: tuple[float, float, float, float]) -> "MouthStyle":
        """Scale brightness and saturation to the face so a dim painting or a grey photo gets matching teeth."""
        x0, y0, x1, y1 = (int(round(v)) for v in face_box)
        crop = image[max(y0, 0):max(y1, 1), max(x0, 0):max(x1, 1)]
        if crop.size == 0:
            crop = image
        hsv = cv2.cvtColor(crop, cv2.COLOR_RGB2HSV).reshape(-1, 3).astype(np.float32)
        brightness = float(np.clip(np.median(hsv[:, 2]) / 190.0, 0.5, 1.05))
        saturation = float(np.clip(np.median(hsv[:, 1]) / 90.0, 0.0, 1.0))

        def adapt(rgb):
            grey = rgb.mean()
            return ((grey + (rgb - grey) * saturation) * brightness).astype(np.float32)

        return MouthStyle(adapt(TEETH_RGB), adapt(LOWER_TEETH_RGB), adapt(CAVITY_RGB), adapt(TONGUE_RGB))


def _with_own_interior(colour: np.ndarray, portrait: np.ndarray, source: MouthFrame, u: np.ndarray,
                       depth: np.ndarray) -> np.ndarray:
    """`colour` (h, w, 3) float32 with the portrait's own interior where its mouth was open that deep at u."""
    src_up, src_lo = source.curves_at(u)
    src_gap = src_lo - src_up
    reuse = (src_gap > 1.5) & (depth < src_gap - 0.5)
    if not reuse.any():
        return colour
    sw = src_up + depth
    su = u * source.width
    sx = source.origin[0] + su * source.axis[0] + sw * source.normal[0]
    sy = source.origin[1] + su * source.axis[1] + sw * source.normal[1]
    sampled = cv2.remap(portrait, sx.astype(np.float32), sy.astype(np.float32), cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REFLECT).astype(np.float32)
    blend = np.clip((src_gap - 0.5 - depth) / 1.5, 0, 1) * reuse
    return colour * (1 - blend[..., None]) + sampled * blend[..., None]


def draw_mouth_interior(frame: np.ndarray, portrait: np.ndarray, target: MouthFrame, source: MouthFrame,
                        style: MouthStyle, rest_upper_lip: np.ndarray) -> None:
    """Composite the mouth interior into `frame` (H, W, 3) uint8 RGB in place. `rest_upper_lip`: the
    portrait's own upper inner lip (K, 2) pixels, moved with the head only (the skull the upper teeth
    are fixed to)."""
    h, w = frame.shape[:2]
    pts = np.concatenate([target.origin[None] + np.outer(target.upper[0] * target.width, target.axis)
                          + np.outer(target.upper[1], target.normal),
                          target.origin[None] + np.outer(target.lower[0] * target.width, target.axis)
                          + np.outer(target.lower[1], target.normal)])
    x0, y0 = np.floor(pts.min(0) - 2).astype(int)
    x1, y1 = np.ceil(pts.max(0) + 2).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    rel_x, rel_y = xs - target.origin[0], ys - target.origin[1]
    u = (rel_x * target.axis[0] + rel_y * target.axis[1]) / target.width
    wv = rel_x * target.normal[0] + rel_y * target.normal[1]
    up, lo = target.curves_at(u)
    gap = lo - up
    inside_u = (u > 0) & (u < 1)
    alpha = np.clip(wv - up + 0.5, 0, 1) * np.clip(lo - wv + 0.5, 0, 1) * inside_u * (gap > MIN_OPEN_PX)
    if not alpha.any():
        return
    mw = target.width
    depth = wv - up  # pixels below the upper lip
    height_above_lower = lo - wv
    across = np.abs(2 * u - 1)  # 0 at the centre, 1 at the corners
    arch = np.clip(1 - across ** 2, 0, 1)

    # synthesized interior, back to front: cavity, tongue, lower teeth, upper teeth (soft 1 px edges)
    colour = np.empty(u.shape + (3,), np.float32)
    cavity_shade = 0.65 + 0.35 * np.clip(depth / np.maximum(gap, 1), 0, 1)
    colour[:] = style.cavity * cavity_shade[..., None]

    def layer(coverage: np.ndarray, rgb: np.ndarray) -> None:
        a = np.clip(coverage, 0, 1)[..., None]
        colour[:] = colour * (1 - a) + rgb * a

    tongue_r = np.sqrt(((u - 0.5) / 0.33) ** 2 + ((height_above_lower - 0.03 * mw) / (0.10 * mw)) ** 2)
    tongue_edge = (1 - tongue_r) * 0.10 * mw  # approximate distance inside the ellipse, pixels
    layer(tongue_edge * (gap > 0.10 * mw), style.tongue[None, None] * (0.75 + 0.25 * np.clip(1 - tongue_r, 0, 1))[..., None])
    tooth_gaps = 0.93 + 0.07 * np.abs(np.cos(np.pi * TEETH_ACROSS * (u - 0.5)))
    lower_cover = (LOWER_TEETH_HEIGHT * mw * arch - height_above_lower) * np.clip((gap - LOWER_TEETH_MIN_GAP * mw) / 2, 0, 1)
    layer(lower_cover, style.lower_teeth[None, None] * (tooth_gaps * (1 - 0.5 * across ** 2))[..., None])
    # the upper teeth end at the lower lip with the opening's own soft edge (no hard bright row against it)
    rest_up = np.interp(u, *target.locate(rest_upper_lip))
    upper_cover = np.minimum(rest_up + UPPER_TEETH_SHOWN * mw * arch - wv, UPPER_TEETH_CROWN * mw - depth)
    layer(upper_cover, style.teeth[None, None] * (tooth_gaps * (1 - 0.45 * across ** 2))[..., None])

    colour = _with_own_interior(colour, portrait, source, u, depth)

    # shadow under the upper lip and at the corners
    shade = np.clip(depth / LIP_SHADOW_PX, 0.55, 1.0) * (1 - 0.35 * across ** 4)
    colour *= shade[..., None]
    region = frame[y0:y1, x0:x1].astype(np.float32)
    a = alpha[..., None]
    frame[y0:y1, x0:x1] = np.clip(region * (1 - a) + colour * a, 0, 255).astype(np.uint8)
