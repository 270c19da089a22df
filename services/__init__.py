"""Platform services: telemetry and dispatch."""
