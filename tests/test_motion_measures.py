"""Motion measures of `talkinghead eval`: Fréchet distance, window statistics, audio-motion alignment."""

from __future__ import annotations

import numpy as np

from talkinghead.evaluation.motion_measures import (STATISTICS, add_motion_distance, audio_motion_alignment,
                                                    frechet_distance, window_statistics)

FPS = 25


def test_frechet_distance_is_zero_for_the_same_data_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((400, 4))
    assert abs(frechet_distance(a, a)) < 1e-6
    near, far = frechet_distance(a, a + 0.5), frechet_distance(a, a + 2.0)
    assert 0.9 < near < 1.1  # mean shift 0.5 in 4 dims: 4 * 0.25
    assert 15 < far < 17
    assert frechet_distance(a, 3 * a) > 10  # a wider spread is far too


def test_window_statistics_see_a_still_head_as_still():
    t = np.arange(10 * FPS) / FPS
    moving = np.stack([5 * np.sin(2 * np.pi * 0.5 * t)] * 3, 1)
    blend = np.zeros((len(t), 52))
    still, lively = window_statistics(0 * moving, blend, FPS), window_statistics(moving, blend, FPS)
    assert still.shape == lively.shape == (9, len(STATISTICS))  # 2 s windows, 1 s hop
    assert (lively[:, :3] > still[:, :3] + 3).all()  # the yaw, pitch, roll spreads (logs)


def test_window_statistics_skip_windows_without_a_face():
    rotations = np.zeros((5 * FPS, 3))
    rotations[FPS:FPS + 3] = np.nan
    assert len(window_statistics(rotations, np.zeros((5 * FPS, 52)), FPS)) == 2  # windows at 2 s and 3 s


def test_alignment_follows_coupling():
    rng = np.random.default_rng(0)
    loud_s = rng.uniform(-40, -10, 30)  # one level per second
    loudness = np.repeat(loud_s, FPS)
    amplitude = 10 ** (loudness / 20)
    coupled = np.cumsum(np.stack([amplitude * np.sign(np.sin(np.arange(len(amplitude))))] * 3, 1), 0)
    uncoupled = np.cumsum(rng.standard_normal((len(loudness), 3)), 0)
    assert audio_motion_alignment(coupled, loudness, FPS) > 0.9
    assert abs(audio_motion_alignment(uncoupled, loudness, FPS)) < 0.5


def test_distance_is_added_per_system_against_the_real_rows():
    rng = np.random.default_rng(1)
    rows = [{"system": s, "motion_windows": (rng.standard_normal((30, len(STATISTICS))) + shift).tolist()}
            for s, shift in (("real", 0.0), ("a", 0.0), ("b", 1.0))]
    section = {"rows": rows, "summary": {"real": {}, "a": {}, "b": {}}}
    add_motion_distance(section, "real")
    assert section["summary"]["real"]["motion_fd"] < 1e-6
    assert section["summary"]["a"]["motion_fd"] < section["summary"]["b"]["motion_fd"]
