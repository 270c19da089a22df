"""Prometheus text from a component's /metrics, as {(name, labels): value}."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

Key = tuple[str, tuple[tuple[str, str], ...]]


def scrape(url: str, timeout: float = 5.0) -> dict[Key, float]:
    """Every sample of every metric; {} when the endpoint does not answer."""
    try:
        text = httpx.get(url, timeout=timeout).text
    except httpx.HTTPError:
        return {}
    out: dict[Key, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def total(metrics: dict[Key, float], name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, lab), v in metrics.items() if n == name and want <= set(lab))


def by_label(metrics: dict[Key, float], name: str, label: str) -> dict[str, float]:
    """A metric's samples summed per value of one label."""
    out: dict[str, float] = {}
    for (n, labels), value in metrics.items():
        if n == name:
            key = dict(labels).get(label, "")
            out[key] = out.get(key, 0.0) + value
    return out


def histogram_quantile(metrics: dict[Key, float], name: str, q: float) -> float | None:
    """Upper bound of the bucket holding the q-quantile of a histogram (its `_bucket` samples)."""
    buckets: dict[float, float] = {}
    for (n, labels), value in metrics.items():
        if n == f"{name}_bucket":
            le = float(dict(labels)["le"])
            buckets[le] = buckets.get(le, 0.0) + value
    if not buckets:
        return None
    ordered = sorted(buckets.items())
    count = ordered[-1][1]
    if count == 0:
        return None
    for le, cumulative in ordered:
        if cumulative >= q * count:
            return le
    return ordered[-1][0]
