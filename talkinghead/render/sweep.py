"""The scripted pose sweep of issue 12: the motions the renderer must show without tearing.

One frame per pose, all relative to the portrait: yaw -25..25 degrees, pitch -15..15, roll +-15,
distance 0.75..1.3, gaze to each corner (0.3 eye widths), full blinks (frontal and turned), jaw fully
open, a smile. Used by scripts/pose_sweep.py (re-tracked figures) and the fold-check tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..face import landmarks as L
from ..motion.types import HEAD_FIELDS, Motion

GAZE_CORNER = 0.3  # eye widths
YAWS = (-25.0, -15.0, -5.0, 5.0, 15.0, 25.0)
PITCHES = (-15.0, -7.5, 7.5, 15.0)
ROLLS = (-15.0, 15.0)
DISTANCES = (0.75, 1.3)


@dataclass(frozen=True)
class SweepPose:
    """One requested frame: head angles (degrees), distance, gaze (eye widths), expression changes."""

    name: str
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    distance: float = 1.0
    gaze: tuple[float, float] = (0.0, 0.0)
    set_coefficients: tuple[tuple[str, float], ...] = ()
    extreme: bool = False  # counted in the identity-at-extremes figure

    @property
    def blink(self) -> bool:
        """Whether this pose asks for fully closed eyes."""
        return dict(self.set_coefficients).get("eyeBlinkLeft", 0.0) >= 1.0


_BLINK = (("eyeBlinkLeft", 1.0), ("eyeBlinkRight", 1.0))


def sweep_poses() -> list[SweepPose]:
    """The sweep, in order (neutral first)."""
    poses = [SweepPose("neutral")]
    poses += [SweepPose(f"yaw{y:+.0f}", yaw=y, extreme=abs(y) == max(YAWS)) for y in YAWS]
    poses += [SweepPose(f"pitch{p:+.1f}", pitch=p, extreme=abs(p) == max(PITCHES)) for p in PITCHES]
    poses += [SweepPose(f"roll{r:+.0f}", roll=r, extreme=True) for r in ROLLS]
    poses += [SweepPose(f"distance{d:.2f}", distance=d, extreme=True) for d in DISTANCES]
    poses += [SweepPose(f"gaze{gx:+.1f},{gy:+.1f}", gaze=(gx, gy))
              for gx in (-GAZE_CORNER, GAZE_CORNER) for gy in (-GAZE_CORNER, GAZE_CORNER)]
    poses += [SweepPose("blink", set_coefficients=_BLINK), SweepPose("blink-yaw15", yaw=15.0, set_coefficients=_BLINK),
              SweepPose("blink-pitch-10", pitch=-10.0, set_coefficients=_BLINK)]
    poses += [SweepPose("jaw-open", set_coefficients=(("jawOpen", 1.0),)),
              SweepPose("smile", set_coefficients=(("mouthSmileLeft", 1.0), ("mouthSmileRight", 1.0)))]
    return poses


def sweep_motion(rest_expression: np.ndarray, poses: list[SweepPose]) -> Motion:
    """Motion of len(poses) frames from the portrait's own (52,) expression."""
    motion = Motion.rest(rest_expression, len(poses))
    expression, head, gaze = motion.expression.copy(), motion.head.copy(), motion.gaze.copy()
    for i, pose in enumerate(poses):
        for name, value in pose.set_coefficients:
            expression[i, L.BLENDSHAPE_INDEX[name]] = value
        for field, value in (("yaw", pose.yaw), ("pitch", pose.pitch), ("roll", pose.roll),
                             ("scale", 1.0 / pose.distance)):
            head[i, HEAD_FIELDS.index(field)] = value
        gaze[i] = pose.gaze
    return Motion(expression, head, gaze)
