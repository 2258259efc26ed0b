"""Motion-level evaluation of the motion generators on real clips, without rendering (seconds, not minutes).

For every talking clip in --data: its real motion (tracked, retargeted as a driving video's), and each
variant's generated motion from the clip's audio, compared in the motion model's representation
(head angles, lid closure, expression changes). The rendered and re-tracked figures come from
`talkinghead eval`; these isolate the generator from the renderer. See docs/motion_model.md.

    python scripts/eval_motion.py --data ../shared/data/real --variant rules \
        --variant diffusion:motion.generator=diffusion --seeds 5 --out build/motion_eval.json
    python scripts/eval_motion.py --data ../shared/data/real --variant diffusion:motion.generator=diffusion --long 600
    python scripts/eval_motion.py --shards build/train --split validation --variant diffusion:motion.generator=diffusion

--shards reads the real clips from a `talkinghead data prepare` folder instead (the clips its manifest keeps
in --split: the training speakers or the held-out ones), with their sound track as recorded.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from talkinghead.audio.features import FeatureStream, extract_features
from talkinghead.config import SAMPLE_RATE
from talkinghead.evaluation.metrics import rotation_spread, runs, scored_silence
from talkinghead.evaluation.motion_measures import audio_motion_alignment, frechet_distance, window_statistics
from talkinghead.evaluation.runner import DEFAULT_CACHE
from talkinghead.evaluation.voice import voiced_frames
from talkinghead.evaluation.variants import parse_variant
from talkinghead.face.tracking import track_video
from talkinghead.io import load_audio
from talkinghead.motion.compose import audio_motion_source
from talkinghead.motion.learned.representation import BLINK_IDS, EXPRESSION, motion_vectors
from talkinghead.motion.types import Motion
from talkinghead.motion.video_driven import retarget

BLINK_CLOSED = 0.5  # mean lid closure that counts as a blink
BLINK_REFRACTORY_S = 0.25
FPS = 25


def real_clip(path: Path) -> dict:
    """A real clip's motion vectors (as the training shards), rest expression, audio and fps."""
    track = track_video(path, cache_dir=DEFAULT_CACHE, video=False)
    driving = retarget(track, reference="first")
    rest = track.blendshapes[0].astype(np.float32)
    vectors = np.concatenate([driving.head, driving.gaze, driving.expression], axis=1)
    return {"name": path.stem, "vectors": vectors, "rest": rest, "fps": float(track.fps),
            "audio": load_audio(path, SAMPLE_RATE)}


def shard_clips(folder: Path, split: str, speech_only: bool = False) -> list[dict]:
    """The kept clips of one split of a prepared dataset, as real_clip gives them (at the model's 25 fps;
    motion centred on the clip's median, which changes no figure here; the audio not shifted by the
    clip's measured delay, as a video file's)."""
    from talkinghead.training.motion_data import TRUE, load_clip

    with open(folder / "manifest.tsv", newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["kept"] == TRUE and r["split"] == split
                and (r["speech_kept"] == TRUE or not speech_only)]
    clips = []
    for row in rows:
        clip = load_clip(folder / row["shard"], row, FPS)
        if len(clip.motion) < 2:  # no sound track: the loader keeps no frame (nothing to condition on)
            continue
        with np.load(folder / row["shard"]) as z:
            audio = z["audio"].astype(np.float32) / 32768.0
        clips.append({"name": row["id"], "vectors": clip.motion, "rest": clip.rest, "fps": float(FPS),
                      "audio": audio, "speech": row["speech_kept"] == TRUE})
    return clips


def roughness(rotations: np.ndarray) -> float:
    """Mean absolute second difference of yaw, pitch and roll (degrees a frame squared): jitter."""
    return float(np.abs(np.diff(rotations, 2, axis=0)).mean()) if len(rotations) > 2 else float("nan")


