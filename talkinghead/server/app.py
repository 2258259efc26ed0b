"""FastAPI application: REST jobs, the live WebSocket, the web page; request limits and "busy" answers.

    GET    /                      the web page (static/index.html)
    GET    /api/options           settable options (from the config dataclasses) and live protocol facts
    GET    /api/status            live sessions and jobs in use, and their limits
    POST   /api/jobs              portrait + audio file (or text) + options -> 202 job; 503 when full
    GET    /api/jobs/{id}         status and progress
    GET    /api/jobs/{id}/video   the MP4 of a finished job
    DELETE /api/jobs/{id}         cancel and delete
    WS     /api/live              live session (protocol in the README and on the /docs page)
    GET    /docs                  OpenAPI documentation
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import statistics
import time
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from fastapi import FastAPI, File, Form, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from .. import __version__
from ..assets import ASSETS_DIR
from ..audio.features import SAMPLE_RATE
from ..config import GenerateConfig
from ..errors import TalkingHeadError
from ..io import load_audio, load_image
from ..pipeline import check_audio
from .jobs import JobLimits, JobStore, QueueFull
from .live import (AUDIO_FORMATS, DEFAULT_QUALITY, END_OF_AUDIO, FRAME_HEADER, IMAGE_FORMATS, EncodedFrame,
                   LIVE_DEFAULTS, SessionWorker, SessionWorkers, decision_delay_seconds, decode_pcm, single_threaded_blas)
from .options import OptionError, build_config, config_options, parse_options, presets_json
from .settings import ServerSettings
from .worker import AUDIO_FILE, PORTRAIT_FILE, tts_available

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
DEMO_PORTRAIT, DEMO_SPEECH = ASSETS_DIR / "astronaut.png", ASSETS_DIR / "demo_speech.wav"
BUSY_RETRY_AFTER_S = 10
MAX_AUDIO_MESSAGE_SECONDS = 1.0  # one live audio message carries at most this much audio
MAX_BUFFERED_FRAMES = 50  # frames waiting for a slow client; older ones are dropped past this
STATS_INTERVAL_S = 1.0
UPLOAD_COPY_CHUNK = 1 << 20
# WebSocket close codes: 1013 "try again later" (standard), 4xxx application-defined.
CLOSE_BUSY, CLOSE_BAD_INPUT, CLOSE_TIMEOUT, CLOSE_OVERLOADED, CLOSE_FORBIDDEN, CLOSE_INTERNAL = (
    1013, 4400, 4408, 4503, 4403, 4500)


class ErrorAnswer(BaseModel):
    """Every error: a short code and a sentence saying what to do."""

    error: str
    detail: str


class JobAnswer(BaseModel):
    """A job's state."""

    id: str
    status: str  # queued | running | done | failed
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    expires_at: float | None = None  # the job and its video are deleted at this time (Unix seconds)
    progress: float  # 0..1
    frames_done: int
    frames_total: int | None = None
    error: str | None = None
    result: dict | None = None
    input: str  # "audio" | "text"
    options: dict
    video_url: str | None = None


def problem(status: int, error: str, detail: str, headers: dict | None = None) -> JSONResponse:
    """A JSON error answer."""
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def busy(detail: str) -> JSONResponse:
    """503 with Retry-After: the server is at one of its limits."""
    return problem(503, "busy", detail, {"Retry-After": str(BUSY_RETRY_AFTER_S)})


class BodySizeLimit:
    """ASGI middleware: HTTP request bodies over `limit` bytes get 413 (declared or streamed)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._reject(send)
        seen, started = 0, False

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(send)

    async def _reject(self, send):
        mb = self.limit / 1e6
        body = json.dumps({"error": "too_large", "detail": f"request body over {mb:.0f} MB: send a smaller "
                           "portrait or shorter audio (the server's --max-upload-mb)"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


class LiveSlots:
    """Counts live sessions (used from the event loop only)."""

    def __init__(self, limit: int):
        self.limit, self.active = limit, 0

    def try_acquire(self) -> bool:
        if self.active >= self.limit:
            return False
        self.active += 1
        return True

    def release(self) -> None:
        self.active -= 1


def _clean_message(exc: Exception, path: Path, name: str) -> str:
    """An error message without the server's paths."""
    return str(exc).replace(f"'{path}'", name).replace(str(path), name)


