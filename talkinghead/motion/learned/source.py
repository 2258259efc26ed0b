"""DiffusionMotion: the MotionSource that samples the motion model window after window.

Each window of `window` model frames is sampled from noise (seeded by the clip seed and the window's
index, so chunking never changes the output) conditioned on the `previous` frames already generated,
the prosody of its audio (and of the previous frames'), the portrait's rest expression and the head
controls; the next window continues from it, so any length works without seams or drift (VASA-1's
scheme). A model trained on speech states (ModelConfig.audio_features "speech") reads those instead
of prosody: the speech mouth's (it computes them anyway), or its own streamed encoder's. The mouth
comes from another MotionSource (the speech model by default): its mouth coefficients replace the
generated ones. The model runs at its own frame rate (25 fps); audio rows are picked and motion
interpolated for other video rates. In the speaker's pauses the shown head settles (settle_head: the
checkpoint's pause_follow, calibrated on its training clips), as real heads do.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ...audio.features import WINDOW_FRAMES, AudioFeatures
from ...audio.speech_encoder import ENCODER_RATE, SpeechFeatureStream, StreamGrid
from ...config import MotionConfig
from ...face.expression import load_basis
from ...face.pose import euler_to_rotation, head_euler, upright_frame
from ..base import MotionSource
from ..audio_rules import EnergyVoiceActivity
from ..mixer import REGION_INDEX
from ..types import Motion, interpolate_rows, runs
from .checkpoint import MotionModel
from .denoiser import Denoiser, guided
from .network import MotionTransformer, conditioning_input
from .representation import (GAZE, HEAD, LOUDNESS_FLOOR_DB, ROTATION, TRANSLATION, audio_vectors,
                             speech_vectors, standardised_rest, vectors_to_motion)
from .samplers import karras_sigmas, sampler

WINDOW_SEED = 7  # stream id of the window noise in np.random.default_rng([seed, WINDOW_SEED, window])
DEFAULT_FPS = 25.0  # the frame rate latency_s assumes before start()
HEAD_SMOOTHING_FRAMES = 1.5  # Gaussian sigma (model frames) over each new window's head pose: the sampled pose
# jitters frame to frame (mean |second difference| 2.4x a real head's on the training split); this sigma brings
# it to a real head's (0.19 against 0.18 degrees a frame squared, scripts/eval_motion.py --shards ... --split train)
HEAD_SMOOTHING_RADIUS = 6  # frames each side the Gaussian reaches
HEAD_PACE_FRAMES = 3.0  # Gaussian sigma (model frames) splitting the head pose into its slow sway and its quicker
# movements (nods, turns: mostly above 1.3 Hz); MotionConfig.head_speed scales the quicker part
HEAD_PACE_RADIUS = 9
PAUSE_SHORTEST_S = 0.2  # unvoiced this long (the rules' energy detector, with its hang-over) is a pause, not a
# gap between words
PAUSE_RELEASE_S = 0.2  # after a pause the head's follow rises back to 1 over this long, so the head catches up
# with its sampled path over several frames instead of in one step


@dataclass(frozen=True)
class Sampling:
    """How windows are sampled: steps, sampler name, guidance scales on the audio and on the head controls."""

    steps: int = 10
    sampler: str = "dpmpp_2m"
    audio_guidance: float = 1.0
    control_guidance: float = 1.0


@lru_cache(maxsize=1)
def _upright() -> np.ndarray:
    return upright_frame(load_basis().mean_shape)


def canonical_to_upright_angles(angles: np.ndarray) -> np.ndarray:
    """(F, 3) yaw, pitch, roll about the canonical face's axes -> the same rotations about the upright
    axes that Motion uses (face.pose.upright_frame), for models trained on the former."""
    frame = _upright()
    return np.array([head_euler(euler_to_rotation(*row), frame) for row in np.asarray(angles, np.float64)],
                    np.float32).reshape(-1, 3)


def smooth_head(window: np.ndarray, before: np.ndarray) -> np.ndarray:
    """(W, D) window with its head pose (rotation, translation, scale) smoothed by a Gaussian of
    HEAD_SMOOTHING_FRAMES; `before` (B, D) are the frames already generated (B may be 0), read but not
    changed, so the smoothing runs on across window boundaries; past the window's end the window is
    mirrored (its next window is not known yet). Chunking never changes it: windows are fixed."""
    out = window.copy()
    out[:, HEAD] = _gaussian_head(window, before, HEAD_SMOOTHING_FRAMES, HEAD_SMOOTHING_RADIUS)
    return out


def pace_head(window: np.ndarray, before: np.ndarray, speed: float) -> np.ndarray:
    """(W, D) window whose head pose moves `speed` times as fast in its quicker movements: the pose is
    split by a Gaussian of HEAD_PACE_FRAMES into a slow sway, kept, and the rest, scaled by `speed` (below 1
    calmer, above 1 brisker; 1 returns the window unchanged). `before` as smooth_head's."""
    if speed == 1.0:
        return window
    slow = _gaussian_head(window, before, HEAD_PACE_FRAMES, HEAD_PACE_RADIUS)
    out = window.copy()
    out[:, HEAD] = slow + np.float32(speed) * (window[:, HEAD] - slow)
    return out


