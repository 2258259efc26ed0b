"""The live WebSocket route (WS /api/live): start message, portrait, then audio in and frames out.

Every refusal ends with an {"type": "error", ...} message and a close code saying whose fault it is:
1013 busy, 4400 bad input, 4403 forbidden origin, 4408 timeout, 4409 the client stopped reading
frames, 4503 the server fell behind, 4500 internal.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from urllib.parse import urlsplit

import numpy as np
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from ..audio.features import SAMPLE_RATE
from ..config import GenerateConfig
from ..errors import TalkingHeadError
from .limits import parse_json
from .live import (AUDIO_FORMATS, DEFAULT_QUALITY, END_OF_AUDIO, FRAME_HEADER, IMAGE_FORMATS, EncodedFrame,
                   LIVE_DEFAULTS, decision_delay_seconds, decode_pcm)
from .admission import LiveAdmission
from .live_worker import SessionWorker, SessionWorkers
from .options import OptionError, build_config
from .settings import ServerSettings

MAX_AUDIO_MESSAGE_SECONDS = 1.0  # one live audio message carries at most this much audio
MAX_BUFFERED_FRAMES = 50  # frames waiting for a slow client; older ones are dropped past this
STATS_INTERVAL_S = 1.0
QUALITY_RANGE = (10, 95)
START_EXAMPLE = '{"type": "start", "options": {...}}'
START_FIELDS = ("type", "options", "audio_format", "image_format", "quality", "sample_rate")
CLOSE_SEND_TIMEOUT_S = 10.0  # an error message that cannot be delivered in this time is given up
# WebSocket close codes: 1013 "try again later" (standard), 4xxx application-defined.
CLOSE_BUSY, CLOSE_BAD_INPUT, CLOSE_TIMEOUT, CLOSE_OVERLOADED, CLOSE_FORBIDDEN, CLOSE_INTERNAL = (
    1013, 4400, 4408, 4503, 4403, 4500)
CLOSE_SLOW_CLIENT = 4409


class _Refusal(Exception):
    """End the session with this close code, error code and message."""

    code, error = CLOSE_BAD_INPUT, "bad_input"


class _BadInput(_Refusal):
    pass


class _Busy(_Refusal):
    code, error = CLOSE_BUSY, "busy"


class _Timeout(_Refusal):
    code, error = CLOSE_TIMEOUT, "timeout"


class _Overloaded(_Refusal):
    code, error = CLOSE_OVERLOADED, "overloaded"


class _SlowClient(_Refusal):
    code, error = CLOSE_SLOW_CLIENT, "slow_client"


def live_router(settings: ServerSettings, admission: LiveAdmission, workers: SessionWorkers) -> APIRouter:
    """The live route, sharing `admission` (the cap and measured capacity) and `workers` across sessions."""
    router = APIRouter()

    @router.websocket("/api/live")
    async def live(ws: WebSocket):
        await ws.accept()
        if not _origin_allowed(ws, settings):
            await _close_with_error(ws, CLOSE_FORBIDDEN, "forbidden", "this page's origin may not open live "
                                    "sessions (start the server with --allow-origin)")
            return
        ticket, why = admission.try_admit()
        if ticket is None:
            await _close_with_error(ws, CLOSE_BUSY, "busy", why)
            return
        try:
            await _run_live(ws, settings, workers, lambda fps, cost: admission.bind(ticket, fps, cost),
                            lambda config: admission.confirm(ticket, config.motion.generator))
        finally:
            admission.release(ticket)

    return router


def _origin_allowed(ws: WebSocket, settings: ServerSettings) -> bool:
    """Browsers send Origin: only this server's own page (or an allowed origin) may connect."""
    origin = ws.headers.get("origin")
    if origin is None:
        return True  # not a browser
    if origin in settings.allowed_origins:
        return True
    return urlsplit(origin).netloc == ws.headers.get("host")


async def _close_with_error(ws: WebSocket, code: int, error: str, detail: str) -> None:
    """Send the error message and close; a client that does not read gets the close after a short wait."""
    async def deliver():
        await ws.send_json({"type": "error", "error": error, "detail": detail})
        await ws.close(code=code, reason=f"{error}: {detail}"[:120])
    try:
        await asyncio.wait_for(deliver(), CLOSE_SEND_TIMEOUT_S)
    except (WebSocketDisconnect, RuntimeError, OSError, asyncio.TimeoutError):
        pass


