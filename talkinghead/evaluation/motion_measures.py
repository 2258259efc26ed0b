"""Motion measures beside the lip-sync ones (issue: learned motion): how real the head and face move.

- Window statistics: per 2 s window (1 s hop) of re-tracked video, the spread and the speed of yaw,
  pitch and roll, and of four expression signals (blink, brows, squint, mouth opening).
- Motion Fréchet distance: the Fréchet distance between the Gaussians of generated and real window
  statistics, pooled over clips (as FID/FVD do with network features; here hand-made features, so
  read it as a comparison between systems on the same clips, not an absolute score).
- Audio-motion alignment (CAPP-like): over 3 s windows (1 s hop), the correlation between the
  head's mean angular speed and the speech's mean amplitude; the real video's value is the target.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from ..face import landmarks as L

STATS_WINDOW_S, STATS_HOP_S = 2.0, 1.0
ALIGNMENT_WINDOW_S, ALIGNMENT_HOP_S = 3.0, 1.0
EXPRESSION_SIGNALS = {  # name -> blendshapes averaged
    "blink": ("eyeBlinkLeft", "eyeBlinkRight"),
    "brows": ("browInnerUp", "browOuterUpLeft", "browOuterUpRight"),
    "squint": ("eyeSquintLeft", "eyeSquintRight"),
    "mouth": ("jawOpen",),
}
STATISTICS = tuple(f"{s}_{k}" for k in ("spread", "speed")
                   for s in ("yaw", "pitch", "roll", *EXPRESSION_SIGNALS))
LOG_FLOOR = 1e-3  # spreads and speeds are compared as logs


def _windows(frames: int, fps: float, window_s: float, hop_s: float) -> list[slice]:
    size, hop = int(round(window_s * fps)), max(1, int(round(hop_s * fps)))
    return [slice(start, start + size) for start in range(0, frames - size + 1, hop)]


def expression_signals(blendshapes: np.ndarray) -> np.ndarray:
    """(T, 52) -> (T, len(EXPRESSION_SIGNALS))."""
    return np.stack([blendshapes[:, [L.BLENDSHAPE_INDEX[n] for n in names]].mean(1)
                     for names in EXPRESSION_SIGNALS.values()], axis=1)


def window_statistics(rotations: np.ndarray, blendshapes: np.ndarray, fps: float) -> np.ndarray:
    """Re-tracked (T, 3) head angles (degrees) and (T, 52) blendshapes -> (windows, len(STATISTICS)) log
    spreads and log mean speeds (per second); windows with a missing face are skipped."""
    signals = np.concatenate([rotations, expression_signals(blendshapes)], axis=1)
    rows = []
    for w in _windows(len(signals), fps, STATS_WINDOW_S, STATS_HOP_S):
        part = signals[w]
        if not np.isfinite(part).all():
            continue
        spread = part.std(0)
        speed = np.abs(np.diff(part, axis=0)).mean(0) * fps
        rows.append(np.log(np.maximum(np.concatenate([spread, speed]), LOG_FLOOR)))
    return np.array(rows, np.float64).reshape(-1, len(STATISTICS))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to the rows of a and b (Heusel et al. 2017, eq. 6)."""
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b)
    root = root.real if np.iscomplexobj(root) else root
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def audio_motion_alignment(rotations: np.ndarray, loudness_db: np.ndarray, fps: float) -> float:
    """Correlation over 3 s windows of the head's mean angular speed and the speech's mean amplitude."""
    n = min(len(rotations), len(loudness_db))
    speed = np.linalg.norm(np.diff(rotations[:n], axis=0), axis=1) * fps
    amplitude = 10 ** (np.asarray(loudness_db[1:n], np.float64) / 20)
    pairs = [(np.nanmean(speed[w]), amplitude[w].mean()) for w in _windows(n - 1, fps, ALIGNMENT_WINDOW_S, ALIGNMENT_HOP_S)
             if np.isfinite(speed[w]).mean() > 0.5]
    if len(pairs) < 3:
        return float("nan")
    x, y = np.array(pairs).T
    if x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def motion_figures(rotations: np.ndarray, blendshapes: np.ndarray, loudness_db: np.ndarray, fps: float) -> dict:
    """A report row's motion figures: the alignment score and the window statistics (for the distance)."""
    return {"audio_motion_alignment": audio_motion_alignment(rotations, loudness_db, fps),
            "motion_windows": window_statistics(rotations, blendshapes, fps).tolist()}


def add_motion_distance(section: dict, real_system: str, group: str = "system") -> None:
    """Put each system's motion Fréchet distance to `real_system` (windows pooled over rows) in its summary."""
    pooled: dict[str, list] = {}
    for row in section["rows"]:
        pooled.setdefault(row[group], []).extend(row.get("motion_windows", []))
    if real_system not in pooled:
        return
    real = np.array(pooled[real_system], np.float64).reshape(-1, len(STATISTICS))
    for system, windows in pooled.items():
        generated = np.array(windows, np.float64).reshape(-1, len(STATISTICS))
        section["summary"][system]["motion_fd"] = frechet_distance(generated, real)
