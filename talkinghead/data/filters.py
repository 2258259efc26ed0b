"""Curation: per-clip statistics, the audio-visual offset search, and the filters with their thresholds.

The filters follow MegActor-Sigma's curation (face size, one face, mean head rotation under 30
degrees, audio-visual sync; papers.md) with this project's own measures:
- sync is SyncNet's offset search (Chung and Zisserman 2016) with the project's speech features in
  place of SyncNet: the committed mouth model predicts the lip gap from the Whisper states sampled
  at the frame times shifted by each candidate offset; the offset with the highest correlation to the
  tracked gap is the clip's audio delay, that correlation its agreement, and the correlation minus its
  median over all offsets its confidence (SyncNet's Sync-C is likewise the best distance against the
  median). Kept clips are shifted to their offset.
- tracking quality is the share of frames with a face, the longest gap and the rigid-fit residual.
Filters run in order; a clip is counted against the first one it fails.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..audio.speech_encoder import frame_positions

OFFSET_STEP_S = 0.02  # one encoder frame
OFFSET_RANGE_S = 0.3  # offsets searched: -0.3 .. +0.3 s (SyncNet searches +-15 frames at 25 fps: 0.6 s)
MIN_SYNC_FACE_SHARE = 0.5  # the offset search needs a face in at least this share of frames
SECOND_FACE_RATIO = 0.5  # a second face at least this wide (relative to the main one) counts as another face


@dataclass(frozen=True)
class CurationConfig:
    """Thresholds of the filters (each one a `talkinghead data prepare` option)."""

    min_face_share: float = 0.9  # share of frames with a face
    max_gap_s: float = 0.5  # longest run of frames without a face, seconds
    max_fit_residual: float = 0.08  # median rigid-fit residual (IOD): larger means implausible landmarks
    max_multi_face: float = 0.1  # share of frames with a second face (>= SECOND_FACE_RATIO of the main one)
    min_face_px: float = 96.0  # median face width, pixels of the original frame (MegActor-Sigma: 600)
    min_sharpness: float = 20.0  # median Laplacian variance of the 128 px face crop
    max_turn_deg: float = 30.0  # mean out-of-plane head rotation away from frontal (MegActor-Sigma: 30)
    min_voiced: float = 0.2  # share of frames the VAD hears as speech (speech use only)
    min_av_r: float = 0.3  # lip-gap correlation at the best audio-visual offset (speech use only)
    min_av_confidence: float = 0.2  # that correlation minus its median over all offsets: SyncNet's confidence (speech use only)
    max_av_offset_s: float = 0.28  # |best offset| beyond this is outside the search: undetermined (speech use only)


# (name, statistic, "min" or "max", CurationConfig field, what it keeps, stage): visual stages decide
# whether a clip is kept at all (motion), speech stages whether it is also used for lip sync.
FILTERS = (
    ("tracked", "face_share", "min", "min_face_share", "a face in most frames", "visual"),
    ("gaps", "longest_gap_s", "max", "max_gap_s", "no long tracking gap", "visual"),
    ("track fit", "fit_residual", "max", "max_fit_residual", "plausible landmarks (rigid-fit residual)", "visual"),
    ("one face", "multi_face_share", "max", "max_multi_face", "one face in view", "visual"),
    ("face size", "face_px", "min", "min_face_px", "a large enough face", "visual"),
    ("blur", "sharpness", "min", "min_sharpness", "a sharp face", "visual"),
    ("head rotation", "turn_mean_deg", "max", "max_turn_deg", "a mostly frontal head", "visual"),
    ("speech", "voiced_share", "min", "min_voiced", "speech in the sound track", "speech"),
    ("av offset", "abs_av_offset_s", "max", "max_av_offset_s", "an offset found inside the search", "speech"),
    ("av agreement", "av_r", "min", "min_av_r", "mouth and speech that agree", "speech"),
    ("av confidence", "av_confidence", "min", "min_av_confidence", "a clear best offset (not music or chance)", "speech"),
)


def _longest_run(flags: np.ndarray) -> int:
    """Length of the longest run of True."""
    best = run = 0
    for flag in flags:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


def _median(values: np.ndarray) -> float:
    """Median of the finite values (NaN when none)."""
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if len(finite) else float("nan")


def clip_stats(arrays: dict[str, np.ndarray], fps: float, size: tuple[int, int]) -> dict:
    """The per-clip statistics the filters read (FILTERS), from a clip's shard arrays."""
    found = arrays["found"]
    box = arrays["box"]
    face = found & np.isfinite(box[:, 0])
    return {
        "face_share": float(found.mean()),
        "longest_gap_s": _longest_run(~found) / fps,
        "fit_residual": _median(arrays["fit_residual"]),
        "multi_face_share": float((arrays["second_face"][face] >= SECOND_FACE_RATIO).mean()) if face.any() else 1.0,
        "face_px": _median(box[:, 2] - box[:, 0]),
        "frame_size": list(size),
        "sharpness": _median(arrays["sharpness"]),
        "turn_mean_deg": float(np.nanmean(arrays["head_turn"])) if face.any() else float("nan"),
        "voiced_share": float(arrays["voiced"].mean()) if len(arrays["audio"]) else 0.0,
    }


