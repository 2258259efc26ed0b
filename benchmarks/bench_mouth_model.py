"""Speed of the learned mouth: CPU seconds per second of audio (speech encoder + model + gate).

    python benchmarks/bench_mouth_model.py                   # the bundled demo speech, 5 repeats
    python benchmarks/bench_mouth_model.py --repeats 9 --threads 1
    python benchmarks/bench_mouth_model.py --end-to-end     # also the whole generate at 512 px, each source

Times the streamed path the pipeline runs, in its 1 s chunks: audio.FeatureStream -> the motion
source (LearnedMouthMotion: Whisper encoder stream, per-frame regression, gate, and the wrapped
rule-based source; RuleBasedAudioMotion alone for comparison). Also the encoder stream alone, and
the wall time with BLAS limited to --threads (1 by default: the matrices are small, and extra BLAS
threads only fight the renderer and encoder threads for the two cores). Medians over repeats;
machines are noisy, so read medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (0 = library default)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--end-to-end", action="store_true",
                        help="also time the whole write (face, rig, motion, render, H.264) at 512 px with each source")
    args = parser.parse_args()
    os.environ.setdefault("GLOG_minloglevel", "2")

    import numpy as np
    from threadpoolctl import threadpool_limits

    from talkinghead.audio.features import SAMPLE_RATE, FeatureStream
    from talkinghead.io import load_audio
    from talkinghead.motion.audio_rules import RuleBasedAudioMotion
    from talkinghead.motion.learned_mouth import LearnedMouthMotion, load_default_model
    from talkinghead.audio.speech_encoder import SpeechFeatureStream
    from talkinghead.audio.whisper import load_encoder

    audio = load_audio(ROOT / "talkinghead" / "assets" / "demo_speech.wav")
    seconds = len(audio) / SAMPLE_RATE
    chunks = [audio[i:i + SAMPLE_RATE] for i in range(0, len(audio), SAMPLE_RATE)]
    model = load_default_model()
    load_encoder()
    rest = np.zeros(52, np.float32)

    def run_source(make) -> float:
        source = make()
        features = FeatureStream(25)
        started = time.process_time()
        source.start(rest, 25)
        for chunk in chunks:
            source.push(features.push(chunk))
        source.push(features.flush())
        source.flush()
        return time.process_time() - started

    def run_encoder() -> float:
        stream = SpeechFeatureStream(25, model.config["layer"], model.offsets_s, model.grid)
        started = time.process_time()
        for chunk in chunks:
            stream.push(chunk)
        stream.flush()
        return time.process_time() - started

    def wall(fn) -> float:
        started = time.perf_counter()
        fn()
        return time.perf_counter() - started

    results = {}
    limits = threadpool_limits(args.threads) if args.threads else None
    try:
        for name, fn in (("rule-based source", lambda: run_source(RuleBasedAudioMotion)),
                         ("speech encoder stream", run_encoder),
                         ("learned mouth source", lambda: run_source(lambda: LearnedMouthMotion(model=model)))):
            fn()  # warm-up
            cpu = [fn() for _ in range(args.repeats)]
            wall_s = [wall(fn) for _ in range(args.repeats)]
            results[name] = {"cpu_s_per_audio_s": statistics.median(cpu) / seconds,
                             "wall_s_per_audio_s": statistics.median(wall_s) / seconds}
    finally:
        if limits is not None:
            limits.unregister()
    grid = model.grid
    latency = LearnedMouthMotion(model=model).latency_s
    print(f"{seconds:.1f} s of speech, {args.repeats} repeats, BLAS threads {args.threads or 'default'}; "
          f"grid block {grid.block} look-ahead {grid.lookahead} memory {grid.memory}; latency {latency:.2f} s")
    print("| part | CPU s per s of audio | wall s per s of audio |\n|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['cpu_s_per_audio_s']:.4f} | {r['wall_s_per_audio_s']:.4f} |")
    if args.end_to_end:
        import tempfile

        from talkinghead.pipeline import Pipeline

        print("\n| portrait | source | end to end s (median) | real-time factor |\n|---|---|---|---|")
        assets = ROOT / "talkinghead" / "assets"
        for portrait in (assets / "astronaut.png", ROOT.parent / "shared" / "data" / "real" / "hallo_ref1.jpg"):
            if not portrait.is_file():
                continue
            for name, make in (("rule-based", RuleBasedAudioMotion), ("learned", lambda: LearnedMouthMotion(model=model))):
                times = []
                with tempfile.TemporaryDirectory() as tmp:
                    for _ in range(args.repeats):
                        started = time.perf_counter()
                        Pipeline.from_image(portrait, motion_source=make()).write(audio, Path(tmp) / "out.mp4")
                        times.append(time.perf_counter() - started)
                median = statistics.median(times)
                results[f"end to end {portrait.stem} {name}"] = {"seconds": median, "realtime_factor": seconds / median}
                print(f"| {portrait.name} | {name} | {median:.2f} | {seconds / median:.2f}x |")
    if args.json:
        args.json.write_text(json.dumps({"threads": args.threads, "latency_s": latency, **results}, indent=1))


if __name__ == "__main__":
    main()
