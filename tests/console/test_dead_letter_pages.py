"""The console's dead-letters page, on dead letters made for real (see `dead_lettering`): an admin
sees and replays one; a dispatcher only reads them."""

from __future__ import annotations

from urllib.parse import unquote

from console.web import FLASH_COOKIE
from homecare.auth import Role
from homecare.log import streams
from tests.support import wait_for

from .conftest import csrf_in, make_user, sign_in
from .dead_lettering import broken, dead_letter, tap  # noqa: F401  (fixtures)


def test_the_console_page_shows_dead_letters_and_replays_one(pool, client, tap, broken):  # noqa: F811
    seq, subject = dead_letter(tap, b'{"event_id": "e-page", "note": "<b>not markup</b>"}')
    assert sign_in(client, make_user(pool, Role.ADMIN)).status_code == 303

    page = client.get("/dead-letters")
    assert page.status_code == 200
    assert 'href="/dead-letters"' in page.text  # in the navigation
    row = page.text.split(f'data-dead-letter="{seq}"', 1)[1].split("</tr>", 1)[0]
    assert "presses-under-test" in row and "ValueError: cannot handle this yet" in row and subject in row
    assert "&lt;b&gt;not markup&lt;/b&gt;" in row and "<b>not markup" not in row
    assert f'action="/dead-letters/{seq}/replay"' in row and f'action="/dead-letters/{seq}/discard"' in row

    assert client.post(f"/dead-letters/{seq}/replay", data={}).status_code == 403  # no CSRF token
    broken.fixed.set()
    done = client.post(f"/dead-letters/{seq}/replay", data={"csrf_token": csrf_in(page.text)})
    assert done.status_code == 303 and done.headers["location"] == "/dead-letters"
    assert unquote(client.cookies.get(FLASH_COOKIE)) == f"ok:Dead letter {seq} replayed to {subject}."
    wait_for(lambda: len(broken.handled) == 1, 15, what="the replayed press handled")

    after = client.get("/dead-letters")
    assert f"Dead letter {seq} replayed" in after.text and f'data-dead-letter="{seq}"' not in after.text
    again = client.post(f"/dead-letters/{seq}/discard", data={"csrf_token": csrf_in(page.text)})
    assert again.status_code == 303 and "no dead letter" in unquote(client.cookies.get(FLASH_COOKIE))


def test_a_city_dispatcher_reads_the_page_but_cannot_replay(pool, client, tap, broken):  # noqa: F811
    seq, _ = dead_letter(tap, b"a press nobody handled")
    assert sign_in(client, make_user(pool, Role.CITY)).status_code == 303

    page = client.get("/dead-letters")
    assert page.status_code == 200 and f'data-dead-letter="{seq}"' in page.text
    assert "a press nobody handled" in page.text and "/replay" not in page.text
    refused = client.post(f"/dead-letters/{seq}/replay", data={"csrf_token": csrf_in(page.text)})
    assert refused.status_code == 403
    assert len(tap.messages(streams.DEAD)) == 1


def test_a_district_dispatcher_reads_only_its_districts_dead_letters(pool, client, tap, broken):  # noqa: F811
    from .two_districts import district

    a, b = district(pool, "Alpha"), district(pool, "Beta")
    own, _ = dead_letter(tap, b"a press of Alpha", device=a.button_id)
    other, _ = dead_letter(tap, b"a press of Beta", device=b.button_id)
    assert sign_in(client, make_user(pool, Role.DISPATCHER, districts=(a.name,))).status_code == 303
    page = client.get("/dead-letters").text
    assert f'data-dead-letter="{own}"' in page and a.button_id in page
    assert f'data-dead-letter="{other}"' not in page and b.button_id not in page
    listed = client.get("/api/v1/dead-letters").json()
    assert [row["seq"] for row in listed] == [own]


def test_a_district_dispatcher_pages_past_other_districts_letters(pool, client, tap, broken, monkeypatch):  # noqa: F811
    """A district's letters can be few among the city's: a page reads on past the others, and
    says where the next page starts even when it found none of the district's."""
    from console import dead_letter_pages, dead_letters_api

    from .two_districts import district

    a, b = district(pool, "Alpha"), district(pool, "Beta")
    first, _ = dead_letter(tap, b"Alpha 1", device=a.button_id)
    others = [dead_letter(tap, f"Beta {n}".encode(), device=b.button_id)[0] for n in range(3)]
    last, _ = dead_letter(tap, b"Alpha 2", device=a.button_id)
    assert sign_in(client, make_user(pool, Role.DISPATCHER, districts=(a.name,))).status_code == 303

    def page(**params):
        answer = client.get("/api/v1/dead-letters", params=params)
        assert answer.status_code == 200, answer.text
        after = answer.headers.get(dead_letters_api.NEXT_HEADER)
        return [row["seq"] for row in answer.json()], int(after) if after else None

    assert page(limit=1) == ([first], first)
    assert page(after=first, limit=1) == ([last], last)  # read past Beta's three
    assert page(after=last, limit=1) == ([], None)  # the end: no header
    monkeypatch.setattr(dead_letters_api, "SCAN_MAX", 2)  # a page stops reading after two letters
    assert page(after=first, limit=1) == ([], others[1])  # none of Alpha's in them, but more to come
    assert page(after=others[1], limit=1) == ([last], last)

    # The console's page, newest first, one letter a page: "Older" skips Beta's letters.
    monkeypatch.setattr(dead_letter_pages, "PAGE_SIZE", 1)
    monkeypatch.setattr(dead_letters_api, "SCAN_MAX", 5000)
    newest = client.get("/dead-letters").text
    assert f'data-dead-letter="{last}"' in newest and f"/dead-letters?before={last}" in newest
    older = client.get(f"/dead-letters?before={last}").text
    assert f'data-dead-letter="{first}"' in older and not any(f'data-dead-letter="{x}"' in older for x in others)
    assert f"/dead-letters?before={first}" in older  # a full page: there may be more
    assert "/dead-letters?before=" not in client.get(f"/dead-letters?before={first}").text
