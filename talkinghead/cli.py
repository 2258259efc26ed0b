"""Command line: `talkinghead generate --image PORTRAIT --audio SPEECH --out OUT.mp4`."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

from .motion.compose import MOUTH_SOURCES
from .motion.learned_mouth import SILENCE_POSES
from .assets import ASSETS_DIR
from .config import ControlConfig, GenerateConfig, MixConfig, MotionConfig, RenderConfig, option_help

DEMO_DIR = ASSETS_DIR
# Other subcommands live beside the code they drive. Each module defines `add_parser(subparsers)`,
# which registers its subcommand with `set_defaults(run=...)`, `run(args) -> int` taking the parsed
# arguments. Modules must import only argparse-level things at the top (keeps `--help` fast).
SUBCOMMAND_MODULES = ("talkinghead.evaluation.cli", "talkinghead.server.cli", "talkinghead.data.cli")


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
    gen.add_argument("--text", help="words to speak with the built-in offline English voice (without --audio; with it, the "
                     "text is not used)")
    gen.add_argument("--out", required=True, type=Path, help="output MP4 (H.264 + AAC)")
    gen.add_argument("--fps", type=int, default=defaults.fps, help=ghelp["fps"])
    gen.add_argument("--size", type=int, default=render.size, help=rhelp["size"])
    gen.add_argument("--seed", type=int, default=motion.seed, help=mhelp["seed"])
    gen.add_argument("--blink-rate", type=float, default=motion.blink_rate, help=mhelp["blink_rate"])
    gen.add_argument("--head-amplitude", type=float, default=motion.head_amplitude, help=mhelp["head_amplitude"])
    gen.add_argument("--head-speed", type=float, default=motion.head_speed, help=mhelp["head_speed"])
    gen.add_argument("--mouth-amplitude", type=float, default=motion.mouth_amplitude, help=mhelp["mouth_amplitude"])
    gen.add_argument("--mouth", choices=MOUTH_SOURCES, default=motion.mouth, help=mhelp["mouth"])
    gen.add_argument("--mouth-model", default=motion.mouth_model, metavar="NPZ", help=mhelp["mouth_model"])
    gen.add_argument("--silence-mouth", choices=SILENCE_POSES, default=motion.silence_mouth, help=mhelp["silence_mouth"])
    gen.add_argument("--crf", type=int, default=defaults.crf, help=ghelp["crf"])
    _add_control_options(gen)
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
                     mouth_amplitude=args.mouth_amplitude, mouth=args.mouth, mouth_model=args.mouth_model,
                     silence_mouth=args.silence_mouth)
    return replace(GenerateConfig(), fps=args.fps, crf=args.crf, render=RenderConfig(size=args.size), motion=motion,
                   controls=_controls_from(args), mix=_mix_from(args))


# --- driving video, mixing, controls, direction and motion files ------------------------------------

REGIONS = ("mouth", "eyes", "gaze", "brows", "head")
CONTROL_EPILOG = """
driving video, mixing and controls:
  talkinghead generate --image face.jpg --driving actor.mp4 --out reenacted.mp4      # video drives all, its sound is the speech
  talkinghead generate --image face.jpg --audio speech.wav --driving actor.mp4 --out mixed.mp4   # audio: mouth, video: the rest
  talkinghead generate --image face.jpg --audio speech.wav --driving actor.mp4 --gate eyes=audio --gate head=0.5 --out m.mp4
  talkinghead generate --image face.jpg --audio speech.wav --emotion happy:0.8 --gaze left --distance 1.2 --out c.mp4
  talkinghead generate --image face.jpg --audio speech.wav --direction scene.yaml --motion-out motion.csv --out d.mp4
  talkinghead generate --image face.jpg --audio speech.wav --motion-in motion.csv --out replay.mp4
