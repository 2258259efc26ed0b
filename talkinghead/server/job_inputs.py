"""A job's uploads: which combinations make sense, saving them under fixed names, and checking each
with the reader the command uses (load_image, the audio check, probe_video, load_direction,
read_motion), so a bad file gets a 400 at submission, not a failed job later.

    portrait            the image (always)
    audio               speech, unless text is sent or a driving video's sound is the speech
    driving             a driving video (its head, eyes, brows; and, with no audio or text, mouth and sound)
    direction.<ext>     a direction file (.json, .yaml, .yml): keyframed controls
    motion-in.<ext>     a motion file to render (.csv, .json) instead of generating motion

File names on disk are the server's; an upload's own name only chooses the format of the two text
files, as the extension does on the command line.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from fastapi import UploadFile

from ..audio.features import SAMPLE_RATE
from ..direction import load_direction
from ..errors import TalkingHeadError
from ..io import load_image, probe_video
from ..motion_files import FORMATS as MOTION_FORMATS, read_motion
from ..pipeline import check_audio_file
from .worker import AUDIO_FILE, DRIVING_FILE, PORTRAIT_FILE, clean_message

UPLOAD_COPY_CHUNK = 1 << 20
DIRECTION_FORMATS = (".json", ".yaml", ".yml")
NAMES = {"portrait": "the portrait", "audio": "the audio", "driving": "the driving video",
         "direction": "the direction file", "motion": "the motion file"}


@dataclass
class JobUploads:
    """The files of one job request (None where not sent) and the text, if any."""

    portrait: UploadFile
    audio: UploadFile | None = None
    driving: UploadFile | None = None
    direction: UploadFile | None = None
    motion: UploadFile | None = None
    text: str | None = None

    def input_kind(self) -> str:
        """What the speech comes from: "audio", "text" or "driving" (the driving video's sound)."""
        return "audio" if self.audio is not None else "text" if self.text is not None else "driving"

    def combination_problem(self) -> str | None:
        """Why these inputs do not go together, or None."""
        if self.audio is not None and self.text is not None:
            return "send either an audio file or text, not both"
        if self.driving is not None and self.motion is not None:
            return "send either a driving video or a motion file, not both"
        if self.motion is not None and self.audio is None and self.text is None:
            return "a motion file has no sound: send audio or text with it"
        if self.audio is None and self.text is None and self.driving is None:
            return "send either an audio file or text (or a driving video whose sound is the speech)"
        for field, formats in (("direction", DIRECTION_FORMATS), ("motion", MOTION_FORMATS)):
            upload = getattr(self, field)
            if upload is not None and _suffix(upload) not in formats:
                return (f"the {field} file's name must end in {', '.join(formats[:-1])} or {formats[-1]} "
                        f"(it sets the format), not {_suffix(upload) or 'nothing'}")
        return None

    def files(self) -> dict[str, str]:
        """Upload field -> file name in the job folder, for the optional files sent."""
        names = {}
        if self.driving is not None:
            names["driving"] = DRIVING_FILE
        if self.direction is not None:
            names["direction"] = "direction" + _suffix(self.direction)
        if self.motion is not None:
            names["motion"] = "motion-in" + _suffix(self.motion)
        return names


def _suffix(upload: UploadFile) -> str:
    return Path(upload.filename or "").suffix.lower()


def save_uploads(job_dir: Path, uploads: JobUploads) -> dict[str, str]:
    """Write each upload into the job folder; returns files() (the optional ones' names)."""
    _save(uploads.portrait, job_dir / PORTRAIT_FILE)
    if uploads.audio is not None:
        _save(uploads.audio, job_dir / AUDIO_FILE)
    files = uploads.files()
    for field, name in files.items():
        _save(getattr(uploads, field), job_dir / name)
    return files


def _save(upload: UploadFile, path: Path) -> None:
    upload.file.seek(0)
    with open(path, "wb") as out:
        shutil.copyfileobj(upload.file, out, UPLOAD_COPY_CHUNK)


def check_uploads(job_dir: Path, kind: str, files: dict[str, str], max_seconds: float, fps: int) -> None:
    """Read back every saved upload as the job will (TalkingHeadError names the upload and the problem)."""
    checks = [("portrait", PORTRAIT_FILE, lambda p: load_image(p))]
    if kind == "audio":
        checks.append(("audio", AUDIO_FILE, lambda p: _check_speech(p, max_seconds, "the audio")))
    if "driving" in files:
        checks.append(("driving", files["driving"], lambda p: _check_driving(p, kind, max_seconds)))
    if "direction" in files:
        checks.append(("direction", files["direction"], load_direction))
    if "motion" in files:
        checks.append(("motion", files["motion"], lambda p: read_motion(p, default_fps=fps)))
    for field, name, check in checks:
        path = job_dir / name
        try:
            check(path)
        except TalkingHeadError as exc:
            raise TalkingHeadError(clean_message(exc, path, NAMES[field])) from None


def _check_speech(path: Path, max_seconds: float, name: str) -> None:
    samples = check_audio_file(path, name)  # decoded in a stream: memory flat in its length
    if samples > max_seconds * SAMPLE_RATE:
        raise TalkingHeadError(f"{name} is {samples / SAMPLE_RATE:.0f} s long; this server takes at most "
                               f"{max_seconds:.0f} s: split it")


def _check_driving(path: Path, kind: str, max_seconds: float) -> None:
    """A readable video with a video track, not over the length limit; its sound checked when it is the speech."""
    info = probe_video(path)
    if info.duration > max_seconds:
        raise TalkingHeadError(f"the driving video is {info.duration:.0f} s long; this server takes at most "
                               f"{max_seconds:.0f} s: cut it")
    if kind == "driving":
        if info.audio_codec is None:
            raise TalkingHeadError("the driving video has no audio track: send the speech as audio or text too")
        _check_speech(path, max_seconds, "the driving video's sound")
