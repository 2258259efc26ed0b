"""Start-up to the first frame of a live session: a portrait never seen, and one seen before.

    python benchmarks/bench_startup.py            # 5 dev portraits (or the astronaut), each twice

A `talkinghead serve` with the default settings and an empty face-analysis cache (TALKINGHEAD_CACHE
in a fresh folder) is started and left to finish its start-up measurement. Then each portrait opens a
live session twice ("new", then "seen before"), streaming 1 s of speech in real time. Measured from
the client opening the WebSocket: to "ready" (the portrait prepared: decoded, resized, its face found
or read from the cache) and to the first frame received. The first frame needs (1 + look-ahead) x
40 ms of audio past its centre, so about 140 ms of it is the audio the client has to send first.
Writes build/bench_startup.json and prints a Markdown table.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
from bench_live import REAL, Server, run_session  # noqa: E402

PORTRAITS = ("hallo_ref3.jpg", "sadtalker_art14.png", "sadtalker_people0.png", "dreamtalk_face3.png",
             "joyvasa_img005.png")


def main() -> None:
    os.environ.setdefault("GLOG_minloglevel", "2")
    from talkinghead.io import load_audio

    assets = ROOT / "talkinghead" / "assets"
    paths = [REAL / p for p in PORTRAITS if (REAL / p).is_file()] or [assets / "astronaut.png"]
    audio = load_audio(assets / "demo_speech.wav")
    report = {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg(), "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TALKINGHEAD_CACHE"] = str(Path(tmp) / "faces")  # the server inherits it: nothing seen yet
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
