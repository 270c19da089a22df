"""The board's server-sent event stream: a snapshot, then the changes as dispatch commits them.

Events: `snapshot` (the whole board), `changes` (changed rows, removed ids, counts),
`signed-out` (the session ended; the stream closes), and a `: ping` comment as heartbeat.
Each row carries its `html`, rendered by the same macro as the page, so markup lives once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi.concurrency import run_in_threadpool

from . import alerts_data
from .board import Board
from .board_data import load_board, load_changes
from .changes import ALERT, CLOSED, RESYNC
from .web import ConsoleContext, now_iso, token_alive

log = logging.getLogger(__name__)

RETRY_MS = 2000  # how soon a browser reconnects after the stream breaks


def sse(event: str, data: Any) -> str:
    """One event in the text/event-stream format (JSON data on one line)."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _says_something(data: dict[str, Any]) -> bool:
    return any(data.get(k) for k in ("rows", "removed", "alerts", "alerts_removed"))


class BoardFeed:
    """Reads the board and its changes, and renders rows, for pages and streams."""

    def __init__(self, ctx: ConsoleContext):
        self.ctx = ctx
        self._row_macro = ctx.templates.env.get_template("_rows.html").module.request_row
        self._alert_macro = ctx.templates.env.get_template("_alerts.html").module.alert_item

    def board(self, districts: frozenset[str] | None = None) -> Board:
        """The board as it is now, of `districts` (a dispatcher's scope; None: all)."""
        with self.ctx.pool.connection() as conn:
            return load_board(conn, self.ctx.settings.active_limit, self.ctx.settings.recent_limit, districts)

    def alerts(self, districts: frozenset[str] | None = None) -> list[dict[str, Any]]:
        """Open and acknowledged alerts of `districts`, most pressing first."""
        with self.ctx.pool.connection() as conn:
            return alerts_data.unresolved(conn, self.ctx.settings.alert_limit, districts)

    def snapshot(self, districts: frozenset[str] | None = None) -> dict[str, Any]:
        """The `snapshot` event's data."""
        board = self.board(districts)
        return {
            "server_time": now_iso(),
            "active": [self._with_html(r) for r in board.active],
            "recent": [self._with_html(r) for r in board.recent],
            "recent_limit": self.ctx.settings.recent_limit,
            "counts": board.counts,
            "alerts": [self._alert_html(a) for a in self.alerts(districts)],
        }

    def changes(self, items: list[str], districts: frozenset[str] | None = None) -> dict[str, Any]:
        """The `changes` event's data for these request ids and tagged alert ids; a change of
        another district than `districts` (None: all) is left out, its id never named."""
        alert_ids = [i.removeprefix(ALERT) for i in items if i.startswith(ALERT)]
        request_ids = [i for i in items if not i.startswith(ALERT)]
        data: dict[str, Any] = {"server_time": now_iso(), "rows": [], "removed": [],
                                "alerts": [], "alerts_removed": []}
        with self.ctx.pool.connection() as conn:
            if request_ids:
                rows, data["removed"], data["counts"] = load_changes(conn, request_ids, districts)
                data["rows"] = [self._with_html(r) for r in rows]
            if alert_ids:
                alerts, data["alerts_removed"] = alerts_data.changed(conn, alert_ids, districts)
                data["alerts"] = [self._alert_html(a) for a in alerts]
        return data

    def token_alive(self, token: str) -> bool:
        """Whether the stream's session or bearer token still works."""
        return token_alive(self.ctx.pool, token)

    def _alert_html(self, row: dict[str, Any]) -> dict[str, Any]:
        return {**row, "html": str(self._alert_macro(row))}

    def _with_html(self, row: dict[str, Any]) -> dict[str, Any]:
        return {**row, "html": str(self._row_macro(row))}

    async def events(self, token: str, districts: frozenset[str] | None = None) -> AsyncIterator[str]:
        """The stream for one subscriber, of `districts` (the subscriber's scope; None: all):
        every event is filtered by the district of what changed. Ends when the console stops or
        the token dies."""
        settings = self.ctx.settings
        sub = self.ctx.hub.subscribe()  # before the snapshot, so no change falls in between
        try:
            yield f"retry: {RETRY_MS}\n\n"
            yield sse("snapshot", await run_in_threadpool(self.snapshot, districts))
            while True:
                items = await sub.next_batch(settings.heartbeat_s, settings.coalesce_s)
                if not items:
                    if not await run_in_threadpool(self.token_alive, token):
                        yield sse("signed-out", {"reason": "session ended"})
                        return
                    yield ": ping\n\n"
                elif CLOSED in items:
                    return
                elif RESYNC in items:
                    yield sse("snapshot", await run_in_threadpool(self.snapshot, districts))
                else:
                    data = await run_in_threadpool(self.changes, items, districts)
                    if _says_something(data):  # another district's change is not even a blank event
                        yield sse("changes", data)
        except Exception:
            # End the stream; the browser reconnects in RETRY_MS and starts from a snapshot.
            log.exception("board stream failed")
        finally:
            self.ctx.hub.unsubscribe(sub)
