"""Decoded frames -> per-frame face measurements: image-mode landmarks and blendshapes, face count,
sharpness, colour-histogram change (shot cuts) and head pose.

Tracking is face.tracking's image mode (every frame on its own, downscaled to TRACK_MAX_SIDE), run
here with room for a second face so the one-face filter can count faces, and with the histogram and
the sharpness taken from the same decoded frame (each video is decoded once).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from ..face import landmarks as L
from ..face.landmarker import FaceLandmarker
from ..face.pose import fit_similarity, rotation_to_euler
from ..face.tracking import TRACK_MAX_SIDE

FACES_COUNTED = 2  # the landmarker looks for this many faces: enough to tell "one face" from "more"
HIST_SIDE = 64  # frames are shrunk to this square before the colour histogram
HIST_BINS = (16, 4, 4)  # hue, saturation, value bins of the shot-cut histogram
SHARP_SIDE = 128  # face crops are resized to this square before the Laplacian (scale-free sharpness)
MESH_POINTS = 468  # the face mesh without the irises: its box is the face box


@dataclass(frozen=True)
class FrameAnalysis:
    """Per-frame measurements of a video (F frames, largest face).

    landmarks: (F, 478, 3) float32 pixels of the original frame (NaN where no face);
    blendshapes: (F, 52) float32; found: (F,) bool; box: (F, 4) float32 x0, y0, x1, y1 pixels (NaN);
    second_face: (F,) float32 width of the second-largest face / the largest's (0 when alone);
    sharpness: (F,) float32 Laplacian variance of the face crop at SHARP_SIDE (NaN without a face);
    cut: (F,) float32 colour-histogram distance to the previous frame in [0, 1] (0 for frame 0);
    size: (width, height); seconds: {"decode": s, "track": s, "measure": s} spent.
    """

    landmarks: np.ndarray
    blendshapes: np.ndarray
    found: np.ndarray
    box: np.ndarray
    second_face: np.ndarray
    sharpness: np.ndarray
    cut: np.ndarray
    size: tuple[int, int]
    seconds: dict


def colour_histogram(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (prod(HIST_BINS),) float32 HSV histogram summing to 1."""
    small = cv2.resize(frame, (HIST_SIDE, HIST_SIDE), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, list(HIST_BINS), [0, 180, 0, 256, 0, 256]).ravel()
    return (hist / max(hist.sum(), 1.0)).astype(np.float32)


def face_sharpness(frame: np.ndarray, box: tuple[float, float, float, float]) -> float:
    """Variance of the Laplacian of the grey face crop resized to SHARP_SIDE (higher is sharper)."""
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return float("nan")
    grey = cv2.cvtColor(frame[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
    crop = cv2.resize(grey, (SHARP_SIDE, SHARP_SIDE), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(crop, cv2.CV_64F).var())


def _timed(frames, seconds: dict):
    """Yield from `frames`, adding the time spent producing them to seconds['decode']."""
    iterator = iter(frames)
    while True:
        start = time.perf_counter()
        try:
            frame = next(iterator)
        except StopIteration:
            return
        seconds["decode"] += time.perf_counter() - start
        yield frame


def analyse_frames(frames) -> FrameAnalysis:
    """Track and measure an iterable of (H, W, 3) uint8 RGB frames (see FrameAnalysis)."""
    seconds = {"decode": 0.0, "track": 0.0, "measure": 0.0}
    rows = {k: [] for k in ("landmarks", "blendshapes", "found", "box", "second_face", "sharpness", "cut")}
    size, previous = (0, 0), None
    with FaceLandmarker(video=False, max_faces=FACES_COUNTED) as landmarker:
        for frame in _timed(frames, seconds):
            h, w = frame.shape[:2]
            size = (w, h)
            scale = min(1.0, TRACK_MAX_SIDE / max(h, w))
            start = time.perf_counter()
            small = cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else frame
            faces = landmarker.detect(small)
            seconds["track"] += time.perf_counter() - start
            start = time.perf_counter()
            hist = colour_histogram(small)
            rows["cut"].append(0.0 if previous is None else 0.5 * float(np.abs(hist - previous).sum()))
            previous = hist
            _add_face(rows, faces, small, scale)
            seconds["measure"] += time.perf_counter() - start
    n = len(rows["found"])
    return FrameAnalysis(np.array(rows["landmarks"], np.float32).reshape(n, L.N_LANDMARKS, 3),
                         np.array(rows["blendshapes"], np.float32).reshape(n, L.N_BLENDSHAPES),
                         np.array(rows["found"], bool), np.array(rows["box"], np.float32).reshape(n, 4),
                         np.array(rows["second_face"], np.float32), np.array(rows["sharpness"], np.float32),
                         np.array(rows["cut"], np.float32), size, seconds)


def _add_face(rows: dict, faces: list, small: np.ndarray, scale: float) -> None:
    """Append one frame's largest face (or NaN rows) to `rows`; coordinates back at full size."""
    if not faces:
        rows["landmarks"].append(np.full((L.N_LANDMARKS, 3), np.nan, np.float32))
        rows["blendshapes"].append(np.zeros(L.N_BLENDSHAPES, np.float32))
        rows["found"].append(False)
        rows["box"].append(np.full(4, np.nan, np.float32))
        rows["second_face"].append(0.0)
        rows["sharpness"].append(np.nan)
        return
    face = faces[0]
    rows["landmarks"].append(face.landmarks / scale)
    rows["blendshapes"].append(face.blendshapes)
    rows["found"].append(True)
    rows["box"].append(np.array(face.box, np.float32) / scale)
    rows["second_face"].append(faces[1].width / face.width if len(faces) > 1 and face.width > 0 else 0.0)
    rows["sharpness"].append(face_sharpness(small, face.box))


def shot_bounds(cut: np.ndarray, threshold: float, min_frames: int) -> list[tuple[int, int]]:
    """(start, stop) frame ranges between cuts (histogram distance above `threshold`); shorter than
    min_frames are left out."""
    edges = [0] + [int(i) for i in np.flatnonzero(cut > threshold) if i > 0] + [len(cut)]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b - a >= min_frames]


def head_angles(landmarks: np.ndarray, found: np.ndarray, canonical: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame: (F, 3) yaw, pitch, roll (degrees) against the frontal canonical face, (F,) out-of-plane
    turn (degrees between the face's forward axis and the camera's: yaw and pitch together, roll aside)
    and (F,) rigid-fit residual (RMS, canonical IOD units); NaN without a face. landmarks (F, 478, 3) px."""
    angles = np.full((len(landmarks), 3), np.nan, np.float32)
    turn = np.full(len(landmarks), np.nan, np.float32)
    residual = np.full(len(landmarks), np.nan, np.float32)
    rigid = list(L.RIGID_POINTS)
    for f in np.flatnonzero(found):
        pose = fit_similarity(landmarks[f], canonical)
        angles[f] = rotation_to_euler(pose.rotation)
        turn[f] = np.degrees(np.arccos(np.clip(pose.rotation[2, 2], -1.0, 1.0)))
        back = pose.invert(landmarks[f][rigid].astype(np.float64))
        residual[f] = float(np.sqrt(np.mean(np.sum((back - canonical[rigid]) ** 2, axis=1))))
    return angles, turn, residual
