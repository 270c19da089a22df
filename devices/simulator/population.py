"""Who lives in the simulated city and who serves them: seeded, plain data, no I/O."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from homecare.contract import Service

from .geo import District, districts_of


@dataclass(frozen=True)
class SleepHabits:
    """A resident's nights, in minutes after local midnight and probabilities per night."""

    bedtime_min: int  # e.g. 21:30 -> 1290
    wake_min: int  # e.g. 06:15 -> 375
    exits_per_night: float  # mean number of times they get up (toilet, water)
    no_return_p: float  # chance that an exit lasts long (dozing in a chair, wandering)
    fall_p: float  # chance that a long exit shows a fall pattern
    nap_p: float  # chance of an afternoon nap
    episode_p: float  # chance per night of a spell of raised heart or breathing rate


@dataclass(frozen=True)
class VitalSigns:
    """Resting rates of one person; asleep rates are lower."""

    hr_awake: float
    hr_asleep: float
    rr_awake: float
    rr_asleep: float
    phase: float  # shifts the person's circadian drift, in hours


@dataclass(frozen=True)
class Contact:
    name: str
    phone: str
    relation: str
    email: str | None = None
    notify: bool = False  # the resident agreed that this contact is told of emergencies


@dataclass(frozen=True)
class ResidentPlan:
    """A simulated resident with the habits that drive their bed and button."""

    index: int
    name: str
    address: str
    district: str
    lat: float
    lon: float
    contacts: tuple[Contact, ...]
    sleep: SleepHabits
    vitals: VitalSigns
    need: float  # scales how often they press, 1.0 = average
    battery: float  # the button's battery at start


@dataclass(frozen=True)
class ProviderPlan:
    """A simulated caregiver or team."""

    index: int
    name: str
    services: tuple[Service, ...]
    lat: float
    lon: float
    capacity: int
    phone: str = field(default="")


SURNAMES = [
    ("Wang", "王"), ("Li", "李"), ("Zhang", "张"), ("Liu", "刘"), ("Chen", "陈"), ("Yang", "杨"),
    ("Huang", "黄"), ("Zhao", "赵"), ("Wu", "吴"), ("Zhou", "周"), ("Xu", "徐"), ("Sun", "孙"),
    ("Zhu", "朱"), ("Hu", "胡"), ("Shen", "沈"), ("Qian", "钱"), ("Lu", "陆"), ("Gu", "顾"),
    ("Jiang", "蒋"), ("Cai", "蔡"), ("Tang", "唐"), ("Xie", "谢"), ("Ye", "叶"), ("Pan", "潘"),
]
ELDER_GIVEN = [
    ("Xiuying", "秀英"), ("Guilan", "桂兰"), ("Yulan", "玉兰"), ("Guiying", "桂英"),
    ("Xiulan", "秀兰"), ("Fengying", "凤英"), ("Shuzhen", "淑珍"), ("Meizhen", "美珍"),
    ("Suzhen", "素珍"), ("Cuiying", "翠英"), ("Jianguo", "建国"), ("Guoqiang", "国强"),
    ("Dehua", "德华"), ("Baoshan", "宝山"), ("Yongfu", "永福"), ("Guohua", "国华"),
    ("Zhenhua", "振华"), ("Jinfu", "金福"), ("Minghua", "明华"), ("Weiguo", "卫国"),
    ("Ahua", "阿华"), ("Genbao", "根宝"), ("Xiaomei", "小妹"), ("Shulin", "树林"),
]
YOUNG_GIVEN = ["Wei", "Jing", "Lei", "Yan", "Jun", "Hong", "Min", "Tao", "Li", "Qiang", "Fang", "Hui"]
RELATIONS = ["son", "daughter", "daughter-in-law", "neighbour", "nephew"]


def _phone(rng: random.Random) -> str:
    return f"+86 13{rng.randint(0, 9)} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}"


def _around(rng: random.Random, district: District, spread_deg: float) -> tuple[float, float]:
    lat = district.lat + rng.gauss(0, spread_deg)
    lon = district.lon + rng.gauss(0, spread_deg)
    return round(lat, 6), round(lon, 6)


