"""Audio features per video frame, computed incrementally from PCM chunks.

samples (float32 mono, SAMPLE_RATE) -> AudioFeatures, one row per video frame. Frame i covers
[i / fps, (i + 1) / fps); its analysis window (WINDOW_FRAMES video frames long, Hann) is centred on
the frame's middle, so a frame is decided once the audio half a window past its centre has arrived.
Chunking never changes the result: pushing the audio in any pieces gives the same features.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..config import SAMPLE_RATE

WINDOW_FRAMES = 2.0  # analysis window, in video frames (80 ms at 25 fps)
SILENCE_DB = -90.0  # loudness floor, dBFS
BANDS_HZ = ((80, 500), (500, 2000), (2000, 6000))  # low (voicing), mid (first formants), high (fricatives)
PITCH_RANGE_HZ = (60.0, 600.0)  # fundamental frequencies searched: low male speech to high singing
PITCH_VOICING = 0.5  # normalised autocorrelation peak needed to call a window voiced (Boersma 1993 uses 0.45)
PITCH_MIN_DB = -50.0  # windows quieter than this have no pitch
PITCH_OCTAVE_SHARE = 0.9  # the shortest period whose peak reaches this share of the best wins (no octave drops)


@dataclass(frozen=True)
class AudioFeatures:
    """Per-frame features, T rows.

    loudness_db: (T,) float32 RMS level in dBFS (floor SILENCE_DB).
    bands: (T, 3) float32 share of energy in BANDS_HZ (rows sum to <= 1).
    centroid_hz: (T,) float32 spectral centroid of 80-6000 Hz.
    pitch_hz: (T,) float32 fundamental frequency (autocorrelation, PITCH_RANGE_HZ), 0 where unvoiced.
    samples: (n,) float32 PCM (SAMPLE_RATE) that arrived with these rows, not aligned to them: a
        source that analyses the raw audio itself (e.g. a speech encoder) streams these on its own.
    """

    loudness_db: np.ndarray
    bands: np.ndarray
    centroid_hz: np.ndarray
    pitch_hz: np.ndarray
    samples: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def __len__(self) -> int:
        return len(self.loudness_db)

    def rows(self, start: int, stop: int) -> "AudioFeatures":
        """Frames [start, stop) (without PCM: samples are not aligned to rows)."""
        return AudioFeatures(self.loudness_db[start:stop], self.bands[start:stop], self.centroid_hz[start:stop],
                             self.pitch_hz[start:stop])

    @staticmethod
    def concat(parts: list["AudioFeatures"]) -> "AudioFeatures":
        """Join runs end to end."""
        return AudioFeatures(np.concatenate([p.loudness_db for p in parts]) if parts else np.zeros(0, np.float32),
                             np.concatenate([p.bands for p in parts]) if parts else np.zeros((0, 3), np.float32),
                             np.concatenate([p.centroid_hz for p in parts]) if parts else np.zeros(0, np.float32),
                             np.concatenate([p.pitch_hz for p in parts]) if parts else np.zeros(0, np.float32),
                             np.concatenate([p.samples for p in parts]) if parts else np.zeros(0, np.float32))


def frame_count(n_samples: int, fps: float, sample_rate: int = SAMPLE_RATE) -> int:
    """Video frames for an audio of n_samples: the video's duration matches within half a frame."""
    return max(1, int(round(n_samples * fps / sample_rate)))


