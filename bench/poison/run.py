"""The poison benchmark: while one device sends payloads the contract refuses, as fast as the
broker takes them, another device's emergency presses are timed (press -> `request.acknowledged`
or `request.assigned` at the device), against the same presses timed before the poison in the
same run; every poison message must get its reason on the device's `errors` topic (or be
dead-lettered in the log)."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from devices.simulator.stats import summarize
from homecare.mqtt import BrokerAddress
from homecare.topics import DeviceChannel, device_topic

from ..common import accounts, machine
from ..common.log_stats import LogStats
from ..common.metrics import by_label
from ..common.network import BenchNetwork
from ..common.platform import ROOT
from ..common.probe import ProbeButton
from ..common.simulator import start_city
from ..faults.run import FaultOptions, scenario_for
from .payloads import poison

log = logging.getLogger("bench.poison")

TARGET_P99_MS = 250.0


@dataclass
class PoisonOptions:
    devices: int = 400  # simulated homes' devices around them: the usual load
    poison: int = 1000
    poison_seconds: float = 30.0  # spread over this long, so that many presses overlap it
    presses: int = 60  # emergency presses timed before the poison, and at most as many during it
    press_every_s: float = 0.5
    warmup_s: float = 20.0
    # The flood gate would drop most of a fast sender's messages with one `rate` reply every 5 s;
    # raised here so that every poison payload reaches the validator, the harder case for the edge.
    flood_budget: int = 1_000_000
    data_dir: Path | None = None


class PoisonDevice:
    """A provisioned button of its own, sending poison and counting the replies on `errors`."""

    def __init__(self, broker_url: str, device_id: str, secret: str):
        self.device_id = device_id
        self.replies: list[dict[str, Any]] = []
        self.acked = 0
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        address = BrokerAddress.parse(broker_url)
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_id, clean_session=True)
        self._client.username_pw_set(device_id, secret)
        self._client.max_inflight_messages_set(100)
        self._client.on_connect = lambda c, u, f, rc, p: c.subscribe(
            device_topic(device_id, DeviceChannel.ERRORS), qos=1)
        self._client.on_subscribe = lambda *a: self._subscribed.set()
        self._client.on_message = self._on_error
        self._client.on_publish = self._on_publish
        self._client.connect_async(address.host, address.port, keepalive=30)
        self._client.loop_start()
        if not self._subscribed.wait(15):
            raise RuntimeError("the poison device could not subscribe to its errors topic")

    def _on_error(self, client, userdata, message) -> None:
        with self._lock:
            try:
                self.replies.append(json.loads(message.payload))
            except ValueError:
                self.replies.append({"unreadable": message.payload[:100].decode(errors="replace")})

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._lock:
            self.acked += 1

    def send(self, items: list[tuple[DeviceChannel, str, bytes]], seconds: float) -> float:
        """Publish them all (QoS 1), evenly over `seconds`; seconds until the broker had all."""
        started = time.monotonic()
        for i, (channel, _, payload) in enumerate(items):
            time.sleep(max(0.0, started + seconds * i / len(items) - time.monotonic()))
            self._client.publish(device_topic(self.device_id, channel), payload, qos=1)
        while self.acked < len(items) and time.monotonic() - started < 120:
            time.sleep(0.05)
        return time.monotonic() - started

    def reply_count(self) -> int:
        with self._lock:
            return len(self.replies)

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


def _enrol(net: BenchNetwork) -> tuple[str, str]:
    device = net.enrol_button("poison", "Poison Resident", "Bench Lane 2")
    device_id = device["id"]
    if net.infra.embedded_broker and net.infra.broker_auth:
        # The benchmark's broker takes device accounts by import, as for the probe and the homes.
        net.infra.stop_broker()
        accounts.import_accounts(net.infra.broker_dir / "dynamic-security.json", [(device_id, device["secret"])],
                                 net.meta["observer_password"])
        net.infra.start_broker()
        for name in ("gateway", "telemetry", "dispatch"):
            net.platform.wait_ready(name, timeout=60)
    return device_id, device["secret"]


def _time_presses(probe: ProbeButton, count: int, every_s: float, until: threading.Event | None = None) -> list:
    latencies = []
    for _ in range(count):
        if until is not None and until.is_set():
            break
        began = time.monotonic()
        answer = probe.press(timeout=10.0, service="emergency")
        latencies.append(None if answer is None else round(answer * 1000, 1))
        time.sleep(max(0.0, every_s - (time.monotonic() - began)))
    return latencies


def _stats(latencies: list) -> dict[str, Any]:
    answered = [v for v in latencies if v is not None]
    return {"presses": len(latencies), "unanswered": len(latencies) - len(answered), **summarize(answered)}


def run(options: PoisonOptions) -> dict[str, Any]:
    scenario = scenario_for(FaultOptions(devices=options.devices))
    data_dir = options.data_dir or ROOT / "bench/.data" / f"poison-{scenario.homes * 2}"
    env = {"HOMECARE_GATEWAY_DEVICE_RATE_PER_S": str(options.flood_budget),
           "HOMECARE_GATEWAY_DEVICE_BURST": str(options.flood_budget)}
    net = BenchNetwork(data_dir, scenario, platform_env=env)
    sim = crew = probe = sender = backlog = None
    try:
        net.start()
        out: dict[str, Any] = {"options": {**options.__dict__, "data_dir": str(data_dir)},
                               "machine": machine.describe(net.infra.database_url)}
        net.close_earlier_requests()
        device_id, secret = _enrol(net)  # before the devices connect: it restarts the broker
        sim, crew = start_city(scenario, data_dir / "run", net.roster_path, net.infra.broker_url,
                               net.platform.api_url, net.admin)
        devices = len(net.roster.devices())
        sim.wait_for(lambda r: r.get("devices_connected", 0) >= devices, devices / scenario.connect_rate + 120,
                     "every device connected")
        sender = PoisonDevice(net.infra.broker_url, device_id, secret)
        probe = ProbeButton(net.infra.broker_url, net.meta["probe"]["id"], net.meta["probe"]["secret"])
        backlog = LogStats(net.infra.nats_url)
        log.info("%d devices connected; warming up %ss", devices, options.warmup_s)
        time.sleep(options.warmup_s)

        log.info("timing %d emergency presses without poison", options.presses)
        baseline = _time_presses(probe, options.presses, options.press_every_s)
        before = by_label(net.platform.metrics("gateway"), "homecare_gateway_rejected_total", "code")

        items = poison(options.poison)
        done = threading.Event()
        sent: dict[str, float] = {}

        def send() -> None:
            sent["seconds"] = sender.send(items, options.poison_seconds)
            deadline = time.monotonic() + 60  # then every reply should be there
            while sender.reply_count() < len(items) and time.monotonic() < deadline:
                time.sleep(0.1)
            done.set()

        log.info("sending %d poison messages while timing presses", len(items))
        thread = threading.Thread(target=send, daemon=True)
        thread.start()
        during = _time_presses(probe, 10 * options.presses, options.press_every_s, until=done)
        thread.join(90)
        after = by_label(net.platform.metrics("gateway"), "homecare_gateway_rejected_total", "code")
        rejected = {k: int(after.get(k, 0) - before.get(k, 0)) for k in after if after.get(k, 0) != before.get(k, 0)}
        replies = sender.reply_count()
        dead = backlog.dead_letters()
        base, under = _stats(baseline), _stats(during)
        out.update({
            "baseline": base,
            "during_poison": under,
            "poison": {
                "sent": len(items), "accepted_by_broker": sender.acked,
                "published_in_s": round(sent.get("seconds", 0.0), 2),
                "kinds": sorted({kind for _, kind, _ in items}),
                "replies_at_device": replies, "rejected_by_code": rejected,
                "dead_letters": dead, "without_reason": max(0, len(items) - replies - dead),
                "sample_replies": sender.replies[:5],
            },
            # "Within the usual p99": the press -> acknowledgement target the load benchmark holds
            # the network to (250 ms), and, to see what poison costs, the same presses without it.
            "targets": {"press_to_answer_p99_ms": TARGET_P99_MS},
            "p99_over_baseline_ms": None if base["p99"] is None or under["p99"] is None
            else round(under["p99"] - base["p99"], 1),
            "met": {
                "every_poison_message_answered": replies + dead >= len(items),
                "presses_answered_within_target_p99": under["unanswered"] == 0 and under["p99"] is not None
                and under["p99"] < TARGET_P99_MS,
            },
        })
        return out
    finally:
        for closable in (sender, probe, backlog):
            if closable is not None:
                closable.close()
        for child in (sim, crew):
            if child is not None:
                child.stop()
        net.stop()
