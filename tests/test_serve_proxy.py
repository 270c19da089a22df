"""Behind the reverse proxy that terminates TLS for the console, the HTTP server believes the
forwarded client address and scheme from the proxies it is told to trust, and from no one else:
the sign-in throttle counts by that address, and a client must not be able to pick its own."""

from __future__ import annotations

import httpx
from fastapi import FastAPI, Request

from launch.embedded import free_port
from launch.serve import HttpServer

FORWARDED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/who")
    def who(request: Request) -> dict:
        return {"client": request.client.host if request.client else None, "scheme": request.url.scheme}

    return app


def _ask(trusted: str) -> dict:
    server = HttpServer(_app(), "127.0.0.1", free_port(), trusted)
    server.start()
    try:
        return httpx.get(f"{server.url}/who", headers=FORWARDED, timeout=5).json()
    finally:
        server.stop()


def test_a_trusted_proxy_gives_the_client_address_and_scheme():
    assert _ask("127.0.0.1") == {"client": "203.0.113.9", "scheme": "https"}


def test_without_trusted_proxies_forwarded_headers_are_ignored():
    assert _ask("") == {"client": "127.0.0.1", "scheme": "http"}


def test_a_proxy_not_in_the_list_is_not_believed():
    assert _ask("10.0.0.5") == {"client": "127.0.0.1", "scheme": "http"}
