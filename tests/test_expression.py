"""The expression basis (shapes, units, held-out reconstruction on real clips) and the rig that applies it.

Held-out tests refit the basis with the fitting script's own helpers (scripts/fit_expression_basis.py):
per-clip-centred ridge regression of canonical landmark displacement on blendshape change.
Rig tests render a Motion and check the result: the rest pose reproduces the portrait, and what the rig
says it moves (jaw, head, lids, irises) really moves in the image.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from talkinghead.face import landmarks as L
from talkinghead.face.expression import load_basis
from talkinghead.face.landmarker import FaceLandmarker
from talkinghead.io import load_image
from talkinghead.motion.types import HEAD_FIELDS, Motion
from talkinghead.pipeline import prepare_portrait
from talkinghead.render.renderer import Renderer
from talkinghead.face.tracking import track_video

import talkinghead
from repo_scripts import load_script

REPO = Path(talkinghead.__file__).resolve().parents[1]  # the source checkout (editable install)
TRACK_CACHE = REPO / "build" / "tracks"  # ignored by git; the fitting script caches its tracks here
IDX = L.BLENDSHAPE_INDEX


def load_fit_script():
    """scripts/fit_expression_basis.py as a module (its helpers: normalise_reference, align_all, ridge)."""
    return load_script("scripts/fit_expression_basis.py")


FIT = load_fit_script()
MOUTH_COLS = np.array([[3 * i, 3 * i + 1, 3 * i + 2] for i in FIT.MOUTH_POINTS]).ravel()


# ------------------------------------------------------------------------------------------------
# the committed basis
# ------------------------------------------------------------------------------------------------


def test_basis_shapes_and_units():
    b = load_basis()
    assert b.mean_shape.shape == (L.N_LANDMARKS, 3) and b.mean_shape.dtype == np.float32
    assert b.basis.shape == (L.N_BLENDSHAPES, L.N_LANDMARKS, 3) and b.basis.dtype == np.float32
    assert np.isfinite(b.basis).all() and np.isfinite(b.mean_shape).all()
    # canonical frame: centred on the rigid points, outer eye corners 1 unit apart (IOD units)
    iod = np.linalg.norm(b.mean_shape[L.EYE_LEFT_OUTER_CORNER] - b.mean_shape[L.EYE_RIGHT_OUTER_CORNER])
    assert iod == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(b.mean_shape[list(L.RIGID_POINTS)].mean(0), 0.0, atol=1e-4)
    # x right, y down: the subject's left eye (263) is on the image's right; the chin is below the eyes
    assert b.mean_shape[L.EYE_LEFT_OUTER_CORNER, 0] > b.mean_shape[L.EYE_RIGHT_OUTER_CORNER, 0]
    assert b.mean_shape[L.CHIN, 1] > b.mean_shape[L.EYE_LEFT_OUTER_CORNER, 1] + 1.0
    assert b.meta["units"] == "inter-ocular distance"
    cmax = b.coefficient_max
    assert cmax.shape == (L.N_BLENDSHAPES,) and (cmax >= 0).all() and (cmax <= 1).all()
    assert cmax[IDX["jawOpen"]] > 0.1  # the fitting clips do open their mouths


def test_basis_displacement_is_linear_and_skips_rows():
    b = load_basis()
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-0.3, 0.3, (2, L.N_BLENDSHAPES)).astype(np.float32)
    np.testing.assert_allclose(b.displacement(x + y), b.displacement(x) + b.displacement(y), atol=1e-5)
    np.testing.assert_allclose(b.displacement(2 * x), 2 * b.displacement(x), atol=1e-5)
    assert b.displacement(np.zeros(L.N_BLENDSHAPES)).shape == (L.N_LANDMARKS, 3)
    np.testing.assert_array_equal(b.displacement(np.zeros(L.N_BLENDSHAPES)), 0.0)
    only_jaw = np.zeros(L.N_BLENDSHAPES, np.float32)
    only_jaw[IDX["jawOpen"]] = 1.0
    np.testing.assert_array_equal(b.displacement(only_jaw, skip=("jawOpen",)), 0.0)
    np.testing.assert_allclose(b.displacement(only_jaw), b.basis[IDX["jawOpen"]], atol=1e-6)


def test_basis_rows_are_plausible():
    b = load_basis()
    jaw = b.basis[IDX["jawOpen"]]
    lower_lip, upper_lip, chin = jaw[L.LIP_LOWER_INNER_MID], jaw[L.LIP_UPPER_INNER_MID], jaw[L.CHIN]
    assert 0.1 < lower_lip[1] < 1.0  # IOD per unit jawOpen: the lower lip goes down...
    assert 0.1 < chin[1] < 1.0  # ...with the chin
    assert abs(upper_lip[1]) < 0.3 * lower_lip[1]  # the upper lip much less
    assert np.abs(jaw[list(L.RIGID_POINTS)]).max() < 0.2 * lower_lip[1]  # forehead and nose bridge stay
    # never observed by MediaPipe (tongueOut) or in the fitting clips: no motion
    assert np.abs(b.basis[IDX["tongueOut"]]).max() < 1e-6


# ------------------------------------------------------------------------------------------------
# held-out reconstruction on tracked real clips
# ------------------------------------------------------------------------------------------------


def tracked(paths, cache_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """clip stem -> (landmarks, blendshapes) of the frames where a face was found."""
    out = {}
    for path in paths:
        track = track_video(path, cache_dir=cache_dir)
        assert track.found.mean() >= 0.95, f"{path.name}: face found in {track.found.mean():.0%} of frames"
        out[path.stem] = (track.landmarks[track.found], track.blendshapes[track.found])
    return out


def centred(tracks: dict) -> tuple[dict, dict]:
    """As the fitting script: generalised Procrustes to a mean face (IOD units), then per-clip centring.

    Returns (dx, dc): clip -> (F, 478 * 3) displacement from the clip mean, (F, 52) coefficient change.
    """
    reference = FIT.normalise_reference(next(iter(tracks.values()))[0][0])
    for _ in range(FIT.GENERALISED_PROCRUSTES_ROUNDS):
        aligned = {k: FIT.align_all(lm, reference) for k, (lm, _) in tracks.items()}
        reference = FIT.normalise_reference(np.concatenate(list(aligned.values())).mean(0))
    aligned = {k: FIT.align_all(lm, reference) for k, (lm, _) in tracks.items()}
    dx = {k: (a - a.mean(0)).reshape(len(a), -1) for k, a in aligned.items()}
    dc = {k: bs - bs.mean(0) for k, (_, bs) in tracks.items()}
    return dx, dc


def mouth_rms_per_frame(d: np.ndarray) -> np.ndarray:
    """(F, 478 * 3) -> (F,) RMS point distance over the lip points (IOD units)."""
    return np.sqrt((d[:, MOUTH_COLS].reshape(len(d), -1, 3) ** 2).sum(-1).mean(-1))


def held_out(dx: dict, dc: dict, train: list[str], test: str, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame mouth RMS error on `test` of a basis fitted on `train`, and of the no-motion baseline."""
    b = FIT.ridge(np.concatenate([dc[k] for k in train]), np.concatenate([dx[k] for k in train]), alpha)
    return mouth_rms_per_frame(dx[test] - dc[test] @ b), mouth_rms_per_frame(dx[test])


