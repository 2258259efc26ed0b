"""Speed benchmark: end-to-end real-time factor and render-only frame rate at 512 px.

    python benchmarks/bench_generate.py                 # bundled demo + every real portrait found
    python benchmarks/bench_generate.py --repeats 5 --json build/bench.json

End to end = load files, find the face, build the rig, features, motion, render, H.264 + AAC encode
and mux (the whole `talkinghead generate`). Render only = Renderer.render_frame on precomputed motion.
Reports medians over repeats (end to end) and over frames (render); machines are noisy, so read
the medians and ratios, not single runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REAL = ROOT.parent / "shared" / "data" / "real"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3, help="end-to-end runs per portrait (median reported)")
    parser.add_argument("--portraits", type=int, default=4, help="real portraits to include (0 = demo only)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    os.environ.setdefault("GLOG_minloglevel", "2")

    import numpy as np

    from talkinghead import GenerateConfig, RenderConfig, generate
    from talkinghead.io import load_audio
    from talkinghead.motion.types import Motion
    from talkinghead.pipeline import Pipeline

    assets = ROOT / "talkinghead" / "assets"
    speech = assets / "demo_speech.wav"
    portraits = [assets / "astronaut.png"]
    if REAL.is_dir() and args.portraits:
        portraits += sorted(p for p in REAL.iterdir() if p.suffix.lower() in (".png", ".jpg"))[: args.portraits]
    config = GenerateConfig(render=RenderConfig(size=args.size))
    audio = load_audio(speech)
    audio_s = len(audio) / 16000
    rows = []
    for portrait in portraits:
        e2e = []
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.repeats):
                started = time.perf_counter()
                generate(portrait, speech, Path(tmp) / "out.mp4", config)
                e2e.append(time.perf_counter() - started)
        pipeline = Pipeline.from_image(portrait, config)
        motion = Motion.concat(list(pipeline.stream_motion(pipeline.chunks(audio))))
        frame_ms = []
        for i in range(len(motion)):
            t0 = time.perf_counter()
            pipeline.renderer.render_frame(motion.expression[i], motion.head[i], motion.gaze[i])
            frame_ms.append((time.perf_counter() - t0) * 1000)
        e2e_median = statistics.median(e2e)
        render_ms = float(np.median(frame_ms))
        w, h = pipeline.frame_size
        rows.append({"portrait": portrait.name, "width": w, "height": h, "audio_s": round(audio_s, 2),
                     "end_to_end_s": round(e2e_median, 2), "realtime_factor": round(audio_s / e2e_median, 2),
                     "render_ms_median": round(render_ms, 2), "render_fps": round(1000 / render_ms, 1)})
        print(json.dumps(rows[-1]), flush=True)
    print()
    print("| portrait | size | end to end (s, median) | real-time factor | render ms/frame (median) | render FPS |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['portrait']} | {r['width']}x{r['height']} | {r['end_to_end_s']} | {r['realtime_factor']}x "
              f"| {r['render_ms_median']} | {r['render_fps']} |")
    rtf = statistics.median(r["realtime_factor"] for r in rows)
    fps = statistics.median(r["render_fps"] for r in rows)
    print(f"\nmedian over portraits: real-time factor {rtf:.2f}x (target >= 2x), render {fps:.0f} FPS (target >= 100)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "median_realtime_factor": rtf, "median_render_fps": fps}, indent=2))


if __name__ == "__main__":
    main()
