"""Command line: `talkinghead generate --image PORTRAIT --audio SPEECH --out OUT.mp4`."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

from .config import GenerateConfig, MotionConfig, RenderConfig, option_help

DEMO_DIR = Path(__file__).parent / "assets"
# Other subcommands live beside the code they drive. Each module defines `add_parser(subparsers)`,
# which registers its subcommand with `set_defaults(run=...)`, `run(args) -> int` taking the parsed
# arguments. Modules must import only argparse-level things at the top (keeps `--help` fast).
SUBCOMMAND_MODULES = ("talkinghead.evaluation.cli", "talkinghead.server.cli")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults and keeps the examples' line breaks."""


def _parser() -> argparse.ArgumentParser:
    defaults, motion, render = GenerateConfig(), MotionConfig(), RenderConfig()
    mhelp, rhelp, ghelp = option_help(MotionConfig), option_help(RenderConfig), option_help(GenerateConfig)
    parser = argparse.ArgumentParser(prog="talkinghead", description="One portrait + speech -> a talking-head MP4, on a CPU.")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="animate a portrait with a speech recording (or text)",
                         formatter_class=HelpFormatter,
                         epilog="examples:\n  talkinghead generate --image face.jpg --audio speech.wav --out talking.mp4\n"
                                "  talkinghead generate --image face.jpg --text 'Hello, world.' --out hello.mp4")
    gen.add_argument("--image", required=True, type=Path, help="portrait: JPEG, PNG or WebP with one visible face")
    gen.add_argument("--audio", type=Path, help="speech: WAV, MP3, M4A, FLAC, OGG, or a video file's audio track")
    gen.add_argument("--text", help="words to speak with the built-in offline English voice (when no --audio is given)")
    gen.add_argument("--out", required=True, type=Path, help="output MP4 (H.264 + AAC)")
    gen.add_argument("--fps", type=int, default=defaults.fps, help=ghelp["fps"])
    gen.add_argument("--size", type=int, default=render.size, help=rhelp["size"])
    gen.add_argument("--seed", type=int, default=motion.seed, help=mhelp["seed"])
    gen.add_argument("--blink-rate", type=float, default=motion.blink_rate, help=mhelp["blink_rate"])
    gen.add_argument("--head-amplitude", type=float, default=motion.head_amplitude, help=mhelp["head_amplitude"])
    gen.add_argument("--head-speed", type=float, default=motion.head_speed, help=mhelp["head_speed"])
    gen.add_argument("--mouth-amplitude", type=float, default=motion.mouth_amplitude, help=mhelp["mouth_amplitude"])
    gen.add_argument("--crf", type=int, default=defaults.crf, help=ghelp["crf"])
    gen.add_argument("--quiet", action="store_true", help="no progress bar")

    demo = sub.add_parser("demo", help="make the demo video from the bundled portrait and speech")
    demo.add_argument("--out", type=Path, default=Path("demo.mp4"), help="output MP4")
    for module_name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # that part of the package is not built (yet)
            raise
        module.add_parser(sub)
    return parser


def _config_from(args) -> GenerateConfig:
    if args.fps < 1 or args.fps > 120:
        raise SystemExit(f"talkinghead: error: --fps {args.fps} is out of range: use 1 to 120 (25 is standard)")
    if args.size < 64 or args.size > 4096:
        raise SystemExit(f"talkinghead: error: --size {args.size} is out of range: use 64 to 4096 (512 is the default)")
    motion = replace(MotionConfig(), seed=args.seed, blink_rate=max(args.blink_rate, 0.0),
                     head_amplitude=args.head_amplitude, head_speed=args.head_speed,
                     mouth_amplitude=args.mouth_amplitude)
    return replace(GenerateConfig(), fps=args.fps, crf=args.crf, render=RenderConfig(size=args.size), motion=motion)


def _run_generate(image: Path, audio: Path | None, out: Path, config: GenerateConfig, quiet: bool,
                  text: str | None = None) -> None:
    from tqdm import tqdm

    from .pipeline import generate

    if out.suffix.lower() != ".mp4":
        raise SystemExit(f"talkinghead: error: --out {out} must end in .mp4")
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="frame", desc=out.name, disable=quiet, leave=False)
        bar.update(1)

    try:
        result = generate(image, audio, out, config, progress=progress, text=text)
    finally:
        if bar is not None:
            bar.close()
    if not quiet:
        print(f"wrote {result.path} ({result.frames} frames, {result.width}x{result.height}, "
              f"{result.audio_seconds:.1f} s) in {result.elapsed_seconds:.1f} s "
              f"({result.realtime_factor:.1f}x real time)")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    logging.basicConfig(level=logging.WARNING, format="talkinghead: %(message)s")
    args = _parser().parse_args(argv)
    from .errors import TalkingHeadError

    try:
        if getattr(args, "run", None) is not None:
            return int(args.run(args) or 0)
        if args.command == "generate":
            if args.audio is None and args.text is None:
                raise TalkingHeadError("give the speech: --audio FILE, or --text 'words to speak'")
            _run_generate(args.image, args.audio, args.out, _config_from(args), args.quiet, args.text)
        elif args.command == "demo":
            _run_generate(DEMO_DIR / "astronaut.png", DEMO_DIR / "demo_speech.wav", args.out, GenerateConfig(), False)
    except TalkingHeadError as exc:
        print(f"talkinghead: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("talkinghead: interrupted; no output written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
