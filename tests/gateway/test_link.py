"""MqttLink under concurrent publishing: every on_done runs once, nothing deadlocks."""

from __future__ import annotations

import threading
from collections import Counter

from homecare.mqtt import BrokerAddress, MqttLink
from tests.support import unique, wait_for


def test_concurrent_publishes_with_callbacks_complete_exactly_once(broker_url):
    # PUBACKs arrive on the network thread while other threads publish: the case that used to
    # deadlock when publish() held the link's lock across paho's.
    link = MqttLink(BrokerAddress.parse(broker_url), unique("stress"), clean_session=True)
    link.start()
    done: Counter[int] = Counter()
    lock = threading.Lock()
    topic = f"homecare/test/{unique('t')}"

    def publisher(start: int) -> None:
        for n in range(start, start + 500):
            def finished(n=n) -> None:
                with lock:
                    done[n] += 1
            link.publish(topic, b"x", qos=1, on_done=finished)

    try:
        threads = [threading.Thread(target=publisher, args=(i * 500,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads), "publishers are stuck"
        wait_for(lambda: len(done) == 2000, timeout=30, what="all PUBACKs")
        assert set(done.values()) == {1}
    finally:
        link.stop()
