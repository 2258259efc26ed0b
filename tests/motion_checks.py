"""Assertions shared by several test modules (pytest puts tests/ on sys.path)."""

from __future__ import annotations

import numpy as np

from talkinghead.motion.types import Motion


def assert_motion_equal(a: Motion, b: Motion) -> None:
    """Same length and bit-identical expression, head and gaze."""
    assert len(a) == len(b)
    np.testing.assert_array_equal(a.expression, b.expression)
    np.testing.assert_array_equal(a.head, b.head)
    np.testing.assert_array_equal(a.gaze, b.gaze)
