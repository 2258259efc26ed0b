"""Contact sheet: the background plate against the stretched background at the sweep's extreme poses.

    python scripts/plate_sheet.py [--portraits hallo_ref3.jpg,sadtalker_art14.png,joyvasa_img005.png] [--out FILE]

For each portrait two rows (render.background = stretch, then plate) of seven poses: yaw +25, yaw -25,
pitch +15, pitch -15, roll +15, distance 1.3, distance 0.75. Portraits come from ../shared/data/real.
Writes docs/renderer/plate_vs_stretch.jpg by default (a .png name writes PNG).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from talkinghead.config import RenderConfig  # noqa: E402
from talkinghead.io import load_image  # noqa: E402
from talkinghead.motion.types import HEAD_FIELDS, Motion  # noqa: E402
from talkinghead.pipeline import prepare_portrait  # noqa: E402
from talkinghead.render.renderer import Renderer  # noqa: E402

REAL = ROOT.parent / "shared" / "data" / "real"
POSES = ((25, 0, 0, 1), (-25, 0, 0, 1), (0, 15, 0, 1), (0, -15, 0, 1), (0, 0, 15, 1), (0, 0, 0, 1.3), (0, 0, 0, 0.75))
TILE = 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--portraits", default="hallo_ref3.jpg,sadtalker_art14.png,joyvasa_img005.png")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "renderer" / "plate_vs_stretch.jpg")
    args = parser.parse_args()
    rows = []
    for name in args.portraits.split(","):
        portrait = prepare_portrait(load_image(REAL / name), 512)
        rest = Motion.rest(portrait.face.blendshapes)
        for background in ("stretch", "plate"):
            renderer = Renderer(portrait.image, portrait.face, RenderConfig(background=background))
            tiles = []
            for yaw, pitch, roll, distance in POSES:
                head = rest.head[0].copy()
                for field, value in (("yaw", yaw), ("pitch", pitch), ("roll", roll), ("scale", 1 / distance)):
                    head[HEAD_FIELDS.index(field)] = value
                frame = renderer.render_frame(rest.expression[0], head, rest.gaze[0])
                tiles.append(cv2.resize(frame, (TILE, TILE), interpolation=cv2.INTER_AREA))
            rows.append(np.concatenate(tiles, 1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 75])
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
