"""Every operation of the OpenAPI document, as each role and without a token, against a role table
taken from ../shared/contract/http-v1.md (Access): admins everything; dispatchers (and the city
bureau, role city, in every district) requests,
alerts, residents, and only reading devices and providers; providers only their own offers and
requests (and their own shift, location and shift list). Without a token 401; a role that may not
403; a role that may anything but 401/403 (a 404 or 422 for the made-up ids and empty bodies sent
here is fine: the role was let through). A new route without a row here fails the test."""

from __future__ import annotations

import re

import pytest

from homecare.auth import Role

from .conftest import bearer, new_account

PUBLIC = "public"  # no token needed
ADMIN = frozenset({"admin"})
# dispatchers' work, or reading devices and providers; the city bureau (role city) may all a
# dispatcher may, in every district (README, "District service centres")
STAFF = frozenset({"admin", "city", "dispatcher"})
CITY = frozenset({"admin", "city"})  # what covers every district at once
OWN = frozenset({"admin", "provider"})  # a provider's own (offers, shift, location); not dispatchers
ALL = frozenset({"admin", "city", "dispatcher", "provider"})  # providers for their own requests only

ROLE_TABLE: dict[tuple[str, str], frozenset[str] | str] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): ADMIN,  # on the console's port
    ("POST", "/api/v1/auth/token"): PUBLIC,
    ("DELETE", "/api/v1/auth/lockouts/{username}"): ADMIN,
    ("POST", "/api/v1/users"): ADMIN,
    ("PATCH", "/api/v1/users/{username}"): ADMIN,
    ("GET", "/api/v1/me"): ALL,
    ("GET", "/api/v1/audit"): ADMIN,
    # devices: provisioning and decommissioning are an admin's; dispatchers read
    ("POST", "/api/v1/devices"): ADMIN,
    ("GET", "/api/v1/devices"): STAFF,
    ("GET", "/api/v1/devices/{device_id}"): STAFF,
    ("DELETE", "/api/v1/devices/{device_id}"): ADMIN,
    # asking a device to test itself (mqtt-v1.1) changes nothing but the device's health record:
    # the dispatchers who chase faulty devices may
    ("POST", "/api/v1/devices/{device_id}/selftest"): STAFF,
    ("GET", "/api/v1/devices/{device_id}/commands"): STAFF,
    ("GET", "/api/v1/devices/{device_id}/vitals"): STAFF,
    ("GET", "/api/v1/devices/{device_id}/latest"): STAFF,
    # residents and alerts: dispatchers
    ("POST", "/api/v1/residents"): STAFF,
    ("GET", "/api/v1/residents"): STAFF,
    ("GET", "/api/v1/residents/{resident_id}"): STAFF,
    ("GET", "/api/v1/residents/{resident_id}/observations"): STAFF,
    ("GET", "/api/v1/residents/{resident_id}/alert-settings"): STAFF,
    ("PUT", "/api/v1/residents/{resident_id}/alert-settings"): STAFF,
    ("GET", "/api/v1/alerts"): STAFF,
    ("GET", "/api/v1/alerts/{alert_id}"): STAFF,
    ("POST", "/api/v1/alerts/{alert_id}/acknowledge"): STAFF,
    ("POST", "/api/v1/alerts/{alert_id}/assign"): STAFF,
    ("POST", "/api/v1/alerts/{alert_id}/resolve"): STAFF,
    # providers: registered by admins, read by dispatchers, their shift and place their own
    ("GET", "/api/v1/providers"): STAFF,
    ("POST", "/api/v1/providers"): ADMIN,
    ("PUT", "/api/v1/providers/{provider_id}/districts"): ADMIN,  # placing a provider in its districts
    ("POST", "/api/v1/providers/{provider_id}/shift"): OWN,
    ("POST", "/api/v1/providers/{provider_id}/location"): OWN,
    # the provider's own app says it is there: nobody else can say so for it, an admin neither
    ("POST", "/api/v1/providers/{provider_id}/heartbeat"): frozenset({"provider"}),
    ("POST", "/api/v1/providers/{provider_id}/shifts"): ADMIN,
    ("GET", "/api/v1/providers/{provider_id}/shifts"): ALL,
    # care plans and day planning: dispatchers edit plans and plan days; a provider reads its route
    ("PUT", "/api/v1/providers/{provider_id}/skills"): ADMIN,
    ("GET", "/api/v1/providers/{provider_id}/route"): ALL,
    ("GET", "/api/v1/residents/{resident_id}/care-plans"): STAFF,
    ("POST", "/api/v1/residents/{resident_id}/care-plans"): STAFF,
    ("GET", "/api/v1/care-plans/{plan_id}"): STAFF,
    ("PATCH", "/api/v1/care-plans/{plan_id}"): STAFF,
    ("DELETE", "/api/v1/care-plans/{plan_id}"): STAFF,
    ("POST", "/api/v1/care-plans/{plan_id}/pauses"): STAFF,
    ("DELETE", "/api/v1/care-plans/{plan_id}/pauses/{pause_id}"): STAFF,
    ("POST", "/api/v1/plans/{day}"): CITY,  # the whole city's day: not one district's dispatcher
    ("GET", "/api/v1/plans/{day}/routes"): STAFF,
    # requests: dispatchers; providers their own
    ("GET", "/api/v1/requests"): STAFF,
    ("POST", "/api/v1/requests"): STAFF,
    ("GET", "/api/v1/requests/{request_id}"): ALL,
    ("GET", "/api/v1/requests/{request_id}/candidates"): STAFF,
    ("POST", "/api/v1/requests/{request_id}/assign"): STAFF,
    ("POST", "/api/v1/requests/{request_id}/cancel"): STAFF,
    ("POST", "/api/v1/requests/{request_id}/en-route"): ALL,
    ("POST", "/api/v1/requests/{request_id}/arrived"): ALL,
    ("POST", "/api/v1/requests/{request_id}/complete"): ALL,
    ("GET", "/api/v1/reports/sla"): STAFF,
    # offers: the provider's own; dispatchers follow them as part of requests
    ("GET", "/api/v1/offers"): ALL,
    ("POST", "/api/v1/offers/{offer_id}/accept"): OWN,
    ("POST", "/api/v1/offers/{offer_id}/decline"): OWN,
    # dead letters: dispatchers follow up presses; replaying and discarding are an admin's
    ("GET", "/api/v1/dead-letters"): STAFF,
    ("POST", "/api/v1/dead-letters/{seq}/replay"): ADMIN,
    ("DELETE", "/api/v1/dead-letters/{seq}"): ADMIN,
    # the platform keeping up (stuck consumers of the internal log): dispatchers see the delays
    ("GET", "/api/v1/system/consumers"): STAFF,
    ("GET", "/api/v1/system/incidents"): STAFF,
}

