"""Reading a large Live Link motion CSV: parse time against merely splitting the file into cells.

    python benchmarks/bench_motion_files.py [--frames 20000] [--repeats 7]

The ratio (talkinghead's `read_motion` over `csv.reader` on the same text) is what matters: a
per-cell Python loop made it 62x and a 1e6-row file took minutes; the NumPy column path makes it
about 10-25x, depending on how busy the machine is. Prints medians over the repeats, alternating
the two measurements so that both see the same load. A speed figure, so it lives here and not in
a unit test (tests/test_reliability.py checks the same file parses correctly).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from talkinghead import motion_files  # noqa: E402


def live_link_csv(frames: int) -> str:
    """A Live Link Face CSV of `frames` rows at 25 FPS, all blendshapes 0 and head scale 1."""
    header = ",".join(motion_files.CSV_COLUMNS)
    zeros = ",".join(["0"] * (len(motion_files.CSV_COLUMNS) - 5) + ["1", "0", "0"])
    rows = [f"{i // 90000:02d}:{i // 1500 % 60:02d}:{i // 25 % 60:02d}:{i % 25:02d}.000,61,{zeros}"
            for i in range(frames)]
    return header + "\n" + "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20_000, help="rows in the CSV (default 20000)")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats (default 7)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "motion.csv"
        path.write_text(live_link_csv(args.frames))
        split, parse = [], []
        for _ in range(args.repeats):
            started = time.perf_counter()
            sum(len(row) for row in csv.reader(path.read_text().splitlines()))
            split.append(time.perf_counter() - started)
            started = time.perf_counter()
            motion, _ = motion_files.read_motion(path)
            parse.append(time.perf_counter() - started)
            assert len(motion) == args.frames
    ratios = [p / s for p, s in zip(parse, split)]
    print(f"| rows | split (ms) | read_motion (ms) | ratio |\n|---|---|---|---|\n"
          f"| {args.frames} | {statistics.median(split) * 1e3:.0f} | {statistics.median(parse) * 1e3:.0f} "
          f"| {statistics.median(ratios):.1f}x ({min(ratios):.1f}-{max(ratios):.1f}) |")


if __name__ == "__main__":
    main()
