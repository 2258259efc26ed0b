"""Controls on the final motion: gaze target, head distance, emotion presets, expression scale and
per-region amplitudes, each constant (ControlConfig / MixConfig) or keyframed over time (Direction).

`ControlledMotion` wraps any MotionSource and applies them frame by frame as a pure function of the
frame's time, so the output does not depend on how the audio is chunked. With every control at its
default the motion passes through unchanged (bit for bit).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

import numpy as np

from ..face import landmarks as L
from ..audio.features import AudioFeatures
from ..config import ControlConfig, Emotion, MixConfig, quote, spec_range
from ..config import parse_gaze as config_parse_gaze
from ..errors import TalkingHeadError
from .base import MotionSource
from .mixer import IDENTITY_HEAD, REGION_INDEX, REGIONS
from .types import HEAD_FIELDS, Motion

# Emotion presets: ARKit coefficient changes at intensity 1 (added to the portrait's own scores).
EMOTIONS: dict[str, dict[str, float]] = {
    "neutral": {},
    "happy": {"mouthSmileLeft": 1.0, "mouthSmileRight": 1.0, "cheekSquintLeft": 0.5, "cheekSquintRight": 0.5,
              "eyeSquintLeft": 0.35, "eyeSquintRight": 0.35, "mouthDimpleLeft": 0.2, "mouthDimpleRight": 0.2},
    "sad": {"browInnerUp": 0.9, "mouthFrownLeft": 0.6, "mouthFrownRight": 0.6, "mouthShrugLower": 0.35,
            "mouthPressLeft": 0.3, "mouthPressRight": 0.3},
    "angry": {"browDownLeft": 1.0, "browDownRight": 1.0, "noseSneerLeft": 0.5, "noseSneerRight": 0.5,
              "mouthPressLeft": 0.5, "mouthPressRight": 0.5, "eyeSquintLeft": 0.45, "eyeSquintRight": 0.45},
    "surprised": {"browInnerUp": 0.9, "browOuterUpLeft": 0.9, "browOuterUpRight": 0.9, "eyeWideLeft": 0.6,
                  "eyeWideRight": 0.6, "jawOpen": 0.2},
}
EMOTION_CHOICES = typing.get_args(Emotion)  # the schema's names; EMOTIONS has a preset for each
MAX_EMOTION_INTENSITY = spec_range(ControlConfig, "emotion_intensity")[1]
DISTANCE_RANGE = spec_range(ControlConfig, "distance")
UNSKIPPED = np.setdiff1d(np.arange(L.N_BLENDSHAPES),
                         [L.BLENDSHAPE_INDEX[n] for n in L.BLINK_COEFFS + L.GAZE_COEFFS])  # what expression_scale scales


def parse_gaze(value) -> tuple[float, float] | None:
    """'camera' / 'left' / ... / 'X,Y' / (x, y) / None -> iris offset in eye widths, or None (free)."""
    try:
        return config_parse_gaze(value)
    except ValueError as exc:
        raise TalkingHeadError(f"gaze {quote(value)} is not understood: {exc}") from None


# --- time-varying controls -------------------------------------------------------------------------

# Every numeric control a Direction can keyframe; emotion is held as one weight per preset.
KEYFRAMED = (("gaze_x", "gaze_y", "gaze_weight", "distance", "expression_scale")
             + tuple(f"emotion_{name}" for name in EMOTIONS if name != "neutral")
             + tuple(f"{r}_amplitude" for r in REGIONS) + tuple(f"{r}_gate" for r in REGIONS))


@dataclass(frozen=True)
class Track:
    """Piecewise-linear keyframes of one control: times (K,) seconds, increasing; values (K,), where
    NaN stands for the configured (constant) value. Held before the first and after the last key."""

    times: np.ndarray
    values: np.ndarray

    def sample(self, t: np.ndarray, default: float) -> np.ndarray:
        """(T,) values at times t (seconds)."""
        values = np.where(np.isnan(self.values), default, self.values)
        return np.interp(t, self.times, values)


@dataclass(frozen=True)
class Direction:
    """Keyframed controls over time (parsed from a direction file by talkinghead.direction)."""

    tracks: dict[str, Track] = field(default_factory=dict)

    def sample(self, name: str, t: np.ndarray, default: float) -> np.ndarray:
        """(T,) value of control `name` at times t; `default` where it is not keyframed."""
        track = self.tracks.get(name)
        return np.full(len(t), float(default)) if track is None else track.sample(t, default)


def control_defaults(controls: ControlConfig, mix: MixConfig, mouth_gate: float) -> dict[str, float]:
    """The constant value of every keyframable control, from the configs."""
    target = parse_gaze(controls.gaze)
    out = {"gaze_x": 0.0 if target is None else target[0], "gaze_y": 0.0 if target is None else target[1],
           "gaze_weight": 0.0 if target is None else 1.0, "distance": controls.distance,
           "expression_scale": controls.expression_scale}
    for name in EMOTIONS:
        if name != "neutral":
            out[f"emotion_{name}"] = controls.emotion_intensity if controls.emotion == name else 0.0
    for region in REGIONS:
        out[f"{region}_amplitude"] = getattr(mix, f"{region}_amplitude")
        gate = getattr(mix, f"{region}_gate")
        out[f"{region}_gate"] = mouth_gate if gate is None else gate
    return out


class ControlSchedule:
    """Every control's value per frame time: the configs' constants, overridden by a Direction."""

    def __init__(self, defaults: dict[str, float], direction: Direction | None = None):
        self.defaults = defaults
        self.direction = direction or Direction()

    def __call__(self, name: str, t: np.ndarray) -> np.ndarray:
        """(T,) value of control `name` at times t (seconds)."""
        return self.direction.sample(name, np.asarray(t, float), self.defaults[name])

    def gate(self, region: str, t: np.ndarray) -> np.ndarray:
        """Video share of a region at times t (a mixer.GateFunction)."""
        return self(f"{region}_gate", t)

    def is_identity(self) -> bool:
        """Whether the controls leave motion unchanged (no keyframes, every constant neutral)."""
        neutral = {"gaze_weight": 0.0, "distance": 1.0, "expression_scale": 1.0}
        neutral.update({f"emotion_{n}": 0.0 for n in EMOTIONS if n != "neutral"})
        neutral.update({f"{r}_amplitude": 1.0 for r in REGIONS})
        moving = [n for n in self.direction.tracks if not n.endswith("_gate")]
        return not moving and all(self.defaults[k] == v for k, v in neutral.items())


def apply_controls(motion: Motion, rest: np.ndarray, times: np.ndarray, schedule: ControlSchedule) -> Motion:
    """Apply the controls at `times` (T,) seconds to T frames of motion (pure: same inputs, same output)."""
    if schedule.is_identity() or len(motion) == 0:
        return motion
    rest = np.asarray(rest, np.float32)
    expression = motion.expression.astype(np.float64)
    change = expression - rest
    scale = schedule("expression_scale", times)[:, None]
    change[:, UNSKIPPED] *= scale
    for region in REGIONS:
        ids = REGION_INDEX[region]
        if len(ids):
            change[:, ids] *= schedule(f"{region}_amplitude", times)[:, None]
    expression = rest + change
    for name, preset in EMOTIONS.items():
        if preset:
            weight = schedule(f"emotion_{name}", times)
            for coeff, amount in preset.items():
                expression[:, L.BLENDSHAPE_INDEX[coeff]] += weight * amount
    expression = np.clip(expression, 0.0, 1.0)

    head = motion.head.astype(np.float64) - IDENTITY_HEAD
    head *= schedule("head_amplitude", times)[:, None]
    head += IDENTITY_HEAD
    head[:, HEAD_FIELDS.index("scale")] /= schedule("distance", times)

    weight = schedule("gaze_weight", times)[:, None]
    target = np.stack([schedule("gaze_x", times), schedule("gaze_y", times)], 1)
    gaze = motion.gaze * schedule("gaze_amplitude", times)[:, None]
    gaze = (1 - weight) * gaze + weight * target
    return Motion(expression.astype(np.float32), head.astype(np.float32), gaze.astype(np.float32))


class ControlledMotion:
    """MotionSource applying a ControlSchedule to another source's output (see module docstring)."""

    def __init__(self, source: MotionSource, schedule: ControlSchedule):
        self.source = source
        self.schedule = schedule
        self.lookahead = getattr(source, "lookahead", 0)

    def start(self, rest_expression: np.ndarray, fps: float) -> None:
        """Start the wrapped source."""
        self.rest = np.asarray(rest_expression, np.float32).copy()
        self.fps = float(fps)
        self._frame = 0
        self.source.start(rest_expression, fps)

    def push(self, features: AudioFeatures) -> Motion:
        """The wrapped source's decided frames, controlled."""
        return self._apply(self.source.push(features))

    def flush(self) -> Motion:
        """The wrapped source's last frames, controlled."""
        return self._apply(self.source.flush())

    def _apply(self, motion: Motion) -> Motion:
        times = (self._frame + np.arange(len(motion))) / self.fps
        self._frame += len(motion)
        return apply_controls(motion, self.rest, times, self.schedule)
