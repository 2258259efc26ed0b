"""What a real speaker's head costs the re-tracked lip-sync and mouth-at-rest figures (issue 15's targets).

    python scripts/head_cost_check.py                        # the clips of ../shared/data/real
    python scripts/head_cost_check.py --data FOLDER --out build/head_cost.json

`talkinghead eval --protocol self` compares the mouth the tracker reads in the generated video with the
one it reads in the real video. The mouth comes from the speech model in every row here; only the head
changes, each rendered and re-tracked over the clip's own speech:

- rules: the default head (seeded idle sway and prosody nods; it moves 6-9 times slower than real heads);
- own head: the real speaker's own head, eyes and brows (the clip as a driving video, mouth gated to
  the audio, as `--driving` does). Its tracker errors are the real video's, so lip sync gains from them;
- another's head: the next clip's real speaker (its motion played forward and back to the length
  needed): real head motion that has nothing to do with this clip, as a generator's has.

Lip-sync r is at lag 0; mouth at rest is the share of scored silent frames (metrics.silence_rest_share),
as a mean over clips and pooled over frames. Approximate: 9 clips, 204 scored silent frames.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "real"
HEADS = ("rules", "own head", "another's head")


def mirrored(driving, frames: int):
    """`driving` (DrivingMotion) played forward, then backward, ... for `frames` frames (no jump anywhere)."""
    from talkinghead.motion.video_driven import DrivingMotion

    period = max(2 * len(driving) - 2, 1)
    index = np.arange(frames) % period
    index = np.where(index < len(driving), index, period - index)
    return DrivingMotion(driving.fps, driving.expression[index], driving.head[index], driving.gaze[index],
                         driving.lip_gap[index], driving.reference)


def clip_rows(clip: Path, other: Path) -> dict:
    from talkinghead.config import GenerateConfig
    from talkinghead.evaluation import metrics
    from talkinghead.evaluation.protocols import generate_measured, load_real_clip
    from talkinghead.evaluation.variants import for_clip
    from talkinghead.face.measure import mouth_aperture
    from talkinghead.pipeline import Pipeline, load_driving

    loaded = load_real_clip(clip, ROOT / "build" / "tracks")  # as `talkinghead eval --protocol self` reads it
    real, fps, voiced = loaded.real, loaded.fps, loaded.voiced
    n = len(real.landmarks)
    config = for_clip(GenerateConfig(), fps, clip.stem)
    rest = float(mouth_aperture(real.landmarks[0]))
    another = load_driving(other, config)
    drivers = {"rules": None, "own head": load_driving(clip, config),
               "another's head": mirrored(another, int(np.ceil(n / fps * another.fps)) + 2)}
    row = {"clip": clip.stem, "another": other.stem, "silent_frames": int(metrics.scored_silence(voiced, fps).sum())}
    for name, driving in drivers.items():
        pipeline = Pipeline.from_image(real.samples[0], config, driving=driving)
        apertures = generate_measured(pipeline, loaded.audio, None).apertures[:n]
        row[name] = {"lipsync_r": metrics.lagged_correlation(apertures, real.apertures).correlation,
                     "rest": metrics.silence_rest_share(apertures, voiced, rest, fps)}
    return row


def summary(rows: list[dict]) -> dict:
    out = {}
    for name in HEADS:
        scored = [(r[name]["rest"], r["silent_frames"]) for r in rows if r["silent_frames"]]
        out[name] = {"lipsync_r": float(np.mean([r[name]["lipsync_r"] for r in rows])),
                     "rest_mean": float(np.mean([s for s, _ in scored])) if scored else float("nan"),
                     "rest_pooled": float(sum(s * c for s, c in scored) / sum(c for _, c in scored)) if scored
                     else float("nan")}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of real talking clips (.mp4)")
    parser.add_argument("--out", type=Path, help="also write the rows and summary here (JSON)")
    args = parser.parse_args()
    os.environ.setdefault("GLOG_minloglevel", "2")
    if not args.data.is_dir():
        raise SystemExit(f"no folder {args.data}: give --data, a folder of real talking clips (.mp4)")
    clips = sorted(args.data.glob("*.mp4"))
    if len(clips) < 2:
        raise SystemExit(f"{args.data} has {len(clips)} .mp4 clip(s): this needs at least 2 (one lends its head)")
    if args.out is not None and args.out.is_dir():
        raise SystemExit(f"--out {args.out} is a folder: give a file name, e.g. {args.out / 'head_cost.json'}")
    from talkinghead.errors import TalkingHeadError

    rows = []
    print("| clip | head from | silent frames | " + " | ".join(f"{h}: lip r / rest" for h in HEADS) + " |")
    print("|---|---|---|" + "---|" * len(HEADS))
    for k, clip in enumerate(clips):
        try:
            row = clip_rows(clip, clips[(k + 1) % len(clips)])
        except TalkingHeadError as error:
            raise SystemExit(f"{clip}: {error}") from None
        rows.append(row)
        cells = [f"{row[h]['lipsync_r']:.3f} / {row[h]['rest']:.2f}" for h in HEADS]
        print(f"| {clip.stem} | {row['another']} | {row['silent_frames']} | " + " | ".join(cells) + " |", flush=True)
    result = summary(rows)
    for name, figures in result.items():
        print(f"{name}: lip-sync r {figures['lipsync_r']:.3f}, rest in silence {100 * figures['rest_mean']:.1f}% "
              f"(pooled {100 * figures['rest_pooled']:.1f}%)")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"rows": rows, "summary": result}, indent=1) + "\n")


if __name__ == "__main__":
    main()
