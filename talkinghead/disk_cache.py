"""Where talkinghead keeps work it does once per machine: a portrait's face analysis (`faces/`), its
person mask (`person_masks/`) and the speech encoder's weights unpacked to float32 (`speech_encoder/`).

The folder is $TALKINGHEAD_CACHE, else $XDG_CACHE_HOME/talkinghead, else ~/.cache/talkinghead;
TALKINGHEAD_CACHE=off turns every cache off. Entries are written atomically (a temporary file
renamed into place), and a cache that cannot be read or written is only skipped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import IO, Callable

import numpy as np

log = logging.getLogger(__name__)

CACHE_ENV = "TALKINGHEAD_CACHE"
CACHE_OFF = "off"


def cache_folder(kind: str) -> Path | None:
    """The folder for one kind of cache entry, or None when caching is turned off."""
    chosen = os.environ.get(CACHE_ENV, "")
    if chosen.lower() == CACHE_OFF:
        return None
    if chosen:
        return Path(chosen).expanduser() / kind
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "talkinghead" / kind


def image_key(image: np.ndarray, *salt) -> str:
    """sha256 of `salt` (format versions, model hashes), the image's shape and dtype, and its pixels."""
    digest = hashlib.sha256(":".join(str(s) for s in (*salt, image.shape, image.dtype)).encode())
    digest.update(np.ascontiguousarray(image).data)
    return digest.hexdigest()


def write_atomically(path: Path, write: Callable[[IO[bytes]], None]) -> bool:
    """`write(file)` into a temporary file beside `path`, then renamed onto it; False (and nothing
    left behind) when the folder cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=f".tmp{path.suffix}", delete=False) as tmp:
            write(tmp)
        os.replace(tmp.name, path)
        return True
    except OSError as exc:
        log.debug("cache entry %s not written (%s)", path, exc)
        return False
