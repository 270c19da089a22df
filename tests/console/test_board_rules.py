"""The board's pure rules: what it shows, in what order, and the SLA state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from console.board import ACTIVE, CLOSED, board_row, compose, section_of, sla_state, sort_key

T0 = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def req(rid: str, status: str = "open", priority: int = 3, urgency: int = 1, age_min: float = 0,
        **extra) -> dict:
    return {
        "id": rid, "resident_id": f"res-{rid}", "service": "meal", "priority": priority,
        "urgency": urgency, "status": status, "created_at": T0 - timedelta(minutes=age_min),
        "provider_id": None, "sla_due_at": T0 + timedelta(minutes=30), "eta_minutes": None, **extra,
    }


def test_sections():
    assert all(section_of(s) == "active" for s in ACTIVE)
    assert all(section_of(s) == "recent" for s in CLOSED)
    assert section_of("something-new") is None


def test_active_order_is_priority_then_urgency_then_longest_waiting():
    requests = [
        req("meal-new", priority=3, age_min=1),
        req("meal-old", priority=3, age_min=9),
        req("meal-pressed-again", priority=3, urgency=3, age_min=0),
        req("emergency", priority=1, age_min=0),
        req("bath", priority=4, age_min=60),
    ]

    board = compose(requests, {}, {}, recent_limit=10)

    assert [r["id"] for r in board.active] == [
        "emergency", "meal-pressed-again", "meal-old", "meal-new", "bath",
    ]


def test_recent_are_most_recently_closed_first_and_limited():
    requests = [
        req("done-early", "completed", age_min=50, completed_at=T0 - timedelta(minutes=40)),
        req("cancelled-late", "cancelled", age_min=45, cancelled_at=T0 - timedelta(minutes=1)),
        req("done-mid", "completed", age_min=10, completed_at=T0 - timedelta(minutes=5)),
    ]

    board = compose(requests, {}, {}, recent_limit=2)

    assert [r["id"] for r in board.recent] == ["cancelled-late", "done-mid"]
    assert board.active == []


def test_closed_rows_show_no_sla_clock_and_unknown_statuses_are_dropped():
    board = compose([req("a", "completed"), req("b", "mystery")], {}, {}, recent_limit=5)

    assert [r["id"] for r in board.recent] == ["a"]
    assert board.recent[0]["sla_due_at"] is None


def test_rows_are_json_ready_with_names_and_labels():
    row = board_row(req("r1", "en_route", provider_id="p-1", eta_minutes=7), "Ada Lovelace")

    assert row["resident_name"] == "Ada Lovelace"
    assert row["status_label"] == "En route"
    assert row["created_at"] == "2026-11-29T03:00:00.000Z"
    assert row["sla_due_at"] == "2026-11-29T03:30:00.000Z"
    assert row["section"] == "active"
    assert row["sort"] == sort_key(req("r1", "en_route"))


def test_counts_cover_every_status():
    board = compose([], {}, {"open": 2, "escalated": 1}, recent_limit=5)

    assert board.counts["open"] == 2 and board.counts["escalated"] == 1
    assert board.counts["arrived"] == 0 and set(board.counts) == set(ACTIVE + CLOSED)


def test_sla_state_turns_amber_then_red():
    warn = timedelta(minutes=5)
    due = T0 + timedelta(minutes=10)

    assert sla_state(None, T0, warn) == "none"
    assert sla_state(due, T0, warn) == "ok"
    assert sla_state(due, due - timedelta(minutes=4), warn) == "warn"
    assert sla_state(due, due, warn) == "late"
    assert sla_state(due, due + timedelta(seconds=1), warn) == "late"


def test_active_total_tells_when_the_board_shows_only_part():
    board = compose([req("a"), req("b")], {}, {"open": 2, "assigned": 3, "completed": 9}, 5)

    assert board.active_total == 5  # two loaded, five active in all

    assert compose([req("a")], {}, {}, 5).active_total == 1  # counts lag: never below shown


def test_a_request_a_stuck_button_joined_is_marked_on_its_row_and_its_timeline_says_why():
    from console.timeline import describe
    from console.web import templates

    stuck = board_row(req("r1", stuck_presses=43, stuck_from=T0, stuck_to=T0 + timedelta(seconds=11)), "Wang")
    assert stuck["stuck"] == "button stuck: 43 presses in 11 s"
    assert board_row(req("r2"), "Wang")["stuck"] is None
    macro = templates().env.get_template("_rows.html").module.request_row
    assert "button stuck" in str(macro(stuck)) and "button stuck" not in str(macro(board_row(req("r2"), "Wang")))
    entry = {"at": T0, "actor": "device:btn-1", "kind": "button_stuck",
             "detail": {"presses": 21, "span_s": 5.0, "urgency": 1, "urgency_undone": 4}}
    line = describe(entry, {})
    assert line["text"] == "Button stuck: 21 presses in 5.0 s, urgency not raised (back to 1)" and line["tone"] == "bad"
