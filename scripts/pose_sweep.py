"""Pose sweep (issue 12): render the scripted sweep on real portraits, re-track it, report the figures.

    python scripts/pose_sweep.py                      # all 12 portraits of ../shared/data/real
    python scripts/pose_sweep.py --quick              # 2 portraits, a minute or two
    python scripts/pose_sweep.py --portraits hallo_ref3 sadtalker_art14 --out build/sweep_new

For each portrait: every pose of talkinghead.render.sweep is rendered at 512 px and re-tracked frame by
frame (MediaPipe image mode). Figures: re-tracked yaw / pitch against requested (correlation, slope;
the rotation relative to the portrait's own landmarks, read about the head's own upright axes, the
convention the request is made in: metrics.head_angles; `*_camera` in sweep.json reads the same turn
about the camera's axes, where the roll of a head already turned sideways also shows as pitch), re-tracked iris offset against requested gaze
(slope, eye widths; iris_slope_fixed: the same against the portrait's own eye corners, which the
gaze frames do not move, since the tracker drags its corners along with the iris and lids), share of full blinks the tracker scores closed (mean eyeBlink >= 0.5), faces
found, dlib identity distance to the portrait averaged over the extreme poses (as `talkinghead eval`),
and the fold checks: share of head-box pixels whose full-resolution sampling map has a Jacobian
determinant <= 0 (occlusion edges, where a near surface covers a far one, count here), and the mesh
check of talkinghead.render.folds (single-layer grid cells that fold, and holes no triangle drew).
Writes OUT/sweep.json, OUT/sheet.png (extremes, one row per portrait) and prints a table.
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
REAL = ROOT.parent / "shared" / "data" / "real"
QUICK_PORTRAITS = ("hallo_ref3", "sadtalker_art14")
SHEET_POSES = ("neutral", "yaw-25", "yaw+25", "pitch-15.0", "pitch+15.0", "roll-15", "roll+15", "distance0.75",
               "distance1.30", "gaze-0.3,-0.3", "gaze+0.3,+0.3", "blink", "jaw-open", "smile")
THUMB_PX = 150
COMPARE_MAX_WIDTH = 1600  # px, the --compare sheet
BLINK_CLOSED = 0.5  # mean eyeBlink score at or above which the tracker sees the eyes closed
FPS = 25.0


def _slope_corr(requested: np.ndarray, measured: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of measured on requested, and their correlation (NaN pairs dropped)."""
    ok = np.isfinite(requested) & np.isfinite(measured)
    x, y = requested[ok], measured[ok]
    if len(x) < 3 or x.std() == 0:
        return float("nan"), float("nan")
    slope = float(np.polyfit(x, y, 1)[0])
    return slope, float(np.corrcoef(x, y)[0, 1])


def iris_offsets(landmarks: np.ndarray) -> np.ndarray:
    """(T, 478, 3) -> (T, 2) mean iris offset from the eye-corner midpoint, image axes, eye widths."""
    from talkinghead.face import landmarks as L

    offsets = []
    for iris, outer, inner in ((L.IRIS_RIGHT, L.EYE_RIGHT_OUTER_CORNER, L.EYE_RIGHT_INNER_CORNER),
                               (L.IRIS_LEFT, L.EYE_LEFT_OUTER_CORNER, L.EYE_LEFT_INNER_CORNER)):
        lm = landmarks[..., :2].astype(np.float64)
        width = np.linalg.norm(lm[:, outer] - lm[:, inner], axis=-1)
        offsets.append((lm[:, iris[0]] - (lm[:, outer] + lm[:, inner]) / 2) / width[:, None])
    return (offsets[0] + offsets[1]) / 2


