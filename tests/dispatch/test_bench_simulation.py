"""The dispatch benchmark's simulation on a small city: the product's use cases serve every
request, providers never hold more than their capacity, and the baselines see the same world."""

import random
from datetime import timedelta

import pytest

pytest.importorskip("scipy")

from bench.dispatch import world  # noqa: E402
from bench.dispatch.baselines import greedy, hindsight_optimal  # noqa: E402
from bench.dispatch.engine import drive_minutes  # noqa: E402
from bench.dispatch.product import ProductDispatch  # noqa: E402


class Checked(ProductDispatch):
    """The product's dispatch, with the world refusing to see a provider over its capacity."""

    def _take(self, worker, request):
        assert request.provider_id == worker.id and request.status.value == "assigned"
        super()._take(worker, request)
        assert len(worker.jobs) <= worker.spec.capacity, f"{worker.id} over capacity"
        assert set(worker.jobs) == {r.id for rid in self.repos.requests.by_provider[worker.id]
                                    if (r := self.repos.requests.rows[rid].request).status.value in
                                    ("assigned", "en_route", "arrived")}


@pytest.fixture(scope="module")
def city():
    rng = random.Random(5)
    people = world.residents(150, rng)
    fleet = world.providers(12, rng)
    return world.requests(people, rng, scale=1.5), fleet


def test_every_request_is_served_by_a_qualified_provider_after_it_was_made(city):
    specs, fleet = city
    product = Checked(specs, fleet, responses=world.Responses(5), seed=5)
    outcomes = product.run(world.DAY0 + timedelta(days=3))
    assert len(specs) > 100 and set(outcomes) == {s.id for s in specs}
    for o in outcomes.values():
        assert o.spec.created <= o.assigned <= o.arrived <= o.completed
        assert o.completed - o.arrived >= timedelta(minutes=o.spec.service_minutes) - timedelta(seconds=1)
    # Most went through offers (a few, with nobody qualified on shift, straight to a dispatcher),
    # and some offers were declined or lapsed and went to the next provider.
    assert sum(o.offers > 0 for o in outcomes.values()) > 0.8 * len(specs)
    assert any(o.offers > 1 for o in outcomes.values())
    assert all(o.offers > 0 or o.escalated for o in outcomes.values())
    # The product's own records say so: its repositories.
    statuses = {row.request.status.value for row in product.repos.requests.rows.values()}
    assert statuses == {"completed"} and len(product.repos.requests.rows) == len(specs)


def test_baselines_serve_everyone_no_sooner_than_the_drive_allows(city):
    specs, fleet = city
    responses = world.Responses(5)
    for arrivals in (greedy(specs, fleet, 25.0, responses), hindsight_optimal(specs, fleet, 25.0, responses)):
        assert set(arrivals) == {s.id for s in specs}
        nearest = {s.id: min(drive_minutes(p.home, s.location, 25.0) for p in fleet) for s in specs}
        assert all(arrivals[s.id] >= s.created for s in specs)
        assert sum((arrivals[s.id] - s.created).total_seconds() / 60 for s in specs) > 0.5 * sum(nearest.values())


def test_responses_are_fixed_per_request_and_provider():
    responses = world.Responses(3)
    assert responses.answer("r-1", "p-1") == responses.answer("r-1", "p-1")
    answers = [responses.answer(f"r-{i}", "p-1")[0] for i in range(2000)]
    assert 0.87 < answers.count("accept") / 2000 < 0.93 and answers.count(None) > 0
    assert world.Responses(3, instant=True).answer("r-1", "p-1") == ("accept", 0.0)
