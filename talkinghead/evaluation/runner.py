"""`talkinghead eval`: run the protocols over a folder and write the report files."""

from __future__ import annotations

import os
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path

from ..errors import TalkingHeadError
from . import protocols, report
from .protocols import AUDIO_SUFFIXES, IMAGE_SUFFIXES, VIDEO_SUFFIXES, Scorer, files_in
from .motion_measures import add_motion_distance
from .variants import REAL, Variant

DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "talkinghead" / "tracks"


def _select(paths: list[Path], names: list[str] | None, kind: str, folder: Path) -> list[Path]:
    if not names:
        return paths
    chosen = []
    for name in names:
        match = [p for p in paths if p.name == name or p.stem == name]
        if not match:
            raise TalkingHeadError(f"no {kind} named '{name}' in {folder}: "
                                   f"choose from {', '.join(p.name for p in paths) or 'none'}")
        chosen += match
    return chosen


def _with_figures(result: protocols.ClipResult, out_dir: Path) -> list[dict]:
    """Write one clip's aperture plot and contact sheet; its rows for the report."""
    report.plot_apertures(out_dir / "plots" / f"{result.name}.png", result)
    report.contact_sheet(out_dir / "sheets" / f"{result.name}.png", result)
    return result.rows


def evaluate(data: Path, out_dir: Path, variants: list[Variant], protocol: str = "both",
             clips: list[str] | None = None, portraits: list[str] | None = None, speech: list[str] | None = None,
             max_seconds: float | None = None, use_identity: bool = True, save_videos: bool = True,
             cache_dir: Path | None = DEFAULT_CACHE, quiet: bool = False) -> dict:
    """Evaluate `variants` on the media in `data`; write report.json, report.md, plots/ and sheets/ to out_dir."""
    from tqdm import tqdm

    data = Path(data)
    if not data.is_dir():
        raise TalkingHeadError(f"data folder '{data}' does not exist: give a folder of talking clips, portraits and speech")
    if not variants:
        variants = [Variant("default")]
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise TalkingHeadError(f"variant names must differ: {names}")
    out_dir = Path(out_dir)
    for sub in ("plots", "sheets"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    scorer = Scorer(use_identity)
    result: dict = {
        "command": "talkinghead " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else "",
        "data": str(data),
        "variants": {v.name: asdict(v.config) for v in variants},
        "identity_metric": scorer.identity is not None,
    }
    started = time.perf_counter()
    videos_dir = out_dir if save_videos else None

    if protocol in ("self", "both"):
        chosen = _select(files_in(data, VIDEO_SUFFIXES), clips, "clip", data)
        if not chosen and protocol == "self":
            raise TalkingHeadError(f"no talking clips ({', '.join(VIDEO_SUFFIXES)}) in {data}")
        rows = []
        for clip in tqdm(chosen, desc="self-reenactment", unit="clip", disable=quiet):
            rows += _with_figures(protocols.self_reenactment(clip, variants, scorer, videos_dir, cache_dir, max_seconds),
                                  out_dir)
        if chosen:
            result["self_reenactment"] = {"rows": rows, "summary": protocols.summarize(rows)}
            add_motion_distance(result["self_reenactment"], REAL)

    if protocol in ("cross", "both"):
        images = _select(files_in(data, IMAGE_SUFFIXES), portraits, "portrait", data)
        sounds = _select(files_in(data, AUDIO_SUFFIXES), speech, "speech clip", data)
        if protocol == "cross" and not (images and sounds):
            raise TalkingHeadError(f"cross-identity needs portraits ({', '.join(IMAGE_SUFFIXES)}) and speech "
                                   f"({', '.join(AUDIO_SUFFIXES)}) in {data}")
        rows = []
        pairs = [(i, s) for i in images for s in sounds]
        for image, sound in tqdm(pairs, desc="cross-identity", unit="run", disable=quiet):
            rows += _with_figures(protocols.cross_identity(image, sound, variants, scorer, videos_dir, max_seconds),
                                  out_dir)
        if pairs:
            result["cross_identity"] = {"rows": rows, "summary": protocols.summarize(rows)}

    if "self_reenactment" not in result and "cross_identity" not in result:
        raise TalkingHeadError(f"nothing to evaluate in {data}: it needs talking clips, or portraits and speech")
    result["elapsed_seconds"] = time.perf_counter() - started
    report.write_json(out_dir / "report.json", result)
    report.write_markdown(out_dir / "report.md", result)
    return result
