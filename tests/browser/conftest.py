"""Browser tests: the whole network in this process (tests/e2e's `network`), driven through the
console in Debian's headless Chromium by Playwright. Screenshots go to $HOMECARE_SCREENSHOTS
(`docs/screenshots` for the README) or, by default, to the test's temporary folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from launch import embedded
from tests.e2e.conftest import Api, admin, network  # noqa: F401  (fixtures reused as they are)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
TIMEZONE = "Asia/Shanghai"  # where the simulated homes are


@pytest.fixture
def broker_url(monkeypatch) -> Iterator[str]:
    """A broker of each test's own. The components keep persistent sessions in shared
    subscription groups, so a network stopped by an earlier test would still be handed its share
    of this test's messages by a broker they shared."""
    broker = embedded.start_broker(os.environ.get("HOMECARE_EMBEDDED_BROKER", "auto"))
    if broker.name == "amqtt":  # amqtt has no shared subscriptions; components read this
        monkeypatch.setenv("HOMECARE_MQTT_SHARED_SUBSCRIPTIONS", "false")
    yield broker.url
    broker.stop()


@pytest.fixture(scope="module")  # module: Playwright leaves an event loop running in this thread until it stops
def browser():
    """Debian's Chromium (Playwright's own browser download does not work here)."""
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory) -> Path:
    """Where screenshots are saved."""
    wanted = os.environ.get("HOMECARE_SCREENSHOTS")
    folder = Path(wanted) if wanted else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _context(browser, network, **options):
    context = browser.new_context(base_url=network.api_url, timezone_id=TIMEZONE, locale="en-GB", **options)
    context.set_default_timeout(10_000)
    return context


@pytest.fixture
def laptop(browser, network) -> Iterator:
    """A page in a 1366x768 window."""
    context = _context(browser, network, viewport=LAPTOP)
    yield context.new_page()
    context.close()


@pytest.fixture
def phone(browser, network) -> Iterator:
    """A page on a 390x844 phone screen (touch, mobile viewport, 2x pixels)."""
    context = _context(browser, network, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    yield context.new_page()
    context.close()


def sign_in(page, username: str, password: str) -> None:
    """Through the sign-in form, as a person would."""
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


def no_horizontal_scroll(page) -> bool:
    """The page fits its window's width."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def shoot(page, shots: Path, name: str, full_page: bool = False) -> Path:
    """Save a screenshot (after fonts and the countdowns have settled)."""
    page.wait_for_timeout(300)
    path = shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 10_000, f"{name}: an empty screenshot"
    return path


__all__ = ["Api", "admin", "network", "no_horizontal_scroll", "shoot", "sign_in"]
