"""Fit the expression basis (blendshape coefficients -> canonical landmark displacements).

    python scripts/fit_expression_basis.py --data ../shared/data/real --out talkinghead/assets/expression_basis.npz

1. Track every frame of every talking clip with the FaceLandmarker (cached in build/tracks/).
2. Remove head pose: align each frame's rigid points to a reference face (generalised Procrustes),
   in units of the inter-ocular distance.
3. Per clip, subtract the clip mean of shapes and coefficients (removes identity), then ridge-regress
   displacement on coefficient change. The ridge strength is chosen by leave-one-clip-out error,
   and the held-out reconstruction error is stored in the file's metadata and printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from talkinghead.face import landmarks as L  # noqa: E402
from talkinghead.face.expression import ExpressionBasis  # noqa: E402
from talkinghead.face.pose import fit_similarity  # noqa: E402
from talkinghead.face.tracking import track_video  # noqa: E402

RIDGE_ALPHAS = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
MOUTH_POINTS = tuple(sorted(set(L.LIPS_INNER_LOOP + L.LIPS_OUTER_LOOP)))
GENERALISED_PROCRUSTES_ROUNDS = 3
COEFFICIENT_MAX_PERCENTILE = 99.5  # the basis is trusted up to this percentile of the fitting data


def normalise_reference(shape: np.ndarray) -> np.ndarray:
    """Centre on the rigid points and scale to unit inter-ocular distance."""
    shape = shape - shape[list(L.RIGID_POINTS)].mean(0)
    iod = np.linalg.norm(shape[L.EYE_LEFT_OUTER_CORNER] - shape[L.EYE_RIGHT_OUTER_CORNER])
    return shape / iod


def align_all(shapes: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(F, 478, 3) image landmarks -> canonical, each frame aligned to reference."""
    return np.stack([fit_similarity(s, reference).invert(s) for s in shapes])


def ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """argmin ||y - x b||^2 + alpha ||b||^2 ; x (N, K), y (N, D) -> (K, D)."""
    k = x.shape[1]
    return np.linalg.solve(x.T @ x + alpha * np.eye(k), x.T @ y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "real")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "talkinghead" / "assets" / "expression_basis.npz")
    parser.add_argument("--cache", type=Path, default=Path(__file__).resolve().parents[1] / "build" / "tracks")
    args = parser.parse_args()

    clips = sorted(args.data.glob("*.mp4"))
    if not clips:
        sys.exit(f"no .mp4 clips in {args.data}")
    tracks = {}
    for clip in clips:
        tr = track_video(clip, cache_dir=args.cache)
        ok = tr.found
        tracks[clip.stem] = (tr.landmarks[ok], tr.blendshapes[ok])
        print(f"{clip.name}: {ok.sum()}/{len(ok)} frames tracked")

    # 1-2. generalised Procrustes to a mean face in IOD units
    reference = normalise_reference(next(iter(tracks.values()))[0][0])
    for _ in range(GENERALISED_PROCRUSTES_ROUNDS):
        aligned = {k: align_all(lm, reference) for k, (lm, _) in tracks.items()}
        reference = normalise_reference(np.concatenate(list(aligned.values())).mean(0))
    aligned = {k: align_all(lm, reference) for k, (lm, _) in tracks.items()}

    # 3. per-clip centring, ridge with leave-one-clip-out selection
    names = list(tracks)
    dx = {k: (aligned[k] - aligned[k].mean(0)).reshape(len(aligned[k]), -1) for k in names}
    dc = {k: tracks[k][1] - tracks[k][1].mean(0) for k in names}
    mouth_cols = np.array([[3 * i, 3 * i + 1, 3 * i + 2] for i in MOUTH_POINTS]).ravel()

    def held_out_errors(alpha: float) -> dict:
        err_all, err_mouth, base_all, base_mouth = [], [], [], []
        for held in names:
            x = np.concatenate([dc[k] for k in names if k != held])
            y = np.concatenate([dx[k] for k in names if k != held])
            b = ridge(x, y, alpha)
            resid = dx[held] - dc[held] @ b
            # per-frame RMS point error (IOD units), prediction vs "no motion" baseline
            err_all.append(np.sqrt((resid.reshape(len(resid), -1, 3) ** 2).sum(-1).mean(-1)))
            base_all.append(np.sqrt((dx[held].reshape(len(resid), -1, 3) ** 2).sum(-1).mean(-1)))
            err_mouth.append(np.sqrt((resid[:, mouth_cols].reshape(len(resid), -1, 3) ** 2).sum(-1).mean(-1)))
            base_mouth.append(np.sqrt((dx[held][:, mouth_cols].reshape(len(resid), -1, 3) ** 2).sum(-1).mean(-1)))
        cat = np.concatenate
        return {"alpha": alpha,
                "rms_all": float(cat(err_all).mean()), "rms_all_no_motion": float(cat(base_all).mean()),
                "rms_mouth": float(cat(err_mouth).mean()), "rms_mouth_no_motion": float(cat(base_mouth).mean())}

    scores = [held_out_errors(a) for a in RIDGE_ALPHAS]
    for s in scores:
        print(json.dumps(s))
    best = min(scores, key=lambda s: s["rms_mouth"])
    x = np.concatenate([dc[k] for k in names])
    y = np.concatenate([dx[k] for k in names])
    basis = ridge(x, y, best["alpha"]).reshape(L.N_BLENDSHAPES, L.N_LANDMARKS, 3)
    coefficients = np.concatenate([tracks[k][1] for k in names])
    coefficient_max = np.percentile(coefficients, COEFFICIENT_MAX_PERCENTILE, axis=0)
    meta = {"clips": names, "frames": int(len(x)), "held_out": best, "units": "inter-ocular distance",
            "coefficient_max": [round(float(v), 4) for v in coefficient_max],
            "method": "per-clip-centred ridge regression, leave-one-clip-out alpha selection"}
    ExpressionBasis(reference.astype(np.float32), basis.astype(np.float32), meta).save(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB); held-out mouth RMS "
          f"{best['rms_mouth']:.4f} vs no-motion {best['rms_mouth_no_motion']:.4f} IOD")


if __name__ == "__main__":
    main()