def create_app(settings: ServerSettings = ServerSettings()) -> FastAPI:
    """The application with its job store and live-session limits."""
    single_threaded_blas()
    jobs = JobStore(settings.resolved_data_dir(), JobLimits(max_queued=settings.max_queued_jobs,
                                                            timeout_s=settings.job_timeout_s,
                                                            ttl_s=settings.job_ttl_hours * 3600))
    slots = LiveSlots(settings.max_live_sessions)
    workers = SessionWorkers(keep_idle=settings.max_live_sessions)  # ~0.3 GB each; a new one costs ~2 s of CPU
    max_body = int(settings.max_upload_mb * 1e6)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        jobs.start()
        prewarm = asyncio.create_task(asyncio.to_thread(workers.prewarm, 1))  # the first session starts sooner
        try:
            yield
        finally:
            await prewarm
            workers.close()
            jobs.stop()

    app = FastAPI(title="talkinghead", version=__version__, lifespan=lifespan,
                  description="One portrait + speech -> a lip-synced talking head: offline MP4 jobs and a "
                              "live WebSocket session (`/api/live`, protocol in the README).")
    app.state.settings, app.state.jobs, app.state.live_slots = settings, jobs, slots
    app.add_middleware(BodySizeLimit, limit=max_body)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/api/demo/portrait", summary="The bundled demo portrait (PNG)")
    async def demo_portrait():
        return FileResponse(DEMO_PORTRAIT, media_type="image/png")

    @app.get("/api/demo/speech", summary="The bundled demo speech (WAV)")
    async def demo_speech():
        return FileResponse(DEMO_SPEECH, media_type="audio/wav")

    @app.get("/api/options", summary="Settable options and live-protocol facts")
    async def options():
        return {"options": [o.as_json() for o in config_options()], "presets": presets_json(),
                "limits": {"max_upload_mb": settings.max_upload_mb, "max_audio_seconds": settings.max_audio_seconds,
                           "max_text_chars": settings.max_text_chars, "live_max_size": settings.live_max_size},
                "live": {"sample_rate": SAMPLE_RATE, "audio_formats": list(AUDIO_FORMATS),
                         "image_formats": list(IMAGE_FORMATS), "frame_header": FRAME_HEADER.format,
                         "end_of_audio_chunk": END_OF_AUDIO},
                "tts": tts_available()}

    @app.get("/api/status", summary="Live sessions and jobs in use, and their limits")
    async def status():
        return {"version": __version__, "live_sessions": slots.active, "max_live_sessions": slots.limit,
                "queued_jobs": jobs.queued_count(), "running_jobs": jobs.running_count(),
                "max_queued_jobs": settings.max_queued_jobs, "tts": tts_available()}

    def job_answer(record: dict) -> dict:
        video = f"/api/jobs/{record['id']}/video" if record["status"] == "done" else None
        return {**record, "video_url": video}

    @app.post("/api/jobs", status_code=202, response_model=JobAnswer, summary="Start a video job",
              responses={400: {"model": ErrorAnswer}, 413: {"model": ErrorAnswer}, 503: {"model": ErrorAnswer}})
    async def create_job(portrait: UploadFile = File(..., description="JPEG, PNG or WebP with one visible face"),
                         audio: UploadFile | None = File(None, description="speech: WAV, MP3, M4A, FLAC, OGG or a video"),
                         text: str | None = Form(None, description="text to speak instead of an audio file"),
                         options: str = Form("{}", description='JSON object of options, e.g. {"motion.seed": 3}')):
        text = (text or "").strip() or None
        if (audio is None) == (text is None):
            return problem(400, "bad_input", "send either an audio file or text, not both and not neither")
        if text is not None and len(text) > settings.max_text_chars:
            return problem(400, "bad_input", f"text is longer than {settings.max_text_chars} characters: shorten it")
        if text is not None and not tts_available():
            return problem(400, "tts_unavailable", "text input needs the tts module (talkinghead.tts), which "
                           "this installation lacks: upload an audio file instead")
        try:
            values = json.loads(options or "{}")
            if not isinstance(values, dict):
                raise OptionError("options must be a JSON object, e.g. {\"motion.seed\": 3}")
            chosen = parse_options(values)
            build_config(chosen)  # the config dataclasses' own checks
        except ValueError as exc:  # OptionError and bad JSON
            return problem(400, "bad_options", str(exc))
        try:
            job_id, job_dir = jobs.new_job_dir()
        except QueueFull:
            return busy(f"{settings.max_queued_jobs} jobs are already waiting: try again later")
        try:
            await asyncio.to_thread(_save_upload, portrait, job_dir / PORTRAIT_FILE)
            if audio is not None:
                await asyncio.to_thread(_save_upload, audio, job_dir / AUDIO_FILE)
            await asyncio.to_thread(_check_inputs, job_dir, audio is not None, settings.max_audio_seconds)
            record = jobs.submit(job_id, {"input": "audio" if audio is not None else "text", "text": text,
                                          "options": chosen})
        except TalkingHeadError as exc:
            jobs.discard(job_id)
            return problem(400, "bad_input", str(exc))
        except QueueFull:
            jobs.discard(job_id)
            return busy(f"{settings.max_queued_jobs} jobs are already waiting: try again later")
        except BaseException:
            jobs.discard(job_id)
            raise
        return job_answer(record)

    @app.get("/api/jobs/{job_id}", response_model=JobAnswer, summary="A job's status and progress",
             responses={404: {"model": ErrorAnswer}})
    async def get_job(job_id: str):
        record = jobs.get(job_id)
        if record is None:
            return problem(404, "not_found", "no such job (finished jobs are deleted after their expiry time)")
        return job_answer(record)

    @app.get("/api/jobs/{job_id}/video", summary="The MP4 of a finished job",
             responses={200: {"content": {"video/mp4": {}}}, 404: {"model": ErrorAnswer}, 409: {"model": ErrorAnswer}})
    async def get_video(job_id: str):
        record = jobs.get(job_id)
        if record is None:
            return problem(404, "not_found", "no such job (finished jobs are deleted after their expiry time)")
        path = jobs.result_path(job_id)
        if path is None:
            return problem(409, "not_ready", f"the job is {record['status']}; the video exists once it is done")
        return FileResponse(path, media_type="video/mp4", filename=f"talkinghead-{job_id[:8]}.mp4")

    @app.delete("/api/jobs/{job_id}", summary="Cancel and delete a job", status_code=200,
                responses={404: {"model": ErrorAnswer}})
    async def delete_job(job_id: str):
        if not await asyncio.to_thread(jobs.delete, job_id):
            return problem(404, "not_found", "no such job")
        return {"deleted": job_id}

    @app.websocket("/api/live")
    async def live(ws: WebSocket):
        await ws.accept()
        if not _origin_allowed(ws, settings):
            await _close_with_error(ws, CLOSE_FORBIDDEN, "forbidden", "this page's origin may not open live sessions "
                                    "(start the server with --allow-origin)")
            return
        if not slots.try_acquire():
            await _close_with_error(ws, CLOSE_BUSY, "busy", f"all {slots.limit} live sessions are in use: "
                                    "try again later")
            return
        try:
            await _run_live(ws, settings, workers)
        finally:
            slots.release()

    return app


