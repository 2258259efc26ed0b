"""Server cases of the bad-input corpus (scripts/check_bad_inputs.py): HTTP and live WebSocket requests
against a real server on 127.0.0.1, each classified by status or close code, message and leftovers."""

from __future__ import annotations

import json
import logging
import socket
import time
from pathlib import Path

ERROR_STATUS = range(400, 500)
LIVE_ERROR_CODES = range(4000, 4999)
JOB_WAIT_S = 120
MAX_DETAIL_CHARS = 1000  # a clear one-line message (a list of the known options is long but clear)


class _ServerErrors(logging.Handler):
    """Counts error records (tracebacks of unhandled exceptions) logged by the server."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _job_dirs(data: Path) -> set[str]:
    jobs = data / "jobs"
    return {p.name for p in jobs.iterdir()} if jobs.is_dir() else set()


def _http_cases(i, big: bytes) -> list[tuple[str, dict]]:
    """(name, request) of each REST case; a request is httpx.post keyword arguments (or a raw/get case)."""
    face, speech = i.face__png.read_bytes(), i.speech__wav.read_bytes()

    def job(portrait=face, audio=speech, options="{}", text=None, **extra):
        files = {"portrait": ("p.png", portrait, "image/png")} if portrait is not None else {}
        if audio is not None:
            files["audio"] = ("a.wav", audio, "audio/wav")
        data = {"options": options} if options is not None else {}
        if text is not None:
            data["text"] = text
        return {"files": files, "data": data, **extra}

    return [
        ("options not JSON", job(options="{fps: 5")), ("options a list", job(options="[1, 2]")),
        ("options a string", job(options='"fps=5"')), ("options nested 100,000 deep", job(options="[" * 100_000 + "]" * 100_000)),
        ("options nested 30,000 deep", job(options='{"fps": ' + "[" * 30_000 + "]" * 30_000 + "}")),
        ("options 5,000-digit integer", job(options='{"motion.seed": ' + "7" * 5000 + "}")),
        ("options NaN", job(options='{"fps": NaN}')), ("options 1e400", job(options='{"motion.head_amplitude": 1e400}')),
        ("options unknown name", job(options='{"warp_drive": 9}')), ("options fps 0", job(options='{"fps": 0}')),
        ("options size 5000", job(options='{"render.size": 5000}')), ("options seed -1", job(options='{"motion.seed": -1}')),
        ("options 100 kB", job(options=json.dumps({"x": "y" * 100_000}))),
        ("no portrait", job(portrait=None)), ("neither audio nor text", job(audio=None)),
        ("audio and text", job(text="hello")), ("text too long", job(audio=None, text="a" * 6000)),
        ("empty portrait", job(portrait=b"")), ("text as portrait", job(portrait=b"hello")),
        ("tiny portrait", job(portrait=i.tiny__png.read_bytes())), ("portrait without a face", job(portrait=i.noface__png.read_bytes())),
        ("garbage audio", job(audio=b"not audio at all")), ("silent audio", job(audio=i.silent__wav.read_bytes())),
        ("truncated audio", job(audio=i.truncated__wav.read_bytes())), ("audio over the length limit", job(audio=i.long__wav.read_bytes())),
        ("body over the size limit (Content-Length)", job(audio=big)),
    ]


def _raw_cases() -> list[tuple[str, bytes, bytes]]:
    """(name, bytes sent on a raw socket, expected status line start) of the slow and chunked cases."""
    head = b"POST /api/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=z\r\n"
    part = b'--z\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n\r\n'
    chunk = b"%x\r\n%s\r\n" % (len(b"x" * 65536), b"x" * 65536)
    return [("half-sent request line (slowloris)", b"GET /api/status HTTP/1.1\r\nHost: x\r\n", b""),
            ("stalled body", head + b"Content-Length: 100000\r\n\r\n--z\r\n", b"HTTP/1.1 408"),
            ("chunked body over the size limit", head + b"Transfer-Encoding: chunked\r\n\r\n"
             + b"%x\r\n%s\r\n" % (len(part), part) + chunk * 40, b"HTTP/1.1 413")]


def _live_cases(i) -> list[tuple[str, list]]:
    """(name, messages to send) of each live case: str for text, bytes for binary."""
    face = i.face__png.read_bytes()
    start = json.dumps({"type": "start"})
    return [("start not JSON", ["hello"]), ("start a list", ["[1, 2]"]),
            ("start options a list", [json.dumps({"type": "start", "options": [1, 2]})]),
            ("start options a string", [json.dumps({"type": "start", "options": "fps=5"})]),
            ("start audio_format a list", [json.dumps({"type": "start", "audio_format": ["f32"]})]),
            ("start quality true", [json.dumps({"type": "start", "quality": True})]),
            ("start sample rate 8000", [json.dumps({"type": "start", "sample_rate": 8000})]),
            ("start unknown field", [json.dumps({"type": "start", "volume": 11})]),
            ("start nested deep", ['{"type": "start", "options": ' + "[" * 5000 + "]" * 5000 + "}"]),
            ("start 5,000-digit seed", ['{"type": "start", "options": {"motion.seed": ' + "9" * 5000 + "}}"]),
            ("start size 4096", [json.dumps({"type": "start", "options": {"render.size": 4096}})]),
            ("binary first", [face]), ("portrait not an image", [start, b"nope"]),
            ("portrait without a face", [start, i.noface__png.read_bytes()]),
            ("audio odd bytes", [json.dumps({"type": "start", "audio_format": "s16"}), face, b"\x01\x02\x03"]),
            ("audio NaN samples", [start, face, b"\x00\x00\xc0\x7f" * 320]),
            ("audio message over 1 s", [start, face, b"\x00" * (4 * 16_000 * 2)]),
            ("unknown text mid-stream", [start, face, "dance"])]


def _classify_http(outcome, answer, errors_before: int, errors: _ServerErrors, dirs_before: set, data: Path) -> None:
    outcome.status = str(answer.status_code)
    try:
        body = answer.json()
    except ValueError:
        body = {}
    detail = str(body.get("detail", "")) if isinstance(body, dict) else ""
    outcome.clean = (answer.status_code in ERROR_STATUS and bool(detail) and "\n" not in detail
                     and len(detail) < MAX_DETAIL_CHARS)
    outcome.message = detail[:160]
    outcome.traceback = answer.status_code >= 500 or len(errors.records) > errors_before
    outcome.left_behind = sorted(_job_dirs(data) - dirs_before)


def run_http(i, client, errors: _ServerErrors, data: Path, make_outcome) -> list:
    """Every REST case."""
    from talkinghead.server.background import wait_for_job

    big = b"\0" * 2_500_000
    results = []
    for name, request in _http_cases(i, big):
        outcome = make_outcome("server", "POST /api/jobs: " + name, "refuse")
        before, dirs = len(errors.records), _job_dirs(data)
        answer = client.post("/api/jobs", **request)
        _classify_http(outcome, answer, before, errors, dirs, data)
        if answer.status_code == 202:  # accepted (face analysis runs in the job): it must fail cleanly
            _classify_job(outcome, wait_for_job(client, answer.json()["id"], JOB_WAIT_S), data)
        results.append(outcome)
    for name, path in (("unknown job", "/api/jobs/AAAAAAAAAAAAAAAAAAAAAA"), ("job id with a path", "/api/jobs/..%2F..%2Fetc"),
                       ("video of an unknown job", "/api/jobs/AAAAAAAAAAAAAAAAAAAAAA/video")):
        outcome = make_outcome("server", "GET " + name, "refuse")
        _classify_http(outcome, client.get(path), len(errors.records), errors, _job_dirs(data), data)
        results.append(outcome)
    return results


def _classify_job(outcome, job: dict, data: Path) -> None:
    """An accepted job that should fail: failed, one clear line, no partial file in its folder."""
    error = job.get("error") or ""
    outcome.status = f"202, job {job['status']}"
    outcome.clean = job["status"] == "failed" and bool(error) and "\n" not in error and len(error) < MAX_DETAIL_CHARS
    outcome.message = error[:160]
    outcome.left_behind = sorted(p.name for p in (data / "jobs" / job["id"]).glob(".*partial*"))


def run_raw(url: str, make_outcome) -> list:
    """Slow and chunked requests on a raw socket: each must end within its time limit with the right answer."""
    host, port = url.removeprefix("http://").split(":")
    results = []
    for name, data, expected in _raw_cases():
        outcome = make_outcome("server", "raw: " + name, "refuse")
        started = time.monotonic()
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            try:
                sock.sendall(data)
            except OSError:
                pass  # the server answered and closed while the body was still going out
            answer = b""
            try:
                while chunk := sock.recv(4096):
                    answer += chunk
            except OSError:
                pass
        waited = time.monotonic() - started
        outcome.status = answer.split(b"\r\n", 1)[0].decode(errors="replace") or "closed"
        outcome.clean = answer.startswith(expected) and waited < 20
        outcome.message = f"answered in {waited:.1f} s: " + answer.split(b"\r\n\r\n", 1)[-1].decode(errors="replace")[:120]
        results.append(outcome)
    return results


def run_live(i, ws_url: str, make_outcome) -> list:
    """Every live case: an error message and a 4xxx close code."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    results = []
    for name, messages in _live_cases(i):
        outcome = make_outcome("server", "live: " + name, "refuse")
        received = []
        with connect(ws_url + "/api/live", max_size=None, open_timeout=30) as ws:
            try:
                for message in messages:
                    ws.send(message)
                while True:
                    received.append(ws.recv(timeout=60))
            except (ConnectionClosed, TimeoutError):
                pass
            code = ws.close_code
        errors = [json.loads(m) for m in received if isinstance(m, str) and '"error"' in m]
        outcome.status = str(code)
        outcome.clean = bool(errors) and code in LIVE_ERROR_CODES and len(errors[-1].get("detail", "")) < MAX_DETAIL_CHARS
        outcome.message = (errors[-1].get("detail", "") if errors else "no error message")[:160]
        outcome.traceback = code in (1006, 1011, 4500)
        results.append(outcome)
    return results


def server_cases(i, data: Path, Outcome) -> list:
    """Run every server case against one server with small limits; returns Outcome objects."""
    import httpx

    from talkinghead.server.background import BackgroundServer
    from talkinghead.server.settings import ServerSettings

    errors = _ServerErrors()
    for name in ("uvicorn.error", "talkinghead", "fastapi"):
        logging.getLogger(name).addHandler(errors)
    settings = ServerSettings(data_dir=data, max_upload_mb=1.9, max_audio_seconds=10, header_timeout_s=2,
                              body_timeout_s=2, max_live_sessions=2)
    with BackgroundServer(settings) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        results = run_http(i, client, errors, data, Outcome)
        results += run_raw(server.url, Outcome)
        results += run_live(i, server.ws_url, Outcome)
    for outcome in results:
        print(f"server {'ok  ' if outcome.passed else 'FAIL'} {outcome.name}: {outcome.message[:90]}", flush=True)
    return results
