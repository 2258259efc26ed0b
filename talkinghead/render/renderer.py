"""Portrait + Motion -> frames, in layers: the background plate (render/plate.py), the head (a mesh drawn
with a depth test, render/mesh.py) over it, the eyes (render/eyes.py), then the mouth interior
(render/mouth.py). See docs/renderer.md.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..face import landmarks as L
from ..config import RenderConfig
from ..face.expression import ExpressionBasis, load_basis
from ..face.landmarker import FaceObservation
from ..motion.types import Motion
from .mouth import MouthFrame, draw_mouth_interior
from .rig import PortraitRig
from .warp import untangle



class Renderer:
    """Renders Motion frames of one portrait. image: (H, W, 3) uint8 RGB, already at output size."""

    def __init__(self, image: np.ndarray, face: FaceObservation, config: RenderConfig = RenderConfig(),
                 basis: ExpressionBasis | None = None):
        self.rig = PortraitRig(image, face, basis or load_basis(), config)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames."""
        return self.rig.width, self.rig.height

    def render(self, motion: Motion) -> list[np.ndarray]:
        """Every frame of `motion` as (H, W, 3) uint8 RGB."""
        return [self.render_frame(motion.expression[i], motion.head[i], motion.gaze[i]) for i in range(len(motion))]

    def render_frame(self, expression: np.ndarray, head: np.ndarray, gaze: np.ndarray) -> np.ndarray:
        """One frame: (52,), (6,), (2,) -> (H, W, 3) uint8 RGB."""
        rig = self.rig
        targets = rig.targets(expression, head, gaze)
        head_map, target_mouth, coarse = self._head_map(targets)
        hx0, hy0, hx1, hy1 = rig.head_box
        frame = rig.image.copy()
        fixed_map, fraction = cv2.convertMaps(head_map, None, cv2.CV_16SC2)  # remap's own fixed-point map, made once a frame
        head = cv2.remap(rig.image, fixed_map, fraction, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        frame[hy0:hy1, hx0:hx1] = head if rig.plate is None else rig.plate.composite(head, coarse, rig.head_upsample)
        for eye, (loop, iris, ids) in enumerate(zip(rig.eye_loops, rig.iris_ids, rig.eye_frames)):
            rig.eyes.draw(frame, head_map, rig.head_box, eye, targets.landmarks[list(loop)],
                          targets.landmarks[iris[0]] - targets.iris_rest[eye], targets.landmarks[list(ids)],
                          targets.lid_closure[eye])
        draw_mouth_interior(frame, rig.image, target_mouth, rig.source_mouth, rig.mouth_style, targets.rest_upper_lip)
        return frame

    def sampling_map(self, expression: np.ndarray, head: np.ndarray, gaze: np.ndarray) -> np.ndarray:
        """The head layer's backward map for one frame: (h, w, 2) float32 source x, y of every pixel of rig.head_box."""
        return self._head_map(self.rig.targets(expression, head, gaze))[0]

    def _head_map(self, targets) -> tuple[np.ndarray, MouthFrame, np.ndarray]:
        """Source position of every head-box pixel (h, w, 2), the target mouth frame, and the coarse map
        on rig.head_grid that the first was upsampled from."""
        rig = self.rig
        coarse, _, _ = rig.mesh.backward_map(targets.control, targets.depth, rig.head_grid, coverage=False)
        coarse = untangle(coarse, rig.head_grid.stride)  # no grid cell turns over once upsampled
        head_map = rig.head_upsample(coarse)
        target_mouth = MouthFrame.from_lips(targets.landmarks[list(L.LIPS_UPPER_INNER)],
                                            targets.landmarks[list(L.LIPS_LOWER_INNER)])
        return head_map, target_mouth, coarse
