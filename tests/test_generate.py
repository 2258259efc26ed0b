"""End-to-end invariants of generate / Pipeline on the bundled demo and on real portraits and speech.

Measured on the output itself: streams and timing of the MP4, a face found in every frame, the mouth
(re-detected by the FaceLandmarker) opening with the audio's loudness and resting in silence, the
background left untouched, determinism per seed, and independence from chunking and input type.
"""

from __future__ import annotations


import numpy as np
import pytest

import talkinghead
from talkinghead.face import landmarks as L
from talkinghead.audio.features import SAMPLE_RATE, FeatureStream, extract_features, frame_count
from talkinghead.config import GenerateConfig, RenderConfig
from talkinghead.face.landmarker import FaceLandmarker
from talkinghead.io import load_audio, load_image, probe_video, read_video_frames
from talkinghead.face.measure import mouth_aperture
from talkinghead.motion.types import HEAD_FIELDS, Motion
from talkinghead.pipeline import decision_delay_seconds
from motion_checks import assert_motion_equal

SR = SAMPLE_RATE
FPS = GenerateConfig().fps


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------


def track_apertures(frames, fps: float = FPS) -> np.ndarray:
    """Mouth aperture per frame (NaN where no face is found), FaceLandmarker in video mode."""
    out = []
    with FaceLandmarker(video=True) as landmarker:
        for i, frame in enumerate(frames):
            faces = landmarker.detect(frame, timestamp_ms=int(round(i * 1000 / fps)))
            out.append(mouth_aperture(faces[0].landmarks) if faces else np.nan)
    return np.array(out)


def detect_one(image: np.ndarray):
    with FaceLandmarker(video=False) as landmarker:
        faces = landmarker.detect(image)
    assert faces, "no face re-detected in a rendered frame"
    return faces[0]


def face_centre(face) -> np.ndarray:
    return face.landmarks[list(L.FACE_OVAL), :2].astype(np.float64).mean(0)


def far_mask(shape, face, widths: float = 2.2) -> np.ndarray:
    """Pixels farther than `widths` face widths from the face centre."""
    h, w = shape[:2]
    yy, xx = np.mgrid[:h, :w]
    cx, cy = face_centre(face)
    return np.hypot(xx - cx, yy - cy) > widths * face.width