def with_portrait_corners(landmarks: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(T, 478, 3) re-tracked landmarks with the four eye corners replaced by the portrait's own
    (478, 3). Only for frames without head motion (the gaze frames): there the rendered corners are
    the portrait's (mesh vertices that neither gaze nor the lids move), while the tracker drags its
    corners along with the iris and lids; the iris offset is then measured against corners that
    did not move."""
    from talkinghead.face import landmarks as L

    out = landmarks.copy()
    corners = [L.EYE_RIGHT_OUTER_CORNER, L.EYE_RIGHT_INNER_CORNER, L.EYE_LEFT_OUTER_CORNER, L.EYE_LEFT_INNER_CORNER]
    out[:, corners] = reference[corners]
    return out


def render_sweep(portrait, poses, config=None) -> tuple[list[np.ndarray], list[tuple[float, float]], list[dict]]:
    """Frames (H, W, 3) uint8 of every pose, (fold share, min det) of each frame's full-resolution head
    map (occlusion edges count as folds there), and each frame's mesh fold check (render.folds)."""
    from talkinghead.render.folds import fold_share, mesh_fold_check
    from talkinghead.render.renderer import Renderer
    from talkinghead.render.sweep import sweep_motion

    from talkinghead.config import RenderConfig

    renderer = Renderer(portrait.image, portrait.face, config or RenderConfig())
    motion = sweep_motion(portrait.face.blendshapes, poses)
    frames, folds, checks = [], [], []
    for i in range(len(motion)):
        args = (motion.expression[i], motion.head[i], motion.gaze[i])
        frames.append(renderer.render_frame(*args))
        folds.append(fold_share(renderer.sampling_map(*args)))
        checks.append(mesh_fold_check(renderer, *args) if hasattr(renderer.rig, "mesh") else {})
    return frames, folds, checks


def measure_portrait(path: Path, size: int, encoder, config=None) -> tuple[dict, list[np.ndarray]]:
    """Render, re-track and score one portrait; returns its row and its frames."""
    from talkinghead.evaluation import identity
    from talkinghead.evaluation.metrics import head_angles, head_rotations
    from talkinghead.face.expression import load_basis
    from talkinghead.face.measure import blink_score
    from talkinghead.face.tracking import track_frames
    from talkinghead.io import load_image
    from talkinghead.pipeline import prepare_portrait
    from talkinghead.render.sweep import sweep_poses

    portrait = prepare_portrait(load_image(path), size, path.name)
    poses = sweep_poses()
    frames, folds, checks = render_sweep(portrait, poses, config)
    track = track_frames(frames, FPS, video=False)
    reference = portrait.face.landmarks
    # (T, 3) yaw, pitch, roll about the head's own upright axes, the convention the request is made in
    rotations = head_angles(track.landmarks, reference, load_basis().mean_shape)
    camera = head_rotations(track.landmarks, reference)  # the same about the camera's axes (for comparison)
    requested = np.array([[p.yaw, p.pitch, p.roll] for p in poses])
    gaze_ids = [i for i, p in enumerate(poses) if p.name.startswith("gaze") or p.name == "neutral"]
    iris = iris_offsets(track.landmarks[gaze_ids]) - iris_offsets(reference[None])[0]
    iris_fixed = iris_offsets(with_portrait_corners(track.landmarks[gaze_ids], reference)) - iris_offsets(reference[None])[0]
    asked = np.array([poses[i].gaze for i in gaze_ids])
    blinks = [i for i, p in enumerate(poses) if p.blink]
    scores = blink_score(track.blendshapes)
    row = {"portrait": path.stem, "frames": len(poses), "found": int(track.found.sum())}
    for k, name in enumerate(("yaw", "pitch", "roll")):
        row[f"{name}_slope"], row[f"{name}_corr"] = _slope_corr(requested[:, k], rotations[:, k])
        row[f"{name}_slope_camera"], row[f"{name}_corr_camera"] = _slope_corr(requested[:, k], camera[:, k])
    row["iris_slope_x"], _ = _slope_corr(asked[:, 0], iris[:, 0])
    row["iris_slope_y"], _ = _slope_corr(asked[:, 1], iris[:, 1])
    row["iris_slope"], _ = _slope_corr(asked.ravel(), iris.ravel())
    row["iris_slope_fixed"], _ = _slope_corr(asked.ravel(), iris_fixed.ravel())
    row["blink_closed"] = float(np.mean([track.found[i] and scores[i] >= BLINK_CLOSED for i in blinks]))
    row["blink_scores"] = [round(float(scores[i]), 3) for i in blinks]
    row["fold_share_max"] = max(f[0] for f in folds)
    row["fold_frames"] = [p.name for p, f in zip(poses, folds) if f[0] > 0]
    row["min_det"] = min(f[1] for f in folds)
    if all(checks):
        row["mesh_fold_share_max"] = max(c["folds"] / c["cells"] for c in checks)
        row["holes"] = int(sum(c["holes"] for c in checks))
    if encoder is not None:
        ref = encoder.descriptor(portrait.image, reference)
        extremes = [i for i, p in enumerate(poses) if p.extreme and track.found[i]]
        row["identity_extremes"] = float(np.mean([identity.distance(ref, encoder.descriptor(frames[i], track.landmarks[i]))
                                                  for i in extremes])) if extremes else float("nan")
    row["_requested"], row["_rotations"], row["_rotations_camera"] = requested.tolist(), rotations.tolist(), camera.tolist()
    row["_gaze_asked"], row["_iris"], row["_iris_fixed"] = asked.tolist(), iris.tolist(), iris_fixed.tolist()
    return row, frames


def sheet_row(frames: list[np.ndarray], label: str) -> np.ndarray:
    """One contact-sheet row: the SHEET_POSES frames as THUMB_PX-high thumbnails, labelled."""
    import cv2

    from talkinghead.render.sweep import sweep_poses

    names = [p.name for p in sweep_poses()]
    thumbs = []
    for name in SHEET_POSES:
        frame = frames[names.index(name)]
        h, w = frame.shape[:2]
        thumb = cv2.resize(frame, (max(1, round(w * THUMB_PX / h)), THUMB_PX), interpolation=cv2.INTER_AREA)
        thumb = np.ascontiguousarray(thumb)
        cv2.putText(thumb, name, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 0), 1, cv2.LINE_AA)
        thumbs.append(thumb)
    row = np.concatenate(thumbs, 1)
    cv2.putText(row, label, (3, THUMB_PX - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1, cv2.LINE_AA)
    return row


def write_comparison(old: np.ndarray, new: np.ndarray, rows: int, path: Path) -> None:
    """Interleave two sheets of `rows` THUMB_PX-high rows: old row, new row, ... (labelled) as a JPEG."""
    import cv2

    width = max(old.shape[1], new.shape[1])
    if old.shape[0] != rows * THUMB_PX:
        raise SystemExit(f"{path}: the old sheet has {old.shape[0] // THUMB_PX} rows, this run {rows}")
    out = []
    for r in range(rows):
        for sheet, label in ((old, "old"), (new, "new")):
            row = np.ascontiguousarray(np.pad(sheet[r * THUMB_PX:(r + 1) * THUMB_PX],
                                              ((0, 0), (0, width - sheet.shape[1]), (0, 0))))
            cv2.putText(row, label, (width - 40, THUMB_PX - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 0), 1, cv2.LINE_AA)
            out.append(row)
    image = np.concatenate(out)
    if image.shape[1] > COMPARE_MAX_WIDTH:  # small enough for a README
        image = cv2.resize(image, (COMPARE_MAX_WIDTH, round(image.shape[0] * COMPARE_MAX_WIDTH / image.shape[1])),
                           interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])


