"""Calibrate a motion model on its own training split, and store the figures in the checkpoint.

    python scripts/calibrate_motion.py --shards build/train --model talkinghead/assets/motion_model.npz
    python scripts/calibrate_motion.py --shards build/train --model talkinghead/assets/motion_model_causal.npz \\
        --generator diffusion-live --keep-gain

Two figures, both measured on the speech clips of the --split (default: train, the speakers the model learned
from; never the held-out ones), from their sound tracks:

- pause_follow: real heads move more slowly in pauses than while their speaker talks (on the training split,
  the median head speed in the silent stretches the evaluation scores is 0.58 of that in voiced frames); the
  model's heads hardly do (0.91). DiffusionMotion lets the shown head close only pause_follow of its
  distance to the sampled pose each frame while its energy detector hears a pause (source.settle_head).
  This finds, by bisection, the pause_follow whose pause-over-voiced speed ratio (pooled medians over the
  clips and --pause-seeds sampling seeds) equals the real clips'. The ratio does not depend on the head
  gain, so this comes first.
- head_gain: the sampled head motion (after the source's smoothing) is narrower than the real motion it was
  trained on: a diffusion model with a few solver steps drifts towards the mean. This compares the
  head-rotation spread with the clip's real one (mean of the per-clip ratios, as scripts/eval_motion.py
  reports it) and stores the factor that makes that ratio 1. DiffusionMotion scales the generated head
  rotation and translation by it. --keep-gain leaves the stored gain (the live model has none: its short
  windows barely smooth, and a gain would scale its jitter with its spread; docs/motion_model.md).

Re-running is idempotent: the figures already stored are taken into account.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from threadpoolctl import threadpool_limits  # noqa: E402

from eval_motion import evaluate_variant, generate, pause_ratio, shard_clips, speech_and_pause_speeds  # noqa: E402
from talkinghead.errors import TalkingHeadError  # noqa: E402
from talkinghead.evaluation.variants import parse_variant  # noqa: E402
from talkinghead.motion.learned.checkpoint import MotionModel, load_cached  # noqa: E402

BISECTION_STEPS = 8  # halvings of the log-spaced pause_follow interval
FOLLOW_RANGE = (0.02, 1.0)


def with_info(model: MotionModel, folder: Path, **info) -> Path:
    """A copy of the checkpoint with `info` changed, in `folder`."""
    path = folder / f"calibrating_{len(list(folder.iterdir()))}.npz"
    MotionModel(model.config, model.weights, model.stats, {**model.info, **info}).save(path)
    return path


def model_pause_ratio(variant, model: MotionModel, follow: float, clips: list[dict], seeds: int, folder: Path) -> float:
    path = with_info(model, folder, pause_follow=follow)
    pairs = []
    for seed in range(seeds):
        config = replace(variant.config, motion=replace(variant.config.motion, motion_model=str(path), seed=seed,
                                                        mouth="loudness"))
        for clip in clips:
            vectors, _ = generate(config, clip["audio"], clip["rest"], int(round(clip["fps"])))
            pairs.append(speech_and_pause_speeds(vectors[:len(clip["vectors"])], clip["audio"], clip["fps"]))
    return pause_ratio(pairs)


def calibrate_pause_follow(variant, model: MotionModel, clips: list[dict], seeds: int, folder: Path) -> dict:
    """Bisection (log scale) for the pause_follow whose model pause ratio equals the real one."""
    real = pause_ratio([speech_and_pause_speeds(c["vectors"], c["audio"], c["fps"]) for c in clips])
    lo, hi = np.log(FOLLOW_RANGE[0]), np.log(FOLLOW_RANGE[1])
    unsettled = model_pause_ratio(variant, model, 1.0, clips, seeds, folder)
    if unsettled <= real:  # the model already settles as much as real heads: leave its heads as sampled
        return {"real_pause_ratio": real, "model_pause_ratio": unsettled, "unsettled_pause_ratio": unsettled,
                "pause_follow": 1.0}
    for _ in range(BISECTION_STEPS):
        middle = (lo + hi) / 2
        if model_pause_ratio(variant, model, float(np.exp(middle)), clips, seeds, folder) > real:
            hi = middle
        else:
            lo = middle
    follow = round(float(np.exp((lo + hi) / 2)), 3)
    return {"real_pause_ratio": real, "unsettled_pause_ratio": unsettled, "pause_follow": follow,
            "model_pause_ratio": model_pause_ratio(variant, model, follow, clips, seeds, folder)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=Path, required=True, help="a `talkinghead data prepare` folder")
    parser.add_argument("--model", type=Path, required=True, help="the checkpoint to calibrate (rewritten in place)")
    parser.add_argument("--generator", default="diffusion", choices=("diffusion", "diffusion-live"))
    parser.add_argument("--split", default="train")
    parser.add_argument("--pause-seeds", type=int, default=3, help="sampling seeds the pause ratio pools")
    parser.add_argument("--keep-gain", action="store_true", help="calibrate pause_follow only, keep the head gain")
    parser.add_argument("--dry-run", action="store_true", help="print the figures, do not write them")
    args = parser.parse_args()
    if not (args.shards / "manifest.tsv").is_file():
        raise SystemExit(f"{args.shards} is not a prepared dataset (no manifest.tsv): make one with "
                         "`talkinghead data prepare VIDEOS --out FOLDER`")
    try:
        model = MotionModel.load(args.model)
    except TalkingHeadError as exc:
        raise SystemExit(str(exc)) from None
    variant = parse_variant(f"calibrate:motion.generator={args.generator}")
    clips = shard_clips(args.shards, args.split, speech_only=True)
    if not clips:
        raise SystemExit(f"no speech clips in split '{args.split}' of {args.shards}")
    with threadpool_limits(1), tempfile.TemporaryDirectory() as folder:
        pause = calibrate_pause_follow(variant, model, clips, max(args.pause_seeds, 1), Path(folder))
        stored = float(model.info.get("head_gain", 1.0))
        path = with_info(model, Path(folder), pause_follow=pause["pause_follow"])
        spread = evaluate_variant(replace(variant, config=replace(variant.config, motion=replace(
            variant.config.motion, motion_model=str(path)))), clips, seeds=1)
    ratio = spread["head_spread_ratio"]
    gain = stored if args.keep_gain else stored / ratio
    print(json.dumps({"model": str(args.model), "clips": len(clips), **pause,
                      "spread_ratio_with_stored_gain": ratio, "stored_gain": stored, "head_gain": gain,
                      "roughness": spread["roughness"], "real_roughness": spread["real_roughness"]}))
    if not args.dry_run:
        MotionModel(model.config, model.weights, model.stats,
                    {**model.info, "head_gain": round(gain, 4), "head_gain_split": args.split,
                     "pause_follow": pause["pause_follow"], "pause_ratio": round(pause["real_pause_ratio"], 3)}
                    ).save(args.model)
        load_cached.cache_clear()


if __name__ == "__main__":
    main()
