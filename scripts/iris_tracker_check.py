"""How much of a real eye's movement the re-tracker's iris landmark reports (issue 12's iris slope).

    python scripts/iris_tracker_check.py                       # the motion_only training clips
    python scripts/iris_tracker_check.py --clips a.mp4 b.mp4

The pose sweep's iris figure is MediaPipe's iris-centre landmark against the midpoint of its eye
corners, in eye widths. This script asks how that landmark follows real eyes. In every frame of real
footage (tracked in image mode, as the sweep tracks its frames; eyes with eyeBlink over OPEN_BLINK
skipped) it finds the iris in the pixels: the darkest disc of the landmark's iris radius inside the
tracked eye outline, refined by the darkness-weighted centroid within it. Both centres are measured
against the same tracked corners, so only the iris landmark's reading is compared. Per clip and axis
it reports the correlation and the slope (landmark move over pixel move, least squares about the clip's
medians).

Approximate: the pixel centre is the centre of the visible dark disc, so an iris half under a lid pulls it
towards the opening (vertical moves are under-measured, which makes the vertical slope an upper bound).
Clips whose pixel iris moves little (standard deviation under MIN_SPREAD eye widths on that axis; real eyes move less up and down) are
reported, but not pooled for that axis.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_CLIPS = ROOT.parent / "shared" / "data" / "train" / "motion_only"
OPEN_BLINK = 0.3  # eyes scoring more eyeBlink than this are skipped (a closing lid hides the iris)
MIN_COVERAGE = 0.35  # the disc must lie this much inside the eye outline to be a candidate
DARK_PERCENTILE = 30  # darkness above this percentile of the opening's counts towards the centroid
MIN_SPREAD = {"x": 0.1, "y": 0.04}  # eye widths: pixel movement (standard deviation) an axis needs to be pooled


def pixel_iris(gray: np.ndarray, loop: np.ndarray, radius: float) -> np.ndarray:
    """(2,) centre of the darkest disc of `radius` inside the eye outline `loop` (16, 2), pixels."""
    import cv2

    from talkinghead.render.eyes import _polygon_mask

    x0, y0 = np.maximum(np.floor(loop.min(0) - radius).astype(int), 0)
    x1, y1 = np.ceil(loop.max(0) + radius).astype(int)
    sub = gray[y0:y1, x0:x1].astype(np.float32)
    mask = _polygon_mask(sub.shape, loop, (x0, y0))
    r = max(int(round(radius)), 2)
    disc = np.zeros((2 * r + 1, 2 * r + 1), np.float32)
    cv2.circle(disc, (r, r), r, 1, -1)
    darkness = 255 - sub
    total = cv2.filter2D(darkness * mask, -1, disc, borderType=cv2.BORDER_CONSTANT)
    cover = cv2.filter2D(mask, -1, disc, borderType=cv2.BORDER_CONSTANT)
    score = np.where(cover > MIN_COVERAGE * disc.sum(), total / np.maximum(cover, 1e-3), 0) * (mask > 0.5)
    iy, ix = np.unravel_index(np.argmax(score), score.shape)
    ys, xs = np.mgrid[0:sub.shape[0], 0:sub.shape[1]]
    floor = np.percentile(darkness[mask > 0.5], DARK_PERCENTILE) if (mask > 0.5).any() else 0.0
    weight = ((xs - ix) ** 2 + (ys - iy) ** 2 <= r * r) * mask * np.clip(darkness - floor, 0, None)
    if weight.sum() <= 0:
        return np.array([ix + x0, iy + y0], float)
    return np.array([(xs * weight).sum() / weight.sum() + x0, (ys * weight).sum() / weight.sum() + y0])


def clip_offsets(path: Path) -> np.ndarray:
    """(n, 4): landmark x, y and pixel x, y of the iris centre against the corner midpoint, eye widths."""
    import cv2

    from talkinghead.evaluation.runner import DEFAULT_CACHE
    from talkinghead.face import landmarks as L
    from talkinghead.face.tracking import track_video
    from talkinghead.video import read_video_frames

    eyes = ((L.EYE_RIGHT_LOOP, L.IRIS_RIGHT, L.EYE_RIGHT_OUTER_CORNER, L.EYE_RIGHT_INNER_CORNER, "eyeBlinkRight"),
            (L.EYE_LEFT_LOOP, L.IRIS_LEFT, L.EYE_LEFT_OUTER_CORNER, L.EYE_LEFT_INNER_CORNER, "eyeBlinkLeft"))
    track = track_video(path, cache_dir=DEFAULT_CACHE, video=False)
    rows = []
    for i, frame in enumerate(read_video_frames(path)):
        if i >= len(track.found) or not track.found[i]:
            continue
        lm = track.landmarks[i][:, :2]
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        for loop, iris, outer, inner, blink in eyes:
            if track.blendshapes[i][L.BLENDSHAPE_INDEX[blink]] > OPEN_BLINK:
                continue
            width = float(np.linalg.norm(lm[outer] - lm[inner]))
            middle = (lm[outer] + lm[inner]) / 2
            radius = float(np.linalg.norm(lm[list(iris[1:])] - lm[iris[0]], axis=1).mean())
            found = pixel_iris(gray, lm[list(loop)], radius)
            rows.append(np.concatenate([(lm[iris[0]] - middle) / width, (found - middle) / width]))
    return np.array(rows).reshape(-1, 4)


def axis_figures(landmark: np.ndarray, pixels: np.ndarray) -> dict:
    landmark, pixels = landmark - np.median(landmark), pixels - np.median(pixels)
    return {"corr": float(np.corrcoef(landmark, pixels)[0, 1]),
            "slope": float((landmark * pixels).sum() / max((pixels * pixels).sum(), 1e-12)),
            "pixel_sd": float(pixels.std())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", nargs="+", type=Path, help="video files (default: ../shared/data/train/motion_only)")
    args = parser.parse_args()
    os.environ.setdefault("GLOG_minloglevel", "2")
    paths = args.clips or sorted(DEFAULT_CLIPS.glob("*.mp4"))
    if not paths:
        raise SystemExit(f"no clips: give --clips, or provide {DEFAULT_CLIPS}")
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:
        raise SystemExit(f"no such file: {', '.join(missing)}")
    from talkinghead.errors import TalkingHeadError

    pooled = {"x": [], "y": []}
    print("| clip | eyes | x corr | x slope | x pixel sd | y corr | y slope | y pixel sd |")
    print("|---|---|---|---|---|---|---|---|")
    for path in paths:
        try:
            rows = clip_offsets(path)
        except TalkingHeadError as error:
            raise SystemExit(f"{path}: {error}") from None
        if len(rows) < 10:
            print(f"| {path.stem} | {len(rows)} | - | - | - | - | - | - |")
            continue
        cells = []
        for axis, (a, b) in (("x", (0, 2)), ("y", (1, 3))):
            f = axis_figures(rows[:, a], rows[:, b])
            mark = "" if f["pixel_sd"] >= MIN_SPREAD[axis] else " (not pooled)"
            cells += [f"{f['corr']:.2f}", f"{f['slope']:.2f}{mark}", f"{f['pixel_sd']:.3f}"]
            if f["pixel_sd"] >= MIN_SPREAD[axis]:
                pooled[axis].append(f["slope"])
        print(f"| {path.stem} | {len(rows)} | " + " | ".join(cells) + " |", flush=True)
    for axis, slopes in pooled.items():
        if slopes:
            print(f"{axis}: median slope {np.median(slopes):.2f} over {len(slopes)} clips (range {min(slopes):.2f}-{max(slopes):.2f})")
        else:
            print(f"{axis}: no clip moves the iris {MIN_SPREAD[axis]} eye widths")


if __name__ == "__main__":
    main()