def corner_mask(shape, side: int = 16) -> np.ndarray:
    mask = np.zeros(shape[:2], bool)
    for ys in (slice(0, side), slice(-side, None)):
        for xs in (slice(0, side), slice(-side, None)):
            mask[ys, xs] = True
    return mask


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of every run of True in a 1-D bool array."""
    padded = np.concatenate([[False], mask, [False]]).astype(int)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2], edges[1::2]))


def speech_silence_speech(demo_audio: np.ndarray, silence_s: float = 1.5) -> np.ndarray:
    """1.5 s of speech, `silence_s` of digital silence, 1.5 s of speech (both speech parts are voiced throughout)."""
    a = demo_audio[int(2.5 * SR):int(4.0 * SR)]
    b = demo_audio[int(5.0 * SR):int(6.5 * SR)]
    return np.concatenate([a, np.zeros(int(silence_s * SR), np.float32), b]).astype(np.float32)


def motion_of(pipeline, chunks) -> Motion:
    return Motion.concat(list(pipeline.stream_motion(chunks)))


# ------------------------------------------------------------------------------------------------
# the output file: streams, size, timing
# ------------------------------------------------------------------------------------------------


def check_output_file(path, result, image: np.ndarray, n_samples: int, fps: int, size: int) -> None:
    info = probe_video(path)
    assert info.video_codec == "h264"
    assert info.pix_fmt == "yuv420p"
    assert info.audio_codec == "aac"
    assert info.fps == pytest.approx(fps)
    assert info.width % 2 == 0 and info.height % 2 == 0
    assert max(info.width, info.height) <= size
    h, w = image.shape[:2]
    if max(h, w) <= size:  # never upscaled: at most the even crop
        assert (w - info.width, h - info.height) in {(0, 0), (0, 1), (1, 0), (1, 1)}
    else:
        assert max(info.width, info.height) >= size - 1
    assert info.width / info.height == pytest.approx(w / h, rel=0.02)  # aspect kept
    expected = frame_count(n_samples, fps)
    assert info.frame_count == expected
    assert result.frames == expected and (result.width, result.height) == (info.width, info.height)
    assert len(list(read_video_frames(path))) == expected
    audio_s = n_samples / SR
    assert abs(expected / fps - audio_s) <= 1 / fps  # video duration vs the input audio
    assert info.audio_duration is not None and abs(info.audio_duration - audio_s) <= 1 / fps
    assert abs(info.duration - audio_s) <= 1 / fps


def test_demo_output_streams(demo_mp4, demo_image, demo_audio):
    path, result = demo_mp4
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no partial file left
    check_output_file(path, result, demo_image, len(demo_audio), FPS, RenderConfig().size)


REAL_COMBOS = [  # portrait, speech, fps, size: non-square portraits, a 24 kHz and a 16 kHz recording
    ("liveportrait_s12.jpg", "echomimic_en_girl.wav", 30, 256),
    ("dreamtalk_face3.png", "dreamtalk_spanish1.wav", 25, 256),
]


@pytest.fixture(scope="module", params=REAL_COMBOS, ids=lambda c: c[0].split(".")[0])
def real_output(request, real_file, tmp_path_factory):
    image_name, audio_name, fps, size = request.param
    image_path, audio_path = real_file(image_name), real_file(audio_name)
    out = tmp_path_factory.mktemp("real") / "talking.mp4"
    config = GenerateConfig(fps=fps, render=RenderConfig(size=size))
    result = talkinghead.generate(image_path, audio_path, out, config)
    return out, result, load_image(image_path), load_audio(audio_path), fps, size


def test_real_output_streams(real_output):
    out, result, image, audio, fps, size = real_output
    check_output_file(out, result, image, len(audio), fps, size)


def test_real_output_face_found(real_output):
    out, _, _, _, fps, _ = real_output
    apertures = track_apertures(read_video_frames(out), fps)
    assert np.isfinite(apertures).mean() >= 0.98


# ------------------------------------------------------------------------------------------------
# the face and the mouth in the demo output
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_apertures(demo_mp4_frames) -> np.ndarray:
    return track_apertures(demo_mp4_frames)


@pytest.fixture(scope="module")
def demo_loudness(demo_audio) -> np.ndarray:
    return extract_features(demo_audio, FPS).loudness_db


def test_face_found_in_output_frames(demo_apertures, demo_mp4_frames):
    assert len(demo_apertures) == len(demo_mp4_frames)
    assert np.isfinite(demo_apertures).mean() >= 0.98


@pytest.fixture(scope="module")
def loudness_apertures(astronaut_pipeline_with, demo_audio) -> np.ndarray:
    """The demo speech through the loudness-driven mouth (MotionConfig.mouth = "loudness"), re-tracked."""
    pipeline = astronaut_pipeline_with(mouth="loudness")
    return track_apertures(list(pipeline.stream(pipeline.chunks(demo_audio))))


def test_loudness_mouth_follows_loudness(loudness_apertures, demo_loudness):
    """The rule-based source opens with loudness (the learned one is scored against real videos by eval)."""
    demo_apertures = loudness_apertures
    assert len(demo_apertures) == len(demo_loudness)
    ok = np.isfinite(demo_apertures)
    loud = np.maximum(demo_loudness, -60.0)
    r = np.corrcoef(demo_apertures[ok], loud[ok])[0, 1]
    assert r > 0.5, f"mouth aperture vs loudness correlation {r:.2f}"


def test_mouth_moves_in_speech_and_rests_in_the_pause(demo_apertures, demo_loudness):
    silent = demo_loudness <= -80
    inner = [(a, b) for a, b in runs(silent) if a > 0 and b < len(silent)]
    assert inner, "the demo speech should have a pause"
    start, stop = max(inner, key=lambda r: r[1] - r[0])
    assert (stop - start) / FPS >= 0.4, "the demo's pause (~0.6 s) was not found"
    pause = demo_apertures[start + 5:stop - 2]  # after hang-over and release, before anticipation
    speech = demo_apertures[demo_loudness > -35]
    assert np.isfinite(pause).all() and len(pause) >= 5
    speech = speech[np.isfinite(speech)]
    assert speech.std() > 2 * pause.std(), (speech.std(), pause.std())  # moving while talking, still in the pause
    assert speech.mean() > pause.mean() + 0.03  # open while talking, closed in the pause


def _silent_middle(apertures: np.ndarray) -> np.ndarray:
    """Apertures of the middle 1.5 s silence of speech_silence_speech, minus 0.4 s settling and 0.1 s anticipation."""
    return apertures[int((1.5 + 0.4) * FPS):int((3.0 - 0.1) * FPS)]


def test_silence_returns_mouth_to_the_portraits_rest(real_pipeline, demo_audio):
    """A closed-mouth portrait: through a silent stretch the mouth is back at the portrait's own pose, and still."""
    audio = speech_silence_speech(demo_audio)
    frames = list(real_pipeline.stream(real_pipeline.chunks(audio)))
    assert len(frames) == frame_count(len(audio), FPS)
    apertures = track_apertures(frames)
    assert np.isfinite(apertures).all()
    rest = mouth_aperture(real_pipeline.portrait.face.landmarks)
    middle = _silent_middle(apertures)
    assert abs(np.median(middle) - rest) < 0.015, (np.median(middle), rest)
    assert np.abs(np.diff(middle)).max() < 0.01
    assert np.nanmax(apertures) > rest + 0.05  # the speech around it did open the mouth