FAST_PAIR = ("retalking_face1.mp4", "retalking_face4.mp4")  # frontal HDTF-style clips, 135 and 199 frames


def test_basis_fitted_on_one_clip_predicts_another(real_file, tmp_path_factory):
    """Fit on one real clip, predict the other's lip motion from its blendshape scores (both ways).

    (The 224 px VoxCeleb crops, pcavs_vox_*.mp4, are too noisy for this with a single training clip:
    even fitted on all 8 other clips their held-out mouth error is 0.88-0.94 of the no-motion baseline.)
    """
    paths = [real_file(name) for name in FAST_PAIR]
    dx, dc = centred(tracked(paths, tmp_path_factory.mktemp("tracks")))
    alpha = float(load_basis().meta["held_out"]["alpha"])
    a, b = (p.stem for p in paths)
    for train, test in ((a, b), (b, a)):
        err, base = held_out(dx, dc, [train], test, alpha)
        ratio = err.mean() / base.mean()
        assert ratio < 0.85, f"fit on {train}, held-out {test}: mouth RMS {err.mean():.4f} vs no motion {base.mean():.4f}"


@pytest.mark.slow
def test_leave_one_clip_out_on_all_real_clips(real_data):
    """The committed basis' method, leave-one-clip-out over every real clip (tracks cached in build/tracks)."""
    clips = sorted(real_data.glob("*.mp4"))
    assert len(clips) >= 3
    dx, dc = centred(tracked(clips, TRACK_CACHE))
    meta = load_basis().meta
    alpha = float(meta["held_out"]["alpha"])
    names = list(dx)
    errors, bases = [], []
    for test in names:
        err, base = held_out(dx, dc, [k for k in names if k != test], test, alpha)
        assert err.mean() < base.mean(), f"{test}: held-out mouth RMS {err.mean():.4f} >= no motion {base.mean():.4f}"
        errors.append(err)
        bases.append(base)
    rms, rms_base = float(np.concatenate(errors).mean()), float(np.concatenate(bases).mean())
    assert rms < 0.85 * rms_base, (rms, rms_base)
    if sorted(meta["clips"]) == sorted(names):  # same data as the committed fit: same numbers
        assert rms == pytest.approx(meta["held_out"]["rms_mouth"], rel=0.05)
        assert rms_base == pytest.approx(meta["held_out"]["rms_mouth_no_motion"], rel=0.05)


