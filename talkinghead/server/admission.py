"""Live admission by measured capacity: a new live session is admitted only while every admitted one
keeps its frame rate.

Each live worker reports its process CPU time with every frame (`FrameCost`: CPU seconds per frame
over the last COST_WINDOW_FRAMES frames, rendering and JPEG encoding included). A session needs
cost x fps CPUs. A newcomer is admitted when

    sum(needs of the running sessions) + its estimated need + other programs' CPU use <= share x CPUs

and fewer than `limit` (--max-live-sessions) run. The newcomer's estimate is the largest of: the cost
measured at start-up on the bundled portrait (`calibrate_cost`), the costs measured in the running
sessions, and that of the last session to end; at the default frame rate. Once its start message
is read, a session's options are checked again (`confirm`): options measured at start-up to cost more
per frame (the causal motion model, `extra_cost`) raise its estimate, and it is refused if the
machine cannot hold that. A session not yet measured counts at its estimate. Each session also counts `overhead` CPUs for the server process's own work. Other programs' use is the machine's busy CPU time (/proc/stat) less this
server's own processes (itself, its live workers, its job worker), sampled every second (`CpuMonitor`;
0 where /proc is missing). With no session running, one is always admitted: a machine too busy for
even one still serves one, slowly. `share` 0 turns the measured admission off (the cap alone).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

COST_WINDOW_FRAMES = 50  # ~2 s at 25 FPS
MIN_MEASURED_FRAMES = 10  # fewer frames than this: not measured yet (start-up costs dominate)
DEFAULT_FRAME_COST_S = 0.015  # CPU s per 512-px frame until measured (docs/measurements.md: ~12-16 ms a real photo)
# The bundled portrait measured at start-up costs about half a real photo (a small face: 7.6 ms per frame
# against 16.2 ms for hallo_ref3.jpg, measured together on the 2-core machine), so its cost is doubled.
PHOTO_COST_FACTOR = 2.0
# CPUs the server process itself spends per session (receiving audio, sending JPEG frames): 0.08 measured
# at 512 px and 25 FPS, so 0.1 is added to each session's need.
SESSION_OVERHEAD_CPUS = 0.1
MONITOR_INTERVAL_S = 1.0
PROC = Path("/proc")


class FrameCost:
    """CPU seconds per frame of one worker over its last frames, from (frame count, process CPU time) reports."""

    def __init__(self, window: int = COST_WINDOW_FRAMES):
        self._points: deque[tuple[int, float]] = deque(maxlen=window + 1)
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._points.clear()

    def add(self, frames: int, cpu_seconds: float) -> None:
        with self._lock:
            self._points.append((frames, cpu_seconds))

    @property
    def per_frame(self) -> float | None:
        """The measured cost, or None before MIN_MEASURED_FRAMES frames."""
        with self._lock:
            if len(self._points) <= MIN_MEASURED_FRAMES:
                return None
            (f0, c0), (f1, c1) = self._points[0], self._points[-1]
        return max(c1 - c0, 0.0) / (f1 - f0) if f1 > f0 else None


@dataclass
class _Session:
    fps: float
    cost: Callable[[], float | None] = lambda: None  # measured CPU s per frame, None until measured
    extra: float = 0.0  # CPU s per frame its options add to the estimate until it is measured


@dataclass
class LiveAdmission:
    """Admits live sessions by the cap and by measured capacity (see the module docstring)."""

    limit: int  # --max-live-sessions
    cpus: float  # CPUs of this machine (or of this process' affinity)
    share: float  # share of them live sessions may fill; 0: the cap alone
    others: Callable[[], float] = lambda: 0.0  # CPUs other programs use now
    default_fps: float = 25.0
    prior_cost: float = DEFAULT_FRAME_COST_S  # CPU s per frame before any measurement (the start-up measurement sets it)
    overhead: float = SESSION_OVERHEAD_CPUS  # CPUs of the server process's own work per session
    last_cost: float = 0.0  # measured cost of the last session to end
    calibrated: bool = False  # prior_cost was measured on this machine
    extra_cost: dict[str, float] = field(default_factory=dict)  # motion generator -> CPU s per frame it adds
    _sessions: dict[int, _Session] = field(default_factory=dict)
    _next: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def active(self) -> int:
        return len(self._sessions)

    def estimate(self) -> float:
        """CPU s per frame expected of a new session."""
        measured = [c for c in (s.cost() for s in self._sessions.values()) if c is not None]
        return max([self.prior_cost, self.last_cost] + measured)

    def demand(self) -> float:
        """CPUs the running sessions need at their frame rates (unmeasured ones at the estimate)."""
        guess = self.estimate()
        return sum(s.fps * (c if (c := s.cost()) is not None else guess + s.extra) + self.overhead
                   for s in self._sessions.values())

    def try_admit(self) -> tuple[int | None, str]:
        """(ticket, "") when admitted, else (None, why) for the "busy" answer."""
        with self._lock:
            if self.active >= self.limit:
                return None, f"all {self.limit} live sessions are in use: try again later"
            if self.share > 0 and self._sessions:
                need, others = self.estimate() * self.default_fps + self.overhead, self.others()
                used = self.demand()
                if used + need + others > self.share * self.cpus:
                    return None, (f"this server's CPUs are full: {self.active} live session(s) need "
                                  f"{used:.1f} of {self.cpus:g} CPUs and other programs use {others:.1f}; "
                                  f"another needs {need:.1f}: try again later")
            self._next += 1
            self._sessions[self._next] = _Session(self.default_fps)
            return self._next, ""

    def confirm(self, ticket: int, generator: str) -> str:
        """Check an admitted session again once its options are known: "" to go on, else why it is refused
        (then it is released). Only options that cost more than the start-up measurement can refuse it."""
        with self._lock:
            session = self._sessions.get(ticket)
            extra = self.extra_cost.get(generator, 0.0)
            if session is None or extra <= 0:
                return ""
            session.extra = extra
            if self.share <= 0 or len(self._sessions) == 1:
                return ""
            used, others = self.demand(), self.others()
            if used + others <= self.share * self.cpus:
                return ""
            del self._sessions[ticket]
            return (f"this server's CPUs are full for a {generator} session ({1000 * extra:.0f} ms more CPU a "
                    f"frame): {len(self._sessions)} live session(s) and other programs would need "
                    f"{used + others:.1f} of {self.cpus:g} CPUs: try again later, or use the default motion")

    def bind(self, ticket: int, fps: float, cost: Callable[[], float | None]) -> None:
        """The admitted session's frame rate and its measured cost, once it runs."""
        with self._lock:
            if ticket in self._sessions:
                self._sessions[ticket] = _Session(fps, cost, self._sessions[ticket].extra)

    def release(self, ticket: int) -> None:
        with self._lock:
            session = self._sessions.pop(ticket, None)
            if session is not None and (cost := session.cost()) is not None:
                self.last_cost = cost

    def status(self) -> dict:
        """For /api/status."""
        with self._lock:
            return {"cpus": self.cpus, "share": self.share, "others_cpus": round(self.others(), 2),
                    "sessions_cpus": round(self.demand(), 2), "frame_cost_ms": round(1000 * self.estimate(), 1),
                    "extra_cost_ms": {k: round(1000 * v, 1) for k, v in self.extra_cost.items()},
                    "calibrated": self.calibrated}