@pytest.mark.parametrize("mouth", ["speech", "loudness"])
def test_silence_holds_the_mouth_closed_and_still(astronaut_pipeline_with, demo_audio, mouth):
    """The astronaut smiles with parted lips: in silence the motion source holds its closed rest pose.

    That pose (motion_source.closed: jawOpen <= 0.06, every other mouth-opening coefficient 0) is
    rendered on its own and re-detected; the silent middle of a clip must sit at that aperture, no
    wider than the portrait's own, and hardly move.
    """
    astronaut_pipeline = astronaut_pipeline_with(mouth=mouth)
    audio = speech_silence_speech(demo_audio)
    frames = list(astronaut_pipeline.stream(astronaut_pipeline.chunks(audio)))
    apertures = track_apertures(frames)
    assert np.isfinite(apertures).all()
    source = astronaut_pipeline.motion_source
    closed_expression = source.closed if mouth == "loudness" else source.rules.closed  # the learned mouth wraps the rules
    closed_frame = astronaut_pipeline.renderer.render(Motion.rest(closed_expression))[0]
    closed = mouth_aperture(detect_one(closed_frame).landmarks)
    portrait = mouth_aperture(astronaut_pipeline.portrait.face.landmarks)
    middle = _silent_middle(apertures)
    assert abs(np.median(middle) - closed) < 0.015, (np.median(middle), closed)
    assert np.median(middle) <= portrait + 0.01
    assert np.abs(np.diff(middle)).max() < 0.015
    assert middle.std() < 0.01
    assert np.nanmax(apertures) > np.median(middle) + 0.05  # the speech around it did open the mouth


# ------------------------------------------------------------------------------------------------
# background
# ------------------------------------------------------------------------------------------------


def test_background_far_from_face_unchanged(astronaut_pipeline, astronaut_frames):
    image = astronaut_pipeline.portrait.image.astype(np.int16)
    face = astronaut_pipeline.portrait.face
    far = far_mask(image.shape, face) | corner_mask(image.shape)
    assert far.mean() > 0.2  # the astronaut portrait has plenty of background
    near = np.zeros_like(far)
    x0, y0, x1, y1 = (int(v) for v in face.box)
    near[y0:y1, x0:x1] = True
    face_change = 0.0
    for frame in astronaut_frames:
        diff = np.abs(frame.astype(np.int16) - image)
        assert diff[far].mean() < 1.0
        assert diff[corner_mask(image.shape)].max() <= 2
        face_change = max(face_change, diff[near].mean())
    assert face_change > 2.0  # the face itself does move


