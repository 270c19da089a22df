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

# Each test takes its own five homes and carers from these, so screenshots show no namesakes.
NAMES = [
    "Wang Xiuying", "Chen Guilan", "Zhao Meiling", "Liu Shufen", "Sun Yulan", "Zhou Fengying", "Wu Xiulan",
    "Xu Yuying", "Hu Guiying", "Zhu Lanying", "Gao Shuzhen", "Lin Meihua", "He Cuiping", "Guo Yuzhen",
    "Ma Fengzhi", "Luo Huilan", "Liang Suqin", "Song Jinfeng", "Zheng Aihua", "Xie Guizhi", "Han Shulan",
    "Tang Yumei", "Feng Xiuzhen", "Yu Lihua", "Dong Guifang",
]
STREETS = [
    "88 Wuning Road, Apt 1203", "12 Changshou Road, Apt 502", "301 Yanping Road, Apt 8",
    "45 Kangding Road, Apt 1101", "9 Caoyang Road, Apt 304",
]
DISTRICTS = ["Putuo", "Putuo", "Jing'an", "Jing'an", "Putuo"]
SPOTS = [(31.2397, 121.4260), (31.2440, 121.4380), (31.2310, 121.4470), (31.2350, 121.4520), (31.2480, 121.4200)]
RELATIONS = ["son", "daughter", "nephew", None, "grandson"]
NOTES = ["Diabetic; uses a walker.", None, "Hard of hearing: knock loudly.", None, None]
CARERS = [
    "Li Mei", "Zhang Wei", "Huang Jun", "Xu Ping", "Gao Lin", "Ma Li", "Sun Qiang", "Zhou Yan", "Wu Hao",
    "Deng Fang", "Cao Jing", "Peng Bo", "Lu Xin", "Jiang Tao", "Yang Fan", "Shen Yu", "Fan Rui", "Qian Ning",
    "Tian Ye", "Du Juan", "Kong Wen", "Lei Yun", "Bai Hong", "Yao Lin", "Mo Chen",
]


def homes(offset: int) -> list[tuple]:
    """Five homes with the names from `offset` on."""
    out = []
    for i in range(5):
        name = NAMES[(offset + i) % len(NAMES)]
        family = name.split()[0]
        contacts = ([{"name": f"{family} {['Lei', 'Min', 'Qiang', 'Jie', 'Hao'][i]}",
                      "phone": f"+86 13{8 - i} 0000 000{i + 1}", "relation": RELATIONS[i]}] if RELATIONS[i] else [])
        out.append((name, STREETS[i], DISTRICTS[i], *SPOTS[i], contacts, NOTES[i]))
    return out


@dataclass
class City:
    """Who lives where, who works, and the accounts to sign in with."""

    admin: Api
    tag: str
    offset: int = 0
    people: list[str] = field(default_factory=list)  # the residents' names, in order
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
        self.people.append(name)
        for kind in ("button", "bed"):
            self.devices[f"{name}/{kind}"] = self.admin.call("POST", "/api/v1/devices", 201, json={
                "id": unique(kind[:3]), "kind": kind, "resident_id": resident["id"]})
        return resident

    def carer(self, i: int) -> str:
        """The name of this test's i-th carer."""
        return CARERS[(self.offset + i) % len(CARERS)]

    def hire(self, i: int, services: list[str], lat: float, lon: float, capacity: int = 3,
             on_shift: bool = True) -> dict:
        name = self.carer(i)
        self.providers[name] = provider = self.admin.call("POST", "/api/v1/providers", 201, json={
            "name": name, "services": services, "location": {"lat": lat, "lon": lon},
            "capacity": capacity, "on_shift": on_shift})
        return provider

    def account(self, role: str, provider: str | None = None) -> str:
        username = f"{role}-{self.tag}-{uuid.uuid4().hex[:4]}"
        body: dict = {"username": username, "password": PASSWORD, "role": role}
        if role == "dispatcher":  # a district service centre's: the districts of this city's residents
            body["districts"] = sorted({r["district"] for r in self.residents.values()})
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
            {"online": True, "fw": "1.4.2", "battery": 0.87} if kind == "button" else {"online": True, "fw": "2.0.1"})


def build(admin: Api, tag: str, offset: int) -> City:
    """Five residents with a button and a bed each; names and carers from `offset` on."""
    city = City(admin, tag, offset)
    for home in homes(offset):
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
