"""Notifications on real channels: a real SMTP server (aiosmtpd) and a real HTTP receiver that
checks the webhook's signature, on the session's PostgreSQL. Dispatch's escalated requests and
telemetry's alerts go through their outboxes and the one sender; every result is on the
request's or alert's timeline."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from homecare.contract.models import Service
from homecare.notify.channels import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookChannel, sign, verify
from homecare.notify.model import Notice, Reannounce
from homecare.notify.settings import NotifySettings
from homecare.residents import store as residents
from services.dispatch.store import notices as dispatch_notices
from services.dispatch.store import timeline
from services.dispatch.usecases import intake, offering
from services.dispatch.usecases.context import Dispatch
from services.dispatch.workers.notices import sender as dispatch_sender
from services.telemetry import alert_queries
from services.telemetry.domain.rules.model import Finding, Rule, Severity
from services.telemetry.store import alerts as alert_store
from services.telemetry.usecases import alert_actions
from services.telemetry.usecases.context import Alerting
from services.telemetry.workers.notices import sender as telemetry_sender

SECRET = "a shared secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mailbox:
    """aiosmtpd's handler: keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], object]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"

    def to(self, address: str) -> list:
        return [m for rcpt, m in self.messages if address in rcpt]


@pytest.fixture
def smtp():
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield box, f"smtp://127.0.0.1:{controller.port}"
    controller.stop()


