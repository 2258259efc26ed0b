"""Samplers: pure functions `sample_x(model, x, sigmas, noise=None)`, as in k-diffusion.

`model(x, sigma)` returns the denoised estimate; `sigmas` is the decreasing noise schedule ending in 0;
`x` starts as noise at sigmas[0]; `noise(i)` supplies fresh noise for stochastic samplers.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

Model = Callable[[np.ndarray, np.ndarray], np.ndarray]
SAMPLERS = ("euler", "heun", "dpmpp_2m")
KARRAS_RHO = 7.0


def karras_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float = KARRAS_RHO) -> np.ndarray:
    """The noise schedule of Karras et al. 2022, eq. 5, with a final 0 (steps + 1 values)."""
    ramp = np.linspace(0, 1, steps)
    inv_min, inv_max = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (inv_max + ramp * (inv_min - inv_max)) ** rho
    return np.append(sigmas, 0.0).astype(np.float32)


def _batch(sigma: float, x: np.ndarray) -> np.ndarray:
    return np.full(len(x), sigma, np.float32)


def sample_euler(model: Model, x: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """Euler's method on the probability-flow ODE (Karras et al. 2022, Algorithm 1 without the Heun step)."""
    for i in range(len(sigmas) - 1):
        denoised = model(x, _batch(sigmas[i], x))
        x = x + (x - denoised) / sigmas[i] * (sigmas[i + 1] - sigmas[i])
    return x


def sample_heun(model: Model, x: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """Heun's second-order method (Karras et al. 2022, Algorithm 1); the last step is Euler."""
    for i in range(len(sigmas) - 1):
        denoised = model(x, _batch(sigmas[i], x))
        d = (x - denoised) / sigmas[i]
        dt = sigmas[i + 1] - sigmas[i]
        if sigmas[i + 1] == 0:
            x = x + d * dt
        else:
            x_next = x + d * dt
            d_next = (x_next - model(x_next, _batch(sigmas[i + 1], x))) / sigmas[i + 1]
            x = x + (d + d_next) / 2 * dt
    return x


def sample_dpmpp_2m(model: Model, x: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2), in k-diffusion's sigma parameterisation."""
    old_denoised = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, _batch(sigmas[i], x))
        if sigmas[i + 1] == 0:
            x = denoised
            break
        t, t_next = -np.log(sigmas[i]), -np.log(sigmas[i + 1])
        h = t_next - t
        if old_denoised is None:
            update = denoised
        else:
            r = (t - (-np.log(sigmas[i - 1]))) / h
            update = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
        x = (sigmas[i + 1] / sigmas[i]) * x - np.expm1(-h) * update
        old_denoised = denoised
    return x


def sampler(name: str) -> Callable[[Model, np.ndarray, np.ndarray], np.ndarray]:
    """The sampler called `name` (one of SAMPLERS)."""
    return {"euler": sample_euler, "heun": sample_heun, "dpmpp_2m": sample_dpmpp_2m}[name]
