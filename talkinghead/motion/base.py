"""The MotionSource protocol every motion generator implements (rule-based, learned, video-driven)."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..audio.features import AudioFeatures
from .types import Motion


class MotionSource(Protocol):
    """Streams Motion from per-frame audio features.

    `start` is called once per clip; then `push` may be called with features in any chunking and
    returns the frames it has decided (it may hold back `lookahead` frames); `flush` returns the rest.
    The concatenated output must not depend on the chunking, and must be identical for the same
    seed and input.
    """

    lookahead: int  # frames of future features needed before a frame is decided

    def start(self, rest_expression: np.ndarray, fps: float) -> None:
        """Begin a clip for a portrait whose own blendshape scores are `rest_expression` (52,)."""

    def push(self, features: AudioFeatures) -> Motion:
        """Consume features of the next frames; return the frames now decided."""

    def flush(self) -> Motion:
        """The remaining frames at the end of the clip."""
