"""Live sessions in worker processes: `python -m talkinghead.server.live_worker FD` runs one.

FD is the child's end of a socket pair; messages are pickled tuples (see SessionWorker). The server
side holds a SessionWorker per process and keeps idle ones in SessionWorkers.
"""

from __future__ import annotations

import logging
import os
import queue
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Callable

import numpy as np

from ..config import GenerateConfig
from ..errors import TalkingHeadError
from ..pipeline import Pipeline
from .admission import FrameCost
from .live import EncodedFrame, LiveSession, PortraitCache, encode_frame, single_threaded_blas

log = logging.getLogger(__name__)

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
        self.cost = FrameCost()  # CPU seconds per frame of the running session (admission.py)
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
        self.cost.reset()
        self._send(("start", image_bytes, config, image_format, quality))
        try:
            reply = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise TalkingHeadError(f"the portrait was not ready within {timeout:.0f} s: try a smaller image") from None
        if reply[0] == "error":
            self.busy = False
            raise TalkingHeadError(reply[1])
        return reply[1], reply[2]

    def calibrate(self, image_bytes: bytes, config: GenerateConfig, seconds: float,
                  timeout: float = WORKER_START_TIMEOUT_S) -> float:
        """CPU seconds per live frame (rendering + JPEG) of this portrait and config, measured in the worker
        on `seconds` of the bundled speech; TalkingHeadError if it fails."""
        self._send(("calibrate", image_bytes, config, seconds))
        try:
            reply = self._replies.get(timeout=timeout)
        except queue.Empty:  # a late answer would be read by the next start: this worker is not reused
            self.process.kill()
            raise TalkingHeadError(f"the calibration did not end within {timeout:.0f} s") from None
        if reply[0] != "calibrated":
            raise TalkingHeadError(str(reply[1:]))
        return reply[1]

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
                self.cost.add(self.frames, message[2])
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
                session = LiveSession(pipeline, lambda frame: send(("frame", frame, time.process_time())),
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
        elif kind == "calibrate":
            send(_calibrate(portraits, *message[1:]))
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


def _calibrate(portraits: PortraitCache, image_bytes: bytes, config: GenerateConfig, seconds: float) -> tuple:
    """("calibrated", CPU s per frame: trimmed mean) of live frames (rendered and JPEG-encoded as a session does),
    after the first few; ("error", message) if it fails."""
    from ..assets import ASSETS_DIR
    from ..audio.features import SAMPLE_RATE
    from ..io import load_audio

    try:
        pipeline = Pipeline(portraits.get(image_bytes, config.render.size), config)
        audio = load_audio(ASSETS_DIR / "demo_speech.wav")[: int(seconds * SAMPLE_RATE)]
        chunks = (audio[i:i + SAMPLE_RATE // 50] for i in range(0, len(audio), SAMPLE_RATE // 50))
        marks = []
        for frame in pipeline.stream(chunks):
            encode_frame(frame, "jpeg")
            marks.append(time.process_time())
    except Exception as exc:  # the server keeps its default estimate
        return ("error", f"calibration failed: {exc}")
    steps = np.sort(np.diff(marks[min(5, len(marks) // 2):]))  # the first frames pay one-off set-up costs
    # the mean of the middle 80%: robust to another process' bursts, and unlike the median it counts work
    # done every other frame (the causal motion model samples a 2-frame window at a time)
    cut = len(steps) // 10
    return ("calibrated", float(steps[cut:len(steps) - cut].mean()) if len(steps) else 0.0)


if __name__ == "__main__":
    worker_main(Connection(int(sys.argv[1])))
