"""What a notification is and who gets it: pure (no I/O), so routing and re-announcing are
decided the same in the service and in memory-only rule tests."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from homecare.api.types import no_control_characters

SEVERITIES = ("critical", "high", "medium", "low")
# What causes a notice; a routing rule may name the ones it is for.
TRIGGERS = ("request.escalated", "request.reannounced", "request.late", "alert.raised", "alert.reannounced")
Channel = Literal["email", "webhook"]
# A recipient of a rule that stands for the resident's family contacts who agreed to be told.
FAMILY = "family"
# Telemetry's alerts route as this "service" (requests route by their care service).
ALERT_SERVICE = "alert"

_Text = Annotated[str, Field(min_length=1, max_length=254), AfterValidator(no_control_characters)]


class RoutingRule(BaseModel):
    """Who is told of what: a notice matches when each list the rule has names its value (an
    empty or missing list matches everything). `recipients` are e-mail addresses (channel email)
    or numbers / pager ids (channel webhook); "family" adds the resident's consenting contacts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    services: list[_Text] = Field(default_factory=list, max_length=20)
    severities: list[Literal["critical", "high", "medium", "low"]] = Field(default_factory=list)
    districts: list[_Text] = Field(default_factory=list, max_length=200)
    triggers: list[Literal["request.escalated", "request.reannounced", "request.late", "alert.raised",
                           "alert.reannounced"]] = Field(
        default_factory=list
    )
    channel: Channel
    recipients: list[_Text] = Field(min_length=1, max_length=50)

    def matches(self, notice: Notice) -> bool:
        return all((
            not self.services or notice.service in self.services,
            not self.severities or notice.severity in self.severities,
            not self.districts or (notice.district or "") in self.districts,
            not self.triggers or notice.trigger in self.triggers,
        ))


@dataclass(frozen=True)
class Notice:
    """One thing to tell people, as the outbox keeps it. `subject_id` is the request's or
    alert's id (whose timeline records the deliveries)."""

    trigger: str
    subject_id: str
    severity: str
    service: str
    resident_id: str | None
    title: str
    text: str
    district: str | None = None
    path: str | None = None  # the console's page of it, e.g. /alerts/al-1; the sender makes the link
    link: str | None = None
    resident_name: str | None = None  # filled in by the sender from the residents' directory

    def as_json(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger, "subject_id": self.subject_id, "severity": self.severity,
            "service": self.service, "resident_id": self.resident_id, "district": self.district,
            "title": self.title, "text": self.text, "path": self.path, "link": self.link,
            "resident_name": self.resident_name,
        }


@dataclass(frozen=True)
class FamilyContact:
    """A resident's contact as routing needs it."""

    name: str
    email: str | None = None
    phone: str | None = None
    consent: bool = False


PENDING, SENT, FAILED = "pending", "sent", "failed"


@dataclass(frozen=True)
class Delivery:
    """One notice to one recipient on one channel, with how far it got."""

    channel: str
    to: str
    state: str = PENDING
    attempts: int = 0
    error: str | None = None
    family: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"channel": self.channel, "to": self.to, "state": self.state, "attempts": self.attempts,
                "error": self.error, "family": self.family}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Delivery:
        return cls(channel=raw["channel"], to=raw["to"], state=raw.get("state", PENDING),
                   attempts=int(raw.get("attempts", 0)), error=raw.get("error"), family=bool(raw.get("family")))


def route(notice: Notice, rules: list[RoutingRule], family: list[FamilyContact]) -> list[Delivery]:
    """Every delivery the rules ask for, once per channel and recipient. Family contacts are told
    only where they agreed (`consent`), on a channel they have an address for."""
    out: dict[tuple[str, str], Delivery] = {}
    for rule in rules:
        if not rule.matches(notice):
            continue
        for recipient in rule.recipients:
            if recipient != FAMILY:
                out.setdefault((rule.channel, recipient), Delivery(rule.channel, recipient))
                continue
            for contact in family:
                address = contact.email if rule.channel == "email" else contact.phone
                if contact.consent and address:
                    out.setdefault((rule.channel, address), Delivery(rule.channel, address, family=True))
    return list(out.values())


def attempted(delivery: Delivery, error: str | None, max_attempts: int) -> Delivery:
    """The delivery after one more try: sent, still pending (to retry), or failed for good."""
    attempts = delivery.attempts + 1
    if error is None:
        return replace(delivery, state=SENT, attempts=attempts, error=None)
    state = FAILED if attempts >= max_attempts else PENDING
    return replace(delivery, state=state, attempts=attempts, error=error[:500])


def backoff(attempts: int, base: timedelta, cap: timedelta) -> timedelta:
    """How long to wait before the next try after `attempts` tries: doubling, capped."""
    return min(base * (2 ** max(attempts - 1, 0)), cap)


def request_severity(service: str, priority: int) -> str:
    """An escalated request's severity: an emergency is critical; the rest by priority."""
    if service == "emergency" or priority <= 1:
        return "critical"
    return {2: "high", 3: "medium"}.get(priority, "low")


@dataclass(frozen=True)
class Reannounce:
    """When a notice nobody answered is announced again: `every` after the last time."""

    every: timedelta
    severities: tuple[str, ...] = ("critical",)
    services: tuple[str, ...] = field(default=("emergency",))

    def alert_applies(self, severity: str) -> bool:
        """Whether an alert of this severity is re-announced while nobody acknowledges it."""
        return severity in self.severities

    def request_applies(self, service: str) -> bool:
        """Whether an escalated request of this service is re-announced while nobody takes it."""
        return service in self.services

    def next_at(self, last: datetime) -> datetime:
        return last + self.every

    def due(self, last: datetime, now: datetime) -> bool:
        return now >= self.next_at(last)
