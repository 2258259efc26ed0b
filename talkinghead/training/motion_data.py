"""Training windows for the motion model, from the shards `talkinghead data prepare` writes.

Each kept clip is resampled to the model's frame rate, made relative to its own median pose and
expression (the "portrait" of that clip), and paired with the prosody features of its sound
(shifted by the clip's measured audio delay). Clips not kept for speech (silent, music) train the
unconditional branch: their audio is marked absent.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio.features import extract_features
from ..audio.speech_encoder import frame_positions, interpolate_states
from ..config import SAMPLE_RATE
from ..errors import TalkingHeadError
from ..face import landmarks as L
from ..motion.learned.representation import (AUDIO_DIMS, BLINK_IDS, EXPRESSION, MOTION_DIMS, audio_vectors,
                                             motion_vectors, window_controls)
from ..motion.types import Motion

TRUE = "True"
MOTION_STD_FLOOR = 0.01  # a nearly constant coefficient is not blown up to unit variance


@dataclass(frozen=True)
class Clip:
    """One clip at the model's frame rate: motion (T, MOTION_DIMS) relative to `rest` (52,) and the
    clip's median pose, audio (T, AUDIO_DIMS) prosody, has_audio (usable speech), and speech (T, 384)
    the speech encoder's states at each frame's centre (None without usable speech or stored states)."""

    name: str
    split: str
    motion: np.ndarray
    audio: np.ndarray
    rest: np.ndarray
    has_audio: bool
    speech: np.ndarray | None = None


def _resample(times: np.ndarray, values: np.ndarray, new_times: np.ndarray) -> np.ndarray:
    return np.stack([np.interp(new_times, times, column) for column in values.T], axis=1).astype(np.float32)


def load_clip(shard: Path, row: dict, fps: float) -> Clip:
    """A shard and its manifest row -> Clip (tracking gaps are interpolated).

    The shard's motion is a driving video's (motion/video_driven.retarget: changes from the clip's first
    frame, lid closure in the eyeBlink rows); it is re-centred on the clip's median pose, gaze and
    expression change, and the clip's rest is the median of the tracker's own scores (what a portrait's
    rest expression is)."""
    with np.load(shard) as z:
        times, found = z["times"].astype(np.float64), z["found"]
        head, gaze, change, scores = z["head"], z["gaze"], z["expression"], z["blendshapes"]
        audio = z["audio"].astype(np.float32) / 32768.0
        states = z["speech_states"] if "speech_states" in z.files else np.zeros((0, 0), np.float32)
    times, head, gaze, change = times[found], head[found], gaze[found], change[found]
    times = times - times[0]
    new_times = np.arange(0.0, times[-1], 1.0 / fps)
    resampled = Motion(_resample(times, change, new_times), _resample(times, head, new_times),
                       _resample(times, gaze, new_times))
    vectors = motion_vectors(resampled, np.zeros(L.N_BLENDSHAPES, np.float32))  # already changes and closures
    centred = np.ones(MOTION_DIMS, bool)
    centred[EXPRESSION.start + BLINK_IDS] = False  # closure 0 is the open eye already
    vectors[:, centred] -= np.median(vectors[:, centred], axis=0)
    has_audio = row.get("speech_kept") == TRUE
    speech = None
    if has_audio:
        offset_s = float(row.get("av_offset_s") or 0.0)
        shift = int(round(offset_s * SAMPLE_RATE))  # features at frame time + the audio delay
        audio = audio[shift:] if shift >= 0 else np.concatenate([np.zeros(-shift, np.float32), audio])
        features = audio_vectors(extract_features(audio, fps))
        n = min(len(vectors), len(features))
        if len(states):  # the encoder states at the same times (frame centres + the delay), as the run-time stream;
            # the shard's states run tail_s past the sound, and a frame beyond them holds the last
            positions = frame_positions((np.arange(n) + 0.5) / fps, (shift / SAMPLE_RATE,))[:, 0]
            speech = interpolate_states(states, np.minimum(positions, len(states) - 1)).reshape(n, states.shape[1])
    else:  # the unconditional branch: the motion counts whole, whatever sound (or none) the clip has
        features = np.zeros((len(vectors), AUDIO_DIMS), np.float32)
        n = len(vectors)
    rest = np.median(scores[found], axis=0).astype(np.float32)
    return Clip(row["id"], row["split"], vectors[:n].astype(np.float32), features[:n], rest, has_audio, speech)


def load_dataset(folder: Path, fps: float) -> list[Clip]:
    """Every clip the manifest keeps (for motion) in a `talkinghead data prepare` output folder."""
    manifest = Path(folder) / "manifest.tsv"
    if not Path(folder).is_dir():
        raise TalkingHeadError(f"data folder '{folder}' does not exist: prepare it with "
                               f"`talkinghead data prepare VIDEOS --out {folder}`")
    if not manifest.is_file():
        raise TalkingHeadError(f"'{folder}' has no manifest.tsv: prepare the data first with "
                               f"`talkinghead data prepare VIDEOS --out {folder}`")
    with open(manifest, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["kept"] == TRUE]
    if not rows:
        raise TalkingHeadError(f"no clip in '{manifest}' is kept: see its report for why")
    return [load_clip(Path(folder) / r["shard"], r, fps) for r in rows]


class WindowSampler:
    """Random training windows of `previous + window` frames (seeded)."""

    def __init__(self, clips: list[Clip], previous: int, window: int, seed: int):
        self.length = previous + window
        self.previous = previous
        self.clips = [c for c in clips if len(c.motion) >= self.length]
        if not self.clips:
            raise TalkingHeadError(f"no clip is {self.length} frames long: use a config with shorter windows")
        weights = np.array([len(c.motion) - self.length + 1 for c in self.clips], np.float64)
        self.weights = weights / weights.sum()
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int) -> dict[str, np.ndarray]:
        """motion (B, P+W, D), audio (B, P+W, A), rest (B, 52), controls (B, C), has_audio (B,)."""
        picks = self.rng.choice(len(self.clips), size=size, p=self.weights)
        out: dict[str, list] = {"motion": [], "audio": [], "rest": [], "controls": [], "has_audio": []}
        for i in picks:
            clip = self.clips[i]
            start = int(self.rng.integers(0, len(clip.motion) - self.length + 1))
            motion = clip.motion[start:start + self.length]
            out["motion"].append(motion)
            out["audio"].append(clip.audio[start:start + self.length])
            out["rest"].append(clip.rest)
            out["controls"].append(window_controls(motion[self.previous:]))
            out["has_audio"].append(clip.has_audio)
        return {k: np.asarray(v, np.float32) for k, v in out.items()}


def statistics(clips: list[Clip], previous: int, window: int) -> dict[str, np.ndarray]:
    """Standardisation statistics of the training clips (what the checkpoint carries)."""
    motion = np.concatenate([c.motion for c in clips])
    speech = [c.audio for c in clips if c.has_audio]
    audio = np.concatenate(speech) if speech else np.zeros((1, AUDIO_DIMS), np.float32)
    rest = np.stack([c.rest for c in clips])
    length = previous + window
    controls = [window_controls(c.motion[s + previous:s + length]) for c in clips
                for s in range(0, len(c.motion) - length + 1, window)]
    controls = np.stack(controls) if controls else np.zeros((1, 2), np.float32)
    return {"motion_mean": motion.mean(0), "motion_std": np.maximum(motion.std(0), MOTION_STD_FLOOR),
            "audio_mean": audio.mean(0), "audio_std": np.maximum(audio.std(0), 1e-3),
            "rest_mean": rest.mean(0), "rest_std": np.maximum(rest.std(0), 1e-2),
            "control_median": np.median(controls, axis=0), "control_std": np.maximum(controls.std(0), 1e-2)}