# --- jobs: request helpers -------------------------------------------------------------------


def _save_upload(upload: UploadFile, path: Path) -> None:
    upload.file.seek(0)
    with open(path, "wb") as out:
        shutil.copyfileobj(upload.file, out, UPLOAD_COPY_CHUNK)


def _check_inputs(job_dir: Path, has_audio: bool, max_audio_seconds: float) -> None:
    """Reject an unreadable image or audio, silent or over-long audio, before queueing (TalkingHeadError)."""
    portrait = job_dir / PORTRAIT_FILE
    try:
        load_image(portrait)
    except TalkingHeadError as exc:
        raise TalkingHeadError(_clean_message(exc, portrait, "the portrait")) from None
    if has_audio:
        path = job_dir / AUDIO_FILE
        try:
            samples = load_audio(path)
            check_audio(samples, "the audio")
        except TalkingHeadError as exc:
            raise TalkingHeadError(_clean_message(exc, path, "the audio")) from None
        if len(samples) > max_audio_seconds * SAMPLE_RATE:
            raise TalkingHeadError(f"the audio is {len(samples) / SAMPLE_RATE:.0f} s long; this server takes at most "
                                   f"{max_audio_seconds:.0f} s: split it")


# --- live sessions -----------------------------------------------------------------------------


def _origin_allowed(ws: WebSocket, settings: ServerSettings) -> bool:
    """Browsers send Origin: only this server's own page (or an allowed origin) may connect."""
    origin = ws.headers.get("origin")
    if origin is None:
        return True  # not a browser
    if origin in settings.allowed_origins:
        return True
    return urlsplit(origin).netloc == ws.headers.get("host")