async def _receive(ws: WebSocket, timeout: float, what: str) -> dict:
    """The next message within `timeout` seconds (_Timeout otherwise; WebSocketDisconnect if the client left)."""
    try:
        message = await asyncio.wait_for(ws.receive(), timeout)
    except asyncio.TimeoutError:
        raise _Timeout(f"no {what} within {timeout:.0f} s") from None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    return message


def _start_request(message: dict, settings: ServerSettings) -> tuple[GenerateConfig, dict]:
    """The client's first message -> (config, stream options); _BadInput says what is wrong."""
    start = _start_message(message)
    options = start.get("options", {})
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise _BadInput(f"options must be a JSON object, e.g. {{\"motion.seed\": 3}}, not {type(options).__name__}")
    try:
        config = build_config(options, {"render.size": (64, settings.live_max_size)}, base=LIVE_DEFAULTS)
    except OptionError as exc:
        raise _BadInput(str(exc)) from None
    stream = {"audio_format": start.get("audio_format", "f32"), "image_format": start.get("image_format", "jpeg"),
              "quality": start.get("quality", DEFAULT_QUALITY), "sample_rate": start.get("sample_rate", SAMPLE_RATE)}
    _check_stream(stream)
    return config, stream


def _start_message(message: dict) -> dict:
    """The start message's JSON object, checked for shape (_BadInput)."""
    text = message.get("text")
    if not isinstance(text, str):
        raise _BadInput(f"the first message must be JSON text: {START_EXAMPLE}")
    try:
        start = parse_json(text, "the start message")
    except ValueError as exc:
        raise _BadInput(f"{exc}; send {START_EXAMPLE}") from None
    if not isinstance(start, dict) or start.get("type") != "start":
        raise _BadInput(f"the first message must be {START_EXAMPLE}")
    unknown = sorted(str(k)[:40] for k in start if k not in START_FIELDS)
    if unknown:
        raise _BadInput(f"unknown start message field {unknown[0]!r}: the fields are {', '.join(START_FIELDS)}")
    return start


def _check_stream(stream: dict) -> None:
    """Audio and image formats, quality and sample rate of a start message (_BadInput)."""
    if not isinstance(stream["audio_format"], str) or stream["audio_format"] not in AUDIO_FORMATS:
        raise _BadInput(f"audio_format must be one of {', '.join(AUDIO_FORMATS)}")
    if not isinstance(stream["image_format"], str) or stream["image_format"] not in IMAGE_FORMATS:
        raise _BadInput(f"image_format must be one of {', '.join(IMAGE_FORMATS)}")
    rate = stream["sample_rate"]
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate != SAMPLE_RATE:
        raise _BadInput(f"sample_rate must be {SAMPLE_RATE}: send 16 kHz mono PCM")
    quality = stream["quality"]
    if isinstance(quality, bool) or not isinstance(quality, int) or not QUALITY_RANGE[0] <= quality <= QUALITY_RANGE[1]:
        raise _BadInput(f"quality must be a whole number from {QUALITY_RANGE[0]} to {QUALITY_RANGE[1]}")


class _RemoteSession:
    """A live session running in a worker process, as the WebSocket handler sees it."""

    def __init__(self, worker: SessionWorker, config: GenerateConfig):
        self.worker, self.fps = worker, config.fps
        self.delay = decision_delay_seconds(config)
        self.pushed_seconds = 0.0

    @property
    def backlog_seconds(self) -> float:
        """Audio received but not yet turned into frames, beyond the look-ahead's own delay."""
        return max(0.0, self.pushed_seconds - self.delay - self.worker.frames / self.fps)

    def push(self, samples: np.ndarray, received_at: float) -> None:
        """Hand a chunk to the worker."""
        self.pushed_seconds += len(samples) / SAMPLE_RATE
        self.worker.push(samples, received_at)

    def finish(self, received_at: float) -> None:
        """End of the audio."""
        self.worker.finish(received_at)


class _Outbox:
    """Frames from the worker on their way to the client, with the counts the stats report."""

    def __init__(self):
        self.frames: asyncio.Queue = asyncio.Queue()
        self.ended = asyncio.Event()
        self.dropped = self.sent = 0
        self.latencies: list[float] = []
        self.error: BaseException | None = None
        self.send_started: float | None = None  # monotonic time of the send in progress, if any

    def enqueue(self, frame: EncodedFrame) -> None:
        """Queue a frame, dropping the oldest past MAX_BUFFERED_FRAMES (event loop thread)."""
        if self.frames.qsize() >= MAX_BUFFERED_FRAMES:
            self.frames.get_nowait()
            self.dropped += 1
        self.frames.put_nowait(frame)

    def finished(self, error: BaseException | None) -> None:
        """The worker's session ended (event loop thread)."""
        self.error = error
        self.ended.set()


