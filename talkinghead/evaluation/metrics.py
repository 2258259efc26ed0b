"""Talking-head quality metrics on tracked face landmarks, frames and audio. Pure functions, no I/O.

Every landmark series is MediaPipe face-mesh landmarks (T, 478, 3) in pixels, NaN where no face was
found; every distance is divided by the inter-ocular distance (IOD), so faces of any size compare.
See docs/evaluation.md for each metric's definition, its relation to published metrics and its limits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..face import landmarks as L
from ..face.pose import fit_similarity, head_euler, rotation_to_euler, upright_frame
from ..face.measure import eye_opening, interocular
from ..motion.types import runs

MAX_LAG_FRAMES = 8  # lip-sync offset search window, frames either way
SILENCE_MIN_SECONDS = 0.3  # silent stretches shorter than this are ignored (pauses inside speech)
SILENCE_SETTLE_SECONDS = 0.1  # after speech ends a mouth needs this long to close: not scored
SILENCE_ANTICIPATION_SECONDS = 0.1  # before speech starts lips already move: not scored
CLOSED_APERTURE = 0.03  # IOD: an inner-lip gap below this counts as closed lips
REST_TOLERANCE = 0.02  # IOD: within this above the portrait's own gap counts as its resting gap
STILL_TOLERANCE = 0.01  # IOD per frame: a mouth whose gap changes less than this is not moving
FREEZE_BAND = 0.02  # IOD: in speech, a mouth whose gap stays inside a band this wide is frozen
BLINK_FRACTION = 0.6  # a blink: eye opening below this share of the clip's median opening
BLINK_REFRACTORY_SECONDS = 0.25  # two dips closer than this are one blink
HEAD_REGION_SCALE = 1.8  # the head region is the face oval grown by this factor around its centre


# ------------------------------------------------------------------------------------------------
# series statistics
# ------------------------------------------------------------------------------------------------


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation over frames where both are finite; 0 when either does not vary (or < 3 frames)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return 0.0
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    if denominator < 1e-12:
        return 0.0
    return float((a * b).sum() / denominator)


@dataclass(frozen=True)
class LipSync:
    """Correlation of generated and real mouth-aperture series."""

    correlation: float  # at lag 0
    best_lag: int  # frames; positive: the generated mouth moves later than the real one
    best_correlation: float


def lagged_correlation(generated: np.ndarray, real: np.ndarray, max_lag: int = MAX_LAG_FRAMES) -> LipSync:
    """Pearson at lag 0 and the best lag within +-max_lag frames (generated[t + lag] vs real[t])."""
    n = min(len(generated), len(real))
    generated, real = np.asarray(generated[:n], np.float64), np.asarray(real[:n], np.float64)
    best_lag, best = 0, -np.inf
    for lag in sorted(range(-max_lag, max_lag + 1), key=abs):  # ties go to the smaller offset
        if lag >= 0:
            r = pearson(generated[lag:], real[:n - lag])
        else:
            r = pearson(generated[:n + lag], real[-lag:])
        if r > best + 1e-12:
            best_lag, best = lag, r
    return LipSync(pearson(generated, real), best_lag, float(best))


# ------------------------------------------------------------------------------------------------
# pose-normalized landmarks
# ------------------------------------------------------------------------------------------------


def pose_normalized(series: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each frame mapped onto `reference`'s pose and scale (similarity fit on RIGID_POINTS); NaN frames stay NaN."""
    out = np.full(series.shape, np.nan)
    for t, frame in enumerate(np.asarray(series, np.float64)):
        if np.isfinite(frame).all():
            out[t] = fit_similarity(frame, reference).invert(frame)
    return out