async def _close_with_error(ws: WebSocket, code: int, error: str, detail: str) -> None:
    try:
        await ws.send_json({"type": "error", "error": error, "detail": detail})
        await ws.close(code=code, reason=f"{error}: {detail}"[:120])
    except (WebSocketDisconnect, RuntimeError):
        pass


class _BadInput(Exception):
    pass


async def _receive(ws: WebSocket, timeout: float, what: str) -> dict:
    try:
        message = await asyncio.wait_for(ws.receive(), timeout)
    except asyncio.TimeoutError:
        raise _Timeout(f"no {what} within {timeout:.0f} s") from None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    return message


class _Timeout(Exception):
    pass


def _start_request(message: dict, settings: ServerSettings) -> tuple[GenerateConfig, dict]:
    """The client's first message -> (config, stream options); _BadInput says what is wrong."""
    try:
        start = json.loads(message.get("text") or "")
    except ValueError:
        raise _BadInput('the first message must be JSON text: {"type": "start", "options": {...}}') from None
    if not isinstance(start, dict) or start.get("type") != "start":
        raise _BadInput('the first message must be {"type": "start", ...}')
    try:
        config = build_config(start.get("options") or {}, {"render.size": (64, settings.live_max_size)},
                              base=LIVE_DEFAULTS)
    except OptionError as exc:
        raise _BadInput(str(exc)) from None
    stream = {"audio_format": start.get("audio_format", "f32"), "image_format": start.get("image_format", "jpeg"),
              "quality": start.get("quality", DEFAULT_QUALITY), "sample_rate": start.get("sample_rate", SAMPLE_RATE)}
    if stream["audio_format"] not in AUDIO_FORMATS:
        raise _BadInput(f"audio_format must be one of {', '.join(AUDIO_FORMATS)}")
    if stream["image_format"] not in IMAGE_FORMATS:
        raise _BadInput(f"image_format must be one of {', '.join(IMAGE_FORMATS)}")
    if stream["sample_rate"] != SAMPLE_RATE:
        raise _BadInput(f"sample_rate must be {SAMPLE_RATE}: send 16 kHz mono PCM")
    if not isinstance(stream["quality"], int) or not 10 <= stream["quality"] <= 95:
        raise _BadInput("quality must be a whole number from 10 to 95")
    return config, stream


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
        self.pushed_seconds += len(samples) / SAMPLE_RATE
        self.worker.push(samples, received_at)

    def finish(self, received_at: float) -> None:
        self.worker.finish(received_at)


async def _run_live(ws: WebSocket, settings: ServerSettings, workers: SessionWorkers) -> None:
    """One session: start message, portrait, then audio in and frames out until stop or disconnect."""
    loop = asyncio.get_running_loop()
    worker: SessionWorker | None = None
    sender: asyncio.Task | None = None
    try:
        config, stream = _start_request(await _receive(ws, settings.live_start_timeout_s, "start message"), settings)
        message = await _receive(ws, settings.live_start_timeout_s, "portrait")
        image_bytes = message.get("bytes")
        if not image_bytes:
            raise _BadInput("after the start message send the portrait image as one binary message")

        frames: asyncio.Queue = asyncio.Queue()
        state = {"dropped": 0, "sent": 0, "latencies": [], "error": None}
        ended = asyncio.Event()

        def enqueue(frame: EncodedFrame) -> None:
            if frames.qsize() >= MAX_BUFFERED_FRAMES:
                frames.get_nowait()
                state["dropped"] += 1
            frames.put_nowait(frame)

        def finished(error: BaseException | None) -> None:
            state["error"] = error
            ended.set()

        worker = await asyncio.to_thread(workers.acquire)
        try:
            width, height = await asyncio.to_thread(
                worker.begin, image_bytes, config, stream["image_format"], stream["quality"],
                lambda f: loop.call_soon_threadsafe(enqueue, f), lambda e: loop.call_soon_threadsafe(finished, e))
        except TalkingHeadError as exc:
            raise _BadInput(str(exc)) from None
        session = _RemoteSession(worker, config)
        sender = asyncio.create_task(_send_frames(ws, frames, ended, state))
        await ws.send_json({"type": "ready", "width": width, "height": height, "fps": config.fps,
                            "lookahead_frames": config.motion.lookahead_frames,
                            "decision_delay_ms": round(1000 * session.delay, 1),
                            "frame_header": FRAME_HEADER.format, "image_format": stream["image_format"]})
        await _receive_audio(ws, session, stream["audio_format"], settings, state)
        await sender  # every frame sent (the session has ended)
        sender = None
        if state["error"] is not None:
            await _close_with_error(ws, CLOSE_INTERNAL, "internal", f"the session failed: {state['error']}")
            return
        await ws.send_json({"type": "end", **_stats(state, session)})
        await ws.close(code=1000)
    except _BadInput as exc:
        await _close_with_error(ws, CLOSE_BAD_INPUT, "bad_input", str(exc))
    except _Timeout as exc:
        await _close_with_error(ws, CLOSE_TIMEOUT, "timeout", str(exc))
    except _Overloaded as exc:
        await _close_with_error(ws, CLOSE_OVERLOADED, "overloaded", str(exc))
    except (WebSocketDisconnect, OSError):
        pass  # the client left
    finally:
        if sender is not None:
            sender.cancel()
        if worker is not None:
            await asyncio.to_thread(workers.release, worker)  # stops a session still running


