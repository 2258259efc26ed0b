"""The `talkinghead data` subcommand (registered by talkinghead.cli): `talkinghead data prepare`."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from dataclasses import fields
from pathlib import Path

EXAMPLES = """examples:
  talkinghead data prepare ../shared/data/train --out build/train --speakers scripts/train_speakers.tsv
  talkinghead data prepare clips/*.mp4 --out dataset --workers 1
  talkinghead data prepare corpus/manifest.tsv --out dataset --address ray://head:10001
  talkinghead data prepare ../shared/data/train --out build/train --max-turn-deg 20   # re-curates, no re-tracking
"""


def add_parser(subparsers) -> None:
    """Register `data prepare`."""
    from .filters import CurationConfig

    p = subparsers.add_parser("data", help="prepare training data from talking videos",
                              description="Training-data tools. See docs/data.md.")
    sub = p.add_subparsers(dest="data_command", required=True)
    q = sub.add_parser("prepare", help="talking videos -> curated shards + manifest with speaker-disjoint splits",
                       description="Split videos into shots, track each clip in image mode, compute motion, Whisper "
                                   "speech features and voice activity, write shards and a manifest, curate with "
                                   "the filters below and write a report (DATASET/report/). A re-run skips "
                                   "finished videos; changing only thresholds re-curates without re-tracking.",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES)
    q.add_argument("videos", nargs="+", help="video files, folders (recursive; a MANIFEST.tsv inside is used) or "
                                              "manifest .tsv files with a 'file' column (and 'speaker', 'kind')")
    q.add_argument("--out", type=Path, required=True, help="dataset folder")
    q.add_argument("--speakers", type=Path, help="TSV with 'file' and 'speaker' columns (default: a video is its own speaker)")
    q.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="parallel workers on a local Ray (1: no Ray) (default: all cores)")
    q.add_argument("--address", help="join this Ray cluster instead of starting one (the --out folder must be shared)")
    for f in fields(CurationConfig):
        q.add_argument(f"--{f.name.replace('_', '-')}", type=float, default=f.default,
                       help=f"curation threshold (default: {f.default})")
    q.set_defaults(run=run)


def run(args) -> int:
    """talkinghead data prepare."""
    from ..errors import TalkingHeadError
    from .filters import CurationConfig, cascade, curate
    from .inputs import expand_inputs, read_speakers
    from .prepare import PrepareConfig
    from .report import build_report, write_report
    from .runner import run_jobs
    from .shards import speaker_split, write_manifest

    if args.workers < 1:
        raise TalkingHeadError(f"--workers must be at least 1, got {args.workers}")
    if args.out.exists() and not args.out.is_dir():
        raise TalkingHeadError(f"--out '{args.out}' is a file: give a folder (new, or one a previous run wrote)")
    started = time.perf_counter()
    jobs = expand_inputs(args.videos, read_speakers(args.speakers))
    created = not args.out.exists()
    args.out.mkdir(parents=True, exist_ok=True)
    log_file = open(args.out / "prepare.log", "a", encoding="utf-8")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)
        log_file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
        log_file.flush()

    config = PrepareConfig()
    curation = CurationConfig(**{f.name: getattr(args, f.name) for f in fields(CurationConfig)})
    try:
        records, summary = run_jobs(jobs, str(args.out.resolve()), config, args.workers, args.address, log)
    finally:
        log_file.close()
    clips = manifest_rows(records)
    if not clips:  # nothing to write a dataset of: say why, and leave no empty dataset behind
        if created:
            shutil.rmtree(args.out, ignore_errors=True)
        reasons = [f"{Path(r['path']).name}: {r['reason']}" for r in records if r.get("reason")]
        if not reasons:
            why = ": none has a long enough stretch with a face"
        else:
            why = f" ({reasons[0]}{f'; and {len(reasons) - 1} more' if len(reasons) > 1 else ''})"
        raise TalkingHeadError(f"no clip could be prepared from {len(records)} video(s){why}")
    curate(clips, curation)
    splits = speaker_split([c["speaker"] for c in clips])
    for clip in clips:
        clip["split"] = splits[clip["speaker"]]
    summary["wall_s"] = time.perf_counter() - started
    meta = {"settings": config.digest(), "curation": curation.__dict__, "speech_layer": config.speech_layer,
            "grid": config.grid.__dict__, "splits": splits}
    write_manifest(args.out, clips, meta)
    report = build_report(cascade(clips, curation), clips, [r for r in records if r.get("key")], summary)
    md = write_report(args.out, report, clips, curation)
    print(md.read_text())
    skipped = sum(r.get("status") != "ok" for r in records)
    print(f"wrote {args.out / 'manifest.json'}, manifest.tsv, shards/ and {md.parent}/ in {summary['wall_s']:.1f} s "
          f"({summary['processed']} prepared, {summary['done_before']} already done"
          + (f"; {skipped} of the {len(records)} videos skipped, see the report)" if skipped else ")"))
    return 0


def manifest_rows(records: list[dict]) -> list[dict]:
    """One manifest row per clip of every prepared video."""
    rows = []
    for record in records:
        for clip in record.get("clips", []):
            stats = clip["stats"]
            rows.append({"id": clip["id"], "video": record["path"], "speaker": record["speaker"], "kind": record["kind"],
                         "start_s": clip["start_s"], "seconds": clip["seconds"], "frames": clip["frames"],
                         "fps": clip["fps"], "av_offset_s": stats.get("av_offset_s", ""), "av_r": stats.get("av_r", ""),
                         "shard": f"shards/{clip['id']}.npz", "stats": stats})
    return rows