def generate(config, audio: np.ndarray, rest: np.ndarray, fps: int) -> tuple[np.ndarray, float]:
    """Motion vectors from the variant's audio source (mouth from loudness: not measured here), and seconds."""
    source = audio_motion_source(config.motion)
    stream = FeatureStream(fps)  # one-second chunks with their PCM (a speech-reading model encodes it)
    chunks = [stream.push(audio[i:i + SAMPLE_RATE]) for i in range(0, len(audio), SAMPLE_RATE)] + [stream.flush()]
    started = time.perf_counter()
    source.start(rest, fps)
    parts = [source.push(chunk) for chunk in chunks]
    motion = Motion.concat(parts + [source.flush()])
    return motion_vectors(motion, rest), time.perf_counter() - started


def blinks_per_minute(vectors: np.ndarray, fps: float) -> float:
    """Onsets of mean lid closure above BLINK_CLOSED, at least BLINK_REFRACTORY_S apart, per minute."""
    closure = vectors[:, EXPRESSION.start + BLINK_IDS].mean(1)
    above = closure > BLINK_CLOSED
    onsets = np.flatnonzero(above[1:] & ~above[:-1]) + 1
    kept, last = 0, -np.inf
    for onset in onsets:
        if onset - last >= BLINK_REFRACTORY_S * fps:
            kept += 1
            last = onset
    return kept * 60.0 * fps / max(len(vectors), 1)


def head_speeds(vectors: np.ndarray, fps: float) -> np.ndarray:
    """(T,) head angular speed, degrees a second (NaN on the first frame)."""
    return np.r_[np.nan, np.linalg.norm(np.diff(np.asarray(vectors, np.float64)[:, :3], axis=0), axis=1) * fps]


