"""The bare pipe: the least the platform's ingest could be. One paho subscriber takes every bed's
telemetry from the broker (QoS 1, acknowledged on receipt) and a writer thread COPYs the samples
into a table, committing whatever has arrived since its last commit. No validation, no registry,
no de-duplication, no index on the table, and no wait for the commit before the acknowledgement
(which would cap it at the broker's in-flight window per commit): the ceiling of this machine's
broker and database, measured beside the platform in the same run.

`python -m bench.common.bare_pipe MQTT_URL DATABASE_URL` prints a JSON line with the samples it
has committed every half second; SIGTERM ends it after a last commit.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from homecare.mqtt import BrokerAddress
from homecare.topics import DeviceChannel, all_devices_filter

TABLE = "bench.bare_samples"
CLIENT_ID = "bench-bare-pipe"
COLUMNS = "device_id, ts, occupied, heart_rate, respiration_rate, movement"
DDL = (
    "CREATE SCHEMA IF NOT EXISTS bench;"
    f" CREATE TABLE IF NOT EXISTS {TABLE} (device_id text NOT NULL, ts timestamptz NOT NULL,"
    " occupied boolean NOT NULL, heart_rate smallint, respiration_rate smallint, movement real NOT NULL)"
)


def main(mqtt_url: str, database_url: str) -> int:
    pending: list[mqtt.MQTTMessage] = []
    ready = threading.Condition()
    subscribed = threading.Event()
    stopping = threading.Event()
    counts = {"samples": 0, "messages": 0, "unreadable": 0}

    def on_message(client, userdata, message) -> None:
        with ready:
            pending.append(message)
            ready.notify()

    address = BrokerAddress.parse(mqtt_url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=CLIENT_ID, clean_session=False)
    if address.username:
        client.username_pw_set(address.username, address.password)
    topic = all_devices_filter(DeviceChannel.TELEMETRY)
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
    client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
    client.on_message = on_message
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(DDL)
    client.connect(address.host, address.port, keepalive=60)
    client.loop_start()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    if not subscribed.wait(30):
        print(json.dumps({"error": "no subscription"}), flush=True)
        return 1
    reporter = threading.Thread(target=_report, args=(counts, stopping), daemon=True)
    reporter.start()
    with psycopg.connect(database_url) as conn:
        while not stopping.is_set() or pending:
            with ready:
                ready.wait_for(lambda: pending or stopping.is_set(), timeout=0.5)
                taken, pending[:] = list(pending), []
            if taken:
                try:
                    _store(conn, taken, counts)
                except psycopg.DataError:
                    conn.rollback()  # a value even COPY cannot take: the batch is dropped, counted
                    counts["failed_messages"] = counts.get("failed_messages", 0) + len(taken)
    client.loop_stop()
    client.disconnect()
    _print(counts, final=True)
    return 0


def _store(conn: psycopg.Connection, messages: list[mqtt.MQTTMessage], counts: dict[str, int]) -> None:
    stored = 0
    with conn.cursor() as cur, cur.copy(f"COPY {TABLE} ({COLUMNS}) FROM STDIN") as copy:
        for message in messages:
            device_id = message.topic.split("/")[3]
            try:
                samples = json.loads(message.payload)["samples"]
                rows = [(device_id, s["ts"], s["occupied"], s.get("heart_rate"), s.get("respiration_rate"),
                         s["movement"]) for s in samples]
            except (ValueError, KeyError, TypeError):
                counts["unreadable"] += 1  # not even the bare pipe can store it
                continue
            for row in rows:
                copy.write_row(row)
            stored += len(rows)
    conn.commit()
    counts["samples"] += stored
    counts["messages"] += len(messages)


def _report(counts: dict[str, int], stopping: threading.Event) -> None:
    while not stopping.wait(0.5):
        _print(counts)


def _print(counts: dict[str, int], final: bool = False) -> None:
    print(json.dumps({"t": round(time.time(), 3), **counts, **({"final": True} if final else {})}), flush=True)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
