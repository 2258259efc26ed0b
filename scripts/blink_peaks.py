"""How the re-tracker reads real blinks (issue 12): the peaks of its eyeBlink score on real footage, with eye crops.

    python scripts/blink_peaks.py --out build/blink_peaks

The pose sweep counts a rendered full blink as closed when the tracker's mean eyeBlink score (both
eyes) reaches 0.5. This asks the same tracker about real eyes: every real clip (the training footage
and the evaluation clips) is tracked frame by frame in image mode, as the sweep tracks its frames; a
blink is a peak of the mean eyeBlink score with prominence at least PEAK_PROMINENCE. For each peak
the script writes the eye crop of the peak frame and of the frames either side, labelled with their
scores, so that one can see whether the eyes are shut where the score stays under 0.5.
Writes OUT/peaks.json (every peak: clip, frame, score) and OUT/under.png / OUT/over.png (crops of the
peaks under and over the threshold, lowest first).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"
CLOSED = 0.5  # the pose sweep's threshold on the mean eyeBlink score
PEAK_PROMINENCE = 0.2
CROP_HEIGHT = 90  # pixels of each eye crop on the sheet
SHEET_COLUMNS = 3  # peaks a row (each peak: the frame before, the peak, the frame after)


def clips() -> list[Path]:
    folders = [SHARED / "train" / "speech", SHARED / "train" / "motion_only", SHARED / "real"]
    return [p for folder in folders if folder.is_dir() for p in sorted(folder.glob("*.mp4"))]


def eye_crop(frame: np.ndarray, landmarks: np.ndarray, label: str) -> np.ndarray:
    """Both eyes of one frame, scaled to CROP_HEIGHT, with a label."""
    import cv2

    from talkinghead.face import landmarks as L

    eyes = landmarks[list(L.EYE_RIGHT_LOOP) + list(L.EYE_LEFT_LOOP), :2]
    width = float(np.ptp(eyes[:, 0]))
    (x0, y0), (x1, y1) = eyes.min(0) - 0.15 * width, eyes.max(0) + 0.15 * width
    y0, y1 = min(y0, eyes[:, 1].mean() - 0.2 * width), max(y1, eyes[:, 1].mean() + 0.2 * width)
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = max(int(x0), 0), max(int(y0), 0), min(int(np.ceil(x1)), w), min(int(np.ceil(y1)), h)
    crop = frame[y0:y1, x0:x1]
    crop = cv2.resize(crop, (max(1, round(crop.shape[1] * CROP_HEIGHT / crop.shape[0])), CROP_HEIGHT),
                      interpolation=cv2.INTER_CUBIC)
    cv2.putText(crop, label, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 0), 1, cv2.LINE_AA)
    return crop


def sheet(rows: list[np.ndarray]) -> np.ndarray:
    width = max(r.shape[1] for r in rows)
    padded = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0))) for r in rows]
    lines = [np.concatenate(padded[i:i + SHEET_COLUMNS], 1) for i in range(0, len(padded), SHEET_COLUMNS)]
    full = max(x.shape[1] for x in lines)
    return np.concatenate([np.pad(x, ((0, 0), (0, full - x.shape[1]), (0, 0))) for x in lines])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "blink_peaks")
    args = parser.parse_args()
    os.environ.setdefault("GLOG_minloglevel", "2")
    paths = clips()
    if not paths:
        raise SystemExit(f"no clips under {SHARED}: this script reads ../shared/data (train and real)")
    import cv2
    from scipy.signal import find_peaks

    from talkinghead.evaluation.runner import DEFAULT_CACHE
    from talkinghead.face.measure import blink_score
    from talkinghead.face.tracking import track_video
    from talkinghead.video import read_video_frames

    if args.out.exists() and not args.out.is_dir():
        raise SystemExit(f"--out {args.out} is a file: give a folder")
    args.out.mkdir(parents=True, exist_ok=True)
    peaks, crops = [], []
    for path in paths:
        track = track_video(path, cache_dir=DEFAULT_CACHE, video=False)
        scores = np.where(track.found, blink_score(track.blendshapes), 0.0)
        found, _ = find_peaks(scores, prominence=PEAK_PROMINENCE)
        if not len(found):
            continue
        wanted = {int(i) for p in found for i in (p - 1, p, p + 1) if 0 <= i < len(scores)}
        frames = {i: f for i, f in enumerate(read_video_frames(path)) if i in wanted}
        for p in found:
            parts = [eye_crop(frames[i], track.landmarks[i], f"{scores[i]:.2f}") for i in (p - 1, p, p + 1)
                     if i in frames and track.found[i]]
            row = np.concatenate([np.pad(c, ((0, 0), (0, 2), (0, 0))) for c in parts], 1)
            cv2.putText(row, f"{path.stem[:28]} #{p}", (3, CROP_HEIGHT - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.33,
                        (255, 255, 255), 1, cv2.LINE_AA)
            peaks.append({"clip": path.name, "frame": int(p), "score": round(float(scores[p]), 3)})
            crops.append(row)
        print(f"{path.name}: {len(found)} peak(s)", flush=True)
    order = np.argsort([p["score"] for p in peaks])
    under = [crops[i] for i in order if peaks[i]["score"] < CLOSED]
    over = [crops[i] for i in order if peaks[i]["score"] >= CLOSED]
    for name, rows in (("under", under), ("over", over)):
        if rows:
            cv2.imwrite(str(args.out / f"{name}.png"), cv2.cvtColor(sheet(rows), cv2.COLOR_RGB2BGR))
    values = np.array([p["score"] for p in peaks])
    summary = {"clips": len(paths), "peaks": len(peaks), "median": float(np.median(values)) if len(values) else None,
               "share_closed": float(np.mean(values >= CLOSED)) if len(values) else None}
    (args.out / "peaks.json").write_text(json.dumps({"summary": summary, "peaks": peaks}, indent=1))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
