"""End-to-end lip-sync of the mouth sources: render, re-track, compare with the real video.

    python scripts/train_mouth_model.py        # first: writes the held-out models to build/mouth_loo/
    python scripts/eval_mouth_e2e.py           # self-reenactment of every real clip + cross-identity runs

Self-reenactment (as talkinghead.evaluation's protocol): portrait = the clip's first frame, speech =
its audio, fps = the clip's rounded frame rate, frame i compared with real frame i. The learned source
runs with the model trained WITHOUT that clip (build/mouth_loo/<clip>.npz), so no figure comes from
a clip the model saw. The rendered frames are re-tracked with the FaceLandmarker (video mode).
Cross-identity: portraits from the data folder driven by its speech clips (languages, singing) with the
committed model; there is no ground truth, so the figures are the aperture's spread in speech, rest in
silence and the longest freeze. Results go to build/mouth_e2e/ as JSON and markdown tables.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from talkinghead.face import landmarks as L  # noqa: E402
from talkinghead.audio.features import SAMPLE_RATE, frame_count  # noqa: E402
from talkinghead.config import GenerateConfig, MotionConfig, RenderConfig  # noqa: E402
from talkinghead.evaluation import metrics  # noqa: E402
from talkinghead.evaluation.voice import voiced_frames  # noqa: E402
from talkinghead.face.landmarker import FaceLandmarker  # noqa: E402
from talkinghead.io import load_audio, load_image, read_video_frames  # noqa: E402
from talkinghead.face.measure import mouth_aperture  # noqa: E402
from talkinghead.motion.audio_rules import RuleBasedAudioMotion  # noqa: E402
from talkinghead.motion.learned_mouth import LearnedMouthMotion, MouthModel  # noqa: E402
from talkinghead.pipeline import Pipeline, prepare_portrait  # noqa: E402
from talkinghead.face.tracking import track_video  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
LOO_DIR = Path("build/mouth_loo")
OUT_DIR = Path("build/mouth_e2e")
CROSS_PORTRAITS = ("hallo_ref1.jpg", "sadtalker_people0.png", "liveportrait_s10.jpg")
JAW_OPEN = L.BLENDSHAPE_INDEX["jawOpen"]


def track_frames(frames, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """(landmarks (T, 478, 3) NaN where no face, blendshapes (T, 52)) of rendered frames."""
    lms, bss = [], []
    with FaceLandmarker(video=True) as landmarker:
        for i, frame in enumerate(frames):
            faces = landmarker.detect(frame, timestamp_ms=int(round(i * 1000 / fps)))
            lms.append(faces[0].landmarks if faces else np.full((L.N_LANDMARKS, 3), np.nan, np.float32))
            bss.append(faces[0].blendshapes if faces else np.full(L.N_BLENDSHAPES, np.nan, np.float32))
    return np.array(lms), np.array(bss)


def source_for(system: str, clip: str | None, loo_dir: Path = LOO_DIR):
    """A fresh motion source: 'rules', 'learned' / 'learned-closed' (held-out model of `clip`, or the committed one)."""
    if system == "rules":
        return RuleBasedAudioMotion()
    model = MouthModel.load(loo_dir / f"{clip}.npz") if clip else None
    return LearnedMouthMotion(MotionConfig(silence_mouth="closed" if system == "learned-closed" else "portrait"), model)


def speech_stats(apertures: np.ndarray, voiced: np.ndarray) -> tuple[float, float]:
    """Aperture std and 95th percentile over voiced frames."""
    n = min(len(apertures), len(voiced))
    speech = apertures[:n][voiced[:n] & np.isfinite(apertures[:n])]
    return float(speech.std()), float(np.percentile(speech, 95))


def self_reenactment(path: Path, systems: list[str], size: int, loo_dir: Path = LOO_DIR) -> list[dict]:
    """Every system on one real clip, scored against the clip's own track."""
    track = track_video(path, cache_dir=Path("build/tracks"))
    fps = int(round(track.fps))
    audio = load_audio(path, SAMPLE_RATE)
    n = min(len(track.landmarks), frame_count(len(audio), fps))
    audio = audio[:int(round(n / fps * SAMPLE_RATE))]
    real_ap = mouth_aperture(track.landmarks[:n])
    real_jaw = track.blendshapes[:n, JAW_OPEN]
    voiced = voiced_frames(audio, fps, n)
    first = next(iter(read_video_frames(path)))
    rest = float(real_ap[0])
    rows = [{"clip": path.stem, "system": "real", **_speech_row(real_ap, voiced)}]
    for system in systems:
        config = GenerateConfig(fps=fps, render=RenderConfig(size=size))
        pipeline = Pipeline(prepare_portrait(first, size), config, motion_source=source_for(system, path.stem, loo_dir))
        started = time.perf_counter()
        frames = list(pipeline.stream(pipeline.chunks(audio)))
        seconds = time.perf_counter() - started
        landmarks, blendshapes = track_frames(frames, fps)
        ap = mouth_aperture(landmarks)[:n]
        sync = metrics.lagged_correlation(ap, real_ap)
        rows.append({"clip": path.stem, "system": system, "frames": len(frames), "lipsync_r": sync.correlation,
                     "best_lag": sync.best_lag, "best_r": sync.best_correlation,
                     "jaw_open_r": metrics.pearson(blendshapes[:n, JAW_OPEN], real_jaw),
                     "silence_rest_share": metrics.silence_rest_share(ap, voiced, rest, fps),
                     "silence_frames": int(metrics.scored_silence(voiced[:n], fps).sum()),
                     "longest_freeze_s": metrics.longest_freeze_seconds(ap, voiced, fps),
                     "face_found": float(np.isfinite(ap).mean()), "render_s": seconds,
                     **_speech_row(ap, voiced)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _speech_row(apertures: np.ndarray, voiced: np.ndarray) -> dict:
    std, p95 = speech_stats(apertures, voiced)
    return {"aperture_speech_std": std, "aperture_speech_p95": p95}


def cross_identity(portrait: Path, speech: Path, systems: list[str], size: int, seconds: float) -> list[dict]:
    """Portrait + foreign speech: spread, rest in silence, freezes (no ground truth)."""
    audio = load_audio(speech, SAMPLE_RATE)[:int(seconds * SAMPLE_RATE)]
    fps = GenerateConfig().fps
    n = frame_count(len(audio), fps)
    voiced = voiced_frames(audio, fps, n)
    image = load_image(portrait)
    rows = []
    for system in systems:
        pipeline = Pipeline(prepare_portrait(image, size), replace(GenerateConfig(), render=RenderConfig(size=size)),
                            motion_source=source_for(system, None))
        frames = list(pipeline.stream(pipeline.chunks(audio)))
        landmarks, _ = track_frames(frames, fps)
        ap = mouth_aperture(landmarks)
        rest = float(mouth_aperture(pipeline.portrait.face.landmarks))
        rows.append({"portrait": portrait.stem, "speech": speech.stem, "system": system,
                     "silence_rest_share": metrics.silence_rest_share(ap, voiced, rest, fps),
                     "longest_freeze_s": metrics.longest_freeze_seconds(ap, voiced, fps),
                     "face_found": float(np.isfinite(ap).mean()), **_speech_row(ap, voiced)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def table(rows: list[dict], keys: list[str], group: list[str]) -> str:
    """Markdown table of `keys` per row, with a mean row per system."""
    lines = ["| " + " | ".join(group + keys) + " |", "|---" * (len(group) + len(keys)) + "|"]
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    for r in rows:
        lines.append("| " + " | ".join(fmt(r.get(k, "")) for k in group + keys) + " |")
    for system in dict.fromkeys(r["system"] for r in rows):
        mine = [r for r in rows if r["system"] == system]
        means = [float(np.nanmean([r[k] for r in mine if k in r])) if any(k in r for r in mine) else "" for k in keys]
        lines.append("| " + " | ".join([f"**mean {system}**"] + [""] * (len(group) - 1) + [fmt(m) for m in means]) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--systems", default="rules,learned")
    parser.add_argument("--skip-cross", action="store_true")
    parser.add_argument("--cross-seconds", type=float, default=10.0)
    parser.add_argument("--loo-dir", type=Path, default=LOO_DIR, help="held-out models (from train_mouth_model.py)")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args()
    systems = args.systems.split(",")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in sorted(args.data.glob("*.mp4")):
        rows += self_reenactment(path, systems, args.size, args.loo_dir)
    (args.out / "self.json").write_text(json.dumps(rows, indent=1))
    keys = ["lipsync_r", "best_lag", "best_r", "jaw_open_r", "silence_rest_share", "longest_freeze_s",
            "aperture_speech_std", "aperture_speech_p95"]
    text = "## self-reenactment\n\n" + table(rows, keys, ["clip", "system"])
    if not args.skip_cross:
        cross = []
        for portrait in CROSS_PORTRAITS:
            for speech in sorted(args.data.glob("*.wav")):
                cross += cross_identity(args.data / portrait, speech, systems, args.size, args.cross_seconds)
        (args.out / "cross.json").write_text(json.dumps(cross, indent=1))
        text += "\n\n## cross-identity\n\n" + table(cross, ["silence_rest_share", "longest_freeze_s", "aperture_speech_std",
                                                            "aperture_speech_p95", "face_found"],
                                                     ["portrait", "speech", "system"])
    (args.out / "tables.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
