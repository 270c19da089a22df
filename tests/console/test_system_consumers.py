"""A stuck consumer of the internal log, for real: a handler that blocks holds a press past its
consumer's limit; the console's API reports it stuck with its age, every staff page shows the
banner, the incident is recorded (once, however many consoles watch), and it clears on recovery.
Also a consumer no replica runs: its backlog ages just the same."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from console.consumer_watch import ConsumerWatch
from console.settings import ConsoleSettings
from homecare.auth import Role
from homecare.log import Consumer
from homecare.settings import Settings
from tests.support import wait_for

from .conftest import SECRET, make_user, sign_in
from .stalling import LIMIT_S, Blocking, intake_spec, tap  # noqa: F401  (fixture)

_BANNER = re.compile(r'<div class="system-banner" id="system-banner"[^>]*>')


@pytest.fixture
def console(pool):
    """The console, checking the consumers every 0.3 s."""
    from console.bootstrap import build

    component = build(Settings(secret_key=SECRET, environment="development"), pool,
                      ConsoleSettings(heartbeat_s=0.5, coalesce_s=0.05, consumer_check_s=0.3))
    component.start()
    yield component
    component.stop()


def consumers(client) -> dict:
    answer = client.get("/api/v1/system/consumers")
    assert answer.status_code == 200, answer.text
    return answer.json()


def consumer_of(client, name: str) -> dict | None:
    return next((c for c in consumers(client)["consumers"] if c["consumer"] == name), None)


def incidents(client) -> list[dict]:
    answer = client.get("/api/v1/system/incidents")
    assert answer.status_code == 200, answer.text
    return answer.json()


def banner(html: str) -> tuple[bool, str]:
    """(shown, its text) of a page's system banner."""
    match = _BANNER.search(html)
    assert match, "no system banner on the page"
    end = html.index("</div>\n", match.end())
    return " hidden" not in match.group(0), html[match.end():end]


def test_a_stuck_consumer_is_reported_shown_recorded_and_cleared(pool, console, client, signed_in, tap):  # noqa: F811
    handler = Blocking()
    consumer = Consumer(tap.log, intake_spec(tap), handler, monitor_s=0.2)
    consumer.start()
    try:
        press = b'{"event_id": "e-stuck", "type": "button.pressed"}'
        tap.publish(tap.subjects.event("button.pressed", "btn-stuck"), press)

        # The API: stuck, with how long the press has waited, and since when.
        row = wait_for(lambda: (c := consumer_of(signed_in, "intake-under-test")) and c["stuck"] and c,
                       15, 0.1, "the consumer reported stuck")
        assert row["title"] == "Button presses" and row["stream"] == "EVENTS"
        assert row["stuck_after_s"] == LIMIT_S
        assert row["oldest_unacked_s"] > LIMIT_S
        assert row["ack_pending"] == 1 and row["lag"] == 0  # delivered, held by the handler
        listing = consumers(signed_in)
        stuck_since = datetime.fromisoformat(row["stuck_since"])
        assert stuck_since <= datetime.fromisoformat(listing["checked_at"])
        assert any(n.startswith("Button presses are delayed: intake-under-test has a message waiting")
                   for n in listing["notices"])
        # The runtime of the replica holding it agrees: not ready.
        wait_for(lambda: not consumer.ready(), 5, what="the replica not ready")

        # The banner on a dispatcher's pages.
        for page in ("/", "/alerts", "/system"):
            html = signed_in.get(page).text
            shown, text = banner(html)
            assert shown and "Button presses are delayed: intake-under-test has a message waiting" in text, page
        system = signed_in.get("/system").text
        assert 'data-consumer="intake-under-test" class="is-stuck"' in system

        # Recorded, once: a second console replica sees the same and records nothing more.
        open_ = [i for i in incidents(signed_in) if i["consumer"] == "intake-under-test"]
        assert len(open_) == 1 and open_[0]["cleared_at"] is None and open_[0]["duration_s"] is None
        assert abs((datetime.fromisoformat(open_[0]["raised_at"]) - stuck_since).total_seconds()) < 0.01
        ConsumerWatch(console.log, pool, 0.3).check()
        assert len([i for i in incidents(signed_in) if i["consumer"] == "intake-under-test"]) == 1

        # Recovery: the press is handled and acknowledged; the alert clears.
        handler.release.set()
        wait_for(lambda: (c := consumer_of(signed_in, "intake-under-test")) and not c["stuck"], 15, 0.1,
                 "the consumer reported keeping up")
        assert handler.handled == [press]
        row = consumer_of(signed_in, "intake-under-test")
        assert row["oldest_unacked_s"] == 0 and row["ack_pending"] == 0 and row["stuck_since"] is None
        assert not [n for n in consumers(signed_in)["notices"] if "are delayed" in n]
        shown, text = banner(signed_in.get("/").text)
        assert "are delayed" not in text
        # Nothing else to say, unless the database's policy jobs fail (TimescaleDB on a server whose
        # background workers cannot run them, as CI's: the banner says that too, and rightly).
        assert not shown or text.count("Database upkeep needs an administrator") == text.count("<p>")

        # The morning shift sees when and for how long.
        done = wait_for(lambda: [i for i in incidents(signed_in)
                                 if i["consumer"] == "intake-under-test" and i["cleared_at"]], 5, 0.1, "cleared")
        assert len(done) == 1
        incident = done[0]
        assert incident["title"] == "Button presses" and incident["stuck_after_s"] == LIMIT_S
        assert incident["peak_age_s"] > LIMIT_S and incident["duration_s"] > 0
        assert datetime.fromisoformat(incident["cleared_at"]) > datetime.fromisoformat(incident["raised_at"])
        system = signed_in.get("/system").text
        assert f'data-incident="{incident["id"]}"' in system and "Still stuck" not in system
    finally:
        handler.release.set()
        consumer.stop()


