"""The console in a real browser: sign in, a press on the live board, assignment by hand, the
timeline, the resident chart, and a provider accepting an offer on a phone. Screenshots of the
main pages are saved on the way."""

from __future__ import annotations

import itertools
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlparse

import pytest

from homecare.topics import DeviceChannel
from tests.support import now_ts, wait_for

from . import city as c
from .conftest import no_horizontal_scroll, shoot, sign_in

pytestmark = pytest.mark.browser


_OFFSETS = itertools.count(0, 5)  # each test its own residents and carers


@pytest.fixture
def town(admin, instance):
    """Five homes, three carers on shift and one off; everyone off shift afterwards."""
    town = c.build(admin, instance, next(_OFFSETS))
    town.hire(0, ["emergency", "meal", "mobility"], 31.2410, 121.4300)
    town.hire(1, ["emergency", "escort", "mobility"], 31.2330, 121.4480)
    town.hire(2, ["meal", "escort"], 31.2460, 121.4230)
    town.hire(3, ["bathing", "meal"], 31.2370, 121.4410, on_shift=False)
    yield town
    town.off_shift()


def test_sign_in_shows_the_live_board(laptop, town, shots):
    page = laptop
    dispatcher = town.account("dispatcher")

    page.goto("/")
    assert "/login" in page.url  # not signed in: sent to sign in first
    shoot(page, shots, "login")
    sign_in(page, dispatcher, c.PASSWORD)

    assert urlparse(page.url).path == "/"  # the board
    page.wait_for_selector('#live[data-state="live"]')
    assert page.inner_text(".username").startswith(dispatcher)
    assert no_horizontal_scroll(page)


def test_a_press_appears_live_and_the_dispatcher_assigns_it(laptop, town, network, shots):
    page = laptop
    first, second, third, fourth, fifth = town.people
    meal = town.phone_in(second, "meal", "Lunch was not delivered")
    town.phone_in(third, "escort", "Hospital appointment at 10:00")
    town.admin.call("POST", f"/api/v1/requests/{meal['id']}/assign",
                    json={"provider_id": town.providers[town.carer(2)]["id"]})
    town.phone_in(fifth, "mobility")
    gone = town.phone_in(fourth, "bathing")
    town.admin.call("POST", f"/api/v1/requests/{gone['id']}/cancel", json={"reason": "her daughter came"})
    bed = town.connect(network.broker_url, fourth, "bed")
    bed.publish(DeviceChannel.EVENTS, {"event_id": str(uuid.uuid4()), "ts": now_ts(), "type": "fall.suspected",
                                       "confidence": 0.81})
    bed.close()
    sign_in(page, town.account("dispatcher"), c.PASSWORD)
    page.wait_for_selector('#live[data-state="live"]')
    page.evaluate("window.__sameDocument = 'yes'")  # gone if the page reloads
    page.wait_for_selector(f'#alerts li[data-alert]:has-text("{fourth}")')
    button = town.connect(network.broker_url, first, "button")
    try:
        pressed = time.monotonic()
        button.press("emergency")
        row = page.wait_for_selector(f'#active tr.request:has-text("{first}")', timeout=2000)
        seen_after = time.monotonic() - pressed
        assert seen_after < 2.0
        assert page.evaluate("window.__sameDocument") == "yes"  # no reload
        assert "alarm" in row.get_attribute("class")  # an emergency nobody has taken flashes
        assert int(page.get_attribute("body", "data-alarms") or 0) >= 1  # and sounded
        request_id = row.get_attribute("data-id")
        shoot(page, shots, "board")

        row.click()
        page.wait_for_url(f"**/requests/{request_id}")
        page.wait_for_selector("#candidates")
        chosen = town.carer(1)
        page.click(f'[data-assign="{town.providers[chosen]["id"]}"]')
        page.wait_for_selector("#flash.flash-ok")
        assert f"Assigned to {chosen}" in page.inner_text("#flash")
        page.wait_for_selector(f'.tl[data-kind="assigned"]:has-text("{chosen}")')
        assert "Reassign" in page.inner_text("#candidates")
        assert no_horizontal_scroll(page)
        shoot(page, shots, "request")

        assigned = button.next_command(timeout=10)
        while assigned["type"] != "request.assigned":
            assigned = button.next_command(timeout=10)
        assert assigned["provider"] == chosen and assigned["request_id"] == request_id
    finally:
        button.close()


