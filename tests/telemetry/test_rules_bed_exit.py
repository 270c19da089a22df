"""Night bed exits: out longer than 30 minutes at night alerts; short, daytime or attended
exits do not; events out of order are handled."""

from __future__ import annotations

from datetime import time, timedelta

from services.telemetry.domain.rules import bed_exit
from services.telemetry.domain.rules.limits import RuleLimits
from services.telemetry.domain.rules.model import Rule
from services.telemetry.domain.rules.night import is_night, last_ended_night, night_bounds

from .rules_support import at_shanghai

LIMITS = RuleLimits()
EMPTY = bed_exit.Presence("bed-1", "res-1")
NIGHT = at_shanghai(20, 2, 0)
DAY = at_shanghai(20, 14, 0)


def _returned_after(minutes: float, exit_at=NIGHT, attended=False):
    presence = bed_exit.after_exit(EMPTY, exit_at, attended)
    presence = bed_exit.after_entry(presence, exit_at + timedelta(minutes=minutes))
    return bed_exit.verdict(presence, exit_at + timedelta(hours=5), LIMITS, attended_now=False)


def test_the_night_window_is_local_time_and_spans_midnight():
    assert is_night(at_shanghai(20, 22, 0), LIMITS) and is_night(at_shanghai(21, 5, 59), LIMITS)
    assert not is_night(at_shanghai(20, 21, 59), LIMITS) and not is_night(at_shanghai(21, 6, 0), LIMITS)
    assert not is_night(DAY, LIMITS)
    # In UTC, 02:00 Shanghai is 18:00 of the previous day: the zone matters.
    assert NIGHT.hour == 18
    start, end = night_bounds(at_shanghai(20, 12).date(), LIMITS)
    assert (start, end) == (at_shanghai(20, 22, 0), at_shanghai(21, 6, 0))
    assert last_ended_night(at_shanghai(21, 7, 0), LIMITS) == at_shanghai(20, 12).date()
    assert last_ended_night(at_shanghai(21, 5, 0), LIMITS) == at_shanghai(19, 12).date()


def test_returning_at_29_minutes_is_quiet_and_at_31_minutes_alerts():
    assert _returned_after(29) is None
    assert _returned_after(30) is None  # within 30 minutes
    found = _returned_after(31)
    assert found is not None and found.rule is Rule.NIGHT_BED_EXIT
    assert found.started_at == NIGHT and "returned after 31 minutes" in found.summary
    assert found.evidence["returned_at"] is not None


def test_exits_by_day_and_exits_while_a_provider_is_on_site_are_quiet():
    assert _returned_after(90, exit_at=DAY) is None
    assert _returned_after(90, attended=True) is None
    presence = bed_exit.after_exit(EMPTY, NIGHT, attended=False)
    assert bed_exit.verdict(presence, NIGHT + timedelta(minutes=40), LIMITS, attended_now=True) is None


def test_not_back_by_the_deadline_alerts_when_the_timer_is_due():
    presence = bed_exit.after_exit(EMPTY, NIGHT, attended=False)
    assert bed_exit.due_at(presence, LIMITS) == NIGHT + timedelta(minutes=30, seconds=1)  # past the limit
    assert bed_exit.verdict(presence, NIGHT + timedelta(minutes=30), LIMITS, attended_now=False) is None
    found = bed_exit.verdict(presence, NIGHT + timedelta(minutes=31), LIMITS, attended_now=False)
    assert found is not None and "not back after 31 minutes" in found.summary
    # A daytime exit sets no timer; an exit followed by an entry neither.
    assert bed_exit.due_at(bed_exit.after_exit(EMPTY, DAY, False), LIMITS) is None
    assert bed_exit.due_at(bed_exit.after_entry(presence, NIGHT + timedelta(minutes=5)), LIMITS) is None


