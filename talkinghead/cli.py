"""Command line: `talkinghead generate --image PORTRAIT --audio SPEECH [--out OUT.mp4]`.

The option flags are built from the config schema (talkinghead.schema); this module adds only the
inputs and outputs, and runs the pipeline.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path

from .assets import ASSETS_DIR
from .config import GenerateConfig
from .errors import TalkingHeadError
from .schema import add_config_arguments, config_from_args

DEMO_PORTRAIT, DEMO_SPEECH = ASSETS_DIR / "astronaut.png", ASSETS_DIR / "demo_speech.wav"
# Other subcommands live beside the code they drive. Each module defines `add_parser(subparsers)`,
# which registers its subcommand with `set_defaults(run=...)`, `run(args) -> int` taking the parsed
# arguments. Modules must import only argparse-level things at the top (keeps `--help` fast).
SUBCOMMAND_MODULES = ("talkinghead.batch", "talkinghead.data.cli", "talkinghead.evaluation.cli", "talkinghead.server.cli",
                      "talkinghead.training.cli")
GENERATE_EXAMPLES = """examples:
  talkinghead generate --image face.jpg --audio speech.wav                 # writes face_speech.mp4 here
  talkinghead generate --image face.jpg --text 'Hello, world.' --out hello.mp4
  talkinghead generate --image face.jpg --driving actor.mp4 --out reenacted.mp4      # the video drives all, its sound is the speech
  talkinghead generate --image face.jpg --audio speech.wav --driving actor.mp4 --out mixed.mp4   # audio: mouth, video: the rest
  talkinghead generate --image face.jpg --audio speech.wav --driving actor.mp4 --gate eyes=audio --gate head=0.5 --out m.mp4
  talkinghead generate --image face.jpg --audio speech.wav --emotion happy:0.8 --gaze left --distance 1.2 --out c.mp4
  talkinghead generate --image face.jpg --audio speech.wav --direction scene.yaml --motion-out motion.csv --out d.mp4
  talkinghead generate --image face.jpg --audio speech.wav --motion-in motion.csv --out replay.mp4
"""


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; for `generate` or `demo` the other subcommands are left out (their modules
    cost about 30 ms of imports a run)."""
    parser = argparse.ArgumentParser(prog="talkinghead", description="One portrait + speech -> a talking-head MP4, on a CPU.")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="animate a portrait with a speech recording (or text)",
                         formatter_class=argparse.RawDescriptionHelpFormatter, epilog=GENERATE_EXAMPLES,
                         description="Animate a portrait with speech. Every option below has a Python/API name "
                                     "(see README, 'Options'); defaults and ranges come from talkinghead/config.py.")
    inputs = gen.add_argument_group("inputs and outputs")
    inputs.add_argument("--image", required=True, type=Path, help="portrait: JPEG, PNG or WebP with one visible face")
    inputs.add_argument("--audio", type=Path, help="speech: WAV, MP3, M4A, FLAC, OGG, or a video file's audio track")
    inputs.add_argument("--text", help="words to speak with the built-in offline English voice (instead of --audio)")
    inputs.add_argument("--driving", type=Path, help="driving video: its head, eyes, brows (and, without --audio, "
                        "mouth and sound) drive the portrait, relative to its first frame")
    inputs.add_argument("--direction", type=Path, help="JSON / YAML file keyframing the controls over time (see README)")
    inputs.add_argument("--motion-in", type=Path, help="render this motion file (.csv in Live Link Face's layout, or "
                        ".json) instead of generating motion")
    inputs.add_argument("--out", type=Path, help="output MP4 (default: IMAGE_AUDIO.mp4 in the current folder)")
    inputs.add_argument("--motion-out", type=Path, help="also write the motion track: .csv (Live Link Face layout, "
                        "for Blender / Unreal avatars) or .json")
    inputs.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    inputs.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_arguments(gen.add_argument_group("options (API names in the README's options table)"))

    demo = sub.add_parser("demo", help="make the demo video from the bundled portrait and speech")
    demo.add_argument("--out", type=Path, default=Path("demo.mp4"), help="output MP4 (default: demo.mp4)")
    if command not in ("generate", "demo"):
        for module_name in SUBCOMMAND_MODULES:
            importlib.import_module(module_name).add_parser(sub)
    return parser


def default_output(image: Path, audio: Path | None, text: str | None, driving: Path | None) -> Path:
    """IMAGE_AUDIO.mp4 (or IMAGE_text / IMAGE_DRIVING) in the current folder."""
    second = audio.stem if audio else driving.stem if driving else "text" if text else "speech"
    return Path(f"{image.stem}_{second}.mp4")


def check_output(out: Path, overwrite: bool, inputs: tuple = (), motion_out: Path | None = None) -> None:
    """Refuse a non-MP4 name, an output that is an input or cannot be written, or an existing file (unless
    --overwrite), before any work."""
    from .outputs import check_output_paths

    if out.suffix.lower() != ".mp4":
        raise TalkingHeadError(f"--out {out} must end in .mp4")
    check_output_paths({"--out": out, "--motion-out": motion_out}, inputs)
    if out.exists() and not overwrite:
        raise TalkingHeadError(f"{out} already exists: choose another --out, or add --overwrite to replace it")


def _run_generate(args, config: GenerateConfig) -> None:
    from .pipeline import generate

    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            from tqdm import tqdm  # imported only when a bar is shown (--quiet runs start 25 ms sooner)

            bar = tqdm(total=total, unit="frame", desc=args.out.name, leave=False)
        bar.update(1)

    try:
        result = generate(args.image, args.audio, args.out, config, progress=None if args.quiet else progress,
                          text=args.text,
                          driving=getattr(args, "driving", None), direction=getattr(args, "direction", None),
                          motion_in=getattr(args, "motion_in", None), motion_out=getattr(args, "motion_out", None))
    finally:
        if bar is not None:
            bar.close()
    if not args.quiet:
        print(f"wrote {result.path} ({result.frames} frames, {result.width}x{result.height}, "
              f"{result.audio_seconds:.1f} s) in {result.elapsed_seconds:.1f} s "
              f"({result.realtime_factor:.1f}x real time)")


def _generate(args) -> None:
    if args.audio is None and args.text is None and args.driving is None:
        raise TalkingHeadError("give the speech: --audio FILE, or --text 'words to speak' (or a --driving video with sound)")
    config = config_from_args(args)
    args.out = args.out or default_output(args.image, args.audio, args.text, args.driving)
    check_output(args.out, args.overwrite, (args.image, args.audio, args.driving, args.direction, args.motion_in),
                 args.motion_out)
    _run_generate(args, config)


def _demo(args) -> None:
    demo = argparse.Namespace(image=DEMO_PORTRAIT, audio=DEMO_SPEECH, text=None, out=args.out, quiet=False)
    check_output(args.out, overwrite=True)
    _run_generate(demo, GenerateConfig())


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    logging.basicConfig(level=logging.WARNING, format="talkinghead: %(message)s")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser(argv[0] if argv else None).parse_args(argv)
    from .outputs import interrupt_on_signals

    interrupt_on_signals()  # SIGTERM / SIGHUP unwind like Ctrl-C: partial files removed, nothing left behind
    try:
        if getattr(args, "run", None) is not None:
            return int(args.run(args) or 0)
        {"generate": _generate, "demo": _demo}[args.command](args)
    except TalkingHeadError as exc:
        print(f"talkinghead: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("talkinghead: interrupted; no output written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
