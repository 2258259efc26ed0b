"""First audio-driven motion source: loudness and spectrum to mouth, plus blinks, head and gaze.

Mouth: an energy voice-activity detector (adaptive noise floor, hysteresis, hang-over) gates a
loudness-driven openness, shaped by the spectrum (low centroid rounds the lips, strong high band
spreads them), with anticipation over `lookahead` frames and fast-attack / slower-release smoothing.
In silence every mouth coefficient returns to the closed rest pose.
Brows rise with the voice's pitch and the head nods on stressed syllables (motion/prosody.py).
Blinks, gaze saccades and idle head motion come from seeded schedules that depend only on time,
so the output is identical for any chunking of the audio.
"""

from __future__ import annotations

import numpy as np

from ..face import landmarks as L
from ..audio.features import AudioFeatures
from ..config import MotionConfig
from .prosody import ProsodyTracker
from .types import HEAD_FIELDS, Motion

# voice activity
NOISE_FLOOR_START_DB = -60.0
NOISE_FLOOR_RISE_DB = 0.05  # per frame: the floor creeps up slowly and drops at once
VOICE_OVER_FLOOR_DB = 12.0
VOICE_ABSOLUTE_MIN_DB = -50.0
VOICE_ONSET_FRAMES = 1
VOICE_HANGOVER_FRAMES = 3
PEAK_START_DB = -20.0
PEAK_DECAY_DB = 0.08  # per frame
OPEN_RANGE_DB = 24.0  # openness goes 0 -> 1 over this range below the running peak

# mouth shape
JAW_REST_MAX = 0.06  # in silence jawOpen is at most this (closed)
MOUTH_OPENING_COEFFS = ("jawOpen", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
                        "mouthUpperUpRight", "mouthFunnel", "mouthPucker", "mouthStretchLeft", "mouthStretchRight")
# gains put the loudest speech near the top of real speakers' range (tracked real clips: jawOpen
# 95th percentile 0.06-0.23, maximum 0.43)
JAW_GAIN = 0.3
LOWER_LIP_GAIN = 0.15
UPPER_LIP_GAIN = 0.06
ROUND_CENTROID_HZ = (700.0, 1100.0)  # full rounding below the first, none above the second
SPREAD_CENTROID_HZ = (1500.0, 2300.0)
ATTACK, RELEASE = 0.75, 0.45
ANTICIPATION = (1.0, 0.55, 0.25)  # weights of frames i, i+1, i+2

# blinks (durations in seconds)
BLINK_CLOSE_S, BLINK_HOLD_S, BLINK_OPEN_S = 0.08, 0.04, 0.18
BLINK_MIN_GAP_S = 1.2

# head motion: degrees / IOD units
HEAD_AMPLITUDE = {"yaw": 2.5, "pitch": 1.6, "roll": 1.2, "tx": 0.02, "ty": 0.015}
HEAD_IDLE_HZ = (0.08, 0.35)
LEAN_PITCH_DEG = 1.0  # the head leans in (pitch) with the slow speech envelope
BROW_PITCH_GAIN = 0.3  # browInnerUp at a full pitch-driven raise (outer brows 0.6 of it)

# gaze: eye widths
SACCADE_SPREAD = (0.05, 0.025)
FIXATION_S = (0.7, 2.5)
SACCADE_S = 0.06
CENTRE_RETURN_P = 0.5


class EnergyVoiceActivity:
    """Causal energy voice-activity detector, one frame at a time: an adaptive noise floor (drops at
    once, creeps up slowly), a margin over it and an absolute minimum, onset and hang-over frames."""

    def __init__(self):
        self.noise_db = NOISE_FLOOR_START_DB
        self._voiced_run = 0
        self._silent_run = VOICE_HANGOVER_FRAMES + 1

    def update(self, loudness_db: float) -> tuple[bool, bool]:
        """Next frame's loudness (dBFS) -> (voiced, loud_enough): voiced includes the hang-over."""
        if loudness_db < self.noise_db:
            self.noise_db = loudness_db
        else:
            self.noise_db += NOISE_FLOOR_RISE_DB
        loud_enough = loudness_db > max(self.noise_db + VOICE_OVER_FLOOR_DB, VOICE_ABSOLUTE_MIN_DB)
        if loud_enough:
            self._voiced_run += 1
            self._silent_run = 0
        else:
            self._silent_run += 1
            self._voiced_run = 0
        voiced = (loud_enough and self._voiced_run >= VOICE_ONSET_FRAMES) or self._silent_run <= VOICE_HANGOVER_FRAMES
        return voiced, loud_enough


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


