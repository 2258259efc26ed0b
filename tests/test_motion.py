"""The rule-based audio motion source (RuleBasedAudioMotion) and the Motion type, on synthetic audio."""

from __future__ import annotations

import numpy as np
import pytest

from talkinghead.face import landmarks as L
from talkinghead.audio.features import SAMPLE_RATE, AudioFeatures, extract_features, frame_count
from talkinghead.config import MotionConfig
from talkinghead.errors import TalkingHeadError
from talkinghead.motion.audio_rules import JAW_REST_MAX, MOUTH_OPENING_COEFFS, RuleBasedAudioMotion
from talkinghead.motion.types import HEAD_FIELDS, N_HEAD, Motion
from motion_checks import assert_motion_equal

SR = SAMPLE_RATE
FPS = 25
IDX = L.BLENDSHAPE_INDEX


# ------------------------------------------------------------------------------------------------
# synthetic input
# ------------------------------------------------------------------------------------------------


def rest_expression() -> np.ndarray:
    """A portrait's own scores: smiling with parted lips (like the bundled astronaut), jaw a bit open."""
    e = np.zeros(L.N_BLENDSHAPES, np.float32)
    e[IDX["jawOpen"]] = 0.15  # above JAW_REST_MAX: silence must close it to JAW_REST_MAX
    e[IDX["mouthUpperUpLeft"]] = e[IDX["mouthUpperUpRight"]] = 0.45
    e[IDX["mouthLowerDownLeft"]] = e[IDX["mouthLowerDownRight"]] = 0.06
    e[IDX["mouthSmileLeft"]] = e[IDX["mouthSmileRight"]] = 0.9
    e[IDX["mouthStretchLeft"]] = 0.02
    e[IDX["eyeBlinkLeft"]] = e[IDX["eyeBlinkRight"]] = 0.04
    e[IDX["browInnerUp"]] = 0.1
    return e


def closed_rest(rest: np.ndarray) -> np.ndarray:
    """What silence must show: the rest pose with every mouth-opening coefficient at 0, jawOpen <= JAW_REST_MAX."""
    c = rest.copy()
    for name in MOUTH_OPENING_COEFFS:
        c[IDX[name]] = 0.0
    c[IDX["jawOpen"]] = min(float(rest[IDX["jawOpen"]]), JAW_REST_MAX)
    return c


