"""Vitals as HL7 FHIR R4: a searchset Bundle of vital-signs Observations (heart rate LOINC
8867-4, respiratory rate LOINC 9279-1, UCUM `/min`), with the Patient they are about and the
Devices (beds) that measured them as included resources. Pure: rows in, JSON-able dicts out.

One Observation per bed, vital and minute: the minute's mean (from the 1-minute rollup). A mean
is not a reading at an instant, so it is dated with `effectivePeriod` (the minute it covers), as
FHIR asks of aggregates. Per-second samples would be 86,400 resources a day per vital; per-minute
means keep a day at 2,880 while still showing every change a clinician acts on.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
_NAMESPACE = uuid.UUID("6f1d7c1e-2b1a-4f57-9a0e-6d1b8f3c9a42")  # stable ids for the same minute
IDENTIFIER_SYSTEM = "urn:homecare:id"  # our own ids, as identifiers a receiving system can match on
MINUTE = timedelta(minutes=1)


VITALS = {
    "heart_rate": {"code": "8867-4", "display": "Heart rate",
                   "profile": "http://hl7.org/fhir/StructureDefinition/heartrate"},
    "respiration_rate": {"code": "9279-1", "display": "Respiratory rate",
                         "profile": "http://hl7.org/fhir/StructureDefinition/resprate"},
}


def fhir_instant(ts: datetime) -> str:
    """A FHIR dateTime/instant in UTC with a Z."""
    return ts.isoformat().replace("+00:00", "Z")


def full_url(resource_type: str, our_id: str) -> str:
    """The Bundle entry name of a Patient or Device: a stable UUID of its type and our id."""
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{resource_type}/{our_id}')}"


def reference(resource_type: str, our_id: str) -> dict[str, Any]:
    """A reference to an included Patient or Device: its entry's fullUrl (resolvable inside the
    Bundle) with our id as its identifier (resolvable by a receiving system)."""
    return {"reference": full_url(resource_type, our_id), "type": resource_type,
            "identifier": {"system": IDENTIFIER_SYSTEM, "value": our_id}}


def observation(resident_id: str, device_id: str, minute: datetime, vital: str, mean: float,
                low: int | None, high: int | None, count: int) -> dict[str, Any]:
    """One vital-signs Observation: the mean of a vital over one minute of one bed."""
    spec = VITALS[vital]
    return {
        "resourceType": "Observation",
        "id": str(uuid.uuid5(_NAMESPACE, f"{device_id}|{vital}|{fhir_instant(minute)}")),
        "meta": {"profile": [spec["profile"]]},
        "status": "final",
        "category": [{
            "coding": [{"system": CATEGORY_SYSTEM, "code": "vital-signs", "display": "Vital Signs"}],
            "text": "Vital Signs",
        }],
        "code": {"coding": [{"system": LOINC, "code": spec["code"], "display": spec["display"]}],
                 "text": spec["display"]},
        "subject": reference("Patient", resident_id),
        "effectivePeriod": {"start": fhir_instant(minute), "end": fhir_instant(minute + MINUTE)},
        "valueQuantity": {"value": round(mean, 1), "unit": "/min", "system": UCUM, "code": "/min"},
        "device": reference("Device", device_id),
        "note": [{"text": f"mean of {count} readings in the minute (lowest {low}, highest {high})"}],
    }


def observations(resident_id: str, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Observations of minute rollup rows (device_id, bucket, <vital>, <vital>_min, _max, _count)."""
    out = []
    for row in rows:
        for vital in VITALS:
            if row[f"{vital}_count"]:
                out.append(observation(resident_id, row["device_id"], row["bucket"], vital, row[vital],
                                       row[f"{vital}_min"], row[f"{vital}_max"], row[f"{vital}_count"]))
    return out


def patient(resident_id: str, name: str, address: str, district: str,
            contacts: Iterable[tuple[str, str | None, str | None]] = ()) -> dict[str, Any]:
    """The resident as a Patient: name, home address and district, and the family contacts
    (name, phone, relation) the service centre calls."""
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": resident_id,
        "identifier": [{"system": IDENTIFIER_SYSTEM, "value": resident_id}],
        "active": True,
        "name": [{"text": name}],
        "address": [{"use": "home", "text": address, "district": district}],
    }
    people = []
    for contact_name, phone, relation in contacts:
        person: dict[str, Any] = {"name": {"text": contact_name}}
        if relation:
            person["relationship"] = [{"text": relation}]
        if phone:
            person["telecom"] = [{"system": "phone", "value": phone}]
        people.append(person)
    if people:
        resource["contact"] = people
    return resource


DEVICE_NAMES = {"bed": "Smart care bed", "button": "One-click service button"}


def device(device_id: str, kind: str, resident_id: str, firmware: str | None = None) -> dict[str, Any]:
    """A device of the resident's home as a FHIR Device, pointing at its Patient."""
    resource: dict[str, Any] = {
        "resourceType": "Device",
        "id": device_id,
        "identifier": [{"system": IDENTIFIER_SYSTEM, "value": device_id}],
        "status": "active",
        "type": {"text": DEVICE_NAMES.get(kind, kind)},
        "patient": reference("Patient", resident_id),
    }
    if firmware:
        resource["version"] = [{"type": {"text": "firmware"}, "value": firmware}]
    return resource


def searchset(resources: list[dict[str, Any]], now: datetime, self_url: str | None = None,
              included: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A searchset Bundle: `resources` are the matches (`total` counts them), `included` the
    resources they refer to (the Patient, the Devices)."""
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "searchset",
        "timestamp": fhir_instant(now),
        "total": len(resources),
    }
    if self_url:
        bundle["link"] = [{"relation": "self", "url": self_url}]
    bundle["entry"] = [
        {"fullUrl": f"urn:uuid:{r['id']}", "resource": r, "search": {"mode": "match"}} for r in resources
    ] + [
        {"fullUrl": full_url(r["resourceType"], r["id"]), "resource": r, "search": {"mode": "include"}}
        for r in included or []
    ]
    return bundle