def test_the_other_dispatcher_pages_at_laptop_size(laptop, town, network, shots):
    page = laptop
    first, second, third, fourth, fifth = town.people
    bed = town.connect(network.broker_url, fourth, "bed")
    try:
        bed.publish(DeviceChannel.EVENTS, {"event_id": str(uuid.uuid4()), "ts": now_ts(), "type": "fall.suspected",
                                           "confidence": 0.92})
        town.phone_in(second, "bathing", "Needs help with a shower")
        town.phone_in(first, "meal")
        sign_in(page, town.account("dispatcher"), c.PASSWORD)
        page.wait_for_selector(f'#alerts li[data-alert]:has-text("{fourth}")')

        for path, name, ready in [
            ("/alerts", "alerts", f'li.alert-card:has-text("{fourth}")'),
            ("/providers", "providers", "svg.schematic"),
            ("/reports", "reports", "#volume-chart"),
            (f"/beds?district={quote(town.resident(fourth)['district'])}", "beds",
             f'tr.bed-row[data-bed="{town.device(fourth, "bed")["id"]}"]'),
            (f"/devices/health?district={quote(town.resident(fourth)['district'])}", "device-health",
             f'tr.device-row[data-device="{town.device(fourth, "bed")["id"]}"]'),
        ]:
            page.goto(path)
            page.wait_for_selector(ready)
            assert no_horizontal_scroll(page), path
            shoot(page, shots, name)
            if name == "providers":
                assert int(page.get_attribute("svg.schematic", "data-providers")) >= 3

        # Phone intake: find the caller, choose the service, open the request.
        page.goto("/intake")
        page.fill("#q", fifth.split()[0])
        page.press("#q", "Enter")
        page.click(f'[data-choose="{town.resident(fifth)["id"]}"]')
        page.check('input[name="service"][value="meal"]')
        page.fill("#intake-note", "Her son calls: no food in the house")
        shoot(page, shots, "intake")
        page.click(".intake-form button[type=submit]")
        page.wait_for_url(re.compile(r".*/requests/r-[0-9a-f]+"))
        assert "Meal" in page.inner_text("h1") and fifth in page.inner_text("h1")
        assert "no food in the house" in page.inner_text("#timeline")

        # The alert: acknowledge it, then resolve it with a note.
        page.goto("/alerts")
        card = f'li.alert-card:has-text("{fourth}")'
        page.click(f'{card} [data-action="acknowledge"]')
        page.wait_for_selector(f"{card}.state-acknowledged")
        page.fill(f'{card} input[name="note"]', "Called her: she slipped, no injury; daughter on the way")
        page.click(f'{card} [data-action="resolve"]')
        page.wait_for_selector("#flash.flash-ok")
        assert page.locator(card).count() == 0
    finally:
        bed.close()


def test_the_resident_chart_draws_the_beds_week(laptop, town, network, admin, shots):
    page = laptop
    name = town.people[0]
    bed = town.connect(network.broker_url, name, "bed")
    try:
        sent = c.bed_history(bed)
    finally:
        bed.close()
    bed_id = town.device(name, "bed")["id"]
    start = (datetime.now(UTC) - timedelta(days=7)).isoformat()

    def rolled_up():
        points = admin.call("GET", f"/api/v1/devices/{bed_id}/vitals",
                            params={"resolution": "1h", "start": start, "end": datetime.now(UTC).isoformat()})["points"]
        return sum(p["samples"] for p in points) >= sent

    wait_for(rolled_up, timeout=60, interval=0.5, what="a week of samples in the hourly rollup")
    town.phone_in(name, "meal")
    sign_in(page, town.account("dispatcher"), c.PASSWORD)
    page.goto(f"/residents/{town.resident(name)['id']}")

    day = page.locator('figure.chart[data-range="24h"] svg.vitals')
    assert int(day.get_attribute("data-points")) > 1000
    heart = page.locator('figure.chart[data-range="24h"] .panel-heart_rate path.line').get_attribute("d")
    assert heart.count(" L") > 300  # a drawn line, not an empty path
    assert page.locator('figure.chart[data-range="24h"] rect.bed-period').count() >= 1
    box = day.bounding_box()
    assert box and box["width"] > 500 and box["height"] > 150  # visible, not collapsed
    assert no_horizontal_scroll(page)
    shoot(page, shots, "resident", full_page=True)

    page.click('label[for$="-7d"]')
    week = page.locator('figure.chart[data-range="7d"] svg.vitals')
    assert week.is_visible() and int(week.get_attribute("data-points")) >= 150
    assert page.locator('figure.chart[data-range="7d"] rect.bed-period').count() >= 6  # a night each day
    shoot(page, shots, "resident-week")


def test_a_provider_accepts_an_offer_on_its_phone(phone, town, network, shots):
    page = phone
    resident = town.people[3]
    town.hire(4, ["bathing"], 31.2350, 121.4521)  # next door
    hired = _last_seen(town, town.carer(4))  # registered on shift: its first sign of life
    sign_in(page, town.account("provider", provider=town.carer(4)), c.PASSWORD)
    assert page.url.endswith("/provider")
    page.wait_for_selector('body[data-live="open"]')
    # The page's script sends the app's heartbeat as it loads (and every 30 s).
    wait_for(lambda: _last_seen(town, town.carer(4)) > hired, timeout=10, what="the page's heartbeat")
    button = town.connect(network.broker_url, resident, "button")
    try:
        button.press("bathing")
        # An earlier test's bathing request still waits, escalated, and the ladder goes on offering
        # it: a provider coming on shift may be offered that one first. She declines it.
        card = f'.offer-card:has-text("{resident}")'
        for _ in range(5):
            page.wait_for_selector("[data-accept]", timeout=10_000)  # arrives without a reload
            if page.query_selector(card):
                break
            page.click(".offer-card [data-decline]")
            page.wait_for_timeout(500)
        offer = page.wait_for_selector(f"{card} [data-accept]", timeout=10_000)
        assert resident in page.inner_text(card)
        assert no_horizontal_scroll(page)
        shoot(page, shots, "provider-offer")

        offer.click()
        page.wait_for_selector('[data-step="arrived"]')
        assert "Accepted" in page.inner_text("#flash")
        assert no_horizontal_scroll(page)
        shoot(page, shots, "provider-job")

        wait_for(lambda: _got(button, "request.assigned"), timeout=10, what="the button told who comes")
        page.click('[data-step="arrived"]')
        page.click('[data-step="complete"]')
        page.wait_for_selector('.empty:has-text("No jobs in hand")')
        wait_for(lambda: _got(button, "request.completed"), timeout=10, what="the button's light off")
    finally:
        button.close()


def _last_seen(town, name: str) -> str:
    rows = town.admin.call("GET", "/api/v1/providers", 200)
    return next(p for p in rows if p["id"] == town.providers[name]["id"])["last_seen_at"]


def _got(device, kind: str) -> bool:
    while not device.commands.empty():
        if device.commands.get_nowait()["type"] == kind:
            return True
    return False
