"""Whole-command time of `talkinghead generate` with one compute thread against the libraries' own choice,
on an idle machine and beside a CPU hog (evidence for GenerateConfig.threads' default).

    python benchmarks/bench_threads.py [--image PORTRAIT] [--audio SPEECH] [--repeats 3] [--hog-processes 2]

Each run is the command as a user types it (process start to file written). The hog is N Python
processes spinning on arithmetic. Prints medians (wall and CPU seconds) and the ratio to --threads 1.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_hogs, time_command  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGE = REPO.parent / "shared" / "data" / "real" / "hallo_ref1.jpg"
DEFAULT_AUDIO = REPO / "talkinghead" / "assets" / "demo_speech.wav"
SETTINGS = (("one thread (--threads 1)", "1"), ("libraries' choice (--threads 0)", "0"))


def run_once(image: Path, audio: Path, threads: str, out: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one whole command."""
    return time_command(["generate", "--image", str(image), "--audio", str(audio), "--out", str(out), "--overwrite",
                         "--quiet", "--threads", threads])


def measure(image: Path, audio: Path, repeats: int, out: Path) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) per setting, the settings interleaved so load changes hit both alike."""
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in SETTINGS}
    for _ in range(repeats):
        for name, threads in SETTINGS:
            runs[name].append(run_once(image, audio, threads, out))
    return {name: (statistics.median(w for w, _ in r), statistics.median(c for _, c in r)) for name, r in runs.items()}


def report(title: str, medians: dict[str, tuple[float, float]]) -> None:
    base = medians[SETTINGS[0][0]][0]
    print(f"\n{title}\n| setting | wall s (median) | CPU s (median) | wall vs one thread |\n|---|---|---|---|")
    for name, (wall, cpu) in medians.items():
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {wall / base:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--audio", type=Path, default=DEFAULT_AUDIO)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hog-processes", type=int, default=2, help="CPU hogs beside the busy runs")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp()) / "bench.mp4"
    print(f"{args.image.name} + {args.audio.name}, {os.cpu_count()} cores, {args.repeats} repeats")
    report("idle", measure(args.image, args.audio, args.repeats, out))
    with cpu_hogs(args.hog_processes):
        report(f"beside {args.hog_processes} CPU hog processes", measure(args.image, args.audio, args.repeats, out))


if __name__ == "__main__":
    main()