def _resident(index: int, rng: random.Random, district: District) -> ResidentPlan:
    surname, surname_hz = rng.choice(SURNAMES)
    given, given_hz = rng.choice(ELDER_GIVEN)
    road = rng.choice(district.roads)
    address = (
        f"Room {rng.randint(1, 6)}0{rng.randint(1, 4)}, No. {rng.randint(1, 40)},"
        f" Lane {rng.randint(10, 999)} {road}, {district.name} District, Shanghai"
    )
    contacts = tuple(
        Contact(f"{surname} {rng.choice(YOUNG_GIVEN)}", _phone(rng), rng.choice(RELATIONS))
        for _ in range(rng.randint(1, 2))
    )
    if index % 2 == 0:  # every other home: the first contact has an e-mail and agreed to be told
        first = contacts[0]
        email = f"{first.name.lower().replace(' ', '.')}.{index}@family.example"
        contacts = (replace(first, email=email, notify=True), *contacts[1:])
    hr_awake = rng.uniform(62, 84)
    rr_awake = rng.uniform(14, 19)
    sleep = SleepHabits(
        bedtime_min=rng.randint(20 * 60 + 30, 23 * 60),
        wake_min=rng.randint(5 * 60, 7 * 60 + 15),
        exits_per_night=rng.uniform(0.4, 2.5),
        no_return_p=rng.uniform(0.02, 0.10),
        fall_p=rng.uniform(0.05, 0.3),
        nap_p=rng.uniform(0.0, 0.7),
        episode_p=rng.choice([0.0, 0.0, 0.0, 0.05, 0.15]),
    )
    vitals = VitalSigns(
        hr_awake=hr_awake,
        hr_asleep=hr_awake - rng.uniform(6, 12),
        rr_awake=rr_awake,
        rr_asleep=rr_awake - rng.uniform(2, 4),
        phase=rng.uniform(-2, 2),
    )
    lat, lon = _around(rng, district, 0.008)
    return ResidentPlan(
        index=index, name=f"{surname} {given} {surname_hz}{given_hz}", address=address,
        district=district.name, lat=lat, lon=lon, contacts=contacts, sleep=sleep, vitals=vitals,
        need=rng.uniform(0.5, 1.6), battery=round(rng.uniform(0.55, 1.0), 2),
    )


def resident(index: int, seed: int, district_count: int = 4) -> ResidentPlan:
    """Resident number `index` of a seeded city (the same whatever the city's size)."""
    places = districts_of(district_count)
    return _resident(index, random.Random(f"resident:{seed}:{index}"), places[index % len(places)])


def residents(count: int, seed: int, district_count: int = 4) -> list[ResidentPlan]:
    """`count` residents spread over the first `district_count` districts."""
    return [resident(i, seed, district_count) for i in range(count)]


# (label, services, capacity): the first four together cover every service.
_TEMPLATES: list[tuple[str, tuple[Service, ...], int]] = [
    ("Community Meal Team", (Service.MEAL,), 4),
    ("caregiver", (Service.MOBILITY, Service.BATHING), 2),
    ("Escort Volunteers", (Service.ESCORT, Service.MOBILITY), 2),
    ("Emergency Response", (Service.EMERGENCY, Service.MOBILITY), 3),
    ("caregiver", (Service.MEAL, Service.MOBILITY, Service.ESCORT), 2),
    ("Bathing Aides", (Service.BATHING,), 2),
    ("caregiver", (Service.MEAL, Service.MOBILITY), 2),
    ("Home Nursing", (Service.EMERGENCY, Service.BATHING), 2),
]


def providers(count: int, seed: int, district_count: int = 4) -> list[ProviderPlan]:
    """`count` providers with a mix of qualifications; together they cover every service."""
    rng = random.Random(f"providers:{seed}")
    places = districts_of(district_count)
    out: list[ProviderPlan] = []
    for i in range(count):
        label, services, capacity = _TEMPLATES[i % len(_TEMPLATES)]
        district = places[i % len(places)]
        if label == "caregiver":
            surname, _ = rng.choice(SURNAMES)
            name = f"{surname} {rng.choice(YOUNG_GIVEN)}"
        else:
            name = f"{district.name} {label}"
            if i >= len(_TEMPLATES):
                name += f" {i // len(_TEMPLATES) + 1}"
        lat, lon = _around(rng, district, 0.004)
        out.append(ProviderPlan(i, name, services, lat, lon, capacity, _phone(rng)))
    return _cover_every_service(out)


def _cover_every_service(plans: list[ProviderPlan]) -> list[ProviderPlan]:
    """With fewer providers than templates, give the missing services to someone."""
    covered = {s for p in plans for s in p.services}
    for n, service in enumerate(s for s in Service if s not in covered):
        i = n % len(plans)
        p = plans[i]
        plans[i] = ProviderPlan(p.index, p.name, (*p.services, service), p.lat, p.lon, p.capacity, p.phone)
    return plans
