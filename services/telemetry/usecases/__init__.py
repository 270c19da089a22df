"""Telemetry's use cases: what an alert rule or a person does, in the caller's transaction, from
the domain and the store."""
