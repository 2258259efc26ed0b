"""Whisper tiny.en's encoder (whisper.py) streamed with a bounded look-ahead, as per-frame speech features.

The streaming path uses GELU's tanh approximation (max difference 0.035, rms 0.0025 from the exact
encoder). Streaming (`SpeechEncoderStream`), in the manner of Transformer-XL / Emformer [Dai et al. 2019;
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

from dataclasses import dataclass

import numpy as np

from .features import SAMPLE_RATE, frame_count
from .whisper import (ENCODER_RATE, HOP_LENGTH, LOG_DYNAMIC_RANGE, MEL_FLOOR, MEL_FRAMES_PER_ENCODER_FRAME, N_FFT, N_MELS, WhisperEncoder, conv1d_k3, layer_norm, load_encoder, mel_filters, periodic_hann)

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
