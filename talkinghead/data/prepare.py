"""One video -> shot clips, each with per-frame motion, speech features and voice activity, written as
shards plus a per-video record (nanoGPT's prepare step: training never decodes video).

Per clip (shards.SHARD_ARRAYS): frame times on the clip's own audio, the face track (image mode),
face box and track quality, head angles, the motion representation of motion/types.py (relative to the
clip's first frame, as a driving video is retargeted), Whisper tiny.en encoder states of the clip's
audio (the mouth model's layer and streaming grid, 50 Hz), WebRTC voice activity per frame, and the
audio itself (16 kHz int16) so features can be recomputed without the video.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import av
import numpy as np

from ..audio.features import SAMPLE_RATE
from ..audio.speech_encoder import SpeechEncoderStream, StreamGrid, encoder_frame_count
from ..errors import TalkingHeadError
from ..face import measure
from ..face.expression import load_basis
from ..face.tracking import VideoTrack
from ..io import load_audio, probe_video, read_video_frames
from .analysis import FrameAnalysis, analyse_frames, head_angles, shot_bounds
from .filters import av_offset, clip_stats
from .inputs import VideoJob
from .shards import write_record, write_shard

FORMAT = 2  # version of the shard layout and of the record; part of the settings hash (2: head angles
# about the upright axes, face.pose.upright_frame)
INT16_SCALE = 32767  # float audio in [-1, 1] <-> int16


@dataclass(frozen=True)
class PrepareConfig:
    """How videos are cut, tracked and featurised; a change invalidates finished videos (a re-run redoes them)."""

    shot_cut: float = 0.5  # colour-histogram distance between consecutive frames that marks a shot cut
    min_clip_s: float = 1.0  # shots shorter than this are not kept
    speech_layer: int = 3  # Whisper tiny.en block whose output is stored (the mouth model's)
    grid: StreamGrid = field(default_factory=StreamGrid)  # the encoder's streaming grid (the mouth model's)
    tail_s: float = 0.5  # encoder states computed past the clip's end (context taps and offset search)

    def digest(self) -> str:
        """Short hash of the settings and the format."""
        text = json.dumps({"format": FORMAT, **asdict(self)}, sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


@lru_cache(maxsize=1)
def _canonical_face() -> np.ndarray:
    """(478, 3) the expression basis's mean face: the frontal reference for head angles."""
    return load_basis().mean_shape.astype(np.float64)


def presentation_times(path: str, count: int, fps: float) -> np.ndarray:
    """(count,) seconds of each decoded frame from the first (packet timestamps, sorted); i / fps when the
    container's timestamps are missing or do not match the decoded frames."""
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            pts = sorted(p.pts for p in container.demux(stream) if p.pts is not None and p.size)
            base = float(stream.time_base)
    except (av.FFmpegError, OSError):
        pts = []
    if len(pts) != count:
        return np.arange(count) / fps
    times = np.array(pts, np.float64) * base
    return times - times[0]


def speech_states(audio: np.ndarray, config: PrepareConfig) -> np.ndarray:
    """(N, 384) float32 Whisper encoder states at 50 Hz of `audio`, streamed as at run time, tail_s past the end."""
    stream = SpeechEncoderStream(config.speech_layer, config.grid, _encoder())
    total = encoder_frame_count(len(audio) + int(config.tail_s * SAMPLE_RATE))
    return np.concatenate([stream.push(audio), stream.flush(total)]).astype(np.float32)


@lru_cache(maxsize=1)
def _encoder():
    """The NumPy Whisper encoder, loaded once per process."""
    from ..audio.whisper import load_encoder

    return load_encoder()


def voice_activity(audio: np.ndarray, times: np.ndarray) -> np.ndarray:
    """(T,) bool: WebRTC's VAD (the evaluation's) on the video frame whose centre is at each time."""
    from ..evaluation.voice import voiced_frames

    fps = 1.0 / np.median(np.diff(times)) if len(times) > 1 else 25.0
    flags = voiced_frames(audio, fps, len(times))
    return flags


def clip_motion(analysis: FrameAnalysis, lo: int, hi: int, fps: float) -> dict[str, np.ndarray]:
    """expression (T, 52), head (T, 6), gaze (T, 2): the motion representation relative to the clip's first
    face frame, smoothed and soft-limited as a driving video's (motion.video_driven.retarget); zeros when
    too few frames have a face."""
    from ..motion.video_driven import MIN_FOUND_SHARE, retarget

    t = hi - lo
    found = analysis.found[lo:hi]
    if found.mean() < MIN_FOUND_SHARE:  # retarget refuses such a track
        return {"expression": np.zeros((t, 52), np.float32), "head": np.zeros((t, 6), np.float32),
                "gaze": np.zeros((t, 2), np.float32)}
    track = VideoTrack(analysis.landmarks[lo:hi], analysis.blendshapes[lo:hi], found, fps, analysis.size)
    driving = retarget(track, reference="first")
    return {"expression": driving.expression, "head": driving.head, "gaze": driving.gaze}


def _add_time(seconds: dict, stage: str, since: float) -> float:
    """Add the time since `since` to seconds[stage]; return now."""
    now = time.perf_counter()
    seconds[stage] = seconds.get(stage, 0.0) + now - since
    return now