def settle_head(window: np.ndarray, last: np.ndarray | None, follow: np.ndarray) -> np.ndarray:
    """(W, D) window whose head pose closes only `follow` (W,) of its distance to the sampled pose each frame
    (1: the sampled pose; below 1 it lags and moves less, as a one-pole low-pass); `last` is the head pose
    shown on the frame before (None at a clip's start: the first frame is kept)."""
    follow = np.asarray(follow, np.float32)
    if np.all(follow >= 1.0):
        return window
    out = window.copy()
    shown = window[0, HEAD].copy() if last is None else np.asarray(last, np.float32).copy()
    for i in range(len(window)):
        if follow[i] >= 1.0:  # exactly the sampled pose (no rounding left over from the pause)
            shown = window[i, HEAD].copy()
        else:
            shown += follow[i] * (window[i, HEAD] - shown)
        out[i, HEAD] = shown
    return out


def pausing(voiced: np.ndarray, frames: np.ndarray, shortest: int) -> np.ndarray:
    """(F,) bool: video frames `frames` (ascending, not negative) lie in a pause, a run of at least `shortest` unvoiced frames
    of the per-frame voice activity `voiced` (frames past its end count as silence, as the audio past a
    clip's end). Runs are cut at the last of `frames`, so the same frames give the same answer however the
    audio arrived: a pause that has just begun there does not count until it is long enough."""
    frames = np.asarray(frames, np.int64)
    if not len(frames):
        return np.zeros(0, bool)
    last = int(frames[-1])
    first = max(int(frames[0]) - shortest, 0)
    silent = np.ones(last + 1 - first, bool)
    heard = np.asarray(voiced[first:last + 1], bool)
    silent[:len(heard)] = ~heard
    long_run = np.zeros_like(silent)
    for start, stop in runs(silent):
        if stop - start >= shortest:
            long_run[start:stop] = True
    return long_run[frames - first]


def _gaussian_head(window: np.ndarray, before: np.ndarray, sigma: float, radius: int) -> np.ndarray:
    """(W, len(HEAD)) the window's head pose smoothed by a Gaussian of `sigma` frames reaching `radius`
    frames each side, over `before` and the window (see smooth_head)."""
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    head = np.concatenate([before[:, HEAD], window[:, HEAD]])
    start = np.repeat(head[:1], max(radius - len(before), 0), 0)  # the clip's first frame held
    mirror = head[-2::-1][:radius] if len(head) > 1 else head[-1:]  # mirrored about the last frame
    end = np.concatenate([mirror, np.repeat(mirror[-1:], radius - len(mirror), 0)])  # ... then held
    padded = np.concatenate([start, head, end])
    first = len(start) + len(before) - radius  # the span centred on the window's first frame
    spans = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1, axis=0)[first:first + len(window)]
    return (spans @ (kernel / kernel.sum())).astype(window.dtype)


def silent_rows(count: int) -> np.ndarray:
    """Audio vectors of silence (past the end of the clip)."""
    silence = AudioFeatures(np.full(count, LOUDNESS_FLOOR_DB, np.float32), np.zeros((count, 3), np.float32),
                            np.zeros(count, np.float32), np.zeros(count, np.float32))
    return audio_vectors(silence, float(LOUDNESS_FLOOR_DB))


