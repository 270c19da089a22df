"""The device-health page: a district's devices with their connection, battery, last self-test and
open faults, faults first; asking a device for a self-test from it; who may see it; hostile input."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from homecare.internal import DeviceEvent
from services.dispatch.store import outbox
from services.telemetry.domain.rules.limits import RuleLimits
from services.telemetry.usecases import event_rules
from services.telemetry.usecases.context import Alerting

from .conftest import csrf_in, sign_in
from .dispatching import new_resident
from .vitals import provision


def _selftest(pool, device: str, resident: str, kind: str, at: datetime, result: str, **checks: bool) -> None:
    event = DeviceEvent(device_id=device, device_kind=kind, resident_id=resident, event_id=uuid.uuid4().hex,
                        ts=at, type="device.selftest", received_at=at, result=result, checks=checks)
    with pool.connection() as conn, conn.transaction():
        event_rules.on_selftest(conn, Alerting(), event)


def _seen(pool, device: str, fw: str, battery: float | None = None) -> None:
    with pool.connection() as conn:
        conn.execute("UPDATE gateway.devices SET state = 'online', online = true, last_seen = now(), fw = %s,"
                     " battery = %s WHERE id = %s", (fw, battery, device))


def _district(pool) -> dict[str, str]:
    """Five devices of three residents: a passing button, a failing one, a bed that missed two
    self-tests, a bed on older firmware, a button never connected; and a neighbour elsewhere."""
    name = f"Device district {uuid.uuid4().hex[:8]}"
    ann = new_resident(pool, f"Ann {name[-8:]}", district=name,
                       contacts=[{"name": "Bo", "phone": "+86 138 0000 0000", "relation": "son"}])[0]
    cai = new_resident(pool, f"Cai {name[-8:]}", district=name)[0]
    new_resident(pool, f"Dai {name[-8:]}", district=name)  # no device at all
    neighbour = new_resident(pool, "Neighbour", district=f"{name} next door")[0]
    now = datetime.now(UTC)
    d = {"district": name, "ann": ann,
         "passing": provision(pool, ann, "button"), "failing": provision(pool, ann, "button"),
         "missing": provision(pool, cai, "bed"), "older": provision(pool, cai, "bed"),
         "boxed": provision(pool, cai, "button"), "neighbour": provision(pool, neighbour, "button")}
    for key in ("passing", "failing", "missing", "older", "neighbour"):
        _seen(pool, d[key], "1.0.3" if key == "older" else "1.1.0", 0.15 if key == "failing" else 0.9)
    _selftest(pool, d["passing"], ann, "button", now - timedelta(hours=3), "pass", button=True, speaker=True)
    _selftest(pool, d["failing"], ann, "button", now - timedelta(hours=1), "fail", button=True, speaker=False)
    _selftest(pool, d["missing"], cai, "bed", now - timedelta(hours=60), "pass", pressure=True)
    with pool.connection() as conn, conn.transaction():  # the deadlines at 26 and 50 h have passed
        event_rules.run_due(conn, Alerting(), now, lambda conn, resident: RuleLimits())
    return d


def _rows(html: str) -> list[tuple[str, str, str]]:
    return re.findall(r'<tr class="device-row" data-device="([^"]+)" data-selftest="([^"]+)" data-faults="(\d+)"',
                      html)


def test_the_page_shows_each_device_with_its_self_test_and_faults_faults_first(pool, signed_in):
    d = _district(pool)

    page = signed_in.get("/devices/health", params={"district": d["district"]})

    assert page.status_code == 200
    assert _rows(page.text) == [
        (d["failing"], "failed", "1"), (d["missing"], "missed", "1"),
        (d["boxed"], "never_connected", "0"), (d["older"], "older_firmware", "0"), (d["passing"], "passed", "0"),
    ]
    html = page.text
    assert d["neighbour"] not in html and "Neighbour" not in html
    failing = html.split(f'data-device="{d["failing"]}"', 1)[1].split("</tr>", 1)[0]
    assert "failed: speaker" in failing and "Self-test failed" in failing and 'class="low">15 %' in failing
    missing = html.split(f'data-device="{d["missing"]}"', 1)[1].split("</tr>", 1)[0]
    assert "2 missed in a row" in missing and "Self-test missed" in missing
    older = html.split(f'data-device="{d["older"]}"', 1)[1].split("</tr>", 1)[0]
    assert "No self-test (older firmware)" in older and "fw 1.0.3" in older and "pill-sev" not in older
    boxed = html.split(f'data-device="{d["boxed"]}"', 1)[1].split("</tr>", 1)[0]
    assert "Never connected" in boxed and "Ask for a self-test" not in boxed  # nothing to ask yet
    assert re.search(r'<span><b>5</b> devices</span><span><b>2</b> with open faults</span>', html)
    assert "Dai " in html.split('id="without-device"', 1)[1]
    assert 'aria-current="page">Devices</a>' in html

    only = signed_in.get("/devices/health", params={"district": d["district"], "faults": "1"})
    assert [row[0] for row in _rows(only.text)] == [d["failing"], d["missing"]]


def test_a_fault_links_to_its_alert_with_the_residents_contacts_at_hand(pool, signed_in):
    d = _district(pool)
    html = signed_in.get("/devices/health", params={"district": d["district"]}).text
    failing = html.split(f'data-device="{d["failing"]}"', 1)[1].split("</tr>", 1)[0]
    [alert_id] = re.findall(r'href="/alerts/([^"]+)"', failing)

    alert = signed_in.get(f"/alerts/{alert_id}")

    assert alert.status_code == 200 and "Self-test failed" in alert.text
    contacts = alert.text.split('id="alert-contacts"', 1)[1].split("</ul>", 1)[0]
    assert "Bo" in contacts and 'href="tel:+8613800000000"' in contacts


def test_a_dispatcher_asks_a_device_for_a_self_test_from_the_page(pool, signed_in):
    d = _district(pool)
    back = f"/devices/health?district={d['district']}"
    token = csrf_in(signed_in.get(back).text)

    asked = signed_in.post(f"/devices/{d['older']}/selftest", data={"csrf_token": token, "back": back},
                           follow_redirects=False)

    assert asked.status_code == 303 and asked.headers["location"].startswith("/devices/health?district=")
    with pool.connection() as conn:
        [command] = outbox.for_device(conn, d["older"])
    assert command["payload"]["type"] == "selftest.request" and command["state"] == "queued"
    shown = signed_in.get(asked.headers["location"])
    assert f"Asked {d['older']} for a self-test ({command['command_id']})" in shown.text
    unknown = signed_in.post("/devices/btn-nobody-here/selftest", data={"csrf_token": token}, follow_redirects=False)
    assert unknown.status_code == 303
    assert "not found" in signed_in.get(unknown.headers["location"]).text
    no_token = signed_in.post(f"/devices/{d['older']}/selftest", data={}, follow_redirects=False)
    assert no_token.status_code == 403


@pytest.mark.parametrize("query", ["district=bad%00name", "district=%00", "district=" + "x" * 5000,
                                   "district=%3Cscript%3E&faults=%00"])
def test_hostile_input_is_refused_or_unknown_never_an_error(signed_in, query):
    page = signed_in.get(f"/devices/health?{query}")

    assert 400 <= page.status_code < 500 and "<script>" not in page.text


def test_without_a_district_the_page_offers_the_districts(pool, signed_in):
    d = _district(pool)

    page = signed_in.get("/devices/health")

    assert page.status_code == 200 and f'data-district="{d["district"]}"' in page.text and not _rows(page.text)


def test_a_provider_gets_403_and_a_stranger_is_sent_to_sign_in(pool, client, provider_user):
    d = _district(pool)
    assert client.get("/devices/health", params={"district": d["district"]}).status_code == 303
    sign_in(client, provider_user)

    page = client.get("/devices/health", params={"district": d["district"]})

    assert page.status_code == 403 and d["failing"] not in page.text
