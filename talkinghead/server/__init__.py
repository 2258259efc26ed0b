"""The `talkinghead serve` web server: REST jobs, a WebSocket live session and the web page.

    app.py          the FastAPI app: the page, /api/options, /api/status; puts the parts together
    job_routes.py   REST routes of offline jobs (upload, status, video, delete)
    live_routes.py  the live WebSocket route: start message checks, audio in, frames out, close codes
    limits.py       body size and time, header time (slowloris), bounded JSON, error answers
    options.py      GenerateConfig <-> flat, validated request options (built from the dataclasses)
    jobs.py         queued offline jobs on disk, run one at a time in a worker process (worker.py)
    live.py         live sessions: PCM chunks in -> encoded frames out, as soon as each is decided
    live_worker.py  live sessions in worker processes (one per session) and the pool that reuses them
    cli.py          the `serve` subcommand

The server sits above the pipeline: it imports pipeline, config and io; nothing imports it.
"""
