"""Reading the dead-letter stream as an operator does, on a real NATS server: oldest first after a
seq, newest first before one, across the gaps replayed and discarded letters leave."""

from __future__ import annotations

import pytest

from homecare.log import dead_letters, streams
from tests.support import LogTap


@pytest.fixture
def tap(nats_url, log_namespace):
    tap = LogTap(nats_url, log_namespace)
    yield tap
    tap.close()


def letters(tap: LogTap, n: int) -> None:
    for i in range(1, n + 1):
        tap.log.publish_wait(tap.subjects.dead("a-consumer"), f"letter {i}".encode(), headers={
            "Homecare-Consumer": "a-consumer", "Homecare-Subject": tap.subjects.event("button.pressed", "b-1"),
            "Homecare-Reason": f"reason {i}", "Homecare-Deliveries": "5",
            "Homecare-Failed-At": "2026-03-01T08:00:00+00:00"})


def seqs(found) -> list[int]:
    return [letter.seq for letter in found]


def test_newest_first_across_gaps_a_page_at_a_time(tap):
    assert dead_letters.latest(tap.log) == []
    letters(tap, 9)
    for seq in (2, 3, 5, 8):
        dead_letters.discard(tap.log, seq)

    assert seqs(dead_letters.latest(tap.log, limit=2)) == [9, 7]
    assert seqs(dead_letters.latest(tap.log, before_seq=7, limit=2)) == [6, 4]
    assert seqs(dead_letters.latest(tap.log, before_seq=4, limit=2)) == [1]
    assert seqs(dead_letters.latest(tap.log, before_seq=1)) == []
    assert seqs(dead_letters.latest(tap.log, limit=100)) == [9, 7, 6, 4, 1]
    assert seqs(dead_letters.dead_letters(tap.log, after_seq=4, limit=2)) == [6, 7]  # the other way
    newest = dead_letters.latest(tap.log, limit=1)[0]
    assert (newest.payload, newest.reason, newest.consumer, newest.deliveries) == (
        b"letter 9", "reason 9", "a-consumer", 5)


def test_a_stream_of_discarded_letters_reads_as_empty(tap):
    letters(tap, 3)
    for seq in (1, 2, 3):
        dead_letters.discard(tap.log, seq)
    assert dead_letters.latest(tap.log) == [] and dead_letters.dead_letters(tap.log) == []
    assert len(tap.messages(streams.DEAD)) == 0
