"""A district at night, made through the directory, the registry and telemetry's store: one
resident asleep, one just got up, one whose bed went quiet, one whose bed never spoke, one
without a bed; and a neighbour in another district."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.telemetry.domain.samples import SampleRow

from .dispatching import new_resident
from .vitals import provision, store

EVERY = timedelta(seconds=20)


@dataclass(frozen=True)
class Night:
    name: str  # the district's
    now: datetime  # the samples' clock: the newest is 5 s before it
    end: datetime  # the next whole minute: the overview's last hour ends there
    residents: dict[str, str]  # who -> resident id
    beds: dict[str, str]  # who -> bed id
    neighbour_bed: str  # in another district


def _samples(bed: str, resident: str, start: datetime, stop: datetime, in_bed, heart: int = 62) -> list[SampleRow]:
    rows, t = [], start
    while t <= stop:
        occupied = in_bed(t)
        rows.append(SampleRow(t, bed, resident, occupied, heart if occupied else None, 14 if occupied else None,
                              0.1 if occupied else 0.0))
        t += EVERY
    return rows


def night(pool, now: datetime | None = None) -> Night:
    """A district of five residents (names sort as listed: Asleep, Newbie, Nobed, Quiet, Wanderer)."""
    now = (now or datetime.now(UTC)).replace(second=45, microsecond=0) - timedelta(minutes=1)
    end = now.replace(second=0) + timedelta(minutes=1)
    name = f"Night district {uuid.uuid4().hex[:8]}"
    residents = {who: new_resident(pool, f"{who} {name[-8:]}", district=name)[0]
                 for who in ("Asleep", "Wanderer", "Quiet", "Newbie", "Nobed")}
    beds = {who: provision(pool, rid, "bed") for who, rid in residents.items() if who != "Nobed"}
    neighbour = new_resident(pool, "Neighbour", district=f"{name} (next door)")[0]
    neighbour_bed = provision(pool, neighbour, "bed")
    hour_ago, last = end - timedelta(hours=1), now - timedelta(seconds=5)
    store(pool, [
        # In bed for the last 20 minutes only.
        *_samples(beds["Asleep"], residents["Asleep"], hour_ago, last, lambda t: t >= end - timedelta(minutes=20)),
        # Got up 5 minutes ago.
        *_samples(beds["Wanderer"], residents["Wanderer"], hour_ago, last, lambda t: t < end - timedelta(minutes=5)),
        # In bed, then nothing for the last half hour.
        *_samples(beds["Quiet"], residents["Quiet"], hour_ago, end - timedelta(minutes=30, seconds=1),
                  lambda t: True, heart=70),
        *_samples(neighbour_bed, neighbour, hour_ago, last, lambda t: True),
    ])
    return Night(name, now, end, residents, beds, neighbour_bed)
