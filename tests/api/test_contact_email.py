"""A resident's contacts carry an e-mail address and the resident's consent to notify them;
hostile values are a 422 that names the field and says why (issue 13)."""

from __future__ import annotations

import pytest

RESIDENT = {"name": "Wang Fang", "address": "1 Test Road", "district": "Huangpu",
            "location": {"lat": 31.2, "lon": 121.4}}


def test_a_contact_with_an_email_and_consent_is_stored_and_read_back(client, dispatcher):
    contact = {"name": "Li Wei", "relation": "son", "phone": "+86 21 5555", "email": "li.wei@example.org",
               "notify": True}
    r = client.post("/api/v1/residents", json={**RESIDENT, "contacts": [contact, {"name": "No consent"}]},
                    headers=dispatcher)
    assert r.status_code == 201, r.text
    got = client.get(f"/api/v1/residents/{r.json()['id']}", headers=dispatcher).json()["contacts"]
    assert got[0]["email"] == "li.wei@example.org" and got[0]["notify"] is True
    assert got[1]["email"] is None and got[1]["notify"] is False  # never without consent


@pytest.mark.parametrize("email, why", [
    ("li\u0000wei@example.org", "nul characters"),
    ("a" * 250 + "@example.org", "at most 254 characters"),
    ("not an email", "e-mail address"),
    ("li@localhost", "e-mail address"),
    ("li@example.org\r\nBcc: all@example.org", "control characters"),
    (42, "string"),
])
def test_a_hostile_contact_email_is_422_with_the_reason(client, dispatcher, email, why):
    body = {**RESIDENT, "contacts": [{"name": "x", "email": email}]}
    r = client.post("/api/v1/residents", json=body, headers=dispatcher)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert [e["loc"] for e in detail] == [["body", "contacts", 0, "email"]]
    assert why in detail[0]["msg"].lower() or why in detail[0]["msg"]


@pytest.mark.parametrize("flag", ["yes", 1, None])
def test_consent_is_true_or_false_only(client, dispatcher, flag):
    body = {**RESIDENT, "contacts": [{"name": "x", "email": "x@example.org", "notify": flag}]}
    r = client.post("/api/v1/residents", json=body, headers=dispatcher)
    assert r.status_code == 422, r.text
    assert [e["loc"] for e in r.json()["detail"]] == [["body", "contacts", 0, "notify"]]
