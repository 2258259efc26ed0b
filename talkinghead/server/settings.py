"""Server settings: the one source of every server default (the `serve` options read these)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def default_data_dir() -> Path:
    """Where jobs are kept unless --data-dir says otherwise: $XDG_CACHE_HOME/talkinghead/server."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "talkinghead" / "server"


@dataclass(frozen=True)
class ServerSettings:
    """Limits and places of one server."""

    host: str = "127.0.0.1"  # interface to listen on (127.0.0.1: this machine only)
    port: int = 8000  # TCP port
    data_dir: Path | None = None  # job inputs and results (None: $XDG_CACHE_HOME/talkinghead/server)
    max_live_sessions: int = 4  # live sessions at once, at most; more get "busy" (so do sessions the CPUs cannot hold: --live-cpu-share)
    live_cpu_share: float = 0.7  # a live session is admitted only while the sessions' measured CPU need, the newcomer's and other programs' use fit in this share of the CPUs (0: --max-live-sessions alone)
    max_queued_jobs: int = 8  # jobs waiting to run; more get "busy"
    job_ttl_hours: float = 24.0  # finished videos are deleted this long after they finish
    job_timeout_s: float = 1800.0  # a job running longer is stopped
    max_upload_mb: float = 50.0  # largest request body (portrait + audio together)
    max_audio_seconds: float = 600.0  # longest speech a job accepts
    max_text_chars: int = 5000  # longest text a job accepts
    live_max_size: int = 512  # largest frame size (long side) a live session may ask for
    live_start_timeout_s: float = 15.0  # a live client must send its start message and portrait within this
    live_idle_timeout_s: float = 20.0  # a live session with no audio for this long is closed
    live_max_session_s: float = 1800.0  # a live session is closed after this long
    live_max_audio_lead_s: float = 10.0  # audio arriving faster than real time is paced once this far ahead
    live_max_backlog_s: float = 3.0  # a session whose unprocessed audio exceeds this is closed (overloaded)
    live_max_send_wait_s: float = 3.0  # a client that leaves a frame unread this long is closed (slow client)
    header_timeout_s: float = 10.0  # a connection whose request line and headers take longer is closed (slowloris)
    body_timeout_s: float = 30.0  # a request body that stops arriving for this long gets 408
    allowed_origins: tuple[str, ...] = ()  # extra browser origins allowed to open live sessions

    def resolved_data_dir(self) -> Path:
        """data_dir, or the default one."""
        return Path(self.data_dir) if self.data_dir is not None else default_data_dir()
