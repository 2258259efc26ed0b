"""BackgroundVideoWriter: a VideoWriter that encodes on a thread of its own, so rendering overlaps encoding."""

from __future__ import annotations

import queue
import threading
from fractions import Fraction

import numpy as np

from .media import PathLike
from .video import VideoWriter

BACKGROUND_QUEUE_ITEMS = 8
"""Frames and audio chunks a BackgroundVideoWriter holds before `write` waits (8 frames: 6 MiB at 512 px)."""


class BackgroundVideoWriter:
    """A VideoWriter whose colour conversion, encoding and muxing run on a thread of their own.

    Same arguments, methods and file as :class:`VideoWriter` (the calls reach it in the same order, so
    the bytes are identical); `write` and `write_audio` only queue their data, so rendering the next
    frame overlaps with encoding the last. x264 and FFmpeg's converter release the GIL, so on two or
    more cores a whole run takes about the encoder's share less wall time (benchmarks/bench_command.py).
    An error on the thread (a full disk, say) is raised by the next call, and the partial file is
    deleted as VideoWriter does.
    """

    def __init__(self, path: PathLike, fps: float | Fraction, width: int, height: int, **kwargs) -> None:
        audio = kwargs.pop("audio", None)
        if audio is not None:
            kwargs["has_audio"] = True
        self._writer = VideoWriter(path, fps, width, height, **kwargs)  # argument errors raise here, at once
        self.path, self.partial_path = self._writer.path, self._writer.partial_path
        self._queue: queue.Queue = queue.Queue(maxsize=BACKGROUND_QUEUE_ITEMS)
        self._error: BaseException | None = None
        self._finished = False
        self._thread = threading.Thread(target=self._run, name="talkinghead-encoder", daemon=True)
        self._thread.start()
        if audio is not None:
            self.write_audio(audio)

    @property
    def frames_written(self) -> int:
        """Frames encoded so far (frames still queued are not counted)."""
        return self._writer.frames_written

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is not None:
                continue  # drain what is queued after a failure, without writing it
            kind, data = item
            try:
                if kind == "video":
                    self._writer.write(data)
                else:
                    self._writer.write_audio(data)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                self._error = exc

    def _put(self, item) -> None:
        self._raise_pending()
        if self._finished:
            raise ValueError("VideoWriter is closed")
        self._queue.put(item)

    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            self._stop()
            self._writer.abort()
            raise error

    def write(self, frame: np.ndarray) -> None:
        """Queue one (height, width, 3) uint8 RGB frame (checked here; the array must not change afterwards)."""
        self._writer.check_frame(frame)
        self._put(("video", frame))

    def write_audio(self, samples: np.ndarray) -> None:
        """Queue a chunk of 1-D float32 mono samples (see VideoWriter.write_audio)."""
        self._put(("audio", self._writer.checked_audio(samples).copy()))  # a copy: the caller may reuse its buffer

    def _stop(self) -> None:
        if not self._finished:
            self._finished = True
            self._queue.put(None)
            self._thread.join()

    def close(self) -> None:
        """Wait for the queue to be written, then finish the MP4 (VideoWriter.close)."""
        if self._finished and self._error is None:
            return
        self._stop()
        self._raise_pending()
        self._writer.close()

    def abort(self) -> None:
        """Drop what is queued and delete the partial file."""
        self._error = self._error or _Aborted()
        self._stop()
        self._error = None
        self._writer.abort()

    def __enter__(self) -> "BackgroundVideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class _Aborted(Exception):
    """Marks a BackgroundVideoWriter whose queue is being dropped."""
