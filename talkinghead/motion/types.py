"""The motion representation: the contract between every motion source and the renderer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..face import landmarks as L

HEAD_FIELDS = ("yaw", "pitch", "roll", "tx", "ty", "scale")
N_HEAD = len(HEAD_FIELDS)


@dataclass(frozen=True)
class Motion:
    """T frames of face motion, relative to the portrait.

    expression: (T, 52) float32 ARKit-named coefficients in [0, 1] (landmarks.BLENDSHAPE_NAMES);
        absolute values on MediaPipe's scale: the portrait's own scores are the starting point and
        the renderer moves the face by the difference.
    head: (T, 6) float32 change of head pose from the portrait's: yaw, pitch, roll in degrees
        (positive yaw turns the face towards the image's left, positive pitch tilts it down,
        positive roll turns it clockwise on screen), tx, ty in inter-ocular distances (image axes),
        scale as a factor (1 = the portrait's size).
    gaze: (T, 2) float32 iris offset from the portrait's, in eye widths (x right, y down).
    """

    expression: np.ndarray
    head: np.ndarray
    gaze: np.ndarray

    def __post_init__(self) -> None:
        t = len(self.expression)
        if self.expression.shape != (t, L.N_BLENDSHAPES) or self.head.shape != (t, N_HEAD) or self.gaze.shape != (t, 2):
            raise ValueError(f"inconsistent motion shapes {self.expression.shape}, {self.head.shape}, {self.gaze.shape}")

    def __len__(self) -> int:
        return len(self.expression)

    def __getitem__(self, index) -> "Motion":
        """Frames `index` (an int keeps a length-1 run)."""
        if isinstance(index, (int, np.integer)):
            index = slice(int(index), int(index) + 1)
        return Motion(self.expression[index], self.head[index], self.gaze[index])

    @staticmethod
    def empty() -> "Motion":
        """A run of zero frames."""
        return Motion(np.zeros((0, L.N_BLENDSHAPES), np.float32), np.zeros((0, N_HEAD), np.float32),
                      np.zeros((0, 2), np.float32))

    @staticmethod
    def rest(expression: np.ndarray, frames: int = 1) -> "Motion":
        """`frames` frames holding `expression` (52,), head and gaze as in the portrait."""
        head = np.zeros((frames, N_HEAD), np.float32)
        head[:, HEAD_FIELDS.index("scale")] = 1.0
        return Motion(np.repeat(np.asarray(expression, np.float32)[None], frames, 0), head,
                      np.zeros((frames, 2), np.float32))

    @staticmethod
    def concat(parts: list["Motion"]) -> "Motion":
        """Join runs end to end."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return Motion.empty()
        return Motion(np.concatenate([p.expression for p in parts]), np.concatenate([p.head for p in parts]),
                      np.concatenate([p.gaze for p in parts]))

    def coefficient(self, name: str) -> np.ndarray:
        """(T,) series of one named blendshape."""
        return self.expression[:, L.BLENDSHAPE_INDEX[name]]


def interpolate_rows(values: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Rows of `values` (F, K) at fractional frame positions, linear interpolation, ends held."""
    position = np.clip(position, 0, len(values) - 1)
    lo = np.floor(position).astype(int)
    hi = np.minimum(lo + 1, len(values) - 1)
    w = (position - lo)[:, None]
    return values[lo] * (1 - w) + values[hi] * w


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True."""
    padded = np.concatenate([[False], np.asarray(mask, bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))
