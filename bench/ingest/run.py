"""The ingest benchmark: the same telemetry through the bare pipe and through the platform
(broker -> gateway -> telemetry -> database), one after the other in one run, then the 24-hour
chart query of one bed."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

from bench.common.machine import CpuMeter, describe, other_load, our_pids
from homecare.mqtt import BrokerAddress
from launch.embedded import free_port

from . import setup
from .publisher import Device, Report, publish

log = logging.getLogger("bench.ingest")

_INSERTED = (
    "SELECT coalesce(sum(n_tup_ins), 0) FROM pg_stat_user_tables"
    " WHERE schemaname = 'telemetry' AND relname LIKE 'bed\\_samples%%'"
)


@dataclass
class Phase:
    """One pipeline's run: samples durable per second at steady state, and how it went."""

    name: str
    samples: int
    samples_per_s: float
    average_per_s: float
    drain_s: float
    publish: Report
    series: list[tuple[float, int]]

    def summary(self) -> dict:
        return {
            "samples": self.samples, "steady_samples_per_s": round(self.samples_per_s),
            "average_samples_per_s": round(self.average_per_s), "seconds": round(self.drain_s, 1),
            "published_in_s": round(self.publish.seconds, 1),
        }


class Progress:
    """A counter polled by a thread into a time series: by default, samples inserted into
    telemetry.bed_samples according to the statistics collector (cheap, and flushed by busy
    backends about once a second)."""

    def __init__(self, database_url: str, interval: float = 0.5, read=None):
        self._conn = psycopg.connect(database_url, autocommit=True)
        self._read = read
        self._interval = interval
        self.series: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> int:
        if self._read is not None:
            return self._read()
        self._conn.execute("SELECT pg_stat_clear_snapshot()")
        return int(self._conn.execute(_INSERTED).fetchone()[0])

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.series.append((time.monotonic(), self.now()))
            self._stop.wait(self._interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._conn.close()


def commit_series(database_url: str, prefix: str) -> list[tuple[float, int]] | None:
    """Samples of these beds durable over time, from the commit time of each row's transaction
    (needs track_commit_timestamp); None when the server does not record commit times."""
    with psycopg.connect(database_url) as conn:
        if not setup.commit_times(conn):
            return None
        rows = conn.execute(
            "SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin))::float8 AS at, count(*)"
            " FROM telemetry.bed_samples WHERE device_id LIKE %s GROUP BY 1 ORDER BY 1",
            (f"{prefix}-%",),
        ).fetchall()
    series, total = [], 0
    for at, count in rows:
        total += count
        series.append((at, total))
    return series


class Waits:
    """Samples pg_stat_activity: how often telemetry's sample write (the COPY into the samples
    table, the markers and latest samples after it, or the INSERT of a redelivered window) is
    waiting, and on what."""

    def __init__(self, database_url: str, interval: float = 0.25):
        self._conn = psycopg.connect(database_url, autocommit=True)
        self._interval = interval
        self.seen: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            rows = self._conn.execute(
                "SELECT coalesce(wait_event_type || '/' || wait_event, 'running') FROM pg_stat_activity"
                " WHERE datname = current_database() AND state = 'active'"
                " AND (query LIKE 'COPY telemetry.bed_samples %%' OR query LIKE '%%INSERT INTO telemetry.bed_samples%%'"
                " OR query LIKE '%%INSERT INTO telemetry.touched_minutes%%')"
            ).fetchall()
            for (what,) in rows:
                self.seen[what] = self.seen.get(what, 0) + 1

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> dict[str, float]:
        """Share of observations of the INSERT by what it was doing."""
        self._stop.set()
        self._thread.join()
        self._conn.close()
        total = sum(self.seen.values()) or 1
        return {k: round(v / total, 3) for k, v in sorted(self.seen.items(), key=lambda kv: -kv[1])}


def steady_rate(series: list[tuple[float, int]], base: int, total: int) -> tuple[float, float, float]:
    """(steady rate, average rate, seconds): from the first stored sample to the last; steady is
    the slope over the middle of that span (20% to 85%), past ramp-up and before the tail."""
    points = [(t, n - base) for t, n in series]
    first = next(t for t, n in points if n > 0)
    last = next(t for t, n in points if n >= total)
    span = last - first
    if span < 5:
        raise RuntimeError(f"the phase took {span:.1f} s: too short to measure; send more samples")
    lo, hi = first + 0.2 * span, first + 0.85 * span

    def at(when: float) -> float:
        for (t0, n0), (t1, n1) in zip(points, points[1:], strict=False):
            if t0 <= when <= t1:
                return n0 + (n1 - n0) * ((when - t0) / (t1 - t0) if t1 > t0 else 0)
        return points[-1][1]

    return (at(hi) - at(lo)) / (hi - lo), total / span, span


def _run_phase(name: str, prefix: str, database_url: str, broker: BrokerAddress, devices: list[Device],
               timeout: float, stage: Progress | None = None, series_log: Path | None = None) -> Phase:
    total = _samples(devices)
    progress = Progress(database_url)
    base = progress.now()
    progress.start()
    if stage is not None:
        stage.start()
    log.info("%s: publishing %d samples from %d beds", name, total, len(devices))
    report = publish(devices, broker.host, broker.port)
    log.info("%s: published in %.1f s; waiting until the database has them", name, report.seconds)
    deadline = time.monotonic() + timeout
    while True:
        if progress.series and progress.series[-1][1] - base >= total:
            break
        if time.monotonic() > deadline:
            progress.stop()
            have = progress.series[-1][1] - base if progress.series else 0
            raise RuntimeError(f"{name}: only {have} of {total} samples stored after {timeout:.0f} s")
        time.sleep(0.5)
    progress.stop()
    if stage is not None:
        stage.stop()
    # Rates from commit times when the server keeps them (exact, and nothing polled the tables
    # during the run); else from the statistics collector's counter, which moves in steps.
    series = commit_series(database_url, prefix)
    if series is None:
        log.warning("the server does not track commit times: rates from pg_stat (coarse)")
        series = [(t, n - base) for t, n in progress.series]
    steady, average, span = steady_rate(series, 0, total)
    if series_log is not None:
        series_log.write_text(json.dumps([(round(t - series[0][0], 3), n) for t, n in series]))
    log.info("%s: %d samples/s at steady state (%d/s on average over %.1f s)", name, steady, average, span)
    return Phase(name, total, steady, average, span, report, series)


def _samples(devices: list[Device]) -> int:
    # Every payload is {"samples":[...]} with one "ts" per sample.
    return sum(p.count(b'"ts"') for d in devices for p in d.payloads)


class Child:
    """A platform process (`homecare <component>`) or the bare pipe, with its log in a file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path, port: int | None = None):
        self.port = port
        self.log_path = log_path
        self.proc = subprocess.Popen(
            [sys.executable, *args], env=env, stdout=subprocess.PIPE, stderr=log_path.open("ab"), text=True,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.proc.args} exited: {self.log_path.read_text()[-3000:]}")
            if self.port is None:
                if self.proc.stdout.readline().strip() == "ready":
                    return
                continue
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.proc.args} not ready after {timeout} s")

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                out, _ = self.proc.communicate(timeout=30)
                return out or ""
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return ""


def _env(database_url: str, broker_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMECARE_")}
    env.update({"HOMECARE_DATABASE_URL": database_url, "HOMECARE_MQTT_URL": broker_url, **extra})
    return env


def metric(text: str, name: str) -> float:
    """The sum of a metric's samples in a Prometheus text page (`name` may carry its labels)."""
    if "{" in name:
        return sum(float(v) for v in re.findall(rf"^{re.escape(name)} (\S+)$", text, re.M))
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def cpu_probe() -> float:
    """CPU seconds of a fixed piece of Python work: the machine's speed right before a phase
    (it varies by a quarter from minute to minute on a shared host, and CPU seconds with it)."""
    began = time.process_time()
    total = 0
    for i in range(3_000_000):
        total += i * i % 7
    return round(time.process_time() - began, 3)


def context_switches(pid: int) -> int:
    """Context switches of all a process's threads so far (Linux): a thread handing work to
    another, or waiting for it, costs one."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            for line in status.read_text().splitlines():
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
        except OSError:  # a thread that ended meanwhile
            continue
    return total


def settle(database_url: str) -> None:
    """Vacuum, analyse and checkpoint before a phase, so that neither phase pays for what the
    other left: the autovacuum of its rows (both write into the same daily partitions), or a
    checkpoint its WAL brought on (and the full-page images after it)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")


def bare_phase(infra: setup.Infra, devices: list[Device], logs: Path, timeout: float) -> tuple[Phase, dict]:
    broker = BrokerAddress.parse(infra.broker_url)
    child = Child(["-m", "bench.ingest.bare", infra.broker_url, infra.database_url,
                   "homecare/v1/devices/+/telemetry"], _env(infra.database_url, infra.broker_url),
                  logs / "bare.log")
    cpu = CpuMeter()
    try:
        child.wait_ready()
        probe = cpu_probe()
        cpu.start({"bare_pipe": [child.proc.pid], **infra.server_pids()})
        phase = _run_phase("bare pipe", "bench-bare", infra.database_url, broker, devices, timeout,
                           series_log=logs / "bare-series.json")
        cores = cpu.stop({"bare_pipe": [child.proc.pid], **infra.server_pids()})  # backends born meanwhile too
    finally:
        out = child.stop()
    return phase, {"committed": out.strip(), "cpu_cores": cores, "cpu_seconds": cpu.seconds, "cpu_probe_s": probe}


def platform_phase(infra: setup.Infra, devices: list[Device], logs: Path, timeout: float) -> tuple[Phase, dict]:
    broker = BrokerAddress.parse(infra.broker_url)
    instance = f"bench{os.getpid()}"
    children = []
    try:
        for component in ("telemetry", "gateway"):
            port = free_port()
            # The beds send their data in a burst and then nothing: not silence to report here.
            env = _env(infra.database_url, infra.broker_url, HOMECARE_NATS_URL=infra.nats_url,
                       HOMECARE_INSTANCE=instance, HOMECARE_HTTP_PORT=str(port), HOMECARE_GATEWAY_SILENT_MIN_S="86400")
            children.append(Child(["-m", "launch.cli", component], env, logs / f"{component}.log", port))
        for child in children:
            child.wait_ready()
        # The gateway's own pace: device batches it forwarded (their coalesced message PUBACKed).
        forwarded = Progress(infra.database_url, read=lambda: int(metric(
            children[1].metrics(), 'homecare_gateway_forward_latency_seconds_count{channel="telemetry"}')))
        base = forwarded.now()
        waits = Waits(infra.database_url)
        waits.start()
        groups = {"telemetry": [children[0].proc.pid], "gateway": [children[1].proc.pid]}
        probe = cpu_probe()
        switches = {name: context_switches(pids[0]) for name, pids in groups.items()}
        cpu = CpuMeter()
        cpu.start({**groups, **infra.server_pids()})
        others: dict = {}  # what else used the machine, sampled during the phase
        sampler = threading.Timer(10, lambda: others.update(other_load(our_pids())))
        sampler.start()
        phase = _run_phase("platform", "bench-bed", infra.database_url, broker, devices, timeout, stage=forwarded,
                           series_log=logs / "platform-series.json")
        cores = cpu.stop({**groups, **infra.server_pids()})
        messages = sum(len(d.payloads) for d in devices)
        switches = {name: round((context_switches(pids[0]) - switches[name]) / messages, 2)
                    for name, pids in groups.items()}
        analysis = analysis_lag(infra.database_url)
        per_message = phase.samples / messages
        gateway_rate, _, gateway_s = steady_rate(forwarded.series, base, sum(len(d.payloads) for d in devices))
        telemetry, gateway = (c.metrics() for c in children)
        sampler.join()
        details = {
            "machine_load_during_phase": others,
            "cpu_cores": cores,
            "cpu_seconds": cpu.seconds,
            "telemetry_write_observed": waits.stop(),
            "analysis_after_ingest": analysis,
            "gateway_forwarded_samples_per_s": round(gateway_rate * per_message),
            "gateway_forwarded_all_in_s": round(gateway_s, 1),
            "gateway_rejected": metric(gateway, "homecare_gateway_rejected_total"),
            "gateway_throttled": metric(gateway, "homecare_gateway_throttled_total"),
            "telemetry_duplicates": metric(telemetry, "homecare_telemetry_samples_duplicates_total"),
            # How ingest batched: transactions, and samples in each.
            "telemetry_writes": metric(telemetry, "homecare_telemetry_batch_samples_count"),
            "telemetry_samples_per_write": round(metric(telemetry, "homecare_telemetry_batch_samples_sum")
                                                 / max(metric(telemetry, "homecare_telemetry_batch_samples_count"), 1)),
            "context_switches_per_device_message": switches,
            "cpu_probe_s": probe,
        }
    finally:
        for child in reversed(children):
            child.stop()
        _purge(broker, [f"{c}-{instance}" for c in ("telemetry", "gateway")])
    return phase, details


def analysis_lag(database_url: str, limit_s: float = 180.0) -> dict:
    """Rollups and sample rules trail ingest (the analysis worker is paced and re-reads raw rows
    around each touched minute): the bed-minutes still waiting when the last sample was stored,
    and how long the worker then took to finish them."""
    query = ("SELECT (SELECT count(*) FROM telemetry.touched_minutes)"
             " + (SELECT count(*) FROM telemetry.touched_claims)")
    began = time.monotonic()
    with psycopg.connect(database_url, autocommit=True) as conn:
        waiting = left = conn.execute(query).fetchone()[0]
        while left and time.monotonic() - began < limit_s:
            time.sleep(0.5)
            left = conn.execute(query).fetchone()[0]
    return {"minutes_waiting_at_end": waiting, "seconds_to_finish": round(time.monotonic() - began, 1),
            "minutes_left_after_limit": left}


def _purge(broker: BrokerAddress, client_ids: list[str]) -> None:
    """End the platform's persistent sessions on a broker that outlives the run."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    for client_id in client_ids:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        if broker.username:
            client.username_pw_set(broker.username, broker.password)
        try:
            client.connect(broker.host, broker.port)
            client.loop_start()
            client.disconnect()
            client.loop_stop()
        except OSError:
            pass


def stored(database_url: str, prefix: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT count(*) FROM telemetry.bed_samples WHERE device_id LIKE %s", (f"{prefix}-%",)
        ).fetchone()[0]


def chart_p95(database_url: str, runs: int = 200) -> dict:
    """A bed with 24 hours of samples at 1 Hz (86,400), its rollups brought up to date as the
    telemetry service does; then the 24-hour chart query, `runs` times."""
    from services.telemetry import queries
    from services.telemetry.domain.samples import SampleRow
    from services.telemetry.store import rollups
    from services.telemetry.store import samples as store

    bed = "bench-chart-00001"
    setup.provision_beds(database_url, [bed])
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(hours=24)
    with psycopg.connect(database_url) as conn:
        resident = conn.execute("SELECT resident_id FROM gateway.devices WHERE id = %s", (bed,)).fetchone()[0]
        rows = [
            SampleRow(start + timedelta(seconds=i), bed, resident, i % 7 != 0,
                      60 + i % 25 if i % 7 else None, 12 + i % 6 if i % 7 else None, (i % 10) / 40)
            for i in range(86_400)
        ]
        for i in range(0, len(rows), 10_000):
            store.write_samples(conn, rows[i:i + 10_000])
            conn.commit()
        while touched := rollups.claim_touched(conn, 5000):
            rollups.recompute(conn, touched)
            conn.commit()
        conn.execute("ANALYZE telemetry.vitals_1m")
        conn.commit()
        timings, points = [], 0
        for n in range(runs + 10):
            began = time.perf_counter()
            result = queries.vitals(conn, bed, start, end)
            elapsed = time.perf_counter() - began
            conn.rollback()
            if n >= 10:  # the first few warm the caches
                timings.append(elapsed * 1000)
            points = len(result)
    timings.sort()
    return {
        "chart_p95_ms": round(timings[int(0.95 * len(timings)) - 1], 2),
        "chart_p50_ms": round(statistics.median(timings), 2),
        "chart_points": points, "chart_runs": runs,
        "chart_resolution": queries.resolve_resolution(start, end),
    }


def write_paths(database_url: str, rows_per_write: int = 20_000, writes: int = 10) -> dict:
    """Telemetry's own write (`store.write_samples`: staging COPY, insert once per (device, ts),
    touched-minute markers, latest sample) against a plain COPY of the same rows, in this
    process with nothing else running: how much of the gap is the write itself."""
    from services.telemetry.domain.samples import SampleRow
    from services.telemetry.store import samples as store

    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=30)
    rates = {}
    with psycopg.connect(database_url) as conn:
        for path in ("copy", "write_samples"):
            bed = f"bench-write-{path.replace('_', '-')}"
            setup.provision_beds(database_url, [bed])
            rows = [SampleRow(start + timedelta(seconds=i), bed, "bench", True, 60, 14, 0.1)
                    for i in range(rows_per_write * writes)]
            began = time.perf_counter()
            for i in range(0, len(rows), rows_per_write):
                chunk = rows[i:i + rows_per_write]
                if path == "copy":
                    with conn.cursor() as cur, cur.copy(
                        "COPY telemetry.bed_samples (ts, device_id, resident_id, occupied, heart_rate,"
                        " respiration_rate, movement) FROM STDIN"
                    ) as copy:
                        for row in chunk:
                            copy.write_row(row)
                else:
                    store.write_samples(conn, chunk)
                conn.commit()
            rates[f"{path}_samples_per_s"] = round(len(rows) / (time.perf_counter() - began))
    return rates


def run(beds: int, messages: int, per_message: int, timeout: float) -> dict:
    """The whole benchmark; returns the result document."""
    logs = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    infra = setup.Infra.start()
    try:
        bare_beds = setup.beds("bench-bare", beds, messages, per_message, seed=1)
        platform_beds = setup.beds("bench-bed", beds, messages, per_message, seed=1)
        setup.provision_beds(infra.database_url, [d.client_id for d in platform_beds])
        settle(infra.database_url)
        bare, bare_details = bare_phase(infra, bare_beds, logs, timeout)
        settle(infra.database_url)
        full, full_details = platform_phase(infra, platform_beds, logs, timeout)
        counts = {"bare": stored(infra.database_url, "bench-bare"),
                  "platform": stored(infra.database_url, "bench-bed")}
        chart = chart_p95(infra.database_url)
        writes = write_paths(infra.database_url)
        machine = describe(infra.database_url)
    finally:
        infra.stop()
    ratio = full.samples_per_s / bare.samples_per_s
    return {
        "benchmark": "ingest", "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "samples_per_s": round(full.samples_per_s),
        "bare_pipe_samples_per_s": round(bare.samples_per_s),
        "ratio": round(ratio, 3),
        **chart,
        "targets": {"ratio": 0.7, "chart_p95_ms": 50},  # issue 11: >= 0.7 of the bare pipe
        "met": {"ratio": ratio >= 0.7, "chart_p95_ms": chart["chart_p95_ms"] < 50},
        "platform": {**full.summary(), **full_details, "stored": counts["platform"]},
        "database_writes_in_process": writes,
        "bare_pipe": {**bare.summary(), **bare_details, "stored": counts["bare"]},
        "config": {"beds": beds, "messages_per_bed": messages, "samples_per_message": per_message,
                   "broker": "configured" if os.environ.get("HOMECARE_MQTT_URL") else "embedded mosquitto",
                   "database": "configured" if os.environ.get("HOMECARE_DATABASE_URL") else "embedded PostgreSQL"},
        "machine": machine,
        "logs": str(logs),
    }
