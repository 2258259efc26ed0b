"""Measure video-driven reenactment on the real clips: each clip drives a portrait made from its own first
frame (its own sound track as the speech), and the output is re-tracked.

Per clip: correlation of the output's mouth aperture (inner-lip gap / inter-ocular distance) with the
driver's at the same times, and blink counts of driver and output, counted the same way: peaks of
MediaPipe's mean eyeBlink score rising well above the clip's own level (`count_blinks`). (The lid
gap of the landmarks is not used for counting: on the renderer's inpainted closed lids the landmarker
keeps placing an open eye, while its eyeBlink score still rises.) Also the head-rotation spread of
driver and output (each relative to its own first frame, as `talkinghead eval` computes it) and their
ratio. Writes build/driving/self_driving.json and a contact sheet per clip (driver above, output below).

    python scripts/eval_driving.py [--clips retalking_face4.mp4 ...] [--out build/driving]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from talkinghead import generate  # noqa: E402
from talkinghead.face import measure  # noqa: E402
from talkinghead.face import landmarks as L  # noqa: E402
from talkinghead.config import GenerateConfig, RenderConfig  # noqa: E402
from talkinghead.face.landmarker import FaceLandmarker  # noqa: E402
from talkinghead.io import read_video_frames  # noqa: E402
from talkinghead.pipeline import prepare_portrait  # noqa: E402
from talkinghead.face.tracking import track_video  # noqa: E402
from talkinghead.evaluation.metrics import head_rotations, rotation_spread  # noqa: E402

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
FPS = 25
MIN_FACE_PX = 160  # portraits are rendered at 512 px, or larger (up to the clip's own size) so the face is this wide
CROP_FACE_WIDTHS = 1.5  # re-tracking looks at a box this many face widths around the face (small faces)


def retrack(frames: list[np.ndarray], box: tuple[float, float, float, float],
            fps: float) -> tuple[np.ndarray, np.ndarray]:
    """(T, 478, 3) landmarks and (T, 52) blendshapes of the largest face in a crop around `box` (NaN where none)."""
    x0, y0, x1, y1 = box
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, CROP_FACE_WIDTHS * max(x1 - x0, y1 - y0)
    h, w = frames[0].shape[:2]
    bx0, by0, bx1, by1 = int(max(cx - half, 0)), int(max(cy - half, 0)), int(min(cx + half, w)), int(min(cy + half, h))
    out = np.full((len(frames), 478, 3), np.nan)
    scores = np.full((len(frames), L.N_BLENDSHAPES), np.nan)
    with FaceLandmarker(video=True) as landmarker:
        for i, frame in enumerate(frames):
            faces = landmarker.detect(np.ascontiguousarray(frame[by0:by1, bx0:bx1]), timestamp_ms=int(round(i * 1000 / fps)))
            if faces:
                out[i], scores[i] = faces[0].landmarks, faces[0].blendshapes
    return out, scores


def at_times(values: np.ndarray, src_fps: float, times: np.ndarray) -> np.ndarray:
    """Values per source frame, linearly interpolated at `times` seconds."""
    pos = np.clip(times * src_fps, 0, len(values) - 1)
    return np.interp(pos, np.arange(len(values)), values)


def evaluate_clip(clip: Path, out_dir: Path, face_depth: float = RenderConfig.face_depth) -> dict:
    track = track_video(clip, cache_dir=Path("build/tracks"))
    first = next(iter(read_video_frames(clip)))
    size = 512
    width = prepare_portrait(first, size).face.width
    if width < MIN_FACE_PX:  # small faces: the renderer's lids and lips need pixels, and so does the re-tracker
        size = min(max(first.shape[:2]), int(np.ceil(size * MIN_FACE_PX / width / 64) * 64))
    portrait = prepare_portrait(first, size)
    out = out_dir / f"self_{clip.stem}.mp4"
    result = generate(first, None, out, GenerateConfig(fps=FPS, render=RenderConfig(size=size, face_depth=face_depth)), driving=clip)
    frames = list(read_video_frames(out))
    landmarks, scores = retrack(frames, portrait.face.box, FPS)
    times = np.arange(len(frames)) / FPS
    out_ap, out_blink = measure.mouth_aperture(landmarks), measure.blink_score(scores)
    drv_ap = at_times(measure.mouth_aperture(track.landmarks), track.fps, times)
    drv_blink = at_times(measure.blink_score(track.blendshapes), track.fps, times)
    ok = np.isfinite(out_ap) & np.isfinite(drv_ap)  # a driver frame whose face was lost has no aperture
    row = {"clip": clip.name, "size": size, "frames": result.frames, "found": float(ok.mean()),
           "aperture_corr": float(np.corrcoef(out_ap[ok], drv_ap[ok])[0, 1]),
           "aperture_slope": float(np.polyfit(drv_ap[ok], out_ap[ok], 1)[0]),
           "blinks_driver": measure.count_blinks(drv_blink), "blinks_output": measure.count_blinks(out_blink),
           "head_spread_driver": _spread(track.landmarks), "head_spread_output": _spread(landmarks)}
    row["head_spread_ratio"] = row["head_spread_output"] / max(row["head_spread_driver"], 1e-9)
    _sheet(clip, frames, out_dir / f"self_{clip.stem}.jpg")
    return row


def _spread(landmarks: np.ndarray) -> float:
    """Head-rotation spread (degrees, as `talkinghead eval` computes it) relative to the first tracked frame."""
    found = np.isfinite(landmarks).all((1, 2))
    if not found.any():
        return 0.0
    return rotation_spread(head_rotations(landmarks, landmarks[int(np.argmax(found))]))


def _sheet(clip: Path, frames: list[np.ndarray], path: Path, columns: int = 6) -> None:
    import cv2

    driver = list(read_video_frames(clip))
    picks = np.linspace(0, len(frames) - 1, columns).astype(int)
    h = 256
    top, bottom = [], []
    for i in picks:
        d = driver[min(int(round(i / FPS * len(driver) / (len(frames) / FPS))), len(driver) - 1)]
        for img, row in ((d, top), (frames[i], bottom)):
            row.append(cv2.resize(img, (int(round(img.shape[1] * h / img.shape[0])), h), interpolation=cv2.INTER_AREA))
    sheet = np.concatenate([np.concatenate(top, 1), np.concatenate(bottom, 1)], 0)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", nargs="*", help="clip names in the data folder (default: every .mp4)")
    parser.add_argument("--data", type=Path, default=REAL, help="folder of clips (default: %(default)s)")
    parser.add_argument("--face-depth", type=float, default=RenderConfig.face_depth,
                        help="render.face_depth for the outputs (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("build/driving"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    clips = [args.data / c for c in args.clips] if args.clips else sorted(args.data.glob("*.mp4"))
    rows = []
    print("| clip | size | frames | aperture corr | slope | blinks driver | blinks output | head spread driver / output (deg) | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for clip in clips:
        row = evaluate_clip(clip, args.out, args.face_depth)
        rows.append(row)
        print(f"| {row['clip']} | {row['size']} | {row['frames']} | {row['aperture_corr']:.3f} | "
              f"{row['aperture_slope']:.2f} | {row['blinks_driver']} | {row['blinks_output']} | "
              f"{row['head_spread_driver']:.2f} / {row['head_spread_output']:.2f} | {row['head_spread_ratio']:.2f} |",
              flush=True)
    (args.out / "self_driving.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
