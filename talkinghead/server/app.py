"""FastAPI application: the page, options and status; job routes (job_routes.py), the live route
(live_routes.py) and request limits (limits.py) put together.

    GET    /                      the web page (static/index.html)
    GET    /api/options           settable options (from the config dataclasses) and live protocol facts
    GET    /api/status            live sessions and jobs in use, and their limits
    POST   /api/jobs              portrait + audio file (or text) [+ driving, direction, motion] + options -> 202 job
    GET    /api/jobs/{id}         status and progress
    GET    /api/jobs/{id}/video   the MP4 of a finished job
    GET    /api/jobs/{id}/motion.csv|json   its motion track
    DELETE /api/jobs/{id}         cancel and delete
    WS     /api/live              live session (protocol in the README and on the /docs page)
    GET    /docs                  OpenAPI documentation
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..assets import ASSETS_DIR
from ..audio.features import SAMPLE_RATE
from ..errors import TalkingHeadError
from .docs import add_docs
from .job_routes import job_router
from .jobs import JobLimits, JobStore
from .limits import BodySizeLimit, guarded_protocol
from .live import AUDIO_FORMATS, END_OF_AUDIO, FRAME_HEADER, IMAGE_FORMATS, single_threaded_blas
from .admission import PHOTO_COST_FACTOR, CpuMonitor, LiveAdmission, machine_cpus
from .live import LIVE_DEFAULTS
from .live_worker import SessionWorkers
from .live_routes import live_router
from .options import config_options, presets_json
from .settings import ServerSettings
from .worker import tts_available

STATIC_DIR = Path(__file__).parent / "static"
DEMO_PORTRAIT, DEMO_SPEECH = ASSETS_DIR / "astronaut.png", ASSETS_DIR / "demo_speech.wav"
KEEP_ALIVE_S = 5  # idle keep-alive connections are closed after this
COSTLY_LIVE_GENERATORS = ("diffusion-live",)  # motion generators whose extra cost per frame is measured at start-up
CALIBRATION_SECONDS = 2.0  # of speech rendered live at start-up to measure the cost of a frame
log = logging.getLogger(__name__)


def create_app(settings: ServerSettings = ServerSettings()) -> FastAPI:
    """The application with its job store and live-session limits."""
    single_threaded_blas()
    jobs = JobStore(settings.resolved_data_dir(), JobLimits.from_settings(settings))
    monitor = CpuMonitor()
    slots = LiveAdmission(settings.max_live_sessions, machine_cpus(), settings.live_cpu_share, monitor)
    workers = SessionWorkers(keep_idle=settings.max_live_sessions)  # ~0.3 GB each; a new one costs ~2 s of CPU

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        jobs.start()
        if settings.live_cpu_share > 0:
            monitor.start()
        prewarm = asyncio.create_task(asyncio.to_thread(_prewarm, workers, slots, settings))
        try:
            yield
        finally:
            await prewarm
            monitor.stop()
            workers.close()
            jobs.stop()

    app = FastAPI(title="talkinghead", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="One portrait + speech -> a lip-synced talking head: offline MP4 jobs and a "
                              "live WebSocket session (`/api/live`, protocol in the README).")
    app.state.settings, app.state.jobs, app.state.live_slots = settings, jobs, slots
    app.add_middleware(BodySizeLimit, limit=int(settings.max_upload_mb * 1e6), body_timeout=settings.body_timeout_s)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    add_docs(app)  # /docs without a CDN
    app.include_router(_info_router(settings, jobs, slots))
    app.include_router(job_router(settings, jobs))
    app.include_router(live_router(settings, slots, workers))
    return app


def _prewarm(workers: SessionWorkers, admission: LiveAdmission, settings: ServerSettings,
             seconds: float = CALIBRATION_SECONDS) -> None:
    """Start one idle live worker (the first session starts sooner); with measured admission, measure the
    cost of a live frame on this machine in it first (the bundled portrait at the largest live size,
    doubled: a real photo's face is larger), and what the causal motion model adds to it."""
    workers.prewarm(1)
    if settings.live_cpu_share <= 0 or settings.max_live_sessions <= 0:
        return
    worker = workers.acquire()
    try:
        config = replace(LIVE_DEFAULTS, render=replace(LIVE_DEFAULTS.render, size=settings.live_max_size))
        portrait = DEMO_PORTRAIT.read_bytes()
        frame = worker.calibrate(portrait, config, seconds)
        admission.prior_cost = PHOTO_COST_FACTOR * frame
        # the causal motion model costs the same on any portrait: what it adds to a frame, measured once
        for generator in COSTLY_LIVE_GENERATORS:
            costly = replace(config, motion=replace(config.motion, generator=generator))
            admission.extra_cost[generator] = max(worker.calibrate(portrait, costly, seconds) - frame, 0.0)
        admission.calibrated = True
    except TalkingHeadError as exc:
        log.warning("live frame cost not measured (%s): assuming %.0f ms", exc, 1000 * admission.prior_cost)
    finally:
        workers.release(worker)


def uvicorn_options(settings: ServerSettings) -> dict:
    """Keyword arguments for uvicorn.run / uvicorn.Config: message size, keep-alive and header time limits."""
    return {"ws_max_size": int(settings.max_upload_mb * 1e6), "timeout_keep_alive": KEEP_ALIVE_S,
            "http": guarded_protocol(settings.header_timeout_s)}


def _info_router(settings: ServerSettings, jobs: JobStore, slots: LiveAdmission) -> APIRouter:
    """The page, the demo files, /api/options and /api/status."""
    router = APIRouter()

    @router.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    @router.get("/api/demo/portrait", summary="The bundled demo portrait (PNG)")
    async def demo_portrait():
        return FileResponse(DEMO_PORTRAIT, media_type="image/png")

    @router.get("/api/demo/speech", summary="The bundled demo speech (WAV)")
    async def demo_speech():
        return FileResponse(DEMO_SPEECH, media_type="audio/wav")

    @router.get("/api/options", summary="Settable options and live-protocol facts")
    async def options():
        return {"options": [o.as_json() for o in config_options()], "presets": presets_json(),
                "limits": {"max_upload_mb": settings.max_upload_mb, "max_audio_seconds": settings.max_audio_seconds,
                           "max_text_chars": settings.max_text_chars, "live_max_size": settings.live_max_size},
                "live": {"sample_rate": SAMPLE_RATE, "audio_formats": list(AUDIO_FORMATS),
                         "image_formats": list(IMAGE_FORMATS), "frame_header": FRAME_HEADER.format,
                         "end_of_audio_chunk": END_OF_AUDIO},
                "tts": tts_available()}

    @router.get("/api/status", summary="Live sessions and jobs in use, and their limits")
    async def status():
        return {"version": __version__, "live_sessions": slots.active, "max_live_sessions": slots.limit,
                "live_capacity": slots.status(),
                "queued_jobs": jobs.queued_count(), "running_jobs": jobs.running_count(),
                "max_queued_jobs": settings.max_queued_jobs, "tts": tts_available()}

    return router
