"""The `talkinghead eval` subcommand (registered by talkinghead.cli)."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = """examples:
  talkinghead eval --data ../shared/data/real --out build/eval
  talkinghead eval --data clips/ --protocol self --clip interview1 --max-seconds 5
  talkinghead eval --data ../shared/data/real --variant default --variant calm:motion.mouth_amplitude=0.6
  talkinghead eval --data ../shared/data/real --protocol self --variant "loo:motion.mouth=speech,motion.mouth_model=build/mouth/loo/{clip}.npz"
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "eval", help="measure quality on real talking clips (self-reenactment, cross-identity)",
        description="Generate from real clips' first frames and audio, re-track the output and score it against "
                    "the real video; also every portrait with each speech clip. Writes report.json, report.md, "
                    "plots/ and sheets/ (and videos/ unless --no-videos). Metric definitions: docs/evaluation.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES)
    p.add_argument("--data", type=Path, required=True,
                   help="folder with talking clips (.mp4 ...), portraits (.jpg/.png ...) and speech (.wav ...)")
    p.add_argument("--out", type=Path, default=Path("eval-report"), help="output folder (default: eval-report)")
    p.add_argument("--protocol", choices=("self", "cross", "both"), default="both",
                   help="self-reenactment, cross-identity or both (default: both)")
    p.add_argument("--variant", action="append", default=[], metavar="NAME[:field=value,...]",
                   help="a generator setting to evaluate, e.g. 'calm:motion.mouth_amplitude=0.6'; repeat to compare "
                        "settings side by side (default: one variant 'default' with the default settings); "
                        "'{clip}' in a text setting becomes the clip's name (leave-one-clip-out models)")
    p.add_argument("--clip", action="append", metavar="NAME", help="only these clips (repeatable)")
    p.add_argument("--portrait", action="append", metavar="NAME", help="only these portraits (repeatable)")
    p.add_argument("--speech", action="append", metavar="NAME", help="only these speech clips (repeatable)")
    p.add_argument("--max-seconds", type=float, default=None, help="use at most this much of each clip")
    p.add_argument("--no-identity", action="store_true", help="skip the identity metric (dlib)")
    p.add_argument("--no-videos", action="store_true", help="do not keep the generated MP4s")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run(args) -> int:
    from .variants import parse_variant
    from .runner import evaluate

    variants = [parse_variant(v) for v in args.variant]
    result = evaluate(args.data, args.out, variants, args.protocol, args.clip, args.portrait, args.speech,
                      args.max_seconds, not args.no_identity, not args.no_videos, quiet=args.quiet)
    if not args.quiet:
        print((args.out / "report.md").read_text())
        print(f"wrote {args.out / 'report.json'}, {args.out / 'report.md'}, plots/ and sheets/ "
              f"in {result['elapsed_seconds']:.0f} s")
    return 0
