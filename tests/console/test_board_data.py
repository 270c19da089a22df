"""Reading the board through dispatch's and the directory's interfaces."""

from __future__ import annotations

from console.board_data import load_board, load_changes, resident_names

from .dispatching import cancel_request, new_resident, open_request


def test_resident_names_in_one_lookup_skip_unknown_ids(pool):
    a, a_name = new_resident(pool)
    b, b_name = new_resident(pool)

    with pool.connection() as conn:
        names = resident_names(conn, [a, b, None, "res-unknown", a])

    assert names == {a: a_name, b: b_name}


def test_changes_return_rows_for_known_ids_and_removals_for_unknown(pool):
    resident, name = new_resident(pool)
    request = open_request(pool, resident, "meal")
    cancel_request(pool, request)

    with pool.connection() as conn:
        rows, removed, counts = load_changes(conn, [request, "r-missing", request])

    assert [r["id"] for r in rows] == [request]
    assert rows[0]["section"] == "recent" and rows[0]["resident_name"] == name
    assert removed == ["r-missing"]
    assert counts["cancelled"] >= 1


def test_board_respects_its_limits(pool):
    for _ in range(3):
        resident, _ = new_resident(pool)
        cancel_request(pool, open_request(pool, resident, "escort"))

    with pool.connection() as conn:
        board = load_board(conn, active_limit=1, recent_limit=2)

    assert len(board.active) <= 1
    assert len(board.recent) == 2
