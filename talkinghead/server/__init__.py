"""The `talkinghead serve` web server: REST jobs, a WebSocket live session and the web page.

    app.py      FastAPI routes, request limits, the page and its static files
    options.py  GenerateConfig <-> flat, validated request options (built from the dataclasses)
    jobs.py     queued offline jobs on disk, run one at a time in a worker process (worker.py)
    live.py     live sessions: PCM chunks in -> encoded frames out, as soon as each is decided
    cli.py      the `serve` subcommand

The server sits above the pipeline: it imports pipeline, config and io; nothing imports it.
"""
