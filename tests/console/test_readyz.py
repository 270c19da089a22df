"""`homecare console` builds every component for its routes but runs only the console: /readyz
checks what runs here (it was always 503, waiting on broker links nobody starts)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from homecare.settings import Settings
from launch import assemble
from tests.support import wait_for

from .conftest import SECRET


def test_the_console_alone_is_ready_when_its_listener_and_log_are_up(pool, broker_url):
    # The broker URL only because the other components are built (never started) here.
    settings = Settings(secret_key=SECRET, environment="development", mqtt_url=broker_url)
    components = [assemble.build_component(n, settings, pool) for n in assemble.BUILDERS]
    console = next(c for c in components if c.name == "console")
    app = assemble.http_app("homecare console", pool, components, True, [console])
    with TestClient(app) as client:
        before = client.get("/readyz")
        assert before.status_code == 503 and before.json()["checks"]["console.listener"] is False
        assert before.json()["checks"]["console.log"] is False
        console.start()
        try:
            wait_for(lambda: client.get("/readyz").status_code == 200, timeout=15, what="the console ready")
            assert set(client.get("/readyz").json()["checks"]) == {"database", "console.listener", "console.log"}
        finally:
            console.stop()
