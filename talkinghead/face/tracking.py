"""Track a face through a video: per-frame landmarks and blendshapes (largest face)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import landmarks as L
from .landmarker import FaceLandmarker
from ..io import probe_video, read_video_frames

TRACK_MAX_SIDE = 720  # frames are downscaled to this long side before tracking (speed)


@dataclass(frozen=True)
class VideoTrack:
    """landmarks: (F, 478, 3) float32 pixels of the original frame size (NaN where no face);
    blendshapes: (F, 52) float32; found: (F,) bool; fps: frames per second."""

    landmarks: np.ndarray
    blendshapes: np.ndarray
    found: np.ndarray
    fps: float
    size: tuple[int, int]  # (width, height)


def track_frames(frames, fps: float, video: bool = True) -> VideoTrack:
    """Track an iterable of (H, W, 3) uint8 RGB frames.

    video=True uses MediaPipe's video mode (steadier, but it smooths over time: on the real clips its
    inner-lip gap trails image mode by about 0.4 frames); video=False tracks every frame on its own."""
    import cv2

    lms, bss, found = [], [], []
    size = (0, 0)
    with FaceLandmarker(video=video, max_faces=1) as landmarker:
        for i, frame in enumerate(frames):
            h, w = frame.shape[:2]
            size = (w, h)
            scale = min(1.0, TRACK_MAX_SIDE / max(h, w))
            small = cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else frame
            faces = landmarker.detect(small, timestamp_ms=int(round(i * 1000.0 / fps)))  # ignored in image mode
            if faces:
                lms.append(faces[0].landmarks / scale)
                bss.append(faces[0].blendshapes)
                found.append(True)
            else:
                lms.append(np.full((L.N_LANDMARKS, 3), np.nan, np.float32))
                bss.append(np.zeros(L.N_BLENDSHAPES, np.float32))
                found.append(False)
    return VideoTrack(np.array(lms, np.float32).reshape(-1, L.N_LANDMARKS, 3),
                      np.array(bss, np.float32).reshape(-1, L.N_BLENDSHAPES),
                      np.array(found, bool), float(fps), size)


def track_video(path: Path, cache_dir: Path | None = None, video: bool = True) -> VideoTrack:
    """Track a video file (`video`: see track_frames); with cache_dir, reuse an earlier result for the
    same file contents and mode."""
    path = Path(path)
    cache = None
    if cache_dir is not None:
        digest = hashlib.sha1(path.read_bytes()).hexdigest()[:16]
        cache = Path(cache_dir) / f"{path.stem}-{digest}{'' if video else '-image'}.npz"
        if cache.is_file():
            with np.load(cache) as d:
                return VideoTrack(d["landmarks"], d["blendshapes"], d["found"], float(d["fps"]), tuple(d["size"]))
    info = probe_video(path)
    track = track_frames(read_video_frames(path), info.fps, video)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache, landmarks=track.landmarks, blendshapes=track.blendshapes,
                            found=track.found, fps=track.fps, size=np.array(track.size))
    return track
