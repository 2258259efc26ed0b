"""Shared fixtures: real-data folder, demo assets, one prepared astronaut Pipeline and one demo MP4.

Expensive things (face detection on a portrait, a full generate run) are done once per session and
shared; tests must not mutate what they get from these fixtures.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import talkinghead
from talkinghead.config import GenerateConfig, RenderConfig

# The face-analysis cache (talkinghead.face.cache) of this test run: a fresh folder, so no test depends
# on what an earlier run or the user's own runs left in ~/.cache (CLI subprocesses inherit it).
os.environ["TALKINGHEAD_CACHE"] = tempfile.mkdtemp(prefix="talkinghead-test-cache-")

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
ASSETS = Path(talkinghead.__file__).resolve().parent / "assets"
DEMO_IMAGE = ASSETS / "astronaut.png"
DEMO_AUDIO = ASSETS / "demo_speech.wav"

# The astronaut's face is ~90 px wide at 512 px; at 256 px it would be 45 px, below the package's
# 48 px minimum (face.MIN_FACE_WIDTH_PX), so the astronaut is always prepared at the default 512.
ASTRONAUT_SIZE = 512
# Real portraits (faces 65-250 px at 256) are prepared small for speed.
REAL_PORTRAIT_SIZE = 256


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The shared real-data folder (see MANIFEST.tsv there), or skip."""
    if not (REAL_DATA / "MANIFEST.tsv").is_file():
        pytest.skip(f"shared real-data folder {REAL_DATA} (with MANIFEST.tsv) is not present")
    return REAL_DATA


@pytest.fixture(scope="session")
def real_file(real_data):
    """real_file(name) -> path of one file in the real-data folder, or skip if that file is missing."""

    def get(name: str) -> Path:
        path = real_data / name
        if not path.is_file():
            pytest.skip(f"real-data file {path} is missing")
        return path

    return get


@pytest.fixture(scope="session")
def demo_image_path() -> Path:
    assert DEMO_IMAGE.is_file(), f"bundled demo portrait {DEMO_IMAGE} is missing"
    return DEMO_IMAGE


@pytest.fixture(scope="session")
def demo_audio_path() -> Path:
    assert DEMO_AUDIO.is_file(), f"bundled demo speech {DEMO_AUDIO} is missing"
    return DEMO_AUDIO


@pytest.fixture(scope="session")
def demo_image(demo_image_path) -> np.ndarray:
    """The astronaut portrait, (512, 512, 3) uint8 RGB (read-only)."""
    from talkinghead.io import load_image

    image = load_image(demo_image_path)
    image.setflags(write=False)
    return image


@pytest.fixture(scope="session")
def demo_audio(demo_audio_path) -> np.ndarray:
    """The demo speech, float32 mono 16 kHz (8 s, a ~0.6 s pause in the middle; read-only)."""
    from talkinghead.io import load_audio

    audio = load_audio(demo_audio_path)
    audio.setflags(write=False)
    return audio


def config_with(size: int, **motion) -> GenerateConfig:
    """Default GenerateConfig at render size `size`, with MotionConfig fields overridden."""
    cfg = GenerateConfig(render=RenderConfig(size=size))
    return replace(cfg, motion=replace(cfg.motion, **motion)) if motion else cfg


@pytest.fixture(scope="session")
def astronaut_pipeline(demo_image) -> talkinghead.Pipeline:
    """One Pipeline for the astronaut (default config, 512 px). Its motion source restarts per stream."""
    return talkinghead.Pipeline.from_image(demo_image, config_with(ASTRONAUT_SIZE))


@pytest.fixture(scope="session")
def astronaut_pipeline_with(astronaut_pipeline):
    """astronaut_pipeline_with(**motion_fields) -> a new Pipeline on the same prepared portrait (no re-detection)."""

    def make(**motion) -> talkinghead.Pipeline:
        return talkinghead.Pipeline(astronaut_pipeline.portrait, config_with(ASTRONAUT_SIZE, **motion))

    return make


@pytest.fixture(scope="session")
def real_pipeline(real_file) -> talkinghead.Pipeline:
    """A real closed-mouth photo portrait (hallo_ref7.jpg, face ~117 px) prepared at 256 px."""
    from talkinghead.io import load_image

    return talkinghead.Pipeline.from_image(load_image(real_file("hallo_ref7.jpg")), config_with(REAL_PORTRAIT_SIZE))


@pytest.fixture(scope="session")
def astronaut_frames(astronaut_pipeline, demo_audio) -> list[np.ndarray]:
    """Every frame of the demo speech rendered by `astronaut_pipeline.stream` (no codec)."""
    frames = list(astronaut_pipeline.stream(astronaut_pipeline.chunks(demo_audio)))
    for f in frames:
        f.setflags(write=False)
    return frames


@pytest.fixture(scope="session")
def demo_mp4(tmp_path_factory, demo_image_path, demo_audio_path):
    """(path, GenerateResult) of `talkinghead.generate(astronaut.png, demo_speech.wav)` with the default config."""
    out = tmp_path_factory.mktemp("demo") / "demo.mp4"
    result = talkinghead.generate(demo_image_path, demo_audio_path, out)
    return out, result


@pytest.fixture(scope="session")
def demo_mp4_frames(demo_mp4) -> list[np.ndarray]:
    """The decoded frames of `demo_mp4`."""
    from talkinghead.io import read_video_frames

    return list(read_video_frames(demo_mp4[0]))


@pytest.fixture()
def http(server):
    """An HTTP client for the module's `server` fixture (a BackgroundServer)."""
    import httpx

    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client
