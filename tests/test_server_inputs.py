"""The server's job inputs beyond portrait + speech, as the command's: a driving video, a direction
file, a motion file (each used, each bad one refused at submission with a 400 naming it), options that
need a driving video, and the motion track downloaded as CSV and JSON.

All jobs use the astronaut and 2 s of the demo speech; the driving video is the astronaut animated by
that speech (a face with speech-driven motion and a sound track)."""

from __future__ import annotations

import io
import json
import wave

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

import talkinghead  # noqa: E402
from talkinghead.audio.features import SAMPLE_RATE, frame_count  # noqa: E402
from talkinghead.server import background  # noqa: E402
from talkinghead.server.background import BackgroundServer  # noqa: E402
from talkinghead.server.settings import ServerSettings  # noqa: E402
from talkinghead.video import VideoWriter  # noqa: E402



def wav_bytes(samples: np.ndarray) -> bytes:
    """float32 mono 16 kHz -> 16-bit PCM WAV bytes."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(SAMPLE_RATE)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


SECONDS = 2.0
JOB_WAIT_S = 240
DIRECTION = b"events:\n  - {at: 0.0, gaze: left}\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    settings = ServerSettings(data_dir=tmp_path_factory.mktemp("server-inputs"), max_queued_jobs=8, max_upload_mb=20,
                              live_cpu_share=0)
    with BackgroundServer(settings) as running:
        yield running


@pytest.fixture(scope="module")
def speech(demo_audio) -> np.ndarray:
    return np.array(demo_audio[: int(SECONDS * SAMPLE_RATE)])


@pytest.fixture(scope="module")
def files(tmp_path_factory, demo_image_path, speech) -> dict:
    """The uploads: portrait, speech, a driving video with sound, and a video without a sound track."""
    folder = tmp_path_factory.mktemp("inputs")
    talkinghead.generate(demo_image_path, speech, folder / "actor.mp4")
    with VideoWriter(folder / "silent.mp4", 25, 128, 128) as writer:
        for _ in range(10):
            writer.write(np.full((128, 128, 3), 90, np.uint8))
    with VideoWriter(folder / "faceless.mp4", 25, 128, 128, audio=speech) as writer:
        for _ in range(int(SECONDS * 25)):
            writer.write(np.full((128, 128, 3), 90, np.uint8))
    return {"portrait": demo_image_path.read_bytes(), "audio": wav_bytes(speech),
            "actor": (folder / "actor.mp4").read_bytes(), "silent": (folder / "silent.mp4").read_bytes(),
            "faceless": (folder / "faceless.mp4").read_bytes()}


def post(http, files: dict, audio: bool = True, options: dict | None = None, **uploads):
    """POST /api/jobs with the portrait, the speech (unless audio=False) and `uploads` {field: (name, bytes)}."""
    parts = {"portrait": ("face.png", files["portrait"], "image/png")}
    if audio:
        parts["audio"] = ("speech.wav", files["audio"], "audio/wav")
    parts.update(uploads)
    return http.post("/api/jobs", files=parts, data={"options": json.dumps(options or {})})


def finished(http, answer) -> dict:
    assert answer.status_code == 202, answer.text
    job = background.wait_for_job(http, answer.json()["id"], JOB_WAIT_S)
    assert job["status"] == "done", job
    return job


def motion_json(http, job: dict) -> dict:
    answer = http.get(job["motion_urls"]["json"])
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    return answer.json()


@pytest.fixture(scope="module")
def baseline(server, files):
    """A plain audio job: its record and its motion track as JSON and CSV."""
    import httpx

    with httpx.Client(base_url=server.url, timeout=60) as http:
        job = finished(http, post(http, files))
        csv = http.get(job["motion_urls"]["csv"])
        return {"job": job, "json": motion_json(http, job), "csv": csv}


def test_the_motion_track_downloads_as_csv_and_json(http, baseline):
    job, data, csv = baseline["job"], baseline["json"], baseline["csv"]
    frames = frame_count(int(SECONDS * SAMPLE_RATE), 25)
    assert job["frames_total"] == frames == data["frames"] and data["fps"] == 25
    assert len(data["expression"]) == len(data["head"]) == frames
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.splitlines()
    assert lines[0].startswith("Timecode,BlendShapeCount,EyeBlinkLeft") and len(lines) == frames + 1
    assert http.get(f"/api/jobs/{job['id']}/motion.xml").status_code == 404
    assert http.get("/api/jobs/AAAAAAAAAAAAAAAAAAAAAA/motion.csv").status_code == 404


def test_a_motion_file_renders_back_the_same_motion(http, files, baseline):
    job = finished(http, post(http, files, motion=("track.csv", baseline["csv"].content, "text/csv")))
    assert job["files"] == {"motion": "motion-in.csv"}
    again = motion_json(http, job)
    for key in ("expression", "head", "gaze"):
        np.testing.assert_allclose(again[key], baseline["json"][key], atol=1e-6)


def test_a_direction_file_steers_the_controls(http, files, baseline):
    job = finished(http, post(http, files, direction=("scene.yaml", DIRECTION, "text/yaml")))
    gaze, plain = np.array(motion_json(http, job)["gaze"]), np.array(baseline["json"]["gaze"])
    # "left" in the image: the irises move towards x < 0, past any saccade of the plain run
    assert gaze[5:, 0].mean() < plain[5:, 0].mean() - 0.05, (gaze[5:, 0].mean(), plain[5:, 0].mean())


def test_a_driving_video_alone_gives_motion_and_speech(http, files, baseline):
    job = finished(http, post(http, files, audio=False, driving=("actor.mp4", files["actor"], "video/mp4"),
                              options={"mix.eyes_gate": 1.0}))
    assert job["input"] == "driving" and job["files"] == {"driving": "driving"}
    assert job["options"] == {"mix.eyes_gate": 1.0}
    assert abs(job["frames_total"] - baseline["job"]["frames_total"]) <= 2  # the video's sound is the speech
    head, plain = np.array(motion_json(http, job)["head"]), np.array(baseline["json"]["head"])
    n = min(len(head), len(plain))
    assert not np.allclose(head[:n], plain[:n], atol=1e-3)  # the head follows the tracked video


def test_a_driving_video_without_a_face_fails_the_job_with_the_reason(http, files):
    """Readable, with sound: accepted at submission; its tracking (in the job) finds no face."""
    answer = post(http, files, audio=False, driving=("actor.mp4", files["faceless"], "video/mp4"))
    assert answer.status_code == 202, answer.text
    job = background.wait_for_job(http, answer.json()["id"], JOB_WAIT_S)
    assert job["status"] == "failed" and job["motion_urls"] is None
    assert "a face is visible in only 0% of the frames of the driving video" in job["error"], job["error"]
    assert "/tmp" not in job["error"] and "jobs/" not in job["error"]
    assert http.get(f"/api/jobs/{job['id']}/motion.csv").status_code == 409


def test_options_that_need_a_driving_video_are_refused_without_one(http, files):
    answer = post(http, files, options={"mix.eyes_gate": 0.0})
    assert answer.status_code == 400
    assert "'mix.eyes_gate' acts only with a driving video: upload one as `driving`" in answer.json()["detail"]


@pytest.mark.parametrize("uploads, audio, words", [
    ({"driving": ("actor.mp4", b"not a video", "video/mp4")}, True, "cannot read the driving video"),
    ({"driving": "silent"}, False, "the driving video has no audio track: send the speech as audio or text"),
    ({"driving": "actor", "motion": ("m.csv", b"x", "text/csv")}, True, "either a driving video or a motion file"),
    ({"direction": ("scene.yaml", b"events: [\n", "text/yaml")}, True, "the direction file: not valid YAML"),
    ({"direction": ("scene.yaml", b"events:\n  - {at: 1, gaze: sideways}\n", "text/yaml")}, True,
     "the direction file: "),
    ({"direction": ("scene.txt", DIRECTION, "text/plain")}, True, "must end in .json, .yaml or .yml"),
    ({"motion": ("m.csv", b"Frame,Jaw\n1,2\n", "text/csv")}, True, "the motion file: no Timecode column"),
    ({"motion": ("m.bvh", b"x", "text/plain")}, True, "must end in .csv or .json"),
    ({"motion": ("m.json", b"{}", "application/json")}, False, "a motion file has no sound: send audio or text"),
], ids=["unreadable-video", "silent-driver", "driving-and-motion", "bad-yaml", "bad-gaze", "direction-ext",
        "bad-csv", "motion-ext", "motion-without-speech"])
def test_bad_inputs_get_a_400_naming_the_upload(http, server, files, uploads, audio, words):
    parts = {field: (f"{value}.mp4", files[value], "video/mp4") if isinstance(value, str) else value
             for field, value in uploads.items()}
    jobs = server.app.state.settings.resolved_data_dir() / "jobs"
    before = sorted(jobs.iterdir())
    answer = post(http, files, audio=audio, **parts)
    assert answer.status_code == 400, answer.text
    detail = answer.json()["detail"]
    assert words in detail, detail
    assert "/tmp" not in detail and "jobs/" not in detail and "\n" not in detail
    assert sorted(jobs.iterdir()) == before  # nothing queued, nothing left on disk