def head_rotations(series: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(T, 3) yaw, pitch, roll in degrees relative to `reference` (NaN where no face)."""
    out = np.full((len(series), 3), np.nan)
    for t, frame in enumerate(np.asarray(series, np.float64)):
        if np.isfinite(frame).all():
            out[t] = rotation_to_euler(fit_similarity(frame, reference).rotation)
    return out


def head_angles(series: np.ndarray, reference: np.ndarray, canonical: np.ndarray) -> np.ndarray:
    """(T, 3) yaw, pitch, roll in degrees of each frame's head relative to `reference`'s, about the head's
    own upright axes (face.pose.upright_frame of `canonical`, the expression basis's mean shape); NaN
    where no face.

    This is the convention of Motion's head angles (a driving video's are made this way, and the renderer
    turns the portrait's head by them), so a rendered request reads back as itself whatever way the
    portrait's head already faces. head_rotations reads the same turn about the camera's axes, where a
    roll of a head already turned sideways also shows as a pitch."""
    canonical = np.asarray(canonical, np.float64)
    frame = upright_frame(canonical)
    r0 = fit_similarity(np.asarray(reference, np.float64), canonical).rotation
    out = np.full((len(series), 3), np.nan)
    for t, landmarks in enumerate(np.asarray(series, np.float64)):
        if np.isfinite(landmarks).all():
            out[t] = head_euler(r0.T @ fit_similarity(landmarks, canonical).rotation, frame)
    return out


def rotation_spread(rotations: np.ndarray) -> float:
    """Root-mean-square over yaw, pitch and roll of each angle's standard deviation, degrees."""
    rotations = rotations[np.isfinite(rotations).all(1)]
    if len(rotations) < 2:
        return 0.0
    return float(np.sqrt((rotations.std(0) ** 2).mean()))


def lip_distance(generated: np.ndarray, real: np.ndarray, reference: np.ndarray) -> float:
    """Mouth landmark distance (LMD): mean distance of the lip landmarks after removing head pose, in IOD.

    Both series are pose-normalized onto `reference` (the portrait's landmarks), so only lip shape
    and position relative to the skull count. Frames where either has no face are skipped.
    """
    n = min(len(generated), len(real))
    lips = list(L.LIPS_ALL)
    g = pose_normalized(generated[:n], reference)[:, lips, :2]
    r = pose_normalized(real[:n], reference)[:, lips, :2]
    ok = np.isfinite(g).all((1, 2)) & np.isfinite(r).all((1, 2))
    if not ok.any():
        return float("nan")
    return float(np.linalg.norm(g[ok] - r[ok], axis=-1).mean() / interocular(reference))


def jitter(series: np.ndarray, reference: np.ndarray) -> float:
    """Mean frame-to-frame acceleration of pose-normalized landmarks, IOD per frame squared.

    Counts real motion too, so it is read as a ratio against a real video of the same face.
    """
    normalized = pose_normalized(series, reference)[..., :2]
    acceleration = normalized[2:] - 2 * normalized[1:-1] + normalized[:-2]
    magnitudes = np.linalg.norm(acceleration, axis=-1)
    ok = np.isfinite(magnitudes).all(1)
    if not ok.any():
        return float("nan")
    return float(magnitudes[ok].mean() / interocular(reference))


# ------------------------------------------------------------------------------------------------
# mouth at rest in silence
# ------------------------------------------------------------------------------------------------


def scored_silence(voiced: np.ndarray, fps: float) -> np.ndarray:
    """Frames inside silent stretches of at least SILENCE_MIN_SECONDS, minus settling and anticipation.

    A stretch that touches the clip's start or end has no speech on that side, so nothing is cut there.
    """
    voiced = np.asarray(voiced, bool)
    scored = np.zeros(len(voiced), bool)
    settle = int(round(SILENCE_SETTLE_SECONDS * fps))
    anticipate = int(round(SILENCE_ANTICIPATION_SECONDS * fps))
    for start, stop in runs(~voiced):
        if stop - start < SILENCE_MIN_SECONDS * fps:
            continue
        first = start + (settle if start > 0 else 0)
        last = stop - (anticipate if stop < len(voiced) else 0)
        scored[first:max(first, last)] = True
    return scored


def mouth_at_rest(apertures: np.ndarray, rest_aperture: float) -> np.ndarray:
    """Per frame: lips closed or at most REST_TOLERANCE above the portrait's own gap, and not moving."""
    apertures = np.asarray(apertures, np.float64)
    limit = max(CLOSED_APERTURE, rest_aperture + REST_TOLERANCE)
    still = np.abs(np.diff(apertures, prepend=apertures[:1])) <= STILL_TOLERANCE
    return np.isfinite(apertures) & (apertures <= limit) & still


def silence_rest_share(apertures: np.ndarray, voiced: np.ndarray, rest_aperture: float, fps: float) -> float:
    """Share of scored silent frames (see scored_silence) in which the mouth is at rest; NaN if none."""
    n = min(len(apertures), len(voiced))
    scored = scored_silence(voiced[:n], fps)
    if not scored.any():
        return float("nan")
    return float(mouth_at_rest(apertures[:n], rest_aperture)[scored].mean())


def longest_freeze_seconds(apertures: np.ndarray, voiced: np.ndarray, fps: float) -> float:
    """Longest stretch of voiced frames over which the mouth gap stays within a FREEZE_BAND-wide band."""
    n = min(len(apertures), len(voiced))
    apertures = np.asarray(apertures[:n], np.float64)
    longest = 0
    for start, stop in runs(np.asarray(voiced[:n], bool) & np.isfinite(apertures)):
        segment = apertures[start:stop]
        first = 0
        for last in range(len(segment)):  # sliding window: shrink from the left until inside the band
            while segment[first:last + 1].max() - segment[first:last + 1].min() > FREEZE_BAND:
                first += 1
            longest = max(longest, last + 1 - first)
    return longest / fps


# ------------------------------------------------------------------------------------------------
# eyes
# ------------------------------------------------------------------------------------------------


def blink_frames(series: np.ndarray, fps: float) -> list[int]:
    """Frame index of each blink: eye opening dipping below BLINK_FRACTION of the clip's median."""
    opening = eye_opening(series)
    ok = np.isfinite(opening)
    if ok.sum() < 3:
        return []
    closed = ok & (opening < BLINK_FRACTION * np.median(opening[ok]))
    onsets, last = [], -np.inf
    for start, _ in runs(closed):
        if start - last >= BLINK_REFRACTORY_SECONDS * fps:
            onsets.append(start)
        last = start
    return onsets


def blinks_per_minute(series: np.ndarray, fps: float) -> float:
    """Blink count scaled to a minute."""
    return len(blink_frames(series, fps)) * 60.0 * fps / max(len(series), 1)


# ------------------------------------------------------------------------------------------------
# pixels: background and sharpness
# ------------------------------------------------------------------------------------------------


def head_region(shape: tuple[int, int], face_landmarks: np.ndarray, scale: float = HEAD_REGION_SCALE) -> np.ndarray:
    """(H, W) bool: the face-oval polygon grown by `scale` around its centre (covers hair, ears and neck)."""
    import cv2

    oval = np.asarray(face_landmarks, np.float64)[list(L.FACE_OVAL), :2]
    centre = oval.mean(0)
    grown = centre + (oval - centre) * scale
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(grown).astype(np.int32)], 1)
    return mask.astype(bool)


def background_change(frame: np.ndarray, first: np.ndarray, head: np.ndarray) -> float:
    """Mean absolute difference (grey levels, 0-255) between two frames outside the head region."""
    outside = ~head
    if not outside.any():
        return 0.0
    diff = np.abs(frame.astype(np.int16) - first.astype(np.int16)).mean(-1)
    return float(diff[outside].mean())


def face_sharpness(frame: np.ndarray, face_landmarks: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image inside the face oval's bounding box."""
    import cv2

    oval = np.asarray(face_landmarks, np.float64)[list(L.FACE_OVAL), :2]
    h, w = frame.shape[:2]
    x0, y0 = np.clip(np.floor(oval.min(0)).astype(int), 0, [w - 1, h - 1])
    x1, y1 = np.clip(np.ceil(oval.max(0)).astype(int), 1, [w, h])
    grey = cv2.cvtColor(np.ascontiguousarray(frame[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    if grey.size < 16:
        return float("nan")
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())