async def _run_live(ws: WebSocket, settings: ServerSettings, workers: SessionWorkers, measured,
                    confirm=lambda config: "") -> None:
    """One session: start message, portrait, then audio in and frames out until stop or disconnect;
    `confirm(config)` checks the admission again for the session's options ("" or why it is refused);
    `measured(fps, cost)` tells the admission the session's frame rate and measured cost per frame."""
    worker: SessionWorker | None = None
    tasks: list[asyncio.Task] = []
    try:
        config, stream = _start_request(await _receive(ws, settings.live_start_timeout_s, "start message"), settings)
        if why := confirm(config):
            raise _Busy(why)
        message = await _receive(ws, settings.live_start_timeout_s, "portrait")
        image_bytes = message.get("bytes")
        if not image_bytes:
            raise _BadInput("after the start message send the portrait image as one binary message")
        outbox = _Outbox()
        worker = await asyncio.to_thread(workers.acquire)
        session = await _begin(worker, image_bytes, config, stream, outbox)
        running = worker
        measured(config.fps, lambda: running.cost.per_frame)
        await ws.send_json({"type": "ready", "width": session.width, "height": session.height, "fps": config.fps,
                            "lookahead_frames": config.motion.lookahead_frames,
                            "decision_delay_ms": round(1000 * session.delay, 1),
                            "frame_header": FRAME_HEADER.format, "image_format": stream["image_format"]})
        sender = asyncio.create_task(_send_frames(ws, outbox, settings.live_max_send_wait_s))
        receiver = asyncio.create_task(_receive_audio(ws, session, stream["audio_format"], settings, outbox))
        tasks = [sender, receiver]
        await _first_failure(receiver, sender)
        await sender  # every frame sent (the session has ended)
        if outbox.error is not None:
            await _close_with_error(ws, CLOSE_INTERNAL, "internal", f"the session failed: {outbox.error}")
            return
        await ws.send_json({"type": "end", **_stats(outbox, session)})
        await ws.close(code=1000)
    except _Refusal as exc:
        await _close_with_error(ws, exc.code, exc.error, str(exc))
    except (WebSocketDisconnect, OSError):
        pass  # the client left
    finally:
        for task in tasks:
            task.cancel()
        if worker is not None:
            await asyncio.to_thread(workers.release, worker)  # stops a session still running


async def _first_failure(receiver: asyncio.Task, sender: asyncio.Task) -> None:
    """Wait for the audio to end; a sender that fails first (client stopped reading, or left) ends it too."""
    await asyncio.wait({receiver, sender}, return_when=asyncio.FIRST_COMPLETED)
    if sender.done() and sender.exception() is not None and not receiver.done():
        receiver.cancel()
        raise sender.exception()
    receiver.result()


async def _begin(worker: SessionWorker, image_bytes: bytes, config: GenerateConfig, stream: dict,
                 outbox: _Outbox) -> _RemoteSession:
    """Start the worker's session on the portrait; its frames go to `outbox` (_BadInput for a bad portrait)."""
    loop = asyncio.get_running_loop()
    try:
        width, height = await asyncio.to_thread(
            worker.begin, image_bytes, config, stream["image_format"], stream["quality"],
            lambda f: loop.call_soon_threadsafe(outbox.enqueue, f),
            lambda e: loop.call_soon_threadsafe(outbox.finished, e))
    except TalkingHeadError as exc:
        raise _BadInput(str(exc)) from None
    session = _RemoteSession(worker, config)
    session.width, session.height = width, height
    return session


def _slow_client(waited: float) -> _SlowClient:
    return _SlowClient(f"the client stopped reading frames for {waited:.1f} s: read every message as it arrives "
                       "(or ask for a smaller size or fps)")


