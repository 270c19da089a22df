"""Intake from the log: one resident's messages keep their order."""

from tests.support import unique, wait_for

from .harness import button_event, get_request, kinds, new_provider, new_resident, request_of


def test_a_press_and_the_long_press_after_it_keep_their_order(pool, start_dispatch, bus):
    start_dispatch()
    new_provider(pool, capacity=50)
    residents = [new_resident(pool) for _ in range(24)]
    for resident in residents:  # all stored before many of them are handled
        device = unique("btn")
        bus.press(button_event(device, resident, "meal"))
        bus.press(button_event(device, resident, "meal", type_="button.cancelled"))

    def finished():
        with pool.connection() as conn:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE status = 'cancelled') AS cancelled, count(*) AS n"
                " FROM dispatch.requests WHERE resident_id = ANY(%s)", (residents,),
            ).fetchone()
        return row["n"] == len(residents) and row["cancelled"] == row["n"]

    wait_for(finished, timeout=30, what="every request opened, then cancelled by its long press")
    assert all(request_of(pool, r) is None for r in residents)  # nothing left open
    with pool.connection() as conn:
        ids = [r["id"] for r in conn.execute(
            "SELECT id FROM dispatch.requests WHERE resident_id = ANY(%s)", (residents,)).fetchall()]
    steps = [kinds(get_request(pool, i)) for i in ids]
    assert all(step[-2:] == ["cancelled", "notified"] for step in steps), steps
