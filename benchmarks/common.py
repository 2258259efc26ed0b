"""Shared by the benchmarks: timing a whole `talkinghead` command, and CPU hogs to run beside it."""

from __future__ import annotations

import multiprocessing
import os
import resource
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Iterator


def spin() -> None:
    """Burn one core until killed."""
    x = 0
    while True:
        x = (x * 1103515245 + 12345) % 2**31


@contextmanager
def cpu_hogs(processes: int) -> Iterator[None]:
    """`processes` Python processes spinning on arithmetic while the block runs."""
    hogs = [multiprocessing.Process(target=spin, daemon=True) for _ in range(processes)]
    for hog in hogs:
        hog.start()
    try:
        yield
    finally:
        for hog in hogs:
            hog.terminate()
            hog.join()


def time_command(args: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of `python -m talkinghead ARGS`, process start to exit."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "talkinghead", *args], check=True,
                   env={**os.environ, "GLOG_minloglevel": "2"})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
