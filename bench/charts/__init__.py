"""Charts on weeks of bed samples: TimescaleDB and plain PostgreSQL."""
