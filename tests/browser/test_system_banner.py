"""The system banner in a real browser: a dispatcher's board, left open, shows that button presses
are delayed while a consumer of the internal log is stuck, and stops showing it once it keeps up;
no reload (the page asks the API again by itself)."""

from __future__ import annotations

import pytest

from homecare.log import Consumer
from tests.console.stalling import Blocking, intake_spec, tap  # noqa: F401  (fixture)

from .conftest import shoot, sign_in


@pytest.fixture
def fast_watch(monkeypatch):
    """The console checks the consumers twice a second and open pages ask every second."""
    monkeypatch.setenv("HOMECARE_CONSOLE_CONSUMER_CHECK_S", "0.5")
    monkeypatch.setenv("HOMECARE_CONSOLE_BANNER_REFRESH_S", "1")


def test_an_open_board_shows_and_clears_the_delay(fast_watch, laptop, network, admin, instance, tap, shots):  # noqa: F811
    page = laptop
    username, password = f"night-{instance}", "a dispatcher's long password"
    admin.call("POST", "/api/v1/users", 201, json={"username": username, "password": password, "role": "city"})
    sign_in(page, username, password)
    assert page.is_hidden("#system-banner")

    handler = Blocking()
    consumer = Consumer(tap.log, intake_spec(tap), handler, monitor_s=0.2)
    consumer.start()
    try:
        tap.publish(tap.subjects.event("button.pressed", "btn-night"), b'{"event_id": "e-night"}')
        page.wait_for_selector("#system-banner:not([hidden]) p:has-text('Button presses are delayed')")
        assert "intake-under-test has a message waiting" in page.inner_text("#system-banner")
        shoot(page, shots, "system-banner")
        page.click("#system-banner a")
        page.wait_for_selector('tr[data-consumer="intake-under-test"].is-stuck')
        page.wait_for_selector('#incidents tr.is-stuck:has-text("Button presses")')
        shoot(page, shots, "system", full_page=True)
        page.goto("/")

        handler.release.set()
        page.wait_for_selector("#system-banner[hidden]", state="attached")
        assert page.is_hidden("#system-banner")
    finally:
        handler.release.set()
        consumer.stop()
