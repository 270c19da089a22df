"""Vitals as HL7 FHIR R4: a searchset Bundle of vital-signs Observations (heart rate LOINC
8867-4, respiratory rate LOINC 9279-1, UCUM `/min`). Pure: rows in, JSON-able dicts out.

One Observation per bed, vital and minute: the minute's mean (from the 1-minute rollup), with
effectiveDateTime at the start of the minute. Per-second samples would be 86,400 resources a day
per vital; per-minute means keep a day at 2,880 while still showing every change a clinician acts on.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
_NAMESPACE = uuid.UUID("6f1d7c1e-2b1a-4f57-9a0e-6d1b8f3c9a42")  # stable ids for the same minute


VITALS = {
    "heart_rate": {"code": "8867-4", "display": "Heart rate",
                   "profile": "http://hl7.org/fhir/StructureDefinition/heartrate"},
    "respiration_rate": {"code": "9279-1", "display": "Respiratory rate",
                         "profile": "http://hl7.org/fhir/StructureDefinition/resprate"},
}


def fhir_instant(ts: datetime) -> str:
    """A FHIR dateTime/instant in UTC with a Z."""
    return ts.isoformat().replace("+00:00", "Z")


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
        "subject": {"reference": f"Patient/{resident_id}"},
        "effectiveDateTime": fhir_instant(minute),
        "valueQuantity": {"value": round(mean, 1), "unit": "/min", "system": UCUM, "code": "/min"},
        "device": {"reference": f"Device/{device_id}"},
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


def searchset(resources: list[dict[str, Any]], now: datetime, self_url: str | None = None) -> dict[str, Any]:
    """A searchset Bundle of resources, every one a match."""
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
    ]
    return bundle
