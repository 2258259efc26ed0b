"""Train motion models on a GPU machine that cannot read the prepared shards (the `device` tool's).

The shards of `talkinghead data prepare` hold landmarks and sound (81 MB for the 6 training minutes);
training reads only the clips made of them (motion, prosody, rest, speech states: about 14 MB). `pack`
writes those here; `train` runs there, with any config field overridden:

    python scripts/device_train.py pack --data build/train --out .device/clips.npz
    python3 scripts/device_train.py train --clips .device/clips.npz --config cpu --seed 1 --out cpu_s1.npz
    python3 scripts/device_train.py train --clips .device/clips.npz --config gpu --seconds 240 --out gpu.npz
    python3 scripts/device_train.py train --clips .device/clips.npz --config cpu --set drop_controls=1 --out x.npz

`--seconds` fits the number of steps to a time budget: it times 100 steps first, then trains from the
start with the config's schedule stretched over the steps that fit. Training is the library's
(`talkinghead.training.motion_train.train`, device auto), so a checkpoint made here is one
`talkinghead train motion` would make with the same settings, up to the GPU's arithmetic.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from talkinghead.training.cli import CONFIG_NAMES, DEVICES  # noqa: E402  (no torch import)

PROBE_STEPS = 100  # steps timed by --seconds before the real run


def pack(data: Path, out: Path) -> None:
    """Every kept clip of a prepared folder -> one .npz (arrays per clip, names and splits)."""
    from talkinghead.training.motion_data import load_dataset
    from talkinghead.training.motion_train import CONFIGS

    clips = load_dataset(data, CONFIGS["cpu"].model.fps)
    arrays = {}
    for i, c in enumerate(clips):
        arrays.update({f"{i}_motion": c.motion, f"{i}_audio": c.audio, f"{i}_rest": c.rest})
        if c.speech is not None:  # the speech encoder's states (a cpu_speech model reads them)
            arrays[f"{i}_speech"] = c.speech
    meta = [{"name": c.name, "split": c.split, "has_audio": c.has_audio} for c in clips]
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, meta=json.dumps(meta), **arrays)
    print(f"wrote {out}: {len(clips)} clips, {sum(len(c.motion) for c in clips)} frames, "
          f"{out.stat().st_size / 1e6:.1f} MB")


def unpack(path: Path) -> list:
    """The clips `pack` wrote."""
    from talkinghead.training.motion_data import Clip

    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        return [Clip(m["name"], m["split"], z[f"{i}_motion"], z[f"{i}_audio"], z[f"{i}_rest"], m["has_audio"],
                     z[f"{i}_speech"] if f"{i}_speech" in z.files else None)
                for i, m in enumerate(meta)]


def overridden(config, settings: list[str]):
    """TrainConfig with `field=value` settings (numbers, parsed as the field's current type)."""
    known = {f.name: f for f in fields(config) if f.name != "model"}
    changes = {}
    for setting in settings:
        name, _, value = setting.partition("=")
        if name not in known:
            raise SystemExit(f"error: --set {setting}: no such training field (one of {', '.join(known)})")
        changes[name] = type(getattr(config, name))(value)
    return replace(config, **changes)


def train(args) -> None:
    """Train one config on the packed clips and write the checkpoint and a JSON summary beside it."""
    import torch

    from talkinghead.training.motion_train import CONFIGS, resolve_device, with_overrides
    from talkinghead.training.motion_train import train as train_model

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    clips = unpack(args.clips)
    config = with_overrides(overridden(CONFIGS[args.config], args.set), args.steps, args.seed)
    if config.model.audio_features == "prosody":  # the packed audio vectors as they are (other features packed
        # in their place train without a config change)
        config = replace(config, model=replace(config.model, audio_dims=clips[0].audio.shape[1]))
    probe_seconds = None
    if args.seconds:
        started = time.perf_counter()
        train_model(clips, replace(config, steps=PROBE_STEPS, validate_every=PROBE_STEPS), device=device)
        probe_seconds = time.perf_counter() - started
        steps = int(args.seconds / (probe_seconds / PROBE_STEPS))
        config = replace(config, steps=max(PROBE_STEPS, min(steps, config.steps)),
                         warmup_steps=min(config.warmup_steps, steps // 10))
    model = train_model(clips, config, device=device)
    model.save(args.out)
    last = model.info["history"][-1]
    summary = {"config": args.config, "set": args.set, "seed": config.seed, "steps": config.steps,
               "batch": config.batch, "seconds": model.info["seconds"], "device": model.info["device"],
               "torch": model.info["torch"], "validation": last["validation"],
               "validation_by_sigma": last["validation_by_sigma"], "probe_seconds": probe_seconds,
               "history": [(h["step"], round(h["train"], 4), round(h["validation"], 4)) for h in model.info["history"]]}
    Path(args.out).with_suffix(".json").write_text(json.dumps(summary, indent=1))
    print(f"{args.out}: {config.steps} steps in {model.info['seconds']} s on {model.info['device']}, "
          f"validation {last['validation']:.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="prepared folder -> clips .npz (here)")
    p.add_argument("--data", type=Path, default=Path("build/train"))
    p.add_argument("--out", type=Path, default=Path(".device/clips.npz"))
    t = sub.add_parser("train", help="train one config on packed clips (there)")
    t.add_argument("--clips", type=Path, required=True, help="the .npz `pack` wrote")
    t.add_argument("--config", default="cpu", choices=CONFIG_NAMES,
                   help="a named config of training/motion_train.CONFIGS (default: cpu)")
    t.add_argument("--seed", type=int, help="override the config's seed")
    t.add_argument("--steps", type=int, help="override the config's steps")
    t.add_argument("--seconds", type=float, help="fit the steps to this many seconds of training")
    t.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a training field")
    t.add_argument("--device", default="auto", choices=DEVICES, help="as `talkinghead train motion`")
    t.add_argument("--threads", type=int, default=2, help="torch CPU threads (several runs share the machine)")
    t.add_argument("--out", type=Path, required=True, help="checkpoint to write; a .json summary goes beside it")
    args = parser.parse_args()
    if args.command == "pack":
        pack(args.data, args.out)
    else:
        train(args)


if __name__ == "__main__":
    main()
