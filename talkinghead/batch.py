"""`talkinghead batch`: many videos in one run, from a manifest or from folders of portraits and speech.

    manifest (CSV with a header, or JSON lines): image, audio | text, [driving], [out], [any option]
        -> BatchItem list -> generate() per item, on one process or on Ray workers -> MP4s + results.jsonl

Each worker process loads the models once (they are cached per process) and renders its items one
after another. A finished output is never redone: a re-run skips every item whose output exists
(outputs are written atomically, so a killed run leaves none half-written), unless `--overwrite`.
An item's failure is written to the results file and the batch goes on.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from .config import GenerateConfig
from .errors import TalkingHeadError
from .schema import parse_settings

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
AUDIO_SUFFIXES = (".wav", ".mp3", ".flac", ".m4a", ".ogg", ".mp4", ".mov", ".mkv", ".webm")
INPUT_COLUMNS = ("image", "audio", "text", "driving", "out")
RESULTS_FILE = "results.jsonl"
RAY_HINT = "install the data extra for parallel workers: pip install 'talkinghead[data]'"


@dataclass(frozen=True)
class BatchItem:
    """One video to make: its inputs, its output and its option settings (text, as in a manifest)."""

    index: int
    image: str
    out: str
    audio: str = ""
    text: str = ""
    driving: str = ""
    settings: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ItemResult:
    """What became of one item: status is "done", "skipped" (its output exists) or "failed"."""

    item: BatchItem
    status: str
    error: str = ""
    seconds: float = 0.0

    def as_json(self) -> dict:
        """The item's line in the results file."""
        return {"index": self.item.index, "image": self.item.image, "out": self.item.out, "status": self.status,
                "error": self.error, "seconds": round(self.seconds, 3)}


# ------------------------------------------------------------------------------------------------
# items
# ------------------------------------------------------------------------------------------------


def read_manifest(path: Path, out_dir: Path) -> list[BatchItem]:
    """Items of a CSV (header row) or JSON-lines manifest; relative paths are the manifest's folder's."""
    rows = _manifest_rows(path)
    if not rows:
        raise TalkingHeadError(f"manifest {path} has no items: add a row per video (image, audio or text, ...)")
    items = []
    for i, row in enumerate(rows):
        row = {str(k).strip(): "" if v is None else str(v).strip() for k, v in row.items()}
        if not row.get("image"):
            raise TalkingHeadError(f"manifest {path}, item {i + 1}: no image: every item needs an image column")
        inputs = {k: _resolve(row[k], path.parent) if row.get(k) and k != "text" else row.get(k, "")
                  for k in INPUT_COLUMNS}
        out = inputs["out"] or str(out_dir / default_name(inputs["image"], inputs["audio"] or inputs["driving"], i))
        settings = {k: v for k, v in row.items() if k not in INPUT_COLUMNS and v != ""}
        items.append(BatchItem(i, inputs["image"], out, inputs["audio"], inputs["text"], inputs["driving"], settings))
    return items


def _manifest_rows(path: Path) -> list[dict]:
    from .io import read_text_file

    if path.suffix.lower() not in (".jsonl", ".json", ".csv"):
        raise TalkingHeadError(f"manifest {path}: use a .csv (with a header row) or a .jsonl file")
    text = read_text_file(path, "manifest", "a UTF-8 .csv or .jsonl file of image, audio, out, ...")
    if path.suffix.lower() in (".jsonl", ".json"):
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except ValueError:
                    raise TalkingHeadError(f"manifest {path}, line {n}: not JSON: write one JSON object per line") from None
                if not isinstance(row, dict):
                    raise TalkingHeadError(f"manifest {path}, line {n}: write one JSON object per line")
                rows.append(row)
        return rows
    return list(csv.DictReader(text.splitlines()))


def _resolve(value: str, base: Path) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base / path)


def default_name(image: str, speech: str, index: int) -> str:
    """IMAGE_SPEECH.mp4 (IMAGE_itemN.mp4 for a text item)."""
    return f"{Path(image).stem}_{Path(speech).stem if speech else f'item{index + 1}'}.mp4"


