"""The system page shows the notification rules in force, read-only, and never the secrets."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def notify_env(monkeypatch):
    rules = [{"services": ["emergency"], "districts": ["North"], "channel": "webhook", "recipients": ["+3612345"]},
             {"severities": ["critical"], "channel": "email", "recipients": ["oncall@example.org", "family"]}]
    monkeypatch.setenv("HOMECARE_NOTIFY_RULES", json.dumps(rules))
    monkeypatch.setenv("HOMECARE_NOTIFY_WEBHOOK_URL", "http://127.0.0.1:9/page")
    monkeypatch.setenv("HOMECARE_NOTIFY_WEBHOOK_SECRET", "do-not-show-me")


def test_the_system_page_lists_the_rules_and_channels(notify_env, signed_in):
    page = signed_in.get("/system")
    assert page.status_code == 200
    html = page.text[page.text.index('id="notifications"'):]
    assert "oncall@example.org, family" in html and "+3612345" in html and "North" in html
    assert "Channels configured:\n    webhook." in html
    assert "do-not-show-me" not in page.text
