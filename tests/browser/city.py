"""A small city for the browser tests, made through the operator API and real device clients."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from homecare.contract import format_ts
from homecare.topics import DeviceChannel
from tests.e2e.conftest import Api
from tests.support import FakeDevice, unique

PASSWORD = "browser-pass-1"

HOMES = [
    ("Wang Xiuying", "88 Wuning Road, Apt 1203", "Putuo", 31.2397, 121.4260,
     [{"name": "Wang Lei", "phone": "+86 138 0000 0001", "relation": "son"}], "Diabetic; uses a walker."),
    ("Chen Guilan", "12 Changshou Road, Apt 502", "Putuo", 31.2440, 121.4380,
     [{"name": "Chen Min", "phone": "+86 139 0000 0002", "relation": "daughter"}], None),
    ("Zhao Meiling", "301 Yanping Road, Apt 8", "Jing'an", 31.2310, 121.4470,
     [{"name": "Zhao Qiang", "phone": "+86 137 0000 0003", "relation": "nephew"}], "Hard of hearing: knock loudly."),
    ("Liu Shufen", "45 Kangding Road, Apt 1101", "Jing'an", 31.2350, 121.4520, [], None),
    ("Sun Yulan", "9 Caoyang Road, Apt 304", "Putuo", 31.2480, 121.4200,
     [{"name": "Sun Hao", "phone": "+86 136 0000 0005", "relation": "grandson"}], None),
]


@dataclass
class City:
    """Who lives where, who works, and the accounts to sign in with."""

    admin: Api
    tag: str
    residents: dict[str, dict] = field(default_factory=dict)  # name -> resident
    devices: dict[str, dict] = field(default_factory=dict)  # "<name>/<kind>" -> {id, secret, ...}
    providers: dict[str, dict] = field(default_factory=dict)  # name -> provider

    def resident(self, name: str) -> dict:
        return self.residents[name]

    def device(self, name: str, kind: str) -> dict:
        return self.devices[f"{name}/{kind}"]

    def enrol(self, name: str, address: str, district: str, lat: float, lon: float, contacts, notes) -> dict:
        body = {"name": name, "address": address, "district": district, "location": {"lat": lat, "lon": lon},
                "contacts": contacts, **({"notes": notes} if notes else {})}
        self.residents[name] = resident = self.admin.call("POST", "/api/v1/residents", 201, json=body)
        for kind in ("button", "bed"):
            self.devices[f"{name}/{kind}"] = self.admin.call("POST", "/api/v1/devices", 201, json={
                "id": unique(kind[:3]), "kind": kind, "resident_id": resident["id"]})
        return resident

    def hire(self, name: str, services: list[str], lat: float, lon: float, capacity: int = 3,
             on_shift: bool = True) -> dict:
        self.providers[name] = provider = self.admin.call("POST", "/api/v1/providers", 201, json={
            "name": name, "services": services, "location": {"lat": lat, "lon": lon},
            "capacity": capacity, "on_shift": on_shift})
        return provider

    def account(self, role: str, provider: str | None = None) -> str:
        username = f"{role}-{self.tag}-{uuid.uuid4().hex[:4]}"
        body = {"username": username, "password": PASSWORD, "role": role}
        if provider:
            body["provider_id"] = self.providers[provider]["id"]
        self.admin.call("POST", "/api/v1/users", 201, json=body)
        return username

    def phone_in(self, name: str, service: str, note: str | None = None) -> dict:
        return self.admin.call("POST", "/api/v1/requests", 201, json={
            "resident_id": self.residents[name]["id"], "service": service, **({"note": note} if note else {})})

    def off_shift(self) -> None:
        """Every provider of this city goes home (the database outlives the test)."""
        for provider in self.providers.values():
            self.admin.call("POST", f"/api/v1/providers/{provider['id']}/shift", json={"on_shift": False})

    def connect(self, broker_url: str, name: str, kind: str) -> FakeDevice:
        device = self.device(name, kind)
        return FakeDevice(broker_url, device["id"], device["secret"]).connect(
            {"online": True, "fw": "1.4.2", "battery": 0.18 if kind == "button" and name == "Liu Shufen" else 0.87})


def build(admin: Api, tag: str, homes=HOMES) -> City:
    """Residents with a button and a bed each."""
    city = City(admin, tag)
    for home in homes:
        city.enrol(*home)
    return city


def bed_history(device: FakeDevice, now: datetime | None = None) -> int:
    """Nearly a week of nights and days from a bed: every minute over the last day, every 10
    minutes before. In bed 22:00-06:30 in Shanghai (14:00-22:30 UTC), HR 58-72, RR 13-17."""
    now = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    samples = []

    def sample(t: datetime) -> dict:
        in_bed = t.hour >= 14 and (t.hour < 22 or (t.hour == 22 and t.minute < 30))
        wave = (t.hour * 7 + t.minute) % 15
        return {"ts": format_ts(t), "occupied": in_bed,
                "heart_rate": 58 + wave if in_bed else None,
                "respiration_rate": 13 + wave % 5 if in_bed else None,
                "movement": round(0.02 + (wave % 4) * 0.03, 2) if in_bed else 0.0}

    t = now - timedelta(days=7) + timedelta(minutes=10)  # the gateway refuses samples older than 7 days
    while t < now - timedelta(days=1):
        samples.append(sample(t))
        t += timedelta(minutes=10)
    while t < now:
        samples.append(sample(t))
        t += timedelta(minutes=1)
    for i in range(0, len(samples), 500):
        device.publish(DeviceChannel.TELEMETRY, {"samples": samples[i:i + 500]})
    return len(samples)
