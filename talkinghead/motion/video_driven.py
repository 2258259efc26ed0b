"""Video-driven motion: a tracked driving video retargeted onto any portrait.

`retarget(track)` turns a driving video's per-frame landmarks and blendshape scores into motion
*relative to one reference frame of that video* (its first frame, or its most neutral one), so the
driver's own face shape never reaches the portrait:

- head: the similarity fit of the rigid points (face.fit_similarity against the canonical face of the
  expression basis), as a rotation, translation and scale relative to the reference frame's pose,
  decomposed about the renderer's head pivot (large rotations softly limited, HEAD_SOFT_LIMIT_DEG);
- expression: the change of every blendshape score from the reference frame (added to the portrait's
  own scores by `VideoDrivenMotion`);
- eyelids: the change of each eye's lid gap from the reference frame, as a closure fraction (the
  portrait's lids close by the same share: geometric, so a driver's blink closes the portrait's eyes
  however MediaPipe scores it; near-closed lids count as shut, see BLINK_KNEE);
- mouth: the change of the inner-lip gap from the reference frame, in inter-ocular distances; on
  playback the mouth coefficients are adjusted (`LipGapFit`) so that the expression basis parts the
  portrait's lips by the same amount (MediaPipe's jawOpen and lip scores through the fitted basis
  alone open them only about 0.4-0.85 times as far as the driver's, and cannot close a portrait
  whose mouth is open at rest);
- gaze: the iris centre's offset within the eye (eye widths, canonical face frame) from the reference.

`VideoDrivenMotion` is the `MotionSource` that plays it back in step with the audio frames pushed:
output frame i shows driving time i / fps, linearly interpolated between the driver's frames (its own
frame rate may differ). When the driver is shorter than the audio, its last frame is held.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..face import landmarks as L
from ..audio.features import AudioFeatures
from ..errors import TalkingHeadError
from ..face.expression import ExpressionBasis, load_basis
from ..face.pose import HEAD_PIVOT, fit_similarity, head_euler, upright_frame  # the renderer's rotation centre too
from ..face.tracking import VideoTrack
from .types import N_HEAD, Motion, interpolate_rows

log = logging.getLogger(__name__)

# Rotations beyond this are compressed (limit * tanh(angle / limit)): a 2D warp cannot show the sides
# of a head the portrait does not, and tears the background past ~20 degrees of yaw.
HEAD_SOFT_LIMIT_DEG = 18.0
HEAD_SMOOTH_FRAMES = 1.0  # Gaussian sigma (driver frames) on head pose and gaze: removes tracker jitter
REFERENCES = ("first", "neutral")
NEUTRAL_SEARCH_MAX_FRAMES = 250  # the most neutral frame is looked for among the first ones
# A driver's lid closure c (share of its reference gap) is kept up to BLINK_KNEE (squints, lowered
# gaze) and stretched above it so that BLINK_FULL already shuts the lids: MediaPipe rarely sees a
# blinking driver's lids meet (measured closure peaks of the real clips' blinks: 0.55-1.0), and the
# renderer draws nearly closed lids as a blur rather than a blink.
BLINK_KNEE, BLINK_FULL = 0.45, 0.65
GAZE_HOLD_CLOSURE = 0.4  # while lids are closed further than this, iris positions are unreliable: hold gaze
MIN_FOUND_SHARE = 0.5  # a driver whose face is found in fewer frames is rejected

# mouth: the coefficients adjusted so the basis reproduces the driver's inner-lip gap change: the
# openers (jaw, lower lip down, upper lip up) and the closers (lower lip shrugged up, lips pressed)
MOUTH_FIT_COEFFS = ("jawOpen", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight",
                    "mouthShrugLower", "mouthPressLeft", "mouthPressRight")
MOUTH_FIT_STEPS = 50  # bisection steps of the per-frame fit
MOUTH_FIT_REACH = 20.0  # bisection range of the fit's step size (coefficient change per unit gap effect)


@dataclass(frozen=True)
class DrivingMotion:
    """A driving video's motion relative to its reference frame, independent of any portrait.

    fps: the driver's frame rate. F frames:
    expression: (F, 52) float32 change of blendshape scores from the reference frame; the eyeBlink
        rows hold each eye's lid closure fraction instead (0 = as open as in the reference, 1 = shut).
    head: (F, 6) float32 pose change from the reference frame (Motion.head's fields and units).
    gaze: (F, 2) float32 iris offset change from the reference frame, eye widths (x right, y down).
    lip_gap: (F,) float32 change of the inner-lip gap from the reference frame, canonical IOD units.
    reference: index of the reference frame.
    """

    fps: float
    expression: np.ndarray
    head: np.ndarray
    gaze: np.ndarray
    lip_gap: np.ndarray
    reference: int

    def __len__(self) -> int:
        return len(self.expression)

    @property
    def seconds(self) -> float:
        """Duration of the driver."""
        return len(self) / self.fps


def retarget(track: VideoTrack, reference: str = "first", basis: ExpressionBasis | None = None,
             name: str = "driving video") -> DrivingMotion:
    """Tracked driving video -> motion relative to its `reference` frame ('first' or 'neutral')."""
    if reference not in REFERENCES:
        raise ValueError(f"reference must be one of {REFERENCES}, got {reference!r}")
    found = np.asarray(track.found, bool)
    if len(found) == 0 or found.mean() < MIN_FOUND_SHARE:
        share = 0.0 if len(found) == 0 else 100 * found.mean()
        raise TalkingHeadError(f"a face is visible in only {share:.0f}% of the frames of {name}: use a driving "
                               "video where one face is visible throughout (frontal or three-quarter)")
    basis = basis or load_basis()
    landmarks = _fill_gaps(track.landmarks.astype(np.float64), found)  # (F, 478, 3)
    scores = _fill_gaps(track.blendshapes.astype(np.float64), found)  # (F, 52)
    poses = [fit_similarity(lm, basis.mean_shape) for lm in landmarks]
    canonical = np.stack([pose.invert(lm) for pose, lm in zip(poses, landmarks)])  # (F, 478, 3) head pose removed
    ref = 0 if reference == "first" else _most_neutral(scores, canonical, found)
    if not found[ref]:
        ref = int(np.flatnonzero(found)[0])

    head = _relative_head(poses, ref, upright_frame(basis.mean_shape))
    closure = _lid_closure(canonical, ref)  # (F, 2) right eye, left eye
    gaze = _gaze(canonical, closure, ref)
    expression = scores - scores[ref]
    expression[:, L.BLENDSHAPE_INDEX["eyeBlinkRight"]] = closure[:, 0]
    expression[:, L.BLENDSHAPE_INDEX["eyeBlinkLeft"]] = closure[:, 1]
    lip_gap = _lip_gap(canonical) - _lip_gap(canonical[ref:ref + 1])
    head = _smooth(head, HEAD_SMOOTH_FRAMES)
    head[:, :3] = HEAD_SOFT_LIMIT_DEG * np.tanh(head[:, :3] / HEAD_SOFT_LIMIT_DEG)
    gaze = _smooth(gaze, HEAD_SMOOTH_FRAMES)
    return DrivingMotion(float(track.fps), expression.astype(np.float32), head.astype(np.float32),
                         gaze.astype(np.float32), lip_gap.astype(np.float32), int(ref))


# --- retargeting steps ---------------------------------------------------------------------------

def _fill_gaps(values: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Frames without a face take the nearest tracked frame's values (earlier one on ties)."""
    if found.all():
        return values
    ok = np.flatnonzero(found)
    idx = np.arange(len(found))
    pos = np.clip(np.searchsorted(ok, idx), 0, len(ok) - 1)
    before = ok[np.maximum(pos - 1, 0)]
    after = ok[pos]
    nearest = np.where(np.abs(idx - before) <= np.abs(after - idx), before, after)
    return values[nearest]


def _most_neutral(scores: np.ndarray, canonical: np.ndarray, found: np.ndarray) -> int:
    """The frame with the least expression: small blendshape scores (gaze aside) and a closed mouth."""
    n = min(len(scores), NEUTRAL_SEARCH_MAX_FRAMES)
    skip = [L.BLENDSHAPE_INDEX[k] for k in L.GAZE_COEFFS + L.BLINK_COEFFS]
    keep = np.setdiff1d(np.arange(L.N_BLENDSHAPES), skip)
    activity = scores[:n][:, keep].sum(1) + 5.0 * _lip_gap(canonical[:n])
    activity[~found[:n]] = np.inf
    return int(np.argmin(activity))


def _relative_head(poses, ref: int, frame: np.ndarray) -> np.ndarray:
    """(F, 6) yaw, pitch, roll (degrees, about the upright axes `frame`: face.pose.head_euler), tx, ty
    (IOD), scale of every frame relative to frame `ref`.

    With the reference pose (s0, R0, T0), frame f's pose (s, R, T) is the renderer's head motion
    rot = R0^T R, scale = s / s0, and t = R0^T (T - T0) / s0 - pivot + scale * rot pivot (the renderer
    rotates and scales about HEAD_PIVOT, then translates, all in the canonical frame).
    """
    r0, s0, t0 = poses[ref].rotation, poses[ref].scale, poses[ref].translation
    out = np.zeros((len(poses), N_HEAD))
    for f, pose in enumerate(poses):
        rot = r0.T @ pose.rotation
        scale = pose.scale / s0
        shift = r0.T @ (pose.translation - t0) / s0 - HEAD_PIVOT + scale * rot @ HEAD_PIVOT
        out[f, :3] = head_euler(rot, frame)
        out[f, 3:5] = shift[:2]
        out[f, 5] = scale
    return out


def _lip_gap(canonical: np.ndarray) -> np.ndarray:
    """(F,) inner-lip gap (mid upper to mid lower inner lip) in canonical IOD units."""
    return canonical[:, L.LIP_LOWER_INNER_MID, 1] - canonical[:, L.LIP_UPPER_INNER_MID, 1]


def _eye_gaps(canonical: np.ndarray) -> np.ndarray:
    """(F, 2) lid gap of the right and left eye, canonical IOD units (mean over the paired lid points)."""
    gaps = []
    for upper, lower in ((L.EYE_RIGHT_UPPER_LID, L.EYE_RIGHT_LOWER_LID), (L.EYE_LEFT_UPPER_LID, L.EYE_LEFT_LOWER_LID)):
        inner = slice(2, 5)  # the three middle pairs: the corners barely move on a blink
        gaps.append((canonical[:, list(lower[inner]), 1] - canonical[:, list(upper[inner]), 1]).mean(1))
    return np.stack(gaps, 1)


def _lid_closure(canonical: np.ndarray, ref: int) -> np.ndarray:
    """(F, 2) share of each eye's reference lid gap that is closed, in [0, 1] (blinks stretched to 1)."""
    gaps = _eye_gaps(canonical)
    closure = np.clip(1.0 - gaps / np.maximum(gaps[ref], 1e-6), 0.0, 1.0)
    stretched = BLINK_KNEE + (closure - BLINK_KNEE) * (1.0 - BLINK_KNEE) / (BLINK_FULL - BLINK_KNEE)
    return np.clip(np.where(closure > BLINK_KNEE, stretched, closure), 0.0, 1.0)


def _gaze(canonical: np.ndarray, closure: np.ndarray, ref: int) -> np.ndarray:
    """(F, 2) mean iris offset of both eyes from the reference frame's, in eye widths."""
    offsets = []
    for iris, outer, inner in ((L.IRIS_RIGHT[0], L.EYE_RIGHT_OUTER_CORNER, L.EYE_RIGHT_INNER_CORNER),
                               (L.IRIS_LEFT[0], L.EYE_LEFT_OUTER_CORNER, L.EYE_LEFT_INNER_CORNER)):
        middle = (canonical[:, outer, :2] + canonical[:, inner, :2]) / 2
        width = np.linalg.norm(canonical[:, outer, :2] - canonical[:, inner, :2], axis=1)
        offsets.append((canonical[:, iris, :2] - middle) / width[:, None])
    gaze = (offsets[0] + offsets[1]) / 2
    gaze = gaze - gaze[ref]
    closed = closure.max(1) > GAZE_HOLD_CLOSURE
    for f in range(1, len(gaze)):  # hold the last open-eye gaze through blinks
        if closed[f]:
            gaze[f] = gaze[f - 1]
    return gaze


def _smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """Zero-phase Gaussian smoothing along time (edges reflected)."""
    if sigma <= 0 or len(values) < 3:
        return values
    radius = int(np.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    padded = np.pad(values, [(radius, radius)] + [(0, 0)] * (values.ndim - 1), mode="reflect")
    return np.stack([np.convolve(padded[:, j], taps, mode="valid") for j in range(values.shape[1])], 1)


# --- playback --------------------------------------------------------------------------------------

class VideoDrivenMotion:
    """MotionSource replaying a DrivingMotion on a portrait, one output frame per audio frame pushed.

    Output frame i shows driving time i / fps * head_speed for the head and i / fps for the rest,
    linearly interpolated between driver frames; past the driver's end its last frame is held (a
    warning says so once). Expression = the portrait's own scores + the driver's change (eyelids:
    closed by the driver's closure fraction). Decides every frame at once (lookahead 0).
    """

    lookahead = 0

    def __init__(self, driving: DrivingMotion, head_speed: float = 1.0, basis: ExpressionBasis | None = None):
        self.driving = driving
        self.head_speed = head_speed
        self.basis = basis

    def start(self, rest_expression: np.ndarray, fps: float) -> None:
        """Begin a clip for a portrait whose own scores are `rest_expression` (52,)."""
        self.rest = np.asarray(rest_expression, np.float32).copy()
        self.fps = float(fps)
        self._lips = LipGapFit(self.basis or load_basis(), self.rest)
        self._frame = 0
        self._warned = False

    def push(self, features: AudioFeatures) -> Motion:
        """Emit as many frames as audio frames were pushed."""
        return self._emit(len(features))

    def flush(self) -> Motion:
        """Nothing is held back."""
        return Motion.empty()

    def _emit(self, count: int) -> Motion:
        if count == 0:
            return Motion.empty()
        frames = np.arange(self._frame, self._frame + count)
        self._frame += count
        d = self.driving
        t = frames / self.fps
        if not self._warned and t[-1] > d.seconds - 0.5 / d.fps:
            log.warning("the driving video (%.1f s) is shorter than the audio: its last frame is held", d.seconds)
            self._warned = True
        delta = interpolate_rows(d.expression, t * d.fps)
        gaze = interpolate_rows(d.gaze, t * d.fps)
        head = interpolate_rows(d.head, t * self.head_speed * d.fps)
        expression = self.rest[None] + delta
        for name in L.BLINK_COEFFS:
            k = L.BLENDSHAPE_INDEX[name]
            expression[:, k] = self.rest[k] + (1.0 - self.rest[k]) * delta[:, k]
        np.clip(expression, 0.0, 1.0, out=expression)
        expression = self._lips.fit(expression, interpolate_rows(d.lip_gap[:, None], t * d.fps)[:, 0])
        return Motion(expression.astype(np.float32), head.astype(np.float32), gaze.astype(np.float32))


class LipGapFit:
    """Adjusts mouth coefficients so the expression basis gives a wanted inner-lip gap change.

    The renderer moves the portrait's landmarks by basis . (expression - rest); the gap between the
    middle inner-lip points therefore changes by G . (expression - rest), G (52,) being each row's gap
    effect (blink and gaze rows are drawn geometrically and left out). Per frame, the smallest change
    of MOUTH_FIT_COEFFS along G (steepest ascent, so the coefficients that move the lips most move
    most) that reaches the target is found by bisection, each coefficient kept within [0, the basis'
    fitted range]; targets beyond reach get as close as the bounds allow.
    """

    def __init__(self, basis: ExpressionBasis, rest: np.ndarray):
        self.rest = np.asarray(rest, np.float64)
        gap = basis.basis[:, L.LIP_LOWER_INNER_MID, 1] - basis.basis[:, L.LIP_UPPER_INNER_MID, 1]
        gap = gap.astype(np.float64)
        gap[[L.BLENDSHAPE_INDEX[k] for k in L.BLINK_COEFFS + L.GAZE_COEFFS]] = 0.0
        self.gap = gap  # (52,) gap change per unit coefficient
        self.ids = np.array([L.BLENDSHAPE_INDEX[k] for k in MOUTH_FIT_COEFFS])
        self.high = np.maximum(basis.coefficient_max[self.ids].astype(np.float64), self.rest[self.ids])

    def fit(self, expression: np.ndarray, target: np.ndarray) -> np.ndarray:
        """expression (T, 52), wanted gap change from the portrait's (T,) canonical IOD -> new (T, 52)."""
        expression = np.asarray(expression, np.float64).copy()
        need = np.asarray(target, np.float64) - (expression - self.rest) @ self.gap  # (T,)
        start = expression[:, self.ids]  # (T, K)
        g = self.gap[self.ids]  # (K,)

        def moved(step):  # (T,) -> (T, K) coefficients after a step along g, within bounds
            return np.clip(start + step[:, None] * g[None], 0.0, self.high[None])

        lo = np.full(len(need), -MOUTH_FIT_REACH)
        hi = np.full(len(need), MOUTH_FIT_REACH)
        for _ in range(MOUTH_FIT_STEPS):  # the gap change grows monotonically with the step
            mid = (lo + hi) / 2
            short = (moved(mid) - start) @ g < need
            lo = np.where(short, mid, lo)
            hi = np.where(short, hi, mid)
        expression[:, self.ids] = moved((lo + hi) / 2)
        return expression


