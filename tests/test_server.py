"""The server: options built from the config dataclasses, REST jobs over a real socket (httpx against
uvicorn), the live WebSocket end to end (websockets client), limits and "busy" answers.

Live frames must equal the offline generator's: checked bit for bit on the session object (same
JPEG bytes as encoding the offline frames) and within JPEG error over the WebSocket.
"""

from __future__ import annotations

import io
import json
import math
import struct
import time
import wave
from contextlib import ExitStack, contextmanager
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
ws_client = pytest.importorskip("websockets.sync.client")
from websockets.exceptions import ConnectionClosed  # noqa: E402
from PIL import Image  # noqa: E402

from talkinghead.audio.features import SAMPLE_RATE, frame_count  # noqa: E402
from talkinghead.config import GenerateConfig, MotionConfig  # noqa: E402
from talkinghead.server import background  # noqa: E402
from talkinghead.server.background import BackgroundServer  # noqa: E402
from talkinghead.server.live import (LIVE_DEFAULTS, END_OF_AUDIO, FRAME_HEADER, LiveSession, decision_delay_seconds,  # noqa: E402
                                     encode_frame)
from talkinghead.server.options import PATH_OPTIONS, OptionError, build_config, config_options, parse_options  # noqa: E402
from talkinghead.server.settings import ServerSettings  # noqa: E402

JOB_WAIT_S = 180
CHUNK = 320  # 20 ms at 16 kHz
SHORT_AUDIO_S = 2.0


