"""OPTIONS names every method of a path, GET included where it exists, and so does a 405
(issue 12, item 9): Starlette answered from the first route of the path only."""

from __future__ import annotations


def _allow(response) -> set[str]:
    return {m.strip() for m in response.headers.get("allow", "").split(",") if m.strip()}


def test_options_lists_get_where_get_exists(client):
    for path in ("/api/v1/residents", "/api/v1/devices/some-device", "/api/v1/providers", "/healthz", "/providers"):
        response = client.options(path)
        assert response.status_code in (200, 204), (path, response.status_code)
        assert {"GET", "HEAD", "OPTIONS"} <= _allow(response), (path, response.headers.get("allow"))
    assert _allow(client.options("/api/v1/residents")) == {"GET", "HEAD", "OPTIONS", "POST"}
    assert _allow(client.options("/api/v1/devices/some-device")) == {"DELETE", "GET", "HEAD", "OPTIONS"}
    assert _allow(client.options("/api/v1/auth/token")) == {"OPTIONS", "POST"}


def test_a_405_names_every_method_of_the_path(client):
    response = client.put("/api/v1/residents")
    assert response.status_code == 405
    assert _allow(response) == {"GET", "HEAD", "OPTIONS", "POST"}


def test_an_unknown_path_stays_404(client):
    assert client.options("/api/v1/no-such-thing").status_code == 404
