"""The load and fault benchmarks' code paths on a tiny network (no timed asserts: a benchmark's
numbers are not a test's business, that every stage runs and reports is)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from bench.faults.run import FaultOptions
from bench.faults.run import run as run_faults
from bench.load.report import compose
from bench.load.run import LoadOptions
from bench.load.run import run as run_load

pytestmark = pytest.mark.e2e


@pytest.fixture
def data_dir(monkeypatch):
    """A folder the embedded PostgreSQL's own user can reach (pytest's tmp_path is private to
    root); the benchmark starts its own database, broker and NATS and must not see a session's."""
    for name in ("HOMECARE_DATABASE_URL", "HOMECARE_MQTT_URL", "HOMECARE_NATS_URL"):
        monkeypatch.delenv(name, raising=False)
    folder = Path(tempfile.mkdtemp(prefix="homecare-bench-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_the_load_benchmark_runs_end_to_end_on_twenty_devices(data_dir):
    options = LoadOptions(devices=20, duration_s=4, warmup_s=1, backlog_s=2, misbehaving=0.1, data_dir=data_dir,
                          between_s=0.5, settle_s=1)
    body = compose(run_load(options))
    assert body["devices"] == 20 and body["devices_total"] == 20
    assert body["steady"]["offered_samples_per_s"] > 0
    assert body["steady"]["platform_samples_per_s"] is not None
    assert body["samples_per_s"] and body["bare_pipe_samples_per_s"] and body["ratio"]
    assert body["machine"]["logical_cores"] >= 1 and body["machine"]["mosquitto"]
    assert set(body["steady"]["cpu_cores"]) >= {"gateway", "telemetry", "dispatch", "simulator_devices", "bare_pipe"}
    assert body["rejections"]["sent_by_label"], "two misbehaving devices sent something"
    assert set(body["targets"]) == {"devices >= 10000", "ratio >= 0.8", "press_to_ack_p99 < 250 ms",
                                    "probe press_to_ack_p99 < 250 ms"}
    # the bench's own button pressed in the window and was answered; the hops were read
    probe = body["probe_press_to_ack_ms"]
    assert body["probe_presses"] >= 1 and body["probe_unanswered"] < body["probe_presses"], probe
    assert set(body["hops_ms"]) == {"gateway_to_dispatch", "dispatch_to_broker", "total", "slowest"}, body["hops_ms"]
    slowest = body["hops_ms"]["slowest"]  # when the slowest presses were, beside the CPU series
    assert 1 <= len(slowest) <= 15 and all(s["at"] > 0 and s["gateway_to_dispatch"] >= 0 for s in slowest)
    series = body["steady"]["cpu_series"]
    assert series and {"t", "gateway", "dispatch", "postgres"} <= set(series[0]), series[:1]
    # dispatch's own figures of the window: the probe's presses waited in the log and were handled
    buttons = body["dispatch_consumers"]["dispatch-buttons"]
    assert buttons["wait_count"] >= 1 and buttons["handle_count"] >= 1, buttons
    assert buttons["wait_p99_ms_at_most"] is not None, buttons


def test_the_fault_benchmark_accounts_for_a_killed_service(data_dir):
    options = FaultOptions(devices=20, warmup_s=2, settle_s=1, faults=("telemetry",), data_dir=data_dir,
                           drain_quiet_s=3)
    body = run_faults(options)
    (fault,) = body["faults"]
    assert fault["fault"] == "telemetry" and fault["recovery_s"] is not None
    assert body["totals"]["sent_samples"] > 0
    assert body["totals"]["lost_samples"] == 0, body["faults"]
    assert body["durability_settings"]["mosquitto"]["autosave_interval"] == "5"
