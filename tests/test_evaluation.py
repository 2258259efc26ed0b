"""The evaluation suite: each metric on real tracked clips, deliberately wrong inputs move it the right
way, the reference rows span the range, and `talkinghead eval` writes its report files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from talkinghead.face import landmarks as L
from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation import identity, metrics
from talkinghead.evaluation.protocols import Scorer, self_reenactment, summarize
from talkinghead.evaluation.variants import FROZEN, REAL, Variant, parse_variant
from talkinghead.evaluation.voice import voiced_frames
from talkinghead.face.pose import euler_to_rotation
from talkinghead.io import load_audio, read_video_frames
from talkinghead.face.measure import mouth_aperture
from talkinghead.face.tracking import track_video

CLIP = "pcavs_vox_00373.mp4"  # 224x224, 5 s, English: the smallest real talking clip
OTHER_CLIP = "pcavs_vox_620900105.mp4"  # a different person
CACHE = Path(__file__).resolve().parents[1] / "build" / "tracks"


@pytest.fixture(scope="module")
def track(real_file):
    return track_video(real_file(CLIP), cache_dir=CACHE)


@pytest.fixture(scope="module")
def apertures(track):
    return mouth_aperture(track.landmarks)


# ------------------------------------------------------------------------------------------------
# lip sync
# ------------------------------------------------------------------------------------------------


def test_pearson_edge_cases():
    x = np.sin(np.arange(50) / 3)
    assert metrics.pearson(x, x) == pytest.approx(1.0)
    assert metrics.pearson(x, -x) == pytest.approx(-1.0)
    assert metrics.pearson(x, np.ones(50)) == 0.0  # a frozen series has no co-variation
    with_gap = x.copy()
    with_gap[10] = np.nan
    assert metrics.pearson(with_gap, x) == pytest.approx(1.0)


def test_real_against_itself_is_perfect(track, apertures):
    sync = metrics.lagged_correlation(apertures, apertures)
    assert sync.correlation == pytest.approx(1.0) and sync.best_lag == 0
    assert metrics.lip_distance(track.landmarks, track.landmarks, track.landmarks[0]) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("shift", [3, -5])
def test_time_shifted_mouth_is_found_at_its_lag(apertures, shift):
    """A deliberately wrong input: the same mouth, `shift` frames late (or early)."""
    shifted = np.roll(apertures, shift)
    sync = metrics.lagged_correlation(shifted, apertures)
    assert sync.best_lag == shift
    assert sync.correlation < sync.best_correlation - 0.2


def test_image_mode_tracking_agrees_with_video_mode_and_trails_less(real_file, track, apertures):
    """Two paths: every frame on its own (the mouth model's training targets) against MediaPipe's video
    mode (the evaluation's tracker). Same mouth, but the video mode's temporal filter makes it later."""
    from talkinghead.face.tracking import track_frames

    frames = list(read_video_frames(real_file(CLIP)))
    image = track_frames(frames, track.fps, video=False)
    assert image.found.all()
    image_gap = mouth_aperture(image.landmarks)
    assert metrics.pearson(image_gap, apertures) > 0.9
    late = metrics.pearson(apertures[1:], image_gap[:-1])  # video mode one frame after image mode
    early = metrics.pearson(apertures[:-1], image_gap[1:])
    assert late > early + 0.05  # on this clip 0.92 against 0.81: video mode trails by ~0.4 frames


def test_time_shift_raises_lip_distance(track):
    lms = track.landmarks
    assert metrics.lip_distance(np.roll(lms, 4, axis=0), lms, lms[0]) > 0.02


def test_lip_distance_ignores_head_pose(track):
    """A rotated, scaled and moved copy of the real track has (almost) zero LMD: pose is removed."""
    lms = track.landmarks.astype(np.float64)
    rot = euler_to_rotation(8.0, -5.0, 4.0)
    centre = lms[0].mean(0)
    moved = (lms - centre) @ rot.T * 1.3 + centre + np.array([20.0, -10.0, 0.0])
    assert metrics.lip_distance(moved, lms, lms[0]) < 0.002


# ------------------------------------------------------------------------------------------------
# silence, freezes
# ------------------------------------------------------------------------------------------------


def test_scored_silence_skips_short_pauses_and_margins():
    voiced = np.array([1] * 10 + [0] * 5 + [1] * 10 + [0] * 20 + [1] * 5, bool)
    scored = metrics.scored_silence(voiced, fps=25)
    assert not scored[10:15].any()  # 0.2 s pause: too short to score
    assert scored[25 + 3:45 - 3].all() and not scored[25:27].any() and not scored[43:45].any()


def test_silence_rest_share_tells_a_moving_mouth_from_a_closed_one():
    voiced = np.array([1] * 20 + [0] * 30 + [1] * 20, bool)
    still = np.where(voiced, 0.2, 0.01)
    chewing = np.where(voiced, 0.2, 0.1 + 0.05 * np.sin(np.arange(70)))
    assert metrics.silence_rest_share(still, voiced, rest_aperture=0.0, fps=25) == 1.0
    assert metrics.silence_rest_share(chewing, voiced, rest_aperture=0.0, fps=25) < 0.2
    # a portrait with parted lips may rest at its own gap
    parted = np.where(voiced, 0.2, 0.12)
    assert metrics.silence_rest_share(parted, voiced, rest_aperture=0.12, fps=25) == 1.0
    assert metrics.silence_rest_share(parted, voiced, rest_aperture=0.0, fps=25) == 0.0


def test_longest_freeze_in_speech():
    voiced = np.ones(100, bool)
    talking = 0.1 + 0.08 * np.sin(np.arange(100) * 2 * np.pi / 6)  # a syllable every 6 frames
    held = talking.copy()
    held[40:70] = 0.15
    assert metrics.longest_freeze_seconds(talking, voiced, 25) <= 2 / 25
    assert metrics.longest_freeze_seconds(held, voiced, 25) >= 30 / 25


# ------------------------------------------------------------------------------------------------
# eyes, head, pixels, identity
# ------------------------------------------------------------------------------------------------


def close_eyes(landmarks: np.ndarray, frames) -> np.ndarray:
    out = landmarks.copy()
    for t in frames:
        for upper, lower in ((L.EYE_RIGHT_UPPER_LID, L.EYE_RIGHT_LOWER_LID), (L.EYE_LEFT_UPPER_LID, L.EYE_LEFT_LOWER_LID)):
            out[t, list(upper)] = out[t, list(lower)]  # lids paired outer to inner corner
    return out


def test_blinks_are_counted(track):
    base = len(metrics.blink_frames(track.landmarks, track.fps))
    free = [t for t in range(10, len(track.landmarks) - 10, 30)][:3]
    closed = close_eyes(track.landmarks, [f for t in free for f in (t, t + 1, t + 2)])
    assert len(metrics.blink_frames(closed, track.fps)) >= base + 2
    assert metrics.blinks_per_minute(closed, track.fps) > metrics.blinks_per_minute(track.landmarks, track.fps)


def test_head_rotation_recovered(track):
    ref = track.landmarks[0].astype(np.float64)
    centre = ref.mean(0)
    yaws = np.linspace(-10, 10, 21)
    series = np.array([(ref - centre) @ euler_to_rotation(y, 0, 0).T + centre for y in yaws])
    rotations = metrics.head_rotations(series, ref)
    assert np.allclose(rotations[:, 0], yaws, atol=0.1)
    assert metrics.rotation_spread(rotations) == pytest.approx(np.sqrt(yaws.var() / 3), rel=0.02)


def test_head_angles_read_a_turn_back_in_the_axes_it_was_made_in_whatever_way_the_head_faces():
    from talkinghead.face.expression import load_basis
    from talkinghead.face.pose import head_rotation, upright_frame

    canonical = load_basis().mean_shape.astype(np.float64)
    frame = upright_frame(canonical)
    portrait_pose = head_rotation(28.0, -9.0, 6.0, frame)  # a portrait looking over its shoulder

    def image_of(rotation):  # canonical -> pixels, as the renderer places a head (x right, y down)
        return 200.0 * canonical @ rotation.T + np.array([256.0, 256.0, 0.0])

    reference = image_of(portrait_pose)
    asked = np.array([[0, 0, 15], [0, 0, -15], [20, 0, 0], [0, -12, 0], [-10, 8, 5]], np.float64)
    series = np.stack([image_of(portrait_pose @ head_rotation(*a, frame)) for a in asked])
    assert np.allclose(metrics.head_angles(series, reference, canonical), asked, atol=0.01)
    # about the camera's axes the same rolls also read as nods: the convention the sweep used to mix
    camera = metrics.head_rotations(series, reference)
    assert abs(camera[0, 1]) > 3 and abs(camera[1, 1]) > 3
    nan = np.full_like(reference, np.nan)
    assert np.isnan(metrics.head_angles(nan[None], reference, canonical)).all()


def test_background_change_only_counts_outside_the_head(real_file, track):
    frame = next(iter(read_video_frames(real_file(CLIP))))
    head = metrics.head_region(frame.shape, track.landmarks[0])
    assert 0.1 < head.mean() < 0.9
    inside = frame.copy()
    inside[head] = 255 - inside[head]
    outside = frame.copy()
    outside[~head] = 255 - outside[~head]
    assert metrics.background_change(inside, frame, head) == 0.0
    assert metrics.background_change(outside, frame, head) > 50


def test_sharpness_drops_with_blur(real_file, track):
    import cv2

    frame = next(iter(read_video_frames(real_file(CLIP))))
    blurred = cv2.GaussianBlur(frame, (0, 0), 2.0)
    assert metrics.face_sharpness(blurred, track.landmarks[0]) < 0.5 * metrics.face_sharpness(frame, track.landmarks[0])


@pytest.mark.skipif(not identity.available(), reason="identity metric needs the 'eval' extra (dlib-bin, face-recognition-models)")
def test_identity_distance_separates_people(real_file, track):
    """Frames of the same person are closer to her first frame than another person's frame is."""
    encoder = identity.IdentityEncoder()
    frames = list(read_video_frames(real_file(CLIP)))
    own = encoder.descriptor(frames[0], track.landmarks[0])
    later = encoder.descriptor(frames[60], track.landmarks[60])
    other_track = track_video(real_file(OTHER_CLIP), cache_dir=CACHE)
    other_frame = next(iter(read_video_frames(real_file(OTHER_CLIP))))
    other = encoder.descriptor(other_frame, other_track.landmarks[0])
    assert identity.distance(own, later) < identity.SAME_PERSON_DISTANCE
    assert identity.distance(own, other) > identity.distance(own, later) + 0.2


# ------------------------------------------------------------------------------------------------
# voice activity
# ------------------------------------------------------------------------------------------------


def test_voice_activity_finds_speech_and_digital_silence(demo_audio_path):
    pytest.importorskip("webrtcvad")
    audio = load_audio(demo_audio_path, 16000)
    padded = np.concatenate([np.zeros(16000, np.float32), audio, np.zeros(16000, np.float32)])
    voiced = voiced_frames(padded, 25)
    assert len(voiced) == int(np.ceil(len(padded) / 16000 * 25))
    assert not voiced[:20].any() and not voiced[-20:].any()
    assert voiced[25:-25].mean() > 0.5


# ------------------------------------------------------------------------------------------------
# protocol and CLI
# ------------------------------------------------------------------------------------------------


def test_parse_variant():
    v = parse_variant("calm:motion.mouth_amplitude=0.5,fps=30,motion.gaze_saccades=false")
    assert v.name == "calm" and v.config.motion.mouth_amplitude == 0.5 and v.config.fps == 30
    assert v.config.motion.gaze_saccades is False
    assert parse_variant("plain").config == Variant("plain").config
    for bad in ("calm:motion.nope=1", "calm:fps=fast", "real", "a b:fps=2", "x:motion=3", "x:fps"):
        with pytest.raises(TalkingHeadError):
            parse_variant(bad)


@pytest.fixture(scope="module")
def short_self_reenactment(real_file):
    variant = Variant("small", parse_variant("small:render.size=256").config)
    return self_reenactment(real_file(CLIP), [variant], Scorer(use_identity=identity.available()), None, CACHE,
                            max_seconds=3.0)


def test_reference_rows_span_the_range(short_self_reenactment):
    rows = {r["system"]: r for r in short_self_reenactment.rows}
    assert set(rows) == {REAL, FROZEN, "small"}
    real, frozen, generated = rows[REAL], rows[FROZEN], rows["small"]
    assert real["lipsync_r"] == pytest.approx(1.0) and real["lmd"] == pytest.approx(0.0, abs=1e-9)
    assert abs(frozen["lipsync_r"]) < 0.05 and frozen["lmd"] > 0.01
    assert frozen["blinks_per_minute"] == 0 and frozen["head_rotation_spread_deg"] < 1e-6
    assert real["head_rotation_spread_deg"] > 1.0 and real["jitter_ratio"] == pytest.approx(1.0)
    assert generated["frames"] == real["frames"] == 75
    assert generated["face_found"] > 0.95
    assert generated["realtime_factor"] > 0
    assert -1 <= generated["lipsync_r"] <= 1 and abs(generated["lipsync_best_lag"]) <= metrics.MAX_LAG_FRAMES
    if identity.available():
        assert frozen["identity_distance"] == pytest.approx(0.0, abs=1e-6)
        assert generated["identity_distance"] < identity.SAME_PERSON_DISTANCE
    summary = summarize(short_self_reenactment.rows)
    assert summary[REAL]["runs"] == 1 and summary["small"]["lipsync_r"] == pytest.approx(generated["lipsync_r"])


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "talkinghead", *args], capture_output=True, text=True, timeout=600)


