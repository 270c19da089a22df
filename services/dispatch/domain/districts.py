"""District service centres in matching: a request is offered to the providers of its district
first, and to providers of other districts only when none of its own can take it (cross-district
help), which is then shown as such. See services/dispatch/README.md, "Districts".

A provider serves the districts it is placed in; one placed nowhere yet (no districts) serves
every district. A request of no known district (its resident unknown to the directory) is every
provider's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .matching import Candidate, Job, MatchWeights, why_not

CROSS_DISTRICT = "cross_district"  # the timeline entry's kind


def serves(provider_districts: Iterable[str], district: str | None) -> bool:
    """Whether a provider placed in these districts is one of the district's own."""
    places = frozenset(provider_districts)
    return district is None or not places or district in places


def cross_reason(district: str | None) -> str:
    """Why help came from another district, as the timeline and the board say it."""
    return f"no provider of {district} eligible"


def other_district(district: str | None, cross_district: bool) -> str:
    """Why an able provider is not ranked for a request: matching asks the other side first."""
    if cross_district:
        return f"serves {district}, which has nobody eligible: help comes from other districts"
    return f"serves other districts: asked only when no provider of {district} is eligible"


@dataclass(frozen=True)
class DistrictPool:
    """The candidates matching ranks for a request, and whether they come from other districts."""

    candidates: list[Candidate]
    cross_district: bool = False
    reason: str | None = None  # cross_reason(...) when cross_district


def district_pool(
    candidates: Sequence[Candidate], job: Job, district: str | None, weights: MatchWeights | None = None,
) -> DistrictPool:
    """The district's own candidates when any of them can take the job now (`why_not` is None);
    otherwise the others, as cross-district help. When nobody of any district can take it, the
    district's own are kept, so the reasons the ladder waits or escalates on stay theirs."""
    own = [c for c in candidates if serves(c.districts, district)]
    if any(why_not(c, job, weights) is None for c in own):
        return DistrictPool(own)
    others = [c for c in candidates if not serves(c.districts, district)]
    if not any(why_not(c, job, weights) is None for c in others):
        return DistrictPool(own)
    return DistrictPool(others, True, cross_reason(district))
