"""MqttLink when paho has no message id left: publishes are held and sent later, and every
completion callback still runs (a dropped callback left a device message un-acked forever)."""

from __future__ import annotations

import paho.mqtt.client as mqtt

from homecare.mqtt import BrokerAddress, MqttLink
from tests.support import unique, wait_for

IDS = 65_535  # MQTT packet ids: paho refuses a publish once all are taken by unacknowledged ones


def test_publishes_beyond_pahos_id_space_are_held_then_sent_with_their_callbacks(broker_url):
    address = BrokerAddress.parse(broker_url)
    topic = f"homecare/test/{unique('ids')}"
    # Not connected yet: paho keeps QoS 1 publishes (each holding an id) to send on connect.
    link = MqttLink(address, unique("writer"), clean_session=True, max_inflight=1000)
    done: list[int] = []
    total = IDS + 200
    try:
        infos = [link.publish(topic, str(n).encode(), qos=1, on_done=lambda n=n: done.append(n))
                 for n in range(total)]
        assert infos[IDS - 1].rc == mqtt.MQTT_ERR_NO_CONN  # queued by paho
        assert infos[IDS].rc == mqtt.MQTT_ERR_QUEUE_SIZE  # no id left: held by the link
        assert link.held == 200

        link.start()
        wait_for(lambda: len(done) == total, timeout=120, what="every publish acknowledged by the broker")
        assert sorted(done) == list(range(total)) and link.held == 0
    finally:
        link.stop()