_PARAM = re.compile(r"\{(\w+)\}")
# Valid bodies where a route checks whose thing it is only after the body is valid.
_BODIES = {
    ("POST", "/api/v1/providers/{provider_id}/shift"): {"on_shift": False},
    ("POST", "/api/v1/providers/{provider_id}/location"): {"lat": 31.21, "lon": 121.41},
}


@pytest.fixture(scope="module")
def world(pool, client):
    """A provider with its own account, another provider's account, and an admin and a dispatcher."""
    admin = bearer(pool, new_account(pool, Role.ADMIN))
    body = {"name": "Team Roles", "services": ["meal"], "location": {"lat": 31.2, "lon": 121.4}, "capacity": 1}
    created = client.post("/api/v1/providers", json=body, headers=admin)
    assert created.status_code == 201, created.text
    provider_id = created.json()["id"]
    return {
        "provider_id": provider_id,
        "tokens": {
            "admin": admin,
            "dispatcher": bearer(pool, new_account(pool, Role.DISPATCHER)),
            "city": bearer(pool, new_account(pool, Role.CITY)),
            "provider": bearer(pool, new_account(pool, Role.PROVIDER, provider_id)),
            "other provider": bearer(pool, new_account(pool, Role.PROVIDER, "p-not-this-one")),
            "no token": {},
        },
    }


def _operations(app) -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item
            if method in {"get", "post", "put", "patch", "delete"}]


def _call(client, method: str, path: str, provider_id: str, headers: dict[str, str]):
    values = {"provider_id": provider_id, "seq": "1", "username": "nobody-at-all"}
    url = _PARAM.sub(lambda m: values.get(m.group(1), f"none-{m.group(1)}"), path)
    body = {} if method in {"POST", "PUT", "PATCH"} and path != "/api/v1/auth/token" else None
    body = _BODIES.get((method, path), body)
    return client.request(method, url, json=body, headers=headers)


def test_every_operation_has_a_row_in_the_role_table(app):
    operations = set(_operations(app))
    assert not operations - ROLE_TABLE.keys(), "operations without a row in ROLE_TABLE"
    assert not ROLE_TABLE.keys() - operations, "rows of ROLE_TABLE that are no operation"


def test_every_operation_answers_each_role_as_the_contract_says(app, client, world, monkeypatch):
    monkeypatch.setattr(app.state.login_throttle, "free", {"user": 10**9, "addr": 10**9})
    wrong: list[str] = []
    for method, path in _operations(app):
        rule = ROLE_TABLE.get((method, path))
        if rule is None:
            continue  # the test above names it
        for role, headers in world["tokens"].items():
            status = _call(client, method, path, world["provider_id"], headers).status_code
            if rule == PUBLIC:
                ok = status not in (401, 403)
            elif role == "no token":
                ok = status == 401
            elif role == "other provider":  # a provider on another provider's things
                ok = status not in (401, 403) if "provider" in rule and "{provider_id}" not in path \
                    else status == 403
            else:
                ok = status not in (401, 403) if role in rule else status == 403
            if not ok:
                wrong.append(f"{method} {path} as {role}: {status}")
    assert not wrong, "\n".join(wrong)
