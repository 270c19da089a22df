"""/metrics on the console's port is for admins; components' own ports stay open (issue 12)."""

from __future__ import annotations

from types import SimpleNamespace

from fastapi.testclient import TestClient

from homecare.api.app import build_app


def test_metrics_on_the_console_port_need_an_admin(client, admin, dispatcher):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=dispatcher).status_code == 403
    r = client.get("/metrics", headers=admin)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")


def test_metrics_of_a_component_port_stay_open(pool):
    with TestClient(build_app("gateway", pool)) as c:
        assert c.get("/metrics").status_code == 200


def test_a_setting_opens_them_on_the_console_port(pool, monkeypatch):
    from console.bootstrap import ConsoleComponent

    monkeypatch.setenv("HOMECARE_API_METRICS_PUBLIC", "true")
    other = build_app("console", pool)
    ConsoleComponent.mount(SimpleNamespace(ctx=SimpleNamespace(csrf=None)), other)  # as http_app does
    with TestClient(other) as c:
        assert c.get("/metrics").status_code == 200
