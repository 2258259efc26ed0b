"""The eyelids' geometry: how the lids follow gaze, and how they close.

Gaze moves the irises and the lids with them on the canonical face (`gaze_lids`); a blink is made
afterwards on target pixels (`close_lids`), once the head's clamp has placed the open lids, so that
the lids meet on the lower lid as it is shown (see PortraitRig.targets). The indices are MediaPipe's
(face.landmarks): per eye the upper and lower lid (paired point for point), the ring above the upper
lid (lashes, liner) and the crease below the brow.
"""

from __future__ import annotations

import numpy as np

from ..face import landmarks as L

BLINK_MEET = 0.05  # closed lids meet this far up from the lower lid (fraction of the opening)
LID_FOLLOWS_GAZE = (0.6, 0.3)  # share of the iris's vertical move the upper and lower lid follow
LID_FOLD_FOLLOWS_BLINK = 1.0  # share of the upper lid's blink move the ring above it (lashes, liner) follows
LID_CREASE_FOLLOWS_BLINK = 0.7  # ... and the crease below the brow (the closed lid's skin is stretched over both bands)
LID_RIDES_IRIS = 0.5  # share of the iris's sideways move the upper lid's arch follows
LID_FOLD_FOLLOWS_GAZE = 0.5  # share of the upper lid's gaze move the ring above it follows
BLINK_OVERLAP = 1.0  # the lids meet exactly (the eye-opening triangles may collapse)


def slide_profile(points: np.ndarray, dx: float, weight: np.ndarray) -> np.ndarray:
    """(n,) change in height of lid points (n, 3, ordered along the lid) whose outline slides sideways
    by dx, scaled by weight (n,) (0 keeps a point, e.g. at the corners)."""
    order = np.argsort(points[:, 0])
    moved = np.interp(points[:, 0] - dx, points[order, 0], points[order, 1])
    return weight * (moved - points[:, 1])


# per eye (right, left): its eyeBlink coefficient, upper lid, lower lid, ring above the lid, crease,
# iris, outer and inner corner
EYES = ((L.BLENDSHAPE_INDEX["eyeBlinkRight"], L.EYE_RIGHT_UPPER_LID, L.EYE_RIGHT_LOWER_LID, L.EYE_RIGHT_LID_FOLD,
         L.EYE_RIGHT_CREASE, L.IRIS_RIGHT, L.EYE_RIGHT_OUTER_CORNER, L.EYE_RIGHT_INNER_CORNER),
        (L.BLENDSHAPE_INDEX["eyeBlinkLeft"], L.EYE_LEFT_UPPER_LID, L.EYE_LEFT_LOWER_LID, L.EYE_LEFT_LID_FOLD,
         L.EYE_LEFT_CREASE, L.IRIS_LEFT, L.EYE_LEFT_OUTER_CORNER, L.EYE_LEFT_INNER_CORNER))


def gaze_lids(canon: np.ndarray, rest_expression: np.ndarray, expression: np.ndarray, gaze: np.ndarray):
    """Move the irises for gaze, and the lids with them (canonical, in place); returns the lid
    closures (right, left) that `close_lids` applies later and the irises' gaze shifts (2, 3,
    canonical). The irises do not move with the lids (a closing lid covers them)."""
    closures, shifts = [], []
    for k, upper, lower, fold, crease, iris, outer, inner in EYES:
        rest = float(rest_expression[k])
        closures.append(float(np.clip((expression[k] - rest) / max(1.0 - rest, 1e-3), 0.0, 1.0)))
        up, lo = canon[list(upper)], canon[list(lower)]
        eye_width = float(np.linalg.norm(canon[outer, :2] - canon[inner, :2]))
        shift = np.zeros(3)
        shift[:2] = np.asarray(gaze, float) * eye_width
        canon[list(iris)] += shift
        # the lids follow the eye up and down (as real lids do), most in the middle and not at the
        # corners (the opening's height profile), so a vertical gaze shows and the corners stay
        gap = np.maximum(lo[:, 1] - up[:, 1], 0.0)
        taper = gap / max(float(gap.max()), 1e-6)
        # ... and the upper lid's arch slides sideways with the eye (it rides on the cornea)
        arch = slide_profile(up, LID_RIDES_IRIS * shift[0], taper)
        canon[list(upper), 1] += LID_FOLLOWS_GAZE[0] * shift[1] * taper + arch
        canon[list(fold), 1] += LID_FOLD_FOLLOWS_GAZE * (LID_FOLLOWS_GAZE[0] * shift[1] * taper + arch)
        canon[list(lower), 1] += LID_FOLLOWS_GAZE[1] * shift[1] * taper
        shifts.append(shift)
    return (closures[0], closures[1]), np.array(shifts)


def close_lids(points: np.ndarray, closures: tuple[float, float]) -> None:
    """Close the lids geometrically on target pixels (V, 2), in place: each upper-lid point comes
    down to its lower-lid partner (full closure at 1), the ring above the lid (lashes, liner) with
    it, so a closing lid comes down with its own lash line, and the crease below the brow part of
    the way. Made on the pixels the head's clamp left, so the lids meet where the lower lid is shown."""
    for closure, (_, upper, lower, fold, crease, *_) in zip(closures, EYES):
        if closure <= 0:
            continue
        up, lo = points[list(upper)], points[list(lower)]
        lid_move = closure * BLINK_OVERLAP * (1 - BLINK_MEET) * (lo - up)
        points[list(fold)] += LID_FOLD_FOLLOWS_BLINK * lid_move
        points[list(crease)] += LID_CREASE_FOLLOWS_BLINK * lid_move
        points[list(upper)] = up + lid_move
        points[list(lower)] = lo + closure * BLINK_OVERLAP * BLINK_MEET * (up - lo)
