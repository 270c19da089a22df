"""The bare pipe: a minimal paho subscriber that COPYs device telemetry into the samples table,
with no validation, no registry, no de-duplication and no rollup markers. It is the yardstick:
what the broker and the database can do on this machine, without the platform in between.

Run as `python -m bench.ingest.bare MQTT_URL DATABASE_URL TOPIC_FILTER`; prints `ready` once
subscribed, and the samples it committed when it gets SIGTERM.
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

COLUMNS = "ts, device_id, resident_id, occupied, heart_rate, respiration_rate, movement"
WINDOW_S = 0.1


def main(mqtt_url: str, database_url: str, topic_filter: str) -> int:
    pending: list[tuple[str, bytes]] = []
    lock = threading.Lock()
    subscribed = threading.Event()
    stopping = threading.Event()
    committed = 0

    def on_message(client, userdata, message) -> None:
        with lock:
            pending.append((message.topic, message.payload))

    address = BrokerAddress.parse(mqtt_url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bare-pipe-{time.time_ns()}", clean_session=True)
    if address.username:
        client.username_pw_set(address.username, address.password)
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic_filter, qos=1)
    client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
    client.on_message = on_message
    client.connect(address.host, address.port, keepalive=60)
    client.loop_start()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    if not subscribed.wait(15):
        print("no subscription", file=sys.stderr)
        return 1
    print("ready", flush=True)
    with psycopg.connect(database_url) as conn:
        while not stopping.is_set() or pending:
            time.sleep(WINDOW_S)
            with lock:
                taken, pending[:] = list(pending), []
            if not taken:
                continue
            with conn.cursor() as cur, cur.copy(f"COPY telemetry.bed_samples ({COLUMNS}) FROM STDIN") as copy:
                for topic, payload in taken:
                    device_id = topic.split("/")[3]
                    for s in json.loads(payload)["samples"]:
                        copy.write_row((s["ts"], device_id, "bench", s["occupied"], s.get("heart_rate"),
                                        s.get("respiration_rate"), s["movement"]))
                        committed += 1
            conn.commit()
    client.loop_stop()
    print(f"committed {committed}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
