"""The web page in real headless Chromium (Debian's /usr/bin/chromium, driven by playwright).

Live mode is fed by Chromium's fake microphone playing a WAV made from the demo speech; the test
checks that frames arrive at about 25 per second and that the portrait's mouth opens and closes
(measured with the face landmarker on screenshots of the page). The screenshot with the widest
mouth is kept as build/live_page.png (the README's docs/live_page.png is a copy of it).
"""

from __future__ import annotations

import io
import time
import wave
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.is_file():
    pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium) to test the page",
                allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api", reason="the test extra's playwright is not installed")
pytest.importorskip("fastapi")
from PIL import Image  # noqa: E402

from talkinghead.audio.features import SAMPLE_RATE  # noqa: E402
from talkinghead.server.background import BackgroundServer  # noqa: E402
from talkinghead.server.settings import ServerSettings  # noqa: E402

SCREENSHOT = Path(__file__).resolve().parents[1] / "build" / "live_page.png"
VIEWPORT = {"width": 1200, "height": 900}
LIVE_FRAMES_BEFORE_LOOKING = 50  # 2 s of live output
SCREENSHOTS = 16
MOUTH_APERTURE_RANGE_MIN = 0.04  # closed lips ~0, running speech opens to ~0.1 inter-ocular distances
JOB_TIMEOUT_MS = 120_000


def chromium_args(fake_audio: Path) -> list[str]:
    return ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-audio-capture={fake_audio}", "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="module")
def fake_microphone_wav(tmp_path_factory, demo_audio) -> Path:
    """The demo speech as 16-bit PCM mono WAV (what Chromium's fake capture reads; it loops the file)."""
    path = tmp_path_factory.mktemp("fake-mic") / "speech.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes((np.clip(np.asarray(demo_audio), -1, 1) * 32767).astype("<i2").tobytes())
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    settings = ServerSettings(data_dir=tmp_path_factory.mktemp("page-server"), max_live_sessions=1,
                              live_cpu_share=0)
    with BackgroundServer(settings) as running:
        yield running


@pytest.fixture(scope="module")
def browser(fake_microphone_wav, tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=chromium_args(fake_microphone_wav),
            viewport=VIEWPORT)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture()
def page(browser, server):
    browser.grant_permissions(["microphone"], origin=server.url)
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/")
    page.wait_for_function("document.querySelectorAll('#options-common .option').length >= 5")
    yield page
    page.close()
    assert errors == [], errors


def mouth_aperture_of(png: bytes, landmarker) -> float | None:
    from talkinghead.face.measure import mouth_aperture

    faces = landmarker.detect(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")))
    return float(mouth_aperture(faces[0].landmarks)) if faces else None


def test_options_are_built_from_the_server_options(page, server):
    import httpx

    options = httpx.get(server.url + "/api/options").json()["options"]
    controls = page.locator(".option").count()
    driving_only = [o for o in options if o["needs_driving"]]  # the page uploads no driving video
    assert driving_only and controls == len(options) - len(driving_only)
    labels = page.locator("#options-common .option label").all_inner_texts()
    assert labels[:5] == ["Seed", "Blink rate", "Head amplitude", "Mouth amplitude", "Lookahead frames"]
    page.fill("#opt-motion-seed", "5")
    page.dispatch_event("#opt-motion-seed", "input")
    assert page.evaluate("JSON.parse(localStorage.getItem('talkinghead.options'))") == {"motion.seed": 5}
    page.click("#options-reset")
    assert page.input_value("#opt-motion-seed") == "0"


def test_live_mode_with_the_fake_microphone_moves_the_mouth(page):
    from talkinghead.face.landmarker import FaceLandmarker

    page.click("#tab-button-live")
    page.click("#live-start")
    page.wait_for_function(f"window.talkingheadLive.framesShown >= {LIVE_FRAMES_BEFORE_LOOKING}", timeout=60_000)
    assert "live" in page.inner_text("#live-status")
    started_frames, started = page.evaluate("talkingheadLive.framesReceived"), time.monotonic()
    canvas = page.locator("#live-canvas")
    shots = []
    for _ in range(SCREENSHOTS):
        shots.append((page.screenshot(), canvas.screenshot()))
        page.wait_for_timeout(120)
    received = page.evaluate("talkingheadLive.framesReceived") - started_frames
    rate = received / (time.monotonic() - started)
    with FaceLandmarker() as landmarker:
        apertures = [mouth_aperture_of(stage, landmarker) for _, stage in shots]
    found = [a for a in apertures if a is not None]
    assert len(found) >= SCREENSHOTS - 2, apertures  # the portrait's face is on the stage
    print("mouth apertures:", [None if a is None else round(a, 3) for a in apertures])
    assert max(found) - min(found) > MOUTH_APERTURE_RANGE_MIN, apertures  # the mouth opens and closes
    assert 20 <= rate <= 30, rate  # frames keep coming at the live rate (25/s) while we look
    best = int(np.nanargmax([a if a is not None else np.nan for a in apertures]))
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.write_bytes(shots[best][0])

    page.click("#live-stop")
    page.wait_for_function("document.getElementById('live-status').textContent.startsWith('stopped')", timeout=30_000)
    assert page.is_enabled("#live-start")


def test_live_mode_says_busy_when_the_server_is_full(page, server):
    slots = server.app.state.live_slots
    saved, slots.limit = slots.limit, 0
    try:
        page.click("#tab-button-live")
        page.click("#live-start")
        page.wait_for_function("document.getElementById('live-status').textContent.includes('busy')", timeout=30_000)
        assert "try again later" in page.inner_text("#live-status")
        assert page.is_enabled("#live-start")
    finally:
        slots.limit = saved


def test_video_job_from_the_page_survives_a_refresh(page, server):
    page.click("#demo-speech")
    page.wait_for_function("document.getElementById('audio-name').textContent.length > 0")
    page.click("#generate")
    page.wait_for_function("document.getElementById('job-status').textContent === 'done'", timeout=JOB_TIMEOUT_MS)
    job_id = page.evaluate("localStorage.getItem('talkinghead.job')")
    assert job_id and f"#job={job_id}" in page.url
    duration = page.evaluate("""() => new Promise((resolve) => {
        const v = document.getElementById('job-video');
        if (v.readyState >= 1) resolve(v.duration); else v.addEventListener('loadedmetadata', () => resolve(v.duration));
    })""")
    assert duration == pytest.approx(8.04, abs=0.2)  # the demo speech's length

    page.reload()  # the page finds its job again (URL and localStorage)
    page.wait_for_function("document.getElementById('job-status').textContent === 'done'", timeout=30_000)
    assert page.get_attribute("#job-video", "src") == f"/api/jobs/{job_id}/video"
    page.click("#job-delete")
    page.wait_for_function("localStorage.getItem('talkinghead.job') === null")
    import httpx

    assert httpx.get(f"{server.url}/api/jobs/{job_id}").status_code == 404


def test_api_docs_render_with_the_network_unreachable(browser, server):
    """/docs draws Swagger UI from files the server serves itself: every other host is blocked here."""
    page = browser.new_page()
    blocked = []

    def only_the_server(route):
        if route.request.url.startswith(server.url):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_server)
    try:
        page.goto(server.url + "/docs")
        page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)  # one block per API operation
        assert page.locator(".swagger-ui .opblock").count() >= 5
        assert "talkinghead" in page.locator(".swagger-ui .title").first.inner_text()
        assert blocked == []
    finally:
        page.close()
