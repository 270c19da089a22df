"""Which districts a user sees (homecare/auth/scope.py), and what the city role may do."""

from __future__ import annotations

import pytest

from homecare.auth import Role, Scope, User
from homecare.auth.scope import clean_districts
from homecare.errors import NotFound


def test_a_dispatcher_sees_its_districts_and_one_of_none_sees_nothing():
    scope = User("li", Role.DISPATCHER, districts=frozenset({"Xuhui", "Minhang"})).scope
    assert scope.allows("Xuhui") and not scope.allows("Pudong") and not scope.allows(None)
    assert scope.allows_any(["Pudong", "Minhang"]) and not scope.allows_any(["Pudong"])
    assert scope.describe() == "Minhang, Xuhui"
    nobody = User("new", Role.DISPATCHER).scope
    assert nobody.nowhere and not nobody.allows("Xuhui") and nobody.describe() == "no district"


@pytest.mark.parametrize("role", [Role.ADMIN, Role.CITY, Role.PROVIDER])
def test_admins_the_city_bureau_and_providers_are_not_held_to_districts(role):
    scope = User("x", role, districts=frozenset({"Xuhui"})).scope
    assert scope.everywhere and scope.districts is None and scope.allows("Pudong") and scope.allows(None)
    assert scope == Scope.everything()


def test_a_thing_out_of_view_is_not_found_as_a_missing_one():
    with pytest.raises(NotFound, match="^request r-1 not found$"):
        Scope.of({"Xuhui"}).check("Pudong", "request r-1")
    Scope.of({"Xuhui"}).check("Xuhui", "request r-1")


def test_the_city_bureau_may_what_dispatchers_may_but_not_what_admins_may():
    city = User("bureau", Role.CITY)
    assert city.has_role(Role.DISPATCHER) and city.has_role(Role.DISPATCHER, Role.PROVIDER)
    assert not city.has_role(Role.ADMIN) and not city.has_role(Role.PROVIDER)


def test_district_names_are_cleaned_and_hostile_ones_refused():
    assert clean_districts([" Xuhui ", "", "Xuhui", "Minhang"]) == frozenset({"Xuhui", "Minhang"})
    for bad in (["x" * 101], ["a\x00b"], [f"d{i}" for i in range(51)], [3]):
        with pytest.raises(ValueError):
            clean_districts(bad)