def test_eval_command_writes_the_report(real_file, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / CLIP).symlink_to(real_file(CLIP))
    (data / "face.png").symlink_to(real_file("dreamtalk_zt12.png"))
    (data / "speech.wav").symlink_to(real_file("dreamtalk_spanish1.wav"))
    out = tmp_path / "report"
    done = run_cli("eval", "--data", str(data), "--out", str(out), "--max-seconds", "2", "--no-identity",
                   "--no-videos", "--quiet", "--variant", "small:render.size=256")
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["version"] == 1 and report["variants"]["small"]["render"]["size"] == 256
    self_rows = report["self_reenactment"]["rows"]
    assert [r["system"] for r in self_rows] == [REAL, FROZEN, "small"]
    assert {"lipsync_r", "lipsync_best_lag", "lmd", "silence_rest_share", "blinks_per_minute",
            "jitter_ratio", "head_spread_ratio", "background_change", "sharpness_ratio"} <= set(self_rows[0])
    cross_rows = report["cross_identity"]["rows"]
    assert [r["system"] for r in cross_rows] == [FROZEN, "small"] and cross_rows[1]["valid"]
    assert "| real |" in (out / "report.md").read_text()
    for name in (CLIP[:-4], "face+speech"):
        assert (out / "plots" / f"{name}.png").stat().st_size > 5000
        assert (out / "sheets" / f"{name}.png").stat().st_size > 5000


