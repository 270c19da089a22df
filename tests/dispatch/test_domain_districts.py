"""District service centres in matching (domain/districts.py): a request is offered to the
providers of its own district first; providers of other districts are asked only when none of its
own can take it, and that is said (cross-district help)."""

from services.dispatch.domain.districts import cross_reason, district_pool, other_district, serves
from services.dispatch.domain.matching import Candidate, Job, Location, rank

HOME = Location(31.2304, 121.4737)


def cand(pid: str, km: float, districts=(), **kw) -> Candidate:
    return Candidate(pid, pid.upper(), frozenset({"meal"}), Location(HOME.lat + km / 111.195, HOME.lon), 2,
                     districts=frozenset(districts), **kw)


JOB = Job("meal", priority=3, location=HOME)


def ids(candidates) -> list[str]:
    return sorted(c.provider_id for c in candidates)


def test_a_provider_serves_its_districts_and_an_unplaced_one_serves_every_district():
    assert serves({"Xuhui", "Minhang"}, "Xuhui")
    assert not serves({"Minhang"}, "Xuhui")
    assert serves(set(), "Xuhui")  # not yet placed
    assert serves({"Minhang"}, None)  # a request of no known district is everybody's


def test_the_districts_own_providers_are_asked_even_when_another_is_nearer():
    near_other = cand("near", 0.2, {"Minhang"})
    far_own = cand("far", 9.0, {"Xuhui"})
    pool = district_pool([near_other, far_own], JOB, "Xuhui")
    assert (ids(pool.candidates), pool.cross_district, pool.reason) == (["far"], False, None)
    assert [s.candidate.provider_id for s in rank(pool.candidates, JOB)] == ["far"]


def test_a_provider_of_several_districts_is_own_to_each_and_an_unplaced_one_is_own_everywhere():
    both = cand("both", 3.0, {"Xuhui", "Minhang"})
    unplaced = cand("anywhere", 4.0)
    other = cand("other", 0.1, {"Pudong"})
    assert ids(district_pool([both, unplaced, other], JOB, "Minhang").candidates) == ["anywhere", "both"]


def test_only_when_nobody_of_the_district_is_eligible_are_other_districts_asked_and_it_is_said():
    busy_own = cand("own", 0.5, {"Xuhui"}, active=2)  # no free capacity
    off_own = cand("off", 0.5, {"Xuhui"}, on_shift=False)
    helper = cand("helper", 6.0, {"Minhang"})
    pool = district_pool([busy_own, off_own, helper], JOB, "Xuhui")
    assert ids(pool.candidates) == ["helper"]
    assert pool.cross_district and pool.reason == "no provider of Xuhui eligible" == cross_reason("Xuhui")


def test_a_district_without_providers_gets_help_from_others():
    pool = district_pool([cand("helper", 2.0, {"Minhang"})], JOB, "Jing'an")
    assert ids(pool.candidates) == ["helper"] and pool.cross_district


def test_when_nobody_anywhere_is_eligible_the_districts_own_stay_so_the_ladder_waits_on_their_reasons():
    busy_own = cand("own", 0.5, {"Xuhui"}, active=2)
    off_other = cand("other", 0.5, {"Minhang"}, on_shift=False)
    pool = district_pool([busy_own, off_other], JOB, "Xuhui")
    assert (ids(pool.candidates), pool.cross_district) == (["own"], False)


def test_a_provider_that_declined_counts_as_not_eligible_so_help_may_come_from_outside():
    declined = cand("own", 0.5, {"Xuhui"})
    job = Job("meal", priority=3, location=HOME, excluded=frozenset({"own"}))
    pool = district_pool([declined, cand("helper", 5.0, {"Minhang"})], job, "Xuhui")
    assert ids(pool.candidates) == ["helper"] and pool.cross_district


def test_why_an_able_provider_of_another_district_is_not_ranked():
    assert other_district("Xuhui", False) == "serves other districts: asked only when no provider of Xuhui is eligible"
