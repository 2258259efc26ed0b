"""Replaying a recorded motion track (an imported CSV / JSON motion file) as a MotionSource."""

from __future__ import annotations

import logging

import numpy as np

from ..audio.features import AudioFeatures
from .types import Motion

log = logging.getLogger(__name__)


class RecordedMotion:
    """Plays back `motion` whose frame k belongs at `times[k]` seconds (increasing), in step with the
    audio frames pushed: output frame i shows the recorded frame nearest to time i / fps (exactly
    frame i when the rates match). Past the recording's end its last frame is held (with a warning).
    """

    lookahead = 0

    def __init__(self, motion: Motion, times: np.ndarray):
        if len(motion) == 0 or len(times) != len(motion):
            raise ValueError("a recorded motion needs at least one frame and one time per frame")
        self.motion = motion
        self.times = np.asarray(times, np.float64) - float(times[0])

    @classmethod
    def at_rate(cls, motion: Motion, fps: float) -> "RecordedMotion":
        """A recording with frames every 1 / fps seconds."""
        return cls(motion, np.arange(len(motion)) / float(fps))

    def start(self, rest_expression: np.ndarray, fps: float) -> None:
        """Restart playback (the recording holds absolute expressions: the rest pose is not used)."""
        self.fps = float(fps)
        self._frame = 0
        self._warned = False

    def push(self, features: AudioFeatures) -> Motion:
        """The recorded frames for as many output frames as audio frames were pushed."""
        count = len(features)
        if count == 0:
            return Motion.empty()
        t = (self._frame + np.arange(count)) / self.fps
        self._frame += count
        if not self._warned and t[-1] > self.times[-1] + 1.0 / self.fps:
            log.warning("the motion file (%.1f s) is shorter than the audio: its last frame is held", self.times[-1])
            self._warned = True
        after = np.clip(np.searchsorted(self.times, t), 0, len(self.times) - 1)
        before = np.maximum(after - 1, 0)
        nearest = np.where(np.abs(self.times[before] - t) < np.abs(self.times[after] - t), before, after)
        return Motion(self.motion.expression[nearest], self.motion.head[nearest], self.motion.gaze[nearest])

    def flush(self) -> Motion:
        """Nothing is held back."""
        return Motion.empty()
