"""Live sessions: PCM chunks in -> encoded frames out, each as soon as the look-ahead allows.

A `LiveSession` drives the same generator as the offline command (`Pipeline.stream`) on its own
thread, fed from a queue of chunks, so its frames are identical to `generate`'s for the same audio
and options. The generator asks for the next chunk only after yielding every frame the previous
one decided, which is how each frame is attributed to the chunk whose arrival decided it.

Delay (documented in the README): frame i shows the audio of [i, i+1)/fps. Its features use an
analysis window of WINDOW_FRAMES frames centred on the frame, and the motion source looks L frames
further ahead (`MotionConfig.lookahead_frames`), so frame i is decided once audio up to
(i + 0.5 + WINDOW_FRAMES / 2 + L) / fps has arrived: (WINDOW_FRAMES / 2 + L) / fps after the frame's
centre, 120 ms at 25 fps with the default L = 2 (each frame of look-ahead adds 40 ms). Compute
latency (chunk in -> frame encoded and sent) comes on top and is what bench_live.py measures.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import queue
import struct
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from ..audio.features import SAMPLE_RATE
from ..config import PRESETS, GenerateConfig
from ..errors import TalkingHeadError
from ..io import load_image
from ..pipeline import Pipeline, Portrait, prepare_portrait
from ..pipeline import decision_delay_seconds as pipeline_decision_delay

log = logging.getLogger(__name__)

# Binary frame message: this header, then the encoded image.
FRAME_HEADER = struct.Struct("<IId")  # frame index, sequence number of the deciding chunk, pts (s)
END_OF_AUDIO = 0xFFFFFFFF  # chunk number of frames decided by the end of the audio (the tail)
AUDIO_FORMATS = {"s16": np.dtype("<i2"), "f32": np.dtype("<f4")}  # little-endian PCM sample types
IMAGE_FORMATS = {"jpeg": "JPEG", "webp": "WEBP"}
DEFAULT_QUALITY = 80
WEBP_METHOD = 2  # libwebp effort 0-6: 2 costs ~12 ms at 512 px (4: ~24 ms); JPEG costs ~1 ms
PORTRAIT_CACHE_SIZE = 4  # prepared portraits kept (face analysis costs ~1-2 s per portrait)


def single_threaded_blas() -> None:
    """One BLAS thread: sessions run in parallel threads, and OpenBLAS's own worker threads spin-wait
    against them (frames 3-4x slower on a shared 2-core machine; see benchmarks/bench_live.py)."""
    os.environ["OPENBLAS_NUM_THREADS"] = "1"  # for libraries loaded from now on
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        log.warning("threadpoolctl is missing: BLAS may use several threads and slow live sessions")
        return
    threadpool_limits(1, user_api="blas")  # the libraries already loaded


# Live sessions default to the loudness-driven mouth: it decides a frame 120 ms after its audio, where
# the learned speech mouth needs 0.9 s. A client may still ask for motion.mouth = "speech".
LIVE_DEFAULTS = PRESETS["live"]  # the low-latency loudness mouth (config.PRESETS)


def decision_delay_seconds(config: GenerateConfig) -> float:
    """Audio needed past a frame's centre before it is decided (pipeline.decision_delay_seconds)."""
    return pipeline_decision_delay(config)


def decode_pcm(data: bytes, audio_format: str) -> np.ndarray:
    """Little-endian PCM bytes ('s16' or 'f32') -> float32 mono samples in [-1, 1]."""
    dtype = AUDIO_FORMATS[audio_format]
    if len(data) % dtype.itemsize:
        raise TalkingHeadError(f"audio message of {len(data)} bytes is not whole {audio_format} samples "
                               f"({dtype.itemsize} bytes each)")
    samples = np.frombuffer(data, dtype)
    if audio_format == "s16":
        return samples.astype(np.float32) / 32768.0
    samples = samples.astype(np.float32)
    if not np.all(np.isfinite(samples)):
        raise TalkingHeadError("audio message has NaN or infinite samples: send PCM in [-1, 1]")
    return np.clip(samples, -1.0, 1.0)


def encode_frame(frame: np.ndarray, image_format: str = "jpeg", quality: int = DEFAULT_QUALITY) -> bytes:
    """(H, W, 3) uint8 RGB -> JPEG or WebP bytes."""
    buffer = io.BytesIO()
    extra = {"method": WEBP_METHOD} if image_format == "webp" else {}
    Image.fromarray(frame).save(buffer, IMAGE_FORMATS[image_format], quality=quality, **extra)
    return buffer.getvalue()


