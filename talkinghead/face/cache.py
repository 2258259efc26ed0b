"""The portrait's face analysis, kept on disk per image: a portrait seen before starts without loading
the face landmarker (the slowest step of start-up, about 1.2 s on a 2-core CPU).

    image (H, W, 3) uint8 RGB -> sha256 key -> CACHE_DIR/<key>.npz (landmarks, blendshapes, faces found)

The key covers the pixels, the landmark model and this file's format version, so a changed image or
model is analysed again. The folder is `faces/` in the cache folder (`disk_cache`: $TALKINGHEAD_CACHE,
else ~/.cache/talkinghead; TALKINGHEAD_CACHE=off turns it off). A cache that cannot be read or
written is ignored: the face is then found as usual.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..disk_cache import CACHE_ENV, cache_folder, image_key, write_atomically  # noqa: F401 (CACHE_ENV: re-exported)
from .landmarker import LANDMARKER_SHA256, FaceObservation, choose_portrait_face

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when what is stored, or how a face is chosen, changes


def cache_dir() -> Path | None:
    """Where face analyses are kept, or None when the cache is turned off."""
    return cache_folder("faces")


def cache_key(image: np.ndarray) -> str:
    """sha256 of the format version, the landmark model and the image (shape and pixels)."""
    return image_key(image, CACHE_FORMAT, LANDMARKER_SHA256)


def portrait_face(image: np.ndarray, name: str = "portrait", downscale: float = 1.0) -> FaceObservation:
    """find_portrait_face, answered from the cache when this image was analysed before."""
    folder = cache_dir()
    path = folder / f"{cache_key(image)}.npz" if folder is not None else None
    cached = _load(path) if path is not None else None
    if cached is not None:
        face, count = cached
        if count > 1:
            log.warning("%d faces found in %s: animating the largest one", count, name)
        return face
    face, count = choose_portrait_face(image, name, downscale)
    if count > 1:
        log.warning("%d faces found in %s: animating the largest one", count, name)
    if path is not None:
        _store(path, face, count)
    return face


def _load(path: Path) -> tuple[FaceObservation, int] | None:
    try:
        with np.load(path) as data:
            face = FaceObservation(data["landmarks"].astype(np.float32), data["blendshapes"].astype(np.float32))
            return face, int(data["faces"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError) as exc:  # a damaged entry: analyse again (and overwrite it)
        log.debug("face cache entry %s unreadable (%s)", path, exc)
        return None


def _store(path: Path, face: FaceObservation, count: int) -> None:
    """Write atomically; problems only skip the cache."""
    write_atomically(path, lambda f: np.savez(f, landmarks=face.landmarks, blendshapes=face.blendshapes, faces=count))
