"""Domain errors carry no HTTP: the edge's one mapping gives each family its status, subclasses
their family's, and anything else a use case raises on purpose a 400."""

from __future__ import annotations

import pytest

from homecare import errors
from homecare.api.app import status_of
from services.dispatch.domain.offers import OfferRefused
from services.dispatch.domain.requests import TransitionRefused


@pytest.mark.parametrize(("error", "status"), [
    (errors.NotFound("x"), 404), (errors.Conflict("x"), 409), (errors.Invalid("x"), 422),
    (errors.Forbidden("x"), 403), (errors.Unavailable("x"), 503), (errors.HomecareError("x"), 400),
    (OfferRefused("x"), 409), (TransitionRefused("x"), 409),
])
def test_each_family_of_domain_errors_has_its_status(error, status):
    assert status_of(error) == status


def test_the_domain_errors_know_nothing_of_http():
    for family in (errors.HomecareError, errors.NotFound, errors.Conflict, errors.Invalid, errors.Forbidden,
                   errors.Unavailable):
        assert not any(name.startswith("status") for name in vars(family)), family
