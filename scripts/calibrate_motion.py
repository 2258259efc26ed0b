"""Calibrate a motion model's head gain on its own training split, and store it in the checkpoint.

    python scripts/calibrate_motion.py --shards build/train --model talkinghead/assets/motion_model.npz
    python scripts/calibrate_motion.py --shards build/train --model talkinghead/assets/motion_model_causal.npz \\
        --generator diffusion-live

The sampled head motion (after the source's smoothing) is narrower than the real motion it was trained on:
a diffusion model with a few solver steps drifts towards the mean. This generates head motion for every
speech clip of the --split (default: train, the speakers the model learned from; never the held-out ones)
from its sound track, compares the head-rotation spread with the clip's real one (mean of the per-clip
ratios, as scripts/eval_motion.py reports it) and writes head_gain = the factor that makes that ratio 1
into the checkpoint's info. DiffusionMotion scales the generated head rotation and translation by it.
Re-running is idempotent: the gain already stored is taken into account.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from threadpoolctl import threadpool_limits  # noqa: E402

from eval_motion import evaluate_variant, shard_clips  # noqa: E402
from talkinghead.errors import TalkingHeadError  # noqa: E402
from talkinghead.evaluation.variants import parse_variant  # noqa: E402
from talkinghead.motion.learned.checkpoint import MotionModel, load_cached  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=Path, required=True, help="a `talkinghead data prepare` folder")
    parser.add_argument("--model", type=Path, required=True, help="the checkpoint to calibrate (rewritten in place)")
    parser.add_argument("--generator", default="diffusion", choices=("diffusion", "diffusion-live"))
    parser.add_argument("--split", default="train")
    parser.add_argument("--dry-run", action="store_true", help="print the gain, do not write it")
    args = parser.parse_args()
    if not (args.shards / "manifest.tsv").is_file():
        raise SystemExit(f"{args.shards} is not a prepared dataset (no manifest.tsv): make one with "
                         "`talkinghead data prepare VIDEOS --out FOLDER`")
    try:
        model = MotionModel.load(args.model)
    except TalkingHeadError as exc:
        raise SystemExit(str(exc)) from None
    stored = float(model.info.get("head_gain", 1.0))
    variant = parse_variant(f"calibrate:motion.generator={args.generator}")
    variant = replace(variant, config=replace(variant.config, motion=replace(variant.config.motion,
                                                                             motion_model=str(args.model))))
    clips = shard_clips(args.shards, args.split, speech_only=True)
    if not clips:
        raise SystemExit(f"no speech clips in split '{args.split}' of {args.shards}")
    with threadpool_limits(1):
        result = evaluate_variant(variant, clips, seeds=1)
    ratio = result["head_spread_ratio"]
    gain = stored / ratio
    print(json.dumps({"model": str(args.model), "clips": len(clips), "spread_ratio_with_stored_gain": ratio,
                      "stored_gain": stored, "head_gain": gain, "roughness": result["roughness"],
                      "real_roughness": result["real_roughness"]}))
    if not args.dry_run:
        MotionModel(model.config, model.weights, model.stats,
                     {**model.info, "head_gain": round(gain, 4), "head_gain_split": args.split}).save(args.model)
        load_cached.cache_clear()


if __name__ == "__main__":
    main()
