"""The motion transformer's forward pass in NumPy (no torch at inference).

It knows nothing of noise schedules (k-diffusion's split): it maps a noisy window, the clean
previous frames, per-frame audio features and a global conditioning vector to an output of the
window's shape. `training/motion_network.py` is the same network in torch; a test checks they agree.

    tokens = [previous frames (P) | window frames (W)]                          # (B, P+W, H)
      previous: in_previous(prev)   window: in_motion(x)
      + in_audio(audio) + position + cond_mlp([noise Fourier features, rest, controls, flags])
    -> + a depthwise temporal convolution (conv_kernel frames, zero padded): neighbouring frames are
       mixed from the first step of training, so smooth motion is learnt quickly from little data
    -> `layers` pre-LayerNorm transformer blocks (bidirectional attention, GELU MLP)
    -> out(LayerNorm(tokens))[:, P:]                                             # (B, W, D)
"""

from __future__ import annotations

import numpy as np

from .checkpoint import ModelConfig

LAYER_NORM_EPS = 1e-5
FLAG_NAMES = ("has_audio", "has_controls", "has_previous")  # condition-dropout flags (1 = given)


def noise_frequencies(count: int) -> np.ndarray:
    """Fixed angular frequencies of the noise level's Fourier features (count // 2 of them)."""
    return (np.pi * 2.0 ** (np.arange(count // 2) / 2.0)).astype(np.float32)


def noise_features(c_noise: np.ndarray, count: int) -> np.ndarray:
    """(B,) noise levels -> (B, count) cos/sin features."""
    angles = np.asarray(c_noise, np.float32)[:, None] * noise_frequencies(count)[None]
    return np.concatenate([np.cos(angles), np.sin(angles)], axis=1)


def conditioning_dims(config: ModelConfig) -> int:
    """Width of the global conditioning input: noise features, rest, controls, flags."""
    return config.noise_features + config.rest_dims + config.control_dims + len(FLAG_NAMES)


def conditioning_input(rest: np.ndarray, controls: np.ndarray, has_audio: np.ndarray, has_controls: np.ndarray,
                       has_previous: np.ndarray) -> np.ndarray:
    """The global conditioning the network reads besides the noise level: standardised rest (B, rest_dims),
    standardised controls (B, control_dims) and the FLAG_NAMES flags (B,) each -> (B, conditioning_dims - noise)."""
    flags = np.stack([has_audio, has_controls, has_previous], axis=1).astype(np.float32)
    return np.concatenate([rest, controls, flags], axis=1).astype(np.float32)


def parameter_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every weight's name and shape (linear weights (in, out)): the checkpoint's layout."""
    c, h = config, config.width
    shapes = {"cond1.weight": (conditioning_dims(c), h), "cond1.bias": (h,), "cond2.weight": (h, h), "cond2.bias": (h,),
              "in_previous.weight": (c.motion_dims, h), "in_previous.bias": (h,),
              "in_motion.weight": (c.motion_dims, h), "in_motion.bias": (h,),
              "in_audio.weight": (c.audio_dims, h), "in_audio.bias": (h,), "position": (c.tokens, h),
              "ln_out.weight": (h,), "ln_out.bias": (h,), "out.weight": (h, c.motion_dims), "out.bias": (c.motion_dims,)}
    if c.conv_kernel:
        shapes.update({"conv.weight": (h, c.conv_kernel), "conv.bias": (h,)})
    for i in range(c.layers):
        block = {"ln1.weight": (h,), "ln1.bias": (h,), "qkv.weight": (h, 3 * h), "qkv.bias": (3 * h,),
                 "proj.weight": (h, h), "proj.bias": (h,), "ln2.weight": (h,), "ln2.bias": (h,),
                 "mlp1.weight": (h, c.mlp_ratio * h), "mlp1.bias": (c.mlp_ratio * h,),
                 "mlp2.weight": (c.mlp_ratio * h, h), "mlp2.bias": (h,)}
        shapes.update({f"blocks.{i}.{k}": v for k, v in block.items()})
    return shapes


def temporal_convolution(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Depthwise convolution over time, zero padded to the same length (torch Conv1d, groups=channels).
    x (B, T, H), weight (H, K), bias (H,)."""
    k = weight.shape[1]
    padded = np.pad(x, ((0, 0), (k // 2, k - 1 - k // 2), (0, 0)))
    out = np.zeros_like(x)
    for j in range(k):
        out += padded[:, j:j + x.shape[1]] * weight[:, j]
    return out + bias


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """LayerNorm over the last axis."""
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + LAYER_NORM_EPS) * weight + bias


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU, tanh approximation (torch's approximate='tanh')."""
    inner = x * x
    inner *= 0.044715
    inner += 1.0
    inner *= x
    inner *= 0.7978845608028654  # sqrt(2 / pi)
    return 0.5 * x * (1.0 + np.tanh(inner, out=inner))


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis."""
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


class MotionTransformer:
    """Forward pass with weights from a checkpoint (linear weights stored (in, out))."""

    def __init__(self, config: ModelConfig, weights: dict[str, np.ndarray]):
        self.config = config
        self.w = {k: np.asarray(v, np.float32) for k, v in weights.items()}

    def _linear(self, name: str, x: np.ndarray) -> np.ndarray:
        return x @ self.w[f"{name}.weight"] + self.w[f"{name}.bias"]

    def __call__(self, x: np.ndarray, c_noise: np.ndarray, previous: np.ndarray, audio: np.ndarray,
                 conditioning: np.ndarray) -> np.ndarray:
        """x (B, W, D) scaled noisy window, c_noise (B,), previous (B, P, D), audio (B, P+W, A),
        conditioning (B, rest + controls + flags) -> (B, W, D)."""
        cfg = self.config
        g = np.concatenate([noise_features(c_noise, cfg.noise_features), conditioning], axis=1)
        g = self._linear("cond2", gelu(self._linear("cond1", g)))  # (B, H)
        tokens = np.concatenate([self._linear("in_previous", previous), self._linear("in_motion", x)], axis=1)
        tokens = tokens + self._linear("in_audio", audio) + self.w["position"][None, :tokens.shape[1]] + g[:, None]
        if cfg.conv_kernel:
            tokens = tokens + temporal_convolution(tokens, self.w["conv.weight"], self.w["conv.bias"])
        for i in range(cfg.layers):
            tokens = tokens + self._attention(i, layer_norm(tokens, self.w[f"blocks.{i}.ln1.weight"],
                                                            self.w[f"blocks.{i}.ln1.bias"]))
            h = layer_norm(tokens, self.w[f"blocks.{i}.ln2.weight"], self.w[f"blocks.{i}.ln2.bias"])
            tokens = tokens + self._linear(f"blocks.{i}.mlp2", gelu(self._linear(f"blocks.{i}.mlp1", h)))
        out = layer_norm(tokens, self.w["ln_out.weight"], self.w["ln_out.bias"])
        return self._linear("out", out)[:, cfg.previous:]

    def _attention(self, i: int, h: np.ndarray) -> np.ndarray:
        """Multi-head self-attention of block i over all tokens."""
        b, t, width = h.shape
        heads = self.config.heads
        qkv = self._linear(f"blocks.{i}.qkv", h).reshape(b, t, 3, heads, width // heads)
        q, k, v = (qkv[:, :, j].transpose(0, 2, 1, 3) for j in range(3))  # (B, nh, T, hs)
        weights = softmax(q @ k.transpose(0, 1, 3, 2) * float((width // heads) ** -0.5))
        return self._linear(f"blocks.{i}.proj", (weights @ v).transpose(0, 2, 1, 3).reshape(b, t, width))