def voice(seconds: float, level_db: float, f0: float = 140.0) -> np.ndarray:
    """A steady voiced sound (harmonic complex up to 3.5 kHz) at an RMS level in dBFS."""
    t = np.arange(int(round(seconds * SR))) / SR
    x = sum(np.sin(2 * np.pi * k * f0 * t + k) / k for k in range(1, int(3500 / f0)))
    x = x / np.sqrt(np.mean(x ** 2))
    return (x * 10 ** (level_db / 20)).astype(np.float32)


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Syllable-rate bursts of voice at varying level and pitch, with phrase pauses."""
    rng = np.random.default_rng(seed)
    parts, total = [], 0.0
    while total < seconds:
        if rng.random() < 0.15:
            dur = rng.uniform(0.3, 0.8)
            parts.append(np.zeros(int(dur * SR), np.float32))
        else:
            dur = rng.uniform(0.12, 0.3)
            burst = voice(dur, rng.uniform(-32, -14), rng.uniform(100, 220))
            burst *= np.hanning(len(burst)).astype(np.float32) ** 0.5
            parts.append(burst)
        total += dur
    return np.concatenate(parts)[:int(seconds * SR)]


def run(features: AudioFeatures, config: MotionConfig = MotionConfig(), rest=None, fps: float = FPS,
        pieces: list[int] | None = None) -> Motion:
    """Whole clip through a fresh source; `pieces` = feature-frame counts of successive pushes."""
    src = RuleBasedAudioMotion(config)
    src.start(rest_expression() if rest is None else rest, fps)
    return push_all(src, features, pieces)


def push_all(src, features: AudioFeatures, pieces: list[int] | None = None) -> Motion:
    out, start = [], 0
    for size in pieces or [len(features)]:
        out.append(src.push(_slice(features, start, start + size)))
        start += size
    assert start >= len(features)
    out.append(src.flush())
    return Motion.concat(out)


def _slice(f: AudioFeatures, a: int, b: int) -> AudioFeatures:
    return f.rows(a, b)


@pytest.fixture(scope="module")
def speech_features() -> AudioFeatures:
    """20 s of synthetic speech."""
    return extract_features(speech_like(20.0, seed=3), FPS)


@pytest.fixture(scope="module")
def minute_features() -> AudioFeatures:
    """60 s of synthetic speech."""
    return extract_features(speech_like(60.0, seed=4), FPS)


# ------------------------------------------------------------------------------------------------
# contract: determinism, chunking, lookahead, shapes
# ------------------------------------------------------------------------------------------------


def test_output_shapes_and_ranges(speech_features):
    m = run(speech_features)
    assert len(m) == len(speech_features)
    assert m.expression.dtype == np.float32 and m.head.dtype == np.float32 and m.gaze.dtype == np.float32
    assert m.expression.shape == (len(m), L.N_BLENDSHAPES) and m.head.shape == (len(m), N_HEAD)
    assert m.expression.min() >= 0 and m.expression.max() <= 1
    assert np.isfinite(m.head).all() and np.isfinite(m.gaze).all()
    np.testing.assert_allclose(m.head[:, HEAD_FIELDS.index("scale")], 1.0)  # no zoom from this source
    assert np.abs(m.gaze).max() < 0.25  # eye widths: small movements around the camera direction


def test_deterministic_per_seed(speech_features):
    a = run(speech_features, MotionConfig(seed=7))
    b = run(speech_features, MotionConfig(seed=7))
    assert_motion_equal(a, b)
    # one source restarted gives the same clip again (start resets every state)
    src = RuleBasedAudioMotion(MotionConfig(seed=7))
    src.start(rest_expression(), FPS)
    first = push_all(src, speech_features)
    src.start(rest_expression(), FPS)
    assert_motion_equal(first, push_all(src, speech_features))
    assert_motion_equal(a, first)

    c = run(speech_features, MotionConfig(seed=8))
    assert np.abs(a.head - c.head).max() > 0.3
    assert not np.array_equal(a.coefficient("eyeBlinkLeft"), c.coefficient("eyeBlinkLeft"))
    assert np.abs(a.gaze - c.gaze).max() > 0.005
    # the mouth follows the audio only
    for name in MOUTH_OPENING_COEFFS:
        np.testing.assert_array_equal(a.coefficient(name), c.coefficient(name))


@pytest.mark.parametrize("lookahead", [0, 1, 2])
def test_chunking_does_not_change_the_output(speech_features, lookahead):
    config = MotionConfig(lookahead_frames=lookahead)
    whole = run(speech_features, config)
    n = len(speech_features)
    singles = run(speech_features, config, pieces=[1] * n)
    rng = np.random.default_rng(lookahead)
    sizes = []
    while sum(sizes) < n:
        sizes.append(int(rng.integers(0, 40)))  # includes empty pushes
    random = run(speech_features, config, pieces=sizes)
    assert_motion_equal(whole, singles)
    assert_motion_equal(whole, random)


def test_lookahead_beyond_the_anticipation_weights_is_refused():
    with pytest.raises(TalkingHeadError, match="motion.lookahead_frames 5 is not allowed: use a whole number from 0 to 2"):
        MotionConfig(lookahead_frames=5)  # anticipation weights cover at most 2 future frames


@pytest.mark.parametrize("requested,held", [(0, 0), (1, 1), (2, 2)])
def test_lookahead_holds_back_frames_and_flush_returns_them(speech_features, requested, held):
    src = RuleBasedAudioMotion(MotionConfig(lookahead_frames=requested))
    assert src.lookahead == held
    src.start(rest_expression(), FPS)
    f = speech_features
    assert len(src.push(_slice(f, 0, 0))) == 0
    first = src.push(_slice(f, 0, 10))
    assert len(first) == 10 - held
    counts = [len(first)]
    for start in range(10, len(f), 1):
        counts.append(len(src.push(_slice(f, start, start + 1))))
    assert all(c == 1 for c in counts[1:])  # after the first push: one frame in, one frame out
    tail = src.flush()
    assert len(tail) == held
    assert sum(counts) + len(tail) == len(f)  # output length equals input frames after flush


def test_short_clips(speech_features):
    for n in (1, 2, 3):
        m = run(_slice(speech_features, 100, 100 + n), MotionConfig(lookahead_frames=2))
        assert len(m) == n
    assert len(run(_slice(speech_features, 0, 0))) == 0


# ------------------------------------------------------------------------------------------------
# mouth
# ------------------------------------------------------------------------------------------------


def test_digital_silence_holds_the_closed_rest_pose():
    rest = rest_expression()
    features = extract_features(np.zeros(3 * SR, np.float32), FPS)
    m = run(features, rest=rest)
    expected = closed_rest(rest)
    assert len(m) == frame_count(3 * SR, FPS)
    for name in MOUTH_OPENING_COEFFS:
        np.testing.assert_array_equal(m.coefficient(name), expected[IDX[name]], err_msg=name)
    assert m.coefficient("jawOpen")[0] == pytest.approx(JAW_REST_MAX)
    # what silence does not touch stays at the portrait's own value
    for name in ("mouthSmileLeft", "mouthSmileRight", "browInnerUp"):
        np.testing.assert_array_equal(m.coefficient(name), rest[IDX[name]], err_msg=name)


def test_mouth_closes_in_a_pause_after_speech():
    rest = rest_expression()
    audio = np.concatenate([voice(1.0, -18), np.zeros(int(1.5 * SR), np.float32), voice(1.0, -18)])
    m = run(extract_features(audio, FPS), rest=rest)
    expected = closed_rest(rest)
    talking = slice(int(0.3 * FPS), int(0.9 * FPS))
    pause = slice(int(1.6 * FPS), int(2.4 * FPS))  # 0.6 s after the speech stopped, before the next onset
    assert m.coefficient("jawOpen")[talking].min() > expected[IDX["jawOpen"]] + 0.05
    for name in MOUTH_OPENING_COEFFS:
        np.testing.assert_allclose(m.coefficient(name)[pause], expected[IDX[name]], atol=1e-3, err_msg=name)
    # and it reopens with the next speech (anticipation: already before the audio's onset frame)
    onset = int(2.5 * FPS)
    assert m.coefficient("jawOpen")[onset + 2] > expected[IDX["jawOpen"]] + 0.05


def test_jaw_opens_more_for_louder_sound():
    """Bursts at four levels, in repeated cycles (loudest first, so the running peak is set)."""
    levels = (-12.0, -36.0, -28.0, -20.0)
    gap = np.zeros(int(0.2 * SR), np.float32)
    cycle = np.concatenate([np.concatenate([voice(0.4, db), gap]) for db in levels])
    audio = np.concatenate([cycle] * 4)
    m = run(extract_features(audio, FPS))
    jaw = m.coefficient("jawOpen")
    per_level = {db: [] for db in levels}
    frames_per_burst, frames_per_cycle = int(0.6 * FPS), int(len(cycle) / SR * FPS)
    for c in range(4):
        for i, db in enumerate(levels):
            start = c * frames_per_cycle + i * frames_per_burst
            per_level[db].append(jaw[start + 4:start + 9].mean())  # the burst's steady middle
    means = [np.mean(per_level[db]) for db in sorted(levels)]
    assert all(b > a + 0.02 for a, b in zip(means, means[1:])), dict(zip(sorted(levels), means))


def test_jaw_follows_loudness_in_speech(speech_features):
    m = run(speech_features)
    loud = np.maximum(speech_features.loudness_db, -60)
    jaw = m.coefficient("jawOpen")
    ranks = lambda x: np.argsort(np.argsort(x))  # noqa: E731
    rho = np.corrcoef(ranks(loud), ranks(jaw))[0, 1]
    assert rho > 0.6, rho


def test_mouth_amplitude_scales_the_mouth(speech_features):
    rest = rest_expression()
    closed = closed_rest(rest)
    full = run(speech_features, MotionConfig(mouth_amplitude=1.0), rest=rest)
    half = run(speech_features, MotionConfig(mouth_amplitude=0.5), rest=rest)
    none = run(speech_features, MotionConfig(mouth_amplitude=0.0), rest=rest)
    jaw = IDX["jawOpen"]
    d_full = full.expression[:, jaw] - closed[jaw]
    d_half = half.expression[:, jaw] - closed[jaw]
    assert d_full.max() > 0.1
    np.testing.assert_allclose(d_half, 0.5 * d_full, atol=1e-5)
    for name in MOUTH_OPENING_COEFFS:
        np.testing.assert_allclose(none.coefficient(name), closed[IDX[name]], atol=1e-6, err_msg=name)


# ------------------------------------------------------------------------------------------------
# blinks
# ------------------------------------------------------------------------------------------------


def blink_runs(series: np.ndarray, threshold: float = 0.5) -> list[tuple[int, int]]:
    closed = np.concatenate([[False], series > threshold, [False]]).astype(int)
    edges = np.flatnonzero(np.diff(closed))
    return list(zip(edges[::2], edges[1::2]))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("fps", [25, 30])
def test_blinks_natural_rate_and_full_closure(seed, fps):
    audio = speech_like(60.0, seed=10 + seed)
    features = extract_features(audio, fps)
    rest = rest_expression()
    m = run(features, MotionConfig(seed=seed), rest=rest, fps=fps)
    left, right = m.coefficient("eyeBlinkLeft"), m.coefficient("eyeBlinkRight")
    np.testing.assert_array_equal(left, right)  # both eyes together
    blinks = blink_runs(left)
    minutes = len(m) / fps / 60
    rate = len(blinks) / minutes
    assert 8 <= rate <= 30, rate
    for a, b in blinks:
        assert left[a:b].max() >= 0.999  # every blink closes the eyes fully
        assert (b - a) / fps < 0.35  # a blink, not a long closure
    onsets = np.array([a for a, _ in blinks]) / fps
    assert np.diff(onsets).min() >= 1.0  # no double blinks
    # between blinks the lids are at the portrait's own value
    open_frames = left < 0.5
    assert np.median(left[open_frames]) == pytest.approx(rest[IDX["eyeBlinkLeft"]], abs=1e-6)


def test_blink_rate_follows_config(minute_features):
    slow = len(blink_runs(run(minute_features, MotionConfig(blink_rate=8)).coefficient("eyeBlinkLeft")))
    fast = len(blink_runs(run(minute_features, MotionConfig(blink_rate=30)).coefficient("eyeBlinkLeft")))
    assert slow < fast
    assert 3 <= slow <= 14 and 18 <= fast <= 42
    none = run(minute_features, MotionConfig(blink_rate=0), rest=rest_expression())
    np.testing.assert_array_equal(none.coefficient("eyeBlinkLeft"), rest_expression()[IDX["eyeBlinkLeft"]])


# ------------------------------------------------------------------------------------------------
# head and gaze
# ------------------------------------------------------------------------------------------------


def test_head_amplitude_scales_head_motion(speech_features):
    yaw = HEAD_FIELDS.index("yaw")
    spreads = {}
    for amp in (0.5, 1.0, 2.0):
        m = run(speech_features, MotionConfig(head_amplitude=amp))
        spreads[amp] = m.head[:, yaw].std()
        assert np.abs(np.diff(m.head[:, :3], axis=0)).max() < 0.5 * amp  # smooth: degrees per frame
    assert spreads[1.0] > 0.3  # degrees: the head does move by default
    assert spreads[0.5] == pytest.approx(0.5 * spreads[1.0], rel=1e-3)
    assert spreads[2.0] == pytest.approx(2.0 * spreads[1.0], rel=1e-3)

    still = run(speech_features, MotionConfig(head_amplitude=0.0))
    expected = np.zeros(N_HEAD, np.float32)
    expected[HEAD_FIELDS.index("scale")] = 1.0
    np.testing.assert_array_equal(still.head, np.broadcast_to(expected, still.head.shape))


def test_gaze_saccades_switch(speech_features):
    on = run(speech_features, MotionConfig(gaze_saccades=True))
    off = run(speech_features, MotionConfig(gaze_saccades=False))
    assert np.abs(on.gaze).max() > 0.005
    np.testing.assert_array_equal(off.gaze, 0.0)


# ------------------------------------------------------------------------------------------------
# the Motion type
# ------------------------------------------------------------------------------------------------


def test_motion_type_basics():
    rest = rest_expression()
    m = Motion.rest(rest, 5)
    assert len(m) == 5
    np.testing.assert_array_equal(m.expression, np.repeat(rest[None], 5, 0))
    np.testing.assert_array_equal(m.head[:, HEAD_FIELDS.index("scale")], 1.0)
    np.testing.assert_array_equal(np.delete(m.head, HEAD_FIELDS.index("scale"), axis=1), 0.0)
    np.testing.assert_array_equal(m.gaze, 0.0)
    assert len(m[2]) == 1 and len(m[1:4]) == 3
    both = Motion.concat([m, Motion.empty(), m[0]])
    assert len(both) == 6
    assert len(Motion.concat([])) == 0
    np.testing.assert_array_equal(m.coefficient("jawOpen"), rest[IDX["jawOpen"]])
    with pytest.raises(ValueError):
        Motion(np.zeros((3, 52), np.float32), np.zeros((2, N_HEAD), np.float32), np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError):
        Motion(np.zeros((3, 51), np.float32), np.zeros((3, N_HEAD), np.float32), np.zeros((3, 2), np.float32))
