"""Face identity descriptors: dlib's ResNet (128-d, the `face_recognition` model) for the identity metric.

Optional: needs the 'eval' extra (`dlib-bin` and `face-recognition-models`). Faces are located with the
package's own landmarker result (a box from the landmarks), so dlib's detector is not needed; dlib's
5-point predictor aligns the crop as its descriptor expects. Two photos of one person are typically
under 0.6 apart (dlib's own same-person threshold); different people are further.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

SAME_PERSON_DISTANCE = 0.6  # dlib's threshold for "same person"


def available() -> bool:
    """Whether dlib and the model files are installed."""
    return importlib.util.find_spec("dlib") is not None and importlib.util.find_spec("face_recognition_models") is not None


class IdentityEncoder:
    """image + face landmarks -> 128-d descriptor."""

    def __init__(self):
        import dlib

        spec = importlib.util.find_spec("face_recognition_models")
        models = Path(spec.origin).parent / "models"  # located directly: its own helper needs pkg_resources
        self._dlib = dlib
        self._shape = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        self._net = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))

    def descriptor(self, image: np.ndarray, face_landmarks: np.ndarray) -> np.ndarray:
        """(128,) float64 descriptor of the face whose MediaPipe landmarks are given (pixels)."""
        xy = np.asarray(face_landmarks, np.float64)[:, :2]
        x0, y0 = xy.min(0)
        x1, y1 = xy.max(0)
        rect = self._dlib.rectangle(int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1)))
        image = np.ascontiguousarray(image, np.uint8)
        shape = self._shape(image, rect)
        return np.array(self._net.compute_face_descriptor(image, shape), np.float64)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two descriptors."""
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))
