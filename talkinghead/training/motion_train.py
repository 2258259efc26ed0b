"""Train the motion model (EDM noise levels, Karras et al. 2022) on prepared shards; write a NumPy checkpoint.

    python -m talkinghead train motion --data build/train --config cpu --out motion_model.npz

One step: B random windows of previous + window frames -> standardise -> drop conditions at random
(classifier-free guidance) -> noise the window at sigma ~ logN(P_MEAN, P_STD) -> the network
predicts the clean window (ModelConfig.prediction) -> weighted MSE (denoiser.loss_weights). Mirrored copies (left <-> right) double the little data there is.
Seeded: the same data, config and seed give the same checkpoint on the same machine.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from ..errors import TalkingHeadError
from ..face import landmarks as L
from ..motion.learned.checkpoint import ModelConfig, MotionModel
from ..motion.learned.denoiser import loss_weights, scalings
from ..motion.learned.network import conditioning_input
from ..motion.learned.representation import (AUDIO_FEATURES, EXPRESSION, GAZE, HEAD, SPEECH_COMPONENTS,
                                             fit_speech_projection, speech_vectors, standardised_rest)
from ..motion.mixer import REGION_INDEX
from .cli import DEVICES  # where training runs (resolve_device); the CLI's choices, kept free of torch
from .motion_data import Clip, WindowSampler, statistics
from .motion_network import MotionTransformerTorch, export_weights

PROGRESS_LOSS_EVERY = 20  # steps between the progress bar's loss readings
P_MEAN, P_STD = -1.2, 1.2  # EDM's training noise distribution (log-normal sigma)
MIRRORED_HEAD = np.array([-1, 1, -1, -1, 1, 1], np.float32)  # yaw, roll and tx change sign in a mirror
MIRRORED_EXPRESSION = np.array([L.BLENDSHAPE_INDEX[n.replace("Left", "#").replace("Right", "Left").replace("#", "Right")]
                                for n in L.BLENDSHAPE_NAMES])  # Left and Right swap places


@dataclass(frozen=True)
class TrainConfig:
    """A training run; `model` is stored in the checkpoint, the rest in its info."""

    model: ModelConfig = field(default_factory=ModelConfig)
    steps: int = 4000
    batch: int = 32
    learning_rate: float = 5e-4
    weight_decay: float = 0.01
    warmup_steps: int = 200
    ema_decay: float = 0.999
    dropout: float = 0.1  # after attention and MLP, in training only (little data)
    drop_audio: float = 0.2  # condition dropout: share of windows trained without audio
    drop_controls: float = 0.3
    drop_previous: float = 0.1  # trains the first window of a clip (no motion before it)
    drop_rest: float = 0.3  # rest expression replaced by the training mean: with a few dozen speakers the
    # model must not tie a style to one face
    mirror: float = 0.5
    head_weight: float = 2.0  # loss weight of the head and gaze dimensions (the rest of the face: 1)
    mouth_weight: float = 0.0  # the mouth dimensions: the mouth comes from the speech model at inference
    seed: int = 0
    validate_every: int = 250


CONFIGS = {
    # CI: trains in seconds, tests shapes, determinism and that the loss falls
    "tiny": TrainConfig(ModelConfig(width=32, layers=1, heads=2, window=8, previous=4), steps=60, batch=8,
                        learning_rate=3e-3, warmup_steps=5, ema_decay=0.9, validate_every=40),
    # this 2-core machine, 7-9 minutes: 2 s windows for offline generation
    "cpu": TrainConfig(ModelConfig(width=128, layers=4, heads=4, window=50, previous=10), steps=4000, batch=32),
    # the cpu config reading the speech encoder's states instead of prosody
    "cpu_speech": TrainConfig(ModelConfig(width=128, layers=4, heads=4, window=50, previous=10,
                                          audio_features="speech", audio_dims=SPEECH_COMPONENTS), steps=4000, batch=32),
    # live sessions: 2-frame (80 ms) windows after 24 frames of context
    "cpu_causal": TrainConfig(ModelConfig(width=128, layers=4, heads=4, window=2, previous=24), steps=2500,
                              batch=64),
    # an accelerator and hours of video (IMTalker's size: 8 layers of width 512)
    "gpu": TrainConfig(ModelConfig(width=512, layers=8, heads=8, window=50, previous=10), steps=100_000, batch=256,
                       learning_rate=2e-4, warmup_steps=2000, ema_decay=0.9999, validate_every=2000),
}


def mirror(batch: dict[str, np.ndarray], rows: np.ndarray) -> None:
    """Mirror the motion and rest of `rows` in place (the audio is unchanged)."""
    m = batch["motion"][rows]
    m[..., HEAD] *= MIRRORED_HEAD
    m[..., GAZE.start] *= -1
    m[..., EXPRESSION] = m[..., EXPRESSION][..., MIRRORED_EXPRESSION]
    batch["motion"][rows] = m
    batch["rest"][rows] = batch["rest"][rows][:, MIRRORED_EXPRESSION]


def standardised(batch: dict[str, np.ndarray], stats: dict[str, np.ndarray], config: TrainConfig,
                 rng: np.random.Generator | None) -> dict[str, torch.Tensor]:
    """A raw batch -> the network's inputs (previous, audio, conditioning) and the clean window."""
    p = config.model.previous
    b = len(batch["motion"])
    motion = (batch["motion"] - stats["motion_mean"]) / stats["motion_std"]
    audio = (batch["audio"] - stats["audio_mean"]) / stats["audio_std"]
    rest = np.stack([standardised_rest(r, stats) for r in batch["rest"]])
    if rng is not None:
        rest *= (rng.random(b) >= config.drop_rest)[:, None]
    controls = (batch["controls"] - stats["control_median"]) / stats["control_std"]
    has_audio = batch["has_audio"].copy()
    has_controls, has_previous = np.ones(b, np.float32), np.ones(b, np.float32)
    if rng is not None:
        has_audio *= rng.random(b) >= config.drop_audio
        has_controls *= rng.random(b) >= config.drop_controls
        has_previous *= rng.random(b) >= config.drop_previous
    audio = audio * has_audio[:, None, None]
    controls = controls * has_controls[:, None]
    previous = motion[:, :p] * has_previous[:, None, None]
    conditioning = conditioning_input(rest, controls, has_audio, has_controls, has_previous)
    return {"window": _tensor(motion[:, p:]), "previous": _tensor(previous), "audio": _tensor(audio),
            "conditioning": _tensor(conditioning)}


