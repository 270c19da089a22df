"""The operator API's dead letters, made for real (see `dead_lettering`): list them, replay one
(its consumer, fixed meanwhile, gets it again) or discard it; who may do what; the log away."""

from __future__ import annotations

import base64
import logging

from fastapi.testclient import TestClient

from homecare.api.app import build_app
from homecare.auth import Role
from homecare.log import streams
from tests.support import wait_for

from .conftest import make_user
from .dead_lettering import broken, dead_letter, listed, tap, token  # noqa: F401  (fixtures)


def test_an_admin_lists_and_replays_a_dead_letter_through_the_api(pool, client, tap, broken, caplog):  # noqa: F811
    admin = token(client, make_user(pool, Role.ADMIN))
    press = b'{"event_id": "e-1", "type": "button.pressed"}'
    seq, subject = dead_letter(tap, press)

    row = listed(client, admin)[seq]
    assert row["consumer"] == "presses-under-test" and row["subject"] == subject
    assert row["reason"] == "ValueError: cannot handle this yet" and row["deliveries"] == 2
    assert row["payload"] == press.decode()
    assert row["payload_base64"] is False and row["payload_truncated"] is False and row["payload_size"] == len(press)
    assert row["failed_at"] and row["stored_at"]

    # The cause fixed, the admin replays it: its consumer gets it again, as a new message.
    broken.fixed.set()
    with caplog.at_level(logging.WARNING, logger="console.dead_letters_api"):
        assert client.post(f"/api/v1/dead-letters/{seq}/replay", headers=admin).status_code == 204
    wait_for(lambda: broken.handled == [press], 15, what="the replayed press handled")
    assert [m.data for m in tap.messages(streams.EVENTS)].count(press) == 2  # the original and the replay
    assert seq not in listed(client, admin)
    assert tap.messages(streams.DEAD) == []
    audit = [r for r in caplog.records if getattr(r, "action", None) == "replayed"]
    assert len(audit) == 1 and audit[0].actor.startswith("admin:") and audit[0].dead_letter == seq
    with pool.connection() as conn:  # the subject carries this test's namespace: its entry only
        [entry] = conn.execute(
            "SELECT actor, action, target FROM auth.audit WHERE detail ->> 'subject' = %s", (subject,)
        ).fetchall()
    assert entry["action"] == "dead_letter.replayed" and entry["actor"] == audit[0].actor
    assert entry["target"] == f"dead_letter:{seq}"

    again = client.post(f"/api/v1/dead-letters/{seq}/replay", headers=admin)
    assert again.status_code == 404 and f"no dead letter {seq}" in again.json()["detail"]


def test_discard_binary_payloads_paging_and_who_may_do_what(pool, client, tap, broken):  # noqa: F811
    admin = token(client, make_user(pool, Role.ADMIN))
    dispatcher = token(client, make_user(pool, Role.CITY))
    provider = token(client, make_user(pool, Role.PROVIDER, "p-dead-letters"))
    binary, _ = dead_letter(tap, b"\xff\x00\xfe" * 2000)
    text, _ = dead_letter(tap, b"x" * 5000)

    rows = listed(client, admin)
    assert list(rows) == [binary, text]  # oldest first
    assert rows[binary]["payload_base64"] is True and rows[binary]["payload_size"] == 6000
    assert rows[binary]["payload_truncated"] is True
    assert base64.b64decode(rows[binary]["payload"]) == (b"\xff\x00\xfe" * 2000)[:4096]
    assert rows[text]["payload"] == "x" * 4096 and rows[text]["payload_truncated"] is True
    assert list(listed(client, admin, limit=1)) == [binary]
    assert list(listed(client, admin, after=binary, limit=1)) == [text]
    assert client.get("/api/v1/dead-letters", headers=admin, params={"limit": 501}).status_code == 422

    # Dispatchers read the list (a lost press is theirs to follow up); only admins act on it.
    assert list(listed(client, dispatcher)) == [binary, text]
    assert client.post(f"/api/v1/dead-letters/{text}/replay", headers=dispatcher).status_code == 403
    assert client.delete(f"/api/v1/dead-letters/{text}", headers=dispatcher).status_code == 403
    assert client.get("/api/v1/dead-letters", headers=provider).status_code == 403
    assert client.get("/api/v1/dead-letters").status_code == 401
    assert client.delete(f"/api/v1/dead-letters/{text}").status_code == 401

    assert client.delete(f"/api/v1/dead-letters/{binary}", headers=admin).status_code == 204
    assert list(listed(client, admin)) == [text]
    gone = client.delete(f"/api/v1/dead-letters/{binary}", headers=admin)
    assert gone.status_code == 404 and "no dead letter" in gone.json()["detail"]
    assert client.post("/api/v1/dead-letters/999999/replay", headers=admin).status_code == 404
    assert broken.handled == []  # discarded, never replayed


def test_without_the_log_the_api_answers_503(pool):
    from console.bootstrap import build
    from homecare.settings import Settings

    idle = build(Settings(secret_key="x", environment="development"), pool)  # never started
    app = build_app("idle", pool, routers=idle.routers())
    with TestClient(app) as other:
        admin = token(other, make_user(pool, Role.ADMIN))
        answer = other.get("/api/v1/dead-letters", headers=admin)
    assert answer.status_code == 503 and "not reachable" in answer.json()["detail"]
