"""What the motion model reads and writes per frame, and how it maps to Motion and AudioFeatures.

Motion vector (MOTION_DIMS = 60), relative to the portrait (or, in training, to the clip's median):
    head: yaw, pitch, roll (degrees), tx, ty (inter-ocular distances), log(scale)
    gaze: x, y (eye widths)
    expression: 52 blendshape changes from the rest expression, except the two eyeBlink rows, which hold
        each lid's closure (0 = as open as at rest, 1 = shut), as a driving video's do
        (motion/video_driven.py): a tracker scores a shut eye anywhere from 0.5 to 1.
The model sees it standardised by the training set's per-dimension mean and std.

Audio vector (AUDIO_DIMS = 8), from audio.features: loudness (dBFS, scaled), its change over one
frame, the three band shares, log spectral centroid, log pitch (0 when unvoiced) and a voiced flag.
Prosody, not phonetics: the head, brows and blinks follow the voice's energy and melody; the mouth
comes from the speech model (motion/learned_mouth.py).

Or (a checkpoint whose config says audio_features="speech") speech vectors: the Whisper tiny.en encoder
states the mouth model reads (layer `speech_layer`, 384 wide, at each frame's centre), projected on
their first `audio_dims` principal axes over the training speech (`speech_mean`, `speech_basis` in the
checkpoint's statistics). They carry what is being said as well as how, and the head follows them
more closely than it follows prosody (docs/motion_model.md, "Speech states or prosody").

Controls (CONTROL_NAMES): how much and how fast the head moves in a window, as logs: what
MotionConfig.head_amplitude and head_speed scale.
"""

from __future__ import annotations

import numpy as np

from ...audio.features import AudioFeatures
from ...face import landmarks as L
from ..types import HEAD_FIELDS, N_HEAD, Motion

HEAD = slice(0, N_HEAD)
GAZE = slice(N_HEAD, N_HEAD + 2)
EXPRESSION = slice(N_HEAD + 2, N_HEAD + 2 + L.N_BLENDSHAPES)
MOTION_DIMS = N_HEAD + 2 + L.N_BLENDSHAPES
SCALE_INDEX = HEAD_FIELDS.index("scale")
ROTATION = slice(0, 3)  # yaw, pitch, roll in the head block
TRANSLATION = slice(3, 5)  # tx, ty

AUDIO_NAMES = ("loudness", "loudness_change", "band_low", "band_mid", "band_high", "log_centroid", "log_pitch",
               "voiced")
AUDIO_DIMS = len(AUDIO_NAMES)
LOUDNESS_REFERENCE_DB, LOUDNESS_SPAN_DB = -60.0, 30.0  # -60 dBFS -> 0, -30 dBFS -> 1
LOUDNESS_FLOOR_DB = -70.0
CENTROID_REFERENCE_HZ = 1000.0
PITCH_REFERENCE_HZ = 200.0

AUDIO_FEATURES = ("prosody", "speech")  # what a model's per-frame audio vector is (ModelConfig.audio_features)
SPEECH_COMPONENTS = 16  # principal axes of the speech states a "speech" model reads (its audio_dims)

CONTROL_NAMES = ("log_head_amplitude", "log_head_speed")
AMPLITUDE_FLOOR_DEG = 0.05  # keeps the log finite for a still head
SPEED_FLOOR = 1e-3


BLINK_IDS = np.array([L.BLENDSHAPE_INDEX[n] for n in L.BLINK_COEFFS])


def motion_vectors(motion: Motion, rest: np.ndarray) -> np.ndarray:
    """Motion (T frames) and the rest expression (52,) -> (T, MOTION_DIMS) float32."""
    rest = np.asarray(rest, np.float32)
    head = motion.head.astype(np.float32).copy()
    head[:, SCALE_INDEX] = np.log(np.maximum(head[:, SCALE_INDEX], 1e-3))
    change = motion.expression - rest[None]
    change[:, BLINK_IDS] /= np.maximum(1.0 - rest[BLINK_IDS], 1e-3)  # closure
    return np.concatenate([head, motion.gaze, change], axis=1).astype(np.float32)