def test_events_out_of_order_and_repeated():
    # The entry arrives before the exit it follows.
    presence = bed_exit.after_entry(EMPTY, NIGHT + timedelta(minutes=10))
    presence = bed_exit.after_exit(presence, NIGHT, attended=False)
    assert not bed_exit.out_of_bed(presence)
    assert bed_exit.verdict(presence, NIGHT + timedelta(hours=2), LIMITS, attended_now=False) is None
    # An older exit delivered late does not replace a newer one.
    newer = bed_exit.after_exit(EMPTY, NIGHT + timedelta(minutes=50), attended=False)
    assert bed_exit.after_exit(newer, NIGHT, attended=True) == newer
    assert bed_exit.after_entry(bed_exit.after_entry(EMPTY, NIGHT), NIGHT) == bed_exit.after_entry(EMPTY, NIGHT)


def test_a_residents_own_night_limit_and_zone():
    mine = LIMITS.override({"bed_exit_minutes": 10, "timezone": "Europe/Berlin",
                            "night_start": time(23, 0), "night_end": time(7, 0)})
    # 02:00 in Shanghai is 19:00 in Berlin: evening, not night there.
    presence = bed_exit.after_exit(EMPTY, NIGHT, attended=False)
    assert bed_exit.verdict(presence, NIGHT + timedelta(hours=1), mine, attended_now=False) is None
    berlin_night = NIGHT + timedelta(hours=6)  # 01:00 in Berlin
    presence = bed_exit.after_exit(EMPTY, berlin_night, attended=False)
    assert bed_exit.verdict(presence, berlin_night + timedelta(minutes=11), mine, attended_now=False) is not None


def test_an_exit_during_a_visit_counts_from_the_end_of_the_visit():
    during = bed_exit.after_exit(EMPTY, NIGHT, attended=True)
    # While the provider is there: no timer of its own, a look every VISIT_RECHECK, no alert.
    assert bed_exit.due_at(during, LIMITS) is None and bed_exit.watching_visit(during, LIMITS)
    assert bed_exit.verdict(during, NIGHT + timedelta(hours=3), LIMITS, attended_now=False) is None
    ended_at = NIGHT + timedelta(minutes=50)
    after = bed_exit.visit_over(during, ended_at)
    assert not bed_exit.watching_visit(after, LIMITS)
    assert bed_exit.due_at(after, LIMITS) == ended_at + timedelta(minutes=30, seconds=1)
    assert bed_exit.verdict(after, ended_at + timedelta(minutes=30), LIMITS, attended_now=False) is None
    found = bed_exit.verdict(after, ended_at + timedelta(minutes=31), LIMITS, attended_now=False)
    assert found is not None and "not back after 31 minutes after the provider's visit ended" in found.summary
    assert found.started_at == NIGHT and found.evidence["visit_ended_at"].startswith(ended_at.strftime("%Y-%m-%dT%H"))
    # Back in bed before the visit ended, or soon after it: nothing; long after it: an alert.
    assert bed_exit.verdict(bed_exit.after_entry(after, ended_at - timedelta(minutes=5)), ended_at + timedelta(
        hours=2), LIMITS, attended_now=False) is None
    assert bed_exit.verdict(bed_exit.after_entry(after, ended_at + timedelta(minutes=20)), ended_at + timedelta(
        hours=2), LIMITS, attended_now=False) is None
    late = bed_exit.verdict(bed_exit.after_entry(after, ended_at + timedelta(minutes=45)), ended_at + timedelta(
        hours=2), LIMITS, attended_now=False)
    assert late is not None and "returned after 45 minutes after the provider's visit ended" in late.summary
    # A new exit starts afresh.
    assert bed_exit.after_exit(after, NIGHT + timedelta(hours=2), attended=False).visit_ended_at is None


def test_the_nights_a_span_of_minutes_falls_in():
    from services.telemetry.domain.rules.night import nights_touching

    first_night = at_shanghai(20, 23, 0).date()  # the night that begins on the 20th
    assert nights_touching(at_shanghai(20, 23, 0), at_shanghai(21, 1, 0), LIMITS) == [first_night]
    assert nights_touching(at_shanghai(21, 12, 0), at_shanghai(21, 13, 0), LIMITS) == []  # the afternoon
    spans = nights_touching(at_shanghai(21, 5, 0), at_shanghai(21, 22, 30), LIMITS)
    assert spans == [first_night, first_night + timedelta(days=1)]
