"""Telemetry's one public interface: vitals and alerts for the console, its settings and the
job watch. Everything else in `services.telemetry` is its own (an import-linter contract in
pyproject.toml keeps it so)."""

from services.telemetry.alert_queries import get_alert, list_alerts
from services.telemetry.queries import beds_vitals, latest_states, vitals
from services.telemetry.settings import TelemetrySettings
from services.telemetry.usecases.alert_actions import acknowledge as acknowledge_alert
from services.telemetry.usecases.alert_actions import assign as assign_alert
from services.telemetry.usecases.alert_actions import resolve as resolve_alert
from services.telemetry.workers.maintenance import JobWatch

__all__ = [
    "JobWatch", "TelemetrySettings", "acknowledge_alert", "assign_alert", "beds_vitals", "get_alert",
    "latest_states", "list_alerts", "resolve_alert", "vitals",
]
