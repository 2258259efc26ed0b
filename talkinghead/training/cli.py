"""The `talkinghead train` subcommand (registered by talkinghead.cli): `talkinghead train motion`."""

from __future__ import annotations

import argparse
from pathlib import Path

CONFIG_NAMES = ("tiny", "cpu", "cpu_speech", "cpu_causal", "gpu")  # training/motion_train.CONFIGS (torch is imported lazily)
DEVICES = ("auto", "cpu", "cuda")  # where training runs (motion_train.resolve_device)
EXAMPLES = """examples:
  pip install 'talkinghead[train]'    # torch 2.13.0, CPU build
  talkinghead data prepare ../shared/data/train --out build/train --speakers scripts/train_speakers.tsv
  talkinghead train motion --data build/train --config cpu --out build/motion_model.npz
  talkinghead train motion --data build/train --config cpu_causal --out build/motion_model_causal.npz
  talkinghead generate --image face.jpg --audio speech.wav --generator diffusion --motion-model build/motion_model.npz
"""


def add_parser(subparsers) -> None:
    """Register `train motion`."""
    p = subparsers.add_parser("train", help="train the learned parts on prepared data",
                              description="Training tools (needs the `train` extra). See docs/motion_model.md.")
    sub = p.add_subparsers(dest="train_command", required=True)
    q = sub.add_parser("motion", help="train the diffusion motion model on `talkinghead data prepare` shards",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
                       description="Train the motion model (head, expression, gaze; EDM diffusion transformer) and "
                                   "write a NumPy checkpoint that carries its config.")
    q.add_argument("--data", type=Path, required=True, help="a folder written by `talkinghead data prepare`")
    q.add_argument("--config", choices=CONFIG_NAMES, default="cpu",
                   help="size and schedule: tiny (CI, seconds), cpu (2 s windows, 7-9 min on 2 cores), cpu_speech (cpu "
                        "reading the speech encoder's states instead of prosody), cpu_causal "
                        "(80 ms windows for live), gpu (8 x 512, for hours of video) (default: cpu)")
    q.add_argument("--out", type=Path, required=True, help="checkpoint to write (.npz)")
    q.add_argument("--steps", type=int, help="override the config's number of steps")
    q.add_argument("--seed", type=int, help="override the config's seed (default 0)")
    q.add_argument("--device", choices=DEVICES, default="auto",
                   help="where the network trains: auto (a CUDA GPU if torch sees one, else the CPU), cpu, cuda "
                        "(default: auto)")
    q.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.set_defaults(run=run)


def run(args) -> int:
    """Train and write the checkpoint. Bad input raises TalkingHeadError, which the CLI prints as one line."""
    from ..errors import TalkingHeadError

    try:
        import torch  # noqa: F401
    except ImportError:
        raise TalkingHeadError("training needs torch: pip install 'talkinghead[train]' (torch 2.13.0, CPU build)") from None
    if args.out.exists() and not args.overwrite:
        raise TalkingHeadError(f"'{args.out}' exists: pass --overwrite to replace it")
    if args.steps is not None and args.steps < 1:
        raise TalkingHeadError(f"--steps must be at least 1, got {args.steps}")
    from tqdm import tqdm

    from .motion_data import load_dataset
    from .motion_train import CONFIGS, resolve_device, train, with_overrides

    config = with_overrides(CONFIGS[args.config], args.steps, args.seed)
    device = resolve_device(args.device)
    clips = load_dataset(args.data, config.model.fps)
    with tqdm(total=config.steps, disable=args.quiet, desc=f"training on {device}", unit="step") as bar:
        model = train(clips, config, lambda step, loss: (bar.update(1), bar.set_postfix(loss=f"{loss:.3f}")), device)
    model.save(args.out)
    last = model.info["history"][-1]
    print(f"wrote {args.out}: {len(model.info['clips'])} clips, {model.info['train_frames']} frames, "
          f"{config.steps} steps in {model.info['seconds']} s on {model.info['device']}, "
          f"validation loss {last['validation']:.3f}")
    return 0
