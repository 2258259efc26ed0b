"""Driving video: retargeting, self-driving reenactment, mixing gates and the video-only use case.

Measured on rendered output re-detected by the face landmarker: a real clip driving a portrait made
from its own first frame reproduces its mouth-aperture curve (correlation >= 0.9) and its blink count
(within one); with mouth from audio and eyes from video the mouth follows the speech as well as
audio alone does and the blinks are the driver's, and swapping the gates swaps the behaviour.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import talkinghead
from talkinghead.face import landmarks as L
from talkinghead.face import measure
from talkinghead.audio.features import extract_features
from talkinghead.config import GenerateConfig, MixConfig, RenderConfig
from talkinghead.errors import TalkingHeadError
from talkinghead.face.landmarker import FaceLandmarker
from talkinghead.io import VideoWriter, load_audio, read_video_frames
from talkinghead.motion.audio_rules import RuleBasedAudioMotion
from talkinghead.motion.mixer import MixedMotion, constant_gates
from talkinghead.motion.types import Motion
from talkinghead.motion.video_driven import DrivingMotion, VideoDrivenMotion, retarget
from talkinghead.pipeline import Pipeline
from talkinghead.face.tracking import track_video

FPS = 25
SR = 16000
SELF_DRIVING_CLIP = "pcavs_vox_00373.mp4"  # 224 px, 5 s: fast
GATE_DRIVER = "retalking_face4.mp4"
GATE_SPEECH = "dreamtalk_spanish1.wav"
GATE_SECONDS = 3.2  # 4 of the driver's blinks, 1 of the audio source's
REAL_CLIPS = ("latentsync_demo1.mp4", "latentsync_demo2.mp4", "pcavs_vox_00373.mp4", "pcavs_vox_00473.mp4",
              "pcavs_vox_620900105.mp4", "retalking_face1.mp4", "retalking_face2.mp4", "retalking_face4.mp4",
              "retalking_face5.mp4")


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------


def retrack(frames, fps: float = FPS, box=None) -> tuple[np.ndarray, np.ndarray]:
    """(T,) mouth aperture and (T,) eyeBlink score of rendered frames (NaN where no face); with `box`
    (x0, y0, x1, y1), only a square of three face sizes around it is searched (small faces in big frames)."""
    crop = (slice(None), slice(None))
    if box is not None:
        x0, y0, x1, y1 = box
        cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, 1.5 * max(x1 - x0, y1 - y0)
        crop = (slice(int(max(cy - half, 0)), int(cy + half)), slice(int(max(cx - half, 0)), int(cx + half)))
    apertures, blinks = [], []
    with FaceLandmarker(video=True) as landmarker:
        for i, frame in enumerate(frames):
            faces = landmarker.detect(np.ascontiguousarray(frame[crop]), timestamp_ms=int(round(i * 1000 / fps)))
            apertures.append(measure.mouth_aperture(faces[0].landmarks) if faces else np.nan)
            blinks.append(measure.blink_score(faces[0].blendshapes[None])[0] if faces else np.nan)
    return np.array(apertures), np.array(blinks)


def at_times(values: np.ndarray, src_fps: float, frames: int, fps: float = FPS) -> np.ndarray:
    """A driver's per-frame series at the output's frame times."""
    pos = np.clip(np.arange(frames) / fps * src_fps, 0, len(values) - 1)
    return np.interp(pos, np.arange(len(values)), values)


def corr(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


@pytest.fixture(scope="session")
def track_of(real_file, tmp_path_factory):
    cache = tmp_path_factory.mktemp("tracks")

    def get(name: str):
        return track_video(real_file(name), cache_dir=cache)

    return get


MIN_FACE_PX = 160  # as scripts/eval_driving.py: small faces are rendered larger


def self_driving(clip: Path, track, out: Path, size: int | None = None) -> dict:
    """Drive a portrait made from the clip's first frame with the clip itself; measure the output.
    size None: 512, or larger (up to the clip's own) so the face is MIN_FACE_PX wide."""
    from talkinghead.pipeline import prepare_portrait

    first = next(iter(read_video_frames(clip)))
    if size is None:
        width = prepare_portrait(first, 512).face.width
        size = 512 if width >= MIN_FACE_PX else min(max(first.shape[:2]), int(np.ceil(512 * MIN_FACE_PX / width / 64) * 64))
    box = prepare_portrait(first, size).face.box
    result = talkinghead.generate(first, None, out, GenerateConfig(render=RenderConfig(size=size)), driving=clip)
    aperture, blinks = retrack(list(read_video_frames(out)), box=box)
    driver_aperture = at_times(measure.mouth_aperture(track.landmarks), track.fps, len(aperture))
    driver_blinks = at_times(measure.blink_score(track.blendshapes), track.fps, len(aperture))
    return {"result": result, "aperture_corr": corr(aperture, driver_aperture),
            "blinks": (measure.count_blinks(driver_blinks), measure.count_blinks(blinks)), "found": float(np.isfinite(aperture).mean())}


# ------------------------------------------------------------------------------------------------
# retargeting
# ------------------------------------------------------------------------------------------------


def test_motion_is_relative_to_the_reference_frame(track_of):
    track = track_of(SELF_DRIVING_CLIP)
    for reference in ("first", "neutral"):
        d = retarget(track, reference)
        ref = d.reference
        assert reference == "neutral" or ref == 0
        np.testing.assert_allclose(d.expression[ref], 0.0, atol=1e-6)
        assert abs(d.lip_gap[ref]) < 1e-6
        assert np.abs(d.head[ref, :5]).max() < 2.0 and abs(d.head[ref, 5] - 1) < 0.02  # smoothed, so nearly 0
        assert np.ptp(d.head[:, 0]) > 2.0  # the driver does move its head
    neutral = retarget(track, "neutral")
    assert np.abs(neutral.lip_gap).max() > 0.05


def test_driver_shorter_than_the_audio_holds_its_last_frame():
    rng = np.random.default_rng(0)
    head = np.zeros((10, 6), np.float32)
    head[:, 0] = np.arange(10)
    head[:, 5] = 1
    d = DrivingMotion(10.0, rng.uniform(0, 0.2, (10, 52)).astype(np.float32), head,
                      np.zeros((10, 2), np.float32), np.zeros(10, np.float32), 0)
    src = VideoDrivenMotion(d)
    src.start(np.full(52, 0.1, np.float32), FPS)
    out = src.push(extract_features(np.zeros(2 * SR, np.float32), FPS))  # 2 s from a 1 s driver
    assert len(out) == 50
    np.testing.assert_allclose(out.head[::5, 0][:5], [0, 2, 4, 6, 8], atol=1e-5)  # 10 fps resampled to 25
    np.testing.assert_array_equal(out.head[30:, 0], 9.0)


# ------------------------------------------------------------------------------------------------
# mixing
# ------------------------------------------------------------------------------------------------


def synthetic_driving(frames: int = 100) -> DrivingMotion:
    t = np.arange(frames) / FPS
    expression = np.zeros((frames, 52), np.float32)
    expression[:, L.BLENDSHAPE_INDEX["eyeBlinkLeft"]] = expression[:, L.BLENDSHAPE_INDEX["eyeBlinkRight"]] = (
        np.sin(2 * np.pi * 0.5 * t) > 0.9)
    expression[:, L.BLENDSHAPE_INDEX["browInnerUp"]] = 0.3
    head = np.zeros((frames, 6), np.float32)
    head[:, 0] = 5 * np.sin(t)
    head[:, 5] = 1
    return DrivingMotion(float(FPS), expression, head, np.full((frames, 2), 0.05, np.float32),
                         (0.1 * (np.sin(2 * np.pi * 2 * t) > 0)).astype(np.float32), 0)


def speech_features(seconds: float = 3.0):
    t = np.arange(int(seconds * SR)) / SR
    return extract_features((0.3 * np.sin(2 * np.pi * 150 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32), FPS)


def mixed(gates: dict, pieces=None) -> Motion:
    src = MixedMotion(RuleBasedAudioMotion(), VideoDrivenMotion(synthetic_driving()), constant_gates(gates))
    src.start(np.full(52, 0.05, np.float32), FPS)
    f = speech_features()
    out, start = [], 0
    for n in pieces or [len(f)]:
        out.append(src.push(f.rows(start, start + n)))
        start += n
    out.append(src.flush())
    return Motion.concat(out)


ALL_VIDEO = {"mouth": 1.0, "eyes": 1.0, "gaze": 1.0, "brows": 1.0, "head": 1.0}


def test_gates_choose_the_source_per_region():
    audio = mixed({r: 0.0 for r in ALL_VIDEO})
    video = mixed(ALL_VIDEO)
    default = mixed({**ALL_VIDEO, "mouth": 0.0})
    jaw, blink, brow = (L.BLENDSHAPE_INDEX[n] for n in ("jawOpen", "eyeBlinkLeft", "browInnerUp"))
    np.testing.assert_allclose(default.expression[:, jaw], audio.expression[:, jaw], atol=1e-6)
    np.testing.assert_allclose(default.expression[:, blink], video.expression[:, blink], atol=1e-6)
    np.testing.assert_allclose(default.expression[:, brow], video.expression[:, brow], atol=1e-6)
    np.testing.assert_allclose(default.head, video.head, atol=1e-6)
    half = mixed({**ALL_VIDEO, "head": 0.5})
    np.testing.assert_allclose(half.head[:, 0], (audio.head[:, 0] + video.head[:, 0]) / 2, atol=1e-4)


def test_mixing_does_not_depend_on_chunking():
    whole = mixed({**ALL_VIDEO, "mouth": 0.0, "head": 0.3})
    chunked = mixed({**ALL_VIDEO, "mouth": 0.0, "head": 0.3}, [1, 9, 33, 2, 75 - 45])
    for k in ("expression", "head", "gaze"):
        np.testing.assert_array_equal(getattr(whole, k), getattr(chunked, k))


# ------------------------------------------------------------------------------------------------
# on real clips, measured on the rendered output
# ------------------------------------------------------------------------------------------------


def test_self_driving_reproduces_the_mouth_and_the_blinks(real_file, track_of, tmp_path):
    clip = real_file(SELF_DRIVING_CLIP)
    m = self_driving(clip, track_of(SELF_DRIVING_CLIP), tmp_path / "self.mp4", 256)
    assert m["found"] > 0.98
    assert m["aperture_corr"] >= 0.9, m
    driver, output = m["blinks"]
    assert driver >= 1 and abs(driver - output) <= 1, m
    assert m["result"].audio_seconds == pytest.approx(len(load_audio(clip)) / SR)  # the driver's own sound


@pytest.mark.slow
@pytest.mark.parametrize("name", REAL_CLIPS)
def test_self_driving_on_every_real_clip(name, real_file, track_of, tmp_path):
    """Figures in the README (scripts/eval_driving.py renders the small-faced clips larger)."""
    clip = real_file(name)
    m = self_driving(clip, track_of(name), tmp_path / "self.mp4")
    assert m["aperture_corr"] >= 0.9, m


@pytest.fixture(scope="module")
def gate_runs(real_pipeline, real_file, track_of):
    """The same portrait and speech, audio-only and with a driver under default and swapped gates."""
    speech = load_audio(real_file(GATE_SPEECH))[: int(GATE_SECONDS * SR)]
    track = track_of(GATE_DRIVER)
    driving = retarget(track)
    # the loudness-driven mouth: its aperture follows the loudness closely, so "the mouth follows the
    # audio" is measurable here without a ground-truth video (the speech model is scored by eval)
    base = replace(real_pipeline.config, motion=replace(real_pipeline.config.motion, mouth="loudness"))
    runs = {}
    for name, mix in (("audio only", None), ("mouth audio, eyes video", MixConfig(mouth_gate=0.0)),
                      ("mouth video, eyes audio", MixConfig(mouth_gate=1.0, eyes_gate=0.0))):
        config = base if mix is None else replace(base, mix=mix)
        pipeline = Pipeline(real_pipeline.portrait, config, driving=None if mix is None else driving)
        runs[name] = retrack(list(pipeline.stream(pipeline.chunks(speech))))
    n = len(runs["audio only"][0])
    loudness = np.maximum(extract_features(speech, FPS).loudness_db, -60.0)[:n]
    audio_blinks = RuleBasedAudioMotion(base.motion)
    audio_blinks.start(real_pipeline.portrait.face.blendshapes, FPS)
    schedule = np.array([audio_blinks._blinks.closure(i / FPS) for i in range(n)])
    return {"runs": runs, "loudness": loudness, "driver_aperture": at_times(measure.mouth_aperture(track.landmarks), track.fps, n),
            "driver_blinks": at_times(measure.blink_score(track.blendshapes), track.fps, n), "audio_blinks": schedule}


def test_mouth_from_audio_keeps_the_lip_sync(gate_runs):
    """Measured (aperture vs loudness): 0.98 audio alone, 0.97 mouth from audio with a driver, 0.11 swapped."""
    runs, loud = gate_runs["runs"], gate_runs["loudness"]
    alone = corr(runs["audio only"][0], loud)
    mixed_ = corr(runs["mouth audio, eyes video"][0], loud)
    swapped = corr(runs["mouth video, eyes audio"][0], loud)
    assert alone > 0.5 and mixed_ >= alone - 0.05, (alone, mixed_)
    assert swapped < mixed_ - 0.2, (swapped, mixed_)


def test_mouth_from_video_follows_the_driver(gate_runs):
    """Measured: 0.81 with the mouth from video, 0.15 with it from audio (another person's face and speech)."""
    runs, driver = gate_runs["runs"], gate_runs["driver_aperture"]
    from_video, from_audio = corr(runs["mouth video, eyes audio"][0], driver), corr(runs["mouth audio, eyes video"][0], driver)
    assert from_video > 0.65 and from_video > from_audio + 0.4, (from_video, from_audio)


def test_eyes_follow_the_gate(gate_runs):
    """Measured: 4 blinks with eyes from video (driver 4), 0 with eyes from audio (audio source's schedule 1)."""
    runs, driver, audio = gate_runs["runs"], gate_runs["driver_blinks"], gate_runs["audio_blinks"]
    video_eyes, audio_eyes = runs["mouth audio, eyes video"][1], runs["mouth video, eyes audio"][1]
    assert measure.count_blinks(driver) != measure.count_blinks(audio)  # the two blink tracks are told apart
    assert abs(measure.count_blinks(video_eyes) - measure.count_blinks(driver)) <= 1
    assert abs(measure.count_blinks(audio_eyes) - measure.count_blinks(audio)) <= 1
    assert corr(video_eyes, driver) > corr(audio_eyes, driver) + 0.15
    assert corr(audio_eyes, audio) > corr(video_eyes, audio) + 0.15


# ------------------------------------------------------------------------------------------------
# bad driving videos
# ------------------------------------------------------------------------------------------------


def test_driver_without_sound_needs_audio(real_file, demo_image_path, tmp_path):
    frames = [f for _, f in zip(range(10), read_video_frames(real_file(SELF_DRIVING_CLIP)))]
    silent = tmp_path / "silent.mp4"
    with VideoWriter(silent, FPS, 224, 224) as writer:
        for f in frames:
            writer.write(f)
    with pytest.raises(TalkingHeadError, match="has no audio track: give the speech with --audio"):
        talkinghead.generate(demo_image_path, None, tmp_path / "o.mp4", driving=silent)
    assert not (tmp_path / "o.mp4").exists()


def test_driver_without_a_face_is_rejected(demo_image_path, demo_audio, tmp_path):
    blank = tmp_path / "blank.mp4"
    with VideoWriter(blank, FPS, 128, 128) as writer:
        for _ in range(10):
            writer.write(np.full((128, 128, 3), 90, np.uint8))
    with pytest.raises(TalkingHeadError, match=r"a face is visible in only 0% of the frames"):
        talkinghead.generate(demo_image_path, demo_audio[:SR], tmp_path / "o.mp4", driving=blank)


def test_driving_and_motion_file_exclude_each_other(demo_image_path, demo_audio, tmp_path):
    with pytest.raises(TalkingHeadError, match="either a driving video or a motion file"):
        talkinghead.generate(demo_image_path, demo_audio[:SR], tmp_path / "o.mp4", driving=tmp_path / "a.mp4",
                             motion_in=tmp_path / "m.csv")

