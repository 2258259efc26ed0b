"""Request limits: body size (declared or streamed) and body time, header time, bounded JSON; error answers.

Slow or oversized clients are cut at the edge, before any route runs:
* `BodySizeLimit` (ASGI middleware) answers 413 once a body passes the size limit, with or without a
  Content-Length (chunked uploads included), and 408 when the body stops arriving for `body_timeout`.
* `GuardedH11Protocol` (uvicorn's HTTP/1.1 protocol) closes a connection whose request line and
  headers are not complete within `header_timeout` seconds (slowloris).
* `parse_json` refuses JSON that is too long, too deeply nested or has absurdly long numbers, with a
  one-line message, before `json.loads` can recurse or convert 5,000-digit integers.
"""

from __future__ import annotations

import asyncio
import json
import re

from fastapi.responses import JSONResponse
from pydantic import BaseModel
from uvicorn.protocols.http.h11_impl import H11Protocol

BUSY_RETRY_AFTER_S = 10
MAX_JSON_CHARS = 64_000  # an options object or a live start message is far smaller
MAX_JSON_DEPTH = 8  # options are flat: {"motion.seed": 3}; the live start message nests one object
MAX_NUMBER_CHARS = 40  # longest number literal accepted in JSON (2**63 has 19 digits)
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKETS = re.compile(r"[\[\]{}]")


class ErrorAnswer(BaseModel):
    """Every error: a short code and a sentence saying what to do."""

    error: str
    detail: str


def problem(status: int, error: str, detail: str, headers: dict | None = None) -> JSONResponse:
    """A JSON error answer."""
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def busy(detail: str) -> JSONResponse:
    """503 with Retry-After: the server is at one of its limits."""
    return problem(503, "busy", detail, {"Retry-After": str(BUSY_RETRY_AFTER_S)})


# --- bounded JSON ------------------------------------------------------------------------------


class JsonLimitError(ValueError):
    """JSON text over one of the limits, or not JSON (the message says which and what to send)."""


def _json_depth(text: str) -> int:
    """Deepest nesting of [ and { in JSON text (brackets inside strings ignored)."""
    depth = deepest = 0
    for bracket in _JSON_BRACKETS.findall(_JSON_STRING.sub('""', text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _bounded_number(kind):
    """A json.loads number hook that refuses literals over MAX_NUMBER_CHARS characters."""
    def parse(literal: str):
        if len(literal) > MAX_NUMBER_CHARS:
            raise JsonLimitError(f"a number of {len(literal)} digits was sent; numbers may have at most "
                                 f"{MAX_NUMBER_CHARS} characters")
        return kind(literal)
    return parse


def parse_json(text: str, what: str, max_chars: int = MAX_JSON_CHARS, max_depth: int = MAX_JSON_DEPTH):
    """JSON text -> value, refusing text over `max_chars`, nesting over `max_depth` and huge numbers."""
    if len(text) > max_chars:
        raise JsonLimitError(f"{what} is {len(text)} characters long; at most {max_chars} are accepted")
    depth = _json_depth(text)
    if depth > max_depth:
        raise JsonLimitError(f"{what} is nested {depth} levels deep; at most {max_depth} are accepted")
    try:
        return json.loads(text, parse_int=_bounded_number(int), parse_float=_bounded_number(float),
                          parse_constant=_refuse_constant)
    except JsonLimitError:
        raise
    except ValueError as exc:
        raise JsonLimitError(f"{what} is not valid JSON ({str(exc)[:80]})") from None


def _refuse_constant(name: str):
    raise JsonLimitError(f"{name} is not a JSON number: send a finite number")


# --- HTTP body: size and time ------------------------------------------------------------------


class BodySizeLimit:
    """ASGI middleware: a body over `limit` bytes gets 413 (declared or streamed, chunked included);
    a body that stalls for `body_timeout` seconds gets 408."""

    def __init__(self, app, limit: int, body_timeout: float):
        self.app, self.limit, self.body_timeout = app, limit, body_timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await _answer(send, 413, "too_large", self._too_large())
        state = {"seen": 0, "body_done": False, "started": False, "answered": False}

        async def guarded_receive():
            if state["answered"]:
                return {"type": "http.disconnect"}
            if state["body_done"]:
                return await receive()  # waiting for a disconnect while streaming the answer: no limit
            try:
                message = await asyncio.wait_for(receive(), self.body_timeout)
            except asyncio.TimeoutError:
                return await self._refuse(send, state, 408, "timeout", f"the request body stopped arriving for "
                                          f"{self.body_timeout:.0f} s: send it at a steady pace")
            if message["type"] == "http.request":
                state["seen"] += len(message.get("body", b""))
                state["body_done"] = not message.get("more_body", False)
                if state["seen"] > self.limit:
                    return await self._refuse(send, state, 413, "too_large", self._too_large())
            return message

        async def tracking_send(message):
            if state["answered"]:
                return  # the route's late answer to a refused request
            state["started"] = state["started"] or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, guarded_receive, tracking_send)

    async def _refuse(self, send, state: dict, status: int, error: str, detail: str) -> dict:
        """Answer now (unless the route already did) and tell the route the client is gone."""
        if not state["started"]:
            await _answer(send, status, error, detail)
        state["answered"] = True
        return {"type": "http.disconnect"}

    def _too_large(self) -> str:
        return (f"request body over {self.limit / 1e6:.0f} MB: send a smaller portrait or shorter audio "
                "(the server's --max-upload-mb)")


async def _answer(send, status: int, error: str, detail: str) -> None:
    """Send a whole JSON error answer through a raw ASGI `send`, closing the connection after it."""
    body = json.dumps({"error": error, "detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


# --- HTTP headers: time ------------------------------------------------------------------------


class GuardedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, closing connections whose request headers take over `header_timeout` s."""

    header_timeout = 10.0

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_header_deadline()

    def handle_websocket_upgrade(self, event) -> None:  # type: ignore[override]
        self._upgraded = True  # a WebSocket's own timeouts apply from here (live_routes)
        super().handle_websocket_upgrade(event)

    def _arm_header_deadline(self) -> None:
        armed_cycle = self.cycle
        self.loop.call_later(self.header_timeout, self._header_deadline, armed_cycle)

    def _header_deadline(self, armed_cycle) -> None:
        """No new request's headers completed since the deadline was armed: cut the connection."""
        if getattr(self, "_upgraded", False) or self.transport.is_closing() or self.transport.get_protocol() is not self:
            return  # closed already, or upgraded to a WebSocket
        if self.cycle is armed_cycle and (armed_cycle is None or armed_cycle.response_complete):
            self.transport.close()


def guarded_protocol(header_timeout: float) -> type[H11Protocol]:
    """A GuardedH11Protocol subclass with this header time limit (uvicorn takes a class)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"header_timeout": float(header_timeout)})