# ------------------------------------------------------------------------------------------------
# the rig: rendering a Motion
# ------------------------------------------------------------------------------------------------


def detect(image: np.ndarray):
    with FaceLandmarker(video=False) as landmarker:
        faces = landmarker.detect(image)
    assert faces, "no face re-detected in a rendered frame"
    return faces[0]


def iod(face) -> float:
    return face.interocular


def with_coefficient(expression: np.ndarray, name: str, value: float) -> np.ndarray:
    e = np.array(expression, np.float32)
    e[IDX[name]] = value
    return e


@pytest.fixture(scope="module")
def real_portraits(real_file):
    """name -> (portrait image, face, Renderer) at 256 px: a photo, a b/w photo with parted lips, a
    three-quarter painting, a 3D cartoon."""
    out = {}
    for name in ("hallo_ref7.jpg", "hallo_ref3.jpg", "liveportrait_s10.jpg", "dreamtalk_zt12.png"):
        portrait = prepare_portrait(load_image(real_file(name)), 256)
        out[name] = (portrait.image, portrait.face, Renderer(portrait.image, portrait.face))
    return out


def subject(who: str, astronaut_pipeline, request):
    """(image, face, renderer) of the astronaut (512 px) or of one of `real_portraits`."""
    if who == "astronaut":
        p = astronaut_pipeline
        return p.portrait.image, p.portrait.face, p.renderer
    return request.getfixturevalue("real_portraits")[who]


@pytest.mark.parametrize("who", ["astronaut", "hallo_ref7.jpg", "hallo_ref3.jpg", "liveportrait_s10.jpg",
                                 "dreamtalk_zt12.png"])
def test_rest_motion_reproduces_the_portrait(who, astronaut_pipeline, request):
    image, face, renderer = subject(who, astronaut_pipeline, request)
    frame = renderer.render(Motion.rest(face.blendshapes))[0]
    assert frame.shape == image.shape and frame.dtype == np.uint8
    mad = np.abs(frame.astype(np.int16) - image).mean()
    assert mad < 1.5, f"rest frame differs from the portrait by {mad:.2f}"


