"""Mouth contact sheet (issue 12): crops of the mouth from closed to fully open, smiling, and turned.

    python scripts/mouth_sheet.py --portraits hallo_ref3 sadtalker_art14 --out build/mouth_sheet
    python scripts/mouth_sheet.py --real     # real speakers of ../shared/data/train at the same openings

For each portrait, one row of crops (the lips' box, scaled up) at: the portrait's own frame, jawOpen
0.1, 0.2, 0.35, 0.6 and 1, mouthLowerDown 0.6 with jawOpen 0.2, a smile, a smile with jawOpen 0.35,
and jawOpen 0.35 at yaw 20. Each is labelled with the re-tracked mouth aperture (inner-lip gap over the
inter-ocular distance; the portrait's own is the first). Look for: a white bar in a barely parted
mouth, teeth that slide with the lips instead of the bones, doubled teeth, a hole with no teeth when
wide open. Writes OUT/mouth.png.

With --real, the reference instead: for each speech clip of ../shared/data/train (faces of 512 px or
more), the tracked frames nearest to mouth apertures 0.02, 0.05, 0.08, 0.12, 0.18 and 0.25. Writes
OUT/real_mouths.png.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
CROP_PX = 120
DEFAULT_PORTRAITS = ("hallo_ref3", "hallo_ref1", "sadtalker_people0", "sadtalker_art14", "joyvasa_img005",
                     "echomimic_img_d", "liveportrait_s12")
POSES = (("own", ()), ("jaw .1", (("jawOpen", 0.1),)), ("jaw .2", (("jawOpen", 0.2),)),
         ("jaw .35", (("jawOpen", 0.35),)), ("jaw .6", (("jawOpen", 0.6),)), ("jaw 1", (("jawOpen", 1.0),)),
         ("lower lip", (("jawOpen", 0.2), ("mouthLowerDownLeft", 0.6), ("mouthLowerDownRight", 0.6))),
         ("smile", (("mouthSmileLeft", 1.0), ("mouthSmileRight", 1.0))),
         ("smile jaw .35", (("mouthSmileLeft", 1.0), ("mouthSmileRight", 1.0), ("jawOpen", 0.35))),
         ("yaw 20 jaw .35", (("jawOpen", 0.35),)))


def mouth_crop(frame: np.ndarray, landmarks: np.ndarray, label: str) -> np.ndarray:
    """The box around the outer lips of `landmarks` (478, 2+), scaled to CROP_PX high, labelled."""
    import cv2

    from talkinghead.face import landmarks as L

    lips = landmarks[list(L.LIPS_UPPER_OUTER) + list(L.LIPS_LOWER_OUTER), :2]
    width = float(np.ptp(lips[:, 0]))
    cx, cy = lips.mean(0)
    crop = frame[int(max(cy - 0.45 * width, 0)):int(cy + 0.75 * width), int(max(cx - 0.85 * width, 0)):int(cx + 0.85 * width)]
    crop = np.ascontiguousarray(cv2.resize(crop, (int(CROP_PX * 1.4), CROP_PX), interpolation=cv2.INTER_CUBIC))
    cv2.putText(crop, label, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (255, 255, 0), 1, cv2.LINE_AA)
    return crop


def render_row(stem: str, size: int) -> np.ndarray:
    """Mouth crops of one portrait at every pose of POSES, labelled with the re-tracked aperture."""
    from eye_sheet import _load
    from talkinghead.face import landmarks as L
    from talkinghead.face.landmarker import FaceLandmarker
    from talkinghead.face.measure import mouth_aperture
    from talkinghead.motion.types import HEAD_FIELDS
    from talkinghead.pipeline import prepare_portrait
    from talkinghead.render.renderer import Renderer

    image, _ = _load(stem)
    portrait = prepare_portrait(image, size)
    renderer = Renderer(portrait.image, portrait.face)
    rest = portrait.face.blendshapes.astype(np.float64)
    crops = []
    with FaceLandmarker() as landmarker:
        for name, coefficients in POSES:
            expression = rest.copy()
            for key, value in coefficients:
                expression[L.BLENDSHAPE_INDEX[key]] = value
            head = np.zeros(len(HEAD_FIELDS))
            head[HEAD_FIELDS.index("scale")] = 1.0
            if name.startswith("yaw"):
                head[HEAD_FIELDS.index("yaw")] = 20.0
            frame = portrait.image if name == "own" else renderer.render_frame(expression, head, np.zeros(2))
            faces = landmarker.detect(np.ascontiguousarray(frame))
            aperture = float(mouth_aperture(faces[0].landmarks)) if faces else float("nan")
            crops.append(mouth_crop(frame, portrait.face.landmarks, f"{name} {aperture:.2f}"))
    return np.concatenate(crops, 1)


REAL_SPEAKERS = ("LivePortrait_d11", "IMTalker_driving_1", "IMTalker_driving_2", "Real3DPortrait_May_5s",
                 "megactor_audio_CHTF_2", "megactor_audio_ENTF_1", "EAMM_M030_sad_3_001",
                 "FreeViewTalkingHead_input_video")
REAL_APERTURES = (0.02, 0.05, 0.08, 0.12, 0.18, 0.25)


def real_row(clip: Path) -> np.ndarray:
    """Mouth crops of a real speaker at REAL_APERTURES (nearest tracked frames)."""
    from talkinghead.face.measure import mouth_aperture
    from talkinghead.face.tracking import track_video
    from talkinghead.io import read_video_frames

    track = track_video(clip, cache_dir=ROOT / "build" / "tracks")
    apertures = mouth_aperture(track.landmarks)
    picks = {int(np.nanargmin(np.abs(apertures - a))): a for a in REAL_APERTURES}
    crops = []
    for i, frame in enumerate(read_video_frames(clip)):
        if i not in picks:
            continue
        crops.append((apertures[i], mouth_crop(frame, track.landmarks[i], f"{apertures[i]:.2f}")))
    return np.concatenate([c for _, c in sorted(crops, key=lambda pair: pair[0])], 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--portraits", nargs="*", default=list(DEFAULT_PORTRAITS))
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "mouth_sheet")
    parser.add_argument("--real", action="store_true", help="real speakers' mouths instead (the reference)")
    args = parser.parse_args(argv)
    import cv2

    args.out.mkdir(parents=True, exist_ok=True)
    if args.real:
        speech = ROOT.parent / "shared" / "data" / "train" / "speech"
        clips = [speech / f"{name}.mp4" for name in REAL_SPEAKERS if (speech / f"{name}.mp4").exists()]
        if not clips:
            raise SystemExit(f"no training clips in {speech}: --real needs ../shared/data/train")
        rows = [real_row(clip) for clip in clips]
        width = max(r.shape[1] for r in rows)
        rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
        cv2.imwrite(str(args.out / "real_mouths.png"), cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR))
        print(args.out / "real_mouths.png")
        return 0
    rows = [render_row(stem, args.size) for stem in args.portraits]
    sheet = np.concatenate(rows, 0)
    cv2.imwrite(str(args.out / "mouth.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(args.out / "mouth.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
