"""`homecare simulate` as an operator runs it: a subprocess against the network in this process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devices.simulator.roster import Roster
from tests.e2e.conftest import admin, network  # noqa: F401  (fixtures)

pytestmark = pytest.mark.e2e

SCENARIO = """\
name: cli-test
homes: 3
providers: 2
speed: 60
start_time: "07:30"
press_rate: 4.0
seed: 5
connect_rate: 50
misbehaviour:
  share: 0.34
  kinds: {malformed: 1}
  break_rate: 1.0
"""


def _simulate(args: list[str], env_extra: dict[str, str], password: str, timeout: float = 90):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMECARE_")}
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-m", "launch.cli", "simulate", *args], input=password + "\n",
        capture_output=True, text=True, timeout=timeout, env=env, cwd=Path(__file__).parents[2],
    )


def test_a_short_run_prints_progress_and_exits_cleanly(network, admin, instance, tmp_path):  # noqa: F811
    scenario = tmp_path / "cli.yaml"
    scenario.write_text(SCENARIO)
    roster, report = tmp_path / "roster.json", tmp_path / "report.json"
    result = _simulate(
        [str(scenario), "--api-url", network.api_url, "--admin-user", f"admin-{instance}", "--duration", "8",
         "--interval", "1", "--roster", str(roster), "--report", str(report)],
        {"HOMECARE_MQTT_URL": network.broker_url, "HOMECARE_LOG_LEVEL": "WARNING"},
        f"pw-{instance}-admin",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(rows) >= 5, result.stdout
    final = rows[-1]
    assert final["final"] is True
    assert max(r["devices_connected"] for r in rows) == 6 and final["devices_total"] == 6
    assert final["samples_sent"] > 0 and final["messages_sent"] > final["samples_sent"] / 60
    assert any(r["messages_per_s"] > 0 for r in rows[1:])
    # Two of the six devices send nothing but broken messages, and are told why.
    assert sum(final["misbehaviour_sent"].values()) > 0
    assert set(final["misbehaviour_sent"]) <= {"malformed.json", "malformed.missing", "malformed.type"}
    assert final["errors_received"] > 0
    assert len(Roster.load(roster).residents) == 3
    body = json.loads(report.read_text())
    assert len(body["faults"]) == 2 and set(body["faults"].values()) == {"malformed"}
    assert body["stats"]["devices_connected"] == 0  # powered off at the end


def test_without_a_broker_it_says_what_to_set(tmp_path):
    result = _simulate(["--api-url", "http://127.0.0.1:9", "--duration", "1"], {}, "x", timeout=30)
    assert result.returncode == 2
    assert "HOMECARE_MQTT_URL" in result.stderr


def test_shards_need_a_roster(tmp_path):
    result = _simulate(["--shard", "1/2", "--duration", "1"], {"HOMECARE_MQTT_URL": "mqtt://127.0.0.1:9"}, "x",
                       timeout=30)
    assert result.returncode == 2
    assert "--roster" in result.stderr
