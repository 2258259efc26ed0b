"""How many CPU threads the numerical libraries use while talkinghead runs.

By default one: rendering is a chain of small NumPy and OpenCV calls, where extra BLAS and OpenCV
worker threads mostly spin-wait, and on a machine shared with other work they made whole runs up to
three times slower (benchmarks/bench_threads.py has the measurements). `GenerateConfig.threads`
changes it; 0 leaves the libraries' own choice.
"""

from __future__ import annotations

import functools
import inspect
from contextlib import contextmanager
from typing import Callable, Iterator


_in_force: list[int] = []  # limits set by enclosing blocks, innermost last (process-wide, as the limits are)


@contextmanager
def compute_threads(threads: int) -> Iterator[None]:
    """Inside the block, BLAS / OpenMP (via threadpoolctl) and OpenCV use `threads` threads (0: unchanged).

    A block inside one that already set the same limit changes nothing (threadpoolctl's scan of the
    loaded libraries costs about 10 ms).
    """
    if threads <= 0 or (_in_force and _in_force[-1] == threads):
        yield
        return
    import cv2
    from threadpoolctl import threadpool_limits

    before = cv2.getNumThreads()
    cv2.setNumThreads(threads)
    _in_force.append(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        _in_force.pop()
        cv2.setNumThreads(before)


def with_compute_threads(func: Callable) -> Callable:
    """Run `func` under compute_threads(config.threads), `config` being its argument of that name."""
    signature = inspect.signature(func)

    @functools.wraps(func)
    def run(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        with compute_threads(bound.arguments["config"].threads):
            return func(*args, **kwargs)
    return run
