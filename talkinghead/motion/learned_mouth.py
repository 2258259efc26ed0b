"""Learned mouth motion from speech: Whisper encoder features -> lip opening and width -> jaw and lip coefficients.

    speech (AudioFeatures.samples) -> speech_encoder.SpeechFeatureStream (Whisper tiny.en layer, 50 Hz,
    sampled at each video frame and a few context offsets) -> ridge regression (trained on real
    talking clips by scripts/train_mouth_model.py) -> per frame: opening and width, each in units of
    the training speakers' own spread -> inner-lip gap and mouth width in inter-ocular distances
    -> blendshape deltas along two poses fitted on the same clips (what MediaPipe's coefficients do
    while real lips open, and while they widen), scaled so the expression basis reproduces the gap
    and the width -> added to the portrait's closed rest pose.

A voice-activity gate (audio_rules.EnergyVoiceActivity, with the look-ahead the encoder already
needs) brings the mouth to the closed rest pose in silence. Blinks, gaze, head motion and brows come
from the wrapped RuleBasedAudioMotion unchanged. Output is identical for any chunking of the audio
and deterministic (no randomness in the mouth).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from .. import landmarks as L
from ..audio import AudioFeatures
from ..config import MotionConfig
from ..speech_encoder import SpeechFeatureStream, StreamGrid, WhisperEncoder
from .audio_rules import MOUTH_OPENING_COEFFS, EnergyVoiceActivity, RuleBasedAudioMotion
from .types import Motion

MODEL_PATH = Path(__file__).resolve().parent.parent / "assets" / "mouth_model.npz"
MODEL_FORMAT = 1  # version of the npz layout below
OUTPUTS = ("open", "width")  # what the regression predicts per frame (see module docstring)

# voice gate (frames of the video)
GATE_BEFORE = 2  # the mouth may open this many frames before the sound (speakers move first)
GATE_AFTER = 1  # and stay open this many frames after it
GATE_ATTACK, GATE_RELEASE = 0.6, 0.45  # per-frame smoothing of the gate towards 1 / towards 0
GATE_SNAP = 0.02  # a gate below this is 0: the mouth is exactly at rest


@dataclass(frozen=True)
class MouthModel:
    """A trained regression and everything needed to run it (the npz carries its own config).

    mean, scale: (F,) float32 feature standardisation; weights: (F, K) float32; bias: (K,) float32,
    K = len(config["outputs"]). config: feature layer, stream grid, context offsets, output scales
    (inter-ocular distances per unit), the two poses ({coefficient name: delta per IOD}), smoothing.
    """

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    config: dict = field(default_factory=dict)

    @property
    def grid(self) -> StreamGrid:
        """The encoder's streaming grid the model was trained with."""
        return StreamGrid(**self.config["grid"])

    @property
    def offsets_s(self) -> tuple[float, ...]:
        """Context offsets (seconds) of the features around each frame's time."""
        return tuple(self.config["offsets_s"])

    def predict(self, features: np.ndarray) -> np.ndarray:
        """One frame's features (F,) -> outputs (K,) float32 (one frame at a time: results never depend on batching)."""
        return (((features - self.mean) / self.scale) @ self.weights + self.bias).astype(np.float32)

    def save(self, path: Path) -> None:
        """Write as npz (float16 weights) with the config inside."""
        np.savez_compressed(path, mean=self.mean.astype(np.float32), scale=self.scale.astype(np.float32),
                            weights=self.weights.astype(np.float16), bias=self.bias.astype(np.float32),
                            config=json.dumps({**self.config, "format": MODEL_FORMAT}))

    @staticmethod
    def load(path: Path = MODEL_PATH) -> "MouthModel":
        """Read a model written by `save`."""
        with np.load(path) as data:
            config = json.loads(str(data["config"]))
            if config.get("format") != MODEL_FORMAT:
                raise ValueError(f"{path}: mouth model format {config.get('format')}, expected {MODEL_FORMAT}")
            return MouthModel(data["mean"].astype(np.float32), data["scale"].astype(np.float32),
                              data["weights"].astype(np.float32), data["bias"].astype(np.float32), config)


@lru_cache(maxsize=1)
def load_default_model() -> MouthModel:
    """The committed model (assets/mouth_model.npz), loaded once."""
    return MouthModel.load(MODEL_PATH)


def pose_vector(pose: dict[str, float]) -> np.ndarray:
    """{blendshape name: value} -> (52,) float32."""
    v = np.zeros(L.N_BLENDSHAPES, np.float32)
    for name, value in pose.items():
        v[L.BLENDSHAPE_INDEX[name]] = value
    return v


