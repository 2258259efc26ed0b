"""Animate every real portrait in the shared data set with real speech and check the results.

Run from the repository root:  python scripts/run_real_portraits.py  (see --help)

For every portrait in MANIFEST.tsv (kind == image) this writes --clips MP4s, each driven by one speech
clip (kind == audio), cut to its first --audio-seconds seconds. Clip rotation is fixed: with n clips
in manifest order, portrait k (manifest order, from 0) uses clips (c*k + j) % n for j = 0 .. c-1, where
c = --clips; with c = 2 that is clips (2k) % n and (2k+1) % n, so over all portraits every clip is used
whenever c * (number of portraits) >= n.

For each output it measures:

* face detection rate: the share of output frames in which MediaPipe's FaceLandmarker (video mode)
  finds a face;
* realtime factor: GenerateResult.realtime_factor (audio seconds per second of rendering);
* mouth opening: the inner-lip gap divided by the interocular distance, per detected frame (5th and
  95th percentile; a p95 near 0 means the mouth never opens, a p5 well above 0 that it never closes);
* background change: mean absolute difference (0-255) between each frame and the portrait, outside
  the face box expanded 2x (a still background stays near the compression noise, about 1);
* failures: the exception message (the run goes on with the next output).

Outputs in --out: one MP4 and one contact sheet PNG per run (the portrait's face crop, then 8 output
frames evenly spaced; crops are the portrait's landmark box expanded 1.6x, about 200 px tall),
contact_sheet_all.png (one row per run, at most 1600 px wide), summary.json and summary.md.
Exits 1 if any run failed or any face detection rate is below 98 %.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
OUT_DIR = Path("build/real_run")
CROP_EXPAND = 1.6  # face crop = landmark box expanded by this factor about its centre
TILE_HEIGHT = 200  # contact-sheet tile height, pixels
SHEET_FRAMES = 8  # output frames per contact sheet
ALL_SHEET_MAX_WIDTH = 1600
MIN_DETECTION_RATE = 0.98
BACKGROUND_EXPAND = 2.0  # background = outside the face box expanded by this factor

GAP = 4  # pixels between tiles
LABEL_HEIGHT = 22  # label strip above each sheet row
BG_COLOUR = (32, 32, 32)
TEXT_COLOUR = (235, 235, 235)
FAIL_COLOUR = (255, 110, 110)


@dataclass
class RunResult:
    """One portrait + one audio clip."""

    portrait: str
    audio: str
    output: str
    sheet: str = ""
    frames: int = 0
    seconds: float = 0.0  # audio seconds rendered
    elapsed: float = 0.0  # rendering seconds
    realtime_factor: float = 0.0
    face_detection_rate: float = 0.0
    undetected_frames: list[int] = field(default_factory=list)
    mouth_open_p5: float | None = None
    mouth_open_p95: float | None = None
    background_diff: float | None = None
    crop_box: list[int] | None = None  # (x0, y0, x1, y1) in output pixels
    sheet_frames: list[int] = field(default_factory=list)
    status: str = "ok"
    error: str = ""

    @property
    def failed(self) -> bool:
        return self.status != "ok"


def read_manifest(data_dir: Path) -> tuple[list[Path], list[Path]]:
    """(portraits, audio clips) listed in data_dir/MANIFEST.tsv, in manifest order."""
    manifest = data_dir / "MANIFEST.tsv"
    if not manifest.is_file():
        raise SystemExit(f"run_real_portraits: error: {manifest} not found (give --data DIR)")
    images, audios = [], []
    with open(manifest, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            kind = (row.get("kind") or "").strip()
            if kind == "image":
                images.append(data_dir / row["file"])
            elif kind == "audio":
                audios.append(data_dir / row["file"])
    return images, audios


def clip_indices(k: int, clips: int, n_audio: int) -> list[int]:
    """The audio clips portrait k uses: (clips*k + j) % n_audio for j < clips (distinct while clips <= n_audio)."""
    return [(clips * k + j) % n_audio for j in range(min(clips, n_audio))]


def crop_box(box: tuple[float, float, float, float], width: int, height: int,
             expand: float = CROP_EXPAND) -> tuple[int, int, int, int]:
    """Square box around the face box, side = expand * its longer side, clipped to the image."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = max(x1 - x0, y1 - y0) * expand / 2
    return (max(0, int(round(cx - half))), max(0, int(round(cy - half))),
            min(width, int(round(cx + half))), min(height, int(round(cy + half))))


