"""The FHIR R4 export of a resident's vitals and the latest state of a bed, through the real app:
the resident's beds come from the gateway's registry, values from the minute rollups."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from fhir.resources.R4B.bundle import Bundle

from gateway import registry
from homecare.auth import Role
from homecare.residents import store as residents
from tests.support import unique

from .alert_support import recent_start, store, vitals_samples
from .api_support import telemetry_client, token
from .helpers import analyse

LOINC = "http://loinc.org"


@pytest.fixture
def client(pool, broker_url):
    with telemetry_client(pool, broker_url) as client:
        yield client


def _resident(pool) -> str:
    body = residents.NewResident(name=f"R {uuid.uuid4().hex[:5]}", address="3 Test Road", district="Jingan",
                                 location=residents.Location(lat=31.22, lon=121.45))
    with pool.connection() as conn:
        return residents.enrol(conn, body).id


def _provision(pool, device_id: str, kind: str, resident: str) -> None:
    with pool.connection() as conn, conn.transaction():
        registry.provision(conn, device_id, kind, resident)


def test_a_residents_vitals_as_a_fhir_bundle_of_vital_sign_observations(client, pool):
    headers, _ = token(client, pool, Role.CITY)
    resident, neighbour = _resident(pool), _resident(pool)
    bed, button, other_bed = unique("bed"), unique("btn"), unique("bed")
    _provision(pool, bed, "bed", resident)
    _provision(pool, button, "button", resident)
    _provision(pool, other_bed, "bed", neighbour)
    start = recent_start(90).replace(second=0)
    # Three minutes: 62 then 64 bpm in the first minute (mean 63), no heart rate in the second
    # (signal lost), 70 in the third; breathing 14 throughout.
    store(pool, bed, resident, vitals_samples(start, 30, heart_rate=62) + vitals_samples(
        start + timedelta(seconds=30), 30, heart_rate=64) + vitals_samples(
        start + timedelta(minutes=1), 60, heart_rate=None) + vitals_samples(start + timedelta(minutes=2), 60,
                                                                            heart_rate=70))
    store(pool, other_bed, neighbour, vitals_samples(start, 60, heart_rate=90))
    # Samples the bed sent for someone else before it was this resident's: not theirs.
    store(pool, bed, neighbour, vitals_samples(start - timedelta(minutes=5), 60, heart_rate=99))
    analyse(pool)
    params = {"start": (start - timedelta(minutes=10)).isoformat(), "end": (start + timedelta(minutes=3)).isoformat()}
    response = client.get(f"/api/v1/residents/{resident}/observations", params=params, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    Bundle.model_validate(bundle)  # a FHIR library reads it as valid
    matches = [e for e in bundle["entry"] if e["search"]["mode"] == "match"]
    assert bundle["total"] == len(matches) == 5  # 2 heart rates + 3 respiratory rates
    resources = [e["resource"] for e in matches]
    assert all(e["fullUrl"] == f"urn:uuid:{e['resource']['id']}" for e in matches)
    # The resident and the bed that measured: included, and what the references resolve to.
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "include"}
    assert sorted(r["resourceType"] for r in by_url.values()) == ["Device", "Patient"]  # not the button
    for obs in resources:
        assert obs["resourceType"] == "Observation" and obs["status"] == "final"
        assert obs["category"][0]["coding"][0]["code"] == "vital-signs"
        patient, device = by_url[obs["subject"]["reference"]], by_url[obs["device"]["reference"]]
        assert (patient["resourceType"], patient["id"], obs["subject"]["identifier"]["value"]) == (
            "Patient", resident, resident)
        assert (device["resourceType"], device["id"]) == ("Device", bed)
        assert by_url[device["patient"]["reference"]] is patient
        assert obs["valueQuantity"]["unit"] == obs["valueQuantity"]["code"] == "/min"
        assert obs["valueQuantity"]["system"] == "http://unitsofmeasure.org"
    heart = [o for o in resources if o["code"]["coding"][0] == {"system": LOINC, "code": "8867-4",
                                                                "display": "Heart rate"}]
    breath = [o for o in resources if o["code"]["coding"][0]["code"] == "9279-1"]
    def z(ts):
        return ts.isoformat().replace("+00:00", "Z")

    # Means of a minute: dated by the minute they cover, not as an instant.
    assert [(o["effectivePeriod"], o["valueQuantity"]["value"]) for o in heart] == [
        ({"start": z(start), "end": z(start + timedelta(minutes=1))}, 63.0),
        ({"start": z(start + timedelta(minutes=2)), "end": z(start + timedelta(minutes=3))}, 70.0),
    ]
    assert all("effectiveDateTime" not in o for o in resources)
    assert [o["valueQuantity"]["value"] for o in breath] == [14.0, 14.0, 14.0]
    assert heart[0]["meta"]["profile"] == ["http://hl7.org/fhir/StructureDefinition/heartrate"]
    assert len({o["id"] for o in resources}) == 5
    # The same export again gives the same resource ids.
    again = client.get(f"/api/v1/residents/{resident}/observations", params=params, headers=headers).json()
    assert [e["resource"]["id"] for e in again["entry"]][:5] == [o["id"] for o in resources]


def test_the_export_refuses_unknown_residents_and_bad_ranges(client, pool):
    headers, _ = token(client, pool, Role.CITY)
    assert client.get("/api/v1/residents/nobody/observations", headers=headers).status_code == 404
    resident = _resident(pool)
    url = f"/api/v1/residents/{resident}/observations"
    empty = client.get(url, headers=headers)  # no beds: no matches, the Patient alone
    assert empty.status_code == 200 and empty.json()["total"] == 0
    assert [e["resource"]["resourceType"] for e in empty.json()["entry"]] == ["Patient"]
    Bundle.model_validate(empty.json())
    week = {"start": "2026-11-01T00:00:00Z", "end": "2026-11-09T00:00:00Z"}
    assert client.get(url, params=week, headers=headers).status_code == 422
    assert client.get(url, headers=token(client, pool, Role.PROVIDER)[0]).status_code == 403


def test_the_latest_state_of_a_bed(client, pool):
    headers, _ = token(client, pool, Role.CITY)
    bed, resident = unique("bed"), unique("res")
    assert client.get(f"/api/v1/devices/{bed}/latest", headers=headers).status_code == 404
    start = recent_start(5)
    store(pool, bed, resident, vitals_samples(start, 20, heart_rate=66))
    store(pool, bed, resident, vitals_samples(start - timedelta(minutes=1), 10, heart_rate=50))  # older, later
    body = client.get(f"/api/v1/devices/{bed}/latest", headers=headers).json()
    assert (body["device_id"], body["resident_id"], body["heart_rate"], body["occupied"]) == (bed, resident, 66, True)
    assert body["ts"].startswith((start + timedelta(seconds=19)).strftime("%Y-%m-%dT%H:%M:%S"))