class Receiver:
    """A paging gateway: verifies each request's signature and timestamp; answers 503 to the
    first `fail` genuine ones."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.accepted: list[dict] = []
        self.refused: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                why = verify(SECRET, self.headers.get(TIMESTAMP_HEADER), self.headers.get(SIGNATURE_HEADER), body)
                if why:
                    receiver.refused.append(why)
                    self.send_response(401)
                elif receiver.fail > 0:
                    receiver.fail -= 1
                    self.send_response(503)
                else:
                    receiver.accepted.append(json.loads(body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/page"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(fail: int = 0) -> Receiver:
        made.append(Receiver(fail))
        return made[-1]

    yield make
    for r in made:
        r.stop()


def enrol(pool, district: str) -> str:
    body = residents.NewResident(
        name="Zhang Min", address="2 Test Road", district=district, location={"lat": 31.2, "lon": 121.4},
        contacts=[{"name": "Daughter", "email": "daughter@example.org", "phone": "+8613900000001", "notify": True},
                  {"name": "Neighbour", "email": "neighbour@example.org", "phone": "+8613900000002"}],
    )
    with pool.connection() as conn:
        return residents.enrol(conn, body).id


def escalated_emergency(pool, resident_id: str) -> str:
    """An emergency phoned in and escalated (whatever providers this session has)."""
    ctx = Dispatch()
    with pool.connection() as conn, conn.transaction():
        request = ctx.repos.requests.load(
            conn, intake.phoned(conn, ctx, resident_id, Service.EMERGENCY, None, "dispatcher:t").request_id, lock=True)
        if request.status.value != "escalated":
            offering.escalate(conn, ctx, request, "test: escalated by hand", datetime.now(UTC))
        return request.id


def entries(pool, request_id: str) -> list[dict]:
    with pool.connection() as conn:
        return [e for e in timeline.entries(conn, request_id) if e["kind"].startswith("notification.")]


def test_an_escalated_emergency_reaches_on_call_and_consenting_family_by_mail_and_signed_webhook(
        pool, smtp, receiver):
    box, smtp_url = smtp
    gateway = receiver()
    district = f"D-{uuid.uuid4().hex[:6]}"
    config = NotifySettings(
        smtp_url=smtp_url, webhook_url=gateway.url, webhook_secret=SECRET, console_url="http://console.test",
        rules=[
            {"services": ["emergency"], "districts": [district], "channel": "email",
             "recipients": ["oncall@example.org", "family"]},
            {"severities": ["critical"], "districts": [district], "channel": "webhook", "recipients": ["+8611111"]},
            {"districts": ["elsewhere"], "channel": "email", "recipients": ["wrong@example.org"]},
        ],
    )
    rid = escalated_emergency(pool, enrol(pool, district))
    sender = dispatch_sender(pool, config)
    while sender.run_once():
        pass

    [mail] = box.to("oncall@example.org")
    assert "[CRITICAL] Emergency" in mail["Subject"] and mail["X-Homecare-Reference"] == rid
    text = mail.get_payload()
    assert "Zhang Min" in text and district in text and f"http://console.test/requests/{rid}" in text
    assert len(box.to("daughter@example.org")) == 1  # agreed
    assert box.to("neighbour@example.org") == [] and box.to("wrong@example.org") == []
    assert gateway.refused == []
    assert [(p["to"], p["reference"], p["severity"]) for p in gateway.accepted] == [("+8611111", rid, "critical")]

    kinds = [(e["kind"], e["detail"].get("to")) for e in entries(pool, rid)]
    assert kinds[0] == ("notification.queued", None)
    assert sorted(kinds[1:]) == [("notification.sent", "+8611111"), ("notification.sent", "daughter@example.org"),
                                 ("notification.sent", "oncall@example.org")]
    with pool.connection() as conn:
        [row] = dispatch_notices.OUTBOX.of(conn, rid)
    assert row["done_at"] is not None and {d["state"] for d in row["deliveries"]} == {"sent"}


def test_a_failed_delivery_is_in_the_timeline_with_its_reason_and_retried_until_sent_or_given_up(pool, receiver):
    gateway = receiver(fail=1)
    district = f"D-{uuid.uuid4().hex[:6]}"
    closed = f"smtp://127.0.0.1:{free_port()}"  # nothing listens there
    config = NotifySettings(
        smtp_url=closed, webhook_url=gateway.url, webhook_secret=SECRET, max_attempts=2, retry_s=60,
        rules=[{"districts": [district], "channel": "webhook", "recipients": ["+8622222"]},
               {"districts": [district], "channel": "email", "recipients": ["oncall@example.org"]}],
    )
    rid = escalated_emergency(pool, enrol(pool, district))
    t0 = datetime.now(UTC)
    sender = dispatch_sender(pool, config)
    sender.clock = lambda: t0
    assert sender.run_once(t0) == 1
    first = {e["detail"]["channel"]: e for e in entries(pool, rid) if e["kind"] == "notification.failed"}
    assert "503" in first["webhook"]["detail"]["reason"] and "retry_at" in first["webhook"]["detail"]
    assert "smtp 127.0.0.1" in first["email"]["detail"]["reason"]
    assert sender.run_once(t0 + timedelta(seconds=30)) == 0  # not before the back-off

    later = t0 + timedelta(seconds=61)
    sender.clock = lambda: later
    assert sender.run_once(later) == 1
    last = entries(pool, rid)[-2:]
    assert {(e["kind"], e["detail"]["channel"]) for e in last} == {
        ("notification.sent", "webhook"), ("notification.failed", "email")}
    gave_up = next(e for e in last if e["kind"] == "notification.failed")
    assert gave_up["detail"]["gave_up"] is True and gave_up["detail"]["attempt"] == 2
    assert [p["to"] for p in gateway.accepted] == ["+8622222"]
    with pool.connection() as conn:
        [row] = dispatch_notices.OUTBOX.of(conn, rid)
    assert row["done_at"] is not None
    assert sorted(d["state"] for d in row["deliveries"]) == ["failed", "sent"]


def test_a_notice_is_written_with_its_cause_or_not_at_all_and_a_sender_that_died_is_taken_over(pool, smtp):
    box, smtp_url = smtp
    district = f"D-{uuid.uuid4().hex[:6]}"
    resident = enrol(pool, district)
    ctx = Dispatch()
    with pool.connection() as conn:
        with pytest.raises(RuntimeError), conn.transaction():
            rid = intake.phoned(conn, ctx, resident, Service.EMERGENCY, None, "dispatcher:t").request_id
            offering.escalate(conn, ctx, ctx.repos.requests.load(conn, rid, lock=True), "x", datetime.now(UTC))
            raise RuntimeError("crash before commit")
        assert conn.execute("SELECT count(*) AS n FROM dispatch.notifications WHERE subject_id = %s",
                            (rid,)).fetchone()["n"] == 0

    rid = escalated_emergency(pool, resident)
    config = NotifySettings(smtp_url=smtp_url, lease_s=120,
                            rules=[{"districts": [district], "channel": "email", "recipients": ["oncall@example.org"]}])
    t0 = datetime.now(UTC)
    with pool.connection() as conn, conn.transaction():  # a replica claims it and dies before sending
        assert dispatch_notices.OUTBOX.claim(conn, t0 + timedelta(seconds=1), t0 + timedelta(seconds=120))
    other = dispatch_sender(pool, config)
    other.run_once(t0 + timedelta(seconds=60))
    assert box.to("oncall@example.org") == []  # still held by the one that died
    other.run_once(t0 + timedelta(seconds=121))
    assert len(box.to("oncall@example.org")) == 1


def test_a_critical_alert_and_its_reannouncement_are_mailed_and_on_the_alert_timeline(pool, smtp):
    box, smtp_url = smtp
    district = f"D-{uuid.uuid4().hex[:6]}"
    resident = enrol(pool, district)
    config = NotifySettings(smtp_url=smtp_url, rules=[
        {"severities": ["critical", "high"], "districts": [district], "channel": "email",
         "recipients": ["oncall@x.org"]},
        {"severities": ["critical"], "triggers": ["alert.raised"], "districts": [district], "channel": "email",
         "recipients": ["family"]},
    ])
    now = datetime.now(UTC)
    found = Finding(rule=Rule.FALL, severity=Severity.CRITICAL, resident_id=resident, device_id=None,
                    started_at=now, summary="A fall is suspected", occurrence=f"fall:{uuid.uuid4().hex}")
    low = Finding(rule=Rule.BATTERY_LOW, severity=Severity.LOW, resident_id=resident, device_id=f"btn-{resident}",
                  started_at=now, summary="Battery at 10 %", occurrence=f"bat:{uuid.uuid4().hex}")
    with pool.connection() as conn, conn.transaction():
        alert_id = alert_store.raise_finding(conn, found)
        battery = alert_store.raise_finding(conn, low)
    ctx = Alerting(reannounce=Reannounce(timedelta(minutes=5)))
    with pool.connection() as conn, conn.transaction():
        assert alert_id in alert_actions.reannounce_due(conn, ctx, now + timedelta(minutes=6))
    sender = telemetry_sender(pool, config)
    while sender.run_once():
        pass
    subjects = sorted(m["Subject"] for m in box.to("oncall@x.org"))
    assert len(subjects) == 2 and sum("not acknowledged" in s for s in subjects) == 1
    assert len(box.to("daughter@example.org")) == 1  # the raise only, by the trigger filter
    with pool.connection() as conn:
        events = alert_queries.get_alert(conn, alert_id)["timeline"]
        battery_events = alert_queries.get_alert(conn, battery)["timeline"]
    kinds = [e["kind"] for e in events]
    assert "reannounced" in kinds and kinds.count("notification.sent") == 3
    assert not any(e["kind"].startswith("notification.") for e in battery_events)  # low: no rule asks

    with pool.connection() as conn, conn.transaction():
        alert_actions.acknowledge(conn, ctx, alert_id, "dispatcher:ann")
    with pool.connection() as conn, conn.transaction():
        assert alert_id not in alert_actions.reannounce_due(conn, ctx, now + timedelta(hours=1))


def test_the_webhook_signature_refuses_tampering_and_replay(receiver):
    gateway = receiver()
    body = b'{"to":"+1"}'
    ts = str(int(datetime.now(UTC).timestamp()))
    assert verify(SECRET, ts, sign(SECRET, ts, body), body) is None
    assert verify(SECRET, ts, sign(SECRET, ts, body), b'{"to":"+2"}') == "signature does not match"
    assert verify(SECRET, ts, sign("another", ts, body), body) == "signature does not match"
    old = str(int(ts) - 3600)
    assert verify(SECRET, old, sign(SECRET, old, body), body) == "timestamp outside the replay window"
    assert verify(SECRET, None, None, body) == "missing signature or timestamp"
    # The real receiver refuses a channel with the wrong secret, and the channel says why.
    wrong = WebhookChannel(gateway.url, "not the secret")
    notice = Notice("alert.raised", "al-x", "critical", "alert", None, "t", "x")
    with pytest.raises(Exception, match="401"):
        wrong.send("+1", notice)
    assert gateway.refused == ["signature does not match"]
