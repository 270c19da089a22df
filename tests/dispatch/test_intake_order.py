"""Intake from the log: one resident's messages keep their order, also when a cancel is handled
before its press."""

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


def test_a_long_press_handled_before_its_press_still_cancels_it(pool, start_dispatch, bus):
    """Two replicas can take a press and the long press after it in either order: here the
    cancel is handled first, as another replica would have done."""
    from datetime import timedelta

    start_dispatch()
    resident, device = new_resident(pool), unique("btn")
    press = button_event(device, resident, "meal")
    cancel = button_event(device, resident, "meal", type_="button.cancelled")
    cancel = cancel.model_copy(update={"ts": press.ts + timedelta(seconds=3)})
    bus.press(cancel)
    bus.press(press)

    def cancelled():
        with pool.connection() as conn:
            row = conn.execute("SELECT id, status FROM dispatch.requests WHERE resident_id = %s",
                               (resident,)).fetchone()
        return row if row and row["status"] == "cancelled" else None

    request = get_request(pool, wait_for(cancelled, what="the request opened and cancelled")["id"])
    assert kinds(request)[-2:] == ["cancelled", "notified"]
    assert bus.command(device, "request.acknowledged") and bus.command(device, "request.cancelled")

    later = button_event(device, resident, "meal")  # a press after the cancel opens a request that stays
    bus.press(later.model_copy(update={"ts": press.ts + timedelta(seconds=30)}))
    wait_for(lambda: request_of(pool, resident, "meal"), what="the later press's request")
    assert request_of(pool, resident, "meal")["status"] in ("open", "offered", "escalated")