class WindowGenerator:
    """Samples one window of standardised motion given its conditions (no state between windows)."""

    def __init__(self, model: MotionModel, sampling: Sampling, config: MotionConfig):
        c = model.config
        self.model, self.sampling, self.seed = model, sampling, config.seed
        self.rest_conditioning = config.rest_conditioning  # off: the rest-dropped branch (the training mean)
        self.denoiser = Denoiser(MotionTransformer(c, model.weights), c.sigma_data, c.prediction)
        self.sigmas = karras_sigmas(sampling.steps, c.sigma_min, c.sigma_max)
        self.sample = sampler(sampling.sampler)
        # the head controls are conditioned at their training median (standardised 0). The model hardly follows
        # them (amplitude 0.5 / 1 / 2 gave 2 s windows of 1.26 / 1.36 / 1.44 degrees, docs/motion_model.md),
        # so head_amplitude and head_speed are applied to its output instead (DiffusionMotion._finish, pace_head)
        self.controls = np.zeros(len(model.stats["control_std"]), np.float32)

    def __call__(self, index: int, previous: np.ndarray | None, audio: np.ndarray, rest: np.ndarray) -> np.ndarray:
        """Window `index`: previous (P, D) standardised or None, audio (P+W, A) raw -> (W, D) standardised."""
        c, s = self.model.config, self.model.stats
        has_previous = previous is not None
        previous = previous if has_previous else np.zeros((c.previous, c.motion_dims), np.float32)
        audio = ((audio - s["audio_mean"]) / s["audio_std"]).astype(np.float32)
        rest = standardised_rest(rest, s) if self.rest_conditioning else np.zeros(c.rest_dims, np.float32)

        def branch(has_audio: bool = True, has_controls: bool = True) -> dict:
            flags = [np.array([v], np.float32) for v in (has_audio, has_controls, has_previous)]
            controls = self.controls if has_controls else np.zeros_like(self.controls)
            return {"previous": previous[None], "audio": (audio if has_audio else np.zeros_like(audio))[None],
                    "conditioning": conditioning_input(rest[None], controls[None], *flags)}

        model = guided(self.denoiser, branch(), branch(has_audio=False), self.sampling.audio_guidance,
                       [(branch(has_controls=False), self.sampling.control_guidance)])
        noise = np.random.default_rng([self.seed, WINDOW_SEED, index]).standard_normal((1, c.window, c.motion_dims))
        x = (noise * self.sigmas[0]).astype(np.float32)
        return self.sample(model, x, self.sigmas)[0]


