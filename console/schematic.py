"""A schematic map without tiles: places projected into an SVG box, a kilometre grid and a scale
bar. Pure: coordinates in, positions out."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

KM_PER_DEG_LAT = 111.32
WIDTH, HEIGHT, PAD = 640, 460, 28
MIN_SPAN_KM = 2.0  # a single place still gets a map around it


@dataclass(frozen=True)
class Frame:
    """The projection: a box of the world around the places, scaled into the SVG."""

    lat0: float
    lon0: float
    km_per_deg_lon: float
    scale: float  # SVG units per km
    west_km: float
    north_km: float

    def xy(self, lat: float, lon: float) -> tuple[float, float]:
        """SVG position of a place."""
        east = (lon - self.lon0) * self.km_per_deg_lon
        north = (lat - self.lat0) * KM_PER_DEG_LAT
        return round(PAD + (east - self.west_km) * self.scale, 1), round(PAD + (self.north_km - north) * self.scale, 1)


def frame(places: Iterable[tuple[float, float]]) -> Frame:
    """The frame that shows every place, north up, with equal scale on both axes."""
    places = list(places) or [(0.0, 0.0)]
    lat0 = sum(p[0] for p in places) / len(places)
    lon0 = sum(p[1] for p in places) / len(places)
    kx = KM_PER_DEG_LAT * math.cos(math.radians(lat0))
    east = [(lon - lon0) * kx for _, lon in places]
    north = [(lat - lat0) * KM_PER_DEG_LAT for lat, _ in places]
    w = max(max(east) - min(east), MIN_SPAN_KM)
    h = max(max(north) - min(north), MIN_SPAN_KM)
    scale = min((WIDTH - 2 * PAD) / w, (HEIGHT - 2 * PAD) / h)
    # Centre the places in the box.
    mid_e, mid_n = (max(east) + min(east)) / 2, (max(north) + min(north)) / 2
    west = mid_e - (WIDTH - 2 * PAD) / scale / 2
    north_edge = mid_n + (HEIGHT - 2 * PAD) / scale / 2
    return Frame(lat0, lon0, kx, scale, west, north_edge)


def grid_step_km(f: Frame) -> float:
    """A round grid spacing giving some five to ten lines across."""
    span = (WIDTH - 2 * PAD) / f.scale
    for step in (0.25, 0.5, 1, 2, 5, 10, 20, 50, 100):
        if span / step <= 10:
            return step
    return 200.0


def grid(f: Frame) -> dict[str, list[float] | float]:
    """Positions of the vertical and horizontal grid lines, and the step in km."""
    step = grid_step_km(f)
    px = step * f.scale
    xs = [round(PAD + i * px, 1) for i in range(int((WIDTH - 2 * PAD) / px) + 1)]
    ys = [round(PAD + i * px, 1) for i in range(int((HEIGHT - 2 * PAD) / px) + 1)]
    return {"xs": xs, "ys": ys, "step_km": step, "step_px": round(px, 1)}


def layout(providers: Sequence[dict], requests: Sequence[dict], routes: Sequence[dict] = ()) -> dict:
    """Providers and request places positioned, with lines from each provider to its jobs, and
    each route's stops in order (a line from its provider through them).

    providers: dicts with id, lat, lon (and anything else, passed through);
    requests: dicts with id, lat, lon, provider_id (or None);
    routes: dicts with provider_id and stops (dicts with lat, lon; None when the place is not known)."""
    routes = [{**r, "stops": [s for s in r["stops"] if s.get("lat") is not None]} for r in routes]
    places = ([(p["lat"], p["lon"]) for p in providers] + [(r["lat"], r["lon"]) for r in requests]
              + [(s["lat"], s["lon"]) for r in routes for s in r["stops"]])
    f = frame(places)
    placed = {p["id"]: {**p, "xy": f.xy(p["lat"], p["lon"])} for p in providers}
    jobs = [{**r, "xy": f.xy(r["lat"], r["lon"])} for r in requests]
    links = [
        {"from": placed[r["provider_id"]]["xy"], "to": r["xy"], "request_id": r["id"]}
        for r in jobs if r.get("provider_id") in placed
    ]
    drawn = []
    for route in routes:
        stops = [{**s, "xy": f.xy(s["lat"], s["lon"])} for s in route["stops"]]
        start = [placed[route["provider_id"]]["xy"]] if route["provider_id"] in placed else []
        points = start + [s["xy"] for s in stops]
        drawn.append({**route, "stops": stops, "path": " ".join(f"{x},{y}" for x, y in points)})
    return {"width": WIDTH, "height": HEIGHT, "providers": list(placed.values()), "requests": jobs,
            "links": links, "routes": drawn, "grid": grid(f)}