def machine_cpus() -> float:
    """CPUs this process may run on."""
    try:
        return float(len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return float(os.cpu_count() or 1)


def _busy_seconds() -> float | None:
    """CPU seconds the whole machine has been busy since boot (/proc/stat), or None."""
    try:
        values = [int(v) for v in (PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _tree_seconds(root: int) -> float:
    """CPU seconds used by process `root` (the server: its per-session work is `overhead`) and its
    children (live and job workers), from /proc."""
    total = 0.0
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()  # after "pid (name) "
        if int(stat.parent.name) == root or int(fields[1]) == root:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


class CpuMonitor:
    """Other programs' CPU use (CPUs), sampled every MONITOR_INTERVAL_S in a thread; 0 without /proc."""

    def __init__(self, pid: int | None = None, interval: float = MONITOR_INTERVAL_S):
        self.pid, self.interval = pid or os.getpid(), interval
        self.value = 0.0
        self._recent: deque[float] = deque(maxlen=3)  # the mean of the last 3 samples is reported
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="talkinghead-cpu", daemon=True)

    def __call__(self) -> float:
        return self.value

    def start(self) -> "CpuMonitor":
        if _busy_seconds() is not None:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        last = (time.monotonic(), _busy_seconds(), _tree_seconds(self.pid))
        while not self._stop.wait(self.interval):
            now = (time.monotonic(), _busy_seconds(), _tree_seconds(self.pid))
            elapsed = now[0] - last[0]
            if elapsed > 0 and now[1] is not None and last[1] is not None:
                ours = max(0.0, now[2] - last[2])  # a child that exited takes its total with it: not negative
                self._recent.append(max(0.0, (now[1] - last[1]) - ours) / elapsed)
                self.value = sum(self._recent) / len(self._recent)
            last = now
