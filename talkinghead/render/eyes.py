"""The eye layer: an eyeball drawn inside each target eye opening, behind lids that come down over it.

Once per portrait, each eye gets an eyeball texture in the portrait's own coordinates: its sclera, with
the iris painted over by the surrounding white (normalised convolution, so no ghost of the iris stays)
and carried smoothly past the opening (a lid raised by gaze shows more eyeball than the portrait did),
and the portrait's own iris completed to a full disc (the part the lids hid is mirrored from the part
they did not, or filled with the iris's own colour at that radius).

Per frame, the eyeball is placed with an affine map fitted to points around the eye that neither a
blink nor gaze moves (so it follows the head, foreshortening included, and is never squeezed by the
lids), the iris at its target centre: it moves the full requested gaze. Only the part inside the
target opening is drawn. The lids are the head layer's: the rig brings the upper lid down together
with the ring above it (lashes, liner), so a closing lid comes down with its own lash line and covers
the eyeball; the lid casts a soft shadow on the eyeball, and near full closure a lash line in the
portrait's darkest lid colour marks the seam: a stroke hanging just below it that is fullest a little
towards the outer corner and tapers to nothing at both corners, as a closed eye's lashes do.
"""

from __future__ import annotations

import cv2
import numpy as np

IRIS_PAINT_MARGIN = 1.35  # the portrait's iris is painted over out to this many iris radii (no ghost of its rim)
SCLERA_SAMPLE_MARGIN = 1.0  # the sclera's colour is read from beyond this many iris radii
FILL_SIGMA = 0.5  # iris radii: smoothing of the near sclera fill (normalised convolution)
FAR_FILL_SIGMA = 2.0  # iris radii: smoothing of the far fill (where no sclera pixel is near)
EYE_BOX_MARGIN = 0.35  # eye widths around the opening where the eyeball texture is prepared
SCLERA_MIN_PIXELS = 6  # fewer sclera pixels than this: use the brightest pixels of the opening
SCLERA_PERCENTILE = 90  # ... or, where none is seen, the brightest tenth of the opening
SCLERA_BRIGHT_PERCENTILE = 75  # of the opening's pixels beside the iris, the brightest quarter are taken as sclera
IRIS_RINGS = 6  # radial bins of the iris colour used where neither the iris nor its mirror image is visible
IRIS_FALLBACK = (70, 55, 45)  # RGB of an iris the portrait does not show at all
LID_SHADOW = 0.3  # darkening of the eyeball right under a fully lowered upper lid
LID_SHADOW_WIDTH = 0.06  # eye widths over which the lid's shadow fades
LASH_WIDTH = 0.08  # lash line thickness at its fullest, in eye widths (it tapers to nothing at the corners)
LASH_PEAK_SKEW = 0.75  # the lash line is fullest at t = 0.5 ** (1 / this) from the outer corner (0.40)
LASH_DROP = 0.4  # the line's centre sits this many half-thicknesses below the seam (lashes point down)
LASH_OPACITY = 1.0
LASH_TAPER = 0.5  # the thickness profile: sin(pi t) to this power (smaller: fuller towards the corners)
LASH_SAMPLES = 33
LASH_SUPERSAMPLE = 4
LASH_FROM, LASH_FULL = 0.6, 0.95  # the seam's lash line fades in between these lid closures
LASH_PERCENTILE = 10  # the lash colour: this percentile of brightness along the upper lid
LID_MOVED_PX = 1.0  # lids this many pixels off their place (2x: fully) use the eyeball without lid-margin
# pixels; an iris moved this many pixels (fully) is drawn without the rim of sclera around it
IRIS_KEEP_INSIDE = 0.2  # the iris centre stays this share of the opening's height inside each lid (soft)
IRIS_KEEP_FROM_CORNER = 0.5  # ... and this many iris radii from each corner (soft)
OPENING_DILATE = 0.06  # eye widths: the opening as the tracker outlined it, grown by this (landmarks miss its edge)
CLOSED_SOFTNESS = 0.04  # eye widths: blur of the lid-skin patch's edge (no seam where it meets the lid)
LUMA = np.float32([0.299, 0.587, 0.114])  # RGB -> luminance (Rec. 601)
SCLERA_SHADE = 0.25  # darkening of the synthesised sclera half an eye width from the eyeball's centre (a ball, not a plate)
SKIN_FROM, SKIN_FULL = 0.5, 0.9  # closures over which what the lids would still show of the opening becomes lid skin