def tile(frame: np.ndarray, box: tuple[int, int, int, int], height: int, caption: str, font):
    """Crop `frame` to `box`, resize to `height` px tall, and print `caption` in its corner."""
    from PIL import Image, ImageDraw

    x0, y0, x1, y1 = box
    crop = Image.fromarray(np.ascontiguousarray(frame[y0:y1, x0:x1]))
    width = max(1, round(crop.width * height / crop.height))
    crop = crop.resize((width, height), Image.LANCZOS)
    if caption:
        draw = ImageDraw.Draw(crop)
        l, t, r, b = draw.textbbox((3, 2), caption, font=font)
        draw.rectangle((l - 2, t - 1, r + 2, b + 1), fill=(0, 0, 0))
        draw.text((3, 2), caption, fill=TEXT_COLOUR, font=font)
    return crop


def sheet_row(tiles: list, label: str, font, colour=TEXT_COLOUR, gap: int = GAP, label_height: int = LABEL_HEIGHT,
              min_width: int = 0):
    """Tiles side by side under a label strip."""
    from PIL import Image, ImageDraw

    height = max((t.height for t in tiles), default=TILE_HEIGHT)
    width = max(min_width, sum(t.width for t in tiles) + gap * (len(tiles) + 1), 400)
    row = Image.new("RGB", (width, label_height + height + gap), BG_COLOUR)
    ImageDraw.Draw(row).text((gap, 3), label, fill=colour, font=font)
    x = gap
    for t in tiles:
        row.paste(t, (x, label_height))
        x += t.width + gap
    return row


def stack_rows(rows: list, max_width: int):
    """Rows one under another, scaled down so the result is at most max_width wide."""
    from PIL import Image

    width = max(r.width for r in rows)
    height = sum(r.height for r in rows)
    sheet = Image.new("RGB", (width, height), BG_COLOUR)
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height
    if width > max_width:
        sheet = sheet.resize((max_width, max(1, round(height * max_width / width))), Image.LANCZOS)
    return sheet


def font(size: int = 14):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def analyse(video: Path, portrait: np.ndarray, box: tuple[float, float, float, float], fps: float,
            frames: int, n_sheet: int) -> dict:
    """One pass over the output video: face detection, mouth opening, background change, sheet frames."""
    from talkinghead.face import landmarks as L
    from talkinghead.face.landmarker import FaceLandmarker
    from talkinghead.io import read_video_frames

    h, w = portrait.shape[:2]
    wanted = set(np.linspace(0, max(frames - 1, 0), n_sheet).round().astype(int).tolist()) if frames else set()
    bx0, by0, bx1, by1 = crop_box(box, w, h, BACKGROUND_EXPAND)
    bg_mask = np.ones((h, w), bool)
    bg_mask[by0:by1, bx0:bx1] = False
    ref = portrait.astype(np.int16)

    detected, openings, bg_diffs, picked = [], [], [], {}
    with FaceLandmarker(video=True) as landmarker:
        for i, frame in enumerate(read_video_frames(video)):
            faces = landmarker.detect(frame, int(round(i * 1000 / fps)))
            detected.append(bool(faces))
            if faces:
                lm = faces[0].landmarks
                gap = np.linalg.norm(lm[L.LIP_UPPER_INNER_MID, :2] - lm[L.LIP_LOWER_INNER_MID, :2])
                openings.append(float(gap / max(faces[0].interocular, 1e-6)))
            if frame.shape[:2] == (h, w) and bg_mask.any():
                bg_diffs.append(float(np.abs(frame.astype(np.int16) - ref)[bg_mask].mean()))
            if i in wanted:
                picked[i] = frame
    n = len(detected)
    return {
        "decoded": n,
        "rate": (sum(detected) / n) if n else 0.0,
        "undetected": [i for i, d in enumerate(detected) if not d],
        "mouth_p5": float(np.percentile(openings, 5)) if openings else None,
        "mouth_p95": float(np.percentile(openings, 95)) if openings else None,
        "bg": float(np.mean(bg_diffs)) if bg_diffs else None,
        "picked": picked,
    }


