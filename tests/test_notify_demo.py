"""The demo's notifications: a local SMTP sink that shows each mail, and simulated homes with a
family contact who has an e-mail address and agreed to be told."""

from __future__ import annotations

import threading

from devices.simulator.population import residents
from devices.simulator.provisioning import resident_body
from homecare.notify.channels import EmailChannel
from homecare.notify.model import Notice
from homecare.residents.store import NewResident
from launch.embedded import start_mail_sink


def test_the_mail_sink_takes_a_real_smtp_mail_and_shows_it():
    shown: list[str] = []
    got = threading.Event()
    sink = start_mail_sink(lambda text: (shown.append(text), got.set()))
    assert sink is not None
    try:
        notice = Notice("alert.raised", "al-1", "critical", "alert", "res-1", "Suspected fall",
                        "A fall suspected in the bedroom; the resident cannot call with the button right now.",
                        resident_name="Wang Fang 王芳", link="http://console/alerts/al-1")
        EmailChannel(sink.url, "homecare@demo").send("kid@family.example", notice)
        assert got.wait(10)
    finally:
        sink.stop()
    assert "mail to kid@family.example: [CRITICAL] Suspected fall" in shown[0]
    assert "Wang Fang 王芳" in shown[0]  # decoded as the family reads it, not quoted-printable
    assert "cannot call with the button right now" in shown[0] and "=\n" not in shown[0]


def test_some_simulated_residents_have_a_consenting_family_contact_with_an_email():
    plans = residents(10, seed=7)
    with_email = [p for p in plans if any(c.email and c.notify for c in p.contacts)]
    assert 0 < len(with_email) < len(plans)
    for plan in plans:  # what the simulator enrols passes the API's validation
        NewResident.model_validate(resident_body(plan))
    body = resident_body(with_email[0])
    assert any(c.get("notify") is True and "@" in c.get("email", "") for c in body["contacts"])
