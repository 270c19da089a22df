"""Telemetry service: bed sample ingest, vitals queries and (later) rollups and alert rules."""