def fmt(value, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def table(results: list[RunResult]) -> str:
    """Markdown table of the runs."""
    head = ("| portrait | audio | frames | seconds | realtime factor | face detection % | "
            "mouth open p5/p95 | bg diff | status |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        status = r.status if not r.error else f"{r.status}: {r.error}"
        status = status.replace("|", "/").replace("\n", " ")
        mouth = (f"{fmt(r.mouth_open_p5, '.2f')}/{fmt(r.mouth_open_p95, '.2f')}"
                 if r.mouth_open_p5 is not None else "-")
        lines.append(f"| {r.portrait} | {r.audio} | {r.frames} | {r.seconds:.2f} | {r.realtime_factor:.2f} | "
                     f"{100 * r.face_detection_rate:.1f} | {mouth} | {fmt(r.background_diff, '.2f')} | {status} |")
    return "\n".join(lines)


def run_one(pipeline, portrait_name: str, audio_path: Path, audio: np.ndarray | None, audio_error: str,
            out_dir: Path, fnt, prep_error: str) -> tuple[RunResult, object]:
    """Generate, analyse and draw the contact sheet for one portrait + clip; never raises."""
    stem = f"{Path(portrait_name).stem}__{audio_path.stem}"
    res = RunResult(portrait=portrait_name, audio=audio_path.name, output=str(out_dir / f"{stem}.mp4"))
    label = f"{portrait_name} + {audio_path.name}"
    error = prep_error or audio_error
    try:
        if error:
            raise RuntimeError(error)
        result = pipeline.write(audio, res.output)
        res.frames, res.seconds = result.frames, result.audio_seconds
        res.elapsed, res.realtime_factor = result.elapsed_seconds, result.realtime_factor
        image = pipeline.portrait.image
        h, w = image.shape[:2]
        face_box = pipeline.portrait.face.box
        box = crop_box(face_box, w, h)
        res.crop_box = list(box)
        info = analyse(Path(res.output), image, face_box, pipeline.config.fps, result.frames, SHEET_FRAMES)
        if info["decoded"] != result.frames:
            res.status, res.error = "failed", f"decoded {info['decoded']} frames, wrote {result.frames}"
        res.face_detection_rate = info["rate"]
        res.undetected_frames = info["undetected"]
        res.mouth_open_p5, res.mouth_open_p95 = info["mouth_p5"], info["mouth_p95"]
        res.background_diff = info["bg"]
        res.sheet_frames = sorted(info["picked"])
        tiles = [tile(image, box, TILE_HEIGHT, "input", fnt)]
        tiles += [tile(info["picked"][i], box, TILE_HEIGHT, f"f{i} {i / pipeline.config.fps:.1f}s", fnt)
                  for i in res.sheet_frames]
        text = (f"{label}   det {100 * res.face_detection_rate:.1f}%   {res.realtime_factor:.2f}x realtime   "
                f"mouth p5/p95 {fmt(res.mouth_open_p5, '.2f')}/{fmt(res.mouth_open_p95, '.2f')}")
        row = sheet_row(tiles, text, fnt)
    except Exception as exc:  # noqa: BLE001 - record and go on with the next run
        res.status = "failed"
        if error:  # the portrait or the clip could not be loaded: that message says it all
            res.error = error
        else:
            where = traceback.extract_tb(exc.__traceback__)[-1]
            res.error = f"{type(exc).__name__}: {exc}".splitlines()[0] + f" [{Path(where.filename).name}:{where.lineno}]"
        row = sheet_row([], f"{label}   FAILED: {res.error}", fnt, colour=FAIL_COLOUR)
    sheet_path = out_dir / f"{stem}_sheet.png"
    row.save(sheet_path, optimize=True)
    res.sheet = str(sheet_path)
    return res, row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Animate every real portrait in the data set with real speech clips; report face detection "
                    "rate, realtime factor and failures, and draw contact sheets.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="Clip rotation: portrait k (manifest order, from 0) uses clips (clips*k + j) % n, j < clips.")
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="folder with MANIFEST.tsv, portraits and audio")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder")
    parser.add_argument("--size", type=int, default=512, help="output long side, pixels")
    parser.add_argument("--clips", type=int, default=2, help="speech clips per portrait")
    parser.add_argument("--audio-seconds", type=float, default=6.0,
                        help="use only the first S seconds of each clip (0 = whole clip)")
    parser.add_argument("--only", nargs="*", default=None, metavar="NAME",
                        help="only portraits whose file name contains one of these strings")
    args = parser.parse_args(argv)
    if args.clips < 1:
        parser.error("--clips must be at least 1")

    os.environ.setdefault("GLOG_minloglevel", "2")
    import logging

    logging.basicConfig(level=logging.WARNING, format="talkinghead: %(message)s")
    from tqdm import tqdm

    from talkinghead import GenerateConfig, RenderConfig
    from talkinghead.audio.features import SAMPLE_RATE
    from talkinghead.io import load_audio
    from talkinghead.pipeline import Pipeline

    images, audios = read_manifest(args.data)
    if args.only:
        images = [p for p in images if any(s in p.name for s in args.only)]
    if not images or not audios:
        print(f"run_real_portraits: error: no portraits or no audio clips in {args.data}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    config = replace(GenerateConfig(), render=RenderConfig(size=args.size))
    fnt = font(14)

    clips: dict[Path, tuple[np.ndarray | None, str]] = {}

    def clip(path: Path) -> tuple[np.ndarray | None, str]:
        if path not in clips:
            try:
                samples = load_audio(path, SAMPLE_RATE)
                if args.audio_seconds > 0:
                    samples = samples[: int(round(args.audio_seconds * SAMPLE_RATE))]
                clips[path] = (samples, "")
            except Exception as exc:  # noqa: BLE001
                clips[path] = (None, f"{type(exc).__name__}: {exc}".splitlines()[0])
        return clips[path]

    plan = [(k, image, audios[j]) for k, image in enumerate(images) for j in clip_indices(k, args.clips, len(audios))]
    results: list[RunResult] = []
    rows = []
    started = time.perf_counter()
    pipeline, prep_error, current = None, "", None
    with tqdm(plan, unit="run", desc="real portraits", dynamic_ncols=True) as bar:
        for k, image_path, audio_path in bar:
            bar.set_postfix_str(f"{image_path.name} + {audio_path.name}")
            if image_path != current:  # one Pipeline per portrait, reused for its clips
                current, pipeline, prep_error = image_path, None, ""
                try:
                    pipeline = Pipeline.from_image(image_path, config)
                except Exception as exc:  # noqa: BLE001
                    prep_error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            samples, audio_error = clip(audio_path)
            res, row = run_one(pipeline, image_path.name, audio_path, samples, audio_error, args.out, fnt, prep_error)
            results.append(res)
            rows.append(row)
            if res.failed:
                tqdm.write(f"FAILED {res.portrait} + {res.audio}: {res.error}")

    stack_rows(rows, ALL_SHEET_MAX_WIDTH).save(args.out / "contact_sheet_all.png", optimize=True)
    md = table(results)
    failed = [r for r in results if r.failed]
    low = [r for r in results if not r.failed and r.face_detection_rate < MIN_DETECTION_RATE]
    used = sorted({r.audio for r in results})
    summary = {
        "data": str(args.data),
        "size": args.size,
        "clips_per_portrait": args.clips,
        "audio_seconds": args.audio_seconds,
        "rotation": "portrait k uses clips (clips*k + j) % n_audio, j < clips (manifest order)",
        "audio_clips_used": used,
        "audio_clips_unused": sorted({a.name for a in audios} - set(used)),
        "wall_seconds": time.perf_counter() - started,
        "min_detection_rate": MIN_DETECTION_RATE,
        "failed": len(failed),
        "low_detection": len(low),
        "runs": [{k: v for k, v in vars(r).items()} for r in results],
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (args.out / "summary.md").write_text(
        f"# Real portraits run\n\n{len(images)} portraits x {args.clips} clips, first {args.audio_seconds:g} s of "
        f"audio, size {args.size}. mouth open = inner-lip gap / interocular distance (5th/95th percentile over "
        f"frames); bg diff = mean |frame - portrait| outside the face box x{BACKGROUND_EXPAND:g} (0-255).\n\n"
        f"{md}\n", encoding="utf-8")
    print(md)
    print(f"\n{len(results)} runs, {len(failed)} failed, {len(low)} below {100 * MIN_DETECTION_RATE:.0f}% face "
          f"detection; outputs in {args.out}")
    return 1 if failed or low else 0


if __name__ == "__main__":
    sys.exit(main())
