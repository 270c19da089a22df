"""Places of the simulated city (Shanghai) and distances."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class District:
    name: str
    lat: float
    lon: float
    roads: tuple[str, ...]


SHANGHAI: tuple[District, ...] = (
    District("Huangpu", 31.2317, 121.4846, ("Nanjing Dong Lu", "Fuzhou Lu", "Henan Zhong Lu", "Fangbang Zhong Lu")),
    District("Jing'an", 31.2290, 121.4481, ("Yanping Lu", "Xikang Lu", "Changde Lu", "Datian Lu")),
    District("Xuhui", 31.1885, 121.4365, ("Tianyaoqiao Lu", "Wukang Lu", "Zhaojiabang Lu", "Yongjia Lu")),
    District("Hongkou", 31.2646, 121.5050, ("Sichuan Bei Lu", "Duolun Lu", "Quyang Lu", "Liyang Lu")),
    District("Changning", 31.2204, 121.4245, ("Yuyuan Lu", "Tianshan Lu", "Xianxia Lu", "Fahuazhen Lu")),
    District("Putuo", 31.2494, 121.3970, ("Caoyang Lu", "Lanxi Lu", "Zhenping Lu", "Wuning Lu")),
    District("Yangpu", 31.2595, 121.5260, ("Kongjiang Lu", "Anshan Lu", "Siping Lu", "Guoshun Lu")),
    District("Pudong", 31.2215, 121.5440, ("Zhangyang Lu", "Dongfang Lu", "Weifang Lu", "Pujian Lu")),
)


def districts_of(count: int) -> tuple[District, ...]:
    """The first `count` districts (at least one, at most all of them)."""
    return SHANGHAI[: max(1, min(count, len(SHANGHAI)))]


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 6371.0 * 2 * math.asin(math.sqrt(a))
