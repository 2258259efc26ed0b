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
import subprocess
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


# --- sessions in worker processes -----------------------------------------------------------
# Rendering is numpy + OpenCV driven by Python code: session threads of one process contend for
# the GIL (two sessions already miss frames on 2 cores), so each live session runs in a worker
# process of its own; the server's event loop only moves bytes. perf_counter is the system's
# monotonic clock, so times taken in the server and in a worker compare directly.

WORKER_START_TIMEOUT_S = 60.0
WORKER_STOP_TIMEOUT_S = 5.0


class SessionWorker:
    """Main-process handle of a worker process that runs live sessions one at a time."""

    def __init__(self):
        import socket
        import sys
        from multiprocessing.connection import Connection

        # a plain `python -m` child (not multiprocessing's spawn, which re-imports the caller's __main__)
        ours, theirs = socket.socketpair()
        self.process = subprocess.Popen([sys.executable, "-m", "talkinghead.server.live_worker", str(theirs.fileno())],
                                        pass_fds=(theirs.fileno(),), env=dict(os.environ, GLOG_minloglevel="2"))
        theirs.close()
        self._conn = Connection(ours.detach())
        self._send_lock = threading.Lock()
        self._replies: queue.SimpleQueue = queue.SimpleQueue()  # answers to "start"
        self._on_frame: Callable[[EncodedFrame], None] | None = None
        self._on_end: Callable[[BaseException | None], None] | None = None
        self.busy = False  # a session is running (or ending) here
        self.frames = 0
        self._reader = threading.Thread(target=self._read, name="talkinghead-live-reader", daemon=True)
        self._reader.start()

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def begin(self, image_bytes: bytes, config: GenerateConfig, image_format: str, quality: int,
              on_frame: Callable[[EncodedFrame], None], on_end: Callable[[BaseException | None], None],
              timeout: float = WORKER_START_TIMEOUT_S) -> tuple[int, int]:
        """Prepare the portrait in the worker and start the session; (width, height), or TalkingHeadError."""
        self._on_frame, self._on_end, self.frames, self.busy = on_frame, on_end, 0, True
        self._send(("start", image_bytes, config, image_format, quality))
        try:
            reply = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise TalkingHeadError(f"the portrait was not ready within {timeout:.0f} s: try a smaller image") from None
        if reply[0] == "error":
            self.busy = False
            raise TalkingHeadError(reply[1])
        return reply[1], reply[2]

    def push(self, samples: np.ndarray, received_at: float) -> None:
        """Send a chunk (float32 mono) to the session."""
        self._send(("chunk", np.asarray(samples, np.float32).tobytes(), received_at))

    def finish(self, received_at: float) -> None:
        """End of the audio: the worker sends the last frames, then "end"."""
        self._send(("finish", received_at))

    def stop(self) -> None:
        """Abandon the session (the client left)."""
        self._send(("stop",))

    def close(self) -> None:
        """End the worker process."""
        try:
            self._send(("exit",))
        except OSError:
            pass
        try:
            self.process.wait(WORKER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._conn.close()

    def _send(self, message: tuple) -> None:
        with self._send_lock:
            self._conn.send(message)

    def _read(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                break
            kind = message[0]
            if kind == "frame":
                self.frames += 1
                if self._on_frame is not None:
                    self._on_frame(message[1])
            elif kind == "end":
                self.busy = False
                if self._on_end is not None:
                    self._on_end(None if message[1] is None else RuntimeError(message[1]))
            else:  # "ready" / "error" answer a start
                self._replies.put(message)
        self._replies.put(("error", "the live worker process stopped"))
        if self.busy and self._on_end is not None:
            self.busy = False
            self._on_end(RuntimeError("the live worker process stopped"))


class SessionWorkers:
    """Idle worker processes, reused across sessions (starting one costs ~2 s of imports)."""

    def __init__(self, keep_idle: int = 1):
        self.keep_idle = keep_idle
        self._idle: list[SessionWorker] = []
        self._lock = threading.Lock()
        self._closed = False

    def prewarm(self, count: int = 1) -> None:
        """Start up to `count` idle workers now (call from a thread)."""
        with self._lock:
            missing = min(count, self.keep_idle) - len(self._idle)
        for _ in range(max(missing, 0)):
            worker = SessionWorker()
            with self._lock:
                if self._closed:
                    worker.close()
                    return
                self._idle.append(worker)

    def acquire(self) -> SessionWorker:
        """An idle worker, or a new one (blocking: call from a thread)."""
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive:
                    return worker
        return SessionWorker()

    def release(self, worker: SessionWorker) -> None:
        """Take a worker back once its session has ended (blocking: call from a thread)."""
        deadline = time.monotonic() + WORKER_STOP_TIMEOUT_S
        if worker.busy and worker.alive:
            worker.stop()
            while worker.busy and worker.alive and time.monotonic() < deadline:
                time.sleep(0.01)
        worker._on_frame = worker._on_end = None
        with self._lock:
            keep = not self._closed and worker.alive and not worker.busy and len(self._idle) < self.keep_idle
            if keep:
                self._idle.append(worker)
        if not keep:
            worker.close()

    def close(self) -> None:
        """End every idle worker (running ones end with their sessions)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.close()


def worker_main(conn) -> None:
    """Worker process (live_worker.py): run sessions one at a time as the server asks (see SessionWorker)."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    single_threaded_blas()
    portraits = PortraitCache(capacity=2)
    send_lock = threading.Lock()

    def send(message: tuple) -> None:
        with send_lock:
            conn.send(message)

    session: LiveSession | None = None
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the server is gone
        kind = message[0]
        if kind == "exit":
            if session is not None:
                session.stop()
            return
        if kind == "start":
            _, image_bytes, config, image_format, quality = message
            try:
                pipeline = Pipeline(portraits.get(image_bytes, config.render.size), config)
                session = LiveSession(pipeline, lambda frame: send(("frame", frame)),
                                      lambda error: send(("end", None if error is None else str(error))),
                                      image_format, quality).start()
            except TalkingHeadError as exc:
                send(("error", str(exc)))
                continue
            except Exception as exc:  # reported to the client; the worker stays usable
                log.exception("live session start failed")
                send(("error", f"the portrait could not be prepared: {exc}"))
                continue
            width, height = pipeline.frame_size
            send(("ready", width, height))
        elif session is None:
            continue  # a late "stop" or chunk of a session that has ended
        elif kind == "chunk":
            session.push(np.frombuffer(message[1], np.float32), message[2])
        elif kind == "finish":
            session.finish(message[1])
            session.join()
            session = None
        elif kind == "stop":
            session.stop()
            session.join()
            session = None
