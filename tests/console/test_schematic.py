"""The schematic map's projection, without a database."""

from __future__ import annotations

from console.schematic import HEIGHT, PAD, WIDTH, frame, grid, layout


def test_every_place_falls_inside_the_box_north_up_and_east_right():
    places = [(31.20, 121.40), (31.30, 121.50), (31.25, 121.45)]
    f = frame(places)

    points = [f.xy(lat, lon) for lat, lon in places]

    for x, y in points:
        assert PAD - 0.5 <= x <= WIDTH - PAD + 0.5 and PAD - 0.5 <= y <= HEIGHT - PAD + 0.5
    (x_sw, y_sw), (x_ne, y_ne), _ = points
    assert x_ne > x_sw and y_ne < y_sw  # east is right, north is up


def test_the_scale_is_the_same_on_both_axes():
    f = frame([(31.0, 121.0), (31.1, 121.1)])

    x0, y0 = f.xy(31.0, 121.0)
    x1, _ = f.xy(31.0, 121.0 + 1 / f.km_per_deg_lon)  # 1 km east
    _, y1 = f.xy(31.0 + 1 / 111.32, 121.0)  # 1 km north

    assert abs((x1 - x0) - (y0 - y1)) < 0.2


def test_one_place_still_gets_a_map_and_a_round_grid():
    f = frame([(31.2, 121.5)])

    assert f.xy(31.2, 121.5) == (WIDTH / 2, HEIGHT / 2)
    assert grid(f)["step_km"] in (0.25, 0.5, 1)


def test_layout_links_providers_to_their_jobs():
    providers = [{"id": "p1", "lat": 31.2, "lon": 121.4, "name": "A"}]
    requests = [{"id": "r1", "lat": 31.21, "lon": 121.41, "provider_id": "p1"},
                {"id": "r2", "lat": 31.22, "lon": 121.42, "provider_id": None}]

    m = layout(providers, requests)

    assert [link["request_id"] for link in m["links"]] == ["r1"]
    assert m["links"][0]["from"] == m["providers"][0]["xy"]
    assert m["links"][0]["to"] == m["requests"][0]["xy"]


def test_layout_draws_each_route_from_its_provider_through_its_stops_in_order():
    providers = [{"id": "p1", "lat": 31.2, "lon": 121.4, "name": "A"}]
    routes = [{"provider_id": "p1", "stops": [
        {"key": "a", "seq": 0, "lat": 31.25, "lon": 121.45},
        {"key": "gone", "seq": 1, "lat": None, "lon": None},  # a resident whose place is not known
        {"key": "b", "seq": 2, "lat": 31.15, "lon": 121.35},
    ]}, {"provider_id": "p-off-the-map", "stops": [{"key": "c", "seq": 0, "lat": 31.3, "lon": 121.5}]}]

    m = layout(providers, [], routes)

    first, second = m["routes"]
    assert [s["key"] for s in first["stops"]] == ["a", "b"]
    points = [tuple(float(v) for v in p.split(",")) for p in first["path"].split()]
    assert points == [m["providers"][0]["xy"], first["stops"][0]["xy"], first["stops"][1]["xy"]]
    assert second["path"] == "{},{}".format(*second["stops"][0]["xy"])
    xs = [s["xy"][0] for r in m["routes"] for s in r["stops"]]
    assert all(0 <= x <= WIDTH for x in xs), "the frame holds every stop"

