"""The operator HTTP API (http-v1), as the simulator's administrator uses it."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

log = logging.getLogger(__name__)


class ApiError(Exception):
    """The API answered with an error; `detail` is what it said."""

    def __init__(self, method: str, path: str, status: int, detail: str):
        super().__init__(f"{method} {path}: {status} {detail}")
        self.status = status
        self.detail = detail


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return response.text[:300]


class OperatorApi:
    """A signed-in client of the operator API; thread-safe (one httpx.Client)."""

    def __init__(self, base_url: str, *, timeout: float = 15.0, transport: httpx.BaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until the API answers `/healthz`, or raise TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self._http.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.base_url} did not answer /healthz within {timeout}s")
            time.sleep(0.2)

    def sign_in(self, username: str, password: str) -> None:
        """`POST /api/v1/auth/token`; later calls carry the bearer token."""
        response = self._http.post("/api/v1/auth/token", data={"username": username, "password": password})
        if response.status_code != 200:
            raise ApiError("POST", "/api/v1/auth/token", response.status_code, _detail(response))
        self._http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        # Only a request that never reached the server is retried: a POST is not idempotent.
        for attempt in range(3):
            try:
                response = self._http.post(path, json=body)
                break
            except httpx.ConnectError:
                if attempt == 2:
                    raise
                time.sleep(0.5 * (attempt + 1))
        if response.status_code not in (200, 201):
            raise ApiError("POST", path, response.status_code, _detail(response))
        return response.json()

    def enrol_resident(self, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /api/v1/residents`; the resident with its id."""
        return self._post("/api/v1/residents", body)

    def provision_device(self, device_id: str, kind: str, resident_id: str) -> dict[str, Any]:
        """`POST /api/v1/devices`; `{id, kind, resident_id, secret}`."""
        return self._post("/api/v1/devices", {"id": device_id, "kind": kind, "resident_id": resident_id})

    def register_provider(self, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /api/v1/providers`; the provider with its id."""
        return self._post("/api/v1/providers", body)

    def create_user(self, username: str, password: str, role: str, provider_id: str | None = None) -> dict[str, Any]:
        """`POST /api/v1/users` (admin only)."""
        body = {"username": username, "password": password, "role": role, "provider_id": provider_id}
        return self._post("/api/v1/users", body)

    def plan_shift(self, provider_id: str, starts_at: str, ends_at: str) -> dict[str, Any]:
        """`POST /api/v1/providers/{id}/shifts` (admin only): the provider is on shift in between."""
        return self._post(f"/api/v1/providers/{provider_id}/shifts", {"starts_at": starts_at, "ends_at": ends_at})

    def add_care_plan(self, resident_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /api/v1/residents/{id}/care-plans`; the plan with its id."""
        return self._post(f"/api/v1/residents/{resident_id}/care-plans", body)

    def plan_day(self, day: str) -> dict[str, Any]:
        """`POST /api/v1/plans/{day}`: plan that day's routes now; the planning run."""
        return self._post(f"/api/v1/plans/{day}", {})

    def requests(self, statuses: list[str], limit: int = 1000) -> list[dict[str, Any]]:
        """`GET /api/v1/requests?status=...`: newest first, at most `limit`."""
        response = self._http.get("/api/v1/requests", params={"status": ",".join(statuses), "limit": limit})
        if response.status_code != 200:
            raise ApiError("GET", "/api/v1/requests", response.status_code, _detail(response))
        return response.json()

    def cancel_request(self, request_id: str, reason: str) -> dict[str, Any]:
        """`POST /api/v1/requests/{id}/cancel`; the request as it is now."""
        return self._post(f"/api/v1/requests/{request_id}/cancel", {"reason": reason})

    def complete_request(self, request_id: str) -> dict[str, Any]:
        """`POST /api/v1/requests/{id}/complete`; the request as it is now."""
        return self._post(f"/api/v1/requests/{request_id}/complete", {})
