"""Which districts a signed-in user sees (district service centres, issue 16).

A dispatcher works for one or more districts (`auth.users.districts`, the residents' district
names) and sees only their residents, devices, requests, alerts and providers; a dispatcher of no
district sees nothing (the console says so). Admins and the city bureau (role `city`) see every
district. Providers are held to their own offers and requests by their role, not by districts.

Every read model that lists things takes `districts: frozenset[str] | None` (None = all): pass
`scope.districts`. A single thing of another district answers NotFound, exactly as one that does
not exist, so its existence does not leak.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from homecare.errors import NotFound

MAX_DISTRICTS = 50  # per account or provider: a city has 16
MAX_NAME = 100  # as a resident's district (homecare.api.types.District)


def clean_districts(names: Iterable[str]) -> frozenset[str]:
    """District names trimmed, without empties; ValueError for a name too long, with a NUL byte,
    or too many of them."""
    out = set()
    for raw in names:
        if not isinstance(raw, str):
            raise ValueError("a district is a name")
        name = raw.strip()
        if "\x00" in name or len(name) > MAX_NAME:
            raise ValueError(f"district: at most {MAX_NAME} characters, no NUL byte")
        if name:
            out.add(name)
    if len(out) > MAX_DISTRICTS:
        raise ValueError(f"districts: at most {MAX_DISTRICTS}")
    return frozenset(out)


@dataclass(frozen=True)
class Scope:
    """The districts one may see: `districts` None is every district; an empty set is none."""

    districts: frozenset[str] | None

    @classmethod
    def everything(cls) -> Scope:
        return cls(None)

    @classmethod
    def of(cls, districts: Iterable[str]) -> Scope:
        return cls(frozenset(districts))

    @property
    def everywhere(self) -> bool:
        return self.districts is None

    @property
    def nowhere(self) -> bool:
        """A dispatcher placed in no district yet: sees nothing at all."""
        return self.districts is not None and not self.districts

    def allows(self, district: str | None) -> bool:
        """Whether a thing of this district (None: not known) is in view."""
        return self.districts is None or (district is not None and district in self.districts)

    def allows_any(self, districts: Iterable[str]) -> bool:
        """Whether any of these districts is in view (a provider serving several)."""
        return self.districts is None or not self.districts.isdisjoint(districts)

    def check(self, district: str | None, what: str) -> None:
        """NotFound(`<what> not found`) when out of view: the answer of a thing that does not exist."""
        if not self.allows(district):
            raise NotFound(f"{what} not found")

    def describe(self) -> str:
        """For pages: which districts this is."""
        if self.districts is None:
            return "every district"
        if not self.districts:
            return "no district"
        return ", ".join(sorted(self.districts))