class _Overloaded(Exception):
    pass


async def _receive_audio(ws: WebSocket, session: _RemoteSession, audio_format: str, settings: ServerSettings,
                         state: dict) -> None:
    """Audio messages -> session until {"type": "stop"}; paces audio that runs ahead of real time."""
    started = time.monotonic()
    received_s = 0.0
    last_stats = started
    max_bytes = int(MAX_AUDIO_MESSAGE_SECONDS * SAMPLE_RATE * AUDIO_FORMATS[audio_format].itemsize)
    while True:
        message = await _receive(ws, settings.live_idle_timeout_s, "audio")
        now = time.monotonic()
        if now - started > settings.live_max_session_s:
            raise _Timeout(f"the session reached its {settings.live_max_session_s:.0f} s limit")
        if message.get("text") is not None:
            try:
                command = json.loads(message["text"])
            except ValueError:
                raise _BadInput('text messages must be JSON, e.g. {"type": "stop"}') from None
            if isinstance(command, dict) and command.get("type") == "stop":
                session.finish(time.perf_counter())
                return
            raise _BadInput('unknown message: send binary audio or {"type": "stop"}')
        received_at = time.perf_counter()
        data = message.get("bytes") or b""
        if len(data) > max_bytes:
            raise _BadInput(f"audio messages carry at most {MAX_AUDIO_MESSAGE_SECONDS:.0f} s ({max_bytes} bytes); "
                            "send 20-40 ms chunks")
        try:
            samples = decode_pcm(data, audio_format)
        except TalkingHeadError as exc:
            raise _BadInput(str(exc)) from None
        lead = received_s - (now - started) - settings.live_max_audio_lead_s
        if lead > 0:  # faster than real time: hold back (the client's sends wait on TCP)
            await asyncio.sleep(lead)
        received_s += len(samples) / SAMPLE_RATE
        if session.backlog_seconds > settings.live_max_backlog_s:
            raise _Overloaded(f"the server fell {session.backlog_seconds:.1f} s behind the audio")
        session.push(samples, received_at)
        if now - last_stats >= STATS_INTERVAL_S:
            last_stats = now
            await ws.send_json({"type": "stats", **_stats(state, session)})


async def _send_frames(ws: WebSocket, frames: asyncio.Queue, ended: asyncio.Event, state: dict) -> None:
    """Send frames as they come, until the session has ended and the queue is empty."""
    while not (ended.is_set() and frames.empty()):
        get = asyncio.ensure_future(frames.get())
        done_wait = asyncio.ensure_future(ended.wait())
        await asyncio.wait({get, done_wait}, return_when=asyncio.FIRST_COMPLETED)
        done_wait.cancel()
        if not get.done():
            get.cancel()
            continue
        frame: EncodedFrame = get.result()
        await ws.send_bytes(frame.message())
        state["sent"] += 1
        if frame.chunk != END_OF_AUDIO:
            state["latencies"].append(time.perf_counter() - frame.chunk_received_at)
            if len(state["latencies"]) > 10_000:
                del state["latencies"][:5_000]


def _stats(state: dict, session: _RemoteSession) -> dict:
    latencies = state["latencies"][-250:]  # the last ~10 s
    median = 1000 * statistics.median(latencies) if latencies else None
    return {"frames_sent": state["sent"], "frames_dropped": state["dropped"],
            "latency_ms_median": round(median, 1) if median is not None else None,
            "backlog_ms": round(1000 * session.backlog_seconds, 1)}