def test_background_unchanged_after_encoding(demo_mp4_frames, astronaut_pipeline):
    image = astronaut_pipeline.portrait.image.astype(np.int16)
    assert demo_mp4_frames[0].shape == image.shape
    far = far_mask(image.shape, astronaut_pipeline.portrait.face) | corner_mask(image.shape)
    for frame in demo_mp4_frames:
        assert np.abs(frame.astype(np.int16) - image)[far].mean() < 3.0  # codec error only


def test_real_portrait_corners_unchanged(real_pipeline, demo_audio):
    image = real_pipeline.portrait.image.astype(np.int16)
    mask = corner_mask(image.shape) | far_mask(image.shape, real_pipeline.portrait.face)
    for frame in real_pipeline.stream(real_pipeline.chunks(demo_audio[:3 * SR])):
        assert np.abs(frame.astype(np.int16) - image)[mask].mean() < 1.0


# ------------------------------------------------------------------------------------------------
# determinism
# ------------------------------------------------------------------------------------------------


def test_same_seed_same_frames(astronaut_pipeline, astronaut_pipeline_with, demo_audio, astronaut_frames):
    audio = demo_audio[:3 * SR]
    first = list(astronaut_pipeline.stream(astronaut_pipeline.chunks(audio)))
    second = list(astronaut_pipeline.stream(astronaut_pipeline.chunks(audio)))
    fresh = astronaut_pipeline_with()  # a new Pipeline (renderer, motion source) with the same seed
    third = list(fresh.stream(fresh.chunks(audio)))
    assert len(first) == len(second) == len(third) == frame_count(len(audio), FPS)
    for a, b, c in zip(first, second, third):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    # A frame, once decided, is final: the 3 s clip's frames equal the full clip's, except the last
    # few (those saw the silence padded after the clip's end).
    settled = len(first) - int(np.ceil(decision_delay_seconds(astronaut_pipeline.config) * FPS)) - 2
    for a, b in zip(first[:settled], astronaut_frames[:settled]):
        np.testing.assert_array_equal(a, b)


def _blink_onsets(motion: Motion) -> np.ndarray:
    blink = motion.coefficient("eyeBlinkLeft")
    closed = blink > 0.5
    return np.flatnonzero(closed[1:] & ~closed[:-1]) + 1


def test_different_seed_different_head_and_blinks(astronaut_pipeline, astronaut_pipeline_with, demo_audio):
    m0 = motion_of(astronaut_pipeline, [demo_audio])
    m1 = motion_of(astronaut_pipeline_with(seed=1), [demo_audio])
    assert len(m0) == len(m1)
    yaw = HEAD_FIELDS.index("yaw")
    assert np.abs(m0.head[:, yaw] - m1.head[:, yaw]).max() > 0.5  # degrees
    b0, b1 = _blink_onsets(m0), _blink_onsets(m1)
    assert len(b0) >= 1 and len(b1) >= 1  # 8 s at ~17 blinks / min
    assert not np.array_equal(b0, b1)
    # the mouth follows the audio, not the seed: same mouth opening either way
    jaw = L.BLENDSHAPE_INDEX["jawOpen"]
    np.testing.assert_allclose(m0.expression[:, jaw], m1.expression[:, jaw], atol=1e-6)
    frames0 = astronaut_pipeline.renderer.render(m0[100])
    frames1 = astronaut_pipeline.renderer.render(m1[100])
    assert np.abs(frames0[0].astype(int) - frames1[0]).mean() > 0.1


# ------------------------------------------------------------------------------------------------
# chunking and input type
# ------------------------------------------------------------------------------------------------