class RuleBasedAudioMotion:
    """MotionSource driven by loudness and spectral shape (see module docstring)."""

    def __init__(self, config: MotionConfig = MotionConfig(), portrait_lips_closed: bool = False):
        """portrait_lips_closed: the portrait's lips are closed, so its own mouth is the closed rest pose."""
        self.config = config
        self.portrait_lips_closed = portrait_lips_closed
        self.lookahead = max(0, min(config.lookahead_frames, len(ANTICIPATION) - 1))

    def start(self, rest_expression: np.ndarray, fps: float) -> None:
        """Reset state for a new clip."""
        self.fps = float(fps)
        self.rest = np.asarray(rest_expression, np.float32).copy()
        self.closed = self.rest.copy()  # the mouth in silence: the portrait's own if its lips are closed
        if not self.portrait_lips_closed:
            for name in MOUTH_OPENING_COEFFS:
                self.closed[L.BLENDSHAPE_INDEX[name]] = 0.0
            jaw = L.BLENDSHAPE_INDEX["jawOpen"]
            self.closed[jaw] = min(self.rest[jaw], JAW_REST_MAX)
        self._frame = 0  # next frame to output
        self._pending: list[tuple[float, ...]] = []  # (openness, round, spread, brow, nod) per undecided frame
        self._prosody = ProsodyTracker(fps)
        self._voice = EnergyVoiceActivity()
        self._peak_db = PEAK_START_DB
        self._open = 0.0
        self._slow = 0.0
        seed = self.config.seed
        self._blinks = _BlinkSchedule(np.random.default_rng([seed, 1]), self.config.blink_rate)
        self._gaze = _GazeSchedule(np.random.default_rng([seed, 2]))
        rng = np.random.default_rng([seed, 3])
        lo, hi = HEAD_IDLE_HZ
        self._head_waves = {k: (rng.uniform(lo, hi, 3), rng.uniform(0, 2 * np.pi, 3), rng.uniform(0.5, 1.0, 3))
                            for k in HEAD_AMPLITUDE}

    # --- per-frame analysis ------------------------------------------------------------------
    def _analyse(self, loudness: float, bands: np.ndarray, centroid: float, pitch: float) -> tuple[float, ...]:
        """Causal voice activity, mouth drive and prosody for one frame -> (openness, round, spread, brow, nod)."""
        voiced, loud_enough = self._voice.update(loudness)
        brow, nod = self._prosody.update(loudness, pitch, voiced)
        if loud_enough:
            self._peak_db = max(loudness, self._peak_db - PEAK_DECAY_DB)
        if not voiced:
            return 0.0, 0.0, 0.0, brow, nod
        openness = float(np.clip((loudness - (self._peak_db - OPEN_RANGE_DB)) / OPEN_RANGE_DB, 0, 1)) if loud_enough else 0.0
        rounding = float(1 - _smoothstep((centroid - ROUND_CENTROID_HZ[0]) / (ROUND_CENTROID_HZ[1] - ROUND_CENTROID_HZ[0])))
        spread = float(_smoothstep((centroid - SPREAD_CENTROID_HZ[0]) / (SPREAD_CENTROID_HZ[1] - SPREAD_CENTROID_HZ[0])))
        spread = max(spread, float(np.clip((bands[2] - 0.3) / 0.4, 0, 1)))
        return openness, rounding * openness, spread * openness, brow, nod

    def push(self, features: AudioFeatures) -> Motion:
        """Consume features; return decided frames."""
        for i in range(len(features)):
            self._pending.append(self._analyse(float(features.loudness_db[i]), features.bands[i],
                                               float(features.centroid_hz[i]), float(features.pitch_hz[i])))
        ready = len(self._pending) - self.lookahead
        return self._decide(max(ready, 0))

    def flush(self) -> Motion:
        """Decide the held-back frames (the future after the end is silence)."""
        self._pending.extend([(0.0, 0.0, 0.0, 0.0, 0.0)] * self.lookahead)
        return self._decide(max(len(self._pending) - self.lookahead, 0))

    def _decide(self, count: int) -> Motion:
        if count == 0:
            return Motion.empty()
        frames = [self._frame_motion(j) for j in range(count)]
        del self._pending[:count]
        return Motion(np.stack([f[0] for f in frames]), np.stack([f[1] for f in frames]), np.stack([f[2] for f in frames]))

    def _frame_motion(self, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Motion of pending frame j (frames j+1.. are its look-ahead)."""
        cfg = self.config
        ahead = self._pending[j:j + self.lookahead + 1]
        target = max(w * a[0] for w, a in zip(ANTICIPATION, ahead))
        _, rounding, spread, brow, nod = self._pending[j]
        self._open += (ATTACK if target > self._open else RELEASE) * (target - self._open)
        self._slow += 0.08 * (self._open - self._slow)
        y = self._open * cfg.mouth_amplitude
        t = self._frame / self.fps
        self._frame += 1

        e = self.closed.copy()
        idx = L.BLENDSHAPE_INDEX
        e[idx["jawOpen"]] += JAW_GAIN * y * (1 - 0.35 * spread) * (1 - 0.2 * rounding)
        for side in ("Left", "Right"):
            e[idx["mouthLowerDown" + side]] += LOWER_LIP_GAIN * y
            e[idx["mouthUpperUp" + side]] += UPPER_LIP_GAIN * y
            e[idx["mouthStretch" + side]] += 0.3 * spread * cfg.mouth_amplitude
        e[idx["mouthFunnel"]] += 0.45 * rounding * cfg.mouth_amplitude
        e[idx["mouthPucker"]] += 0.35 * rounding * cfg.mouth_amplitude
        e[idx["browInnerUp"]] += BROW_PITCH_GAIN * brow
        e[idx["browOuterUpLeft"]] += 0.6 * BROW_PITCH_GAIN * brow
        e[idx["browOuterUpRight"]] += 0.6 * BROW_PITCH_GAIN * brow
        blink = self._blinks.closure(t)
        for name in L.BLINK_COEFFS:
            e[idx[name]] = self.rest[idx[name]] + (1 - self.rest[idx[name]]) * blink
        np.clip(e, 0, 1, out=e)

        head = np.zeros(len(HEAD_FIELDS), np.float32)
        head[HEAD_FIELDS.index("scale")] = 1.0
        for name, amp in HEAD_AMPLITUDE.items():
            freqs, phases, weights = self._head_waves[name]
            wave = (weights * np.sin(2 * np.pi * freqs * cfg.head_speed * t + phases)).sum() / weights.sum()
            head[HEAD_FIELDS.index(name)] = cfg.head_amplitude * amp * wave
        head[HEAD_FIELDS.index("pitch")] += cfg.head_amplitude * (LEAN_PITCH_DEG * self._slow + nod)
        gaze = self._gaze.offset(t) if cfg.gaze_saccades else np.zeros(2, np.float32)
        return e, head, gaze


class _BlinkSchedule:
    """Blink start times drawn in time order (gamma-distributed gaps), closure profile per time."""

    def __init__(self, rng: np.random.Generator, rate_per_minute: float):
        self.rng = rng
        self.mean_gap = 60.0 / rate_per_minute if rate_per_minute > 0 else np.inf
        self.starts: list[float] = []
        self._next = self._gap() * rng.uniform(0.3, 1.0)

    def _gap(self) -> float:
        if not np.isfinite(self.mean_gap):
            return np.inf
        extra = max(self.mean_gap - BLINK_MIN_GAP_S, 0.1)
        return BLINK_MIN_GAP_S + self.rng.gamma(2.0, extra / 2.0)

    def closure(self, t: float) -> float:
        """Lid closure in [0, 1] at time t (seconds); call with non-decreasing t."""
        while self._next <= t:
            self.starts.append(self._next)
            self._next += self._gap()
        if not self.starts:
            return 0.0
        dt = t - self.starts[-1]
        if dt < BLINK_CLOSE_S:
            return float(_smoothstep(dt / BLINK_CLOSE_S))
        if dt < BLINK_CLOSE_S + BLINK_HOLD_S:
            return 1.0
        return float(1 - _smoothstep((dt - BLINK_CLOSE_S - BLINK_HOLD_S) / BLINK_OPEN_S))


class _GazeSchedule:
    """Fixations around the camera direction joined by quick saccades."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.current = np.zeros(2)
        self.previous = np.zeros(2)
        self.switch_time = 0.0
        self.next_time = rng.uniform(*FIXATION_S)

    def offset(self, t: float) -> np.ndarray:
        """Iris offset (eye widths) at time t; call with non-decreasing t."""
        while self.next_time <= t:
            self.previous = self.current
            if self.rng.random() < CENTRE_RETURN_P:
                self.current = np.zeros(2)
            else:
                self.current = self.rng.normal(0, 1, 2) * SACCADE_SPREAD
            self.switch_time = self.next_time
            self.next_time += self.rng.uniform(*FIXATION_S)
        a = _smoothstep((t - self.switch_time) / SACCADE_S)
        return (self.previous + a * (self.current - self.previous)).astype(np.float32)