def clip_arrays(analysis: FrameAnalysis, lo: int, hi: int, pts: np.ndarray, fps: float,
                audio: np.ndarray | None, config: PrepareConfig, seconds: dict) -> dict[str, np.ndarray]:
    """Every array of the shard of frames [lo, hi) (see shards.SHARD_ARRAYS); time per stage added to `seconds`."""
    tick = time.perf_counter()
    start_s = float(pts[lo])
    stop_s = float(pts[hi - 1]) + 1.0 / fps
    times = pts[lo:hi] - start_s + 0.5 / fps
    angles, turn, residual = head_angles(analysis.landmarks[lo:hi], analysis.found[lo:hi], _canonical_face())
    arrays = {"times": times, "landmarks": analysis.landmarks[lo:hi], "blendshapes": analysis.blendshapes[lo:hi],
              "found": analysis.found[lo:hi], "box": analysis.box[lo:hi], "second_face": analysis.second_face[lo:hi],
              "sharpness": analysis.sharpness[lo:hi], "head_angles": angles, "head_turn": turn, "fit_residual": residual,
              "aperture": measure.mouth_aperture(analysis.landmarks[lo:hi]).astype(np.float32),
              "width": measure.mouth_width(analysis.landmarks[lo:hi]).astype(np.float32),
              **clip_motion(analysis, lo, hi, fps)}
    tick = _add_time(seconds, "pose_motion", tick)
    if audio is None:
        arrays.update(audio=np.zeros(0, np.int16), speech_states=np.zeros((0, 384), np.float32),
                      voiced=np.zeros(hi - lo, bool))
        return arrays
    segment = audio[int(round(start_s * SAMPLE_RATE)):int(round(stop_s * SAMPLE_RATE))]
    segment = np.pad(segment, (0, max(0, int(round((stop_s - start_s) * SAMPLE_RATE)) - len(segment))))
    arrays.update(audio=np.round(segment * INT16_SCALE).astype(np.int16), speech_states=speech_states(segment, config))
    tick = _add_time(seconds, "whisper", tick)
    arrays["voiced"] = voice_activity(segment, times)
    _add_time(seconds, "vad", tick)
    return arrays


def _load_audio_or_none(path: str) -> np.ndarray | None:
    """16 kHz mono audio of the video, or None when it has none (or none that decodes)."""
    try:
        return load_audio(path, SAMPLE_RATE)
    except TalkingHeadError:
        return None


def process_video(job: VideoJob, out_dir: str, config: PrepareConfig) -> dict:
    """Prepare one video: its clips' shards and its record (returned too). Problems with the file are
    recorded as a skip with the reason, never raised."""
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    with threadpool_limits(1):  # one BLAS thread: the parallelism is across videos, and results stay identical
        try:
            record = _prepare(job, out_dir, config)
        except TalkingHeadError as exc:
            record = {"status": "skipped", "reason": str(exc), "clips": []}
    record.update(key=job.key, path=job.path, speaker=job.speaker, kind=job.kind, settings=config.digest(),
                  source=_source_stamp(job.path), wall_s=round(time.perf_counter() - started, 3))
    write_record(out_dir, job.key, record)
    return record


def _source_stamp(path: str) -> list:
    """[size, mtime_ns] of a file ([] when it is gone): a changed file is prepared again."""
    from pathlib import Path

    try:
        stat = Path(path).stat()
    except OSError:
        return []
    return [stat.st_size, stat.st_mtime_ns]


def _prepare(job: VideoJob, out_dir: str, config: PrepareConfig) -> dict:
    """The work of process_video; raises TalkingHeadError for a video that yields nothing."""
    info = probe_video(job.path)
    if info.fps <= 0:
        raise TalkingHeadError(f"'{job.path}' has no frame rate; re-encode it")
    analysis = analyse_frames(read_video_frames(job.path))
    if len(analysis.found) == 0:
        raise TalkingHeadError(f"'{job.path}' has no decodable frames")
    if not analysis.found.any():
        raise TalkingHeadError(f"no face found in any of the {len(analysis.found)} frames of '{job.path}'")
    seconds = dict(analysis.seconds)
    tick = time.perf_counter()
    audio = _load_audio_or_none(job.path)
    pts = presentation_times(job.path, len(analysis.found), info.fps)
    shots = shot_bounds(analysis.cut, config.shot_cut, int(np.ceil(config.min_clip_s * info.fps)))
    if not shots:
        raise TalkingHeadError(f"'{job.path}' has no shot of at least {config.min_clip_s} s")
    seconds["audio_decode"] = time.perf_counter() - tick
    clips = []
    for index, (lo, hi) in enumerate(shots):
        arrays = clip_arrays(analysis, lo, hi, pts, info.fps, audio, config, seconds)
        tick = time.perf_counter()
        clip_id = f"{job.key}-{index:03d}"
        write_shard(out_dir, clip_id, arrays)
        tick = _add_time(seconds, "write", tick)
        stats = clip_stats(arrays, info.fps, analysis.size)
        stats.update(av_offset(arrays, info.fps, config.speech_layer) if len(arrays["audio"]) else {})
        _add_time(seconds, "av_sync", tick)
        clips.append({"id": clip_id, "start_s": round(float(pts[lo]), 4), "frames": hi - lo,
                      "fps": info.fps, "seconds": round((hi - lo) / info.fps, 3), "stats": stats})
    return {"status": "ok", "reason": "", "clips": clips, "frames": len(analysis.found),
            "has_audio": audio is not None, "size": list(analysis.size), "stage_s": {k: round(v, 3) for k, v in seconds.items()}}