@pytest.mark.parametrize("args, message", [
    (("--data", "/nonexistent/folder"), "does not exist"),
    (("--data", "{empty}"), "nothing to evaluate"),
    (("--data", "{empty}", "--variant", "x:motion.bogus=1"), "unknown option 'motion.bogus'"),
    (("--data", "{empty}", "--protocol", "self"), "no talking clips"),
])
def test_eval_bad_input_is_one_clear_line(tmp_path, args, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    args = tuple(a.replace("{empty}", str(empty)) for a in args)
    done = run_cli("eval", *args, "--out", str(tmp_path / "out"), "--quiet")
    assert done.returncode == 1
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_summary_pools_silent_frames_so_a_clip_with_few_counts_as_few():
    rows = [{"system": "x", "silence_rest_share": 1.0, "silence_frames": 6},
            {"system": "x", "silence_rest_share": 0.5, "silence_frames": 82},
            {"system": "x", "silence_rest_share": None, "silence_frames": 0}]  # a clip with no pause
    summary = summarize(rows)["x"]
    assert summary["silence_rest_share"] == pytest.approx(0.75)  # the mean over clips
    assert summary["silence_frames"] == 88
    assert summary["silence_rest_pooled"] == pytest.approx((6 + 41) / 88)
    assert "silence_rest_pooled" not in summarize([{"system": "y", "silence_rest_share": None, "silence_frames": 0}])["y"]