gates: REGION=audio|video|SHARE (the video's share, 0-1), regions mouth, eyes, gaze, brows, head.
amplitudes: NAME=SCALE for a region (final scale) or for a signal: audio, video (before mixing).
"""


def _key_value(names: tuple[str, ...], parse_value, hint: str):
    """argparse type for NAME=VALUE with NAME in `names`; `hint` says what VALUE may be."""
    def parse(text: str):
        name, sep, value = text.partition("=")
        name = name.strip().lower()
        if not sep or name not in names:
            raise argparse.ArgumentTypeError(f"{text!r}: use NAME=VALUE with NAME one of {', '.join(names)}")
        try:
            return name, parse_value(value.strip().lower())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: the value must be {hint}") from None
    return parse


def _gate_value(value: str) -> float:
    share = {"audio": 0.0, "video": 1.0}.get(value)
    share = float(value) if share is None else share
    if not 0.0 <= share <= 1.0:
        raise ValueError(value)
    return share


def _add_control_options(gen: argparse.ArgumentParser) -> None:
    """--driving, --gate, --amplitude, the controls, --direction and the motion-file options."""
    controls, chelp, xhelp = ControlConfig(), option_help(ControlConfig), option_help(MixConfig)
    gen.epilog = (gen.epilog or "") + "\n" + CONTROL_EPILOG
    gen.add_argument("--driving", type=Path, help="driving video: its head, eyes, brows (and, without --audio, mouth "
                     "and sound) drive the portrait, relative to its first frame")
    gen.add_argument("--reference", choices=("first", "neutral"), default=MixConfig().reference, help=xhelp["reference"])
    gen.add_argument("--gate", action="append", default=[], metavar="REGION=SOURCE",
                     type=_key_value(REGIONS, _gate_value, "audio, video or the video's share from 0 to 1"),
                     help="who drives a region: audio, video or the video's share (repeatable); default mouth=audio "
                          "with --audio (video without), the rest video")
    gen.add_argument("--amplitude", action="append", default=[], metavar="NAME=SCALE",
                     type=_key_value(REGIONS + ("audio", "video"), float, "a number (1 = unchanged)"),
                     help="scale of a region's motion or of all audio / video motion (repeatable), e.g. head=0.5")
    gen.add_argument("--gaze", default=controls.gaze, help=chelp["gaze"])
    gen.add_argument("--distance", type=float, default=controls.distance, help=chelp["distance"])
    gen.add_argument("--emotion", default=controls.emotion, metavar="NAME[:INTENSITY]", help=chelp["emotion"])
    gen.add_argument("--emotion-intensity", type=float, default=argparse.SUPPRESS,
                     help=f"{chelp['emotion_intensity']} (default {controls.emotion_intensity:g})")
    gen.add_argument("--expression-scale", type=float, default=controls.expression_scale, help=chelp["expression_scale"])
    gen.add_argument("--direction", type=Path, help="JSON / YAML file keyframing the controls over time (see README)")
    gen.add_argument("--motion-in", type=Path, help="render this motion file (.csv Live Link Face layout, or .json) "
                     "instead of generating motion")
    gen.add_argument("--motion-out", type=Path, help="also write the motion track: .csv (Live Link Face layout, for "
                     "Blender / Unreal avatars) or .json")


def _controls_from(args) -> ControlConfig:
    name, _, intensity = args.emotion.partition(":")
    given = getattr(args, "emotion_intensity", None)
    if intensity and given is not None:
        raise SystemExit("talkinghead: error: give the emotion's intensity once: --emotion NAME:INTENSITY or "
                         "--emotion-intensity")
    try:
        strength = float(intensity) if intensity else given
    except ValueError:
        raise SystemExit(f"talkinghead: error: --emotion {args.emotion!r}: the intensity after ':' must be a number") from None
    strength = ControlConfig().emotion_intensity if strength is None else strength
    return ControlConfig(gaze=args.gaze, distance=args.distance, emotion=name.strip().lower(), emotion_intensity=strength,
                         expression_scale=args.expression_scale)


def _mix_from(args) -> MixConfig:
    fields = {f"{region}_gate": share for region, share in args.gate}
    for name, scale in args.amplitude:
        fields[f"{name}_amplitude"] = scale
    return replace(MixConfig(), reference=args.reference, **fields)


def _run_generate(image: Path, audio: Path | None, out: Path, config: GenerateConfig, quiet: bool,
                  text: str | None = None, **motion) -> None:
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
        result = generate(image, audio, out, config, progress=progress, text=text, **motion)
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
            if args.audio is None and args.text is None and args.driving is None:
                raise TalkingHeadError("give the speech: --audio FILE, or --text 'words to speak' "
                                       "(or a --driving video with sound)")
            _run_generate(args.image, args.audio, args.out, _config_from(args), args.quiet, args.text,
                          driving=args.driving, direction=args.direction, motion_in=args.motion_in,
                          motion_out=args.motion_out)
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