def _random_chunks(audio: np.ndarray, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    chunks, start = [], 0
    while start < len(audio):
        size = int(rng.choice([0, 1, 7, 160, 319, 640, 1601, 4000, 16000, 33333]))
        chunks.append(audio[start:start + size])
        start += size
    return chunks


def _pieces(audio: np.ndarray, size: int) -> list[np.ndarray]:
    return [audio[i:i + size] for i in range(0, len(audio), size)]


def test_stream_motion_independent_of_chunking(astronaut_pipeline, demo_audio):
    whole = motion_of(astronaut_pipeline, [demo_audio])
    assert len(whole) == frame_count(len(demo_audio), FPS)
    assert_motion_equal(whole, motion_of(astronaut_pipeline, _pieces(demo_audio, SR // 50)))  # 20 ms
    assert_motion_equal(whole, motion_of(astronaut_pipeline, _random_chunks(demo_audio, 0)))
    assert_motion_equal(whole, motion_of(astronaut_pipeline, astronaut_pipeline.chunks(demo_audio)))


def test_stream_motion_yields_incrementally(astronaut_pipeline, astronaut_pipeline_with, demo_audio):
    """Live use: motion comes out while the audio is still arriving, not all at the end."""
    runs_ = list(astronaut_pipeline.stream_motion(_pieces(demo_audio, SR // 10)))
    # 80 pushes of 100 ms (8 s); the learned mouth decides frames in blocks of 16 encoder frames
    # (0.32 s, 8 video frames), and the last run is what the end of the clip releases
    assert len(runs_) >= 20
    assert max(len(r) for r in runs_[:-1]) <= 10
    loudness = astronaut_pipeline_with(mouth="loudness")
    runs_ = list(loudness.stream_motion(_pieces(demo_audio, SR // 10)))
    assert len(runs_) >= 60  # the loudness mouth: all but the first few pushes decide frames
    assert max(len(r) for r in runs_) <= 5


@pytest.mark.parametrize("fps", [25, 30, 24])
def test_features_independent_of_chunking(demo_audio, fps):
    whole = extract_features(demo_audio, fps)
    assert len(whole) == frame_count(len(demo_audio), fps)
    for chunks in (_pieces(demo_audio, SR // 50), _random_chunks(demo_audio, fps), [demo_audio]):
        stream = FeatureStream(fps)
        parts = [stream.push(c) for c in chunks] + [stream.flush()]
        got = type(whole).concat(parts)
        np.testing.assert_array_equal(got.loudness_db, whole.loudness_db)
        np.testing.assert_array_equal(got.bands, whole.bands)
        np.testing.assert_array_equal(got.centroid_hz, whole.centroid_hz)


def test_file_and_array_inputs_give_the_same_video(demo_mp4, demo_mp4_frames, demo_image, demo_audio, tmp_path):
    calls = []
    out = tmp_path / "from_arrays.mp4"
    result = talkinghead.generate(np.array(demo_image), np.array(demo_audio), out,
                                  progress=lambda done, total: calls.append((done, total)))
    _, file_result = demo_mp4
    assert (result.frames, result.width, result.height) == (file_result.frames, file_result.width, file_result.height)
    assert calls == [(i + 1, result.frames) for i in range(result.frames)]
    frames = list(read_video_frames(out))
    assert len(frames) == len(demo_mp4_frames)
    for a, b in zip(frames, demo_mp4_frames):
        np.testing.assert_array_equal(a, b)


def test_a_run_imports_no_scipy(tmp_path):
    """Start-up time: the command's path needs neither SciPy (a quarter of a second to import) nor matplotlib."""
    import subprocess
    import sys

    code = ("import sys, talkinghead\n"
            "from talkinghead.assets import ASSETS_DIR\n"
            "talkinghead.generate(ASSETS_DIR / 'astronaut.png', ASSETS_DIR / 'demo_speech.wav', sys.argv[1])\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'scipy', 'matplotlib', 'torch'}))\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out.mp4")], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
