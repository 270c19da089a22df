"""MqttLink when paho has no message id left: publishes are held and sent later, and every
completion callback still runs (a dropped callback left a device message un-acked forever).
SplitLink: a consumer working through a backlog gets its own publishes acknowledged at once."""

from __future__ import annotations

import queue
import threading
import time

import paho.mqtt.client as mqtt

from homecare.mqtt import BrokerAddress, MqttLink, SplitLink
from tests.support import forget_session, unique, wait_for

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


def test_a_consumer_behind_a_backlog_gets_its_publish_acknowledged_at_once(broker_url):
    """As the gateway works: the network thread hands messages to a bounded queue (and waits
    when it is full), a worker publishes what it makes of them and acks each input after."""
    address = BrokerAddress.parse(broker_url)
    # Under mosquitto's default max_queued_messages (1000), which this machine's broker keeps.
    backlog, source, sink = 800, f"homecare/test/{unique('in')}", f"homecare/test/{unique('out')}"
    handed: queue.Queue[mqtt.MQTTMessage] = queue.Queue(maxsize=50)
    inbound = MqttLink(address, unique("consumer"), subscriptions={source: lambda c, m: handed.put(m)},
                       manual_ack=True, clean_session=False)
    outbound = MqttLink(address, unique("consumer-out"), clean_session=True)
    io = SplitLink(inbound, outbound)
    producer = MqttLink(address, unique("producer"), clean_session=True, max_inflight=1000)
    processed, acked_at = [0], []
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            try:
                message = handed.get(timeout=0.1)
            except queue.Empty:
                continue
            time.sleep(0.002)  # the work on one message
            if processed[0] == 100:  # after acks: mosquitto 2.0.11 then sends the whole backlog
                io.publish(sink, b"made from a message", qos=1, on_done=lambda: acked_at.append(processed[0]))
            io.ack(message)
            processed[0] += 1

    worker = threading.Thread(target=work, daemon=True)
    try:
        inbound.start()
        assert inbound.wait_subscribed(10)
        inbound.stop()  # the backlog builds up in its persistent session
        producer.start()
        sent: list[int] = []
        for _ in range(backlog):
            producer.publish(source, b"x" * 2000, qos=1, on_done=lambda: sent.append(1))
        wait_for(lambda: len(sent) == backlog, timeout=30, what="the backlog queued at the broker")
        outbound.start()
        worker.start()
        inbound.start()
        wait_for(lambda: acked_at, timeout=30, what="the publish acknowledged")
        assert acked_at[0] < 100 + backlog // 4, f"acknowledged only after {acked_at[0]} of {backlog} messages"
        wait_for(lambda: processed[0] == backlog, timeout=60, what="the whole backlog worked through")
    finally:
        stop.set()
        for link in (producer, inbound, outbound):
            link.stop()
        forget_session(broker_url, inbound.client_id)
