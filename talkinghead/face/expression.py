"""The expression basis: ARKit-named coefficients -> 3D landmark displacements, canonical face frame.

The canonical frame is the mean face of the fitting clips with its head pose removed: x right,
y down, z away from the camera, scaled so the outer eye corners are 1 unit apart (IOD units).
`ExpressionBasis.displacement(delta)` is linear: sum_k delta[k] * basis[k], with basis (52, 478, 3)
fitted by ridge regression on tracked real talking clips (scripts/fit_expression_basis.py, which
also reports the reconstruction error on clips it was not fitted on). Blinks and gaze are drawn
geometrically by the renderer instead (see landmarks.BLINK_COEFFS / GAZE_COEFFS).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..assets import ASSETS_DIR
from . import landmarks as L

BASIS_PATH = ASSETS_DIR / "expression_basis.npz"


@dataclass(frozen=True)
class ExpressionBasis:
    """mean_shape: (478, 3) float32 canonical face; basis: (52, 478, 3) float32 per unit coefficient."""

    mean_shape: np.ndarray
    basis: np.ndarray
    meta: dict

    def displacement(self, delta: np.ndarray, skip: tuple[str, ...] = ()) -> np.ndarray:
        """(52,) coefficient change -> (478, 3) canonical displacement; `skip` names rows to leave out."""
        delta = np.asarray(delta, dtype=np.float32).copy()
        for name in skip:
            delta[L.BLENDSHAPE_INDEX[name]] = 0.0
        return np.tensordot(delta, self.basis, axes=1)

    @property
    def coefficient_max(self) -> np.ndarray:
        """(52,) largest coefficient values seen while fitting (99.5th percentile): the trusted range."""
        return np.asarray(self.meta.get("coefficient_max", np.ones(L.N_BLENDSHAPES)), np.float32)

    def save(self, path: Path) -> None:
        """Write as a small npz (float16 basis) with its fitting metadata inside."""
        np.savez_compressed(path, mean_shape=self.mean_shape.astype(np.float32),
                            basis=self.basis.astype(np.float16), meta=json.dumps(self.meta))


@lru_cache(maxsize=1)
def load_basis(path: Path = BASIS_PATH) -> ExpressionBasis:
    """The committed expression basis."""
    with np.load(path) as data:
        return ExpressionBasis(data["mean_shape"].astype(np.float32), data["basis"].astype(np.float32),
                               json.loads(str(data["meta"])))
