"""Telemetry's one public interface: vitals and alerts for the console, its settings and the
job watch. Everything else in `services.telemetry` is its own (an import-linter contract in
pyproject.toml keeps it so)."""

import psycopg

from services.telemetry.alert_queries import get_alert, list_alerts, open_device_alerts, selftests_of
from services.telemetry.queries import beds_vitals, latest_states, vitals
from services.telemetry.settings import TelemetrySettings
from services.telemetry.usecases import alert_actions
from services.telemetry.usecases.context import Alerting
from services.telemetry.workers.maintenance import JobWatch

_ALERTING = Alerting()  # what the console does to alerts, it does on PostgreSQL in its own transaction


def acknowledge_alert(conn: psycopg.Connection, alert_id: str, by: str) -> None:
    alert_actions.acknowledge(conn, _ALERTING, alert_id, by)


def assign_alert(conn: psycopg.Connection, alert_id: str, assignee: str, by: str) -> None:
    alert_actions.assign(conn, _ALERTING, alert_id, assignee, by)


def resolve_alert(conn: psycopg.Connection, alert_id: str, by: str, note: str | None) -> None:
    alert_actions.resolve(conn, _ALERTING, alert_id, by, note)


__all__ = [
    "JobWatch", "TelemetrySettings", "acknowledge_alert", "assign_alert", "beds_vitals", "get_alert",
    "latest_states", "list_alerts", "open_device_alerts", "resolve_alert", "selftests_of", "vitals",
]