def cross_product(images: Path, audio: Path, out_dir: Path) -> list[BatchItem]:
    """Every portrait in `images` with every speech file in `audio` (sorted by name)."""
    portraits = _files(images, IMAGE_SUFFIXES, "portraits")
    speech = _files(audio, AUDIO_SUFFIXES, "speech files")
    pairs = [(p, s) for p in portraits for s in speech]
    return [BatchItem(i, str(p), str(out_dir / default_name(str(p), str(s), i)), str(s)) for i, (p, s) in enumerate(pairs)]


def _files(folder: Path, suffixes: tuple[str, ...], what: str) -> list[Path]:
    if not folder.is_dir():
        raise TalkingHeadError(f"{folder} is not a folder: give a folder of {what}")
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    if not found:
        raise TalkingHeadError(f"no {what} in {folder}: expected files ending in {', '.join(suffixes)}")
    return found


# ------------------------------------------------------------------------------------------------
# running
# ------------------------------------------------------------------------------------------------


def run_item(item: BatchItem, base: GenerateConfig, overwrite: bool = False) -> ItemResult:
    """Make one item's video (the same call as `talkinghead generate`); never raises for the item's own errors."""
    from .pipeline import generate

    if Path(item.out).exists() and not overwrite:
        return ItemResult(item, "skipped")
    start = time.perf_counter()
    try:
        config = parse_settings(item.settings, base)
        Path(item.out).parent.mkdir(parents=True, exist_ok=True)
        generate(item.image, item.audio or None, item.out, config, text=item.text or None,
                 driving=item.driving or None)
    except TalkingHeadError as exc:
        return ItemResult(item, "failed", str(exc), time.perf_counter() - start)
    except Exception as exc:  # one item's unexpected failure is reported, and the batch goes on
        log.debug("item %d failed", item.index, exc_info=True)
        return ItemResult(item, "failed", f"{type(exc).__name__}: {exc}", time.perf_counter() - start)
    return ItemResult(item, "done", "", time.perf_counter() - start)


def run_batch(items: list[BatchItem], base: GenerateConfig, results_path: Path, workers: int = 1,
              address: str | None = None, overwrite: bool = False,
              progress: Callable[[ItemResult], None] | None = None) -> list[ItemResult]:
    """Run every item (on Ray with `workers` > 1 or an `address`, else here); results appended as they come."""
    results_path.parent.mkdir(parents=True, exist_ok=True)
    ray = _ray_or_none() if (workers > 1 or address) else None
    stream = (_on_ray(ray, items, base, workers, address, overwrite) if ray is not None
              else (run_item(item, base, overwrite) for item in items))
    results = []
    with results_path.open("a", encoding="utf-8") as sink:
        for result in stream:
            sink.write(json.dumps(result.as_json()) + "\n")
            sink.flush()
            results.append(result)
            if progress is not None:
                progress(result)
    return sorted(results, key=lambda r: r.item.index)


def _ray_or_none():
    try:
        import ray
    except ImportError:
        log.warning("ray is not installed: running the batch in this process; %s", RAY_HINT)
        return None
    return ray


def _on_ray(ray, items: list[BatchItem], base: GenerateConfig, workers: int, address: str | None,
            overwrite: bool) -> Iterable[ItemResult]:
    """Items on a pool of Ray actors (one process each, models loaded once), results as they finish."""
    started_here = not ray.is_initialized()
    if started_here:
        kwargs = {"address": address} if address else {"num_cpus": workers, "include_dashboard": False}
        ray.init(log_to_driver=False, logging_level="ERROR", **kwargs)
    try:
        worker = ray.remote(num_cpus=1)(BatchWorker)
        actors = [worker.remote(base, overwrite) for _ in range(max(1, workers))]
        pool = ray.util.ActorPool(actors)
        yield from pool.map_unordered(lambda actor, item: actor.run.remote(item), items)
    finally:
        if started_here:
            ray.shutdown()


