"""What no route should ever see: input the database or JSON cannot hold, and bodies too big.

One check at the edge instead of a validator on every field. `InputGuard` looks at the path, the
query string and JSON or form bodies before FastAPI parses them, and answers 422 naming the field
(in FastAPI's own error shape) for a NUL byte, a lone surrogate, NaN or an infinite number, or an
integer outside PostgreSQL's bigint. Bodies above a size limit are refused with 413 before they
are read whole. `install_error_handlers` is the net behind it: a value the database still cannot
store, or a date arithmetic overflow, is a 422, never a 500, and a 422 never echoes its input.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 1_000_000  # the largest legitimate body (a resident with contacts) is a few kB
INT64 = 2**63 - 1
MAX_ERRORS = 20  # a 422 lists at most this many problems
_SHOWN = 40  # characters of an offending value a message may quote


def _bad_text(value: str) -> str | None:
    """Why PostgreSQL cannot store this text, or None."""
    if "\x00" in value:
        return "must not contain NUL characters"
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        return "must not contain lone surrogates (not valid Unicode)"
    return None


def _walk(value: Any, loc: tuple) -> Iterator[tuple[tuple, str]]:
    """(location, problem) of every value in parsed JSON that no field may take."""
    if isinstance(value, str):
        problem = _bad_text(value)
        if problem:
            yield loc, problem
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not -INT64 - 1 <= value <= INT64:
            yield loc, "must be an integer between -2^63 and 2^63-1"
    elif isinstance(value, float):
        if not math.isfinite(value):
            yield loc, "must be a finite number (not NaN or infinite)"
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, (*loc, i))
    elif isinstance(value, dict):
        for key, item in value.items():
            problem = _bad_text(key)
            if problem:
                yield (*loc, key), f"field name {problem}"
            else:
                yield from _walk(item, (*loc, key))


def _pairs(where: str, text: str) -> Iterator[tuple[tuple, str]]:
    for name, value in parse_qsl(text, keep_blank_values=True):
        for part in (name, value):
            problem = _bad_text(part)
            if problem:
                yield (where, name), problem
                break


def problems_in(scope: Scope, body: bytes | None) -> list[tuple[tuple, str]]:
    """Everything wrong with the path, query and body of a request, by location."""
    found: list[tuple[tuple, str]] = []
    problem = _bad_text(scope.get("path", ""))
    if problem:
        found.append((("path",), problem))
    found.extend(_pairs("query", scope.get("query_string", b"").decode("latin-1")))
    if body:
        kind = _content_type(scope)
        if kind in ("", "application/json") or kind.endswith("+json"):
            try:
                parsed = json.loads(body)
            except RecursionError:
                found.append((("body",), "is nested too deeply"))
            except ValueError:
                pass  # not JSON: FastAPI answers that itself
            else:
                found.extend(_walk(parsed, ("body",)))
        elif kind == "application/x-www-form-urlencoded":
            found.extend(_pairs("body", body.decode("latin-1")))
    return found


def _content_type(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return value.decode("latin-1").split(";")[0].strip().lower()
    return ""


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def invalid(problems: list[tuple[tuple, str]]) -> JSONResponse:
    """422 in FastAPI's validation-error shape, naming each field."""
    return JSONResponse({"detail": [
        {"type": "value_error", "loc": list(loc), "msg": msg} for loc, msg in problems[:MAX_ERRORS]
    ]}, status_code=422)


def too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"request body larger than {limit} bytes"}, status_code=413)


class InputGuard:
    """ASGI middleware: refuse unstorable input (422) and oversized bodies (413) up front."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY_BYTES):
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self.max_body:
            await too_large(self.max_body)(scope, receive, send)
            return
        body: bytes | None = None
        if scope["method"] not in ("GET", "HEAD", "OPTIONS", "DELETE") or length:
            chunks, size, more = [], 0, True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    await self.app(scope, _replay([message]), send)  # the client left
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body:
                    await too_large(self.max_body)(scope, receive, send)
                    return
                chunks.append(chunk)
                more = message.get("more_body", False)
            body = b"".join(chunks)
        problems = problems_in(scope, body)
        if problems:
            await invalid(problems)(scope, receive, send)
            return
        await self.app(scope, receive if body is None else _replay(
            [{"type": "http.request", "body": body, "more_body": False}], receive), send)


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


def _brief(error: dict) -> dict:
    """A validation error without its input (which may be megabytes) or context objects."""
    out = {"type": error.get("type", "value_error"), "loc": list(error.get("loc", ())),
           "msg": str(error.get("msg", ""))[:500]}
    return out


def install_error_handlers(app: FastAPI) -> None:
    """422s that name fields without echoing input; unstorable values as 422, not 500."""

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": [_brief(e) for e in exc.errors()[:MAX_ERRORS]]}, status_code=422)

    @app.exception_handler(psycopg.DataError)
    async def unstorable(_: Request, exc: psycopg.DataError) -> JSONResponse:
        # Invalid text, a number or date out of the column's range: the input's fault.
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return JSONResponse({"detail": f"a value cannot be stored: {first}"}, status_code=422)

    @app.exception_handler(OverflowError)
    async def overflow(_: Request, exc: OverflowError) -> JSONResponse:
        # e.g. a date near year 1 or 9999 minus or plus the default span
        return JSONResponse({"detail": f"a date or number is out of range: {str(exc)[:_SHOWN * 5]}"},
                            status_code=422)
