"""Telemetry's storage: data functions over PostgreSQL and TimescaleDB (samples, rollups, alerts,
rule state, alert settings, policies and jobs); they take a connection and do not commit."""