def _polygon_mask(shape: tuple[int, int], polygon: np.ndarray, offset=(0, 0)) -> np.ndarray:
    """(h, w) float32 coverage of a polygon (pixels, minus offset), antialiased by supersampling."""
    h, w = shape
    mask = np.zeros((h * 4, w * 4), np.uint8)
    pts = np.round((polygon - offset + 0.5) * 4 * 16 - 0.5 * 16).astype(np.int32)  # 4x supersampling, 4 bits subpixel
    cv2.fillPoly(mask, [pts], 255, cv2.LINE_8, 4)
    return cv2.resize(mask, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _normalised_blur(values: np.ndarray, weight: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Weighted Gaussian average of values (h, w, 3) with weight (h, w): (average, blurred weight)."""
    num = cv2.GaussianBlur(values * weight[..., None], (0, 0), sigma)
    den = cv2.GaussianBlur(weight, (0, 0), sigma)
    return num / np.maximum(den, 1e-6)[..., None], den


def fit_affine(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(3, 2) least-squares affine M with [x, y, 1] @ M taking target points (N, 2) to source points (N, 2)."""
    design = np.concatenate([target, np.ones((len(target), 1))], 1)
    return np.linalg.lstsq(design, source, rcond=None)[0]


def _apply_inverse(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Source points (N, 2) taken back to target pixels by the inverse of the (3, 2) affine m."""
    return np.linalg.solve(m[:2].T, (points - m[2]).T).T


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


def _keep_inside(loop: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """The iris centre (2,) softly kept inside the opening (an iris behind a lid cannot be seen to
    move): sideways IRIS_KEEP_FROM_CORNER iris radii from the corners, in height IRIS_KEEP_INSIDE of the
    opening inside each lid at its column."""
    half = len(loop) // 2
    upper, lower = loop[: half + 1], np.concatenate([loop[half:], loop[:1]])
    x = _soft_clip(float(centre[0]), loop[:, 0].min() + IRIS_KEEP_FROM_CORNER * radius, loop[:, 0].max() - IRIS_KEEP_FROM_CORNER * radius)
    top = np.interp(x, *upper[np.argsort(upper[:, 0])].T)
    bottom = np.interp(x, *lower[np.argsort(lower[:, 0])].T)
    margin = IRIS_KEEP_INSIDE * max(bottom - top, 0.0)
    return np.array([x, _soft_clip(float(centre[1]), top + margin, bottom - margin)])


def _dark_margin(loop: np.ndarray, grow: int, luminance: np.ndarray, lash: float) -> np.ndarray:
    """(H, W) bool: pixels of the band `grow` + 2 px above the upper lid (the loop's first half) darker
    than halfway between the lash luminance and the opening's brightest tenth (its sclera)."""
    h, w = luminance.shape
    upper = loop[: len(loop) // 2 + 1]
    band = np.zeros((h, w), np.uint8)
    cv2.fillPoly(band, [np.round(np.concatenate([upper, upper[::-1] - (0, grow + 2)])).astype(np.int32)], 255)
    inside = np.zeros((h, w), np.uint8)
    cv2.fillPoly(inside, [np.round(loop).astype(np.int32)], 255)
    if not inside.any():
        return np.zeros((h, w), bool)
    sclera = float(np.percentile(luminance[inside > 0], 90))
    return (band > 0) & (inside == 0) & (luminance < (sclera + lash) / 2)


def _smooth_lid(lid: np.ndarray, samples: int = 17) -> np.ndarray:
    """(samples, 2) smooth arc through a lid's points (n, 2), corner to corner: its height over the
    corner-to-corner line fitted with t (1 - t) (a + b t), so the arc meets both corners (a closed
    lid's seam is a smooth curve, whatever the jitter of the tracked points)."""
    start, axis = lid[0], lid[-1] - lid[0]
    length2 = max(float(axis @ axis), 1e-9)
    normal = np.array([-axis[1], axis[0]]) / np.sqrt(length2)
    t = (lid - start) @ axis / length2
    basis = np.stack([t * (1 - t), t * t * (1 - t)], 1)
    coef = np.linalg.lstsq(basis, (lid - start) @ normal, rcond=None)[0]
    u = np.linspace(0, 1, samples)
    return start + u[:, None] * axis + ((u * (1 - u)) * (coef[0] + coef[1] * u))[:, None] * normal


class EyeLayer:
    """Both eyes of one portrait. image: (H, W, 3) uint8 RGB; loops: two (16, 2) eye contours (upper lid
    first); irises: two (5, 2), centre first; frames: two (N, 2) points the eyeball's placement is fitted to."""

    def __init__(self, image: np.ndarray, loops: list[np.ndarray], irises: list[np.ndarray], frames: list[np.ndarray]):
        self.image = image
        self.ball = image.copy()  # sclera with the irises painted over, carried past the openings
        self.ball_clean = image.copy()  # the same without the lid margins' own pixels (for moved lids)
        self.loops = [np.asarray(loop, np.float64) for loop in loops]
        self.iris = image.copy()  # each iris completed to a full disc
        self.iris_alpha = np.zeros(image.shape[:2], np.float32)
        self.iris_rim = np.zeros(image.shape[:2], np.float32)  # the part of iris_alpha beyond the iris's radius
        self.frames = [np.asarray(f, np.float64) for f in frames]
        self.centres, self.radii, self.widths, self.lash = [], [], [], []
        h, w = image.shape[:2]
        openings = np.zeros((h, w), np.uint8)
        margin = np.zeros((h, w), bool)  # dark lid margin (lashes, liner) just above each upper lid
        luminance = image.astype(np.float32) @ LUMA
        for loop, iris in zip(loops, irises):
            centre = iris[0].astype(np.float64)
            radius = max(float(np.linalg.norm(iris[1:] - centre, axis=1).mean()), 1.0)
            self.centres.append(centre)
            self.radii.append(radius)
            self.widths.append(float(np.ptp(loop[:, 0])))
            lash = self._lash_colour(loop)
            self.lash.append(lash)
            self._prepare(loop, centre, radius, self.widths[-1])
            grow = max(2, int(round(OPENING_DILATE * self.widths[-1])))
            cv2.fillPoly(openings, [np.round(loop).astype(np.int32)], 255)
            openings = np.maximum(openings, cv2.dilate(openings, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)))
            margin |= _dark_margin(loop, grow, luminance, float(lash @ LUMA))
        # closed lids: the (grown) openings filled from the surrounding skin, for what the head layer
        # would still show of the portrait's opening when the lids meet (Telea inpainting)
        self.closed = cv2.inpaint(image, openings, 3, cv2.INPAINT_TELEA)
        soft = max(CLOSED_SOFTNESS * float(np.mean(self.widths)), 1.0)
        # ... but not over the dark lid margin above the upper lid: it comes down with the lid, and closed
        # its lashes and liner belong at the seam (replaced, hallo_ref3's closed lid showed a light lens
        # between its liner and the seam); bright pixels there (sclera the tracked outline missed) still go
        shown = np.where(margin, 0, openings).astype(np.float32) / 255.0
        self.closed_alpha = cv2.GaussianBlur(shown, (0, 0), soft)

    def _prepare(self, loop: np.ndarray, centre: np.ndarray, radius: float, width: float) -> None:
        """Write one eye's eyeball texture (self.ball), completed iris (self.iris) and iris alpha."""
        h, w = self.image.shape[:2]
        x0, y0 = np.floor(np.minimum(loop.min(0), centre - radius) - EYE_BOX_MARGIN * width).astype(int)
        x1, y1 = np.ceil(np.maximum(loop.max(0), centre + radius) + EYE_BOX_MARGIN * width).astype(int)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 - x0 < 3 or y1 - y0 < 3:
            return
        sub = self.image[y0:y1, x0:x1].astype(np.float32)
        opening = _polygon_mask((y1 - y0, x1 - x0), loop, (x0, y0))
        inner = cv2.erode((opening > 0.5).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # not the lid margin
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        dist = np.hypot(xs - centre[0], ys - centre[1])
        # the sclera's colour: the bright part of the opening beside the iris (the tracked outline often
        # takes in some lid, lash or liner, and the iris's own rim lies just past its tracked radius)
        luminance = sub @ LUMA
        samples = inner & (dist > radius * SCLERA_SAMPLE_MARGIN)
        if samples.sum() >= SCLERA_MIN_PIXELS:
            samples &= luminance >= np.percentile(luminance[samples], SCLERA_BRIGHT_PERCENTILE)
        if samples.sum() < SCLERA_MIN_PIXELS:  # no white visible: the brightest pixels of the opening
            shown = opening > 0.5
            samples = shown & (luminance >= np.percentile(luminance[shown], SCLERA_PERCENTILE)) if shown.any() else shown
        samples = samples.astype(np.float32)
        if samples.sum() < 1:
            fill = np.broadcast_to(sub.reshape(-1, 3).mean(0), sub.shape)
        else:
            near, weight = _normalised_blur(sub, samples, max(FILL_SIGMA * radius, 1.0))
            far, _ = _normalised_blur(sub, samples, max(FAR_FILL_SIGMA * radius, 2.0))
            t = np.clip(weight / 0.25, 0, 1)[..., None]
            fill = near * t + far * (1 - t)
            # far from any sclera the portrait shows, the fill is one flat colour: shade it as a ball,
            # darker towards the corners and under the lids (near the shown sclera its own shading holds)
            falloff = np.minimum(dist / max(0.5 * width, 1.0), 1.0) ** 2
            fill = fill * (1 - SCLERA_SHADE * falloff[..., None] * (1 - t))
        sclera = samples * (dist > radius * IRIS_PAINT_MARGIN)
        keep = ((opening > 0.5) & (dist > radius * IRIS_PAINT_MARGIN - 1)).astype(np.float32)[..., None]
        self.ball[y0:y1, x0:x1] = np.clip(sub * keep + fill * (1 - keep), 0, 255).astype(np.uint8)
        keep = cv2.GaussianBlur(sclera, (0, 0), 0.7)[..., None]
        self.ball_clean[y0:y1, x0:x1] = np.clip(sub * keep + fill * (1 - keep), 0, 255).astype(np.uint8)
        local = (xs - np.float32(x0), ys - np.float32(y0))
        self.iris[y0:y1, x0:x1] = self._full_iris(sub, opening > 0.5, *local, centre - (x0, y0), radius, dist)
        # the iris out to where it was painted over (at rest the portrait's eye comes back as it was);
        # a moved iris only to its own radius (no rim of the portrait's sclera moves with it)
        self.iris_alpha[y0:y1, x0:x1] = np.clip(radius * IRIS_PAINT_MARGIN + 0.5 - dist, 0, 1)
        self.iris_rim[y0:y1, x0:x1] = self.iris_alpha[y0:y1, x0:x1] - np.clip(radius + 0.5 - dist, 0, 1)

    @staticmethod
    def _full_iris(sub: np.ndarray, visible: np.ndarray, xs: np.ndarray, ys: np.ndarray, centre: np.ndarray,
                   radius: float, dist: np.ndarray) -> np.ndarray:
        """(h, w, 3) uint8: the box's iris completed to a full disc (box coordinates): a hidden pixel takes
        its mirror image across the iris's horizontal axis if that is visible, else the ring's median colour."""
        seen = (visible & (dist <= radius * IRIS_PAINT_MARGIN)).astype(np.float32)
        mirror_y = np.where(seen > 0, ys, 2 * centre[1] - ys).astype(np.float32)
        mirrored = cv2.remap(sub, xs, mirror_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        mirror_ok = cv2.remap(seen, xs, mirror_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT) > 0.9
        rings = np.minimum((dist / radius * IRIS_RINGS).astype(int), IRIS_RINGS)
        colours = np.zeros((IRIS_RINGS + 1, 3), np.float32)
        have = np.zeros(IRIS_RINGS + 1, bool)
        for k in range(IRIS_RINGS + 1):
            pixels = sub[(rings == k) & (seen > 0)]
            if len(pixels):
                colours[k], have[k] = np.median(pixels, 0), True
        if not have.any():
            colours[:], have[:] = IRIS_FALLBACK, True
        idx = np.arange(IRIS_RINGS + 1)
        for c in range(3):
            colours[~have, c] = np.interp(idx[~have], idx[have], colours[have, c])
        out = np.where(mirror_ok[..., None], mirrored, colours[rings])
        return np.clip(out, 0, 255).astype(np.uint8)

    def _lash_colour(self, loop: np.ndarray) -> np.ndarray:
        """(3,) float32 dark colour of the upper lid margin (the loop's first half is the upper lid)."""
        upper = np.round(loop[: len(loop) // 2 + 1]).astype(int)
        h, w = self.image.shape[:2]
        samples = [self.image[np.clip(y + dy, 0, h - 1), np.clip(x, 0, w - 1)] for x, y in upper for dy in (-1, 0)]
        samples = np.array(samples, np.float32)
        bright = samples.sum(1)
        return samples[bright <= np.percentile(bright, LASH_PERCENTILE)].mean(0)

    def draw(self, frame: np.ndarray, head_map: np.ndarray, head_box, eye: int, loop: np.ndarray,
             gaze_shift: np.ndarray, frame_points: np.ndarray, closure: float) -> None:
        """Draw eye `eye` (0 right, 1 left) into frame (H, W, 3) uint8 in place. head_map: the head
        layer's backward map over head_box; loop (16, 2) and frame_points (N, 2, the targets of the
        `frames` points) are target pixels; gaze_shift (2,) the iris's move for gaze, pixels."""
        h, w = frame.shape[:2]
        hx0, hy0, hx1, hy1 = head_box
        target_width = max(float(np.ptp(loop[:, 0])), 1.0)
        x0, y0 = np.floor(loop.min(0) - 2 - OPENING_DILATE * target_width).astype(int)
        x1, y1 = np.ceil(loop.max(0) + 3 + OPENING_DILATE * target_width).astype(int)
        x0, y0, x1, y1 = max(x0, hx0), max(y0, hy0), min(x1, hx1, w), min(y1, hy1, h)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return
        opening = _polygon_mask((y1 - y0, x1 - x0), loop, (x0, y0))
        region = frame[y0:y1, x0:x1].astype(np.float32)
        sub = head_map[y0 - hy0:y1 - hy0, x0 - hx0:x1 - hx0]
        # the head layer's depth test decides what is in front: the eyeball shows only where the head
        # layer shows the portrait's eye (not where a turned nose covers it)
        eye_area = cv2.remap(self.closed_alpha, sub[..., 0], sub[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        opening *= np.clip(2 * eye_area, 0, 1)
        skin = float(np.clip((closure - SKIN_FROM) / (SKIN_FULL - SKIN_FROM), 0, 1))
        if skin > 0:
            weight = eye_area[..., None] * skin
            closed = cv2.remap(self.closed, sub[..., 0], sub[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            region += weight * (closed.astype(np.float32) - region)
        if opening.max() > 0:
            ball = self._eyeball(eye, loop, gaze_shift, frame_points, (x0, y0, x1, y1), closure)
            region += opening[..., None] * (ball - region)
        fade = float(np.clip((closure - LASH_FROM) / (LASH_FULL - LASH_FROM), 0, 1))
        if fade > 0:
            region = self._lash_line(region, loop, (x0, y0), fade, target_width, eye)
        frame[y0:y1, x0:x1] = np.clip(region, 0, 255).astype(np.uint8)

    def _eyeball(self, eye: int, loop: np.ndarray, gaze_shift: np.ndarray, frame_points: np.ndarray, box,
                 closure: float) -> np.ndarray:
        """(h, w, 3) float32 eyeball over box (x0, y0, x1, y1, target pixels): the sclera and the iris
        placed by the affine fitted to the frame points, the iris moved by gaze_shift."""
        x0, y0, x1, y1 = box
        m = fit_affine(self.frames[eye], frame_points)
        # the iris at rest is where the eyeball's placement puts the portrait's iris; gaze moves it
        # from there, kept inside the opening (the same clamp applied at rest is taken off, so an
        # eye looking ahead is the portrait's, to the pixel)
        rest = _apply_inverse(m, self.centres[eye][None])[0]
        radius = self.radii[eye] / np.sqrt(abs(np.linalg.det(m[:2])))
        iris_centre = rest + _keep_inside(loop, rest + gaze_shift, radius) - _keep_inside(loop, rest, radius)
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        sx = (xs * m[0, 0] + ys * m[1, 0] + m[2, 0]).astype(np.float32)
        sy = (xs * m[0, 1] + ys * m[1, 1] + m[2, 1]).astype(np.float32)
        sclera = cv2.remap(self.ball, sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT).astype(np.float32)
        # lids moved off their place in the portrait: its lid-margin pixels would show inside the opening
        moved = float(np.abs(loop - _apply_inverse(m, self.loops[eye])).max())
        clean = float(np.clip((moved - LID_MOVED_PX) / LID_MOVED_PX, 0, 1))
        if clean > 0:
            other = cv2.remap(self.ball_clean, sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            sclera += clean * (other.astype(np.float32) - sclera)
        dx, dy = xs - np.float32(iris_centre[0]), ys - np.float32(iris_centre[1])
        cx, cy = self.centres[eye]
        qx = (cx + dx * m[0, 0] + dy * m[1, 0]).astype(np.float32)
        qy = (cy + dx * m[0, 1] + dy * m[1, 1]).astype(np.float32)
        iris = cv2.remap(self.iris, qx, qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT).astype(np.float32)
        alpha = cv2.remap(self.iris_alpha, qx, qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        moved_iris = float(np.clip(np.abs(iris_centre - rest).max() / LID_MOVED_PX, 0, 1))
        if moved_iris > 0:
            alpha -= moved_iris * cv2.remap(self.iris_rim, qx, qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        ball = sclera + alpha[..., None] * (iris - sclera)
        if closure > 0:  # a lowered lid shades the eyeball under it (the portrait has its own at rest)
            ball *= self._lid_shadow(loop, xs[0], ys[:, :1], max(float(np.ptp(loop[:, 0])), 1.0), closure)[..., None]
        return ball

    @staticmethod
    def _lid_shadow(loop: np.ndarray, xs: np.ndarray, ys: np.ndarray, width: float, closure: float) -> np.ndarray:
        """(h, w) factor darkening the eyeball just under the target upper lid (its soft shadow)."""
        upper = loop[: len(loop) // 2 + 1]
        order = np.argsort(upper[:, 0])
        top = np.interp(xs, upper[order, 0], upper[order, 1])  # (w,) the lid's height at each column
        below = np.maximum(ys - top[None, :], 0) / (LID_SHADOW_WIDTH * width)
        return (1 - LID_SHADOW * closure * np.exp(-below)).astype(np.float32)

    def _lash_line(self, region: np.ndarray, loop: np.ndarray, offset, fade: float, width: float, eye: int) -> np.ndarray:
        """Darken the lashes along the (closing) upper lid, opacity `fade`: a stroke that tapers to
        nothing at both corners, fullest a little toward the outer one, hanging just below the seam
        (a closed eye's lashes point down), drawn 4x supersampled so that a 1-2 px line keeps its shape."""
        upper = _smooth_lid(loop[: len(loop) // 2 + 1], LASH_SAMPLES) - offset
        if (upper[-1, 0] < upper[0, 0]) == (eye == 0):  # t = 0 at the outer corner (eye 0: the image's left)
            upper = upper[::-1]
        t = np.linspace(0, 1, len(upper))
        half = 0.5 * LASH_WIDTH * width * np.sin(np.pi * t ** LASH_PEAK_SKEW) ** LASH_TAPER
        tangent = np.gradient(upper, axis=0)
        normal = np.stack([-tangent[:, 1], tangent[:, 0]], 1) / np.maximum(np.linalg.norm(tangent, axis=1), 1e-9)[:, None]
        normal *= np.where(normal[:, 1:] < 0, -1, 1)  # pointing down the image
        centre = upper + normal * (LASH_DROP * half)[:, None]
        scale = LASH_SUPERSAMPLE
        h, w = region.shape[:2]
        mask = np.zeros((h * scale, w * scale), np.uint8)
        points = np.round((centre + 0.5) * scale * 16 - 8).astype(np.int32)  # pixel centres, 4 fractional bits
        for i in range(len(points) - 1):
            thickness = int(round((half[i] + half[i + 1]) * scale))
            if thickness > 0:
                cv2.line(mask, tuple(points[i]), tuple(points[i + 1]), 255, thickness, cv2.LINE_AA, 4)
        a = cv2.resize(mask, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        a = (a * (LASH_OPACITY * fade))[..., None]
        return region * (1 - a) + self.lash[eye] * a
