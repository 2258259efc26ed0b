"""Each curation filter removes what it should on a constructed case: a time-shifted sound track is found
at its shift, a head turned away is filtered, a blurred face is filtered, and so on."""

from __future__ import annotations

import numpy as np
import pytest

from talkinghead.audio.speech_encoder import StreamGrid
from talkinghead.data.analysis import analyse_frames, face_sharpness, head_angles, shot_bounds
from talkinghead.data.filters import CurationConfig, av_offset, cascade, curate
from talkinghead.data.prepare import PrepareConfig, speech_states
from talkinghead.face.expression import load_basis
from talkinghead.face.pose import euler_to_rotation
from talkinghead.io import load_audio, read_video_frames

SECONDS = 6.0  # of the real clip the sync tests track
SHIFT_S = 0.12  # three frames at 25 fps
FPS = 25.0


@pytest.fixture(scope="module")
def talking(real_file):
    """(frames, analysis, audio) of the first SECONDS of a real talking clip."""
    path = real_file("pcavs_vox_620900105.mp4")
    frames = [f for _, f in zip(range(int(SECONDS * FPS)), read_video_frames(path))]
    return frames, analyse_frames(frames), load_audio(path)[:int(SECONDS * 16000)]


def _sync_arrays(analysis, audio: np.ndarray) -> dict:
    """The arrays av_offset reads, with the states of `audio`."""
    from talkinghead.face import measure

    times = np.arange(len(analysis.found)) / FPS + 0.5 / FPS
    return {"found": analysis.found, "aperture": measure.mouth_aperture(analysis.landmarks), "times": times,
            "speech_states": speech_states(audio, PrepareConfig())}


def test_offset_search_finds_a_shifted_sound_track(talking):
    _, analysis, audio = talking
    base = av_offset(_sync_arrays(analysis, audio), FPS, PrepareConfig().speech_layer)
    late = np.concatenate([np.zeros(int(SHIFT_S * 16000), np.float32), audio])  # the sound 120 ms late
    shifted = av_offset(_sync_arrays(analysis, late), FPS, PrepareConfig().speech_layer)
    assert base["av_r"] > 0.4 and abs(base["av_offset_s"]) <= 0.04
    assert shifted["av_offset_s"] - base["av_offset_s"] == pytest.approx(SHIFT_S, abs=0.021)
    assert shifted["av_r"] > base["av_r_at_zero"] - 0.05  # shifting back recovers the agreement
    assert shifted["av_r_at_zero"] < base["av_r"] - 0.1  # unshifted, the late track agrees less


def test_unrelated_sound_is_dropped_for_lip_sync(talking, real_file):
    _, analysis, _ = talking
    other = load_audio(real_file("retalking_face2.mp4"))[:int(SECONDS * 16000)]
    stats = av_offset(_sync_arrays(analysis, other), FPS, PrepareConfig().speech_layer)
    clip = {"seconds": SECONDS, "stats": {**_passing_stats(), **stats}}
    curate([clip], CurationConfig())
    assert stats["av_r"] < CurationConfig().min_av_r
    assert clip["kept"] and not clip["speech_kept"] and clip["removed_by"] in ("av agreement", "av offset", "av confidence")


def test_blurred_face_is_sharper_before(talking):
    frames, analysis, _ = talking
    import cv2

    box = tuple(analysis.box[0])
    sharp = face_sharpness(frames[0], box)
    blurred = face_sharpness(cv2.GaussianBlur(frames[0], (0, 0), 3.0), box)
    assert sharp >= CurationConfig().min_sharpness > blurred


def _passing_stats() -> dict:
    """Statistics of a clip every filter keeps."""
    return {"face_share": 1.0, "longest_gap_s": 0.0, "fit_residual": 0.03, "multi_face_share": 0.0, "face_px": 200.0,
            "sharpness": 100.0, "turn_mean_deg": 5.0, "voiced_share": 0.8, "abs_av_offset_s": 0.0, "av_r": 0.6,
            "av_confidence": 0.4}


def test_head_turned_away_is_filtered():
    canonical = load_basis().mean_shape.astype(np.float64)
    turns = {}
    for yaw in (10.0, 45.0):
        rot = euler_to_rotation(yaw, 0.0, 0.0)
        landmarks = (120.0 * canonical @ rot.T + [200.0, 200.0, 0.0])[None].repeat(3, 0)  # (3, 478, 3) pixels
        angles, turn, residual = head_angles(landmarks, np.ones(3, bool), canonical)
        np.testing.assert_allclose(angles[:, 0], yaw, atol=1e-3)
        assert residual.max() < 1e-6
        turns[yaw] = float(turn.mean())
    assert turns[10.0] == pytest.approx(10.0, abs=1e-3) and turns[45.0] == pytest.approx(45.0, abs=1e-3)
    clips = [{"seconds": 2.0, "stats": {**_passing_stats(), "turn_mean_deg": t}} for t in turns.values()]
    curate(clips, CurationConfig())
    assert [c["removed_by"] for c in clips] == ["", "head rotation"] and [c["kept"] for c in clips] == [True, False]


@pytest.mark.parametrize("stat,value,name", [
    ("face_share", 0.5, "tracked"), ("longest_gap_s", 1.0, "gaps"), ("fit_residual", 0.2, "track fit"),
    ("multi_face_share", 0.5, "one face"), ("face_px", 60.0, "face size"), ("sharpness", 5.0, "blur"),
    ("voiced_share", 0.0, "speech"), ("abs_av_offset_s", 0.3, "av offset"), ("av_r", 0.1, "av agreement"),
    ("av_confidence", 0.05, "av confidence")])
def test_each_filter_removes_its_case(stat, value, name):
    clips = [{"seconds": 60.0, "stats": _passing_stats()}, {"seconds": 30.0, "stats": {**_passing_stats(), stat: value}}]
    curate(clips, CurationConfig())
    assert clips[0]["removed_by"] == "" and clips[1]["removed_by"] == name
    assert clips[1]["kept"] == (name in ("speech", "av offset", "av agreement", "av confidence")) and not clips[1]["speech_kept"]
    rows = {r["filter"]: r for r in cascade(clips, CurationConfig())}
    assert rows[name]["removed"] == 1 and rows[name]["clips"] == 1 and rows[name]["minutes"] == 1.0


def test_shot_bounds():
    cut = np.zeros(100, np.float32)
    cut[[40, 90]] = 0.8
    assert shot_bounds(cut, 0.5, 25) == [(0, 40), (40, 90)]  # the last 10 frames are too short
    assert StreamGrid() == PrepareConfig().grid