class BatchWorker:
    """One worker process's state: the base config (models load on first use and stay loaded)."""

    def __init__(self, base: GenerateConfig, overwrite: bool):
        self.base, self.overwrite = base, overwrite

    def run(self, item: BatchItem) -> ItemResult:
        return run_item(item, self.base, self.overwrite)


def summary(results: list[ItemResult], results_path: Path, seconds: float) -> str:
    """One line: how many were written, skipped and failed, and where the details are."""
    count = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed")}
    line = (f"{len(results)} items in {seconds:.0f} s: {count['done']} written, {count['skipped']} skipped "
            f"(output exists), {count['failed']} failed")
    return line + (f" (reasons in {results_path})" if count["failed"] else "")


def check_settings(items: list[BatchItem], base: GenerateConfig) -> None:
    """Check every item's settings before any work (the error names the item and its bad option)."""
    for item in items:
        try:
            parse_settings(item.settings, base)
        except TalkingHeadError as exc:
            raise TalkingHeadError(f"item {item.index + 1} ({Path(item.image).name}): {exc}") from None


# ------------------------------------------------------------------------------------------------
# the command
# ------------------------------------------------------------------------------------------------

EXAMPLES = """examples:
  talkinghead batch --manifest jobs.csv                       # columns: image, audio or text, [driving], [out], [options]
  talkinghead batch --images portraits/ --audio speech/ --out-dir videos/ --size 384
  talkinghead batch --manifest jobs.jsonl --workers 2         # two worker processes on a local Ray
  talkinghead batch --manifest jobs.csv --address auto        # join a running Ray cluster
"""


def add_parser(subparsers) -> None:
    """Register `batch` (its option flags are the generate command's, from the schema)."""
    import argparse

    from .schema import add_config_arguments

    p = subparsers.add_parser("batch", help="many videos from a manifest, or every portrait with every speech file",
                              description=__doc__.split("\n\n")[0], epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", type=Path, help="CSV (header row) or JSON lines: image, audio or text, driving, out, "
                   "and any option by its API name (e.g. motion.seed) for that item")
    p.add_argument("--images", type=Path, help="a folder of portraits (with --audio: every pair)")
    p.add_argument("--audio", type=Path, help="a folder of speech files (with --images)")
    p.add_argument("--out-dir", type=Path, default=Path("."), help="where outputs without an `out` go (default: here)")
    p.add_argument("--results", type=Path, help=f"per-item results, JSON lines (default: OUT_DIR/{RESULTS_FILE})")
    p.add_argument("--workers", type=int, default=1, help="worker processes (more than 1 runs on Ray; default 1)")
    p.add_argument("--address", help="a Ray cluster to join (e.g. auto, or ray://HOST:10001)")
    p.add_argument("--overwrite", action="store_true", help="redo items whose output exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_arguments(p.add_argument_group("options for every item (a manifest column overrides them)"))
    p.set_defaults(run=run)


def items_from(args) -> list[BatchItem]:
    """The items the arguments name."""
    if args.manifest is not None:
        if args.images or args.audio:
            raise TalkingHeadError("give either --manifest or --images and --audio, not both")
        return read_manifest(args.manifest, args.out_dir)
    if args.images is None or args.audio is None:
        raise TalkingHeadError("say what to make: --manifest FILE, or --images FOLDER --audio FOLDER")
    return cross_product(args.images, args.audio, args.out_dir)


def run(args) -> int:
    """The `batch` command; exit status 1 when any item failed."""
    from tqdm import tqdm

    from .schema import config_from_args

    if args.workers < 1:
        raise TalkingHeadError(f"--workers {args.workers}: use 1 or more")
    base = config_from_args(args)
    items = items_from(args)
    check_settings(items, base)
    results_path = args.results or args.out_dir / RESULTS_FILE
    start = time.perf_counter()
    with tqdm(total=len(items), unit="video", disable=args.quiet) as bar:
        results = run_batch(items, base, results_path, args.workers, args.address, args.overwrite,
                            progress=lambda result: bar.update(1))
    print(summary(results, results_path, time.perf_counter() - start))
    return 1 if any(r.status == "failed" for r in results) else 0
