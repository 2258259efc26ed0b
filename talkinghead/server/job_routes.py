"""REST routes of offline video jobs: POST /api/jobs, GET /api/jobs/{id}[/video], DELETE /api/jobs/{id}."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel

from ..audio.features import SAMPLE_RATE
from ..errors import TalkingHeadError
from ..io import load_image
from ..pipeline import check_audio_file
from .jobs import JobStore, QueueFull
from .limits import ErrorAnswer, busy, parse_json, problem
from .options import OptionError, build_config, parse_options
from .settings import ServerSettings
from .worker import AUDIO_FILE, PORTRAIT_FILE, clean_message, tts_available

UPLOAD_COPY_CHUNK = 1 << 20
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
    input: str  # "audio" | "text"
    options: dict
    video_url: str | None = None


def job_answer(record: dict) -> dict:
    """A job record as the API shows it, with the video's URL once done."""
    video = f"/api/jobs/{record['id']}/video" if record["status"] == "done" else None
    return {**record, "video_url": video}


def request_options(text: str | None) -> dict:
    """The options form field (JSON object text) -> validated options; OptionError says what is wrong."""
    values = parse_json(text or "{}", "the options field")
    if not isinstance(values, dict):
        raise OptionError(f"options must be a JSON object, e.g. {OPTIONS_EXAMPLE}")
    chosen = parse_options(values)
    build_config(chosen)  # the config dataclasses' own checks
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
                         options: str = Form("{}", description=f"JSON object of options, e.g. {OPTIONS_EXAMPLE}")):
        return await _create_job(settings, jobs, portrait, audio, (text or "").strip() or None, options)

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
        path = jobs.result_path(job_id)
        if path is None:
            return problem(409, "not_ready", f"the job is {record['status']}; the video exists once it is done")
        return FileResponse(path, media_type="video/mp4", filename=f"talkinghead-{job_id[:8]}.mp4")

    @router.delete("/api/jobs/{job_id}", summary="Cancel and delete a job", status_code=200,
                   responses={404: {"model": ErrorAnswer}})
    async def delete_job(job_id: str):
        if not await asyncio.to_thread(jobs.delete, job_id):
            return problem(404, "not_found", "no such job")
        return {"deleted": job_id}

    return router


async def _create_job(settings: ServerSettings, jobs: JobStore, portrait: UploadFile, audio: UploadFile | None,
                      text: str | None, options: str):
    """POST /api/jobs: check the request, save the uploads, queue the job (202), or say what is wrong."""
    if (audio is None) == (text is None):
        return problem(400, "bad_input", "send either an audio file or text, not both and not neither")
    refused = _text_problem(text, settings)
    if refused is not None:
        return refused
    try:
        chosen = request_options(options)
    except ValueError as exc:  # OptionError and JSON over the limits
        return problem(400, "bad_options", str(exc))
    full = f"{settings.max_queued_jobs} jobs are already waiting: try again later"
    try:
        job_id, job_dir = jobs.new_job_dir()
    except QueueFull:
        return busy(full)
    try:
        await _save_inputs(job_dir, portrait, audio, settings)
        record = jobs.submit(job_id, {"input": "audio" if audio is not None else "text", "text": text,
                                      "options": chosen})
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


async def _save_inputs(job_dir: Path, portrait: UploadFile, audio: UploadFile | None,
                       settings: ServerSettings) -> None:
    """Save the uploads into the job's folder and check them (TalkingHeadError says what is wrong)."""
    await asyncio.to_thread(_save_upload, portrait, job_dir / PORTRAIT_FILE)
    if audio is not None:
        await asyncio.to_thread(_save_upload, audio, job_dir / AUDIO_FILE)
    await asyncio.to_thread(_check_inputs, job_dir, audio is not None, settings.max_audio_seconds)


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
        raise TalkingHeadError(clean_message(exc, portrait, "the portrait")) from None
    if not has_audio:
        return
    path = job_dir / AUDIO_FILE
    try:
        samples = check_audio_file(path, "the audio")  # decoded in a stream: memory flat in its length
    except TalkingHeadError as exc:
        raise TalkingHeadError(clean_message(exc, path, "the audio")) from None
    if samples > max_audio_seconds * SAMPLE_RATE:
        raise TalkingHeadError(f"the audio is {samples / SAMPLE_RATE:.0f} s long; this server takes at most "
                               f"{max_audio_seconds:.0f} s: split it")
