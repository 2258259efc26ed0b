"""The whole `talkinghead generate` command as a user runs it (process start to file written), on 1 s,
10 s and 60 s of speech, idle and beside CPU hogs.

    python benchmarks/bench_command.py [--repeats 3] [--durations 1 10 60] [--hog-processes 1]

Portraits: the bundled demo (astronaut) and a 512 px photo (hallo_ref1 from ../shared/data/real when
present). Speech: the demo speech, repeated to length. Prints a Markdown table of medians: wall
seconds, real-time factor (speech seconds per wall second) and CPU seconds, and the busy/idle ratio.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_hogs, time_command  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "talkinghead" / "assets"
PHOTO = REPO.parent / "shared" / "data" / "real" / "hallo_ref1.jpg"
SR = 16000


def speech_of(seconds: float, folder: Path) -> Path:
    """The demo speech repeated to `seconds`, as a WAV in `folder`."""
    from talkinghead.io import load_audio

    demo = load_audio(DEMO / "demo_speech.wav")
    audio = np.tile(demo, int(np.ceil(seconds * SR / len(demo))))[:int(seconds * SR)]
    path = folder / f"speech_{seconds:g}s.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(SR)
        out.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def medians(image: Path, speech: Path, repeats: int, out: Path, flags: list[str]) -> tuple[float, float]:
    runs = [time_command(["generate", "--image", str(image), "--audio", str(speech), "--out", str(out),
                          "--overwrite", "--quiet", *flags]) for _ in range(repeats)]
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--durations", type=float, nargs="+", default=[1.0, 10.0, 60.0])
    parser.add_argument("--hog-processes", type=int, default=1, help="CPU-bound processes beside the busy runs "
                        "(1: a user's other work; 2 oversubscribes a 2-core machine twice)")
    parser.add_argument("--flags", default="", help="extra generate options, e.g. '--generator diffusion'")
    args = parser.parse_args()
    flags = shlex.split(args.flags)
    portraits = [DEMO / "astronaut.png"] + ([PHOTO] if PHOTO.is_file() else [])
    folder = Path(tempfile.mkdtemp())
    rows = []
    for seconds in args.durations:
        speech = speech_of(seconds, folder)
        for image in portraits:
            idle = medians(image, speech, args.repeats, folder / "out.mp4", flags)
            with cpu_hogs(args.hog_processes):
                busy = medians(image, speech, args.repeats, folder / "out.mp4", flags)
            rows.append((image.name, seconds, idle, busy))
            print(f"{image.name} {seconds:g} s: idle {idle[0]:.2f} s, busy {busy[0]:.2f} s", file=sys.stderr)
    print(f"\n| portrait | speech | idle: wall s | idle: x real time | idle: CPU s | beside {args.hog_processes} hogs: "
          "wall s | busy: x real time | busy / idle speed |\n|---|---|---|---|---|---|---|---|")
    for name, seconds, (wall, cpu), (busy_wall, _) in rows:
        print(f"| {name} | {seconds:g} s | {wall:.2f} | {seconds / wall:.2f}x | {cpu:.2f} | {busy_wall:.2f} | "
              f"{seconds / busy_wall:.2f}x | {wall / busy_wall:.2f} |")


if __name__ == "__main__":
    main()
