"""Telemetry's one public interface: vitals and alerts for the console, its settings and the
job watch. Everything else in `services.telemetry` is its own (an import-linter contract in
pyproject.toml keeps it so)."""

from .alert_queries import get_alert, list_alerts
from .alerts.actions import acknowledge as acknowledge_alert
from .alerts.actions import assign as assign_alert
from .alerts.actions import resolve as resolve_alert
from .maintenance import JobWatch
from .queries import beds_vitals, latest_states, vitals
from .settings import TelemetrySettings

__all__ = [
    "JobWatch", "TelemetrySettings", "acknowledge_alert", "assign_alert", "beds_vitals", "get_alert",
    "latest_states", "list_alerts", "resolve_alert", "vitals",
]
