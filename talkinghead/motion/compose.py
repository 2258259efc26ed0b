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
from .controls import ControlledMotion, ControlSchedule, Direction, control_defaults
from .mixer import MixedMotion
from .types import Motion
from .video_driven import DrivingMotion, VideoDrivenMotion


def audio_motion_source(config: MotionConfig, portrait_lips_closed: bool = False) -> MotionSource:
    """The audio-driven source MotionConfig names: the mouth from the speech model or the loudness rules,
    the rest of the face and the head from the rules or the diffusion model (MotionConfig.generator).

    portrait_lips_closed: the portrait's own lips are closed, so silence keeps its mouth exactly as it is
    (rather than the closed pose rebuilt from coefficients, which can leave a sliver of a gap)."""
    mouth = mouth_source(config, portrait_lips_closed)
    if config.generator == "rules":
        return mouth
    from .learned.checkpoint import CAUSAL_MODEL_PATH, MODEL_PATH, load_cached
    from .learned.source import DiffusionMotion, Sampling

    bundled = CAUSAL_MODEL_PATH if config.generator == "diffusion-live" else MODEL_PATH
    model = load_cached(str(Path(config.motion_model) if config.motion_model else bundled))
    return DiffusionMotion(model, mouth, config, Sampling(config.diffusion_steps, config.sampler, config.audio_guidance,
                                                        config.control_guidance))


def mouth_source(config: MotionConfig, portrait_lips_closed: bool = False) -> MotionSource:
    """The source MotionConfig.mouth names (it also moves the head, eyes and brows by the rules)."""
    from .learned_mouth import LearnedMouthMotion, MouthModel

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
    return LearnedMouthMotion(config, model, portrait_lips_closed=portrait_lips_closed)


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
    schedule = ControlSchedule(control_defaults(config.controls, mix, AUDIO_MOUTH_GATE), direction)
    source = audio_source
    if driving is not None:
        video = VideoDrivenMotion(driving, head_speed=config.motion.head_speed)
        source = MixedMotion(audio_source, video, schedule.gate, mix.audio_amplitude, mix.video_amplitude)
    elif mix.audio_amplitude != 1.0:
        source = MixedMotion(audio_source, StillMotion(), lambda region, t: np.zeros(len(t)), mix.audio_amplitude)
    return ControlledMotion(source, schedule)
