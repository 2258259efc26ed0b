"""Offline jobs: inputs and results on disk under the server's data directory, run one at a time.

    DATA_DIR/jobs/<id>/job.json     state (written atomically), read back after a server restart
    DATA_DIR/jobs/<id>/portrait     the uploaded image        (fixed names: a request never
    DATA_DIR/jobs/<id>/audio        the uploaded speech        chooses a path on disk)
    DATA_DIR/jobs/<id>/result.mp4   the video, once done

Ids are random 128-bit tokens. Each job runs in a worker process (worker.py) at a lower CPU
priority than the live sessions; it is killed if it exceeds the time limit or is deleted while
running. Finished jobs (done, failed) are deleted `ttl` seconds after they finish. Jobs that were
queued or running when the server stopped are queued again when it starts.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from ..outputs import remove_partial_files
from .settings import ServerSettings
from .worker import JOB_FILE, RESULT_FILE

log = logging.getLogger(__name__)

JOB_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{22}$")  # secrets.token_urlsafe(16)
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
FINISHED = (DONE, FAILED)
PROGRESS_SAVE_INTERVAL_S = 1.0  # job.json is rewritten at most this often for progress alone
SWEEP_INTERVAL_S = 60.0
KILL_GRACE_S = 5.0


_SERVER_DEFAULTS = ServerSettings()  # the one home of the job limits' defaults (the `serve` options)


@dataclass(frozen=True)
class JobLimits:
    """How many jobs wait, how long they may run and how long results are kept."""

    max_queued: int = _SERVER_DEFAULTS.max_queued_jobs  # jobs waiting to run (the running one not counted)
    timeout_s: float = _SERVER_DEFAULTS.job_timeout_s  # a running job is killed after this long
    ttl_s: float = _SERVER_DEFAULTS.job_ttl_hours * 3600  # finished jobs (and videos) are deleted this long after
    worker_nice: int = 10  # CPU priority offset of job processes (live sessions come first)

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> "JobLimits":
        """The limits a server's settings ask for."""
        return cls(max_queued=settings.max_queued_jobs, timeout_s=settings.job_timeout_s,
                   ttl_s=settings.job_ttl_hours * 3600)


class QueueFull(Exception):
    """No room for another job."""