class DiffusionMotion:
    """MotionSource: head, gaze, blinks, brows and the rest of the face from the motion model; the mouth
    from `mouth` (see module docstring). Identical output for any chunking and the same seed."""

    def __init__(self, model: MotionModel, mouth: MotionSource, config: MotionConfig = MotionConfig(),
                 sampling: Sampling = Sampling()):
        self.model, self.mouth, self.config = model, mouth, config
        self.generate_window = WindowGenerator(model, sampling, config)
        self.reads_speech = model.config.audio_features == "speech"  # the speech encoder's states, not prosody
        offer = getattr(mouth, "share_speech_states", None) if self.reads_speech else None
        # the speech mouth computes the same states: take them from it rather than run the encoder twice
        self.shares_mouth_states = bool(offer and offer(model.config.speech_layer, StreamGrid(), self._mouth_states))
        self.lookahead = model.config.window  # set again in start() for the video's frame rate

    @property
    def latency_s(self) -> float:
        """Audio needed past a frame's centre before it is decided, at worst (the first frame of a window
        waits for the window's last), or the mouth source's if that is longer."""
        fps = getattr(self, "fps", DEFAULT_FPS)
        own = (self.model.config.window - 1) / self.model.config.fps + WINDOW_FRAMES / 2 / fps
        if self.reads_speech:  # the encoder decides a state this long after its time, and frames interpolate
            own = max(own, (self.model.config.window - 1) / self.model.config.fps + 0.5 / fps
                      + StreamGrid().latency_s + 1 / ENCODER_RATE)
        mouth = getattr(self.mouth, "latency_s", None)
        if mouth is None:
            mouth = (WINDOW_FRAMES / 2 + getattr(self.mouth, "lookahead", 0)) / fps
        return max(own, float(mouth))

    def start(self, rest_expression: np.ndarray, fps: float) -> None:
        """Reset for a new clip."""
        c = self.model.config
        self.fps, self.rest = float(fps), np.asarray(rest_expression, np.float32).copy()
        self.ratio = c.fps / self.fps  # model frames per video frame
        self.mouth.start(rest_expression, fps)
        self.lookahead = max(getattr(self.mouth, "lookahead", 0), int(np.ceil(c.window / self.ratio)))
        self._audio = np.zeros((0, c.audio_dims), np.float32)  # conditioning rows from video frame _audio_start on
        own = self.reads_speech and not self.shares_mouth_states
        self._speech = SpeechFeatureStream(fps, c.speech_layer, (0.0,), StreamGrid()) if own else None
        self._audio_start = 0
        self._last_loudness: float | None = None
        self._voice = EnergyVoiceActivity()
        self._voiced = np.zeros(0, bool)  # voice activity (the rules' energy detector) of video frames from
        self._voiced_start = 0  # ... this one on
        self._pause_frames = max(1, int(round(PAUSE_SHORTEST_S * self.fps)))
        self._since_pause = 1 << 30  # model frames since the last one in a pause
        self._motion = np.zeros((0, c.motion_dims), np.float32)  # standardised, model frames from _motion_start
        self._shown = self._motion  # the same paced (head_speed) and settled in pauses: what is emitted; windows
        # read _motion
        self._motion_start = 0
        self._windows = 0
        self._mouth = Motion.empty()  # mouth-source frames from _next on
        self._next = 0  # next video frame to emit
        self._frames = 0  # video frames of audio received
        self._samples = 0  # PCM samples received (a speech-reading model encodes them)

    def push(self, features: AudioFeatures) -> Motion:
        """Consume features; return the frames now decided."""
        if self.reads_speech:
            self._samples += len(features.samples)
            if self._speech is not None:
                self._add_rows(speech_vectors(self._speech.push(features.samples), self.model.stats))
        elif len(features):
            self._add_rows(audio_vectors(features, self._last_loudness))
            self._last_loudness = float(features.loudness_db[-1])
        self._frames += len(features)
        heard = [self._voice.update(float(level))[0] for level in features.loudness_db]
        self._voiced = np.concatenate([self._voiced, np.array(heard, bool)])
        self._mouth = Motion.concat([self._mouth, self.mouth.push(features)])
        while self._window_ready(self._windows):
            self._generate()
        return self._emit(final=False)

    def flush(self) -> Motion:
        """Generate the windows the clip's end needs (audio past it is silence) and return the rest."""
        self._mouth = Motion.concat([self._mouth, self.mouth.flush()])
        if self.reads_speech and self._frames and not self._samples:
            raise ValueError("a speech-reading motion model got no audio samples: feed it AudioFeatures from "
                             "audio.FeatureStream")
        if self._speech is not None:  # the states of the clip's end (past it, the last row is held)
            self._add_rows(speech_vectors(self._speech.flush(), self.model.stats))
        while self._model_frames() - 1 < np.ceil((self._frames - 1) * self.ratio):
            self._generate()
        return self._emit(final=True)

    def _mouth_states(self, states: np.ndarray) -> None:
        """The speech mouth's frame-centre encoder states, as it decides them (see shares_mouth_states)."""
        self._add_rows(speech_vectors(states, self.model.stats))

    def _add_rows(self, rows: np.ndarray) -> None:
        self._audio = np.concatenate([self._audio, rows.astype(np.float32)])

    def _conditioned(self) -> int:
        """Video frames whose conditioning row is known."""
        return self._audio_start + len(self._audio)

    def _model_frames(self) -> int:
        return self._motion_start + len(self._motion)

    def _audio_row(self, model_frame: int) -> int:
        """The video frame whose audio a model frame reads."""
        return int(round(model_frame / self.ratio))

    def _window_ready(self, index: int) -> bool:
        last = (index + 1) * self.model.config.window - 1
        return self._audio_row(last) < min(self._frames, self._conditioned())

    def _generate(self) -> None:
        """Sample the next window from the motion and audio before it."""
        c = self.model.config
        first = self._windows * c.window
        frames = np.arange(first - c.previous, first + c.window)
        rows = np.array([self._audio_row(max(f, 0)) for f in frames]) - self._audio_start
        past_end = self._audio[-1:] if self.reads_speech else silent_rows(1)  # speech: the clip's last state held
        audio = np.concatenate([self._audio, past_end])[np.minimum(rows, len(self._audio))]
        previous = None
        if self._windows:  # fewer frames than the context early in a clip (short windows): the first repeats
            previous = self._motion[-c.previous:]
            previous = np.concatenate([np.repeat(previous[:1], c.previous - len(previous), 0), previous])
        window = self.generate_window(self._windows, previous, audio, self.rest)
        window = smooth_head(window, self._motion[-HEAD_SMOOTHING_RADIUS:]).astype(np.float32)
        shown = pace_head(window, self._motion[-HEAD_PACE_RADIUS:], self.config.head_speed)
        shown = settle_head(shown, self._shown[-1, HEAD] if len(self._shown) else None, self._window_follow(first))
        self._motion = np.concatenate([self._motion, window])
        self._shown = np.concatenate([self._shown, shown])
        self._windows += 1
        self._trim()

    def _window_follow(self, first: int) -> np.ndarray:
        """(window,) settle_head's follow of model frames first.. : the checkpoint's pause_follow in a pause, rising
        back to 1 over PAUSE_RELEASE_S after it, 1 while the speaker talks (scripts/calibrate_motion.py: what
        makes the model's head as much calmer in pauses as real heads are; 1 for checkpoints without it, which
        leave the head as sampled). Windows come in order, so the frames since the last pause carry over."""
        c = self.model.config
        follow = float(self.model.info.get("pause_follow", 1.0))
        if follow >= 1.0:
            return np.ones(c.window, np.float32)
        rows = np.array([self._audio_row(f) for f in range(first, first + c.window)]) - self._voiced_start
        release = max(1.0, PAUSE_RELEASE_S * c.fps)
        out = np.empty(c.window, np.float32)
        for i, pause in enumerate(pausing(self._voiced, rows, self._pause_frames)):
            self._since_pause = 0 if pause else self._since_pause + 1
            out[i] = follow + (1.0 - follow) * min(self._since_pause / release, 1.0)
        return out

    def _trim(self) -> None:
        """Keep only what later windows and frames need (memory is flat for any length)."""
        c = self.model.config
        context = max(c.previous, HEAD_SMOOTHING_RADIUS, HEAD_PACE_RADIUS)  # the next window reads these
        keep_from = min(self._model_frames() - context, int(np.floor(self._next * self.ratio)))
        drop = max(0, keep_from - self._motion_start)
        self._motion, self._shown, self._motion_start = self._motion[drop:], self._shown[drop:], self._motion_start + drop
        first_needed = self._audio_row(max(self._windows * c.window - c.previous, 0))
        drop = max(0, min(first_needed, self._conditioned()) - self._audio_start)
        self._audio, self._audio_start = self._audio[drop:], self._audio_start + drop
        drop = max(0, min(first_needed - self._pause_frames, self._frames) - self._voiced_start)
        self._voiced, self._voiced_start = self._voiced[drop:], self._voiced_start + drop

    def _emit(self, final: bool) -> Motion:
        """Video frames whose generated motion and mouth are both known."""
        last_model = self._model_frames() - 1
        count = 0
        while self._next + count < self._frames and count < len(self._mouth) \
                and np.ceil((self._next + count) * self.ratio) <= last_model:
            count += 1
        if final and count < min(self._frames - self._next, len(self._mouth)):
            raise AssertionError("flush left frames undecided")
        if count == 0:
            return Motion.empty()
        standardised = interpolate_rows(self._shown, (self._next + np.arange(count)) * self.ratio - self._motion_start)
        s = self.model.stats
        motion = self._finish(standardised * s["motion_std"] + s["motion_mean"], self._mouth[:count])
        self._mouth = self._mouth[count:]
        self._next += count
        self._trim()
        return motion

    def _finish(self, vectors: np.ndarray, mouth: Motion) -> Motion:
        """Generated vectors -> Motion: head gain and amplitude, gaze switch, the mouth."""
        vectors = vectors.astype(np.float32).copy()
        # head_gain: the checkpoint's own calibration (scripts/calibrate_motion.py): how much wider real heads
        # move than the model's smoothed samples on its training split; 1 for checkpoints without it
        gain = float(self.model.info.get("head_gain", 1.0))
        scale = gain * self.config.head_amplitude
        vectors[:, ROTATION] *= scale
        vectors[:, TRANSLATION] *= scale
        if not self.config.gaze_saccades:
            vectors[:, GAZE] = 0.0
        motion = vectors_to_motion(vectors, self.rest)
        if self.model.config.head_frame == "canonical":
            motion.head[:, :3] = canonical_to_upright_angles(motion.head[:, :3])
        mouth_ids = REGION_INDEX["mouth"]
        motion.expression[:, mouth_ids] = mouth.expression[:, mouth_ids]
        return motion