@pytest.mark.parametrize("who", ["astronaut", "hallo_ref7.jpg", "liveportrait_s10.jpg"])
def test_jaw_open_lowers_the_lower_lip(who, astronaut_pipeline, request):
    image, face, renderer = subject(who, astronaut_pipeline, request)
    rest = detect(renderer.render(Motion.rest(face.blendshapes))[0])
    jaw = IDX["jawOpen"]
    opened = Motion.rest(with_coefficient(face.blendshapes, "jawOpen", min(face.blendshapes[jaw] + 0.4, 1.0)))
    out = detect(renderer.render(opened)[0])
    unit = iod(face)
    dy = (out.landmarks[:, 1] - rest.landmarks[:, 1]) / unit
    assert dy[L.LIP_LOWER_INNER_MID] > 0.05  # the lower lip goes down (IOD units)
    assert dy[L.CHIN] > 0.03  # with the chin
    assert abs(dy[L.LIP_UPPER_INNER_MID]) < 0.5 * dy[L.LIP_LOWER_INNER_MID]
    assert abs(dy[L.NOSE_TIP]) < 0.04
    # and by about what the rig says it moves it
    targets = renderer.rig.targets(opened.expression[0], opened.head[0], opened.gaze[0]).landmarks
    said = (targets[L.LIP_LOWER_INNER_MID, 1] - face.landmarks[L.LIP_LOWER_INNER_MID, 1]) / unit
    assert said > 0.05
    assert 0.5 * said < dy[L.LIP_LOWER_INNER_MID] < 1.5 * said, (dy[L.LIP_LOWER_INNER_MID], said)


def _head_features(face) -> np.ndarray:
    """Nose tip offset from the eye-corner midpoint (IOD units, x and y) and the eye line's angle (degrees)."""
    lm = face.landmarks[:, :2].astype(np.float64)
    right, left = lm[L.EYE_RIGHT_OUTER_CORNER], lm[L.EYE_LEFT_OUTER_CORNER]
    unit = np.linalg.norm(left - right)
    nose = (lm[L.NOSE_TIP] - (left + right) / 2) / unit
    return np.array([nose[0], nose[1], np.degrees(np.arctan2(left[1] - right[1], left[0] - right[0]))])


def _render_head(renderer, face, field: str, value: float):
    m = Motion.rest(face.blendshapes)
    m.head[0, HEAD_FIELDS.index(field)] = value
    return detect(renderer.render(m)[0])


@pytest.mark.parametrize("who", ["astronaut", "hallo_ref7.jpg"])
def test_head_pitch_and_roll_move_as_documented(who, astronaut_pipeline, request):
    """Motion.head: positive pitch tilts the face down, positive roll turns it clockwise on screen."""
    _, face, renderer = subject(who, astronaut_pipeline, request)
    rest = _head_features(detect(renderer.render(Motion.rest(face.blendshapes))[0]))
    down = _head_features(_render_head(renderer, face, "pitch", 8.0)) - rest
    up = _head_features(_render_head(renderer, face, "pitch", -8.0)) - rest
    assert down[1] > 0.02 and up[1] < -0.02  # nose tip below / above its rest place (IOD units)
    clockwise = _head_features(_render_head(renderer, face, "roll", 8.0)) - rest
    assert 4.0 < clockwise[2] < 12.0  # eye line turns clockwise (y down) by about 8 degrees


@pytest.mark.parametrize("who", ["astronaut", "hallo_ref7.jpg"])
def test_head_yaw_moves_as_documented(who, astronaut_pipeline, request):
    """Motion.head: "positive yaw turns the face towards the image's left" (motion/types.py)."""
    _, face, renderer = subject(who, astronaut_pipeline, request)
    rest = _head_features(detect(renderer.render(Motion.rest(face.blendshapes))[0]))
    plus = _head_features(_render_head(renderer, face, "yaw", 8.0)) - rest
    minus = _head_features(_render_head(renderer, face, "yaw", -8.0)) - rest
    assert abs(plus[0]) > 0.03 and abs(minus[0]) > 0.03  # the head does turn
    assert plus[0] < 0 and minus[0] > 0, f"nose tip moved {plus[0]:+.3f} IOD for yaw +8, {minus[0]:+.3f} for -8"