class JobStore:
    """Job records in memory and on disk, a queue, one worker thread and an expiry sweeper."""

    def __init__(self, data_dir: Path, limits: JobLimits = JobLimits()):
        self.root = Path(data_dir) / "jobs"
        self.limits = limits
        self._jobs: dict[str, dict] = {}
        self._queue: deque[str] = deque()
        self._lock = threading.Condition()
        self._process: subprocess.Popen | None = None
        self._running: str | None = None
        self._last_saved: dict[str, float] = {}
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- life cycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Load jobs from disk (requeue unfinished ones), start the worker and the sweeper."""
        self.root.mkdir(parents=True, exist_ok=True)
        recovered = []
        for path in sorted(self.root.iterdir()):
            record = self._load(path)
            if record is None:
                shutil.rmtree(path, ignore_errors=True)  # half-created or foreign: not ours to keep
                continue
            remove_partial_files(path)  # of a job running when the server stopped (or was killed)
            if record["status"] not in FINISHED:
                record.update(status=QUEUED, progress=0.0, frames_done=0, started_at=None)
                recovered.append(record)
            self._jobs[record["id"]] = record
        for record in sorted(recovered, key=lambda r: r["created_at"]):
            self._save(record)
            self._queue.append(record["id"])
        self._sweep()
        for target, name in ((self._work, "talkinghead-jobs"), (self._sweep_loop, "talkinghead-expiry")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop the threads; a running job is killed (and requeued at the next start)."""
        self._stopping.set()
        with self._lock:
            self._lock.notify_all()
            process = self._process
        if process is not None and process.poll() is None:
            process.kill()
        for thread in self._threads:
            thread.join(timeout=KILL_GRACE_S + 5)

    # --- requests ----------------------------------------------------------------------------
    def new_job_dir(self) -> tuple[str, Path]:
        """A fresh id and its (empty) directory, for the request to save its inputs into."""
        if self.queued_count() >= self.limits.max_queued:
            raise QueueFull
        job_id = secrets.token_urlsafe(16)
        path = self.root / job_id
        path.mkdir(parents=True)
        return job_id, path

    def discard(self, job_id: str) -> None:
        """Remove a directory made by new_job_dir whose request failed."""
        if JOB_ID_PATTERN.match(job_id):
            shutil.rmtree(self.root / job_id, ignore_errors=True)

    def submit(self, job_id: str, fields: dict) -> dict:
        """Queue the job whose inputs are saved; `fields` go into its record. Raises QueueFull."""
        now = time.time()
        record = {"id": job_id, "status": QUEUED, "created_at": now, "started_at": None, "finished_at": None,
                  "expires_at": None, "progress": 0.0, "frames_done": 0, "frames_total": None, "error": None,
                  "result": None, **fields}
        with self._lock:
            if self.queued_count() >= self.limits.max_queued:
                raise QueueFull
            self._jobs[job_id] = record
            self._save(record)
            self._queue.append(job_id)
            self._lock.notify_all()
        return self.public(record)

    def get(self, job_id: str) -> dict | None:
        """The public view of a job, or None for an unknown (or malformed) id."""
        if not JOB_ID_PATTERN.match(job_id or ""):
            return None
        with self._lock:
            record = self._jobs.get(job_id)
            return self.public(record) if record else None

    def result_path(self, job_id: str, name: str = RESULT_FILE) -> Path | None:
        """A file a done job wrote (`name`: one of the worker's fixed output names), else None."""
        record = self.get(job_id)
        if record is None or record["status"] != DONE:
            return None
        path = self.root / job_id / name
        return path if path.is_file() else None

    def delete(self, job_id: str) -> bool:
        """Cancel (if queued or running) and delete a job and its files; False if unknown."""
        if not JOB_ID_PATTERN.match(job_id or ""):
            return False
        with self._lock:
            record = self._jobs.pop(job_id, None)
            if record is None:
                return False
            if job_id in self._queue:
                self._queue.remove(job_id)
            if self._running == job_id and self._process is not None:
                self._process.kill()
        shutil.rmtree(self.root / job_id, ignore_errors=True)
        return True

    def queued_count(self) -> int:
        """Jobs waiting to run."""
        return len(self._queue)

    def running_count(self) -> int:
        """Jobs running now (0 or 1)."""
        return 1 if self._running else 0

    @staticmethod
    def public(record: dict) -> dict:
        """What clients see of a record."""
        keys = ("id", "status", "created_at", "started_at", "finished_at", "expires_at", "progress",
                "frames_done", "frames_total", "error", "result", "input", "files", "options")
        return {k: record.get(k) for k in keys}

    # --- persistence -------------------------------------------------------------------------
    def _save(self, record: dict) -> None:
        path = self.root / record["id"]
        if not path.is_dir():
            return  # deleted meanwhile
        tmp = path / (JOB_FILE + ".tmp")
        tmp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(tmp, path / JOB_FILE)
        self._last_saved[record["id"]] = time.monotonic()

    def _load(self, path: Path) -> dict | None:
        if not (path.is_dir() and JOB_ID_PATTERN.match(path.name)):
            return None
        try:
            record = json.loads((path / JOB_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return record if record.get("id") == path.name and "status" in record else None

    # --- the worker thread -------------------------------------------------------------------
    def _work(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                while not self._queue and not self._stopping.is_set():
                    self._lock.wait(timeout=1.0)
                if self._stopping.is_set():
                    return
                job_id = self._queue.popleft()
                record = self._jobs.get(job_id)
                if record is None:
                    continue
                record.update(status=RUNNING, started_at=time.time())
                self._save(record)
                self._running = job_id
            try:
                outcome = self._run_process(job_id)
            except Exception as exc:  # never let one job stop the queue
                log.exception("job %s crashed the runner", job_id)
                outcome = {"error": f"internal error: {exc}"}
            with self._lock:
                self._running, self._process = None, None
                record = self._jobs.get(job_id)
                if record is None or self._stopping.is_set():
                    continue  # deleted while running, or server stopping (requeued at next start)
                now = time.time()
                record.update(finished_at=now, expires_at=now + self.limits.ttl_s)
                if "result" in outcome:
                    record.update(status=DONE, progress=1.0, result=outcome["result"])
                else:
                    record.update(status=FAILED, error=outcome.get("error") or "the job failed")
                    remove_partial_files(self.root / job_id)  # a killed worker cannot remove its own
                self._save(record)

    def _run_process(self, job_id: str) -> dict:
        nice = self.limits.worker_nice
        env = dict(os.environ, GLOG_minloglevel="2", OPENBLAS_NUM_THREADS="1")  # no spinning BLAS threads
        process = subprocess.Popen(
            [sys.executable, "-m", "talkinghead.server.worker", str(self.root / job_id)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            preexec_fn=(lambda: os.nice(nice)) if nice and hasattr(os, "nice") else None)
        with self._lock:
            self._process = process
            if job_id not in self._jobs:  # deleted while starting
                process.kill()
        timed_out = threading.Event()

        def kill_on_timeout() -> None:
            timed_out.set()
            process.kill()

        timer = threading.Timer(self.limits.timeout_s, kill_on_timeout)
        timer.daemon = True
        timer.start()
        outcome: dict = {}
        stderr_tail: deque[str] = deque(maxlen=20)
        drain = threading.Thread(target=lambda: stderr_tail.extend(process.stderr), daemon=True)
        drain.start()
        try:
            for line in process.stdout:
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if "frames" in message:
                    self._progress(job_id, message["frames"], message["total"])
                else:
                    outcome = message
            process.wait()
        finally:
            timer.cancel()
            drain.join(timeout=KILL_GRACE_S)
        if outcome:
            return outcome
        if timed_out.is_set():
            return {"error": f"the job took longer than the {self.limits.timeout_s:.0f} s limit and was stopped"}
        log.warning("job %s worker exited with %s: %s", job_id, process.returncode, "".join(stderr_tail)[-2000:])
        return {"error": f"the job's worker stopped unexpectedly (exit status {process.returncode})"}

    def _progress(self, job_id: str, done: int, total: int) -> None:
        with self._lock:
            record = self._jobs.get(job_id)
            if record is None:
                return
            record.update(frames_done=int(done), frames_total=int(total), progress=min(done / max(total, 1), 1.0))
            if time.monotonic() - self._last_saved.get(job_id, 0.0) >= PROGRESS_SAVE_INTERVAL_S:
                self._save(record)

    # --- expiry ------------------------------------------------------------------------------
    def _sweep(self) -> None:
        now = time.time()
        with self._lock:
            expired = [j for j, r in self._jobs.items() if r["status"] in FINISHED and r["expires_at"] is not None
                       and r["expires_at"] <= now]
        for job_id in expired:
            self.delete(job_id)

    def _sweep_loop(self) -> None:
        interval = min(SWEEP_INTERVAL_S, max(self.limits.ttl_s / 4, 0.5))
        while not self._stopping.wait(interval):
            self._sweep()
