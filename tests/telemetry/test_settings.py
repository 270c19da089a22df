"""Configuration: HOMECARE_TELEMETRY_* reaches the rule defaults and the TimescaleDB policies."""

from __future__ import annotations

from datetime import time

from services.telemetry.settings import TelemetrySettings
from services.telemetry.store.alert_settings import defaults_from
from services.telemetry.store.timescale import policy_statements


def test_environment_sets_the_rule_defaults(monkeypatch):
    monkeypatch.setenv("HOMECARE_TELEMETRY_ALERT_HR_HIGH", "110")
    monkeypatch.setenv("HOMECARE_TELEMETRY_ALERT_NIGHT_START", "21:00")
    monkeypatch.setenv("HOMECARE_TELEMETRY_ALERT_TIMEZONE", "Asia/Hong_Kong")
    monkeypatch.setenv("HOMECARE_TELEMETRY_RAW_RETENTION_DAYS", "30")
    config = TelemetrySettings()
    limits = defaults_from(config)
    assert (limits.hr_high, limits.night_start, limits.timezone) == (110, time(21, 0), "Asia/Hong_Kong")
    assert (limits.hr_low, limits.sustain_s, limits.bed_exit_minutes, limits.still_minutes) == (40, 120, 30, 120)
    assert config.raw_retention_days == 30


def test_timescale_policies_follow_the_settings():
    statements = policy_statements(TelemetrySettings(compress_after_days=7, raw_retention_days=90,
                                                     rollup_1m_retention_days=730, rollup_1h_retention_days=0))
    added = [(sql.split("(")[0].split()[-1], params) for sql, params in statements if "add_" in sql]
    assert added == [
        ("add_compression_policy", ("telemetry.bed_samples", 7)),
        ("add_retention_policy", ("telemetry.bed_samples", 90)),
        ("add_retention_policy", ("telemetry.vitals_1m", 730)),
        ("add_continuous_aggregate_policy", ("telemetry.vitals_1m", 8, "1 minute", "1 minute")),
        ("add_continuous_aggregate_policy", ("telemetry.vitals_1h", 8, "1 hour", "5 minutes")),
    ]
    removed = [params[0] for sql, params in statements if "remove_" in sql]
    assert removed == ["telemetry.bed_samples", "telemetry.bed_samples", "telemetry.vitals_1m", "telemetry.vitals_1h",
                       "telemetry.vitals_1m", "telemetry.vitals_1h"]


def test_the_aggregates_refresh_no_further_back_than_their_source_is_kept():
    statements = policy_statements(TelemetrySettings(raw_retention_days=3, rollup_1m_retention_days=5))
    reach = {params[0]: params[1] for sql, params in statements if "add_continuous_aggregate_policy" in sql}
    assert reach == {"telemetry.vitals_1m": 3, "telemetry.vitals_1h": 5}


def test_a_refresh_policy_that_already_reaches_as_far_as_it_should_is_left_alone():
    """Adding it again would make a new job, due at once, on every start of every replica."""
    statements = policy_statements(TelemetrySettings(), {"telemetry.vitals_1m": 8, "telemetry.vitals_1h": 8})
    assert not [sql for sql, _ in statements if "continuous_aggregate_policy" in sql]
    statements = policy_statements(TelemetrySettings(raw_retention_days=3), {"telemetry.vitals_1m": 8,
                                                                            "telemetry.vitals_1h": 8})
    assert [params for sql, params in statements if "add_continuous_aggregate_policy" in sql] == [
        ("telemetry.vitals_1m", 3, "1 minute", "1 minute")]

