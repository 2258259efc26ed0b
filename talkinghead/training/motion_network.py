"""The motion transformer in torch, for training; parameter names and maths match
`motion/learned/network.py` (NumPy), which runs it at inference. `export_weights` converts."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..motion.learned.checkpoint import ModelConfig
from ..motion.learned.network import LAYER_NORM_EPS, conditioning_dims, noise_frequencies


class Block(nn.Module):
    """Pre-LayerNorm transformer block: self-attention, then a GELU MLP."""

    def __init__(self, width: int, heads: int, mlp_ratio: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.dropout = nn.Dropout(dropout)
        self.ln1 = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.ln2 = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.mlp1 = nn.Linear(width, mlp_ratio * width)
        self.mlp2 = nn.Linear(mlp_ratio * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, width = x.shape
        qkv = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, width // self.heads)
        q, k, v = (qkv[:, :, j].transpose(1, 2) for j in range(3))  # (B, nh, T, hs)
        attended = nn.functional.scaled_dot_product_attention(q, k, v)
        x = x + self.dropout(self.proj(attended.transpose(1, 2).reshape(b, t, width)))
        return x + self.dropout(self.mlp2(nn.functional.gelu(self.mlp1(self.ln2(x)), approximate="tanh")))


class MotionTransformerTorch(nn.Module):
    """Same inputs and output as network.MotionTransformer (dropout only while training)."""

    def __init__(self, config: ModelConfig, dropout: float = 0.0):
        super().__init__()
        c = config
        self.config = c
        self.register_buffer("frequencies", torch.from_numpy(noise_frequencies(c.noise_features)), persistent=False)
        self.cond1 = nn.Linear(conditioning_dims(c), c.width)
        self.cond2 = nn.Linear(c.width, c.width)
        self.in_previous = nn.Linear(c.motion_dims, c.width)
        self.in_motion = nn.Linear(c.motion_dims, c.width)
        self.in_audio = nn.Linear(c.audio_dims, c.width)
        self.position = nn.Parameter(torch.randn(c.tokens, c.width) * 0.02)
        k = c.conv_kernel
        self.conv = nn.Conv1d(c.width, c.width, k, padding=(k // 2, k - 1 - k // 2)[0], groups=c.width) if k else None
        self.blocks = nn.ModuleList(Block(c.width, c.heads, c.mlp_ratio, dropout) for _ in range(c.layers))
        self.ln_out = nn.LayerNorm(c.width, eps=LAYER_NORM_EPS)
        self.out = nn.Linear(c.width, c.motion_dims)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x, c_noise, previous, audio, conditioning):
        angles = c_noise[:, None] * self.frequencies[None]
        g = torch.cat([torch.cos(angles), torch.sin(angles), conditioning], dim=1)
        g = self.cond2(nn.functional.gelu(self.cond1(g), approximate="tanh"))
        tokens = torch.cat([self.in_previous(previous), self.in_motion(x)], dim=1)
        tokens = tokens + self.in_audio(audio) + self.position[None, :tokens.shape[1]] + g[:, None]
        if self.conv is not None:
            tokens = tokens + self.conv(tokens.transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            tokens = block(tokens)
        return self.out(self.ln_out(tokens))[:, self.config.previous:]


def export_weights(model: nn.Module) -> dict[str, np.ndarray]:
    """state_dict -> NumPy weights (linear weights transposed to (in, out))."""
    out = {}
    for name, tensor in model.state_dict().items():
        array = tensor.detach().cpu().numpy().astype(np.float32)
        if name == "conv.weight":
            out[name] = array[:, 0, :].copy()  # (H, 1, K) -> (H, K)
            continue
        is_linear = name.endswith(".weight") and array.ndim == 2
        out[name] = array.T.copy() if is_linear else array
    return out
