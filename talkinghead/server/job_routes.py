"""REST routes of offline video jobs: POST /api/jobs, GET /api/jobs/{id}[/video|/motion.csv|/motion.json],
DELETE /api/jobs/{id}."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel

from ..errors import TalkingHeadError
from .job_inputs import JobUploads, check_uploads, save_uploads
from .jobs import JobStore, QueueFull
from .limits import ErrorAnswer, busy, parse_json, problem
from .options import OptionError, build_config, parse_options
from .settings import ServerSettings
from .worker import MOTION_FILES, RESULT_FILE, tts_available

NO_SUCH_JOB = "no such job (finished jobs are deleted after their expiry time)"
OPTIONS_EXAMPLE = '{"motion.seed": 3}'


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
    input: str  # "audio" | "text" | "driving" (the driving video's sound is the speech)
    files: dict | None = None  # the optional uploads sent: driving, direction, motion
    options: dict
    video_url: str | None = None
    motion_urls: dict | None = None  # {"csv": url, "json": url} once done


def job_answer(record: dict) -> dict:
    """A job record as the API shows it, with the video's and the motion track's URLs once done."""
    done = record["status"] == "done"
    base = f"/api/jobs/{record['id']}"
    motion = {kind: f"{base}/motion.{kind}" for kind in MOTION_FILES} if done else None
    return {**record, "video_url": f"{base}/video" if done else None, "motion_urls": motion}


def request_options(text: str | None, driving: bool = False) -> dict:
    """The options form field (JSON object text) -> validated options; OptionError says what is wrong.
    `driving`: the request uploads a driving video (options that need one are refused otherwise)."""
    values = parse_json(text or "{}", "the options field")
    if not isinstance(values, dict):
        raise OptionError(f"options must be a JSON object, e.g. {OPTIONS_EXAMPLE}")
    chosen = parse_options(values, driving=driving)
    build_config(chosen, driving=driving)  # the config dataclasses' own checks
    return chosen


def _text_problem(text: str | None, settings: ServerSettings):
    """The 400 answer for unusable text input, or None."""
    if text is not None and len(text) > settings.max_text_chars:
        return problem(400, "bad_input", f"text is longer than {settings.max_text_chars} characters: shorten it")
    if text is not None and not tts_available():
        return problem(400, "tts_unavailable", "text input needs the tts module (talkinghead.tts), which "
                       "this installation lacks: upload an audio file instead")
    return None


def job_router(settings: ServerSettings, jobs: JobStore) -> APIRouter:
    """The job routes over one job store."""
    router = APIRouter()

    @router.post("/api/jobs", status_code=202, response_model=JobAnswer, summary="Start a video job",
                 responses={400: {"model": ErrorAnswer}, 413: {"model": ErrorAnswer}, 503: {"model": ErrorAnswer}})
    async def create_job(portrait: UploadFile = File(..., description="JPEG, PNG or WebP with one visible face"),
                         audio: UploadFile | None = File(None, description="speech: WAV, MP3, M4A, FLAC, OGG or a video"),
                         text: str | None = Form(None, description="text to speak instead of an audio file"),
                         options: str = Form("{}", description=f"JSON object of options, e.g. {OPTIONS_EXAMPLE}"),
                         driving: UploadFile | None = File(None, description="driving video (MP4, MOV, MKV): its head, "
                                                           "eyes and brows drive the portrait; with no audio or text, "
                                                           "its mouth and sound too"),
                         direction: UploadFile | None = File(None, description="direction file (.json, .yaml or .yml) "
                                                             "keyframing the controls"),
                         motion: UploadFile | None = File(None, description="motion file to render instead of "
                                                          "generating motion: .csv (Live Link Face) or .json")):
        uploads = JobUploads(portrait, audio, driving, direction, motion, (text or "").strip() or None)
        return await _create_job(settings, jobs, uploads, options)

    @router.get("/api/jobs/{job_id}", response_model=JobAnswer, summary="A job's status and progress",
                responses={404: {"model": ErrorAnswer}})
    async def get_job(job_id: str):
        record = jobs.get(job_id)
        return problem(404, "not_found", NO_SUCH_JOB) if record is None else job_answer(record)

    @router.get("/api/jobs/{job_id}/video", summary="The MP4 of a finished job",
                responses={200: {"content": {"video/mp4": {}}}, 404: {"model": ErrorAnswer},
                           409: {"model": ErrorAnswer}})
    async def get_video(job_id: str):
        record = jobs.get(job_id)
        if record is None:
            return problem(404, "not_found", NO_SUCH_JOB)
        path = jobs.result_path(job_id, RESULT_FILE)
        if path is None:
            return problem(409, "not_ready", f"the job is {record['status']}; the video exists once it is done")
        return FileResponse(path, media_type="video/mp4", filename=f"talkinghead-{job_id[:8]}.mp4")

    @router.get("/api/jobs/{job_id}/motion.{kind}", summary="The motion track of a finished job (CSV or JSON)",
                responses={200: {"content": {"text/csv": {}, "application/json": {}}}, 404: {"model": ErrorAnswer},
                           409: {"model": ErrorAnswer}})
    async def get_motion(job_id: str, kind: str):
        record = jobs.get(job_id)
        if record is None or kind not in MOTION_FILES:
            return problem(404, "not_found", NO_SUCH_JOB if record is None else "ask for motion.csv or motion.json")
        path = jobs.result_path(job_id, MOTION_FILES[kind])
        if path is None:
            return problem(409, "not_ready", f"the job is {record['status']}; the motion exists once it is done")
        media = "text/csv" if kind == "csv" else "application/json"
        return FileResponse(path, media_type=media, filename=f"talkinghead-{job_id[:8]}-motion.{kind}")

    @router.delete("/api/jobs/{job_id}", summary="Cancel and delete a job", status_code=200,
                   responses={404: {"model": ErrorAnswer}})
    async def delete_job(job_id: str):
        if not await asyncio.to_thread(jobs.delete, job_id):
            return problem(404, "not_found", "no such job")
        return {"deleted": job_id}

    return router


async def _create_job(settings: ServerSettings, jobs: JobStore, uploads: JobUploads, options: str):
    """POST /api/jobs: check the request, save the uploads, queue the job (202), or say what is wrong."""
    mismatch = uploads.combination_problem()
    if mismatch is not None:
        return problem(400, "bad_input", mismatch)
    refused = _text_problem(uploads.text, settings)
    if refused is not None:
        return refused
    try:
        chosen = request_options(options, driving=uploads.driving is not None)
    except ValueError as exc:  # OptionError and JSON over the limits
        return problem(400, "bad_options", str(exc))
    full = f"{settings.max_queued_jobs} jobs are already waiting: try again later"
    try:
        job_id, job_dir = jobs.new_job_dir()
    except QueueFull:
        return busy(full)
    kind = uploads.input_kind()
    fps = build_config(chosen, driving=uploads.driving is not None).fps
    try:
        files = await asyncio.to_thread(save_uploads, job_dir, uploads)
        await asyncio.to_thread(check_uploads, job_dir, kind, files, settings.max_audio_seconds, fps)
        record = jobs.submit(job_id, {"input": kind, "text": uploads.text, "options": chosen, "files": files})
    except TalkingHeadError as exc:
        jobs.discard(job_id)
        return problem(400, "bad_input", str(exc))
    except QueueFull:
        jobs.discard(job_id)
        return busy(full)
    except BaseException:
        jobs.discard(job_id)
        raise
    return job_answer(record)