def audio_inputs(clips: list[Clip], model: ModelConfig) -> tuple[list[Clip], dict[str, np.ndarray]]:
    """The clips with the audio vectors `model` reads, and what the checkpoint needs to make them at run
    time: prosody as loaded (nothing); for a "speech" model, the speech states on principal axes fitted
    to the training split's speech (zeros where a clip has no usable speech: its audio is marked absent)."""
    if model.audio_features == "prosody":
        return clips, {}
    if model.audio_features != "speech":
        raise TalkingHeadError(f"unknown audio_features '{model.audio_features}': use one of {', '.join(AUDIO_FEATURES)}")
    speaking = [c for c in clips if c.has_audio]
    if any(c.speech is None for c in speaking):
        raise TalkingHeadError("this config reads speech states, and the prepared data has none: prepare it again "
                               "with this version (`talkinghead data prepare`)")
    fitted = [c.speech for c in speaking if c.split == "train"] or [c.speech for c in speaking]
    if not fitted:
        raise TalkingHeadError("this config reads speech states, and no prepared clip has usable speech")
    projection = fit_speech_projection(np.concatenate(fitted), model.audio_dims)
    out = [replace(c, audio=speech_vectors(c.speech, projection) if c.has_audio
                   else np.zeros((len(c.motion), model.audio_dims), np.float32)) for c in clips]
    return out, projection


def _tensor(array) -> torch.Tensor:
    """A float32 torch tensor of a NumPy array (or scalars)."""
    return torch.from_numpy(np.ascontiguousarray(array, np.float32))


def dimension_weights(config: TrainConfig) -> torch.Tensor:
    """(MOTION_DIMS,) loss weight of each motion dimension, mean 1 (TrainConfig.head_weight, mouth_weight)."""
    weights = np.ones(config.model.motion_dims, np.float32)
    weights[HEAD] = weights[GAZE] = config.head_weight
    weights[EXPRESSION.start + REGION_INDEX["mouth"]] = config.mouth_weight
    return torch.from_numpy(weights / weights.mean())


