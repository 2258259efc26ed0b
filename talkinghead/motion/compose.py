"""Assembles the motion stack from the configs: audio source [+ video source, mixed per region] + controls.

    audio source (any MotionSource) --+
                                      +-- MixedMotion (gates, amplitudes) -- ControlledMotion -- Motion
    VideoDrivenMotion (driving video)-+

Without a driving video the audio source feeds the controls directly. The controls stage passes
motion through unchanged when every control is at its default.
"""

from __future__ import annotations

import numpy as np

from ..audio import AudioFeatures
from ..config import GenerateConfig
from .base import MotionSource
from .controls import ControlledMotion, ControlSchedule, Direction, check_controls, control_defaults
from .mixer import MixedMotion
from .types import Motion
from .video_driven import DrivingMotion, VideoDrivenMotion

AUDIO_MOUTH_GATE = 0.0  # the mouth gate's default (None) with separate speech: the audio drives the mouth


class StillMotion:
    """MotionSource holding the portrait's rest pose (the 'video' side of a mix without a driver)."""

    lookahead = 0

    def start(self, rest_expression: np.ndarray, fps: float) -> None:
        """Remember the rest pose."""
        self.rest = np.asarray(rest_expression, np.float32).copy()

    def push(self, features: AudioFeatures) -> Motion:
        """One rest frame per audio frame."""
        return Motion.rest(self.rest, len(features)) if len(features) else Motion.empty()

    def flush(self) -> Motion:
        """Nothing is held back."""
        return Motion.empty()


def build_motion_source(audio_source: MotionSource, config: GenerateConfig, driving: DrivingMotion | None = None,
                        direction: Direction | None = None) -> MotionSource:
    """The full motion stack for `config` (see module docstring); `audio_source` may be any MotionSource."""
    mix = config.mix
    check_controls(config.controls, mix)
    schedule = ControlSchedule(control_defaults(config.controls, mix, AUDIO_MOUTH_GATE), direction)
    source = audio_source
    if driving is not None:
        video = VideoDrivenMotion(driving, head_speed=config.motion.head_speed)
        source = MixedMotion(audio_source, video, schedule.gate, mix.audio_amplitude, mix.video_amplitude)
    elif mix.audio_amplitude != 1.0:
        source = MixedMotion(audio_source, StillMotion(), lambda region, t: np.zeros(len(t)), mix.audio_amplitude)
    return ControlledMotion(source, schedule)