def _painted_eyes(image: np.ndarray, face) -> np.ndarray:
    """A flat grey image with the portrait's eye openings (inside the lid contours) painted pure red and
    their rims drawn dark, as real lid margins and lashes are (the eye layer draws its lash line in the
    lids' darkest colour)."""
    out = np.full_like(image, 128)
    for loop in (L.EYE_LEFT_LOOP, L.EYE_RIGHT_LOOP):
        pts = np.round(face.landmarks[list(loop), :2] * 16).astype(np.int32)
        cv2.fillPoly(out, [pts], (255, 0, 0), shift=4)
        cv2.polylines(out, [pts], True, (20, 20, 20), 1, lineType=cv2.LINE_AA, shift=4)
    return out


def _red_pixels(frame: np.ndarray) -> int:
    """Pixels where the red opening still shows, faded or not (a half-transparent lid counts as open)."""
    return int(((frame[..., 0].astype(np.int16) - frame[..., 1]) > 40).sum())


@pytest.mark.parametrize("who", ["astronaut", "hallo_ref7.jpg"])
def test_full_blink_closes_the_eyes(who, astronaut_pipeline, request):
    """eyeBlink = 1 is "full closure" (render/rig.py): the eye openings must disappear under the lids.

    Rendered on an image whose eye openings are painted red (same face geometry), so what is measured
    is how much of the opening is still visible, independent of how a detector reads closed eyes.
    """
    image, face, _ = subject(who, astronaut_pipeline, request)
    renderer = Renderer(_painted_eyes(image, face), face)
    open_ = _red_pixels(renderer.render(Motion.rest(face.blendshapes))[0])
    assert open_ > 50
    visible = {}
    for closure in (0.5, 1.0):
        e = with_coefficient(with_coefficient(face.blendshapes, "eyeBlinkLeft", closure), "eyeBlinkRight", closure)
        visible[closure] = _red_pixels(renderer.render(Motion.rest(e))[0]) / open_
    assert visible[1.0] < visible[0.5] < 1.0
    assert visible[1.0] < 0.25, f"{visible[1.0]:.0%} of the eye openings still visible at eyeBlink = 1"


def test_gaze_moves_the_irises_the_right_way(astronaut_pipeline):
    """Motion.gaze is in eye widths, x right, y down; painted irises must follow (direction only)."""
    image, face, _ = subject("astronaut", astronaut_pipeline, None)
    painted = np.full_like(image, 128)
    for iris in (L.IRIS_LEFT, L.IRIS_RIGHT):
        centre = face.landmarks[iris[0], :2]
        radius = np.linalg.norm(face.landmarks[list(iris[1:]), :2] - centre, axis=1).mean()
        cv2.circle(painted, tuple(int(v) for v in np.round(centre * 16)), int(round(0.7 * radius * 16)),
                   (255, 0, 0), -1, shift=4)
    renderer = Renderer(painted, face)

    def centroid(gaze) -> np.ndarray:
        m = Motion.rest(face.blendshapes)
        m.gaze[0] = gaze
        frame = renderer.render(m)[0]
        ys, xs = np.nonzero((frame[..., 0] > 150) & (frame[..., 1] < 100))
        return np.array([xs.mean(), ys.mean()])

    rest = centroid((0.0, 0.0))
    right, down = centroid((0.3, 0.0)) - rest, centroid((0.0, 0.3)) - rest
    assert right[0] > 0.5 and abs(right[1]) < right[0]
    assert down[1] > 0.5 and abs(down[0]) < down[1]