def filled(values: np.ndarray, found: np.ndarray) -> np.ndarray:
    """(T,) or (T, ...) series with frames without a face interpolated from their neighbours."""
    if found.all() or not found.any():
        return values
    have, missing = np.flatnonzero(found), np.flatnonzero(~found)
    out = values.astype(np.float64, copy=True)
    flat = out.reshape(len(out), -1)
    for k in range(flat.shape[1]):
        flat[missing, k] = np.interp(missing, have, flat[have, k])
    return out


def sample_states(states: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """(N, D) states at (T, k) fractional rows -> (T, k * D) float32, linear between rows (clamped to the end)."""
    positions = np.minimum(positions, len(states) - 1)
    j = np.minimum(np.floor(positions).astype(int), len(states) - 2)
    w = (positions - j)[..., None].astype(np.float32)
    rows = states[j] + w * (states[j + 1] - states[j])  # (T, k, D)
    return rows.reshape(len(positions), -1).astype(np.float32)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation; 0 when either does not vary."""
    a, b = a - a.mean(), b - b.mean()
    d = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / d) if d > 0 else 0.0


def offset_scores(states: np.ndarray, times: np.ndarray, aperture: np.ndarray, model) -> tuple[np.ndarray, np.ndarray]:
    """(offsets (K,) s, correlation (K,)): the model's predicted gap from the states at times + offset
    against the tracked gap (T,), for every candidate offset."""
    steps = int(round(OFFSET_RANGE_S / OFFSET_STEP_S))
    offsets = np.arange(-steps, steps + 1) * OFFSET_STEP_S
    scores = []
    for offset in offsets:
        x = sample_states(states, frame_positions(times + offset, model.offsets_s))
        pred = ((x - model.mean) / model.scale) @ model.weights[:, 0] + model.bias[0]
        scores.append(pearson(pred.astype(np.float64), aperture))
    return offsets, np.array(scores)


def av_offset(arrays: dict[str, np.ndarray], fps: float, layer: int, model=None) -> dict:
    """{av_offset_s, abs_av_offset_s, av_r, av_confidence} of a clip with sound (empty when it cannot be
    measured): positive offset = the sound is late (a frame's speech is heard offset seconds after it)."""
    from ..motion.learned_mouth import load_default_model

    model = model or load_default_model()
    found = arrays["found"]
    if model.config["layer"] != layer or found.mean() < MIN_SYNC_FACE_SHARE or len(found) < 3:
        return {}
    aperture = filled(arrays["aperture"].astype(np.float64), found)
    offsets, scores = offset_scores(arrays["speech_states"], arrays["times"], aperture, model)
    best = int(np.argmax(scores))
    return {"av_offset_s": round(float(offsets[best]), 3), "abs_av_offset_s": round(abs(float(offsets[best])), 3),
            "av_r": round(float(scores[best]), 4), "av_confidence": round(float(scores[best] - np.median(scores)), 4),
            "av_r_at_zero": round(float(scores[len(scores) // 2]), 4)}


def passes(value, kind: str, threshold: float) -> bool:
    """Whether a statistic passes a min / max threshold (a missing or NaN value never passes)."""
    if value is None or not np.isfinite(value):
        return False
    return value >= threshold if kind == "min" else value <= threshold


def curate(clips: list[dict], config: CurationConfig) -> None:
    """Set each clip's 'kept' (visual filters), 'speech_kept' (all filters) and 'removed_by' (the first
    filter it fails, '' when none), in place. clips: manifest rows with 'stats'."""
    for clip in clips:
        clip["removed_by"], clip["kept"], clip["speech_kept"] = "", True, True
        for name, stat, kind, field, _, stage in FILTERS:
            if not passes(clip["stats"].get(stat), kind, getattr(config, field)):
                clip["removed_by"] = name
                clip["speech_kept"] = False
                clip["kept"] = clip["kept"] and stage != "visual"
                break


def cascade(clips: list[dict], config: CurationConfig) -> list[dict]:
    """Rows of the curation table: after each filter in order, clips and minutes left and what it removed."""
    rows = [{"filter": "all clips", "threshold": "", "removed": 0, "clips": len(clips),
             "minutes": round(sum(c["seconds"] for c in clips) / 60, 2)}]
    left = list(clips)
    for name, stat, kind, field, what, stage in FILTERS:
        keep = [c for c in left if passes(c["stats"].get(stat), kind, getattr(config, field))]
        sign = ">=" if kind == "min" else "<="
        rows.append({"filter": name, "stage": stage, "what": what, "statistic": stat,
                     "threshold": f"{stat} {sign} {getattr(config, field):g}", "removed": len(left) - len(keep),
                     "clips": len(keep), "minutes": round(sum(c["seconds"] for c in keep) / 60, 2)})
        left = keep
    return rows
