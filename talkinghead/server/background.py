"""Run the server on a free localhost port in a background thread (tests, benchmarks, notebooks)."""

from __future__ import annotations

import socket
import threading
import time

from .settings import ServerSettings

START_TIMEOUT_S = 60.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class BackgroundServer:
    """`with BackgroundServer(settings) as server:` serves `create_app(settings)` at `server.url`."""

    def __init__(self, settings: ServerSettings = ServerSettings()):
        import uvicorn

        from .app import create_app, uvicorn_options

        port = free_port(settings.host) if settings.port in (0, ServerSettings.port) else settings.port
        self.app = create_app(settings)
        self.url = f"http://{settings.host}:{port}"
        self.ws_url = f"ws://{settings.host}:{port}"
        config = uvicorn.Config(self.app, host=settings.host, port=port, log_level="warning",
                                **uvicorn_options(settings))
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="talkinghead-server", daemon=True)

    def __enter__(self) -> "BackgroundServer":
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the background server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)


def wait_for_job(client, job_id: str, timeout_s: float, poll_s: float = 0.2) -> dict:
    """Poll GET /api/jobs/{id} with an httpx-style `client` until the job is done or failed, or `timeout_s`
    passes; returns the last answer."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("done", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(poll_s)
