"""Opening media files for reading: the checks and one-line errors shared by io.py and video.py."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import av

from .errors import TalkingHeadError

PathLike = Union[str, os.PathLike]


def check_input_file(path: PathLike, kind: str, hint: str) -> Path:
    """Return ``path`` as a Path after checking that it names an existing regular file."""
    p = Path(path)
    if not p.exists():
        raise TalkingHeadError(f"{kind} file '{p}' does not exist (check the path; {hint})")
    if not p.is_file():
        raise TalkingHeadError(f"{kind} path '{p}' is not a file (give the path of a file; {hint})")
    return p


def av_error_detail(exc: BaseException) -> str:
    """One-line description of a PyAV/FFmpeg exception."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).splitlines()[0]


def open_media(p: Path, kind: str, what: str, hint: str) -> "av.container.InputContainer":
    """av.open for reading, turning FFmpeg's failures into one-line TalkingHeadErrors."""
    try:
        return av.open(str(p), mode="r")
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise TalkingHeadError(
            f"cannot read {kind} '{p}': not a recognised {what} file ({av_error_detail(exc)}); {hint}"
        ) from None
