"""PortraitRig: everything about one portrait that the renderer computes once.

Turns a frame of Motion into target image positions for the control points: the 478 face
landmarks, a ring of anchors around the head (hair, ears, neck follow the head), and fixed anchors
on the image border (the background stays still).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..face import landmarks as L
from ..config import RenderConfig
from ..face.expression import ExpressionBasis
from ..face.landmarker import FaceObservation
from ..face.pose import HEAD_PIVOT, euler_to_rotation, fit_similarity
from ..motion.types import HEAD_FIELDS
from .mouth import MouthFrame, MouthStyle
from .warp import Grid, SplineField, Upsampler

HEAD_RING_SCALE = (1.45, 1.35, 1.75)  # ring size over the face oval: x, y below, y above (hair)
HEAD_RING_POINTS = 28
NECK_FOLLOW = 0.45  # how much the ring's lowest point (the neck) follows the head
OUTER_RING_SCALE = 2.6  # fixed anchors this far out hold the background
BORDER_ANCHORS_PER_SIDE = 8
BLINK_MEET = 0.3  # closed lids meet this far up from the lower lid (fraction of the opening)
BLINK_OVERLAP = 1.0  # the lids meet exactly; the eyelid layer covers what the warp leaves open
EYELID_BOX_SCALE = 2.2  # eyelid patch size over the eye's width
GRID_CELLS_LONG_SIDE = 128  # coarse warp grid resolution
MOUTH_SPLIT_SOFTNESS_PX = 1.0
TRUSTED_RANGE_STRETCH = 1.3  # coefficients may exceed the fitted range by this factor, no more
MIN_LIP_THICKNESS = 0.8  # share of the portrait's lip thickness a lip keeps however the mouth moves
UPPER_SKIN_SPAN = 0.3  # mouth widths past each corner whose skin above the lips the jaw field ignores
JAW_BOX_MARGIN = 0.25  # lower-lip field box: jaw outline plus this many face widths
JAW_EDGE_FADE_PX = 8.0
EDGE_FADE = 0.08
# Landmarks that drive the warp: every point of the lips, eyes, irises, brows, nose and face outline,
# and every third of the rest (cheek and forehead points move smoothly with their neighbours).
_KEY_LANDMARKS = set(L.LIPS_INNER_LOOP + L.LIPS_OUTER_LOOP + L.EYE_LEFT_LOOP + L.EYE_RIGHT_LOOP + L.IRIS_LEFT
                     + L.IRIS_RIGHT + L.BROW_LEFT + L.BROW_RIGHT + L.FACE_OVAL + L.NOSE_BRIDGE)
WARP_LANDMARKS = np.array(sorted(_KEY_LANDMARKS | set(range(0, 468, 3))
                                 | set(L.LIPS_ALL)), int)  # the head box's field fades to zero over this share of its size


class EyelidLayer:
    """A closed-eye version of one eye region: the opening inpainted from the surrounding lid skin.

    During a blink the renderer warps this patch with the frame's map and blends it in where the
    eye opening shows, so a blink covers the eye fully even where the smooth warp cannot close it.
    """

    def __init__(self, image: np.ndarray, loop_xy: np.ndarray):
        h, w = image.shape[:2]
        centre = loop_xy.mean(0)
        half = np.ptp(loop_xy, axis=0).max() * EYELID_BOX_SCALE / 2
        self.box = (int(max(centre[0] - half, 0)), int(max(centre[1] - half, 0)),
                    int(min(centre[0] + half, w)), int(min(centre[1] + half, h)))
        mask = np.zeros((h, w), np.uint8)
        cv2.fillPoly(mask, [np.round(loop_xy).astype(np.int32)], 255)
        mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))
        self.closed = cv2.inpaint(image, mask, 3, cv2.INPAINT_TELEA)
        self.opening = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), 1.0)


@dataclass(frozen=True)
class Targets:
    """Per-frame target positions (pixels): control (N, 2) and face landmarks (478, 2)."""

    control: np.ndarray
    landmarks: np.ndarray
    lid_closure: tuple[float, float]  # (right eye, left eye) in [0, 1]


class PortraitRig:
    """Precomputed warp fields and geometry for one portrait."""

    def __init__(self, image: np.ndarray, face: FaceObservation, basis: ExpressionBasis, config: RenderConfig):
        self.image = image
        self.face = face
        self.basis = basis
        self.config = config
        self.height, self.width = image.shape[:2]
        self.rest_expression = face.blendshapes.copy()
        self.pose = fit_similarity(face.landmarks, basis.mean_shape)
        self.canonical = self.pose.invert(face.landmarks.astype(np.float64))  # exact round trip
        self.iod_px = float(self.pose.scale)

        self.ring_canonical, self.ring_weight = self._head_ring()
        fixed = self._fixed_anchors()
        self.source = np.concatenate([face.landmarks[:, :2], self.pose.apply(self.ring_canonical)[:, :2], fixed]).astype(np.float64)
        self.n_face, self.n_ring = L.N_LANDMARKS, len(self.ring_canonical)

        upper, lower = self._lip_sets()
        warp_points = np.concatenate([WARP_LANDMARKS, np.arange(self.n_face, len(self.source))])
        self.n_fixed = len(fixed)
        self.upper_ids = np.setdiff1d(warp_points, lower)  # field for everything above the lip line
        self.lower_ids = np.setdiff1d(warp_points, upper)  # field for the lower lip and jaw
        n_fixed_upper = n_fixed_lower = self.n_fixed  # fixed anchors sort last (highest ids)
        stride = max(2, int(np.ceil(max(self.height, self.width) / GRID_CELLS_LONG_SIDE)))
        scale = max(self.iod_px, 1.0)
        # the warp only moves pixels inside the fixed outer ring: fields live on that box alone
        self.head_box = self._box_around(OUTER_RING_SCALE * face.width / 2, face.width / 2 * OUTER_RING_SCALE)
        head_grid = Grid.for_box(*self.head_box, stride)
        self.upper_field = SplineField(self.source[self.upper_ids], head_grid, scale, self._edge_fade(head_grid),
                                       n_moving=len(self.upper_ids) - n_fixed_upper)
        self.head_upsample = Upsampler(head_grid, self.head_box)
        # the lower-lip field is only used around the jaw
        jaw = face.landmarks[list(L.FACE_OVAL), :2]
        margin = JAW_BOX_MARGIN * face.width
        x0, x1 = jaw[:, 0].min() - margin, jaw[:, 0].max() + margin
        y0, y1 = face.landmarks[L.NOSE_TIP, 1] - margin, jaw[:, 1].max() + margin
        hx0, hy0, hx1, hy1 = self.head_box
        self.jaw_box = (int(max(x0, hx0)), int(max(y0, hy0)), int(min(x1, hx1)), int(min(y1, hy1)))
        jaw_grid = Grid.for_box(*self.jaw_box, stride)
        self.lower_field = SplineField(self.source[self.lower_ids], jaw_grid, scale,
                                       n_moving=len(self.lower_ids) - n_fixed_lower)
        self.upper_moving = self.upper_ids[:len(self.upper_ids) - n_fixed_upper]
        self.lower_moving = self.lower_ids[:len(self.lower_ids) - n_fixed_lower]
        self.jaw_upsample = Upsampler(jaw_grid, self.jaw_box)
        jx0, jy0, jx1, jy1 = self.jaw_box
        self.jaw_ys, self.jaw_xs = np.mgrid[jy0:jy1, jx0:jx1].astype(np.float32)  # pixel coordinates
        edge = np.minimum.reduce([self.jaw_xs - jx0, jx1 - 1 - self.jaw_xs, self.jaw_ys - jy0, jy1 - 1 - self.jaw_ys])
        self.jaw_edge_fade = np.clip(edge / JAW_EDGE_FADE_PX, 0, 1)  # the lower map fades out at the box edges

        self.eyelids = [EyelidLayer(image, face.landmarks[list(loop), :2]) for loop in (L.EYE_RIGHT_LOOP, L.EYE_LEFT_LOOP)]
        self.source_mouth = MouthFrame.from_lips(face.landmarks[list(L.LIPS_UPPER_INNER), :2],
                                                 face.landmarks[list(L.LIPS_LOWER_INNER), :2])
        self.mouth_style = MouthStyle.for_portrait(image, face.box)
        self.skip_rows = L.BLINK_COEFFS + L.GAZE_COEFFS
        self.trusted_max = basis.coefficient_max * TRUSTED_RANGE_STRETCH

    # --- construction helpers -------------------------------------------------------------
    def _box_around(self, half_width: float, half_height: float) -> tuple[int, int, int, int]:
        """Pixel box (x0, y0, x1, y1) around the face centre, clipped to the image."""
        cx, cy = self.face.landmarks[list(L.FACE_OVAL), :2].mean(0)
        return (int(max(np.floor(cx - half_width), 0)), int(max(np.floor(cy - half_height), 0)),
                int(min(np.ceil(cx + half_width) + 1, self.width)), int(min(np.ceil(cy + half_height) + 1, self.height)))

    def _edge_fade(self, grid: Grid) -> np.ndarray:
        """(rows, cols) weights: 1 inside, falling to 0 at box edges that are not the image border."""
        pts = grid.points().reshape(grid.rows, grid.cols, 2)
        x0, y0, x1, y1 = self.head_box
        ramp = EDGE_FADE * max(x1 - x0, y1 - y0)
        fade = np.ones((grid.rows, grid.cols))
        for dist, at_border in ((pts[..., 0] - x0, x0 == 0), (x1 - 1 - pts[..., 0], x1 >= self.width),
                                (pts[..., 1] - y0, y0 == 0), (y1 - 1 - pts[..., 1], y1 >= self.height)):
            if not at_border:
                fade *= np.clip(dist / ramp, 0, 1)
        return fade * fade * (3 - 2 * fade)
    def _head_ring(self) -> tuple[np.ndarray, np.ndarray]:
        """Anchor ring around the face oval in canonical space, with its head-follow weight."""
        oval = self.canonical[list(L.FACE_OVAL)]
        centre = oval.mean(0)
        angles = np.linspace(0, 2 * np.pi, HEAD_RING_POINTS, endpoint=False)
        rel = oval[:, :2] - centre[:2]
        oval_angles = np.arctan2(rel[:, 1], rel[:, 0])
        oval_radius = np.linalg.norm(rel, axis=1)
        order = np.argsort(oval_angles)
        radius = np.interp(angles, oval_angles[order], oval_radius[order], period=2 * np.pi)
        sx, sy_down, sy_up = HEAD_RING_SCALE
        dirs = np.stack([np.cos(angles), np.sin(angles)], 1)
        sy = np.where(dirs[:, 1] > 0, sy_down, sy_up)
        ring = np.zeros((HEAD_RING_POINTS, 3))
        ring[:, 0] = centre[0] + dirs[:, 0] * radius * sx
        ring[:, 1] = centre[1] + dirs[:, 1] * radius * sy
        ring[:, 2] = centre[2]  # the face outline's own depth, so the ring projects around the face
        down = np.clip(dirs[:, 1], 0, 1)  # 1 straight below the chin
        weight = 1.0 - (1.0 - NECK_FOLLOW) * down ** 2
        return ring, weight

    def _fixed_anchors(self) -> np.ndarray:
        """Image-border points and a wide ring around the head that never move."""
        h, w = self.height - 1, self.width - 1
        t = np.linspace(0, 1, BORDER_ANCHORS_PER_SIDE, endpoint=False)
        border = np.concatenate([np.stack([t * w, np.zeros_like(t)], 1), np.stack([np.full_like(t, w), t * h], 1),
                                 np.stack([w - t * w, np.full_like(t, h)], 1), np.stack([np.zeros_like(t), h - t * h], 1)])
        centre = self.face.landmarks[list(L.FACE_OVAL), :2].mean(0)
        radius = self.face.width / 2 * OUTER_RING_SCALE
        angles = np.linspace(0, 2 * np.pi, 20, endpoint=False)
        ring = centre + radius * np.stack([np.cos(angles), np.sin(angles)], 1)
        inside = (ring[:, 0] > 2) & (ring[:, 0] < w - 2) & (ring[:, 1] > 2) & (ring[:, 1] < h - 2)
        return np.concatenate([border, ring[inside]])

    def _lip_sets(self) -> tuple[np.ndarray, np.ndarray]:
        """Landmark ids left out of the upper field (the lower lip) and of the lower field (the upper
        lip and the skin between it and the nose tip, so the jaw field stays smooth as it opens)."""
        lm = self.face.landmarks[:, :2]
        mouth = MouthFrame.from_lips(lm[list(L.LIPS_UPPER_INNER)], lm[list(L.LIPS_LOWER_INNER)])
        outer = lm[list(L.LIPS_OUTER_LOOP)].astype(np.float32)
        margin = 0.04 * mouth.width + 1.0
        nose_w = float((lm[L.NOSE_TIP] - mouth.origin) @ mouth.normal)
        upper, lower = [], []
        for i in range(L.N_LANDMARKS):
            rel = lm[i] - mouth.origin
            u, wv = rel @ mouth.axis / mouth.width, rel @ mouth.normal
            up, lo = mouth.curves_at(np.clip(u, 0, 1))
            mid = (up + lo) / 2
            in_lips = cv2.pointPolygonTest(outer, (float(lm[i, 0]), float(lm[i, 1])), True) >= -margin
            if in_lips and wv > mid + 0.5:
                lower.append(i)
            elif wv < mid - 0.5 and (in_lips or (-UPPER_SKIN_SPAN < u < 1 + UPPER_SKIN_SPAN and wv > nose_w)):
                upper.append(i)
        return np.array(upper, int), np.array(lower, int)

    # --- per frame ------------------------------------------------------------------------
    def targets(self, expression: np.ndarray, head: np.ndarray, gaze: np.ndarray) -> Targets:
        """One frame of motion ((52,), (6,), (2,)) -> target pixel positions."""
        canon = self.canonical.copy()
        # beyond the range it was fitted on, a linear basis folds the lips: clip to that range
        trusted = np.minimum(expression, np.maximum(self.trusted_max, self.rest_expression))
        canon += self.basis.displacement(trusted - self.rest_expression, skip=self.skip_rows)
        self._keep_lip_thickness(canon)
        self._close_crossed_lips(canon)
        closures = self._blink_and_gaze(canon, expression, gaze)

        yaw, pitch, roll, tx, ty, scale = (float(head[HEAD_FIELDS.index(k)]) for k in HEAD_FIELDS)
        rot = euler_to_rotation(yaw, pitch, roll)
        pivot = HEAD_PIVOT

        def move(points):
            return pivot + scale * (points - pivot) @ rot.T + np.array([tx, ty, 0.0])

        face_px = self.pose.apply(move(canon))[:, :2]
        ring_src = self.source[self.n_face:self.n_face + self.n_ring]
        ring_px = self.pose.apply(move(self.ring_canonical))[:, :2]
        ring_px = ring_src + self.ring_weight[:, None] * (ring_px - ring_src)
        fixed = self.source[self.n_face + self.n_ring:]
        return Targets(np.concatenate([face_px, ring_px, fixed]), face_px, closures)

    def _keep_lip_thickness(self, canon: np.ndarray) -> None:
        """Keep each lip at least MIN_LIP_THICKNESS of its own thickness: the outer edge gives way
        (a linear basis pushed far can otherwise fold the inner lip edge over the outer one)."""
        for inner, outer, sign in ((L.LIPS_LOWER_INNER, L.LIPS_LOWER_OUTER, 1.0),
                                   (L.LIPS_UPPER_INNER, L.LIPS_UPPER_OUTER, -1.0)):
            inner_ids, outer_ids = list(inner[1:-1]), list(outer[1:-1])
            rest = sign * (self.canonical[outer_ids, 1] - self.canonical[inner_ids, 1])
            now = sign * (canon[outer_ids, 1] - canon[inner_ids, 1])
            floor = MIN_LIP_THICKNESS * np.maximum(rest, 0)
            thin = now < floor
            canon[np.array(outer_ids)[thin], 1] = canon[np.array(inner_ids)[thin], 1] + sign * floor[thin]

    def _close_crossed_lips(self, canon: np.ndarray) -> None:
        """Where the lower inner lip would pass above the upper one, meet in the middle."""
        up_ids = list(L.LIPS_UPPER_INNER[1:-1])
        lo_ids = list(L.LIPS_LOWER_INNER[1:-1])
        up, lo = canon[up_ids, 1], canon[lo_ids, 1]
        crossed = lo < up
        if crossed.any():
            mid = (up + lo) / 2
            canon[np.array(up_ids)[crossed], 1] = mid[crossed]
            canon[np.array(lo_ids)[crossed], 1] = mid[crossed]

    def _blink_and_gaze(self, canon: np.ndarray, expression: np.ndarray, gaze: np.ndarray) -> tuple[float, float]:
        """Close the lids geometrically (full closure at eyeBlink = 1) and move the irises."""
        eyes = ((L.BLENDSHAPE_INDEX["eyeBlinkRight"], L.EYE_RIGHT_UPPER_LID, L.EYE_RIGHT_LOWER_LID, L.IRIS_RIGHT,
                 L.EYE_RIGHT_OUTER_CORNER, L.EYE_RIGHT_INNER_CORNER),
                (L.BLENDSHAPE_INDEX["eyeBlinkLeft"], L.EYE_LEFT_UPPER_LID, L.EYE_LEFT_LOWER_LID, L.IRIS_LEFT,
                 L.EYE_LEFT_OUTER_CORNER, L.EYE_LEFT_INNER_CORNER))
        closures = []
        for k, upper, lower, iris, outer, inner in eyes:
            rest = float(self.rest_expression[k])
            closure = float(np.clip((expression[k] - rest) / max(1.0 - rest, 1e-3), 0.0, 1.0))
            up, lo = canon[list(upper)], canon[list(lower)]
            lid_move = closure * BLINK_OVERLAP * (1 - BLINK_MEET) * (lo - up)
            canon[list(upper)] = up + lid_move
            canon[list(lower)] = lo + closure * BLINK_OVERLAP * BLINK_MEET * (up - lo)
            eye_width = float(np.linalg.norm(canon[outer, :2] - canon[inner, :2]))
            shift = np.zeros(3)
            shift[:2] = np.asarray(gaze, float) * eye_width * (1 - closure)
            canon[list(iris)] += shift + lid_move.mean(0)
            closures.append(closure)
        return closures[0], closures[1]