def wav_bytes(samples: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    """float32 mono -> 16-bit PCM WAV bytes."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def short_audio(demo_audio) -> np.ndarray:
    return np.array(demo_audio[: int(SHORT_AUDIO_S * SAMPLE_RATE)])


@pytest.fixture(scope="module")
def portrait_png(demo_image_path) -> bytes:
    return demo_image_path.read_bytes()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server (real uvicorn socket) for the module: 2 live sessions, 4 queued jobs."""
    settings = ServerSettings(data_dir=tmp_path_factory.mktemp("server-data"), max_live_sessions=2,
                              max_queued_jobs=4, max_upload_mb=5,
                              live_cpu_share=0)
    with BackgroundServer(settings) as running:
        yield running


def submit(http, portrait: bytes, audio: bytes | None = None, text: str | None = None, options: dict | None = None):
    files = {"portrait": ("face.png", portrait, "image/png")}
    if audio is not None:
        files["audio"] = ("speech.wav", audio, "audio/wav")
    data = {"options": json.dumps(options or {})}
    if text is not None:
        data["text"] = text
    return http.post("/api/jobs", files=files, data=data)


def wait_for_job(http, job_id: str) -> dict:
    job = background.wait_for_job(http, job_id, JOB_WAIT_S)
    assert job["status"] in ("done", "failed"), f"job {job_id} did not finish in {JOB_WAIT_S} s"
    return job


# ------------------------------------------------------------------------------------------------
# options from the config dataclasses
# ------------------------------------------------------------------------------------------------


def test_options_cover_every_scalar_config_field_with_its_default():
    names = {o.name: o for o in config_options()}
    motion = MotionConfig()
    for f in fields(MotionConfig):
        value = getattr(motion, f.name)
        if f"motion.{f.name}" in PATH_OPTIONS:
            assert f"motion.{f.name}" not in names
        elif isinstance(value, (bool, int, float, str)):
            assert names[f"motion.{f.name}"].default == value
    for required in ("motion.seed", "motion.blink_rate", "motion.head_amplitude", "motion.mouth_amplitude",
                     "motion.lookahead_frames"):
        assert required in names
        assert names[required].as_json()["help"], f"{required} has no help text"
    assert names["render.size"].default == GenerateConfig().render.size
    assert "chunk_seconds" not in names  # internal


def test_build_config_accepts_full_and_bare_names_and_rejects_bad_values():
    config = build_config({"seed": 7, "motion.mouth_amplitude": "1.5", "render.size": 256, "gaze_saccades": "false"})
    assert config.motion.seed == 7 and config.motion.mouth_amplitude == 1.5
    assert config.render.size == 256 and config.motion.gaze_saccades is False
    assert build_config({}) == GenerateConfig()
    assert parse_options({"seed": 3}) == {"motion.seed": 3}
    for bad, words in [({"nonsense": 1}, "unknown option 'nonsense'"), ({"seed": 1.5}, "whole number"),
                       ({"motion.blink_rate": 1e6}, "use a number from 0 to 60 per minute"),
                       ({"seed": "x"}, "'x' is not allowed: use a whole number"),
                       ({"motion.head_amplitude": math.nan}, "nan is not allowed: use a number from 0 to 3"),
                       ({"gaze_saccades": "maybe"}, "true or false"),
                       ({"seed": "9" * 5000}, "use a whole number"), ({"controls.emotion": "joyful"}, "use one of neutral")]:
        with pytest.raises(OptionError, match=words):
            build_config(bad)
    with pytest.raises(OptionError, match="out of range here"):
        build_config({"render.size": 1024}, {"render.size": (64, 512)})


def test_options_endpoint_lists_the_options_and_live_protocol(http):
    info = http.get("/api/options").json()
    names = {o["name"]: o for o in info["options"]}
    assert names["motion.lookahead_frames"]["default"] == MotionConfig().lookahead_frames
    assert names["motion.seed"]["common"] is True
    assert info["live"]["frame_header"] == FRAME_HEADER.format
    assert info["live"]["sample_rate"] == SAMPLE_RATE
    # live sessions start from the live preset, which the page needs in order to offer its other choice
    assert info["presets"]["live"] == {"motion.mouth": LIVE_DEFAULTS.motion.mouth} != {"motion.mouth": names["motion.mouth"]["default"]}
    docs = http.get("/openapi.json").json()
    assert {"/api/jobs", "/api/jobs/{job_id}", "/api/jobs/{job_id}/video", "/api/options", "/api/status"} <= set(docs["paths"])
    docs_page = http.get("/docs")
    assert docs_page.status_code == 200 and "://" not in docs_page.text  # no CDN: every asset is the server's
    assert http.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    page = http.get("/")
    assert page.status_code == 200 and "talkinghead" in page.text and "/static/app.js" in page.text


# ------------------------------------------------------------------------------------------------
# REST jobs
# ------------------------------------------------------------------------------------------------


def test_job_runs_to_a_video_with_the_requested_options(http, portrait_png, short_audio, server):
    from talkinghead.io import load_audio, read_video_frames

    answer = submit(http, portrait_png, wav_bytes(short_audio), options={"seed": 3, "motion.mouth_amplitude": 1.2})
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert job["status"] in ("queued", "running") and len(job["id"]) == 22
    assert job["options"] == {"motion.seed": 3, "motion.mouth_amplitude": 1.2}
    done = wait_for_job(http, job["id"])
    assert done["status"] == "done", done
    assert done["progress"] == 1.0 and done["frames_done"] == done["frames_total"] == frame_count(len(short_audio), 25)
    assert done["expires_at"] > done["finished_at"]
    video = http.get(done["video_url"])
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    path = server.app.state.settings.resolved_data_dir() / "check.mp4"
    path.write_bytes(video.content)
    frames = list(read_video_frames(path))
    assert len(frames) == done["frames_total"] and frames[0].shape == (512, 512, 3)
    assert abs(len(load_audio(path)) - len(short_audio)) < 0.1 * SAMPLE_RATE
    # a second look (a page refresh) finds the same job and file
    assert http.get(f"/api/jobs/{job['id']}").json()["status"] == "done"
    assert http.get(done["video_url"]).content == video.content


def test_bad_requests_get_clear_400s_without_server_paths(http, portrait_png, short_audio):
    wav = wav_bytes(short_audio)
    cases = [
        (submit(http, portrait_png), "either an audio file or text"),
        (submit(http, portrait_png, wav, text="hello"), "either an audio file or text"),
        (submit(http, b"not an image", wav), "portrait"),
        (submit(http, portrait_png, b"not audio at all"), "audio"),
        (submit(http, portrait_png, wav_bytes(np.zeros(SAMPLE_RATE, np.float32))), "silent"),
        (submit(http, portrait_png, wav, options={"seed": -1}), "is not allowed: use a whole number from 0"),
        (submit(http, portrait_png, wav, options={"colour": "blue"}), "unknown option"),
    ]
    for answer, words in cases:
        assert answer.status_code == 400, answer.text
        body = answer.json()
        assert words in body["detail"], body
        assert "/tmp" not in body["detail"] and "jobs/" not in body["detail"]
    bad_json = http.post("/api/jobs", files={"portrait": ("p.png", portrait_png)}, data={"options": "{", "text": "x"})
    assert bad_json.status_code == 400


def test_a_portrait_without_a_face_fails_the_job_with_the_reason(http, short_audio):
    gradient = np.tile(np.linspace(0, 255, 256, dtype=np.uint8)[None, :, None], (256, 1, 3))
    job = submit(http, png_bytes(gradient), wav_bytes(short_audio)).json()
    done = wait_for_job(http, job["id"])
    assert done["status"] == "failed"
    assert "face" in done["error"] and "/" not in done["error"]
    assert http.get(f"/api/jobs/{job['id']}/video").status_code == 409


def test_text_job_speaks_with_the_builtin_voice_or_says_why_not(http, portrait_png):
    status = http.get("/api/status").json()
    answer = submit(http, portrait_png, text="Hello there.")
    if not status["tts"]:
        assert answer.status_code == 400 and answer.json()["error"] == "tts_unavailable"
        return
    assert answer.status_code == 202, answer.text
    done = wait_for_job(http, answer.json()["id"])
    assert done["status"] == "done", done
    assert done["input"] == "text" and done["frames_total"] > 10


def test_unknown_ids_and_paths_never_reach_other_files(http):
    for path in ["/api/jobs/nope", "/api/jobs/../../etc/passwd", "/api/jobs/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
                 "/api/jobs/AAAAAAAAAAAAAAAAAAAAAA/video", "/api/jobs/..%2F..%2Fjob.json/video",
                 "/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2Fapp.py"]:
        answer = http.get(path)
        assert answer.status_code == 404, (path, answer.status_code)
        assert "def create_app" not in answer.text and "root:" not in answer.text
    assert http.delete("/api/jobs/AAAAAAAAAAAAAAAAAAAAAA").status_code == 404


def test_oversized_uploads_get_413(http, portrait_png):
    big = b"\0" * int(6e6)  # the module server's limit is 5 MB
    answer = http.post("/api/jobs", files={"portrait": ("p.png", portrait_png), "audio": ("a.wav", big)})
    assert answer.status_code == 413
    assert answer.json()["error"] == "too_large"


def test_deleting_a_job_cancels_it_and_removes_its_files(http, portrait_png, demo_audio, server):
    job = submit(http, portrait_png, wav_bytes(np.array(demo_audio))).json()
    job_dir = server.app.state.settings.resolved_data_dir() / "jobs" / job["id"]
    assert job_dir.is_dir()
    assert http.delete(f"/api/jobs/{job['id']}").json() == {"deleted": job["id"]}
    assert http.get(f"/api/jobs/{job['id']}").status_code == 404
    assert not job_dir.exists()
    # the queue keeps working after a cancel
    assert http.get("/api/status").json()["queued_jobs"] == 0


def test_full_queue_answers_busy(tmp_path, portrait_png, short_audio):
    settings = ServerSettings(data_dir=tmp_path, max_queued_jobs=0)
    with BackgroundServer(settings) as srv, httpx.Client(base_url=srv.url, timeout=60) as client:
        answer = submit(client, portrait_png, wav_bytes(short_audio))
        assert answer.status_code == 503
        assert answer.json()["error"] == "busy" and "try again" in answer.json()["detail"]
        assert int(answer.headers["retry-after"]) > 0
        assert not any((tmp_path / "jobs").iterdir())  # nothing left behind


def test_finished_jobs_survive_a_restart_and_expire(tmp_path, portrait_png, short_audio):
    settings = ServerSettings(data_dir=tmp_path, job_ttl_hours=3 / 3600)  # 3 s
    with BackgroundServer(settings) as srv, httpx.Client(base_url=srv.url, timeout=60) as client:
        job_id = submit(client, portrait_png, wav_bytes(short_audio)).json()["id"]
        assert wait_for_job(client, job_id)["status"] == "done"
    with BackgroundServer(settings) as srv, httpx.Client(base_url=srv.url, timeout=60) as client:
        job = client.get(f"/api/jobs/{job_id}").json()  # a new server process finds the job on disk
        if job.get("status") == "done":
            assert client.get(job["video_url"]).status_code == 200
        deadline = time.monotonic() + 20
        while client.get(f"/api/jobs/{job_id}").status_code != 404 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert client.get(f"/api/jobs/{job_id}").status_code == 404
        assert not (tmp_path / "jobs" / job_id).exists()


def test_a_job_over_the_time_limit_is_stopped(tmp_path, portrait_png, short_audio):
    settings = ServerSettings(data_dir=tmp_path, job_timeout_s=0.3)  # less than the worker's start-up
    with BackgroundServer(settings) as srv, httpx.Client(base_url=srv.url, timeout=60) as client:
        job_id = submit(client, portrait_png, wav_bytes(short_audio)).json()["id"]
        done = wait_for_job(client, job_id)
        assert done["status"] == "failed" and "limit" in done["error"]
        assert not list((tmp_path / "jobs" / job_id).glob("*.mp4"))  # no (partial) video left


def test_unfinished_jobs_are_requeued_after_a_restart(tmp_path, portrait_png, short_audio):
    settings = ServerSettings(data_dir=tmp_path)
    with BackgroundServer(settings) as srv, httpx.Client(base_url=srv.url, timeout=60) as client:
        srv.app.state.jobs.stop()  # no worker: the job stays queued, as if the server died
        job_id = submit(client, portrait_png, wav_bytes(short_audio)).json()["id"]
        assert client.get(f"/api/jobs/{job_id}").json()["status"] == "queued"
    with BackgroundServer(settings) as srv, httpx.Client(base_url=srv.url, timeout=60) as client:
        assert wait_for_job(client, job_id)["status"] == "done"


def test_serve_command_starts_the_server(tmp_path):
    import subprocess
    import sys

    from talkinghead.server.background import free_port

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "talkinghead", "serve", "--port", str(port), "--data-dir",
                                str(tmp_path), "--max-live-sessions", "5", "--log-level", "warning"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/api/status", timeout=2).json()
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read()
                time.sleep(0.3)
        else:
            raise AssertionError("talkinghead serve did not answer within 60 s")
        assert status["max_live_sessions"] == 5
    finally:
        process.terminate()
        process.wait(timeout=30)


# ------------------------------------------------------------------------------------------------
# live sessions: the session object
# ------------------------------------------------------------------------------------------------


def run_session(pipeline, audio: np.ndarray, chunk: int = CHUNK):
    """Push `audio` in chunks through a LiveSession; returns its EncodedFrames (attribution to chunks
    does not depend on timing: the generator takes chunk k+1 only after yielding chunk k's frames)."""
    frames, ended = [], []
    session = LiveSession(pipeline, frames.append, ended.append).start()
    for start in range(0, len(audio), chunk):
        session.push(audio[start:start + chunk])
    session.finish()
    session.join(120)
    assert ended == [None]
    return frames


@pytest.fixture(scope="module")
def live_pipeline(astronaut_pipeline_with):
    """The astronaut with the live defaults (live.LIVE_DEFAULTS: the low-latency loudness mouth)."""
    return astronaut_pipeline_with(mouth=LIVE_DEFAULTS.motion.mouth)


@pytest.fixture(scope="module")
def astronaut_frames(live_pipeline, demo_audio):
    """The offline frames of the demo speech with the live defaults (what a live session must send)."""
    return list(live_pipeline.stream(live_pipeline.chunks(demo_audio)))


def test_live_session_frames_are_the_offline_frames(live_pipeline, astronaut_frames, demo_audio):
    frames = run_session(live_pipeline, np.array(demo_audio), chunk=480)
    assert [f.index for f in frames] == list(range(len(astronaut_frames)))
    for live_frame, offline in zip(frames, astronaut_frames):
        assert live_frame.data == encode_frame(offline)  # the same pixels, hence the same JPEG bytes
    assert frames[-1].chunk == END_OF_AUDIO and frames[0].chunk != END_OF_AUDIO
    assert all(f.pts == pytest.approx(f.index / 25) for f in frames)


@pytest.mark.parametrize("lookahead", [0, 2])
def test_look_ahead_sets_which_chunk_decides_the_first_frame(astronaut_pipeline_with, demo_audio, lookahead):
    pipeline = astronaut_pipeline_with(lookahead_frames=lookahead, mouth=LIVE_DEFAULTS.motion.mouth)
    frames = run_session(pipeline, np.array(demo_audio[: SAMPLE_RATE]))
    delay = decision_delay_seconds(pipeline.config)
    assert delay == pytest.approx((1 + lookahead) / 25)
    # frame i (centre (i + 0.5) * 40 ms) is decided by the chunk that brings the audio up to its centre + delay
    samples_per_frame = SAMPLE_RATE // 25
    for f in frames:
        if f.chunk != END_OF_AUDIO:
            needed = samples_per_frame * (2 * f.index + 1) // 2 + round(delay * SAMPLE_RATE)
            assert f.chunk == math.ceil(needed / CHUNK) - 1, f.index
    assert frames[0].chunk == math.ceil((0.02 + delay) * SAMPLE_RATE / CHUNK - 1e-9) - 1


# ------------------------------------------------------------------------------------------------
# live sessions over a real WebSocket
# ------------------------------------------------------------------------------------------------


def connect(server, **headers):
    """A WebSocket to /api/live (a context manager)."""
    return ws_client.connect(server.ws_url + "/api/live", max_size=None, additional_headers=headers or None,
                             open_timeout=30)


@contextmanager
def open_live(server, portrait: bytes, options: dict | None = None, audio_format: str = "f32"):
    """A live session: start message and portrait sent."""
    with connect(server) as ws:
        ws.send(json.dumps({"type": "start", "options": options or {}, "audio_format": audio_format}))
        ws.send(portrait)
        yield ws


@pytest.mark.parametrize("audio_format", ["f32", "s16"])
def test_live_websocket_streams_the_offline_frames(server, portrait_png, astronaut_frames, demo_audio, audio_format):
    audio = np.array(demo_audio[: 3 * SAMPLE_RATE])
    with open_live(server, portrait_png, audio_format=audio_format) as ws:
        ready = json.loads(ws.recv(timeout=60))
        assert ready["type"] == "ready", ready
        assert (ready["width"], ready["height"], ready["fps"]) == (512, 512, 25)
        assert ready["decision_delay_ms"] == pytest.approx(120)
        if audio_format == "s16":
            pcm = np.round(np.clip(audio, -1, 1) * 32767).astype("<i2")
        else:
            pcm = audio.astype("<f4")
        for start in range(0, len(pcm), CHUNK):
            ws.send(pcm[start:start + CHUNK].tobytes())
        ws.send(json.dumps({"type": "stop"}))
        frames, messages = [], []
        while True:
            try:
                message = ws.recv(timeout=60)
            except ConnectionClosed:
                break
            if isinstance(message, str):
                messages.append(json.loads(message))
            else:
                index, chunk, pts = FRAME_HEADER.unpack_from(message)
                if chunk != END_OF_AUDIO:  # the tail is decided by the clip's end (silence after 3 s)
                    frames.append((index, pts, message[FRAME_HEADER.size:]))
                tail = index
        assert ws.close_code == 1000
    assert messages[-1]["type"] == "end"
    assert tail + 1 == messages[-1]["frames_sent"] == frame_count(len(audio), 25)
    assert [f[0] for f in frames] == list(range(len(frames))) and len(frames) >= tail - 3
    assert all(pts == pytest.approx(index / 25) for index, pts, _ in frames)
    if audio_format == "f32":  # the same samples: the offline frames, to the byte
        same = [data == encode_frame(astronaut_frames[index]) for index, _, data in frames]
        assert all(same), [i for i, s in enumerate(same) if not s]
    else:  # 16-bit audio: within quantisation and JPEG error of the offline frames
        for index, _, data in frames[::10]:
            image = np.asarray(Image.open(io.BytesIO(data)))
            diff = np.abs(image.astype(np.int16) - astronaut_frames[index].astype(np.int16)).mean()
            assert diff < 3.0, (index, diff)


def test_live_webp_frames(server, portrait_png, demo_audio):
    with connect(server) as ws:
        ws.send(json.dumps({"type": "start", "image_format": "webp", "quality": 60}))
        ws.send(portrait_png)
        assert json.loads(ws.recv(timeout=60))["image_format"] == "webp"
        ws.send(np.array(demo_audio[: SAMPLE_RATE // 2], "<f4").tobytes())
        ws.send(json.dumps({"type": "stop"}))
        images = []
        while True:
            try:
                message = ws.recv(timeout=60)
            except ConnectionClosed:
                break
            if isinstance(message, bytes):
                images.append(Image.open(io.BytesIO(message[FRAME_HEADER.size:])))
    assert len(images) == frame_count(SAMPLE_RATE // 2, 25)
    assert all(im.format == "WEBP" and im.size == (512, 512) for im in images)


def close_info(ws) -> tuple[dict, int, str]:
    """The error message and close code/reason of a refused session."""
    message = json.loads(ws.recv(timeout=60))
    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=30)
    return message, ws.close_code, ws.close_reason


def test_one_session_over_the_cap_gets_busy_and_the_others_keep_working(server, portrait_png, demo_audio):
    cap = server.app.state.live_slots.limit
    with ExitStack() as stack:
        sessions = [stack.enter_context(open_live(server, portrait_png)) for _ in range(cap)]
        for ws in sessions:
            assert json.loads(ws.recv(timeout=60))["type"] == "ready"
        with connect(server) as extra:
            message, code, reason = close_info(extra)
        assert message["error"] == "busy" and f"all {cap} live sessions" in message["detail"]
        assert code == 1013 and reason.startswith("busy")
        status = httpx.get(server.url + "/api/status").json()
        assert status["live_sessions"] == cap
        # the running sessions still get their frames
        chunk = np.array(demo_audio[: SAMPLE_RATE], "<f4").tobytes()
        for ws in sessions:
            ws.send(chunk)
            header = ws.recv(timeout=60)
            while isinstance(header, str):
                header = ws.recv(timeout=60)
            assert FRAME_HEADER.unpack_from(header)[0] == 0
    deadline = time.monotonic() + 10
    while httpx.get(server.url + "/api/status").json()["live_sessions"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert httpx.get(server.url + "/api/status").json()["live_sessions"] == 0


def test_live_bad_input_is_refused_with_a_reason(server, portrait_png):
    cases = [
        (lambda ws: ws.send("hello"), "start"),
        (lambda ws: ws.send(json.dumps({"type": "start", "audio_format": "mp3"})), "audio_format"),
        (lambda ws: ws.send(json.dumps({"type": "start", "options": {"render.size": 2048}})), "out of range"),
        (lambda ws: (ws.send(json.dumps({"type": "start"})), ws.send(b"not an image")), "portrait"),
    ]
    for act, words in cases:
        with connect(server) as ws:
            act(ws)
            message, code, reason = close_info(ws)
        assert message["error"] == "bad_input" and words in message["detail"], message
        assert code == 4400
    gradient = np.tile(np.linspace(0, 255, 256, dtype=np.uint8)[None, :, None], (256, 1, 3))
    with open_live(server, png_bytes(gradient)) as ws:
        message, code, _ = close_info(ws)
    assert message["error"] == "bad_input" and "face" in message["detail"] and code == 4400


def test_live_refuses_other_origins_and_bad_audio(server, portrait_png):
    with connect(server, Origin="http://evil.example") as ws:
        message, code, _ = close_info(ws)
    assert message["error"] == "forbidden" and code == 4403
    with open_live(server, portrait_png, audio_format="s16") as ws:
        assert json.loads(ws.recv(timeout=60))["type"] == "ready"
        ws.send(b"\x01\x02\x03")  # not whole 16-bit samples
        message, code, _ = close_info(ws)
    assert message["error"] == "bad_input" and "whole s16 samples" in message["detail"] and code == 4400


def test_live_idle_session_times_out(tmp_path, portrait_png):
    settings = ServerSettings(data_dir=tmp_path, live_idle_timeout_s=1.0, live_start_timeout_s=30)
    with BackgroundServer(settings) as srv:
        with open_live(srv, portrait_png) as ws:
            assert json.loads(ws.recv(timeout=60))["type"] == "ready"
            message, code, _ = close_info(ws)
        assert message["error"] == "timeout" and code == 4408
        deadline = time.monotonic() + 10  # the slot frees once the worker has stopped the session
        while srv.app.state.live_slots.active and time.monotonic() < deadline:
            time.sleep(0.05)
        assert srv.app.state.live_slots.active == 0


def test_frame_header_layout_is_documented():
    packed = FRAME_HEADER.pack(7, 42, 0.28)
    assert len(packed) == 16 and struct.unpack("<IId", packed) == (7, 42, 0.28)


def test_settings_have_help_for_every_serve_option():
    from talkinghead.config import option_help

    helps = option_help(ServerSettings)
    assert all(helps.get(f.name) for f in fields(ServerSettings))
    assert replace(ServerSettings(), port=1).port == 1
    assert isinstance(ServerSettings().resolved_data_dir(), Path)