def speech_and_pause_speeds(vectors: np.ndarray, audio: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Head speeds in the voiced frames and in the silent stretches the evaluation scores (WebRTC's VAD and
    metrics.scored_silence: the same rulers as `talkinghead eval`, not the generator's own detector)."""
    voiced = voiced_frames(audio, fps, len(vectors))
    speed = head_speeds(vectors, fps)
    return speed[voiced], speed[scored_silence(voiced, fps)]


def pause_ratio(pairs: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Pooled median pause speed over pooled median voiced speed."""
    voiced = np.concatenate([p[0] for p in pairs])
    pause = np.concatenate([p[1] for p in pairs])
    return float(np.nanmedian(pause) / np.nanmedian(voiced))


def statistics(vectors: np.ndarray, fps: float) -> np.ndarray:
    return window_statistics(vectors[:, :3], vectors[:, EXPRESSION], fps)


def evaluate_variant(variant, clips: list[dict], seeds: int) -> dict:
    """Figures of one variant over all clips (seed 0 for everything but diversity)."""
    from dataclasses import replace

    rows, windows, real_windows, yaw_correlations, seconds, audio_seconds = [], [], [], [], 0.0, 0.0
    pauses, real_pauses = [], []
    for clip in clips:
        fps = int(round(clip["fps"]))
        real = clip["vectors"]
        runs = []
        for seed in range(max(seeds, 1)):
            config = replace(variant.config, motion=replace(variant.config.motion, seed=seed, mouth="loudness"))
            vectors, spent = generate(config, clip["audio"], clip["rest"], fps)
            runs.append(vectors)
            if seed == 0:
                seconds += spent
                audio_seconds += len(clip["audio"]) / SAMPLE_RATE
        gen = runs[0][:len(real)]
        loud = extract_features(clip["audio"], fps).loudness_db
        spreads = [rotation_spread(r[:len(real), :3]) for r in runs]
        rows.append({"clip": clip["name"], "head_spread_ratio": rotation_spread(gen[:, :3]) / rotation_spread(real[:, :3]),
                     "head_spread_deg": float(np.mean(spreads)), "real_head_spread_deg": rotation_spread(real[:, :3]),
                     "head_spread_ratio_all_seeds": float(np.mean(spreads)) / rotation_spread(real[:, :3]),
                     "roughness": float(np.mean([roughness(r[:len(real), :3]) for r in runs])),
                     "real_roughness": roughness(real[:, :3]),
                     "blinks_per_minute": blinks_per_minute(gen, fps), "real_blinks_per_minute": blinks_per_minute(real, fps),
                     "alignment": audio_motion_alignment(gen[:, :3], loud, fps),
                     "alignment_all_seeds": float(np.nanmean([audio_motion_alignment(r[:len(real), :3], loud, fps)
                                                              for r in runs])),
                     "real_alignment": audio_motion_alignment(real[:, :3], loud, fps)})
        pauses += [speech_and_pause_speeds(r[:len(real)], clip["audio"], fps) for r in runs]
        real_pauses.append(speech_and_pause_speeds(real, clip["audio"], fps))
        windows.append(statistics(gen, fps))
        real_windows.append(statistics(real, fps))
        yaws = [r[:, 0] for r in runs]
        yaw_correlations += [np.corrcoef(yaws[i], yaws[j])[0, 1] for i in range(len(yaws)) for j in range(i)
                             if yaws[i].std() > 0 and yaws[j].std() > 0]
    mean = lambda key: float(np.nanmean([r[key] for r in rows]))  # noqa: E731
    return {"variant": variant.name, "clips": rows, "head_spread_ratio": mean("head_spread_ratio"),
            "head_spread_ratio_all_seeds": mean("head_spread_ratio_all_seeds"), "head_spread_deg": mean("head_spread_deg"),
            "real_head_spread_deg": mean("real_head_spread_deg"), "roughness": mean("roughness"),
            "real_roughness": mean("real_roughness"),
            "blinks_per_minute": mean("blinks_per_minute"), "real_blinks_per_minute": mean("real_blinks_per_minute"),
            "alignment": mean("alignment"), "alignment_all_seeds": mean("alignment_all_seeds"),
            "real_alignment": mean("real_alignment"),
            "pause_ratio_all_seeds": pause_ratio(pauses), "real_pause_ratio": pause_ratio(real_pauses),
            "motion_fd": frechet_distance(np.concatenate(windows), np.concatenate(real_windows)),
            "cross_seed_yaw_r": float(np.mean(yaw_correlations)) if yaw_correlations else float("nan"),
            "x_real_time_one_thread": audio_seconds / seconds}


def long_run(variant, clips: list[dict], seconds: float) -> dict:
    """Drift and memory over one long run: the clips' audio looped to `seconds`, streamed in 1 s chunks."""
    fps = FPS
    audio = np.concatenate([c["audio"] for c in clips])
    audio = np.tile(audio, int(np.ceil(seconds * SAMPLE_RATE / len(audio))))[:int(seconds * SAMPLE_RATE)]
    stream = FeatureStream(fps)  # with the PCM, as the pipeline streams it (the speech mouth needs it)
    source = audio_motion_source(variant.config.motion)
    rest = clips[0]["rest"]
    source.start(rest, fps)
    parts, rss = [], []
    for second, start in enumerate(range(0, len(audio), SAMPLE_RATE)):
        parts.append(source.push(stream.push(audio[start:start + SAMPLE_RATE])))
        if second % 60 == 0:
            rss.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    parts.append(source.push(stream.flush()))
    vectors = motion_vectors(Motion.concat(parts + [source.flush()]), rest)
    minute = 60 * fps

    def summary(part: np.ndarray) -> dict:
        return {"head_spread_deg": rotation_spread(part[:, :3]),
                "head_speed_deg_s": float(np.abs(np.diff(part[:, :3], axis=0)).mean() * fps),
                "blinks_per_minute": blinks_per_minute(part, fps),
                "expression_std": float(part[:, EXPRESSION].std(0).mean())}

    first, last = summary(vectors[:minute]), summary(vectors[-minute:])
    return {"seconds": seconds, "first_minute": first, "last_minute": last,
            "last_over_first": {k: last[k] / first[k] if first[k] else float("nan") for k in first},
            "peak_rss_mib_each_minute": rss}


def plot_clip(variants, clip: dict, path: Path, seeds: int = 3) -> None:
    """Yaw and pitch over time: the real clip and each variant (a few seeds), one panel per angle; the
    silent stretches the evaluation scores (WebRTC's VAD) shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from dataclasses import replace

    fps = int(round(clip["fps"]))
    fig, axes = plt.subplots(2, 1, figsize=(11, 5.5), sharex=True)
    t = np.arange(len(clip["vectors"])) / fps
    silent = scored_silence(voiced_frames(clip["audio"], fps, len(t)), fps)
    for k, (ax, name) in enumerate(zip(axes, ("yaw", "pitch"))):
        for i, (start, stop) in enumerate(runs(silent)):
            ax.axvspan(start / fps, stop / fps, color="0.85", lw=0, label="pause (scored)" if i == 0 else None)
        ax.plot(t, clip["vectors"][:, k] - np.median(clip["vectors"][:, k]), "k", lw=2, label="real")
        for v, colour in zip(variants, ("tab:blue", "tab:orange", "tab:green", "tab:red")):
            for seed in range(seeds):
                config = replace(v.config, motion=replace(v.config.motion, seed=seed, mouth="loudness"))
                vectors, _ = generate(config, clip["audio"], clip["rest"], fps)
                ax.plot(np.arange(len(vectors)) / fps, vectors[:, k], color=colour, lw=1, alpha=0.8,
                        label=f"{v.name}" if seed == 0 else None)
        ax.set_ylabel(f"{name} (degrees)")
    axes[0].legend(loc="upper right", ncol=len(variants) + 1)
    axes[0].set_title(f"{clip['name']}: real head motion and generated ({seeds} seed{'s' if seeds != 1 else ''} each)")
    axes[1].set_xlabel("seconds")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="folder of real talking clips (.mp4)")
    parser.add_argument("--shards", type=Path, help="instead: a prepared dataset (`talkinghead data prepare` output)")
    parser.add_argument("--split", default="validation", help="with --shards: the split whose clips to use")
    parser.add_argument("--speech-only", action="store_true", help="with --shards: only the clips kept for speech")
    parser.add_argument("--variant", action="append", default=[], help="NAME[:field=value,...] as in talkinghead eval")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per clip (diversity: cross-seed yaw correlation)")
    parser.add_argument("--long", type=float, help="instead: one run of this many seconds (drift and memory)")
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    parser.add_argument("--plot-seeds", type=int, default=3, help="with --plot: seeds drawn per variant")
    parser.add_argument("--plot", nargs=2, metavar=("CLIP", "PNG"), help="instead: plot yaw and pitch of one clip")
    args = parser.parse_args()
    variants = [parse_variant(v) for v in args.variant or ["rules"]]
    if (args.data is None) == (args.shards is None):
        parser.error("give one of --data and --shards")
    clips = (shard_clips(args.shards, args.split, args.speech_only) if args.shards
             else [real_clip(p) for p in sorted(args.data.glob("*.mp4"))])
    if args.plot:
        chosen = [c for c in clips if c["name"] == args.plot[0]]
        if not chosen:
            raise SystemExit(f"no clip named '{args.plot[0]}': choose one of {', '.join(c['name'] for c in clips)}")
        plot_clip(variants, chosen[0], Path(args.plot[1]), args.plot_seeds)
        return
    with threadpool_limits(1):  # the figure of merit is one core
        if args.long:
            results = [{"variant": v.name, **long_run(v, clips, args.long)} for v in variants]
        else:
            results = [evaluate_variant(v, clips, args.seeds) for v in variants]
    for r in results:
        print(json.dumps({k: v for k, v in r.items() if k != "clips"}, default=float))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1, default=float) + "\n")


if __name__ == "__main__":
    from talkinghead.errors import TalkingHeadError

    try:
        main()
    except TalkingHeadError as error:  # a missing extra, an unreadable clip or model: one line, no traceback
        raise SystemExit(str(error)) from None
