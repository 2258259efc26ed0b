"""Text to speech with the built-in voice, and text-to-video from the command line."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from talkinghead.audio.features import SAMPLE_RATE
from talkinghead.errors import TalkingHeadError
from talkinghead.io import probe_video
from talkinghead.tts import synthesize

SENTENCE = "Good morning. The quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return synthesize(SENTENCE)


def test_synthesize_speaks_the_text(speech):
    seconds = len(speech) / SAMPLE_RATE
    assert speech.dtype == np.float32 and np.abs(speech).max() <= 1.0
    assert 2.0 < seconds < 8.0  # eleven words
    assert np.sqrt(np.mean(speech ** 2)) > 0.02  # audible, not silence


def test_synthesize_is_deterministic(speech):
    assert np.array_equal(synthesize(SENTENCE), speech)


def test_longer_text_gives_longer_speech(speech):
    assert len(synthesize(SENTENCE + " " + SENTENCE)) > 1.7 * len(speech)


@pytest.mark.parametrize("text", ["", "   \n "])
def test_empty_text_is_a_clear_error(text):
    with pytest.raises(TalkingHeadError, match="empty"):
        synthesize(text)


def test_text_to_video_command(tmp_path, demo_image_path):
    out = tmp_path / "hello.mp4"
    done = subprocess.run([sys.executable, "-m", "talkinghead", "generate", "--image", str(demo_image_path),
                           "--text", "Hello, world.", "--out", str(out), "--size", "512", "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    info = probe_video(out)
    assert info.audio_codec == "aac" and info.video_codec == "h264"
    assert 0.5 < info.duration < 4.0


def test_no_speech_is_a_clear_error(tmp_path, demo_image_path):
    done = subprocess.run([sys.executable, "-m", "talkinghead", "generate", "--image", str(demo_image_path),
                           "--out", str(tmp_path / "x.mp4")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "--text" in done.stderr and "Traceback" not in done.stderr
    assert not any(tmp_path.iterdir())
