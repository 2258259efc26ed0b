"""The face-analysis cache: a portrait seen before is answered from disk without the landmarker, with the
same face; a changed image, a damaged entry or a turned-off cache falls back to analysing it."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from talkinghead.face import cache
from talkinghead.io import load_image, resize_long_side
from talkinghead.pipeline import prepare_portrait


@pytest.fixture
def portrait(demo_image_path) -> np.ndarray:
    return resize_long_side(load_image(demo_image_path), 512)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    return tmp_path / "faces"


def test_a_seen_portrait_skips_the_landmarker_and_gives_the_same_face(portrait, folder, monkeypatch):
    first = cache.portrait_face(portrait)
    assert len(list(folder.glob("*.npz"))) == 1

    def no_landmarker(*args, **kwargs):
        raise AssertionError("the landmarker ran for a cached portrait")

    monkeypatch.setattr(cache, "choose_portrait_face", no_landmarker)
    again = cache.portrait_face(portrait)
    np.testing.assert_array_equal(again.landmarks, first.landmarks)
    np.testing.assert_array_equal(again.blendshapes, first.blendshapes)
    assert prepare_portrait(portrait, 512).face.landmarks.tobytes() == first.landmarks.tobytes()


def test_another_image_is_analysed_again(portrait, folder):
    cache.portrait_face(portrait)
    changed = portrait.copy()
    changed[0, 0] ^= 1  # one pixel
    assert cache.cache_key(changed) != cache.cache_key(portrait)
    cache.portrait_face(changed)
    assert len(list(folder.glob("*.npz"))) == 2


def test_a_damaged_entry_is_analysed_again_and_replaced(portrait, folder):
    face = cache.portrait_face(portrait)
    [entry] = folder.glob("*.npz")
    entry.write_bytes(b"not an npz")
    again = cache.portrait_face(portrait)
    np.testing.assert_array_equal(again.landmarks, face.landmarks)
    with np.load(entry) as data:
        assert data["landmarks"].shape == (478, 3)


def test_the_cache_can_be_turned_off(portrait, tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, "off")
    assert cache.cache_dir() is None
    cache.portrait_face(portrait)
    assert not list(tmp_path.rglob("*.npz"))


def test_an_unwritable_cache_only_skips_the_cache(portrait, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv(cache.CACHE_ENV, str(blocker))  # its faces/ would be below a file: cannot be made
    assert cache.portrait_face(portrait).landmarks.shape == (478, 3)


def test_the_several_faces_warning_comes_from_the_cache_too(portrait, folder, caplog, monkeypatch):
    face = cache.portrait_face(portrait)
    other = portrait.copy()
    other[0, 0] ^= 1
    monkeypatch.setattr(cache, "choose_portrait_face", lambda image, name, downscale: (face, 2))
    with caplog.at_level(logging.WARNING):
        cache.portrait_face(other, "two.png")  # analysed: two faces
        cache.portrait_face(other, "two.png")  # from the cache
    warnings = [r for r in caplog.records if "2 faces found in two.png" in r.getMessage()]
    assert len(warnings) == 2
