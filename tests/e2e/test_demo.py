"""`homecare demo --duration N --check`: the whole network with simulated homes, headless."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def test_demo_check_passes_and_stops_cleanly(server_folder):
    # Its database runs as another user: a folder of its own (see the fixture).
    # Always the embedded path of `make demo`: no service URLs, its own database, broker and NATS.
    env = {k: v for k, v in os.environ.items()
           if k not in ("HOMECARE_DATABASE_URL", "HOMECARE_MQTT_URL", "HOMECARE_NATS_URL")}
    env.update(HOMECARE_DATA_DIR=str(server_folder), HOMECARE_LOG_JSON="true")
    result = subprocess.run(
        [sys.executable, "-m", "launch.cli", "demo", "--duration", "50", "--check", "--port", "0"],
        env=env, capture_output=True, text=True, timeout=240,
    )
    output = result.stderr[-4000:]
    assert result.returncode == 0, output
    assert "demo check passed" in result.stderr, output
    # Ctrl-C / the end of --duration leaves no broker, NATS server or database running behind it.
    leftovers = subprocess.run(["pgrep", "-f", str(server_folder)], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", f"processes left running: {leftovers.stdout}"
