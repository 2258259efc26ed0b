"""Evaluation protocols: generate, re-track the output with the face landmarker, score against references.

Self-reenactment: each real talking clip's first frame is the portrait and its audio the speech; the
generated video is compared frame by frame with the real one. Cross-identity: every portrait with
each speech clip, scored without a ground truth. Every report also holds reference rows: the real
video scored against itself ("real") and its first frame held still over the real audio ("frozen").
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..face import landmarks as L
from ..audio.features import SAMPLE_RATE, extract_features, frame_count
from ..config import GenerateConfig
from ..errors import TalkingHeadError
from ..face.landmarker import FaceLandmarker
from ..io import VideoWriter, load_audio, load_image, probe_video, read_video_frames
from ..face.measure import mouth_aperture
from ..pipeline import Pipeline, prepare_portrait
from ..face.tracking import VideoTrack, track_video
from . import identity, metrics
from .motion_measures import motion_figures
from .variants import FROZEN, REAL, Variant, for_clip
from .voice import voiced_frames

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
AUDIO_SUFFIXES = (".wav", ".mp3", ".flac", ".m4a", ".ogg")
SAMPLED_FRAMES = 12  # frames per clip kept for identity, background, sharpness and the contact sheet
JAW_OPEN = L.BLENDSHAPE_INDEX["jawOpen"]
LOUDNESS_FLOOR_DB = -60.0  # loudness below this is clipped before correlating it with the aperture


# ------------------------------------------------------------------------------------------------
# inputs
# ------------------------------------------------------------------------------------------------


def files_in(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files of those kinds in `folder` (not recursive), sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in suffixes)


# ------------------------------------------------------------------------------------------------
# one generated or reference video, measured
# ------------------------------------------------------------------------------------------------


@dataclass
class Measured:
    """What the metrics need of one video: its track and a few sampled frames."""

    landmarks: np.ndarray  # (T, 478, 3) pixels, NaN where no face
    blendshapes: np.ndarray  # (T, 52)
    samples: dict[int, np.ndarray]  # frame index -> frame, for SAMPLED_FRAMES evenly spaced indices
    generation_seconds: float = float("nan")

    @property
    def apertures(self) -> np.ndarray:
        return mouth_aperture(self.landmarks)

    @property
    def face_found(self) -> float:
        return float(np.isfinite(self.landmarks[:, 0, 0]).mean()) if len(self.landmarks) else 0.0


def sample_indices(n: int) -> list[int]:
    """SAMPLED_FRAMES indices spread evenly over n frames."""
    return sorted(set(np.linspace(0, max(n - 1, 0), min(SAMPLED_FRAMES, max(n, 1))).round().astype(int).tolist()))


def measure_frames(frames: Iterator[np.ndarray], n_expected: int, fps: float,
                   writer: VideoWriter | None = None) -> Measured:
    """Track frames as they come (VIDEO mode), keep sampled ones, time the producer, write them if asked."""
    wanted = set(sample_indices(n_expected))
    lms, bss, samples = [], [], {}
    produce_seconds = 0.0
    iterator = iter(frames)
    with FaceLandmarker(video=True, max_faces=1) as landmarker:
        i = 0
        while True:
            started = time.perf_counter()
            try:
                frame = next(iterator)
            except StopIteration:
                break
            if writer is not None:
                writer.write(frame)
            produce_seconds += time.perf_counter() - started
            faces = landmarker.detect(frame, timestamp_ms=int(round(i * 1000.0 / fps)))
            lms.append(faces[0].landmarks if faces else np.full((L.N_LANDMARKS, 3), np.nan, np.float32))
            bss.append(faces[0].blendshapes if faces else np.full(L.N_BLENDSHAPES, np.nan, np.float32))
            if i in wanted:
                samples[i] = frame
            i += 1
    return Measured(np.array(lms, np.float32).reshape(-1, L.N_LANDMARKS, 3),
                    np.array(bss, np.float32).reshape(-1, L.N_BLENDSHAPES), samples, produce_seconds)


def measured_from_track(track: VideoTrack, path: Path) -> Measured:
    """A real video as Measured (its cached track plus sampled decoded frames)."""
    n = len(track.landmarks)
    wanted = set(sample_indices(n))
    samples = {i: f for i, f in enumerate(read_video_frames(path)) if i in wanted}
    return Measured(track.landmarks.astype(np.float32), track.blendshapes.astype(np.float32), samples)


def frozen_measured(portrait_frame: np.ndarray, portrait_landmarks: np.ndarray,
                    portrait_blendshapes: np.ndarray, n: int) -> Measured:
    """The portrait held still for n frames (its one tracked pose repeated)."""
    return Measured(np.repeat(portrait_landmarks[None].astype(np.float32), n, 0),
                    np.repeat(portrait_blendshapes[None].astype(np.float32), n, 0),
                    {i: portrait_frame for i in sample_indices(n)})


# ------------------------------------------------------------------------------------------------
# scores
# ------------------------------------------------------------------------------------------------


class Scorer:
    """Pixel and identity figures of a video against its portrait (identity optional)."""

    def __init__(self, use_identity: bool = True):
        self.identity = identity.IdentityEncoder() if use_identity and identity.available() else None
        if use_identity and self.identity is None:
            log.warning("identity metric skipped: install the 'eval' extra (dlib-bin, face-recognition-models)")

    def pixel_scores(self, video: Measured, portrait: np.ndarray, portrait_landmarks: np.ndarray) -> dict:
        head = metrics.head_region(portrait.shape, portrait_landmarks)
        base_sharpness = metrics.face_sharpness(portrait, portrait_landmarks)
        background, sharpness, identities = [], [], []
        reference = self.identity.descriptor(portrait, portrait_landmarks) if self.identity else None
        for i, frame in sorted(video.samples.items()):
            if frame.shape != portrait.shape:
                continue
            background.append(metrics.background_change(frame, portrait, head))
            lm = video.landmarks[i] if i < len(video.landmarks) else None
            if lm is None or not np.isfinite(lm).all():
                continue
            sharpness.append(metrics.face_sharpness(frame, lm) / max(base_sharpness, 1e-9))
            if reference is not None:
                identities.append(identity.distance(reference, self.identity.descriptor(frame, lm)))
        return {
            "background_change": _mean(background),
            "sharpness_ratio": _mean(sharpness),
            "identity_distance": _mean(identities) if reference is not None else None,
        }


def _mean(values) -> float:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def _ratio(a: float, b: float) -> float:
    return float(a / b) if np.isfinite(a) and np.isfinite(b) and b > 1e-12 else float("nan")


def _speech_stats(apertures: np.ndarray, voiced: np.ndarray) -> dict:
    n = min(len(apertures), len(voiced))
    speech = apertures[:n][voiced[:n] & np.isfinite(apertures[:n])]
    return {
        "aperture_speech_std": float(speech.std()) if len(speech) > 1 else float("nan"),
        "aperture_speech_p95": float(np.percentile(speech, 95)) if len(speech) else float("nan"),
    }


def self_reenactment_row(clip: str, system: str, video: Measured, real: Measured, reference: np.ndarray,
                         portrait: np.ndarray, portrait_landmarks: np.ndarray, voiced: np.ndarray, fps: float,
                         audio_seconds: float, scorer: Scorer, real_jitter: float, real_spread: float,
                         loudness_db: np.ndarray) -> dict:
    """All self-reenactment figures of one video (generated, real or frozen) against the real one.

    `reference` is the real first frame's landmarks (pose reference, resting gap); `portrait` and
    `portrait_landmarks` are the image the video started from, at the video's own size.
    """
    n = min(len(video.landmarks), len(real.landmarks))
    gen_ap, real_ap = video.apertures[:n], real.apertures[:n]
    sync = metrics.lagged_correlation(gen_ap, real_ap)
    rest = float(mouth_aperture(reference))
    own_reference = portrait_landmarks.astype(np.float64)
    jitter = metrics.jitter(video.landmarks, own_reference)
    rotations = metrics.head_rotations(video.landmarks, own_reference)
    spread = metrics.rotation_spread(rotations)
    row = {
        "clip": clip,
        "system": system,
        "frames": int(len(video.landmarks)),
        "fps": float(fps),
        "face_found": video.face_found,
        "lipsync_r": sync.correlation,
        "lipsync_best_lag": sync.best_lag,
        "lipsync_best_r": sync.best_correlation,
        "jaw_open_r": metrics.pearson(video.blendshapes[:n, JAW_OPEN], real.blendshapes[:n, JAW_OPEN]),
        "lmd": metrics.lip_distance(video.landmarks[:n], real.landmarks[:n], reference),
        "silence_rest_share": metrics.silence_rest_share(gen_ap, voiced, rest, fps),
        "silence_frames": int(metrics.scored_silence(voiced[:n], fps).sum()),
        "speech_longest_freeze_s": metrics.longest_freeze_seconds(gen_ap, voiced, fps),
        "blinks_per_minute": metrics.blinks_per_minute(video.landmarks, fps),
        "head_rotation_spread_deg": spread,
        "head_spread_ratio": _ratio(spread, real_spread),
        "jitter_ratio": _ratio(jitter, real_jitter),
        "realtime_factor": _ratio(audio_seconds, video.generation_seconds),
        **motion_figures(rotations, video.blendshapes, loudness_db, fps),
        **_speech_stats(gen_ap, voiced),
        **scorer.pixel_scores(video, portrait, portrait_landmarks),
    }
    return row


def cross_identity_row(portrait_name: str, speech_name: str, system: str, video: Measured, expected_frames: int,
                       portrait: np.ndarray, portrait_landmarks: np.ndarray, voiced: np.ndarray,
                       loudness_db: np.ndarray, fps: float, audio_seconds: float, scorer: Scorer) -> dict:
    """Figures of one portrait driven by one speech clip (no ground truth)."""
    apertures = video.apertures
    n = min(len(apertures), len(loudness_db))
    return {
        "portrait": portrait_name,
        "speech": speech_name,
        "system": system,
        "frames": int(len(video.landmarks)),
        "valid": bool(len(video.landmarks) == expected_frames),
        "face_found": video.face_found,
        "silence_rest_share": metrics.silence_rest_share(apertures, voiced, float(mouth_aperture(portrait_landmarks)), fps),
        "speech_longest_freeze_s": metrics.longest_freeze_seconds(apertures, voiced, fps),
        "aperture_loudness_r": metrics.pearson(apertures[:n], np.maximum(loudness_db[:n], LOUDNESS_FLOOR_DB)),
        "blinks_per_minute": metrics.blinks_per_minute(video.landmarks, fps),
        "realtime_factor": _ratio(audio_seconds, video.generation_seconds),
        **motion_figures(metrics.head_rotations(video.landmarks, portrait_landmarks.astype(np.float64)),
                         video.blendshapes, loudness_db, fps),
        **_speech_stats(apertures, voiced),
        **scorer.pixel_scores(video, portrait, portrait_landmarks),
    }


# ------------------------------------------------------------------------------------------------
# runs
# ------------------------------------------------------------------------------------------------


@dataclass
class ClipResult:
    """Everything the report draws for one clip (or one portrait x speech pair)."""

    name: str
    fps: float
    voiced: np.ndarray
    apertures: dict[str, np.ndarray]  # system -> aperture series
    samples: dict[str, dict[int, np.ndarray]]  # system -> sampled frames
    rows: list[dict]


def generate_measured(pipeline: Pipeline, audio: np.ndarray, out: Path | None) -> Measured:
    """Run the pipeline on `audio`, write the MP4 to `out` (if given), track every frame."""
    fps = pipeline.config.fps
    n = frame_count(len(audio), fps)
    if out is None:
        return measure_frames(pipeline.stream(pipeline.chunks(audio)), n, fps)
    width, height = pipeline.frame_size
    out.parent.mkdir(parents=True, exist_ok=True)
    with VideoWriter(out, fps, width, height, audio=audio, sample_rate=SAMPLE_RATE, crf=pipeline.config.crf) as writer:
        return measure_frames(pipeline.stream(pipeline.chunks(audio)), n, fps, writer)


@dataclass
class RealClip:
    """A real talking clip as self-reenactment reads it: n frames of its track and of its own speech."""

    real: Measured  # its track, and sampled frames (frame 0, the portrait, among them)
    audio: np.ndarray  # (samples,) float32 at SAMPLE_RATE, cut to the n frames
    voiced: np.ndarray  # (n,) bool, WebRTC's VAD
    fps: float


def load_real_clip(clip: Path, cache_dir: Path | None, max_seconds: float | None = None) -> RealClip:
    """Track `clip` (cached), read its speech, cut both to the frames they share (and to max_seconds)."""
    info = probe_video(clip)
    if info.audio_codec is None:
        raise TalkingHeadError(f"'{clip}' has no audio track: self-reenactment needs the clip's own speech")
    track = track_video(clip, cache_dir=cache_dir)
    fps = track.fps
    audio = load_audio(clip, SAMPLE_RATE)
    n = min(len(track.landmarks), frame_count(len(audio), int(round(fps))))
    if max_seconds:
        n = min(n, int(max_seconds * fps))
    audio = audio[:int(round(n / round(fps) * SAMPLE_RATE))]
    track = VideoTrack(track.landmarks[:n], track.blendshapes[:n], track.found[:n], fps, track.size)
    real = measured_from_track(track, clip)
    if not np.isfinite(real.landmarks[0]).all():
        raise TalkingHeadError(f"no face in the first frame of '{clip}': self-reenactment uses it as the portrait")
    return RealClip(real, audio, voiced_frames(audio, round(fps), n), fps)


def self_reenactment(clip: Path, variants: list[Variant], scorer: Scorer, out_dir: Path | None,
                     cache_dir: Path | None, max_seconds: float | None = None) -> ClipResult:
    """One real clip: reference rows (real, frozen) and one row per variant."""
    loaded = load_real_clip(clip, cache_dir, max_seconds)
    real, audio, voiced, fps = loaded.real, loaded.audio, loaded.voiced, loaded.fps
    n = len(real.landmarks)
    audio_seconds = len(audio) / SAMPLE_RATE

    portrait_full = real.samples[0]
    real_reference = real.landmarks[0].astype(np.float64)
    real_jitter = metrics.jitter(real.landmarks, real_reference)
    real_spread = metrics.rotation_spread(metrics.head_rotations(real.landmarks, real_reference))
    args = dict(voiced=voiced, fps=fps, audio_seconds=audio_seconds, scorer=scorer,
                real_jitter=real_jitter, real_spread=real_spread,
                loudness_db=extract_features(audio, round(fps)).loudness_db)
    rows = [self_reenactment_row(clip.stem, REAL, real, real, real_reference, portrait_full, real_reference, **args)]
    frozen = frozen_measured(portrait_full, real.landmarks[0], real.blendshapes[0], n)
    rows.append(self_reenactment_row(clip.stem, FROZEN, frozen, real, real_reference, portrait_full, real_reference,
                                     **args))
    apertures = {REAL: real.apertures, FROZEN: frozen.apertures}
    samples = {REAL: real.samples, FROZEN: frozen.samples}

    for variant in variants:
        pipeline = Pipeline.from_image(portrait_full, for_clip(variant.config, fps, clip.stem))
        out = out_dir / "videos" / variant.name / f"{clip.stem}.mp4" if out_dir else None
        video = generate_measured(pipeline, audio, out)
        # the generated video starts from the first frame at output size (pixel figures compare with
        # that); landmark figures are scale-free and use the real first frame as the pose reference
        portrait = pipeline.portrait
        rows.append(self_reenactment_row(clip.stem, variant.name, video, real, real_reference, portrait.image,
                                         portrait.face.landmarks, **args))
        apertures[variant.name] = video.apertures
        samples[variant.name] = video.samples
    return ClipResult(clip.stem, fps, voiced, apertures, samples, rows)


def cross_identity(portrait_path: Path, speech_path: Path, variants: list[Variant], scorer: Scorer,
                   out_dir: Path | None, max_seconds: float | None = None) -> ClipResult:
    """One portrait with one speech clip: a frozen reference row and one row per variant."""
    audio = load_audio(speech_path, SAMPLE_RATE)
    if max_seconds:
        audio = audio[:int(max_seconds * SAMPLE_RATE)]
    name = f"{portrait_path.stem}+{speech_path.stem}"
    image = load_image(portrait_path)
    rows, apertures, samples = [], {}, {}
    voiced = np.zeros(0, bool)
    fps = GenerateConfig().fps
    for index, variant in enumerate(variants):
        config = variant.config
        fps = config.fps
        n = frame_count(len(audio), fps)
        voiced = voiced_frames(audio, fps, n)
        loudness = extract_features(audio, fps).loudness_db
        pipeline = Pipeline(prepare_portrait(image, config.render.size, f"'{portrait_path}'"), config)
        portrait = pipeline.portrait
        common = dict(expected_frames=n, portrait=portrait.image, portrait_landmarks=portrait.face.landmarks,
                      voiced=voiced, loudness_db=loudness, fps=fps, audio_seconds=len(audio) / SAMPLE_RATE,
                      scorer=scorer)
        if index == 0:
            frozen = frozen_measured(portrait.image, portrait.face.landmarks, portrait.face.blendshapes, n)
            rows.append(cross_identity_row(portrait_path.stem, speech_path.stem, FROZEN, frozen, **common))
            apertures[FROZEN], samples[FROZEN] = frozen.apertures, frozen.samples
        out = out_dir / "videos" / variant.name / f"{name}.mp4" if out_dir else None
        video = generate_measured(pipeline, audio, out)
        rows.append(cross_identity_row(portrait_path.stem, speech_path.stem, variant.name, video, **common))
        apertures[variant.name], samples[variant.name] = video.apertures, video.samples
    return ClipResult(name, fps, voiced, apertures, samples, rows)


SUMMED = ("silence_frames",)  # counts: summed over runs, not averaged


def summarize(rows: list[dict], group: str = "system") -> dict[str, dict[str, float]]:
    """Mean of every numeric figure per system (SUMMED counts are totals), plus silence_rest_pooled: the
    share of all scored silent frames at rest, each frame counting once (the mean over clips weighs a clip
    with 6 silent frames like one with 81)."""
    out: dict[str, dict[str, float]] = {}
    for system in dict.fromkeys(r[group] for r in rows):
        mine = [r for r in rows if r[group] == system]
        means = {}
        for key, value in mine[0].items():
            if isinstance(value, (int, float)):  # bools too: their mean is a share
                values = np.array([float(r[key]) for r in mine if r.get(key) is not None], np.float64)
                values = values[np.isfinite(values)]
                means[key] = (float(values.sum()) if key in SUMMED else float(values.mean())) if len(values) \
                    else float("nan")
        scored = [(r["silence_rest_share"], r["silence_frames"]) for r in mine
                  if r.get("silence_frames") and r.get("silence_rest_share") is not None
                  and np.isfinite(r["silence_rest_share"])]
        if scored:
            shares, counts = np.array(scored, np.float64).T
            means["silence_rest_pooled"] = float((shares * counts).sum() / counts.sum())
        means["runs"] = len(mine)
        out[system] = means
    return out
