"""What resting the mouth in pauses costs lip-sync, per real clip, without rendering.

    python scripts/train_mouth_model.py          # first: the held-out models in build/mouth_loo/
    python scripts/analyse_silence_gate.py       # the table below, on ../shared/data/real
    python scripts/analyse_silence_gate.py --tracker-delay   # also: how late MediaPipe's video mode tracks
    python scripts/analyse_silence_gate.py --phonetic        # also: closing the lips on recognised p/b/m
                                                             # (needs pip install pocketsphinx==5.1.1)

For each clip, with the model trained without it: the learned mouth's inner-lip gap before the voice
gate ("raw") and after it (the default closed rest), against the real clip's tracked gap (r at lag 0 and
best lag, as the evaluation scores them), and the rest share in the evaluation's silences. "Ceiling"
is the real gap itself with the evaluation's scored silences set to closed lips: the best r any system
that closes there can reach. --tracker-delay compares the real clip tracked in video mode (as the
evaluation tracks) with image mode (no temporal filter): the fractional lag video mode adds.
--phonetic tries the phonetic approach on top of the gated gap: pocketsphinx (US English model)
recognises the words, aligns them to get phone times, and the lips close (the gap times 1 - CLOSURE)
on the bilabials p, b and m; it reports how open the real mouth is there (z-score of its gap) and the
gated r with the closures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from talkinghead.face import measure  # noqa: E402
from talkinghead.audio.features import SAMPLE_RATE, FeatureStream, frame_count  # noqa: E402
from talkinghead.config import MotionConfig  # noqa: E402
from talkinghead.evaluation.metrics import (lagged_correlation, pearson, scored_silence,  # noqa: E402
                                            silence_rest_share)
from talkinghead.evaluation.voice import voiced_frames  # noqa: E402
from talkinghead.io import load_audio  # noqa: E402
from talkinghead.motion.learned_mouth import LearnedMouthMotion, MouthModel  # noqa: E402
from talkinghead.face.tracking import track_video  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
LOO_DIR = Path("build/mouth_loo")
TRACKS = Path("build/tracks")


class RecordingMouth(LearnedMouthMotion):
    """LearnedMouthMotion that also keeps, per frame, the model's gap (IOD, before the gate) and the gate."""

    def start(self, rest_expression: np.ndarray, fps: float) -> None:
        super().start(rest_expression, fps)
        self.record: list[tuple[float, float]] = []

    def _frame(self, i, rules, final):
        frame = super()._frame(i, rules, final)
        self.record.append((self.gap(self._output(i)), self._gate))
        return frame


def gap_and_gate(model: MouthModel, audio: np.ndarray, fps: int) -> tuple[np.ndarray, np.ndarray]:
    """(T,) model gap and (T,) gate for the audio, streamed in 1 s chunks as the pipeline does."""
    source = RecordingMouth(MotionConfig(), model, silence_pose="closed")
    source.start(np.zeros(52, np.float32), fps)
    features = FeatureStream(fps)
    for start in range(0, len(audio), SAMPLE_RATE):
        source.push(features.push(audio[start:start + SAMPLE_RATE]))
    source.push(features.flush())
    source.flush()
    record = np.array(source.record)
    return record[:, 0], record[:, 1]


def fractional_lag(a: np.ndarray, b: np.ndarray, max_lag: int = 4) -> float:
    """Lag (frames, + = a later) of the best correlation, refined by a parabola through its neighbours."""
    n = min(len(a), len(b))
    r = np.array([pearson(a[max(0, k):n + min(0, k)], b[max(0, -k):n - max(0, k)]) for k in range(-max_lag, max_lag + 1)])
    k = int(np.argmax(r))
    if 0 < k < len(r) - 1 and (r[k - 1] - 2 * r[k] + r[k + 1]) < 0:
        return k - max_lag + 0.5 * (r[k - 1] - r[k + 1]) / (r[k - 1] - 2 * r[k] + r[k + 1])
    return float(k - max_lag)


def image_mode_gaps(path: Path) -> np.ndarray:
    """The clip's inner-lip gap tracked frame by frame in image mode (no temporal filter), NaN where no face."""
    return measure.mouth_aperture(track_video(path, cache_dir=TRACKS, video=False).landmarks)


BILABIALS = ("P", "B", "M")  # CMU phone names of the sounds made with closed lips
CLOSURES = (0.5, 1.0)  # how far the lips close on a bilabial (share of the gap taken away)