class FeatureStream:
    """Incremental feature extraction: push() PCM chunks, then flush() at the end."""

    def __init__(self, fps: float, sample_rate: int = SAMPLE_RATE):
        self.fps = float(fps)
        self.sample_rate = sample_rate
        self.window = int(round(WINDOW_FRAMES * sample_rate / fps))
        self._hann = np.hanning(self.window).astype(np.float32)
        freqs = np.fft.rfftfreq(self.window, 1.0 / sample_rate)
        self._band_masks = [(freqs >= lo) & (freqs < hi) for lo, hi in BANDS_HZ]
        self._speech = (freqs >= BANDS_HZ[0][0]) & (freqs < BANDS_HZ[-1][1])
        self._freqs = freqs.astype(np.float32)
        # autocorrelation pitch (Boersma 1993): the windowed signal's autocorrelation over the window's own
        self._nfft = 1 << int(np.ceil(np.log2(2 * self.window)))
        hann_ac = np.fft.irfft(np.abs(np.fft.rfft(self._hann.astype(np.float64), self._nfft)) ** 2)[:self.window]
        self._hann_ac = hann_ac / hann_ac[0]
        self._lags = (int(np.floor(sample_rate / PITCH_RANGE_HZ[1])),
                      min(int(np.ceil(sample_rate / PITCH_RANGE_HZ[0])), self.window // 2))
        self._buffer = np.zeros(self.window // 2, np.float32)  # zero padding before t = 0
        self._buffer_start = -(self.window // 2)  # sample index of _buffer[0]
        self._received = 0
        self._next_frame = 0

    def _centre(self, frame: int) -> int:
        return int(round((frame + 0.5) * self.sample_rate / self.fps))

    def push(self, samples: np.ndarray) -> AudioFeatures:
        """Add a chunk; features of every frame whose window is now complete."""
        samples = np.asarray(samples, np.float32).ravel()
        self._buffer = np.concatenate([self._buffer, samples])
        self._received += len(samples)
        return replace(self._emit(last_available=self._received), samples=samples)

    def flush(self) -> AudioFeatures:
        """Features of the remaining frames (the audio's end padded with silence)."""
        total = frame_count(self._received, self.fps, self.sample_rate)
        self._buffer = np.concatenate([self._buffer, np.zeros(self.window, np.float32)])
        return self._emit(last_available=None, until=total)

    def _emit(self, last_available: int | None, until: int | None = None) -> AudioFeatures:
        starts = []
        frame = self._next_frame
        half = self.window // 2
        while True:
            if until is not None and frame >= until:
                break
            start = self._centre(frame) - half
            if last_available is not None and start + self.window > last_available:
                break
            starts.append(start)
            frame += 1
        self._next_frame = frame
        if not starts:
            self._trim()
            return AudioFeatures.concat([])
        idx = np.array(starts)[:, None] - self._buffer_start + np.arange(self.window)[None]
        windows = self._buffer[idx] * self._hann  # (T, window)
        self._trim()
        return self._features(windows)

    def _trim(self) -> None:
        """Drop samples no future frame needs (memory stays flat for any length)."""
        keep_from = self._centre(self._next_frame) - self.window // 2
        drop = max(0, keep_from - self._buffer_start)
        if drop:
            self._buffer = self._buffer[drop:]
            self._buffer_start += drop

    def _features(self, windows: np.ndarray) -> AudioFeatures:
        # one window at a time: batched reductions round differently with the batch size, and
        # streaming must give bit-identical features whatever the chunking
        rows = [self._window_features(w) for w in windows]
        return AudioFeatures(np.array([r[0] for r in rows], np.float32), np.array([r[1] for r in rows], np.float32),
                             np.array([r[2] for r in rows], np.float32), np.array([r[3] for r in rows], np.float32))

    def _pitch(self, window: np.ndarray, loudness: float) -> float:
        """F0 (Hz) of one Hann-windowed frame, 0 if unvoiced: the peak of its normalised autocorrelation
        (divided by the window's) within PITCH_RANGE_HZ, refined by a parabola."""
        lo, hi = self._lags
        if loudness < PITCH_MIN_DB or hi <= lo + 2:
            return 0.0
        x = window.astype(np.float64)
        x = x - self._hann * (x.sum() / self._hann.sum())  # the windowed signal without its DC
        ac = np.fft.irfft(np.abs(np.fft.rfft(x, self._nfft)) ** 2)[:self.window]
        if ac[0] <= 1e-12:
            return 0.0
        r = ac[:hi + 2] / ac[0] / np.maximum(self._hann_ac[:hi + 2], 1e-6)
        segment = r[lo:hi + 1]
        peaks = np.flatnonzero((segment[1:-1] > segment[:-2]) & (segment[1:-1] >= segment[2:])) + 1
        if not len(peaks):
            return 0.0
        best = segment[peaks].max()
        if best < PITCH_VOICING:
            return 0.0
        k = int(peaks[np.argmax(segment[peaks] >= PITCH_OCTAVE_SHARE * best)])  # the shortest strong period
        a, b, c = segment[k - 1], segment[k], segment[k + 1]
        shift = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) < 0 else 0.0
        return float(self.sample_rate / (lo + k + shift))

    def _window_features(self, window: np.ndarray) -> tuple[float, np.ndarray, float, float]:
        rms = np.sqrt(float((window.astype(np.float64) ** 2).mean()) / float((self._hann.astype(np.float64) ** 2).mean()))
        loudness = max(20 * np.log10(max(rms, 1e-12)), SILENCE_DB)
        power = np.abs(np.fft.rfft(window.astype(np.float64))) ** 2
        speech = power[self._speech].sum() + 1e-12
        bands = np.array([power[m].sum() / speech for m in self._band_masks])
        centroid = (power[self._speech] * self._freqs[self._speech]).sum() / speech
        return loudness, bands, centroid, self._pitch(window, loudness)


def extract_features(samples: np.ndarray, fps: float, sample_rate: int = SAMPLE_RATE) -> AudioFeatures:
    """Whole-clip features (the same as streaming the clip through FeatureStream)."""
    stream = FeatureStream(fps, sample_rate)
    return AudioFeatures.concat([stream.push(samples), stream.flush()])
