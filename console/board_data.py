"""Reads the board through the dispatch service's and the residents directory's Python
interfaces (the console owns no tables and reads none directly)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg

from homecare.errors import NotFound
from homecare.residents import store as residents
from services.dispatch import interface as dispatch

from .board import ACTIVE, CLOSED, Board, board_row, compose, count_statuses


def load_board(
    conn: psycopg.Connection, active_limit: int, recent_limit: int, districts: frozenset[str] | None = None,
) -> Board:
    """Active requests, the most recently closed ones, and the count of each status, of
    `districts` (a dispatcher's scope; None: all)."""
    requests = dispatch.list_requests(conn, statuses=list(ACTIVE), limit=active_limit, districts=districts)
    if recent_limit:
        requests += dispatch.list_requests(conn, statuses=list(CLOSED), limit=recent_limit, districts=districts)
    counts = dispatch.count_by_status(conn, districts)
    return compose(requests, resident_names(conn, (r.get("resident_id") for r in requests)),
                   counts, recent_limit)


def load_changes(
    conn: psycopg.Connection, request_ids: Iterable[str], districts: frozenset[str] | None = None,
) -> tuple[list[dict[str, Any]], list[str], dict[str, int]]:
    """(rows of the changed requests, ids no longer to show, counts per status), of `districts`
    (None: all). A change of another district is left out altogether, not even its id is named."""
    found, gone = [], []
    for request_id in dict.fromkeys(request_ids):
        try:
            if districts is not None and dispatch.district_of(conn, request_id) not in districts:
                continue
            found.append(dispatch.get_request(conn, request_id))
        except NotFound:
            gone.append(request_id)
    names = resident_names(conn, (r.get("resident_id") for r in found))
    rows = []
    for request in found:
        row = board_row(request, names.get(request.get("resident_id") or ""))
        if row["section"]:
            rows.append(row)
        else:  # a status the board does not show
            gone.append(row["id"])
    return rows, gone, count_statuses(dispatch.count_by_status(conn, districts))


def resident_names(conn: psycopg.Connection, resident_ids: Iterable[str | None]) -> dict[str, str]:
    """Names of the given residents; unknown ids are left out."""
    return residents.names(conn, (r for r in resident_ids if r))