def bilabial_frames(audio: np.ndarray, fps: int, n: int) -> np.ndarray:
    """(n,) bool: frames whose centre falls in a p, b or m that pocketsphinx recognised and aligned."""
    import os

    from pocketsphinx import Decoder, get_model_path

    model = os.path.join(get_model_path(), "en-us")
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    decoder = Decoder(hmm=os.path.join(model, "en-us"), lm=os.path.join(model, "en-us.lm.bin"),
                      dict=os.path.join(model, "cmudict-en-us.dict"), loglevel="FATAL")
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    words = decoder.hyp().hypstr if decoder.hyp() else ""
    closed = np.zeros(n, bool)
    if not words:
        return closed
    decoder.set_align_text(words)  # a pass aligning the words, then set_alignment and a pass for the phones
    for phone_pass in (False, True):
        if phone_pass:
            decoder.set_alignment()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
    centres = (np.arange(n) + 0.5) / fps
    for word in decoder.get_alignment():
        for phone in word:
            if phone.name in BILABIALS:  # start and duration in 10 ms frames
                closed |= (centres >= phone.start / 100) & (centres < (phone.start + phone.duration) / 100)
    return closed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--loo-dir", type=Path, default=LOO_DIR)
    parser.add_argument("--tracker-delay", action="store_true", help="also measure the video-mode tracker's delay")
    parser.add_argument("--phonetic", action="store_true",
                        help="also close the lips on recognised p/b/m (needs pocketsphinx==5.1.1)")
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"no data folder {args.data}: pass --data with the real talking clips")
    header = "| clip | raw r | raw lag | gated r | gated lag | rest (gated) | ceiling r (closed) | scored silent frames |"
    if args.tracker_delay:
        header += " video-mode delay (frames) |"
    if args.phonetic:
        header += " real gap z on p/b/m | " + " | ".join(f"gated r, p/b/m closed {c:.0%}" for c in CLOSURES) + " |"
    print(header + "\n" + "|---" * (header.count("|") - 1) + "|")
    rows = []
    for path in sorted(args.data.glob("*.mp4")):
        model_path = args.loo_dir / f"{path.stem}.npz"
        if not model_path.is_file():
            raise SystemExit(f"no held-out model {model_path}: run scripts/train_mouth_model.py first")
        track = track_video(path, cache_dir=TRACKS)
        fps = int(round(track.fps))
        audio = load_audio(path, SAMPLE_RATE)
        n = min(len(track.landmarks), frame_count(len(audio), fps))
        real = measure.mouth_aperture(track.landmarks[:n])
        gap, gate = gap_and_gate(MouthModel.load(model_path), audio, fps)
        gap, gate = gap[:n], gate[:n]
        voiced = voiced_frames(audio, fps, n)
        raw, gated = lagged_correlation(gap, real), lagged_correlation(gap * gate, real)
        rest = silence_rest_share(gap * gate, voiced, float(real[0]), fps)
        scored = scored_silence(voiced, fps)
        ceiling = pearson(np.where(scored, 0.0, real), real)
        row = [raw.correlation, raw.best_lag, gated.correlation, gated.best_lag, rest, ceiling]
        line = (f"| {path.stem} | {raw.correlation:.2f} | {raw.best_lag:+d} | {gated.correlation:.2f} | "
                f"{gated.best_lag:+d} | {'-' if np.isnan(rest) else f'{rest:.2f}'} | {ceiling:.2f} | {int(scored.sum())} |")
        if args.tracker_delay:
            delay = fractional_lag(real, image_mode_gaps(path)[:n])
            row.append(delay)
            line += f" {delay:+.2f} |"
        if args.phonetic:
            closed = bilabial_frames(audio, fps, n)
            z = float(((real - real.mean()) / real.std())[closed].mean()) if closed.any() else float("nan")
            scores = [pearson(gap * gate * (1 - c * closed), real) for c in CLOSURES]
            row += [z, *scores]
            line += f" {z:+.2f} | " + " | ".join(f"{r:.3f}" for r in scores) + " |"
        rows.append(row)
        print(line, flush=True)
    m = np.nanmean(np.array(rows, float), axis=0)
    extra = m[6:]
    print(f"| **mean** | {m[0]:.3f} | {m[1]:+.2f} | {m[2]:.3f} | {m[3]:+.2f} | {m[4]:.3f} | {m[5]:.3f} | |"
          + (f" {extra[0]:+.2f} |" if args.tracker_delay else "")
          + (" " + " | ".join(f"{x:+.2f}" if i == 0 else f"{x:.3f}" for i, x in enumerate(extra[-3:])) + " |"
             if args.phonetic else ""))


if __name__ == "__main__":
    main()