class LearnedMouthMotion:
    """MotionSource: the mouth from the learned model, everything else from RuleBasedAudioMotion.

    Needs the raw audio: AudioFeatures.samples as audio.FeatureStream fills it.
    """

    def __init__(self, config: MotionConfig = MotionConfig(), model: MouthModel | None = None,
                 encoder: WhisperEncoder | None = None):
        self.config = config
        self.model = model or load_default_model()
        self.encoder = encoder
        self.rules = RuleBasedAudioMotion(config)
        self._open_pose = pose_vector(self.model.config["poses"]["open"])
        self._width_pose = pose_vector(self.model.config["poses"]["width"])
        overridden = np.zeros(L.N_BLENDSHAPES, bool)
        overridden[[L.BLENDSHAPE_INDEX[n] for n in MOUTH_OPENING_COEFFS]] = True  # the rule-based mouth
        self._driven = np.flatnonzero(overridden | (self._open_pose != 0) | (self._width_pose != 0))
        self._smooth = np.asarray(self.model.config.get("smooth", [1.0]), np.float32)  # centred taps
        self.lookahead = 0

    @property
    def latency_s(self) -> float:
        """Audio (seconds) needed past a frame's time before it is decided."""
        smooth_frames = len(self._smooth) // 2
        return self.model.grid.latency_s + max(self.model.offsets_s) + 0.02 + smooth_frames / max(getattr(self, "fps", 25.0), 1.0)

    def start(self, rest_expression: np.ndarray, fps: float) -> None:
        """Reset for a new clip of a portrait whose own scores are `rest_expression` (52,)."""
        self.fps = float(fps)
        self.lookahead = int(np.ceil(self.latency_s * self.fps))
        m = self.model
        self.speech = SpeechFeatureStream(fps, m.config["layer"], m.offsets_s, m.grid, self.encoder)
        self.rules.start(rest_expression, fps)
        self.closed = self.rules.closed.copy()  # the closed rest pose (same as the rule-based source's)
        self._voice = EnergyVoiceActivity()
        self._loud: list[bool] = []  # per frame from _loud_start: loud enough to be speech (no hang-over)
        self._loud_start = 0
        self._outputs: list[np.ndarray] = []  # per frame from _outputs_start: model outputs
        self._outputs_start = 0
        self._rules_pending = Motion.empty()  # rule-based frames from _next on
        self._rules_frames = 0  # rule-based frames received in all
        self._gate = 0.0
        self._next = 0  # next frame to emit
        self._received_samples = 0

    def push(self, features: AudioFeatures) -> Motion:
        """Consume features (with their PCM); return the frames now decided."""
        self._consume(features, self.rules.push(features), self.speech.push(features.samples))
        return self._emit(final=False)

    def flush(self) -> Motion:
        """The remaining frames (silence after the end)."""
        self._consume(AudioFeatures.concat([]), self.rules.flush(), self.speech.flush())
        if self._rules_frames and not self._received_samples:
            raise ValueError("LearnedMouthMotion got no audio samples: feed it AudioFeatures from audio.FeatureStream")
        return self._emit(final=True)

    def _consume(self, features: AudioFeatures, rules: Motion, speech: np.ndarray) -> None:
        self._received_samples += len(features.samples)
        for loudness in features.loudness_db:
            self._loud.append(self._voice.update(float(loudness))[1])
        if len(rules):
            self._rules_pending = Motion.concat([self._rules_pending, rules])
            self._rules_frames += len(rules)
        for row in speech:
            self._outputs.append(self.model.predict(row))

    def _emit(self, final: bool) -> Motion:
        """Frames whose rule-based motion, smoothed model outputs and gate look-ahead are all known."""
        half = len(self._smooth) // 2
        if final:
            ready = min(self._rules_frames, self._outputs_start + len(self._outputs))
        else:
            ready = min(self._rules_frames, self._outputs_start + len(self._outputs) - half,
                        self._loud_start + len(self._loud) - GATE_BEFORE)
        count = max(0, ready - self._next)
        if count == 0:
            return Motion.empty()
        rules = self._rules_pending
        frames = [self._frame(self._next + i, rules[i]) for i in range(count)]
        self._rules_pending = rules[count:]
        self._next += count
        self._trim()
        return Motion(np.stack([f[0] for f in frames]), np.stack([f[1] for f in frames]),
                      np.stack([f[2] for f in frames]))

    def _trim(self) -> None:
        """Forget outputs and voice flags no future frame needs (memory stays flat for any length)."""
        drop = max(0, self._next - len(self._smooth) // 2 - self._outputs_start)
        del self._outputs[:drop]
        self._outputs_start += drop
        drop = max(0, self._next - GATE_AFTER - self._loud_start)
        del self._loud[:drop]
        self._loud_start += drop

    def _output(self, i: int) -> np.ndarray:
        """Smoothed model outputs at frame i (edges repeat the nearest frame)."""
        half = len(self._smooth) // 2
        first, last = self._outputs_start, self._outputs_start + len(self._outputs) - 1
        rows = [self._outputs[min(max(i + k - half, 0), last) - first] for k in range(len(self._smooth))]
        return np.tensordot(self._smooth, np.stack(rows), axes=1)

    def _frame(self, i: int, rules: Motion) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Motion of frame i: the rule-based frame with the learned mouth."""
        lo = max(self._loud_start, i - GATE_AFTER)
        hi = i + GATE_BEFORE + 1
        target = 1.0 if any(self._loud[lo - self._loud_start:hi - self._loud_start]) else 0.0
        self._gate += (GATE_ATTACK if target > self._gate else GATE_RELEASE) * (target - self._gate)
        if self._gate < GATE_SNAP:
            self._gate = 0.0
        out = self._output(i)
        scales = self.model.config["scales"]
        amplitude = self.config.mouth_amplitude * self._gate
        opening = amplitude * scales["open"] * max(float(out[0]), 0.0)
        widening = amplitude * scales["width"] * float(out[1])
        e = rules.expression[0].copy()
        e[self._driven] = self.closed[self._driven]
        e += opening * self._open_pose + widening * self._width_pose
        np.clip(e, 0.0, 1.0, out=e)
        return e, rules.head[0], rules.gaze[0]
