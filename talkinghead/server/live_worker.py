"""Entry point of a live-session worker process: `python -m talkinghead.server.live_worker FD`.

FD is the child's end of a socket pair; messages are pickled tuples (see live.SessionWorker).
"""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection

from .live import worker_main

if __name__ == "__main__":
    worker_main(Connection(int(sys.argv[1])))
