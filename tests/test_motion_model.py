"""The learned motion model: NumPy and torch networks agree, samplers on a known distribution, a seeded
tiny model trains (deterministic, loss falls), and DiffusionMotion streams like every MotionSource."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from motion_checks import assert_motion_equal
from talkinghead.audio.features import extract_features
from talkinghead.config import MotionConfig
from talkinghead.errors import TalkingHeadError
from talkinghead.motion.audio_rules import RuleBasedAudioMotion
from talkinghead.motion.learned.checkpoint import ModelConfig, MotionModel
from talkinghead.motion.learned.denoiser import Denoiser, guided
from talkinghead.motion.learned.network import MotionTransformer, conditioning_dims, parameter_shapes
from talkinghead.motion.learned.representation import AUDIO_DIMS, MOTION_DIMS, motion_vectors, vectors_to_motion
from talkinghead.motion.learned.samplers import SAMPLERS, karras_sigmas, sampler
from talkinghead.motion.learned.source import DiffusionMotion, Sampling
from talkinghead.motion.types import Motion
from repo_scripts import load_script

TINY = ModelConfig(width=16, layers=1, heads=2, window=6, previous=3)
FPS = 25


def random_model(config: ModelConfig = TINY, seed: int = 0, scale: float = 0.3) -> MotionModel:
    """A model with random weights (no training): enough for shapes, streaming and determinism."""
    rng = np.random.default_rng(seed)
    weights = {k: (rng.standard_normal(s) * scale).astype(np.float32) for k, s in parameter_shapes(config).items()}
    stats = {"motion_mean": np.zeros(MOTION_DIMS), "motion_std": np.full(MOTION_DIMS, 0.5),
             "audio_mean": np.zeros(AUDIO_DIMS), "audio_std": np.ones(AUDIO_DIMS),
             "rest_mean": np.zeros(52), "rest_std": np.ones(52), "control_median": np.zeros(2),
             "control_std": np.ones(2)}
    return MotionModel(config, weights, {k: np.asarray(v, np.float32) for k, v in stats.items()}, {})


def speech(seconds: float, seed: int = 0) -> np.ndarray:
    """A voiced, amplitude-modulated tone with pauses (prosody the model reads)."""
    t = np.arange(int(seconds * 16000)) / 16000
    envelope = (np.sin(2 * np.pi * 1.3 * t + seed) > 0) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
    return (0.2 * envelope * np.sin(2 * np.pi * 180 * t)).astype(np.float32)


def run(source, features, chunks=None) -> Motion:
    rest = np.full(52, 0.05, np.float32)
    source.start(rest, FPS)
    if chunks is None:
        return Motion.concat([source.push(features), source.flush()])
    out, start = [], 0
    for size in chunks:
        out.append(source.push(features.rows(start, start + size)))
        start += size
    out.append(source.push(features.rows(start, len(features))))
    return Motion.concat(out + [source.flush()])


def diffusion(model=None, **config) -> DiffusionMotion:
    return DiffusionMotion(model or random_model(), RuleBasedAudioMotion(), MotionConfig(**config), Sampling(steps=3))


def test_numpy_network_matches_torch():
    torch = pytest.importorskip("torch", reason="the train extra (torch) is not installed")
    from talkinghead.training.motion_network import MotionTransformerTorch, export_weights

    torch.manual_seed(0)
    net = MotionTransformerTorch(TINY)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.3)
    weights = export_weights(net)
    assert {k: v.shape for k, v in weights.items()} == parameter_shapes(TINY)
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(s).astype(np.float32) for s in
              ((2, TINY.window, 60), (2,), (2, TINY.previous, 60), (2, TINY.tokens, AUDIO_DIMS),
               (2, conditioning_dims(TINY) - TINY.noise_features))]
    expected = net(*[torch.from_numpy(a) for a in inputs]).detach().numpy()
    np.testing.assert_allclose(MotionTransformer(TINY, weights)(*inputs), expected, atol=1e-4)


class GaussianData:
    """The exact denoiser of data ~ N(mean, std^2) per dimension (a network stand-in)."""

    def __init__(self, mean, std):
        self.mean, self.std = mean, std

    def __call__(self, x, sigma):
        var = self.std ** 2
        return self.mean + var / (var + sigma[:, None, None] ** 2) * (x - self.mean)


STEPS_NEEDED = {"euler": 150, "heun": 25, "dpmpp_2m": 25}  # Euler is first order: it needs many more steps


def test_every_sampler_is_checked():
    assert set(STEPS_NEEDED) == set(SAMPLERS)


@pytest.mark.parametrize("name", SAMPLERS)
def test_samplers_reach_the_data_distribution(name):
    data = GaussianData(mean=np.array([2.0, -1.0]), std=np.array([0.5, 1.5]))
    sigmas = karras_sigmas(STEPS_NEEDED[name], 0.002, 20.0)
    x = np.random.default_rng(0).standard_normal((4000, 1, 2)) * sigmas[0]
    out = sampler(name)(data, x, sigmas)[:, 0]
    np.testing.assert_allclose(out.mean(0), data.mean, atol=0.1)
    np.testing.assert_allclose(out.std(0), data.std, rtol=0.05)


def test_guidance_scale_one_is_the_conditioned_model_and_two_extrapolates():
    calls = []

    def denoiser(x, sigma, shift):
        calls.append(len(x))
        return x + shift[:, None, None]

    cond, uncond = {"shift": np.array([1.0])}, {"shift": np.array([0.0])}
    x, sigma = np.zeros((1, 2, 3)), np.array([1.0])
    np.testing.assert_allclose(guided(denoiser, cond, uncond, 1.0)(x, sigma), 1.0)
    np.testing.assert_allclose(guided(denoiser, cond, uncond, 2.0)(x, sigma), 2.0)
    assert calls == [1, 2]  # scale 1: one call; otherwise one batched call of both branches


def test_guidance_on_two_conditions_adds_each_branch_and_skips_scale_one():
    calls = []

    def denoiser(x, sigma, shift):
        calls.append(len(x))
        return x + shift[:, None, None]

    cond, no_a, no_b = {"shift": np.array([1.0])}, {"shift": np.array([0.0])}, {"shift": np.array([0.5])}
    x, sigma = np.zeros((1, 2, 3)), np.array([1.0])
    np.testing.assert_allclose(guided(denoiser, cond, no_a, 1.0, [(no_b, 1.0)])(x, sigma), 1.0)
    np.testing.assert_allclose(guided(denoiser, cond, no_a, 1.0, [(no_b, 3.0)])(x, sigma), 2.0)  # 0.5 + 3 * 0.5
    np.testing.assert_allclose(guided(denoiser, cond, no_a, 2.0, [(no_b, 3.0)])(x, sigma), 3.0)  # 1 + 1 * 1 + 2 * 0.5
    assert calls == [1, 2, 3]


def test_control_guidance_one_is_unguided_sampling_and_above_one_differs():
    features = extract_features(speech(2.5), FPS)

    def sampled(**sampling) -> Motion:
        return run(DiffusionMotion(random_model(), RuleBasedAudioMotion(), MotionConfig(head_amplitude=1.5),
                                   Sampling(steps=3, **sampling)), features)

    plain = sampled()
    assert_motion_equal(sampled(control_guidance=1.0), plain)
    assert_motion_equal(sampled(audio_guidance=2.0, control_guidance=1.0), sampled(audio_guidance=2.0))
    guided_head = sampled(control_guidance=2.0).head
    assert np.isfinite(guided_head).all()
    assert np.abs(guided_head - plain.head).max() > 1e-3


def test_edm_denoiser_keeps_x_at_small_sigma():
    zero = Denoiser(lambda x, c_noise, **_: np.zeros_like(x), sigma_data=1.0)
    x = np.ones((1, 3, 2), np.float32)
    np.testing.assert_allclose(zero(x, np.array([1e-3], np.float32)), x, rtol=1e-5)


def test_representation_round_trip():
    rng = np.random.default_rng(0)
    rest = rng.uniform(0.1, 0.3, 52).astype(np.float32)
    motion = Motion(rng.uniform(0.1, 0.9, (5, 52)).astype(np.float32),
                    np.concatenate([rng.normal(size=(5, 5)), rng.uniform(0.8, 1.2, (5, 1))], 1).astype(np.float32),
                    rng.normal(size=(5, 2)).astype(np.float32))
    back = vectors_to_motion(motion_vectors(motion, rest), rest)
    for a, b in ((back.expression, motion.expression), (back.head, motion.head), (back.gaze, motion.gaze)):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_diffusion_motion_is_chunking_independent_and_seeded():
    features = extract_features(speech(3.1), FPS)
    whole = run(diffusion(), features)
    assert len(whole) == len(features)
    assert_motion_equal(run(diffusion(), features, chunks=[1, 7, 3, 20, 2]), whole)
    assert_motion_equal(run(diffusion(), features), whole)  # the same seed: the same motion
    other = run(diffusion(seed=1), features)
    assert np.abs(other.head - whole.head).max() > 1e-3
    np.testing.assert_array_equal(other.expression[:, 25], whole.expression[:, 25])  # jawOpen: the mouth source's


def test_diffusion_motion_takes_the_mouth_from_its_mouth_source():
    features = extract_features(speech(2.0), FPS)
    rules = run(RuleBasedAudioMotion(), features)
    learned = run(diffusion(), features)
    from talkinghead.motion.mixer import REGION_INDEX
    mouth = REGION_INDEX["mouth"]
    np.testing.assert_array_equal(learned.expression[:, mouth], rules.expression[:, mouth])
    assert np.abs(learned.head - rules.head).max() > 1e-3


@pytest.mark.parametrize("fps", [24, 30])
def test_other_frame_rates_give_one_frame_per_video_frame(fps):
    features = extract_features(speech(2.3), fps)
    source = diffusion()
    source.start(np.full(52, 0.05, np.float32), fps)
    parts = [source.push(features.rows(0, 10)), source.push(features.rows(10, len(features))), source.flush()]
    out = Motion.concat(parts)
    assert len(out) == len(features)
    assert np.isfinite(out.head).all()


def test_memory_is_flat_over_a_long_run():
    source = diffusion()
    source.start(np.full(52, 0.05, np.float32), FPS)
    features = extract_features(speech(2.0), FPS)
    sizes = []
    for _ in range(15):  # 30 s
        source.push(features)
        sizes.append(len(source._motion) + len(source._audio) + len(source._voiced))
    assert max(sizes[5:]) <= max(sizes[:5]) + TINY.window


def test_head_amplitude_zero_holds_the_head_still():
    out = run(diffusion(head_amplitude=0.0), extract_features(speech(1.0), FPS))
    np.testing.assert_allclose(out.head[:, :5], 0.0, atol=1e-6)


def test_checkpoint_round_trip_and_bad_files(tmp_path):
    model = random_model()
    path = tmp_path / "m.npz"
    model.save(path)
    back = MotionModel.load(path)
    assert back.config == model.config
    for k, v in model.weights.items():
        np.testing.assert_array_equal(back.weights[k], v.astype(np.float16).astype(np.float32))  # stored as float16
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(TalkingHeadError, match="not a readable motion model"):
        MotionModel.load(tmp_path / "bad.npz")
    with pytest.raises(TalkingHeadError, match="does not exist"):
        MotionModel.load(tmp_path / "missing.npz")


def synthetic_clips(count: int = 4, frames: int = 120):
    """Clips whose head nods with the loudness: something a tiny model can learn quickly."""
    from talkinghead.training.motion_data import Clip

    rng = np.random.default_rng(0)
    weights = rng.uniform(0.5, 2.0, MOTION_DIMS).astype(np.float32)
    clips = []
    for i in range(count):
        audio = np.zeros((frames, AUDIO_DIMS), np.float32)
        audio[:, 0] = (np.sin(np.arange(frames) / 6 + i) > 0).astype(np.float32)
        motion = 0.02 * rng.standard_normal((frames, MOTION_DIMS)).astype(np.float32)
        motion += audio[:, :1] * weights  # every dimension follows the loudness
        clips.append(Clip(f"c{i}", "train" if i else "validation", motion, audio, np.full(52, 0.1, np.float32), True))
    return clips


def test_tiny_training_is_deterministic_and_learns():
    pytest.importorskip("torch", reason="the train extra (torch) is not installed")
    from talkinghead.training.motion_train import CONFIGS, VALIDATION_SIGMAS, train

    config = replace(CONFIGS["tiny"], steps=80, validate_every=5)
    first, second = train(synthetic_clips(), config), train(synthetic_clips(), config)
    for k in first.weights:
        np.testing.assert_array_equal(first.weights[k], second.weights[k])
    largest = str(max(VALIDATION_SIGMAS))  # where the loss measures the data, not the unpredictable noise
    losses = [h["validation_by_sigma"][largest] for h in first.info["history"]]
    assert losses[-1] < 0.7 * losses[0], losses
    assert set(first.weights) == set(parameter_shapes(config.model))


def test_training_asks_for_a_gpu_only_where_torch_sees_one():
    torch = pytest.importorskip("torch", reason="the train extra (torch) is not installed")
    from talkinghead.training.motion_train import resolve_device

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(TalkingHeadError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(TalkingHeadError, match="sees no GPU"):
            resolve_device("cuda")


def test_training_on_a_gpu_agrees_with_the_cpu():
    torch = pytest.importorskip("torch", reason="the train extra (torch) is not installed")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU here (CI has none; the device tool's machines run it)")
    from talkinghead.training.motion_train import CONFIGS, train

    config = replace(CONFIGS["tiny"], steps=80, validate_every=20)
    on_cpu, on_gpu = train(synthetic_clips(), config), train(synthetic_clips(), config, device="cuda")
    other_seed = train(synthetic_clips(), replace(config, seed=1))
    assert on_gpu.info["device"] != "cpu"
    # The same batches and noise, other arithmetic (TF32, summation order), magnified by Adam where a gradient is
    # near zero: compare what the networks compute, against how far another seed lands.
    rng = np.random.default_rng(0)
    mc = config.model
    inputs = [rng.standard_normal(shape).astype(np.float32) for shape in
              ((8, mc.window, MOTION_DIMS), (8,), (8, mc.previous, MOTION_DIMS), (8, mc.tokens, AUDIO_DIMS),
               (8, conditioning_dims(mc) - mc.noise_features))]
    cpu, gpu, seed1 = (MotionTransformer(mc, m.weights)(*inputs) for m in (on_cpu, on_gpu, other_seed))
    assert np.linalg.norm(gpu - cpu) < 0.25 * np.linalg.norm(seed1 - cpu), (
        np.linalg.norm(gpu - cpu), np.linalg.norm(seed1 - cpu))
    cpu_losses = [h["validation"] for h in on_cpu.info["history"]]
    gpu_losses = [h["validation"] for h in on_gpu.info["history"]]
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=0.05)


def test_pipeline_runs_the_diffusion_generator_from_a_checkpoint_file(tmp_path, astronaut_pipeline_with, demo_audio):
    path = tmp_path / "tiny.npz"
    random_model(scale=0.1).save(path)
    audio = demo_audio[:16000 * 2]
    rules = list(astronaut_pipeline_with(mouth="loudness").stream([audio]))
    learned = list(astronaut_pipeline_with(mouth="loudness", generator="diffusion", motion_model=str(path)).stream([audio]))
    assert len(learned) == len(rules) == 50
    assert learned[0].shape == rules[0].shape
    assert max(np.abs(a.astype(int) - b).mean() for a, b in zip(learned, rules)) > 0.5  # the head moves otherwise


def test_a_missing_motion_model_is_one_clear_error(astronaut_pipeline_with, tmp_path):
    with pytest.raises(TalkingHeadError, match="does not exist"):
        astronaut_pipeline_with(generator="diffusion", motion_model=str(tmp_path / "nope.npz"))


def test_sample_prediction_returns_the_network_output():
    network = lambda x, c_noise, **_: np.full_like(x, 3.0)  # noqa: E731
    d = Denoiser(network, sigma_data=1.0, prediction="sample")
    np.testing.assert_allclose(d(np.zeros((1, 2, 2), np.float32), np.array([0.5], np.float32)), 3.0)


def checkpoint_without(path, key: str) -> MotionModel:
    """A random model saved to `path` as an older version wrote it: without config field `key`; loaded back."""
    import json
    random_model().save(path)
    with np.load(path) as z:
        arrays = dict(z)
    meta = json.loads(str(arrays["meta"]))
    del meta["config"][key]
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    return MotionModel.load(path)


def test_a_checkpoint_without_prediction_loads_as_edm(tmp_path):
    assert checkpoint_without(tmp_path / "old.npz", "prediction").config.prediction == "edm"


def test_short_windows_with_a_long_context_stream_too():
    model = random_model(ModelConfig(width=16, layers=1, heads=2, window=2, previous=8))
    features = extract_features(speech(1.3), FPS)
    whole = run(diffusion(model), features)
    assert len(whole) == len(features)
    assert_motion_equal(run(diffusion(model), features, chunks=[1, 1, 5, 3]), whole)


def _shard(path, seconds: float, audio_seconds: float) -> None:
    """A prepared shard (talkinghead data prepare's layout) of a steadily turning head."""
    frames = int(seconds * 25)
    times = np.arange(frames) / 25.0
    head = np.zeros((frames, 6), np.float32)
    head[:, 0] = 5 * np.sin(times)
    head[:, 5] = 1.0
    np.savez(path, times=times, found=np.ones(frames, bool), head=head, gaze=np.zeros((frames, 2), np.float32),
             expression=np.zeros((frames, 52), np.float32), blendshapes=np.full((frames, 52), 0.1, np.float32),
             audio=(np.zeros(int(audio_seconds * 16000)) + 100).astype(np.int16))


@pytest.mark.parametrize("audio_seconds", [0.0, 1.0, 4.0])
def test_a_motion_only_clip_keeps_all_its_motion_whatever_its_sound(tmp_path, audio_seconds):
    from talkinghead.training.motion_data import load_clip

    _shard(tmp_path / "clip.npz", 4.0, audio_seconds)  # no sound track, a short one, a whole one
    clip = load_clip(tmp_path / "clip.npz", {"id": "c", "split": "train", "speech_kept": "False"}, 25.0)
    assert not clip.has_audio
    assert len(clip.motion) == len(clip.audio) >= 4.0 * 25 - 2
    assert not clip.audio.any()


def test_a_checkpoint_without_head_frame_turns_its_angles_onto_the_upright_axes(tmp_path):
    from dataclasses import replace

    from talkinghead.face.expression import load_basis
    from talkinghead.face.pose import euler_to_rotation, head_rotation, upright_frame

    old = checkpoint_without(tmp_path / "old.npz", "head_frame")
    assert old.config.head_frame == "canonical"
    features = extract_features(speech(1.5), FPS)
    canonical = run(diffusion(old), features)
    upright = run(diffusion(replace(old, config=replace(old.config, head_frame="upright"))), features)
    frame = upright_frame(load_basis().mean_shape)
    for t in (0, len(features) // 2, len(features) - 1):  # the same rotation, named about other axes
        np.testing.assert_allclose(head_rotation(*canonical.head[t, :3], frame), euler_to_rotation(*upright.head[t, :3]),
                                   atol=1e-5)
    np.testing.assert_array_equal(canonical.head[:, 3:], upright.head[:, 3:])


def test_the_checkpoints_head_gain_scales_the_head_motion():
    from dataclasses import replace

    features = extract_features(speech(1.5), FPS)
    model = random_model()
    plain = run(diffusion(model), features)
    doubled = run(diffusion(replace(model, info={"head_gain": 2.0})), features)
    np.testing.assert_allclose(doubled.head[:, :5], 2 * plain.head[:, :5], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(doubled.gaze, plain.gaze)


@pytest.mark.parametrize("amplitude", [0.25, 0.5, 2.0, 3.0])
def test_head_amplitude_scales_the_generated_head_exactly(amplitude):
    """The model is conditioned at its median head whatever is asked (it hardly followed the control), and the
    amplitude scales its output: the same sample, scaled, with gaze and face untouched."""
    features = extract_features(speech(2.5), FPS)
    plain = run(diffusion(), features)
    scaled = run(diffusion(head_amplitude=amplitude), features)
    np.testing.assert_allclose(scaled.head[:, :5], amplitude * plain.head[:, :5], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(scaled.gaze, plain.gaze)
    np.testing.assert_array_equal(scaled.expression, plain.expression)


def test_head_speed_scales_the_heads_quicker_movements_and_streams():
    features = extract_features(speech(4.0), FPS)
    speed = lambda m: float(np.abs(np.diff(m.head[:, :3], axis=0)).mean())  # noqa: E731
    runs = {s: run(diffusion(head_speed=s), features) for s in (0.5, 1.0, 2.0)}
    assert speed(runs[0.5]) < 0.8 * speed(runs[1.0]) and speed(runs[2.0]) > 1.3 * speed(runs[1.0])
    for s, out in runs.items():
        np.testing.assert_array_equal(out.gaze, runs[1.0].gaze)
        assert np.isfinite(out.head).all()
        # the slow sway is kept: the heads agree once smoothed over a second
        slow = lambda m: np.convolve(m.head[:, 0], np.ones(25) / 25, mode="valid")  # noqa: E731
        assert np.abs(slow(out) - slow(runs[1.0])).max() < 0.5 * np.abs(runs[1.0].head[:, 0]).max() + 1e-6
    assert_motion_equal(run(diffusion(head_speed=0.5), features, chunks=[1, 7, 3, 20, 2, 31]), runs[0.5])


def test_pace_head_at_speed_one_is_the_window_and_keeps_a_still_head_still():
    from talkinghead.motion.learned.representation import HEAD
    from talkinghead.motion.learned.source import pace_head

    rng = np.random.default_rng(1)
    before = rng.standard_normal((9, MOTION_DIMS)).astype(np.float32)
    window = rng.standard_normal((20, MOTION_DIMS)).astype(np.float32)
    assert pace_head(window, before, 1.0) is window
    still = np.tile(window[:1], (20, 1))
    np.testing.assert_allclose(pace_head(still, np.tile(window[:1], (9, 1)), 2.0), still, atol=1e-5)
    out = pace_head(window, before, 0.5)
    np.testing.assert_array_equal(out[:, HEAD.stop:], window[:, HEAD.stop:])


def test_a_pause_is_a_long_enough_silent_run_read_up_to_the_last_frame_asked():
    from talkinghead.motion.learned.source import pausing

    voiced = np.array([1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0], bool)  # a 2-frame gap, a 5-frame pause
    np.testing.assert_array_equal(pausing(voiced, np.arange(15), 3),
                                  [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0])  # the last run: 2 frames so far
    np.testing.assert_array_equal(pausing(voiced, np.arange(15, 18), 3), [1, 1, 1])  # past the end: silence
    # a pause that has begun by the last frame asked counts once it is long enough there, whatever came later
    np.testing.assert_array_equal(pausing(voiced, np.arange(4, 8), 3), [0, 0, 0, 0])
    np.testing.assert_array_equal(pausing(voiced, np.arange(4, 9), 3), [0, 0, 1, 1, 1])
    assert not pausing(voiced, np.arange(0), 3).size


def test_settle_head_follows_the_sampled_pose_by_the_share_asked():
    from talkinghead.motion.learned.representation import HEAD
    from talkinghead.motion.learned.source import settle_head

    rng = np.random.default_rng(2)
    window = rng.standard_normal((12, MOTION_DIMS)).astype(np.float32)
    last = rng.standard_normal(len(range(*HEAD.indices(MOTION_DIMS)))).astype(np.float32)
    assert settle_head(window, last, np.ones(12)) is window
    held = settle_head(window, last, np.zeros(12))
    np.testing.assert_allclose(held[:, HEAD], np.tile(last, (12, 1)))  # follow 0 holds the pose shown before
    np.testing.assert_array_equal(held[:, HEAD.stop:], window[:, HEAD.stop:])
    half = settle_head(window, last, np.full(12, 0.5))
    np.testing.assert_allclose(half[0, HEAD], (last + window[0, HEAD]) / 2, rtol=1e-6)
    np.testing.assert_allclose(half[1:, HEAD], (half[:-1, HEAD] + window[1:, HEAD]) / 2, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(settle_head(window, None, np.zeros(12))[:, HEAD], np.tile(window[0, HEAD], (12, 1)))


def test_the_checkpoints_pause_follow_calms_the_head_in_pauses_only_and_streams():
    """speech() pauses for 0.38 s every 0.77 s: with pause_follow the head moves less in those pauses, and is
    the sampled one until the first pause; chunking and memory are as without it."""
    from talkinghead.motion.audio_rules import EnergyVoiceActivity

    audio = speech(4.0)
    features = extract_features(audio, FPS)
    model = random_model()
    plain = run(diffusion(model), features)
    settled_model = replace(model, info={"pause_follow": 0.1})
    settled = run(diffusion(settled_model), features)
    vad = EnergyVoiceActivity()
    voiced = np.array([vad.update(float(level))[0] for level in features.loudness_db])
    first_pause = int(np.flatnonzero(~voiced[5:])[0]) + 5
    np.testing.assert_array_equal(settled.head[:first_pause], plain.head[:first_pause])
    speed = lambda m, mask: float(np.abs(np.diff(m.head[:, :3], axis=0))[mask[1:]].mean())  # noqa: E731
    pause = ~voiced
    pause[:3] = False
    assert speed(settled, pause) < 0.6 * speed(plain, pause)
    assert speed(settled, voiced) > 0.6 * speed(plain, voiced)  # while talking the head still moves
    np.testing.assert_array_equal(settled.gaze, plain.gaze)
    np.testing.assert_array_equal(settled.expression, plain.expression)
    assert_motion_equal(run(diffusion(settled_model), features, chunks=[1, 7, 3, 20, 2, 31]), settled)


@pytest.mark.parametrize("release_s, ok", [(None, True), (0.001, False)])
def test_after_a_pause_the_head_catches_up_over_several_frames(monkeypatch, release_s, ok):
    """A head held almost still in pauses has fallen behind its sampled path when speech resumes: with the
    release ramp it catches up in steps no larger than the sampled head's own; without one (0.001 s) it
    jumps, which this test is there to catch."""
    import talkinghead.motion.learned.source as source

    if release_s is not None:
        monkeypatch.setattr(source, "PAUSE_RELEASE_S", release_s)
    features = extract_features(speech(6.0), FPS)
    model = random_model()
    step = lambda m: np.linalg.norm(np.diff(m.head[:, :3], axis=0), axis=1).max()  # noqa: E731
    plain = run(diffusion(model), features)
    held = run(diffusion(replace(model, info={"pause_follow": 0.02})), features)
    assert (step(held) <= 1.05 * step(plain)) == ok


def test_head_smoothing_keeps_what_came_before_and_removes_jitter():
    from talkinghead.motion.learned.representation import HEAD
    from talkinghead.motion.learned.source import smooth_head

    rng = np.random.default_rng(0)
    before = rng.standard_normal((6, MOTION_DIMS)).astype(np.float32)
    kept = before.copy()
    window = np.tile(rng.standard_normal(MOTION_DIMS).astype(np.float32), (20, 1))
    np.testing.assert_allclose(smooth_head(window, before[:0]), window, atol=1e-6)  # a still head stays still
    jittery = window + rng.standard_normal(window.shape).astype(np.float32)
    out = smooth_head(jittery, before)
    np.testing.assert_array_equal(before, kept)
    np.testing.assert_array_equal(out[:, HEAD.stop:], jittery[:, HEAD.stop:])  # gaze and face untouched
    roughness = lambda x: np.abs(np.diff(x[:, HEAD], 2, axis=0)).mean()  # noqa: E731
    assert roughness(out) < 0.3 * roughness(jittery)


SPEECH_TINY = replace(TINY, audio_features="speech", audio_dims=4)


def speech_model(seed: int = 0) -> MotionModel:
    """A random tiny model that reads the speech encoder's states on 4 random principal axes."""
    model = random_model(SPEECH_TINY, seed)
    rng = np.random.default_rng(seed + 100)
    basis, _ = np.linalg.qr(rng.standard_normal((384, 4)))
    stats = {**model.stats, "speech_mean": np.zeros(384, np.float32), "speech_basis": basis.astype(np.float32),
             "audio_mean": np.zeros(4, np.float32), "audio_std": np.ones(4, np.float32)}
    return replace(model, stats=stats)


def streamed_features(audio: np.ndarray, chunk: int) -> list:
    """AudioFeatures with their PCM, as the pipeline's FeatureStream gives them, `chunk` samples at a time."""
    from talkinghead.audio.features import FeatureStream

    stream = FeatureStream(FPS)
    return [stream.push(audio[i:i + chunk]) for i in range(0, len(audio), chunk)] + [stream.flush()]


def run_streamed(source, parts) -> Motion:
    source.start(np.full(52, 0.05, np.float32), FPS)
    return Motion.concat([source.push(p) for p in parts] + [source.flush()])


def test_a_speech_reading_model_streams_chunking_independent_and_follows_the_speech():
    audio = speech(3.1)
    whole = run_streamed(diffusion(speech_model()), streamed_features(audio, len(audio)))
    assert len(whole) == len(extract_features(audio, FPS))
    assert_motion_equal(run_streamed(diffusion(speech_model()), streamed_features(audio, 3001)), whole)
    other_speech = run_streamed(diffusion(speech_model()), streamed_features(speech(3.1, seed=2), len(audio)))
    assert np.abs(other_speech.head - whole.head).max() > 1e-3  # the states condition the motion


def test_a_speech_reading_model_without_audio_samples_is_a_clear_error():
    source = diffusion(speech_model())
    source.start(np.full(52, 0.05, np.float32), FPS)
    features = extract_features(speech(1.0), FPS)
    source.push(features.rows(0, len(features)))  # prosody rows without their PCM
    with pytest.raises(ValueError, match="no audio samples"):
        source.flush()


def test_a_speech_model_without_its_projection_does_not_load(tmp_path):
    model = speech_model()
    replace(model, stats={k: v for k, v in model.stats.items() if k != "speech_basis"}).save(tmp_path / "m.npz")
    with pytest.raises(TalkingHeadError, match="no speech projection"):
        MotionModel.load(tmp_path / "m.npz")


def test_training_rows_of_speech_states_are_the_run_time_streams(tmp_path):
    """Two paths: the states a prepared shard stores, sampled at frame centres by the training loader, and
    the speech stream DiffusionMotion runs on the same sound."""
    from talkinghead.audio.speech_encoder import SpeechFeatureStream
    from talkinghead.data.prepare import PrepareConfig, speech_states
    from talkinghead.training.motion_data import load_clip

    audio = speech(4.0)
    _shard(tmp_path / "clip.npz", 4.0, 0.0)
    with np.load(tmp_path / "clip.npz") as z:
        arrays = dict(z)
    arrays.update(audio=np.round(audio * 32768).astype(np.int16))
    arrays.update(speech_states=speech_states(arrays["audio"].astype(np.float32) / 32768.0, PrepareConfig()))
    np.savez(tmp_path / "clip.npz", **arrays)
    clip = load_clip(tmp_path / "clip.npz", {"id": "c", "split": "train", "speech_kept": "True"}, 25.0)
    stream = SpeechFeatureStream(FPS, SPEECH_TINY.speech_layer)
    run_time = np.concatenate([stream.push(arrays["audio"].astype(np.float32) / 32768.0), stream.flush()])
    assert clip.speech is not None and len(clip.speech) >= 4.0 * 25 - 2
    np.testing.assert_allclose(clip.speech, run_time[:len(clip.speech)], atol=1e-5)


def test_tiny_speech_training_fits_its_projection_on_the_training_split():
    pytest.importorskip("torch", reason="the train extra (torch) is not installed")
    from talkinghead.training.motion_train import CONFIGS, audio_inputs, train

    rng = np.random.default_rng(3)
    clips = [replace(c, speech=rng.standard_normal((len(c.motion), 384)).astype(np.float32))
             for c in synthetic_clips()]
    model_config = replace(CONFIGS["tiny"].model, audio_features="speech", audio_dims=5)
    model = train(clips, replace(CONFIGS["tiny"], model=model_config, steps=10, validate_every=5))
    assert model.stats["speech_basis"].shape == (384, 5) and model.stats["audio_mean"].shape == (5,)
    train_states = np.concatenate([c.speech for c in clips if c.split == "train"])
    np.testing.assert_allclose(model.stats["speech_mean"], train_states.mean(0), atol=1e-5)  # not the validation clip's
    with pytest.raises(TalkingHeadError, match="has none"):
        audio_inputs([replace(c, speech=None) for c in clips], model_config)


class _MouthKeepingItsStates:
    """The speech mouth without share_speech_states: the motion source must run its own encoder."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        if name == "share_speech_states":
            raise AttributeError(name)
        return getattr(self.inner, name)


def test_a_speech_reading_model_takes_the_speech_mouths_states_and_gets_what_its_own_encoder_gives():
    from talkinghead.motion.learned_mouth import LearnedMouthMotion

    audio = speech(3.1)
    shared = DiffusionMotion(speech_model(), LearnedMouthMotion(), MotionConfig(), Sampling(steps=3))
    own = DiffusionMotion(speech_model(), _MouthKeepingItsStates(LearnedMouthMotion()), MotionConfig(),
                          Sampling(steps=3))
    assert shared.shares_mouth_states and not own.shares_mouth_states
    whole = run_streamed(shared, streamed_features(audio, len(audio)))
    assert_motion_equal(run_streamed(own, streamed_features(audio, len(audio))), whole)
    assert_motion_equal(run_streamed(shared, streamed_features(audio, 2222)), whole)  # and streamed in chunks


def test_pause_calibration_finds_the_follow_that_gives_the_real_pause_ratio(tmp_path):
    """A seeded tiny model against clips whose 'real' heads move 0.3 as fast in pauses as in speech: the
    bisection's pause_follow makes the model's pooled ratio the real one."""
    pytest.importorskip("webrtcvad")
    from talkinghead.evaluation.variants import parse_variant
    from talkinghead.evaluation.voice import voiced_frames

    calibration = load_script("scripts/calibrate_motion.py")
    clips = []
    for seed in range(2):
        audio = speech(6.0, seed)
        frames = int(6.0 * FPS)
        voiced = voiced_frames(audio, FPS, frames)
        steps = np.random.default_rng(seed).standard_normal((frames, 3)) * np.where(voiced, 1.0, 0.3)[:, None]
        vectors = np.zeros((frames, MOTION_DIMS), np.float32)
        vectors[:, :3] = np.cumsum(steps, axis=0)
        clips.append({"name": f"c{seed}", "vectors": vectors, "rest": np.full(52, 0.05, np.float32),
                      "fps": float(FPS), "audio": audio})
    model = random_model()
    found = calibration.calibrate_pause_follow(parse_variant("t:motion.generator=diffusion"), model, clips, 1,
                                               tmp_path)
    assert found["real_pause_ratio"] == pytest.approx(0.3, abs=0.1)
    assert found["unsettled_pause_ratio"] > found["real_pause_ratio"] + 0.2  # the random model does not settle
    assert found["pause_follow"] < 1.0
    assert found["model_pause_ratio"] == pytest.approx(found["real_pause_ratio"], abs=0.05)