def denoising_loss(net: torch.nn.Module, inputs: dict[str, torch.Tensor], sigma: torch.Tensor, noise: torch.Tensor,
                   model: ModelConfig, dims: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted ||D(clean + sigma n) - clean||^2 (denoiser.loss_weights per noise level, `dims` per
    dimension; for EDM, the F-space MSE)."""
    levels = sigma.cpu().numpy()
    c_skip, c_out, c_in, c_noise = (_tensor(v).to(sigma.device)
                                    for v in scalings(levels, model.sigma_data, model.prediction))
    weight = _tensor(loss_weights(levels, model.sigma_data, model.prediction)).to(sigma.device)
    clean = inputs["window"]
    noisy = clean + sigma[:, None, None] * noise
    f = net(noisy * c_in[:, None, None], c_noise, inputs["previous"], inputs["audio"], inputs["conditioning"])
    denoised = c_skip[:, None, None] * noisy + c_out[:, None, None] * f
    error = weight[:, None, None] * (denoised - clean) ** 2
    return (error * dims).mean() if dims is not None else error.mean()


VALIDATION_SIGMAS = (0.05, 0.2, 0.5, 1.0, 2.0)  # fixed noise levels of the validation loss
VALIDATION_WINDOWS = 64


def validation_losses(net, batch: dict[str, np.ndarray], stats, config: TrainConfig, device: str = "cpu") -> list[float]:
    """Loss at each of VALIDATION_SIGMAS on a fixed batch (all conditions given, fixed noise). At small
    sigma the target is mostly the noise itself (a floor near 1); large sigma shows what was learnt."""
    inputs = _on(standardised(batch, stats, config, rng=None), device)
    generator = torch.Generator().manual_seed(1234)  # drawn on the CPU: the same noise on any device
    dims = dimension_weights(config).to(device)
    losses = []
    with torch.no_grad():
        for s in VALIDATION_SIGMAS:
            noise = torch.randn(inputs["window"].shape, generator=generator).to(device)
            sigma = torch.full((len(noise),), s, device=device)
            losses.append(float(denoising_loss(net, inputs, sigma, noise, config.model, dims)))
    return losses


def _on(tensors: dict[str, torch.Tensor], device: str) -> dict[str, torch.Tensor]:
    """The same tensors on `device` (no copy where they already are)."""
    return {k: v.to(device) for k, v in tensors.items()}


def resolve_device(name: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; 'cpu' / 'cuda' as asked (TalkingHeadError if there is none)."""
    if name not in DEVICES:
        raise TalkingHeadError(f"unknown device '{name}': use one of {', '.join(DEVICES)}")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise TalkingHeadError("--device cuda: this torch sees no GPU (the `train` extra installs the CPU build): "
                               "use --device cpu, or install a CUDA build of torch")
    return name


def _learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to a tenth."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(config.steps - config.warmup_steps, 1)
    return config.learning_rate * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * progress)))


def train(clips: list[Clip], config: TrainConfig, progress=None, device: str = "cpu") -> MotionModel:
    """Train on the clips whose split is 'train' (validation on the others); returns the EMA model.

    `device` is where the network runs ('cpu' or 'cuda'; see resolve_device). Batches, noise levels and
    noise are drawn by NumPy on the CPU either way, so a GPU run sees the same data; its arithmetic
    differs in the last bits, so only a CPU run is reproduced bit for bit."""
    if device == "cuda":  # TF32 matrix products: several times fp32's speed, and noise far below the data's
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    mc = config.model
    clips, projection = audio_inputs(clips, mc)
    train_clips = [c for c in clips if c.split == "train"] or clips
    held_out = [c for c in clips if c.split != "train"]
    stats = {**statistics(train_clips, mc.previous, mc.window), **projection}
    sampler = WindowSampler(train_clips, mc.previous, mc.window, config.seed)
    validation = WindowSampler(held_out or train_clips, mc.previous, mc.window, config.seed + 1).batch(VALIDATION_WINDOWS)
    net = MotionTransformerTorch(mc, config.dropout).to(device)
    ema = MotionTransformerTorch(mc).to(device).eval()
    ema.load_state_dict(net.state_dict())
    optimiser = torch.optim.AdamW(net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    history, started = [], time.perf_counter()
    dims = dimension_weights(config).to(device)
    for step in range(config.steps):
        batch = sampler.batch(config.batch)
        mirror(batch, rng.random(config.batch) < config.mirror)
        inputs = _on(standardised(batch, stats, config, rng), device)
        sigma = _tensor(np.exp(P_MEAN + P_STD * rng.standard_normal(config.batch))).to(device)
        noise = _tensor(rng.standard_normal(inputs["window"].shape)).to(device)
        for group in optimiser.param_groups:
            group["lr"] = _learning_rate(config, step)
        loss = denoising_loss(net, inputs, sigma, noise, mc, dims)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimiser.step()
        with torch.no_grad():
            for e, p in zip(ema.parameters(), net.parameters()):
                e.lerp_(p, 1 - config.ema_decay)
        if (step + 1) % config.validate_every == 0 or step + 1 == config.steps:
            by_sigma = validation_losses(ema, validation, stats, config, device)
            history.append({"step": step + 1, "train": loss.item(), "validation": float(np.mean(by_sigma)),
                            "validation_by_sigma": dict(zip(map(str, VALIDATION_SIGMAS), by_sigma))})
        if progress:
            if step % PROGRESS_LOSS_EVERY == 0 or step + 1 == config.steps:
                shown = loss.item()  # reading the loss waits for the device, so not at every step
            progress(step + 1, shown)
    info = {"train_config": {k: v for k, v in asdict(config).items() if k != "model"}, "history": history,
            "clips": [c.name for c in train_clips], "validation_clips": [c.name for c in held_out],
            "train_frames": int(sum(len(c.motion) for c in train_clips)),
            "seconds": round(time.perf_counter() - started, 1), "torch": torch.__version__,
            "device": torch.cuda.get_device_name(device) if device == "cuda" else "cpu"}
    return MotionModel(mc, export_weights(ema), stats, info)


def with_overrides(config: TrainConfig, steps: int | None, seed: int | None) -> TrainConfig:
    """A named config with --steps / --seed applied."""
    return replace(config, **{k: v for k, v in (("steps", steps), ("seed", seed)) if v is not None})
