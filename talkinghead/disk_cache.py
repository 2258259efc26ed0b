"""Where talkinghead keeps work it does once per machine: a portrait's face analysis (`faces/`) and the
speech encoder's weights unpacked to float32 (`speech_encoder/`).

The folder is $TALKINGHEAD_CACHE, else $XDG_CACHE_HOME/talkinghead, else ~/.cache/talkinghead;
TALKINGHEAD_CACHE=off turns every cache off. Entries are written atomically (a temporary file
renamed into place), and a cache that cannot be read or written is only skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

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