async def _receive_audio(ws: WebSocket, session: _RemoteSession, audio_format: str, settings: ServerSettings,
                         outbox: _Outbox) -> None:
    """Audio messages -> session until {"type": "stop"}; paces audio that runs ahead of real time."""
    started = last_stats = time.monotonic()
    received_s = 0.0
    max_bytes = int(MAX_AUDIO_MESSAGE_SECONDS * SAMPLE_RATE * AUDIO_FORMATS[audio_format].itemsize)
    while True:
        message = await _receive(ws, settings.live_idle_timeout_s, "audio")
        now = time.monotonic()
        if now - started > settings.live_max_session_s:
            raise _Timeout(f"the session reached its {settings.live_max_session_s:.0f} s limit")
        if message.get("text") is not None:
            _stop_command(message["text"])
            session.finish(time.perf_counter())
            return
        received_at = time.perf_counter()
        samples = _audio_samples(message.get("bytes") or b"", audio_format, max_bytes)
        lead = received_s - (now - started) - settings.live_max_audio_lead_s
        if lead > 0:  # faster than real time: hold back (the client's sends wait on TCP)
            await asyncio.sleep(lead)
        received_s += len(samples) / SAMPLE_RATE
        if session.backlog_seconds > settings.live_max_backlog_s:
            raise _Overloaded(f"the server fell {session.backlog_seconds:.1f} s behind the audio")
        session.push(samples, received_at)
        if now - last_stats >= STATS_INTERVAL_S and outbox.send_started is None:
            last_stats = now
            await _send_within(ws.send_json({"type": "stats", **_stats(outbox, session)}),
                               settings.live_max_send_wait_s)


def _stop_command(text: str) -> None:
    """A text message during the audio must be {"type": "stop"} (_BadInput otherwise)."""
    try:
        command = parse_json(text, "a text message")
    except ValueError:
        raise _BadInput('text messages must be JSON, e.g. {"type": "stop"}') from None
    if not (isinstance(command, dict) and command.get("type") == "stop"):
        raise _BadInput('unknown message: send binary audio or {"type": "stop"}')


def _audio_samples(data: bytes, audio_format: str, max_bytes: int) -> np.ndarray:
    """One binary audio message -> float32 samples (_BadInput if too long or malformed)."""
    if len(data) > max_bytes:
        raise _BadInput(f"audio messages carry at most {MAX_AUDIO_MESSAGE_SECONDS:.0f} s ({max_bytes} bytes); "
                        "send 20-40 ms chunks")
    try:
        return decode_pcm(data, audio_format)
    except TalkingHeadError as exc:
        raise _BadInput(str(exc)) from None


async def _send_within(sending, seconds: float) -> None:
    """Await a send; a client that leaves it unread for `seconds` is cut (_SlowClient). The send is left
    to finish (cancelling one mid-frame would break the connection before the error can be sent)."""
    task = asyncio.ensure_future(sending)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:  # the session is being torn down while a send is in flight
        task.add_done_callback(_retrieve)
        raise
    if not done:
        task.add_done_callback(_retrieve)
        raise _slow_client(seconds)
    task.result()


def _retrieve(task: asyncio.Future) -> None:
    """Done callback for a send left to finish on its own: its error (the client has gone) is taken,
    so asyncio does not log 'Task exception was never retrieved' with a traceback."""
    if not task.cancelled():
        task.exception()


async def _send_frames(ws: WebSocket, outbox: _Outbox, max_wait: float) -> None:
    """Send frames as they come, until the session has ended and the queue is empty (_SlowClient if the
    client stops reading for `max_wait` seconds)."""
    while not (outbox.ended.is_set() and outbox.frames.empty()):
        get = asyncio.ensure_future(outbox.frames.get())
        done_wait = asyncio.ensure_future(outbox.ended.wait())
        try:
            await asyncio.wait({get, done_wait}, return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when this task is cancelled: no pending task left behind
            done_wait.cancel()
            if not get.done():
                get.cancel()
        if not get.done() or get.cancelled():  # cancelled above (the session ended first): no frame taken
            continue
        frame: EncodedFrame = get.result()
        outbox.send_started = time.monotonic()
        await _send_within(ws.send_bytes(frame.message()), max_wait)
        outbox.send_started = None
        outbox.sent += 1
        if frame.chunk != END_OF_AUDIO:
            outbox.latencies.append(time.perf_counter() - frame.chunk_received_at)
            if len(outbox.latencies) > 10_000:
                del outbox.latencies[:5_000]


def _stats(outbox: _Outbox, session: _RemoteSession) -> dict:
    latencies = outbox.latencies[-250:]  # the last ~10 s
    median = 1000 * statistics.median(latencies) if latencies else None
    return {"frames_sent": outbox.sent, "frames_dropped": outbox.dropped,
            "latency_ms_median": round(median, 1) if median is not None else None,
            "backlog_ms": round(1000 * session.backlog_seconds, 1)}
