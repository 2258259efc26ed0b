"""Assembles the motion stack from the configs: audio source [+ video source, mixed per region] + controls.

    audio source (any MotionSource) --+
                                      +-- MixedMotion (gates, amplitudes) -- ControlledMotion -- Motion
    VideoDrivenMotion (driving video)-+

Without a driving video the audio source feeds the controls directly. The controls stage passes
motion through unchanged when every control is at its default.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..audio.features import AudioFeatures
from ..config import GenerateConfig, MotionConfig
from ..errors import TalkingHeadError
from .audio_rules import RuleBasedAudioMotion
from .base import MotionSource
from .controls import ControlledMotion, ControlSchedule, Direction, check_controls, control_defaults
from .mixer import MixedMotion
from .types import Motion
from .video_driven import DrivingMotion, VideoDrivenMotion

MOUTH_SOURCES = ("speech", "loudness")


def audio_motion_source(config: MotionConfig, portrait_lips_closed: bool = False) -> MotionSource:
    """The audio-driven source MotionConfig.mouth names: the learned speech model or the loudness rules.

    portrait_lips_closed: the portrait's own lips are closed, so silence keeps its mouth exactly as it is
    (rather than the closed pose rebuilt from coefficients, which can leave a sliver of a gap)."""
    if config.mouth not in MOUTH_SOURCES:
        raise TalkingHeadError(f"unknown mouth source '{config.mouth}': use one of {', '.join(MOUTH_SOURCES)}")
    from .learned_mouth import SILENCE_POSES, LearnedMouthMotion, MouthModel

    if config.silence_mouth not in SILENCE_POSES:
        raise TalkingHeadError(f"unknown silence mouth '{config.silence_mouth}': use one of {', '.join(SILENCE_POSES)}")
    if config.mouth == "loudness":
        return RuleBasedAudioMotion(config, portrait_lips_closed)

    model = None
    if config.mouth_model:
        path = Path(config.mouth_model)
        if not path.is_file():
            raise TalkingHeadError(f"mouth model '{path}' does not exist: train one with scripts/train_mouth_model.py "
                                   "or leave it empty for the bundled model")
        try:
            model = MouthModel.load(path)
        except Exception:  # not an npz, truncated, or missing arrays: numpy raises many kinds
            raise TalkingHeadError(f"mouth model '{path}' is not a readable mouth model: give an .npz written by "
                                   "scripts/train_mouth_model.py, or leave it empty for the bundled model") from None
    return LearnedMouthMotion(config, model, silence_pose=config.silence_mouth, portrait_lips_closed=portrait_lips_closed)


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
