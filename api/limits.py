"""Request-body guards, before any route reads a body: a size limit and a JSON nesting limit.

Without them a client can make the app buffer any number of bytes (Starlette reads a whole body into memory before
a route sees it), and a deeply nested JSON body (``[[[[...]]]]``) makes ``json.loads`` or the JSON-schema
validation raise ``RecursionError``, which is a 500. Both answers here are problem details:

- a ``Content-Length`` above the limit gets 413 before a byte of the body is read; a chunked body is counted as it
  arrives and refused (413) as soon as it passes the limit, so at most ``limit`` bytes are ever held;
- a JSON body (or one without a content type, which FastAPI parses as JSON) nested deeper than ``max_json_depth``,
  or holding an escaped NUL character (``\\u0000``: PostgreSQL cannot store it, SQLite can, so it would be a 500 on
  one database and data on the other), gets 400 (EPCIS endpoints) or 422 (the write API), like any invalid body;
- so does a number JSON does not have: ``NaN``, ``Infinity`` and ``-Infinity`` (Python's ``json`` reads them), and a
  literal too large for a float (``1e999`` reads as infinity). Stored, such a number made every later answer that
  included it a 500 (Starlette writes strict JSON), and an anchored event cannot be taken back. The answer names
  the field (a JSON pointer).

The body, once checked, is handed on to the app as one message, so routes read it exactly as before.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .config import ApiSettings
from .problems import problem_response

CAPTURE_PATH = "/epcis/capture"
# A JSON string, escapes included (unrolled so that it is linear in the length of the string).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# An escaped NUL (\u0000) that is not itself an escaped backslash followed by "u0000": an odd run of backslashes.
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
# Outside strings, what could read as a non-finite float: the non-standard constants, an exponent of three digits
# or more, or a run of 300 digits or more (its value may pass 1.8e308). Only a body that holds one is parsed here.
# Each alternative matches a fixed length from where it starts, so the scan stays linear on a long run of digits.
_MAYBE_NON_FINITE = re.compile(rb"NaN|Infinity|[eE][+-]?[0-9]{3}|(?<![0-9])[0-9]{300}")


def json_depth_exceeds(body: bytes, limit: int, *, bare: bytes | None = None) -> bool:
    """Whether the JSON text `body` nests arrays and objects more than `limit` levels deep.

    Brackets inside strings do not count. The text need not be valid JSON: an invalid body is left to the route's
    own parser, which refuses it with its own 4xx. `bare` is `body` with its strings removed, when the caller has it.
    """
    if bare is None:
        bare = _JSON_STRING.sub(b"", body)
    brackets = bare.translate(None, _NOT_BRACKETS)
    if len(brackets) <= limit:
        return False
    depth = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


class _NonFinite:
    def __init__(self, text: str) -> None:
        self.text = text


def _non_finite_float(text: str) -> float | _NonFinite:
    value = float(text)
    return value if math.isfinite(value) else _NonFinite(text)


def _pointer(path: list[str | int]) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _find_non_finite(value: Any, path: list[str | int]) -> tuple[str, str] | None:
    """(JSON pointer, literal) of the first non-finite number in a parsed value, depth first."""
    if isinstance(value, _NonFinite):
        return _pointer(path), value.text
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, child in items:
        path.append(key)
        found = _find_non_finite(child, path)
        path.pop()
        if found is not None:
            return found
    return None


def non_finite_number(body: bytes, *, bare: bytes | None = None) -> tuple[str, str] | None:
    """(JSON pointer, literal) of the first number in the JSON text `body` that is not a finite float (``NaN``,
    ``Infinity``, ``-Infinity``, ``1e999``), or None. Text that is not JSON is left to the route's parser (None).

    A cheap scan of the text outside its strings decides whether the body is parsed here at all: almost none is.
    """
    if bare is None:
        bare = _JSON_STRING.sub(b"", body)
    if _MAYBE_NON_FINITE.search(bare) is None:
        return None
    try:
        parsed = json.loads(body, parse_constant=_NonFinite, parse_float=_non_finite_float)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return _find_non_finite(parsed, [])


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media = value.split(b";")[0].strip().lower()
            return bool(media.endswith((b"/json", b"+json")))
    return True  # no content type: FastAPI parses the body as JSON


class BodyLimitMiddleware:
    """Pure ASGI middleware (no BaseHTTPMiddleware: it would buffer the body itself, before any check)."""

    def __init__(self, app: ASGIApp, settings: ApiSettings) -> None:
        self.app = app
        self.max_body_bytes = settings.max_body_bytes
        self.capture_max_bytes = settings.capture_max_bytes
        self.max_json_depth = settings.max_json_depth

    def limit_for(self, path: str) -> int:
        # EPCIS capture takes whole documents (thousands of events); everything else is one small resource.
        return self.capture_max_bytes if path.rstrip("/") == CAPTURE_PATH else self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(scope, send, 413, "Payload too large", f"at most {limit} bytes per request")
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(scope, send, 413, "Payload too large", f"at most {limit} bytes per request")
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        if body and _is_json(scope):
            problem = None
            bare = _JSON_STRING.sub(b"", body)
            if json_depth_exceeds(body, self.max_json_depth, bare=bare):
                problem = f"JSON nested deeper than {self.max_json_depth} levels"
            # The substring test first: it is a memchr-speed scan, while the regex tries its backslash run at every
            # position (15 ms for a 450 KB capture document against 0.2 ms).
            elif b"\\u0000" in body and _JSON_NUL.search(body):
                # PostgreSQL stores no NUL in text or JSONB (a 500 there, stored on SQLite): refused everywhere alike.
                problem = "text may not contain NUL characters (\\u0000)"
            elif (found := non_finite_number(body, bare=bare)) is not None:
                pointer, literal = found
                problem = f"{pointer}: {literal} is not a finite number (JSON numbers are finite)"
            if problem is not None:
                status = 400 if scope["path"].startswith("/epcis") else 422
                await self._refuse(scope, send, status, "Invalid request", problem)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, send: Send, status: int, title: str, detail: str) -> None:
        request = Request(scope)
        # Connection: close, so that a client still sending the rest of a refused body does not keep the socket.
        response = problem_response(request, status, title, detail, headers={"Connection": "close"})
        await response(scope, _no_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _no_receive() -> Message:  # a JSONResponse never reads the request
    raise RuntimeError("the response does not read the request")


__all__ = ["BodyLimitMiddleware", "json_depth_exceeds", "non_finite_number"]
