"""Telemetry's domain: pure rules, parsing and mappings (samples, alert rules and lifecycle, FHIR,
falls); no I/O."""