def test_a_consumer_no_replica_runs_ages_its_backlog(console, client, signed_in, tap):  # noqa: F811
    consumer = Consumer(tap.log, intake_spec(tap), Blocking(), monitor_s=0.2)
    consumer.start()  # the durable consumer exists on the server, as a deployed service's does
    consumer.stop()
    tap.publish(tap.subjects.event("button.pressed", "btn-nobody"), b'{"event_id": "e-nobody"}')
    row = wait_for(lambda: (c := consumer_of(signed_in, "intake-under-test")) and c["stuck"] and c,
                   15, 0.1, "the consumer reported stuck")
    assert row["lag"] == 1 and row["ack_pending"] == 0 and row["oldest_unacked_s"] > LIMIT_S


def test_a_provider_sees_no_banner_and_may_not_read_the_system(pool, console, client, tap):  # noqa: F811
    username = make_user(pool, Role.PROVIDER, provider_id="prov-system")
    assert sign_in(client, username, next="/provider").status_code == 303
    assert "system-banner" not in client.get("/provider").text
    assert client.get("/api/v1/system/consumers").status_code == 403
    assert client.get("/api/v1/system/incidents").status_code == 403
    assert client.get("/system").status_code == 403


@pytest.mark.parametrize("query", ["limit=0", "limit=-1", "limit=501", "limit=abc", "before=0", "before=-5",
                                   "before=99999999999999999999999", "before=%00", "limit=1e3"])
def test_hostile_paging_is_refused(signed_in, query):
    assert signed_in.get(f"/api/v1/system/incidents?{query}").status_code == 422
    assert signed_in.get(f"/system?{query}").status_code in (200, 422)  # the page ignores `limit`


def test_the_log_away_is_said_not_hidden(console, client, signed_in):
    assert consumers(signed_in)["checked_at"]  # checked while the log answers
    console.log.stop()
    wait_for(lambda: signed_in.get("/api/v1/system/consumers").status_code == 503, 10, 0.2, "503")
    shown, text = banner(signed_in.get("/").text)
    assert shown and "Delays cannot be checked: the console does not reach the internal log." in text
    page = signed_in.get("/system")
    assert page.status_code == 503 and "cannot be checked" in page.text
