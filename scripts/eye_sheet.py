"""Eye contact sheet (issue 12): crops of both eyes for gaze corners, half and full blinks, re-tracked.

    python scripts/eye_sheet.py --portraits hallo_ref3 sadtalker_art14 --out build/eye_sheet

For each portrait, a block of crops (COLUMNS a row) (the eyes' box, scaled up) at: the portrait's own frame (rest),
gaze to the four corners and to +-x, +-y (0.3 eye widths, as the pose sweep), blinks at 0.25, 0.5,
0.75 and 1, and a full blink at yaw 15. Each frame is re-tracked on its own (MediaPipe image mode) and
labelled with the measured iris offset (eye widths, relative to the portrait's, as scripts/pose_sweep.py
measures it) and the mean eyeBlink score. Writes OUT/eyes_<portrait>.png and OUT/eyes.png (all portraits).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REAL = ROOT.parent / "shared" / "data" / "real"
CROP_PX = 110  # height of each crop on the sheet
COLUMNS = 5
GAZE = 0.3
BLINKS = (0.25, 0.5, 0.75, 1.0)


def _pose_sweep():
    spec = importlib.util.spec_from_file_location("pose_sweep", ROOT / "scripts" / "pose_sweep.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load(stem: str) -> tuple[np.ndarray, str]:
    """(H, W, 3) uint8 RGB of ../shared/data/real/<stem>.png|.jpg, or the first frame of <stem>.mp4."""
    import cv2

    from talkinghead.io import load_image

    for path in sorted(REAL.iterdir()):
        if path.stem == stem and path.suffix.lower() in (".png", ".jpg"):
            return load_image(path), path.name
        if path.stem == stem and path.suffix.lower() == ".mp4":
            ok, frame = cv2.VideoCapture(str(path)).read()
            if ok:
                return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), path.name
    raise SystemExit(f"no portrait or readable clip named {stem} in {REAL}")


def frames_for(portrait) -> tuple[list[str], list[np.ndarray]]:
    """Names and rendered frames of the sheet's poses."""
    from talkinghead.face import landmarks as L
    from talkinghead.motion.types import HEAD_FIELDS
    from talkinghead.render.renderer import Renderer

    renderer = Renderer(portrait.image, portrait.face)
    rest = portrait.face.blendshapes.astype(np.float64)
    head0 = np.zeros(len(HEAD_FIELDS))
    head0[HEAD_FIELDS.index("scale")] = 1.0
    poses = [("rest", rest, head0, (0.0, 0.0))]
    for gx, gy in ((-GAZE, -GAZE), (GAZE, -GAZE), (-GAZE, GAZE), (GAZE, GAZE), (-GAZE, 0), (GAZE, 0), (0, -GAZE), (0, GAZE)):
        poses.append((f"gaze {gx:+.1f},{gy:+.1f}", rest, head0, (gx, gy)))
    for b in BLINKS:
        e = rest.copy()
        for name in L.BLINK_COEFFS:
            e[L.BLENDSHAPE_INDEX[name]] = max(b, e[L.BLENDSHAPE_INDEX[name]])
        poses.append((f"blink {b:.2f}", e, head0, (0.0, 0.0)))
    yawed = head0.copy()
    yawed[HEAD_FIELDS.index("yaw")] = 15.0
    poses.append(("blink yaw15", e, yawed, (0.0, 0.0)))
    frames = [renderer.render_frame(e, h, np.asarray(g, float)) for _, e, h, g in poses]
    return [p[0] for p in poses], frames


def sheet_row(portrait, names, frames, track, sweep) -> np.ndarray:
    """Eye crops of every frame, labelled with the re-tracked iris offset and eyeBlink score."""
    import cv2

    from talkinghead.face import landmarks as L
    from talkinghead.face.measure import blink_score

    lm = portrait.face.landmarks[:, :2]
    eyes = lm[list(L.EYE_RIGHT_LOOP) + list(L.EYE_LEFT_LOOP)]
    width = float(np.ptp(eyes[:, 0]))
    x0, x1 = eyes[:, 0].min() - 0.12 * width, eyes[:, 0].max() + 0.12 * width
    cy = eyes[:, 1].mean()
    y0, y1 = cy - 0.22 * width, cy + 0.14 * width
    x0, y0 = int(max(x0, 0)), int(max(y0, 0))
    x1, y1 = int(min(x1, frames[0].shape[1])), int(min(y1, frames[0].shape[0]))
    iris = sweep.iris_offsets(track.landmarks) - sweep.iris_offsets(portrait.face.landmarks[None])[0]
    scores = blink_score(track.blendshapes)
    crops = []
    for k, (name, frame) in enumerate(zip(names, frames)):
        crop = frame[y0:y1, x0:x1]
        scale = CROP_PX / crop.shape[0]
        crop = np.ascontiguousarray(cv2.resize(crop, (round(crop.shape[1] * scale), CROP_PX), interpolation=cv2.INTER_CUBIC))
        label2 = f"iris {iris[k, 0]:+.2f},{iris[k, 1]:+.2f} blink {scores[k]:.2f}" if track.found[k] else "no face"
        for text, y in ((name, 12), (label2, CROP_PX - 4)):
            cv2.putText(crop, text, (3, y), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(crop, text, (3, y), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (255, 255, 0), 1, cv2.LINE_AA)
        crops.append(crop)
    pad = 2
    crops = [np.pad(c, ((0, pad), (0, pad), (0, 0))) for c in crops]
    crops += [np.zeros_like(crops[0])] * (-len(crops) % COLUMNS)
    return np.concatenate([np.concatenate(crops[i:i + COLUMNS], 1) for i in range(0, len(crops), COLUMNS)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--portraits", nargs="+", required=True,
                        help="stems of images in ../shared/data/real (a clip's stem: its first frame)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "eye_sheet")
    args = parser.parse_args()
    os.environ.setdefault("GLOG_minloglevel", "2")
    import cv2

    from talkinghead.face.tracking import track_frames
    from talkinghead.pipeline import prepare_portrait

    sweep = _pose_sweep()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for stem in args.portraits:
        image, name = _load(stem)
        portrait = prepare_portrait(image, args.size, name)
        names, frames = frames_for(portrait)
        track = track_frames(frames, 25.0, video=False)
        row = sheet_row(portrait, names, frames, track, sweep)
        cv2.imwrite(str(args.out / f"eyes_{stem}.png"), cv2.cvtColor(row, cv2.COLOR_RGB2BGR))
        rows.append(row)
        print(stem, flush=True)
    width = max(r.shape[1] for r in rows)
    sheet = np.concatenate([np.pad(r, ((0, 6), (0, width - r.shape[1]), (0, 0))) for r in rows])
    cv2.imwrite(str(args.out / "eyes.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    main()