def pooled(rows: list[dict]) -> dict:
    """Figures over every frame of every portrait (the issue's 'whole sweep')."""
    requested = np.concatenate([np.array(r["_requested"]) for r in rows])
    rotations = np.concatenate([np.array(r["_rotations"]) for r in rows])
    camera = np.concatenate([np.array(r["_rotations_camera"]) for r in rows])
    asked = np.concatenate([np.array(r["_gaze_asked"]) for r in rows])
    iris = np.concatenate([np.array(r["_iris"]) for r in rows])
    out = {"portraits": len(rows), "frames": int(sum(r["frames"] for r in rows)),
           "found": int(sum(r["found"] for r in rows))}
    for k, name in enumerate(("yaw", "pitch", "roll")):
        out[f"{name}_slope"], out[f"{name}_corr"] = _slope_corr(requested[:, k], rotations[:, k])
        out[f"{name}_slope_camera"], out[f"{name}_corr_camera"] = _slope_corr(requested[:, k], camera[:, k])
    out["iris_slope_x"], _ = _slope_corr(asked[:, 0], iris[:, 0])
    out["iris_slope_y"], _ = _slope_corr(asked[:, 1], iris[:, 1])
    out["iris_slope"], _ = _slope_corr(asked.ravel(), iris.ravel())
    fixed = np.concatenate([np.array(r["_iris_fixed"]) for r in rows])
    out["iris_slope_fixed"], _ = _slope_corr(asked.ravel(), fixed.ravel())
    out["blink_closed"] = float(np.mean([r["blink_closed"] for r in rows]))
    ids = [r["identity_extremes"] for r in rows if np.isfinite(r.get("identity_extremes", np.nan))]
    out["identity_extremes"] = float(np.mean(ids)) if ids else float("nan")
    out["fold_portraits"] = int(sum(r["fold_share_max"] > 0 for r in rows))
    out["fold_share_max"] = float(max(r["fold_share_max"] for r in rows))
    out["mesh_fold_share_max"] = float(max(r.get("mesh_fold_share_max", np.nan) for r in rows))
    out["holes"] = int(sum(r.get("holes", 0) for r in rows))
    return out


