"""Schemathesis against the real app on the real database, as each of the three roles: every
operation, a bounded number of generated examples each. No 5xx, every status code and content
type documented, every response matching its documented schema (issue 12)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from homecare.auth import Role

from .conftest import bearer, new_account

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 15  # per operation; each example is sent once per role


@pytest.fixture(scope="module")
def roles(pool) -> dict[str, dict[str, str]]:
    return {
        "admin": bearer(pool, new_account(pool, Role.ADMIN)),
        "dispatcher": bearer(pool, new_account(pool, Role.DISPATCHER)),
        "provider": bearer(pool, new_account(pool, Role.PROVIDER, "p-fuzz")),
    }


def test_every_operation_as_every_role(app, roles, monkeypatch):
    # The token endpoint is fuzzed too: keep the sign-in throttle out of the way.
    monkeypatch.setattr(app.state.login_throttle, "free", {"user": 10**9, "addr": 10**9})
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def run(case):
            for headers in roles.values():
                response = case.call(headers=headers)
                case.validate_response(response, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # every operation's failures are reported together
            failures[operation.label] = str(exc)[:1500]
    assert operations > 40
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
