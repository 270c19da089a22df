"""Several intake workers per replica: one resident's messages keep their order, and
acknowledgements leave in arrival order whichever worker finishes first."""

import json

from services.dispatch.workers.consumer import AckInOrder, shard_key
from tests.support import unique, wait_for

from .harness import button_event, get_request, new_provider, new_resident, request_of


class Message:
    def __init__(self, mid: int):
        self.mid = mid


def test_acks_leave_in_arrival_order():
    acks, sent = AckInOrder(), []
    first, second, third = (acks.arrived(Message(i)) for i in (1, 2, 3))
    acks.finished(third, True, lambda m: sent.append(m.mid))
    acks.finished(second, False, lambda m: sent.append(m.mid))  # not to be acknowledged (stopping)
    assert sent == []  # the first is still in work
    acks.finished(first, True, lambda m: sent.append(m.mid))
    assert sent == [1, 3]


def test_messages_are_sharded_by_resident_or_command():
    assert shard_key(json.dumps({"resident_id": "res-1", "event_id": "e"}).encode()) == "res-1"
    assert shard_key(json.dumps({"command_id": "c-1", "state": "sent"}).encode()) == "c-1"
    assert shard_key(b"not json") == ""


def test_a_press_and_the_long_press_after_it_keep_their_order_across_workers(pool, start_dispatch, bus):
    component = start_dispatch(consumer_workers=4)
    assert len(component.consumer._queues) == 4
    new_provider(pool, capacity=50)
    residents = [new_resident(pool) for _ in range(24)]
    for resident in residents:  # all at once: the workers run side by side
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
    assert all(get_request(pool, i)["timeline"][-2]["kind"] == "cancelled" for i in ids)