def vectors_to_motion(vectors: np.ndarray, rest: np.ndarray) -> Motion:
    """(T, MOTION_DIMS) -> Motion on the portrait's rest expression (expression clipped to [0, 1])."""
    rest = np.asarray(rest, np.float32)
    head = vectors[:, HEAD].astype(np.float32).copy()
    head[:, SCALE_INDEX] = np.exp(head[:, SCALE_INDEX])
    change = vectors[:, EXPRESSION].astype(np.float32).copy()
    change[:, BLINK_IDS] *= 1.0 - rest[BLINK_IDS]  # closure -> score, as motion/video_driven.py draws a driver's
    expression = np.clip(rest[None] + change, 0.0, 1.0)
    return Motion(expression.astype(np.float32), head, vectors[:, GAZE].astype(np.float32))


def audio_vectors(features: AudioFeatures, previous_loudness_db: float | None = None) -> np.ndarray:
    """AudioFeatures (T rows) -> (T, AUDIO_DIMS) float32. `previous_loudness_db` is the row before the
    first (streaming), so the change over one frame does not depend on chunking."""
    loud = np.maximum(np.asarray(features.loudness_db, np.float32), LOUDNESS_FLOOR_DB)
    before = loud[:1] if previous_loudness_db is None else np.array([max(previous_loudness_db, LOUDNESS_FLOOR_DB)],
                                                                       np.float32)
    change = np.diff(np.concatenate([before, loud])) / LOUDNESS_SPAN_DB
    pitch = np.asarray(features.pitch_hz, np.float32)
    voiced = pitch > 0
    log_pitch = np.where(voiced, np.log2(np.maximum(pitch, 1.0) / PITCH_REFERENCE_HZ), 0.0)
    centroid = np.log2(np.maximum(np.asarray(features.centroid_hz, np.float32), 50.0) / CENTROID_REFERENCE_HZ)
    columns = [(loud - LOUDNESS_REFERENCE_DB) / LOUDNESS_SPAN_DB, change, *np.asarray(features.bands, np.float32).T,
               centroid, log_pitch, voiced.astype(np.float32)]
    return np.stack(columns, axis=1).astype(np.float32)


def window_controls(vectors: np.ndarray) -> np.ndarray:
    """(T, MOTION_DIMS) unstandardised motion of one window -> (len(CONTROL_NAMES),) control values:
    log of the head rotation's RMS spread (degrees) and log of its mean speed over that spread (1/frame)."""
    rotation = vectors[:, ROTATION]
    spread = float(np.sqrt((rotation.std(0) ** 2).mean()))
    speed = float(np.abs(np.diff(rotation, axis=0)).mean()) if len(rotation) > 1 else 0.0
    return np.array([np.log(max(spread, AMPLITUDE_FLOOR_DEG)),
                     np.log(max(speed / max(spread, AMPLITUDE_FLOOR_DEG), SPEED_FLOOR))], np.float32)


REST_Z_LIMIT = 3.0  # a portrait's rest expression is read at most this many training stds from the mean


def standardised_rest(rest: np.ndarray, stats: dict[str, np.ndarray]) -> np.ndarray:
    """The rest expression (52,) as the network reads it: standardised by the training speakers' rests and
    clipped to +-REST_Z_LIMIT (with a few dozen training speakers, a portrait's unusual coefficient would
    otherwise sit tens of stds away, where the network has never been and its motion turns to noise)."""
    z = (np.asarray(rest, np.float32) - stats["rest_mean"]) / stats["rest_std"]
    return np.clip(z, -REST_Z_LIMIT, REST_Z_LIMIT).astype(np.float32)


def fit_speech_projection(states: np.ndarray, components: int) -> dict[str, np.ndarray]:
    """Principal axes of speech states (N, width): {"speech_mean": (width,), "speech_basis": (width, components)},
    each axis signed so that its largest coefficient is positive (the same axes whatever the SVD's signs)."""
    states = np.asarray(states, np.float64)
    mean = states.mean(0)
    _, _, axes = np.linalg.svd(states - mean, full_matrices=False)
    basis = axes[:components].T
    basis *= np.sign(basis[np.abs(basis).argmax(0), np.arange(basis.shape[1])])
    return {"speech_mean": mean.astype(np.float32), "speech_basis": basis.astype(np.float32)}


def speech_vectors(states: np.ndarray, stats: dict[str, np.ndarray]) -> np.ndarray:
    """Speech states (T, width) -> (T, components) float32 on the checkpoint's principal axes."""
    return ((np.asarray(states, np.float32) - stats["speech_mean"]) @ stats["speech_basis"]).astype(np.float32)
