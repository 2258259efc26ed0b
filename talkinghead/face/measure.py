"""Measurements on face landmarks, shared by evaluation, training scripts and tests.

All take MediaPipe face-mesh landmarks, one face (478, 2|3) or a series (T, 478, 2|3), in pixels, and
return scale-free figures (distances over the inter-ocular distance), so faces of any size compare.
"""

from __future__ import annotations

import numpy as np

from . import landmarks as L


def interocular(landmarks: np.ndarray) -> np.ndarray:
    """Distance between the outer eye corners, pixels: a float for one face, (T,) for a series."""
    lm = np.asarray(landmarks, np.float64)
    return np.linalg.norm(lm[..., L.EYE_LEFT_OUTER_CORNER, :2] - lm[..., L.EYE_RIGHT_OUTER_CORNER, :2], axis=-1)


def mouth_aperture(landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip gap (mid upper to mid lower inner lip) over the inter-ocular distance.

    About 0 with closed lips; real speakers reach 0.1-0.4 on open vowels.
    """
    lm = np.asarray(landmarks, np.float64)
    gap = np.linalg.norm(lm[..., L.LIP_LOWER_INNER_MID, :2] - lm[..., L.LIP_UPPER_INNER_MID, :2], axis=-1)
    return gap / interocular(lm)


def mouth_width(landmarks: np.ndarray) -> np.ndarray:
    """Mouth-corner distance over the inter-ocular distance (spread lips widen it, rounded lips narrow it)."""
    lm = np.asarray(landmarks, np.float64)
    width = np.linalg.norm(lm[..., L.MOUTH_CORNER_LEFT, :2] - lm[..., L.MOUTH_CORNER_RIGHT, :2], axis=-1)
    return width / interocular(lm)


def eye_opening(landmarks: np.ndarray) -> np.ndarray:
    """Mean lid gap of both eyes (upper to lower lid, middle points) over the inter-ocular distance."""
    lm = np.asarray(landmarks, np.float64)
    gaps = []
    for upper, lower in ((L.EYE_RIGHT_UPPER_LID, L.EYE_RIGHT_LOWER_LID), (L.EYE_LEFT_UPPER_LID, L.EYE_LEFT_LOWER_LID)):
        mid_upper, mid_lower = upper[len(upper) // 2], lower[len(lower) // 2]
        gaps.append(np.linalg.norm(lm[..., mid_upper, :2] - lm[..., mid_lower, :2], axis=-1))
    return (gaps[0] + gaps[1]) / 2 / interocular(lm)


BLINK_ON, BLINK_OFF = 0.5, 0.25  # blink event thresholds, shares of the eyeBlink score's range
CLOSED_LIPS_GAP = 0.02  # IOD: an inner-lip gap below this is closed lips (tracking noise is about 0.01)
BLINK_MIN_RANGE = 0.1  # a score series that varies less than this has no blinks


def blink_score(blendshapes: np.ndarray) -> np.ndarray:
    """(T,) mean eyeBlink score of both eyes from (T, 52) blendshape scores."""
    return np.asarray(blendshapes)[:, [L.BLENDSHAPE_INDEX[n] for n in L.BLINK_COEFFS]].mean(1)


def count_blinks(score: np.ndarray) -> int:
    """Blink events in a (T,) eyeBlink score series, the same rule for any video: the score rises above
    its median + BLINK_ON of its range (median to 99th percentile) and falls back below median +
    BLINK_OFF of it (hysteresis); a series whose range is under BLINK_MIN_RANGE has none."""
    s = np.nan_to_num(score, nan=float(np.nanmedian(score)))
    level = float(np.median(s))
    span = float(np.percentile(s, 99)) - level
    if span < BLINK_MIN_RANGE:
        return 0
    count, closed = 0, False
    for x in s:
        if not closed and x > level + BLINK_ON * span:
            count, closed = count + 1, True
        elif closed and x < level + BLINK_OFF * span:
            closed = False
    return count
