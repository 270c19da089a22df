"""Telemetry's workers: the loops that feed the use cases (ingest, analysis, the alert consumer,
upkeep)."""
