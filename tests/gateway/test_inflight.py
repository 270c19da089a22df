"""The edge's record of received, not yet acknowledged messages: what readiness and the
`homecare_gateway_oldest_unacked_seconds` gauge read, and what keeps a second ack from
releasing another message."""

from __future__ import annotations

import paho.mqtt.client as mqtt

from gateway.bootstrap import GatewayComponent
from gateway.inflight import InFlight
from gateway.settings import GatewaySettings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _message(mid: int, qos: int = 1) -> mqtt.MQTTMessage:
    message = mqtt.MQTTMessage(mid, b"homecare/v1/devices/btn-000001/events")
    message.qos = qos
    return message


def test_the_oldest_unacknowledged_message_gives_the_age():
    clock = Clock()
    flight = InFlight(clock)
    first, second = _message(1), _message(2)
    assert flight.oldest_age() == 0.0
    flight.received(first)
    clock.now += 5
    flight.received(second)
    flight.received(_message(3, qos=0))  # nothing to acknowledge
    clock.now += 2
    assert (flight.oldest_age(), len(flight)) == (7.0, 2)
    assert flight.settle(first) is True
    assert flight.oldest_age() == 2.0
    assert flight.settle(second) is True and flight.oldest_age() == 0.0


def test_a_second_ack_is_not_sent_even_when_the_id_was_reused():
    flight = InFlight(Clock())
    first = _message(7)
    flight.received(first)
    assert flight.settle(first) is True
    assert flight.settle(first) is False  # dealt with twice: acknowledged once
    later = _message(7)  # the broker reuses the id for the next message
    flight.received(later)
    assert flight.settle(first) is False  # would have released `later`
    assert flight.settle(later) is True


def test_a_new_connection_forgets_the_old_ones_messages():
    flight = InFlight(Clock())
    flight.received(_message(1))
    flight.clear()  # the broker redelivers them, under the same ids
    assert len(flight) == 0 and flight.oldest_age() == 0.0


def test_readiness_fails_while_a_lane_holds_a_message_too_long():
    clock = Clock()

    class Lane:
        def __init__(self):
            self.flight = InFlight(clock)

        def oldest_unacked_s(self) -> float:
            return self.flight.oldest_age()

    component = GatewayComponent.__new__(GatewayComponent)  # the check alone, without connections
    component.config = GatewaySettings(stuck_after_s=30)
    component.edges = [Lane(), Lane()]
    component.edges[1].flight.received(_message(1))
    clock.now += 30
    assert component.edge_flowing()
    clock.now += 0.5
    assert not component.edge_flowing()
