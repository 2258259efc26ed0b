"""Mixed audio + video control: two motion sources combined per face region (ACTalker / MegActor-style).

Each region (mouth, eyes, gaze, brows, head) has a gate, the video's share of it: 0 takes the audio
source's motion, 1 the video source's, anything between a weighted mix. Mixing works on changes from
the portrait's rest pose (expression - rest, head pose - identity, gaze), each signal first scaled by
its own amplitude, so a gate of 0.5 with equal amplitudes averages the two motions.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..face import landmarks as L
from ..audio.features import AudioFeatures
from .base import MotionSource
from .types import HEAD_FIELDS, Motion

REGIONS = ("mouth", "eyes", "gaze", "brows", "head")


def _names(*prefixes: str) -> tuple[str, ...]:
    return tuple(n for n in L.BLENDSHAPE_NAMES if n.startswith(prefixes))


# Which expression coefficients belong to which region (gaze and head also own Motion.gaze / .head).
REGION_COEFFS = {
    "mouth": _names("jaw", "mouth", "cheekPuff", "tongue"),
    "eyes": _names("eyeBlink", "eyeSquint", "eyeWide", "cheekSquint"),
    "gaze": _names("eyeLook"),
    "brows": _names("brow", "noseSneer"),
    "head": (),
}
REGION_INDEX = {r: np.array([L.BLENDSHAPE_INDEX[n] for n in names], int) for r, names in REGION_COEFFS.items()}
assert sorted(np.concatenate(list(REGION_INDEX.values()))) == list(range(L.N_BLENDSHAPES)), "every coefficient has one region"

IDENTITY_HEAD = np.array([1.0 if f == "scale" else 0.0 for f in HEAD_FIELDS], np.float32)

# gates(region, frame_times) -> (T,) video share of that region at those times
GateFunction = Callable[[str, np.ndarray], np.ndarray]


def constant_gates(gates: dict[str, float]) -> GateFunction:
    """A GateFunction holding each region's gate constant."""
    def gate(region: str, times: np.ndarray) -> np.ndarray:
        return np.full(len(times), float(gates[region]))
    return gate


def mix(rest: np.ndarray, audio: Motion, video: Motion, video_share: dict[str, np.ndarray],
        audio_amplitude: float = 1.0, video_amplitude: float = 1.0) -> Motion:
    """Combine two equally long runs of Motion; video_share[region] is (T,) in [0, 1]."""
    rest = np.asarray(rest, np.float32)
    a_expr, v_expr = audio.expression - rest, video.expression - rest
    expression = rest[None].repeat(len(audio), 0)
    for region, ids in REGION_INDEX.items():
        if len(ids):
            w = video_share[region][:, None]
            expression[:, ids] += (1 - w) * audio_amplitude * a_expr[:, ids] + w * video_amplitude * v_expr[:, ids]
    w = video_share["head"][:, None]
    head = IDENTITY_HEAD + (1 - w) * audio_amplitude * (audio.head - IDENTITY_HEAD) \
        + w * video_amplitude * (video.head - IDENTITY_HEAD)
    w = video_share["gaze"][:, None]
    gaze = (1 - w) * audio_amplitude * audio.gaze + w * video_amplitude * video.gaze
    return Motion(np.clip(expression, 0, 1).astype(np.float32), head.astype(np.float32), gaze.astype(np.float32))


class MixedMotion:
    """MotionSource combining an audio-driven and a video-driven source per region (see module docstring).

    Both sources see the same features; a frame is emitted once both have decided it, so the
    look-ahead is the larger of the two. Gates may change over time (a direction file's keyframes):
    `gates(region, frame_times)` gives the video share per frame, a pure function of time, so the
    output does not depend on how the audio is chunked.
    """

    def __init__(self, audio: MotionSource, video: MotionSource, gates: GateFunction,
                 audio_amplitude: float = 1.0, video_amplitude: float = 1.0):
        self.audio, self.video = audio, video
        self.gates = gates
        self.audio_amplitude, self.video_amplitude = audio_amplitude, video_amplitude
        self.lookahead = max(getattr(audio, "lookahead", 0), getattr(video, "lookahead", 0))

    def start(self, rest_expression: np.ndarray, fps: float) -> None:
        """Start both sources."""
        self.rest = np.asarray(rest_expression, np.float32).copy()
        self.fps = float(fps)
        self.audio.start(rest_expression, fps)
        self.video.start(rest_expression, fps)
        self._audio_held, self._video_held = Motion.empty(), Motion.empty()
        self._frame = 0

    def push(self, features: AudioFeatures) -> Motion:
        """Feed both sources; return the frames both have decided, mixed."""
        return self._take(self.audio.push(features), self.video.push(features))

    def flush(self) -> Motion:
        """The remaining frames of both sources (the shorter one's last frame is held if they differ)."""
        out = self._take(self.audio.flush(), self.video.flush())
        a, v = self._audio_held, self._video_held
        if len(a) or len(v):
            n = max(len(a), len(v))
            a = _pad(a, n) if len(a) else Motion.rest(self.rest, n)
            v = _pad(v, n) if len(v) else Motion.rest(self.rest, n)
            out = Motion.concat([out, self._mix(a, v)])
            self._audio_held, self._video_held = Motion.empty(), Motion.empty()
        return out

    def _take(self, audio: Motion, video: Motion) -> Motion:
        a = Motion.concat([self._audio_held, audio])
        v = Motion.concat([self._video_held, video])
        n = min(len(a), len(v))
        self._audio_held, self._video_held = a[n:], v[n:]
        return self._mix(a[:n], v[:n]) if n else Motion.empty()

    def _mix(self, a: Motion, v: Motion) -> Motion:
        times = (self._frame + np.arange(len(a))) / self.fps
        self._frame += len(a)
        share = {r: np.clip(self.gates(r, times), 0.0, 1.0) for r in REGIONS}
        return mix(self.rest, a, v, share, self.audio_amplitude, self.video_amplitude)


def _pad(motion: Motion, frames: int) -> Motion:
    """Repeat the last frame up to `frames` frames."""
    if len(motion) >= frames:
        return motion
    return Motion.concat([motion] + [motion[len(motion) - 1]] * (frames - len(motion)))
