"""The `talkinghead serve` subcommand: the web page, REST jobs and live sessions on one port."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from ..config import option_help
from .settings import ServerSettings

# ServerSettings field -> (flag type); every field gets `--field-name`, default and help from settings.py
_FLAG_TYPES = {"host": str, "port": int, "data_dir": Path, "max_live_sessions": int, "max_queued_jobs": int,
               "max_text_chars": int, "live_max_size": int}


def add_parser(subparsers) -> None:
    """Register `serve`."""
    defaults, helps = ServerSettings(), option_help(ServerSettings)
    serve = subparsers.add_parser("serve", help="web page, REST API and live sessions (FastAPI + uvicorn)",
                                  formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                  epilog="example: talkinghead serve --port 8000, then open http://127.0.0.1:8000")
    for f in fields(ServerSettings):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "allowed_origins":
            serve.add_argument("--allow-origin", dest="allowed_origins", action="append", default=[],
                               metavar="ORIGIN", help=helps[f.name] + " (repeatable)")
            continue
        serve.add_argument(flag, dest=f.name, type=_FLAG_TYPES.get(f.name, float), default=getattr(defaults, f.name),
                           help=helps.get(f.name, ""))
    serve.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"),
                       help="uvicorn's log level")
    serve.set_defaults(run=run)


def settings_from(args) -> ServerSettings:
    """Parsed arguments -> ServerSettings."""
    values = {f.name: getattr(args, f.name) for f in fields(ServerSettings)}
    values["allowed_origins"] = tuple(values["allowed_origins"])
    return ServerSettings(**values)


def run(args) -> int:
    """Serve until interrupted."""
    import uvicorn

    from .app import create_app, uvicorn_options

    settings = settings_from(args)
    if settings.max_live_sessions < 0 or settings.max_queued_jobs < 0:
        raise SystemExit("talkinghead: error: --max-live-sessions and --max-queued-jobs must be 0 or more")
    app = create_app(settings)
    print(f"talkinghead: serving on http://{settings.host}:{settings.port} (jobs in {settings.resolved_data_dir()})")
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level, **uvicorn_options(settings))
    return 0