COLUMNS = ("found", "yaw_corr", "yaw_slope", "pitch_corr", "pitch_slope", "roll_slope", "iris_slope",
           "iris_slope_x", "iris_slope_y", "iris_slope_fixed", "blink_closed", "identity_extremes", "fold_share_max",
           "mesh_fold_share_max", "holes")


def print_table(rows: list[dict], total: dict) -> None:
    """Markdown table: one row per portrait, then the pooled row."""
    print("| portrait | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for r in rows + [dict(total, portrait="**all (pooled)**")]:
        cells = []
        for c in COLUMNS:
            v = r.get(c, float("nan"))
            if c in ("found", "holes"):
                cells.append(f"{r['found']}/{r['frames']}" if c == "found" else str(int(v)))
            else:
                cells.append(f"{v:.4f}" if "fold" in c else f"{v:.3f}")
        print(f"| {r['portrait']} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--portraits", nargs="*", help="portrait names (stems) from ../shared/data/real; default all")
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK_PORTRAITS)}")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--no-identity", action="store_true", help="skip the dlib identity figure")
    parser.add_argument("--face-depth", type=float, help="render.face_depth (default: the renderer's)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "pose_sweep")
    parser.add_argument("--compare", type=Path, metavar="OLD_SHEET",
                        help="another run's sheet.png (same portraits, e.g. from an older commit): also write "
                             "OUT/compare.jpg, its rows (marked old) above this run's (new)")
    args = parser.parse_args()
    os.environ.setdefault("GLOG_minloglevel", "2")
    import cv2

    from talkinghead.errors import TalkingHeadError
    from talkinghead.evaluation import identity

    if not REAL.is_dir():
        raise SystemExit(f"{REAL} not found: the sweep needs the real portraits of ../shared/data/real")
    paths = sorted(p for p in REAL.iterdir() if p.suffix.lower() in (".png", ".jpg"))
    wanted = QUICK_PORTRAITS if args.quick else args.portraits
    if wanted:
        paths = [p for p in paths if p.stem in wanted]
        if len(paths) != len(set(wanted)):
            raise SystemExit(f"unknown portrait among {wanted}: use stems of the images in {REAL}")
    encoder = None if args.no_identity or not identity.available() else identity.IdentityEncoder()
    from talkinghead.config import RenderConfig

    config = RenderConfig(size=args.size) if args.face_depth is None else RenderConfig(size=args.size, face_depth=args.face_depth)
    args.out.mkdir(parents=True, exist_ok=True)
    rows, sheet = [], []
    for path in paths:
        try:
            row, frames = measure_portrait(path, args.size, encoder, config)
        except TalkingHeadError as exc:
            print(f"{path.name}: {exc}", file=sys.stderr)
            continue
        rows.append(row)
        sheet.append(sheet_row(frames, path.stem))
        print(f"{path.stem}: found {row['found']}/{row['frames']}, folds in {row['fold_frames'] or 'none'}", flush=True)
    width = max(r.shape[1] for r in sheet)
    sheet = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in sheet])
    cv2.imwrite(str(args.out / "sheet.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if args.compare:
        write_comparison(cv2.cvtColor(cv2.imread(str(args.compare)), cv2.COLOR_BGR2RGB), sheet, len(paths),
                         args.out / "compare.jpg")
    total = pooled(rows)
    (args.out / "sweep.json").write_text(json.dumps({"pooled": total, "portraits": rows}, indent=1))
    print_table(rows, total)


if __name__ == "__main__":
    main()