@dataclass(frozen=True)
class EncodedFrame:
    """One frame ready to send, with the times needed to measure latency (time.perf_counter)."""

    index: int
    chunk: int  # sequence number of the audio chunk whose arrival decided it (END_OF_AUDIO: the tail)
    pts: float  # seconds: start of the audio interval the frame shows
    data: bytes
    chunk_received_at: float  # when that chunk was handed to the session
    encoded_at: float

    def message(self) -> bytes:
        """The binary WebSocket message: FRAME_HEADER + image bytes."""
        return FRAME_HEADER.pack(self.index, self.chunk, self.pts) + self.data


class PortraitCache:
    """Prepared portraits by (image bytes, size), so reconnecting with the same picture is quick."""

    def __init__(self, capacity: int = PORTRAIT_CACHE_SIZE):
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, int], Portrait] = OrderedDict()
        self._lock = threading.Lock()  # one face analysis at a time (each loads the landmarker)

    def get(self, image_bytes: bytes, size: int) -> Portrait:
        """Decode and prepare the portrait (or reuse it); TalkingHeadError on a bad image or no face."""
        key = (hashlib.sha256(image_bytes).hexdigest(), size)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            with tempfile.TemporaryDirectory(prefix="talkinghead-portrait-") as tmp:
                path = Path(tmp) / "portrait"
                path.write_bytes(image_bytes)
                try:
                    image = load_image(path)
                except TalkingHeadError as exc:  # never show server paths to a client
                    raise TalkingHeadError(str(exc).replace(str(path), "portrait")) from None
            portrait = prepare_portrait(image, size, "the portrait")
            self._items[key] = portrait
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
            return portrait


class LiveSession:
    """Streams one portrait: push(samples) from any thread; frames go to `on_frame` from the session thread.

    on_frame(EncodedFrame) is called for each frame in order; on_end(error or None) once at the end.
    """

    def __init__(self, pipeline: Pipeline, on_frame: Callable[[EncodedFrame], None],
                 on_end: Callable[[BaseException | None], None] = lambda error: None,
                 image_format: str = "jpeg", quality: int = DEFAULT_QUALITY):
        if image_format not in IMAGE_FORMATS:
            raise TalkingHeadError(f"image format '{image_format}' is not supported: use {' or '.join(IMAGE_FORMATS)}")
        self.pipeline = pipeline
        self.on_frame, self.on_end = on_frame, on_end
        self.image_format, self.quality = image_format, int(quality)
        self._chunks: queue.SimpleQueue = queue.SimpleQueue()
        self._next_chunk = 0
        self._pending_samples = 0  # pushed but not yet taken by the generator
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="talkinghead-live", daemon=True)
        self._started = False

    @property
    def fps(self) -> int:
        return self.pipeline.config.fps

    @property
    def backlog_seconds(self) -> float:
        """Audio handed in but not yet processed: grows when the machine cannot keep up."""
        return self._pending_samples / SAMPLE_RATE

    def start(self) -> "LiveSession":
        """Start the session thread."""
        single_threaded_blas()  # again: a library loaded since the last call is limited too
        self._started = True
        self._thread.start()
        return self

    def push(self, samples: np.ndarray, received_at: float | None = None) -> int:
        """Hand in the next chunk (float32 mono, SAMPLE_RATE, any length); returns its sequence number.

        received_at: time.perf_counter() when the chunk reached the server (default: now).
        """
        samples = np.asarray(samples, np.float32).ravel()
        with self._lock:
            seq = self._next_chunk
            self._next_chunk += 1
            self._pending_samples += len(samples)
        self._chunks.put((seq, samples, time.perf_counter() if received_at is None else received_at))
        return seq

    def finish(self, received_at: float | None = None) -> None:
        """End of the audio: the session decides the held-back frames, then calls on_end."""
        self._chunks.put((END_OF_AUDIO, None, time.perf_counter() if received_at is None else received_at))

    def stop(self) -> None:
        """Abandon the session (client gone): no more frames are produced."""
        self._stopped.set()
        self._chunks.put(None)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the session thread."""
        if self._started:
            self._thread.join(timeout)

    def _run(self) -> None:
        current = {"seq": END_OF_AUDIO, "received": time.perf_counter()}

        def chunks():
            while True:
                item = self._chunks.get()
                if item is None or self._stopped.is_set():
                    return
                seq, samples, received = item
                if samples is None:  # finish(): the tail frames are decided by the end of the audio
                    current.update(seq=seq, received=received)
                    return
                with self._lock:
                    self._pending_samples -= len(samples)
                current.update(seq=seq, received=received)
                yield samples

        error = None
        try:
            for index, frame in enumerate(self.pipeline.stream(chunks())):
                if self._stopped.is_set():
                    break
                data = encode_frame(frame, self.image_format, self.quality)
                self.on_frame(EncodedFrame(index, current["seq"], index / self.fps, data, current["received"],
                                           time.perf_counter()))
        except BaseException as exc:  # reported to the client by on_end; the server keeps running
            log.exception("live session failed")
            error = exc
        self.on_end(error)
