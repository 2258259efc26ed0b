"""Make docs/contact_sheet.png, the small contact sheet the README shows, from build/real_run outputs.

Run from the repository root, after scripts/run_real_portraits.py:  python scripts/make_readme_sheet.py

One row per portrait (a photo, a painting, a black-and-white photo, a 3D cartoon, an illustration):
the input portrait's face crop, then 6 output frames evenly spaced through the clip, all cropped to the
face box that run_real_portraits.py recorded (landmark box expanded 1.6x). The sheet is about 1200 px
wide and is saved as an adaptive-palette PNG; if no palette of 128 colours or more keeps it under
--max-kb (fewer colours band visibly), it is saved as docs/contact_sheet.jpg instead, at the highest
JPEG quality that fits (the path written is printed; the README shows docs/contact_sheet.jpg).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

RUN_DIR = Path("build/real_run")
OUT_PATH = Path("docs/contact_sheet.png")
# (portrait file stem, caption): one of each kind
DEFAULT_PORTRAITS = (
    ("hallo_ref7", "photo"),
    ("liveportrait_s10", "painting (Vermeer)"),
    ("hallo_ref3", "black-and-white photo"),
    ("dreamtalk_zt12", "3D cartoon"),
    ("echomimic_img_d", "digital illustration"),
)
FRAMES = 6
WIDTH = 1200
GAP = 3
LABEL_HEIGHT = 18
BG = (255, 255, 255)
TEXT = (40, 40, 40)
PALETTE_SIZES = (256, 192, 128)  # fewer colours band visibly on skin and painted backgrounds
JPEG_QUALITIES = (88, 82, 76, 70, 62)


def font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def read_frames(video: Path, indices: list[int]) -> dict[int, np.ndarray]:
    """The frames at `indices` of `video` as (H, W, 3) uint8 RGB."""
    from talkinghead.io import read_video_frames

    wanted, got = set(indices), {}
    for i, frame in enumerate(read_video_frames(video)):
        if i in wanted:
            got[i] = frame
        if len(got) == len(wanted):
            break
    return got


def row_for(run: dict, portrait_path: Path, caption: str, tile_w: int, size: int, fnt, small) -> Image.Image:
    """Label strip + input crop + FRAMES output crops, each tile_w px wide."""
    from talkinghead.io import load_image, resize_long_side

    x0, y0, x1, y1 = run["crop_box"]
    tile_h = round(tile_w * (y1 - y0) / max(x1 - x0, 1))
    n = run["frames"]
    # evenly spaced, centred in equal parts of the clip (skips the first frame, which equals the input)
    indices = [int((k + 0.5) * n / FRAMES) for k in range(FRAMES)]
    frames = read_frames(Path(run["output"]), indices)
    portrait = resize_long_side(load_image(portrait_path), size)

    def crop(img: np.ndarray, text: str) -> Image.Image:
        im = Image.fromarray(np.ascontiguousarray(img[y0:y1, x0:x1])).resize((tile_w, tile_h), Image.LANCZOS)
        d = ImageDraw.Draw(im)
        l, t, r, b = d.textbbox((3, 2), text, font=small)
        d.rectangle((l - 2, t - 1, r + 2, b + 1), fill=(0, 0, 0))
        d.text((3, 2), text, fill=(240, 240, 240), font=small)
        return im

    fps = n / run["seconds"] if run["seconds"] else 25.0
    tiles = [crop(portrait, "input")] + [crop(frames[i], f"{i / fps:.1f}s") for i in indices if i in frames]
    row = Image.new("RGB", (WIDTH, LABEL_HEIGHT + tile_h + GAP), BG)
    ImageDraw.Draw(row).text((GAP, 2), f"{caption}: {run['portrait']} + {run['audio']}", fill=TEXT, font=fnt)
    x = GAP
    for i, t in enumerate(tiles):
        row.paste(t, (x, LABEL_HEIGHT))
        x += t.width + GAP + (6 if i == 0 else 0)  # a wider gap after the input
    return row


def save_small(sheet: Image.Image, out: Path, max_bytes: int, fmt: str) -> Path:
    """Save as a palette PNG that fits max_bytes, else (or if fmt == 'jpg') as a JPEG next to it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt in ("auto", "png"):
        for colours in PALETTE_SIZES:
            png = sheet.quantize(colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
            png.save(out.with_suffix(".png"), optimize=True)
            if out.with_suffix(".png").stat().st_size <= max_bytes or fmt == "png" and colours == PALETTE_SIZES[-1]:
                print(f"{colours} colours", end=", ")
                return out.with_suffix(".png")
        out.with_suffix(".png").unlink()
    jpg = out.with_suffix(".jpg")
    for quality in JPEG_QUALITIES:
        sheet.save(jpg, quality=quality, optimize=True, progressive=True, subsampling="4:2:0")
        if jpg.stat().st_size <= max_bytes:
            break
    print(f"JPEG quality {quality}", end=", ")
    return jpg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--run", type=Path, default=RUN_DIR, help="run_real_portraits.py output folder")
    parser.add_argument("--out", type=Path, default=OUT_PATH, help="output image (.png; .jpg if it must be)")
    parser.add_argument("--portraits", nargs="*", default=None, metavar="STEM[=CAPTION]",
                        help="portrait file stems (default: a photo, a painting, a b/w photo, a cartoon, an illustration)")
    parser.add_argument("--max-kb", type=float, default=250, help="largest file size, KB")
    parser.add_argument("--format", choices=("auto", "png", "jpg"), default="auto")
    args = parser.parse_args(argv)

    summary_path = args.run / "summary.json"
    if not summary_path.is_file():
        print(f"make_readme_sheet: error: {summary_path} not found: run scripts/run_real_portraits.py first",
              file=sys.stderr)
        return 1
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    data_dir = Path(summary["data"])
    wanted = DEFAULT_PORTRAITS if args.portraits is None else [
        tuple(p.split("=", 1)) if "=" in p else (p, p) for p in args.portraits]

    fnt, small = font(13), font(11)
    tile_w = (WIDTH - GAP * (FRAMES + 2) - 6) // (FRAMES + 1)
    rows = []
    for stem, caption in wanted:
        runs = [r for r in summary["runs"] if Path(r["portrait"]).stem == stem and r["status"] == "ok"]
        if not runs:
            print(f"make_readme_sheet: warning: no successful run for {stem}; skipped", file=sys.stderr)
            continue
        rows.append(row_for(runs[0], data_dir / runs[0]["portrait"], caption, tile_w, summary["size"], fnt, small))
    if not rows:
        print("make_readme_sheet: error: nothing to draw", file=sys.stderr)
        return 1
    sheet = Image.new("RGB", (WIDTH, sum(r.height for r in rows)), BG)
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height
    path = save_small(sheet, args.out, int(args.max_kb * 1024), args.format)
    print(f"wrote {path} ({sheet.width}x{sheet.height}, {path.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
