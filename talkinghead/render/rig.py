"""PortraitRig: everything about one portrait that the renderer computes once.

Turns a frame of Motion into target image positions for the mesh's vertices: the 468 face landmarks
(irises: the eye layer's), a ring of anchors around the head (hair, ears, neck follow the head), and
fixed anchors on the image border and far around the head (the background stays still), softly
clamped so that no background triangle flips.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..face import landmarks as L
from ..config import RenderConfig
from ..face.expression import ExpressionBasis
from ..face.landmarker import FaceObservation
from ..face.segmentation import person_mask
from ..face.pose import HEAD_PIVOT, fit_similarity, head_rotation, upright_frame
from ..motion.types import HEAD_FIELDS
from .mouth import MouthFrame, MouthStyle
from .eyes import EyeLayer
from .lids import close_lids, gaze_lids
from .plate import BackgroundPlate
from .mesh import N_FACE_VERTICES, TriangleMesh, delaunay, keep_edges, signed_areas
from .warp import Grid, Upsampler

HEAD_RING_SCALE = (1.45, 1.35, 1.75)  # ring size over the face oval: x, y below, y above (hair)
HEAD_RING_POINTS = 28
NECK_FOLLOW = 0.45  # how much the ring's lowest point (the neck) follows the head
OUTER_RING_SCALE = 3.0  # fixed anchors this far out hold the background
RING_BORDER_MARGIN = 0.25  # head-ring points closer than this (face widths) to the frame's edge follow the head less
BORDER_ANCHORS_PER_SIDE = 8
HIDDEN_INSIDE_PX = 0.5  # a face vertex this far inside an eye opening is a hidden one (see _hidden_in_eyes)
GRID_CELLS_LONG_SIDE = 128  # coarse warp grid resolution
LIP_PARTING = 0.3  # the mesh is triangulated with touching lips parted by this share of the thinner lip
TRUSTED_RANGE_STRETCH = 1.3  # coefficients may exceed the fitted range by this factor, no more
OUTLINE_BAND_RINGS = 2  # face triangles this many edges from the outline never turn away (see _may_turn_away)
DEPTH_RAMP_RINGS = 2  # face_depth reaches its full gain over this many edges inside that band (see _depth_weights)
MIN_LIP_THICKNESS = 0.8  # share of the portrait's lip thickness a lip keeps however the mouth moves

def similarity_2d(source: np.ndarray, target: np.ndarray):
    """Least-squares 2D similarity (rotation, scale, shift) taking source (N, 2) to target (N, 2), as a function."""
    zs, zt = source[:, 0] + 1j * source[:, 1], target[:, 0] + 1j * target[:, 1]
    ms, mt = zs.mean(), zt.mean()
    a = np.vdot(zs - ms, zt - mt) / max(np.vdot(zs - ms, zs - ms).real, 1e-12)

    def apply(points: np.ndarray) -> np.ndarray:
        z = a * (points[:, 0] + 1j * points[:, 1] - ms) + mt
        return np.stack([z.real, z.imag], 1)

    return apply


@dataclass(frozen=True)
class Targets:
    """Per-frame target positions (pixels): control (N, 2) and face landmarks (478, 2)."""

    control: np.ndarray
    landmarks: np.ndarray
    lid_closure: tuple[float, float]  # (right eye, left eye) in [0, 1]
    depth: np.ndarray  # (N,) per control point, pixels, smaller is nearer the camera
    iris_rest: np.ndarray  # (2, 2) where each iris centre would be without gaze (right eye, left eye)
    rest_upper_lip: np.ndarray  # (11, 2) the portrait's own upper inner lip moved by the head only (the upper teeth's place)


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
        self.upright = upright_frame(basis.mean_shape)  # head angles turn about these axes
        self.canonical = self.pose.invert(face.landmarks.astype(np.float64))  # exact round trip
        self.iod_px = float(self.pose.scale)
        self.depth_plane = float(self.canonical[list(L.FACE_OVAL), 2].mean())  # face_depth scales depth about it

        self.ring_canonical, self.ring_weight = self._head_ring()
        fixed = self._fixed_anchors()
        self.source = np.concatenate([face.landmarks[:N_FACE_VERTICES, :2], self.pose.apply(self.ring_canonical)[:, :2], fixed]).astype(np.float64)
        ring_src = self.source[N_FACE_VERTICES:N_FACE_VERTICES + len(self.ring_canonical)]
        self.ring_border_weight = self._border_weight(ring_src)  # ring points at or past the frame's edge stay put
        self.n_face, self.n_ring = N_FACE_VERTICES, len(self.ring_canonical)

        self.n_fixed = len(fixed)
        self.movable = np.arange(len(self.source)) < len(self.source) - self.n_fixed
        triangles, parted = self._triangulate()
        rings = self._outline_rings(triangles)
        self.mesh = TriangleMesh(self.source, triangles, self._collapsible(triangles),
                                 may_turn_away=self._may_turn_away(triangles, rings), opened_sources=parted)
        self.depth_weight = self._depth_weights(rings)
        stride = max(2, int(np.ceil(max(self.height, self.width) / GRID_CELLS_LONG_SIDE)))
        # the mesh only moves pixels inside the fixed outer ring: the map lives on that box alone
        self.head_box = self._box_around(OUTER_RING_SCALE * face.width / 2, face.width / 2 * OUTER_RING_SCALE)
        self.head_grid = Grid.for_box(*self.head_box, stride)
        self.head_upsample = Upsampler(self.head_grid, self.head_box)
        person = person_mask(image) if config.background == "plate" else None
        self.plate = None if person is None else BackgroundPlate(image, person, face.landmarks[list(L.FACE_OVAL), :2],
                                                                 face.width, self.head_box, stride)

        self.eye_loops = (L.EYE_RIGHT_LOOP, L.EYE_LEFT_LOOP)
        self.iris_ids = (L.IRIS_RIGHT, L.IRIS_LEFT)
        self.eye_frames = (L.EYE_RIGHT_FRAME, L.EYE_LEFT_FRAME)
        self.eyes = EyeLayer(image, [face.landmarks[list(loop), :2] for loop in self.eye_loops],
                             [face.landmarks[list(iris), :2] for iris in self.iris_ids],
                             [face.landmarks[list(ids), :2] for ids in self.eye_frames])
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

    def _border_weight(self, points: np.ndarray) -> np.ndarray:
        """(N,) in [0, 1]: 0 for points on or outside the image border, 1 from RING_BORDER_MARGIN face widths inside."""
        inside = np.minimum.reduce([points[:, 0], self.width - 1 - points[:, 0], points[:, 1], self.height - 1 - points[:, 1]])
        return np.clip(inside / (RING_BORDER_MARGIN * self.face.width), 0.0, 1.0)

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

    def _triangulate(self) -> tuple[np.ndarray, np.ndarray]:
        """The mesh's triangles, and the source points with the lips parted: Delaunay, with the
        inner-lip lines kept as edges, so that no triangle joins the upper lip to the lower one and an
        opening jaw moves each lip's own texture.

        A portrait whose lips touch has the two lines on top of each other (or crossed by a fraction of a
        pixel), where no planar mesh can keep both: the triangulation is made on the source with the
        lips parted by LIP_PARTING of their thickness, and the triangles between the two lines (the
        collapsible mouth opening) are left closed or crossed in the source (opened, they sample the
        parted lips). Falls back to plain Delaunay if that would turn any other triangle over."""
        upper, lower = list(L.LIPS_UPPER_INNER), list(L.LIPS_LOWER_INNER)
        parted = self.source.copy()
        down = self.source[L.LIPS_LOWER_OUTER[5]] - self.source[L.LIPS_UPPER_OUTER[5]]
        down /= max(float(np.linalg.norm(down)), 1e-9)
        inner_up, inner_lo = parted[upper[1:-1]], parted[lower[1:-1]]
        thickness = np.minimum((inner_up - self.source[list(L.LIPS_UPPER_OUTER[1:-1])]) @ down,
                               (self.source[list(L.LIPS_LOWER_OUTER[1:-1])] - inner_lo) @ down)
        want = LIP_PARTING * np.maximum(thickness, 0.0)  # gap wanted between the lines, per pair
        shift = np.maximum(want - (inner_lo - inner_up) @ down, 0.0) / 2
        parted[upper[1:-1]] -= shift[:, None] * down
        parted[lower[1:-1]] += shift[:, None] * down
        used = np.setdiff1d(np.arange(len(parted)), self._hidden_in_eyes())
        triangles = used[delaunay(parted[used])]
        lines = list(zip(upper[:-1], upper[1:])) + list(zip(lower[:-1], lower[1:]))
        # each eye opening a strip between its lids, every triangle with a corner on both, so that a
        # closing lid flattens them instead of turning them over (a fan from the corner to the upper lid
        # alone turned inside out as the lid reached the lower lid's curve, and the clamp held it open);
        # ... and the band above each upper lid (lashes, liner: it moves with the lid, point for point)
        # a strip between the lid and its ring, so that no triangle there joins two lid points to one
        # ring point and turns over as the lid's middle comes down further than its ends
        for upper, lower, fold in ((L.EYE_RIGHT_UPPER_LID, L.EYE_RIGHT_LOWER_LID, L.EYE_RIGHT_LID_FOLD),
                                   (L.EYE_LEFT_UPPER_LID, L.EYE_LEFT_LOWER_LID, L.EYE_LEFT_LID_FOLD)):
            lines += list(zip(upper, lower)) + list(zip(upper, fold))
        kept = keep_edges(parted, triangles, lines)
        if kept is None or (signed_areas(self.source, kept)[~self._collapsible(kept)] <= 0).any():
            return used[delaunay(self.source[used])], self.source
        return kept, parted

    def _hidden_in_eyes(self) -> np.ndarray:
        """Face vertices the tracker placed inside an eye opening that are not the eye's own: on a turned
        face, points of the far side's outline (MediaPipe puts them where the 3D model projects, behind
        the face). Nothing there can be seen, and in the mesh they tie the lids to the far cheek: a
        closing lid turned those triangles over and the clamp held the lid open (liveportrait_s10's far
        eye closed a third of the way). They are left out of the triangulation."""
        hidden = []
        for loop in (L.EYE_RIGHT_LOOP, L.EYE_LEFT_LOOP):
            contour = self.source[list(loop)].astype(np.float32).reshape(-1, 1, 2)
            for v in np.setdiff1d(np.arange(N_FACE_VERTICES), loop):
                x, y = self.source[v]
                if cv2.pointPolygonTest(contour, (float(x), float(y)), True) > HIDDEN_INSIDE_PX:
                    hidden.append(int(v))
        return np.array(sorted(set(hidden)), int)

    @staticmethod
    def _outline_rings(triangles: np.ndarray) -> np.ndarray:
        """(468,) how many edges of the face mesh each face vertex is from the face outline (0 on it)."""
        face = triangles[(triangles < N_FACE_VERTICES).all(1)]
        rings = np.full(N_FACE_VERTICES, N_FACE_VERTICES)
        rings[list(L.FACE_OVAL)] = 0
        for ring in range(1, N_FACE_VERTICES):
            reached = rings[face] < ring
            grow = np.unique(face[reached.any(1)])
            grow = grow[rings[grow] > ring]
            if not len(grow):
                break
            rings[grow] = ring
        return rings

    def _depth_weights(self, rings: np.ndarray) -> np.ndarray:
        """(478,) share of face_depth's extra gain each landmark gets, from its distance to the outline in
        edges (`_outline_rings`): none in the band along the outline that never turns away (there a
        deeper face overtook the outline, and the clamp that holds the band pulled every other outline
        vertex back: a saw-tooth edge), rising to all of it over DEPTH_RAMP_RINGS edges inside. The
        irises get all of it."""
        weight = np.ones(len(self.canonical))
        weight[:N_FACE_VERTICES] = np.clip((rings - OUTLINE_BAND_RINGS) / DEPTH_RAMP_RINGS, 0.0, 1.0)
        return weight

    @staticmethod
    def _may_turn_away(triangles: np.ndarray, rings: np.ndarray) -> np.ndarray:
        """(T,) bool: face triangles that may turn away from the camera (a turned nose covers the cheek
        behind it), all but those with a corner within OUTLINE_BAND_RINGS edges of the face outline
        (`rings`: `_outline_rings`). Those keep facing the camera (the clamp compresses them instead):
        where the far cheek folded over the outline, the turned-away band showed the hair and background
        triangles behind it in a saw-tooth edge."""
        face = (triangles < N_FACE_VERTICES).all(1)
        inner = rings[np.minimum(triangles, N_FACE_VERTICES - 1)] > OUTLINE_BAND_RINGS  # (T, 3)
        return face & inner.all(1)

    @staticmethod
    def _collapsible(triangles: np.ndarray) -> np.ndarray:
        """(T,) bool: triangles inside an eye opening or the mouth opening (they may close to nothing)."""
        out = np.zeros(len(triangles), bool)
        for loop in (L.EYE_RIGHT_LOOP, L.EYE_LEFT_LOOP, L.LIPS_INNER_LOOP):
            out |= np.isin(triangles, loop).all(1)
        return out

    # --- per frame ------------------------------------------------------------------------
    def targets(self, expression: np.ndarray, head: np.ndarray, gaze: np.ndarray) -> Targets:
        """One frame of motion ((52,), (6,), (2,)) -> target pixel positions."""
        canon = self.canonical.copy()
        # beyond the range it was fitted on, a linear basis folds the lips: clip to that range
        trusted = np.minimum(expression, np.maximum(self.trusted_max, self.rest_expression))
        canon += self.basis.displacement(trusted - self.rest_expression, skip=self.skip_rows)
        self._keep_lip_thickness(canon)
        self._close_crossed_lips(canon)
        open_lids = canon.copy()
        closures, shifts = gaze_lids(canon, self.rest_expression, expression, gaze)

        yaw, pitch, roll, tx, ty, scale = (float(head[HEAD_FIELDS.index(k)]) for k in HEAD_FIELDS)
        rot = head_rotation(yaw, pitch, roll, self.upright)
        pivot = HEAD_PIVOT
        depth_plane = self.depth_plane

        def move(points, weight=1.0):
            # the rotation acts on the face with its depth scaled by face_depth (times weight, per point)
            # about the outline's plane; what the portrait shows at rest (no rotation) is unchanged
            gain = 1.0 + (self.config.face_depth - 1.0) * np.asarray(weight, np.float64)
            deep = points.copy()
            deep[:, 2] = depth_plane + gain * (points[:, 2] - depth_plane)
            return pivot + scale * (deep - pivot) @ rot.T + np.array([tx, ty, 0.0]) - deep + points

        face_3d = self.pose.apply(move(canon, self.depth_weight))  # (478, 3) pixels
        face_px = face_3d[:, :2]
        lids = face_px[:N_FACE_VERTICES] - self.pose.apply(move(open_lids, self.depth_weight))[:N_FACE_VERTICES, :2]
        ring_src = self.source[self.n_face:self.n_face + self.n_ring]
        ring_3d = self.pose.apply(move(self.ring_canonical))
        ring_px = ring_3d[:, :2]
        ring_px = ring_src + (self.ring_weight * self.ring_border_weight)[:, None] * (ring_px - ring_src)
        fixed = self.source[self.n_face + self.n_ring:]
        wanted = np.concatenate([face_px[:N_FACE_VERTICES], ring_px, fixed])
        # the soft clamp's fallback: the portrait moved as a flat picture (a 2D similarity never folds)
        rigid = list(L.RIGID_POINTS)
        flat = similarity_2d(self.source[rigid], self.pose.apply(move(self.canonical[rigid], self.depth_weight[rigid]))[:, :2])
        ring_base = ring_src + self.ring_border_weight[:, None] * (flat(ring_src) - ring_src)
        base = np.concatenate([flat(self.source[:N_FACE_VERTICES]), ring_base, fixed])
        # clamped in two steps: the head and face with the lids where they were, then the lids' own
        # move (gaze, then the blink, made here on the clamped pixels) from there, so that a turned
        # head's clamp (which pulls whole regions back towards the flat picture) does not hold a closing
        # lid open, the lids meet on the lower lid as it is shown, and a lid's move is pulled back only
        # at the vertices that would turn a triangle over (not spread to the neighbours: a corner
        # point that cannot come all the way down must not hold the whole lid open)
        wanted[:N_FACE_VERTICES] -= lids
        control = self.mesh.keep_orientation(wanted, base, self.movable)
        if np.any(lids) or max(closures) > 0:
            moved = control.copy()
            moved[:N_FACE_VERTICES] += lids
            close_lids(moved, closures)
            control = self.mesh.keep_orientation(moved, control, self.movable, spread=False)
        landmarks = face_px.copy()
        landmarks[:N_FACE_VERTICES] = control[:N_FACE_VERTICES]  # what the mesh shows (irises: their own layer)
        far = float(max(face_3d[:, 2].max(), ring_3d[:, 2].max())) + self.face.width  # the background
        depth = np.concatenate([face_3d[:N_FACE_VERTICES, 2], ring_3d[:, 2], np.full(len(fixed), far)])
        centres = [L.IRIS_RIGHT[0], L.IRIS_LEFT[0]]
        iris_rest = self.pose.apply(move(canon[centres] - shifts, self.depth_weight[centres]))[:, :2]
        lip = list(L.LIPS_UPPER_INNER)
        rest_upper_lip = self.pose.apply(move(self.canonical[lip], self.depth_weight[lip]))[:, :2]
        return Targets(control, landmarks, closures, depth, iris_rest, rest_upper_lip)

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
