"""Start-up to the first frame: a live session, or the command line; a portrait never seen, and one seen before.

    python benchmarks/bench_startup.py            # live: 5 dev portraits (or the astronaut), each twice
    python benchmarks/bench_startup.py --command [--repeats 8]   # `talkinghead generate`, process start to first frame

A `talkinghead serve` with the default settings and an empty face-analysis cache (TALKINGHEAD_CACHE
in a fresh folder) is started and left to finish its start-up measurement. Then each portrait opens a
live session twice ("new", then "seen before"), streaming 1 s of speech in real time. Measured from
the client opening the WebSocket: to "ready" (the portrait prepared: decoded, resized, its face found
or read from the cache) and to the first frame received. The first frame needs (1 + look-ahead) x
40 ms of audio past its centre, so about 140 ms of it is the audio the client has to send first.
Writes build/bench_startup.json and prints a Markdown table.

--command times `talkinghead generate` on the 512 px photo hallo_ref1.jpg (or the astronaut) with 10 s
of speech, from just before the process is started to the moment its first frame is rendered (a
small wrapper records the time the renderer first returns, then runs the command unchanged). "New"
runs use an empty face cache (the speech encoder's unpacked weights kept, as on any machine that
has run talkinghead once); "seen before" runs reuse the face analysis. Writes
build/bench_startup_command.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
from bench_live import REAL, Server, run_session  # noqa: E402
from bench_command import speech_of  # noqa: E402

# Run in the measured process: note when the renderer first returns, then run the command line as is.
FIRST_FRAME_PROBE = """
import sys, time
from talkinghead.render import renderer
render_frame, stamp = renderer.Renderer.render_frame, sys.argv.pop(1)
def noted(self, *args, **kwargs):
    frame = render_frame(self, *args, **kwargs)
    if renderer.Renderer.render_frame is noted:
        renderer.Renderer.render_frame = render_frame
        open(stamp, "w").write(repr(time.time()))
    return frame
renderer.Renderer.render_frame = noted
from talkinghead.cli import main
sys.exit(main(sys.argv[1:]))
"""
PORTRAITS = ("hallo_ref3.jpg", "sadtalker_art14.png", "sadtalker_people0.png", "dreamtalk_face3.png",
             "joyvasa_img005.png")


def first_frame_seconds(args: list[str], env: dict, folder: Path) -> float:
    """Seconds from starting `talkinghead ARGS` to its first rendered frame."""
    stamp = folder / "first_frame.txt"
    stamp.unlink(missing_ok=True)
    started = time.time()
    subprocess.run([sys.executable, "-c", FIRST_FRAME_PROBE, str(stamp), *args], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return float(stamp.read_text()) - started


def command_startup(repeats: int) -> None:
    photo = REAL / "hallo_ref1.jpg"
    image = photo if photo.is_file() else ROOT / "talkinghead" / "assets" / "astronaut.png"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        args = ["generate", "--image", str(image), "--audio", str(speech_of(10, folder)), "--out",
                str(folder / "out.mp4"), "--overwrite", "--quiet"]
        env = dict(os.environ, TALKINGHEAD_CACHE=str(folder / "cache"), GLOG_minloglevel="2")
        subprocess.run([sys.executable, "-m", "talkinghead", *args], env=env, check=True)  # unpacks the encoder once
        for _ in range(repeats):  # alternated, so a slow moment of the machine touches both kinds
            shutil.rmtree(folder / "cache" / "faces", ignore_errors=True)
            rows.append({"kind": "new", "seconds": first_frame_seconds(args, env, folder)})
            rows.append({"kind": "seen before", "seconds": first_frame_seconds(args, env, folder)})
            print(json.dumps(rows[-2]), json.dumps(rows[-1]), flush=True)
    report = {"portrait": image.name, "speech_seconds": 10, "cpus": os.cpu_count(),
              "load_average_at_end": os.getloadavg(), "rows": rows}
    out = ROOT / "build" / "bench_startup_command.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"\n| {image.name}, 10 s of speech | median (s) | min-max (s) | runs |\n|---|---|---|---|")
    for kind in ("new", "seen before"):
        values = [r["seconds"] for r in rows if r["kind"] == kind]
        print(f"| {kind} | {statistics.median(values):.2f} | {min(values):.2f}-{max(values):.2f} | {len(values)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--command", action="store_true", help="time the command line instead of a live session")
    parser.add_argument("--repeats", type=int, default=8, help="--command runs of each kind (default 8)")
    options = parser.parse_args()
    if options.command:
        command_startup(options.repeats)
        return
    os.environ.setdefault("GLOG_minloglevel", "2")
    from talkinghead.io import load_audio

    assets = ROOT / "talkinghead" / "assets"
    paths = [REAL / p for p in PORTRAITS if (REAL / p).is_file()] or [assets / "astronaut.png"]
    audio = load_audio(assets / "demo_speech.wav")
    report = {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg(), "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TALKINGHEAD_CACHE"] = str(Path(tmp) / "cache")  # the server inherits it: nothing seen yet
        server = Server(Path(tmp) / "data")
        try:
            server.wait(calibrated=True)
            for kind in ("new", "seen before"):
                for path in paths:
                    r = asyncio.run(run_session(server.url, path.read_bytes(), audio, 1.0))
                    row = {"portrait": path.name, "kind": kind, "ready_ms": r.get("ready_ms"),
                           "first_frame_ms": r.get("first_frame_ms"), "error": r.get("error")}
                    report["rows"].append(row)
                    print(json.dumps(row), flush=True)
        finally:
            server.stop()
    report["load_average_at_end"] = os.getloadavg()
    out = ROOT / "build" / "bench_startup.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print("\n| portrait | ready, new (ms) | first frame, new (ms) | ready, seen (ms) | first frame, seen (ms) |")
    print("|---|---|---|---|---|")
    by = {(r["portrait"], r["kind"]): r for r in report["rows"]}
    for path in paths:
        n, s = by[(path.name, "new")], by[(path.name, "seen before")]
        print(f"| {path.name} | {n['ready_ms']:.0f} | {n['first_frame_ms']:.0f} | {s['ready_ms']:.0f} | "
              f"{s['first_frame_ms']:.0f} |")
    for kind in ("new", "seen before"):
        values = [r["first_frame_ms"] for r in report["rows"] if r["kind"] == kind and r["first_frame_ms"]]
        print(f"{kind}: first frame median {statistics.median(values):.0f} ms, max {max(values):.0f} ms")
    print(f"load average {report['load_average_at_start'][0]:.2f} at start, {report['load_average_at_end'][0]:.2f} at end")


if __name__ == "__main__":
    main()
