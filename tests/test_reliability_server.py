"""Issue 17, server part: every failure found by the bad-input run gets a 4xx or a clean close code.

Each test reproduces one reported failure against a real uvicorn socket on 127.0.0.1 (bounded loops).
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import threading
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
ws_client = pytest.importorskip("websockets.sync.client")
from websockets.exceptions import ConnectionClosed  # noqa: E402

from talkinghead.audio.features import SAMPLE_RATE  # noqa: E402
from talkinghead.server.background import BackgroundServer  # noqa: E402
from talkinghead.server.limits import MAX_JSON_DEPTH, JsonLimitError, parse_json  # noqa: E402
from talkinghead.server.settings import ServerSettings  # noqa: E402

from test_server import wav_bytes  # noqa: E402  (tests/ is on sys.path)

UPLOAD_LIMIT_MB = 1
UNREAD_S = 10.0  # how long the slow client leaves frames unread (~4 MB of buffers fill within a few seconds)




@pytest.fixture(scope="module")
def server(tmp_path_factory):
    settings = ServerSettings(data_dir=tmp_path_factory.mktemp("rel-server"), max_live_sessions=2,
                              max_upload_mb=UPLOAD_LIMIT_MB, header_timeout_s=1.0, body_timeout_s=1.0,
                              live_max_backlog_s=1.0, live_start_timeout_s=30)
    with BackgroundServer(settings) as running:
        yield running


def post_job(http, portrait: bytes, audio: bytes, options: str = "{}"):
    files = {"portrait": ("face.png", portrait, "image/png"), "audio": ("speech.wav", audio, "audio/wav")}
    return http.post("/api/jobs", files=files, data={"options": options})


def live_close(server, start_text: str) -> tuple[dict, int]:
    """Send a start message; return the error message and the close code."""
    with ws_client.connect(server.ws_url + "/api/live", max_size=None, open_timeout=30) as ws:
        ws.send(start_text)
        message = json.loads(ws.recv(timeout=30))
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=30)
        return message, ws.close_code


def test_json_limits_refuse_depth_size_and_huge_numbers_before_parsing():
    assert parse_json('{"a": [1, {"b": "[[[["}]}', "x") == {"a": [1, {"b": "[[[["}]}
    with pytest.raises(JsonLimitError, match="nested"):
        parse_json("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), "x")
    with pytest.raises(JsonLimitError, match="digits"):
        parse_json('{"motion.seed": ' + "9" * 5000 + "}", "x")
    with pytest.raises(JsonLimitError, match="not a JSON number"):
        parse_json('{"fps": NaN}', "x")


def test_deeply_nested_options_get_400_not_500(http, demo_image_path, demo_audio):
    for levels, words in ((100_000, "characters long"), (30_000, "nested 30001 levels")):
        deep = '{"motion.seed": ' + "[" * levels + "]" * levels + "}"
        answer = post_job(http, demo_image_path.read_bytes(), wav_bytes(demo_audio[:SAMPLE_RATE]), deep)
        assert answer.status_code == 400 and answer.json()["error"] == "bad_options"
        assert words in answer.json()["detail"]


def test_a_5000_digit_integer_option_gets_a_plain_message(http, demo_image_path, demo_audio):
    answer = post_job(http, demo_image_path.read_bytes(), wav_bytes(demo_audio[:SAMPLE_RATE]),
                      '{"motion.seed": ' + "7" * 5000 + "}")
    assert answer.status_code == 400
    assert "set_int_max_str_digits" not in answer.text and "digits" in answer.json()["detail"]


def test_chunked_oversized_upload_gets_413(server):
    body_size = 3 * UPLOAD_LIMIT_MB * 1_000_000

    def chunks():  # a well-formed multipart upload whose audio part never ends within the limit
        yield (b'--zzz\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n'
               b"Content-Type: audio/wav\r\n\r\n")
        for _ in range(body_size // 65536):
            yield b"x" * 65536

    with httpx.Client(base_url=server.url, timeout=30) as client:
        answer = client.post("/api/jobs", content=chunks(),
                             headers={"content-type": "multipart/form-data; boundary=zzz"})
    assert answer.status_code == 413 and answer.json()["error"] == "too_large"


def test_half_sent_request_line_is_cut_while_others_are_answered(server, http):
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as slow:
        slow.sendall(b"GET /api/status HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        started = time.monotonic()
        assert http.get("/api/status").status_code == 200  # others still answered
        assert slow.recv(100) == b""  # the server closed the slow connection
        assert time.monotonic() - started < 8


def test_stalled_body_gets_408(server):
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as slow:
        slow.sendall(b"POST /api/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=z\r\n"
                     b"Content-Length: 100000\r\n\r\n--z\r\n")
        answer = b""
        while chunk := slow.recv(1000):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408") and b"stopped arriving" in answer


@pytest.mark.parametrize("start, words", [
    ({"type": "start", "options": [1, 2]}, "options must be a JSON object"),
    ({"type": "start", "options": "fps=5"}, "options must be a JSON object"),
    ({"type": "start", "audio_format": ["f32"]}, "audio_format"),
    ({"type": "start", "quality": True}, "quality"),
    ({"type": "start", "volume": 3}, "unknown start message field"),
    ({"type": "start", "options": {"motion.seed": 10 ** 60}}, "digits"),
])
def test_live_start_messages_are_checked(server, start, words):
    text = json.dumps(start) if "digits" not in words else '{"type": "start", "options": {"motion.seed": ' + "9" * 60 + "}}"
    message, code = live_close(server, text)
    assert message["error"] == "bad_input" and words in message["detail"], message
    assert code == 4400


def test_upload_messages_read_well(http, demo_image_path):
    tiny = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (32, 32)).save(tiny, "PNG")
    answer = post_job(http, tiny.getvalue(), b"RIFF0000WAVE")
    detail = answer.json()["detail"]
    assert answer.status_code == 400 and "image the portrait" not in detail and "the portrait is too small" in detail
    answer = post_job(http, demo_image_path.read_bytes(), b"this is not audio")
    detail = answer.json()["detail"]
    assert answer.status_code == 400 and "audio the audio" not in detail and "cannot read the audio" in detail


def test_a_killed_job_worker_leaves_no_partial_video(server, http, demo_image_path, demo_audio):
    speech = np.tile(demo_audio, 3)[: 12 * SAMPLE_RATE]  # 0.4 MB of WAV (under the upload limit), seconds of work
    job = post_job(http, demo_image_path.read_bytes(), wav_bytes(speech)).json()
    job_dir = server.app.state.settings.resolved_data_dir() / "jobs" / job["id"]
    store = server.app.state.jobs
    deadline = time.monotonic() + 120
    while not list(job_dir.glob(".*partial*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(job_dir.glob(".*partial*")), "the job never started writing"
    os.kill(store._process.pid, signal.SIGKILL)
    while http.get(f"/api/jobs/{job['id']}").json()["status"] not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.1)
    record = http.get(f"/api/jobs/{job['id']}").json()
    assert record["status"] == "failed" and "stopped unexpectedly" in record["error"]
    assert not list(job_dir.glob(".*partial*"))


def test_a_live_client_that_stops_reading_is_told_so(tmp_path, demo_image_path, demo_audio):
    settings = ServerSettings(data_dir=tmp_path, live_max_backlog_s=600, live_max_send_wait_s=1.0,
                              live_max_audio_lead_s=600, live_start_timeout_s=60, live_idle_timeout_s=60)
    speech = np.asarray(np.tile(demo_audio, 4)[: 20 * SAMPLE_RATE], "<f4")
    with BackgroundServer(settings) as srv:
        with ws_client.connect(srv.ws_url + "/api/live", max_size=None, max_queue=1, open_timeout=30) as ws:
            ws.send(json.dumps({"type": "start", "options": {"render.size": 512}, "quality": 95}))
            ws.send(demo_image_path.read_bytes())
            assert json.loads(ws.recv(timeout=60))["type"] == "ready"
            def send_audio():  # 20 s of audio; blocks once the server stops reading it, ends when closed
                step = SAMPLE_RATE // 10
                try:
                    for start in range(0, len(speech), step):
                        ws.send(speech[start:start + step].tobytes())
                        time.sleep(0.01)
                except ConnectionClosed:
                    pass

            audio_thread = threading.Thread(target=send_audio, daemon=True)
            audio_thread.start()
            time.sleep(UNREAD_S)  # no frame read meanwhile
            errors, deadline = [], time.monotonic() + 60
            while not errors and time.monotonic() < deadline:  # now read what the server sent
                try:
                    message = ws.recv(timeout=30)
                except (ConnectionClosed, TimeoutError):
                    break
                if isinstance(message, str) and '"error"' in message:
                    errors.append(json.loads(message))
        audio_thread.join(timeout=30)
        assert errors and errors[-1]["error"] == "slow_client", (errors, ws.close_code, ws.close_reason)
        assert "stopped reading" in errors[-1]["detail"] and "fell" not in errors[-1]["detail"]
        assert ws.close_code == 4409
