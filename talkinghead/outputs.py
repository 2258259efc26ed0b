"""Output files: checked before any work, written atomically, partial files removed on error or signal.

Every output is written to a hidden partial file next to it (`.NAME.partial.EXT`) and renamed into
place only when complete, so a failed or interrupted run never leaves a half-written file under the
name the user asked for. `check_output_paths` refuses, before any work starts, an output that is a
folder, sits below a file, cannot be written, or is one of the inputs.
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
from pathlib import Path
from typing import Iterable, Mapping, Union

from .errors import TalkingHeadError

PathLike = Union[str, os.PathLike]
PARTIAL_MARK = ".partial"  # .NAME.partial.EXT
INTERRUPT_SIGNALS = ("SIGTERM", "SIGHUP")  # caught like Ctrl-C (SIGINT); SIGKILL cannot be caught


def partial_path(path: PathLike) -> Path:
    """The hidden file an output is written to before it is complete: dir/.NAME.partial.EXT."""
    p = Path(path)
    return p.with_name(f".{p.stem}{PARTIAL_MARK}{p.suffix}")


def remove_partial_files(folder: PathLike) -> list[Path]:
    """Delete every partial output file (`.*.partial.*`) in `folder`; returns what was removed."""
    removed = []
    for path in Path(folder).glob(f".*{PARTIAL_MARK}*"):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def write_text_atomic(path: PathLike, text: str, what: str) -> Path:
    """Write UTF-8 text to `path` through its partial file; TalkingHeadError names `what` if it fails."""
    path = Path(path)
    partial = partial_path(path)
    try:
        partial.write_text(text, encoding="utf-8", newline="")
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise TalkingHeadError(f"cannot write {what} '{path}': {exc.strerror or exc}; check the folder exists "
                               "and is writable") from None
    return path


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (resolving links; a missing file is only equal to itself)."""
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def _existing_ancestor(p: Path) -> Path:
    """The nearest folder (or file) above `p` that exists: where a missing output folder would be made."""
    parent = p.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def _write_problem(folder: Path, path: Path) -> str:
    """Why a file cannot be created in `folder` (tried for real: a read-only disk, /proc), or ""."""
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return "no permission, or a read-only disk"
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".talkinghead-check"):
            return ""
    except OSError as exc:
        return exc.strerror or str(exc)


def check_output_path(path: PathLike, option: str, inputs: Iterable[PathLike] = ()) -> Path:
    """Refuse an output that is a folder, sits below a file, cannot be written, or is one of the inputs
    (missing folders above it are made when it is written)."""
    p = Path(path)
    if str(path) == "" or p.is_dir():
        raise TalkingHeadError(f"{option} '{p}' is a folder: give a file name such as out.mp4")
    base = _existing_ancestor(p)
    if not base.is_dir():
        raise TalkingHeadError(f"{option} '{p}': '{base}' is a file, not a folder; choose another output path")
    problem = _write_problem(base, p)
    if problem:
        raise TalkingHeadError(f"{option} '{p}' cannot be written ({problem}); choose a writable folder")
    for source in inputs:
        if _same_file(p, Path(source)):
            raise TalkingHeadError(f"{option} '{p}' is also an input: choose another output name so the input "
                                   "is not overwritten")
    return p


def check_output_paths(outputs: Mapping[str, PathLike | None], inputs: Iterable[PathLike | None]) -> None:
    """check_output_path for each named output (None skipped); outputs must also differ from each other."""
    sources = [Path(s) for s in inputs if isinstance(s, (str, os.PathLike))]
    chosen: list[tuple[str, Path]] = []
    for option, path in outputs.items():
        if path is None:
            continue
        p = check_output_path(path, option, sources)
        for other_option, other in chosen:
            if _same_file(p, other):
                raise TalkingHeadError(f"{option} and {other_option} are the same file '{p}': give two names")
        chosen.append((option, p))


class Terminated(KeyboardInterrupt):
    """A catchable termination signal (SIGTERM, SIGHUP): unwinds like Ctrl-C, removing partial files."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated(signal.Signals(signum).name)


def interrupt_on_signals() -> None:
    """Make SIGTERM and SIGHUP unwind the main thread like Ctrl-C, so partial outputs are removed."""
    if threading.current_thread() is not threading.main_thread():
        return
    for name in INTERRUPT_SIGNALS:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _raise_terminated)
