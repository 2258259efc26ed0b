"""Preconditioning around the network, and classifier-free guidance (k-diffusion's wrapper layer).

Karras et al. 2022 (EDM), Table 1: D(x; sigma) = c_skip x + c_out F(c_in x; c_noise) with
c_in = 1 / sqrt(sigma^2 + sd^2), c_noise = log(sigma) / 4 and, by what the network predicts:
- "edm": c_skip = sd^2 / (sigma^2 + sd^2), c_out = sigma sd / sqrt(sigma^2 + sd^2);
- "sample": c_skip = 0, c_out = 1: F is the clean sample itself (Tevet et al. 2023, MDM, predict motion
  rather than noise), trained with Min-SNR weights (Hang et al. 2023).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

# network(x, c_noise, **condition) -> F
Network = Callable[..., np.ndarray]


PREDICTIONS = ("sample", "edm")
MIN_SNR_GAMMA = 5.0  # Min-SNR-5 loss weights for "sample" prediction


def scalings(sigma: np.ndarray, sigma_data: float, prediction: str = "edm") -> tuple[np.ndarray, ...]:
    """(c_skip, c_out, c_in, c_noise) for noise levels sigma (B,) (see module docstring)."""
    sigma = np.asarray(sigma, np.float32)
    total = sigma ** 2 + sigma_data ** 2
    c_in, c_noise = 1 / np.sqrt(total), np.log(sigma) / 4
    if prediction == "sample":
        return np.zeros_like(sigma), np.ones_like(sigma), c_in, c_noise
    return sigma_data ** 2 / total, sigma * sigma_data / np.sqrt(total), c_in, c_noise


def loss_weights(sigma: np.ndarray, sigma_data: float, prediction: str = "edm") -> np.ndarray:
    """Weights of the squared denoising error ||D - clean||^2: EDM's 1 / c_out^2 (unit-weighted F), or
    Min-SNR-gamma, min(SNR, gamma) with SNR = sd^2 / sigma^2, for "sample"."""
    sigma = np.asarray(sigma, np.float32)
    if prediction == "sample":
        return np.minimum(sigma_data ** 2 / sigma ** 2, MIN_SNR_GAMMA)
    return 1 / scalings(sigma, sigma_data, prediction)[1] ** 2


class Denoiser:
    """D(x, sigma, **condition): the network's output turned into a denoised estimate."""

    def __init__(self, network: Network, sigma_data: float, prediction: str = "edm"):
        self.network = network
        self.sigma_data = sigma_data
        self.prediction = prediction

    def __call__(self, x: np.ndarray, sigma: np.ndarray, **condition) -> np.ndarray:
        """x (B, W, D) noisy, sigma (B,) -> (B, W, D) denoised."""
        c_skip, c_out, c_in, c_noise = scalings(sigma, self.sigma_data, self.prediction)
        f = self.network(x * c_in[:, None, None], c_noise, **condition)
        return c_skip[:, None, None] * x + c_out[:, None, None] * f


def guided(denoiser: Callable[..., np.ndarray], conditioned: dict, unconditioned: dict, scale: float,
           more: Sequence[tuple[dict, float]] = ()) -> Callable[..., np.ndarray]:
    """Classifier-free guidance (Ho & Salimans 2022): D_u + scale (D_c - D_u), both in one batch.

    `conditioned` and `unconditioned` are the condition keyword arguments of each branch; scale 1 is
    the conditioned model alone (one network call). `more` adds (branch, scale) pairs, each leaving out
    another condition, guided separately as in InstructPix2Pix (Brooks et al. 2023):
    D_c + sum_i (scale_i - 1) (D_c - D_i), all branches in one batch; a branch at scale 1 is not run, and
    with a single branch left this is the expression above, to the bit."""
    branches = [(b, s) for b, s in [(unconditioned, scale), *more] if s != 1.0]
    if not branches:
        return lambda x, sigma: denoiser(x, sigma, **conditioned)
    n = len(branches) + 1

    def model(x: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        both = {k: np.concatenate([conditioned[k]] + [b[k] for b, _ in branches]) for k in conditioned}
        d = denoiser(np.concatenate([x] * n), np.concatenate([sigma] * n), **both)
        d_cond = d[:len(x)]
        if n == 2:
            d_uncond = d[len(x):]
            return d_uncond + branches[0][1] * (d_cond - d_uncond)
        out = d_cond.copy()
        for i, (_, s) in enumerate(branches, 1):
            out += (s - 1) * (d_cond - d[i * len(x):(i + 1) * len(x)])
        return out

    return model
