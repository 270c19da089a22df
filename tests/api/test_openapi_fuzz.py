"""Schemathesis against the real app on the real database, as each of the three roles: every
operation, a bounded number of generated examples each. No 5xx, every status code and content
type documented, every response matching its documented schema; and no input that breaks the
schema accepted (issue 12)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from homecare.auth import Role

from .conftest import bearer, new_account

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 15  # per operation; each example is sent once per role
NEGATIVE_EXAMPLES = 10  # invalid cases per operation, sent as the admin (who may do everything)


@pytest.fixture(scope="module")
def roles(pool) -> dict[str, dict[str, str]]:
    return {
        "admin": bearer(pool, new_account(pool, Role.ADMIN)),
        "dispatcher": bearer(pool, new_account(pool, Role.DISPATCHER)),
        "provider": bearer(pool, new_account(pool, Role.PROVIDER, "p-fuzz")),
    }


def fuzz(app, roles: dict[str, dict[str, str]], mode: GenerationMode, examples: int, checks) -> None:
    """Every operation of the app's OpenAPI with generated cases sent as each role; the failures
    of all operations reported together."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def run(case):
            for headers in roles.values():
                response = case.call(headers=headers)
                case.validate_response(response, checks=checks)

        try:
            run()
        except Unsatisfiable:
            pass  # nothing in this operation can be made invalid (e.g. only a free-text path id)
        except (Exception, BaseExceptionGroup) as exc:  # every operation's failures are reported together
            failures[operation.label] = str(exc)[:1500]
    assert operations > 40
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


@pytest.fixture
def unthrottled(app, monkeypatch):
    """The token endpoint is fuzzed too: keep the sign-in throttle out of the way."""
    monkeypatch.setattr(app.state.login_throttle, "free", {"user": 10**9, "addr": 10**9})


def test_every_operation_as_every_role(app, roles, unthrottled):
    fuzz(app, roles, GenerationMode.POSITIVE, EXAMPLES, CHECKS)


def test_no_schema_violating_input_is_accepted(app, roles, unthrottled):
    fuzz(app, {"admin": roles["admin"]}, GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES,
         [not_a_server_error, status_code_conformance, negative_data_rejection])
