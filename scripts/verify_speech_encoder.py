"""Check the NumPy Whisper encoder against CTranslate2 (run once; CTranslate2 is not a dependency).

    python3 -m venv /tmp/ct2 && /tmp/ct2/bin/pip install ctranslate2==4.8.5 numpy
    python scripts/verify_speech_encoder.py --reference-python /tmp/ct2/bin/python [--audio FILE]

Computes Whisper's log-mel of the audio (padded with 30 s of silence, 3000 frames, as Whisper does),
runs talkinghead.speech_encoder's encoder (exact and tanh GELU) on it, then CTranslate2's
Whisper.encode on the same log-mel with the same model.bin in the other interpreter, and prints the
largest absolute differences. Measured with the bundled demo speech (output values up to 12.6): exact
GELU max 1.3e-4 (rms 1.6e-6); tanh GELU max 0.035 (rms 0.0025). With retalking_face2.mp4's audio: exact
GELU max 1.7e-5. Mel filters equal openai-whisper's mel_filters.npz exactly; log-mel within 7e-6.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from talkinghead.audio import whisper  # noqa: E402
from talkinghead.io import load_audio  # noqa: E402

DEMO = Path(__file__).resolve().parents[1] / "talkinghead" / "assets" / "demo_speech.wav"
REFERENCE = """
import sys, numpy as np, ctranslate2
data = np.load(sys.argv[1])
model = ctranslate2.models.Whisper(sys.argv[2], device="cpu", compute_type="float32")
mel = np.ascontiguousarray(data["mel"].T[None])
out = np.array(model.encode(ctranslate2.StorageView.from_array(mel), to_cpu=True))[0]
np.save(sys.argv[3], out)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference-python", required=True, help="an interpreter with ctranslate2 installed")
    parser.add_argument("--audio", type=Path, default=DEMO)
    args = parser.parse_args()
    audio = load_audio(args.audio, whisper.SAMPLE_RATE)[:30 * whisper.SAMPLE_RATE]
    mel = whisper.whisper_log_mel(np.concatenate([audio, np.zeros(30 * whisper.SAMPLE_RATE, np.float32)]))[:3000]
    exact = whisper.load_encoder(exact_gelu=True)(mel)
    fast = whisper.load_encoder(exact_gelu=False)(mel)
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "in.npz", mel=mel)
        subprocess.run([args.reference_python, "-c", REFERENCE, str(Path(tmp) / "in.npz"),
                        str(whisper.weights_path().parent), str(Path(tmp) / "out.npy")], check=True)
        reference = np.load(Path(tmp) / "out.npy")
    print(f"encoder output {reference.shape}, largest |value| {np.abs(reference).max():.2f}")
    for name, out in (("exact GELU", exact), ("tanh GELU (streaming default)", fast)):
        diff = np.abs(out - reference)
        print(f"{name}: max abs difference {diff.max():.2e}, rms {np.sqrt((diff ** 2).mean()):.2e}")


if __name__ == "__main__":
    main()
