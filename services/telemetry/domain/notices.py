"""An alert as a notice to people outside the console (homecare/notify). Every alert opened is
one: the routing rules decide by severity (and district) who hears of it, device faults and
residents' alerts alike; a critical alert nobody acknowledges is announced again."""

from __future__ import annotations

from typing import Any

from homecare.notify.model import ALERT_SERVICE, Notice


def label(rule: str) -> str:
    return rule.replace("_", " ").capitalize()


def raised(alert_id: str, rule: str, severity: str, resident_id: str, summary: str) -> Notice:
    return Notice(
        trigger="alert.raised", subject_id=alert_id, severity=severity, service=ALERT_SERVICE,
        resident_id=resident_id, title=f"{label(rule)} ({severity})", text=summary, path=f"/alerts/{alert_id}",
    )


def reannounced(alert: dict[str, Any], count: int) -> Notice:
    return Notice(
        trigger="alert.reannounced", subject_id=alert["id"], severity=alert["severity"], service=ALERT_SERVICE,
        resident_id=alert["resident_id"], title=f"{label(alert['rule'])} ({alert['severity']}): not acknowledged",
        text=f"{alert['summary']} Nobody has acknowledged this alert yet (announcement {count + 1}).",
        path=f"/alerts/{alert['id']}",
    )
