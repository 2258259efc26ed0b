"""Head pose: the similarity transform between a face's landmarks and the canonical face, and Euler angles.

points (N, 3) image pixels <-> canonical face (N, 3); angles in degrees, image axes (x right, y down).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import landmarks as L

HEAD_PIVOT = np.array([0.0, 0.9, 1.2])  # head rotation centre, canonical IOD units (below and behind the eyes)

@dataclass(frozen=True)
class Similarity:
    """x_image = scale * rotation @ x_canonical + translation (3D; rows are points)."""

    scale: float
    rotation: np.ndarray  # (3, 3)
    translation: np.ndarray  # (3,)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Canonical (N, 3) -> image (N, 3)."""
        return self.scale * points @ self.rotation.T + self.translation

    def invert(self, points: np.ndarray) -> np.ndarray:
        """Image (N, 3) -> canonical (N, 3), exact inverse of apply."""
        return ((points - self.translation) @ self.rotation) / self.scale


def fit_similarity(points: np.ndarray, reference: np.ndarray, ids=L.RIGID_POINTS) -> Similarity:
    """Umeyama least-squares similarity mapping reference[ids] onto points[ids] (3D)."""
    src = reference[list(ids)].astype(np.float64)
    dst = points[list(ids)].astype(np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    rot = u @ np.diag(d) @ vt
    scale = float((sig * d).sum() / xs.var(0).sum())
    trans = mu_d - scale * rot @ mu_s
    return Similarity(scale, rot, trans)


def rotation_to_euler(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of R = Rz(roll) @ Ry(yaw) @ Rx(pitch) (image axes: x right, y down)."""
    yaw = np.degrees(np.arcsin(np.clip(-rotation[2, 0], -1, 1)))
    pitch = np.degrees(np.arctan2(rotation[2, 1], rotation[2, 2]))
    roll = np.degrees(np.arctan2(rotation[1, 0], rotation[0, 0]))
    return float(yaw), float(pitch), float(roll)


def upright_frame(canonical: np.ndarray) -> np.ndarray:
    """(3, 3) rows: the upright head's axes in the canonical face's coordinates (x along the eye line, z
    level with the Frankfurt plane, from the orbit's lower rim back towards the ears, y down).

    The canonical face (the expression basis's mean shape) is not upright: its eye line has about 6
    degrees of roll and its Frankfurt plane about 13 degrees of pitch, which is also the median pose of
    the training videos' heads against it. Head angles are taken about these axes, so a yaw turns the
    head about an upright neck instead of an axis leaning back."""
    c = np.asarray(canonical, np.float64)
    x = c[L.EYE_LEFT_OUTER_CORNER] - c[L.EYE_RIGHT_OUTER_CORNER]
    x /= np.linalg.norm(x)
    back = c[list(L.EAR_LEVEL_OUTLINE)].mean(0) - c[list(L.ORBITALE)].mean(0)
    z = back - x * (back @ x)
    z /= np.linalg.norm(z)
    return np.stack([x, np.cross(z, x), z])


def head_rotation(yaw: float, pitch: float, roll: float, frame: np.ndarray) -> np.ndarray:
    """Rotation in canonical coordinates of a head turned by these angles (degrees) about the upright
    axes `frame` (upright_frame)."""
    return frame.T @ euler_to_rotation(yaw, pitch, roll) @ frame


def head_euler(rotation: np.ndarray, frame: np.ndarray) -> tuple[float, float, float]:
    """Inverse of head_rotation: (yaw, pitch, roll) degrees of a rotation given in canonical coordinates."""
    return rotation_to_euler(frame @ rotation @ frame.T)


def euler_to_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Inverse of rotation_to_euler (degrees)."""
    y, p, r = np.radians([yaw, pitch, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx
