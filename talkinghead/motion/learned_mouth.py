"""Learned mouth motion from speech: Whisper encoder features -> lip gap and width -> jaw and lip coefficients.

    speech (AudioFeatures.samples) -> speech_encoder.SpeechFeatureStream (Whisper tiny.en layer 3,
    streamed, sampled at each video frame and +-120 ms around it) -> ridge regression trained on real
    talking clips (scripts/train_mouth_model.py) -> per frame: gap, width, speech
    -> gap and width in inter-ocular distances (IOD; a calibrated scale and offset)
    -> blendshape changes along two poses fitted on the same clips (what MediaPipe's coefficients do
       while real lips open, and while they widen), scaled so the expression basis renders that gap
       and width -> added to the closed rest pose (the rule-based source's).

Voice gate: the mouth goes back to its silence pose (the portrait's own expression by default) over
pauses of at least MIN_REST_FRAMES where the energy detector (audio_rules.EnergyVoiceActivity) hears
nothing within [-GATE_AFTER, +GATE_BEFORE] frames or the model's speech output (learned from WebRTC
VAD labels of the training audio) stays below SPEECH_THRESHOLD within SPEECH_WINDOW frames; shorter
pauses are bridged (real mouths keep moving through them). Blinks, gaze, head motion and brows come
from the wrapped RuleBasedAudioMotion, unchanged. The output is identical for any chunking of the
audio and deterministic. Figures: docs/lip_sync_approaches.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..assets import ASSETS_DIR
from ..face import landmarks as L
from ..audio.features import AudioFeatures
from ..config import MotionConfig
from ..audio.speech_encoder import SpeechFeatureStream, StreamGrid
from ..audio.whisper import WhisperEncoder
from .audio_rules import MOUTH_OPENING_COEFFS, EnergyVoiceActivity, RuleBasedAudioMotion
from .types import Motion

MODEL_PATH = ASSETS_DIR / "mouth_model.npz"
MODEL_FORMAT = 1  # version of the npz layout below
OUTPUTS = ("open", "width", "speech")  # what the regression predicts per frame (see module docstring)

# voice gate (frames of the video)
GATE_BEFORE = 2  # the mouth may open this many frames before the sound (speakers move first)
GATE_AFTER = 1  # and stay open this many frames after it
SPEECH_THRESHOLD = 0.5  # the model's speech output (a linear probability) above this counts as speech
SPEECH_WINDOW = 2  # frames either side in which the speech output may vouch for frame i
MIN_REST_FRAMES = 6  # a pause shorter than this is bridged: the mouth keeps following the model
GATE_ATTACK, GATE_RELEASE = 0.8, 0.8  # per-frame smoothing of the gate towards 1 / towards 0
GATE_SNAP = 0.02  # a gate below this is 0: the mouth is exactly at rest


@dataclass(frozen=True)
class MouthModel:
    """A trained regression and everything needed to run it (the npz carries its own config).

    mean, scale: (F,) float32 feature standardisation; weights: (F, K) float32; bias: (K,) float32,
    K = len(config["outputs"]). config: feature layer, stream grid, context offsets (seconds), output
    scales and offsets (IOD per unit, IOD), the two poses ({coefficient name: change per IOD}),
    smoothing taps, and what it was trained on (clips, held-out figures).
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
                 encoder: WhisperEncoder | None = None, portrait_lips_closed: bool = False):
        """config.silence_mouth: where the mouth rests in silence, "portrait" (its own expression: the
        portrait's lip gap) or "closed" (the rule-based source's closed rest pose: the portrait's own mouth
        when `portrait_lips_closed`)."""
        self.silence_pose = config.silence_mouth
        self.config = config
        self.model = model or load_default_model()
        self.encoder = encoder
        self.rules = RuleBasedAudioMotion(config, portrait_lips_closed)
        self._open_pose = pose_vector(self.model.config["poses"]["open"])
        self._width_pose = pose_vector(self.model.config["poses"]["width"])
        overridden = np.zeros(L.N_BLENDSHAPES, bool)
        overridden[[L.BLENDSHAPE_INDEX[n] for n in MOUTH_OPENING_COEFFS]] = True  # the rule-based mouth
        self._driven = np.flatnonzero(overridden | (self._open_pose != 0) | (self._width_pose != 0))
        self._smooth = np.asarray(self.model.config.get("smooth", [1.0]), np.float32)  # centred taps
        self._speech_column = list(self.model.config["outputs"]).index("speech") \
            if "speech" in self.model.config["outputs"] else None
        self._ahead = max(len(self._smooth) // 2, SPEECH_WINDOW if self._speech_column is not None else 0)
        self._offsets = self.model.config.get("offsets", {})  # IOD added to each output's scaled value
        self.lookahead = 0  # set by start(): frames held back (informational; decided by the audio's arrival)
        self._listeners = []  # share_speech_states: callables given each decided frame's centre states

    @property
    def latency_s(self) -> float:
        """Audio (seconds) needed past a frame's centre before the frame is decided: the encoder's
        latency, the context taps, one encoder frame for interpolation, and the frames of look-ahead
        for smoothing and for telling a pause from a gap (at 25 fps by default: 0.91 s)."""
        speech_frames = SPEECH_WINDOW if self._speech_column is not None else 0
        frames = max(len(self._smooth) // 2, MIN_REST_FRAMES - 1 + speech_frames)
        return self.model.grid.latency_s + max(self.model.offsets_s) + 1 / 50 + frames / getattr(self, "fps", 25.0)

    def share_speech_states(self, layer: int, grid: StreamGrid, listener) -> bool:
        """Offer the encoder states this source computes anyway: if its model reads `layer` on `grid` at the
        frame centre (offset 0), `listener` gets each frame's (T, width) states at those centres as they are
        decided, from the next start() on, and this returns True (another source need not run the encoder
        again); otherwise False."""
        m = self.model
        if m.config["layer"] != layer or m.grid != grid or 0.0 not in m.offsets_s:
            return False
        self._listeners.append(listener)
        return True

    def start(self, rest_expression: np.ndarray, fps: float) -> None:
        """Reset for a new clip of a portrait whose own scores are `rest_expression` (52,)."""
        self.fps = float(fps)
        self.lookahead = int(np.ceil(self.latency_s * self.fps))
        m = self.model
        self.speech = SpeechFeatureStream(fps, m.config["layer"], m.offsets_s, m.grid, self.encoder)
        self.rules.start(rest_expression, fps)
        self.closed = self.rules.closed.copy()  # the closed rest pose (same as the rule-based source's)
        self.rest = np.asarray(rest_expression, np.float32).copy()
        self.silent = self.rest if self.silence_pose == "portrait" else self.closed  # the mouth in silence
        self._voice = EnergyVoiceActivity()
        self._loud: list[bool] = []  # per frame from _loud_start: loud enough to be speech (no hang-over)
        self._loud_start = 0
        self._outputs: list[np.ndarray] = []  # per frame from _outputs_start: model outputs
        self._outputs_start = 0
        self._flags: list[bool] = []  # per frame from _flags_start: sound the model calls speech, near the frame
        self._flags_start = 0
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
        if self._listeners:
            centre = self.model.offsets_s.index(0.0)
            width = speech.shape[1] // len(self.model.offsets_s)
            for listener in self._listeners:
                listener(speech[:, centre * width:(centre + 1) * width])

    def _emit(self, final: bool) -> Motion:
        """Frames whose rule-based motion, smoothed model outputs and pause look-ahead are all known."""
        self._update_flags(final)
        outputs_end = self._outputs_start + len(self._outputs)
        if final:
            ready = min(self._rules_frames, outputs_end)
        else:
            ready = min(self._rules_frames, outputs_end - len(self._smooth) // 2,
                        self._flags_start + len(self._flags) - MIN_REST_FRAMES + 1)
        count = max(0, ready - self._next)
        if count == 0:
            return Motion.empty()
        rules = self._rules_pending
        frames = [self._frame(self._next + i, rules[i], final) for i in range(count)]
        self._rules_pending = rules[count:]
        self._next += count
        self._trim()
        return Motion(np.stack([f[0] for f in frames]), np.stack([f[1] for f in frames]),
                      np.stack([f[2] for f in frames]))

    def _update_flags(self, final: bool) -> None:
        """Voice flags of every frame whose loudness and speech-output neighbourhood is known
        (at the end, what lies past the audio is silence)."""
        loud_end = self._loud_start + len(self._loud)
        outputs_end = self._outputs_start + len(self._outputs)
        speech_frames = SPEECH_WINDOW if self._speech_column is not None else 0
        end = min(loud_end, outputs_end) if final else min(loud_end - GATE_BEFORE, outputs_end - speech_frames)
        for i in range(self._flags_start + len(self._flags), end):
            lo = max(self._loud_start, i - GATE_AFTER)
            voiced = any(self._loud[lo - self._loud_start:i + GATE_BEFORE + 1 - self._loud_start])
            if voiced and self._speech_column is not None:
                near = range(max(i - SPEECH_WINDOW, self._outputs_start), min(i + SPEECH_WINDOW + 1, outputs_end))
                voiced = any(self._outputs[j - self._outputs_start][self._speech_column] > SPEECH_THRESHOLD for j in near)
            self._flags.append(voiced)

    def _resting(self, i: int, final: bool) -> bool:
        """Frame i lies in a pause of at least MIN_REST_FRAMES (or one that reaches the clip's start or end)."""
        flags, start = self._flags, self._flags_start
        if flags[i - start]:
            return False
        before = 0
        while before < MIN_REST_FRAMES and i - before - 1 >= start and not flags[i - before - 1 - start]:
            before += 1
        if i - before == 0:
            return True  # silence since the clip began
        after = 0
        while before + after + 1 < MIN_REST_FRAMES and i + after + 1 < start + len(flags) \
                and not flags[i + after + 1 - start]:
            after += 1
        if final and i + after + 1 >= start + len(flags):
            return True  # silence until the clip ends
        return before + after + 1 >= MIN_REST_FRAMES

    def _trim(self) -> None:
        """Forget what no future frame needs (memory stays flat for any length)."""
        drop = max(0, self._next - self._ahead - self._outputs_start)
        del self._outputs[:drop]
        self._outputs_start += drop
        drop = max(0, self._next - GATE_AFTER - self._loud_start)
        del self._loud[:drop]
        self._loud_start += drop
        drop = max(0, self._next - MIN_REST_FRAMES - self._flags_start)
        del self._flags[:drop]
        self._flags_start += drop

    def _output(self, i: int) -> np.ndarray:
        """Smoothed model outputs at frame i (edges repeat the nearest frame)."""
        half = len(self._smooth) // 2
        first, last = self._outputs_start, self._outputs_start + len(self._outputs) - 1
        rows = [self._outputs[min(max(i + k - half, 0), last) - first] for k in range(len(self._smooth))]
        return np.tensordot(self._smooth, np.stack(rows), axes=1)

    def gap(self, outputs: np.ndarray) -> float:
        """The inner-lip gap (IOD, >= 0) that smoothed model outputs ask for, before the voice gate."""
        return max(self._offsets.get("open", 0.0) + self.model.config["scales"]["open"] * float(outputs[0]), 0.0)

    def _frame(self, i: int, rules: Motion, final: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Motion of frame i: the rule-based frame with the learned mouth."""
        target = 0.0 if self._resting(i, final) else 1.0
        self._gate += (GATE_ATTACK if target > self._gate else GATE_RELEASE) * (target - self._gate)
        if self._gate < GATE_SNAP:
            self._gate = 0.0
        out = self._output(i)
        opening = self.gap(out)
        widening = self.model.config["scales"]["width"] * float(out[1])
        speaking = self.closed + opening * self._open_pose + widening * self._width_pose
        e = rules.expression[0].copy()
        d = self._driven
        weight = self._gate * self.config.mouth_amplitude  # mouth_amplitude scales the whole mouth motion
        e[d] = self.silent[d] + weight * (speaking[d] - self.silent[d])
        np.clip(e, 0.0, 1.0, out=e)
        return e, rules.head[0], rules.gaze[0]
