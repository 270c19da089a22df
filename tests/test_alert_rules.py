"""The operators' alert rules (deploy/prometheus/alerts.yml) name only metrics the code exports,
with the labels they carry, and do what their unit tests (alerts.test.yml) say: run with promtool
(Debian's `prometheus` package; .ci/run installs it)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import gateway.metrics  # noqa: F401  (registers the edge's metrics)
import homecare.log.metrics  # noqa: F401  (registers the log's metrics)
import services.telemetry.metrics  # noqa: F401  (registers telemetry's)

RULES = Path(__file__).resolve().parents[1] / "deploy" / "prometheus" / "alerts.yml"
TESTS = RULES.with_name("alerts.test.yml")
_METRIC = re.compile(r"\b(homecare_[a-z_]+)(?:\{([^}]*)\})?")
_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}


def _exported() -> dict[str, set[str]]:
    """Every series name the code's metrics expose, with their label names."""
    out: dict[str, set[str]] = {}
    for collector in list(REGISTRY._collector_to_names):  # noqa: SLF001  (no public listing)
        describe = getattr(collector, "describe", None)
        for family in describe() if describe else []:
            labels = set(getattr(collector, "_labelnames", ()))
            for suffix in _SUFFIXES.get(family.type, ("",)):
                out[family.name + suffix] = labels
    return out


def _rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_every_rule_names_metrics_and_labels_the_code_exports():
    exported = _exported()
    for rule in _rules():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        for name, selector in _METRIC.findall(rule["expr"]):
            assert name in exported, f"{rule['alert']}: {name} is no metric of the code"
            for label in re.findall(r"(\w+)\s*[!=]~?", selector or ""):
                assert label in exported[name], f"{rule['alert']}: {name} has no label {label}"
        for label in re.findall(r"by \(([^)]*)\)", rule["expr"]):
            names = {x.strip() for x in label.split(",")} - {"job", "instance"}
            metrics = {n for n, _ in _METRIC.findall(rule["expr"])}
            assert all(names <= exported[m] for m in metrics), f"{rule['alert']}: grouped by {names}"


def test_operators_are_told_of_stuck_consumers_growing_lag_dead_letters_and_stuck_lanes():
    assert {r["alert"] for r in _rules()} >= {
        "HomecareConsumerStuck", "HomecareConsumerLagGrowing", "HomecareButtonPressDeadLettered",
        "HomecareDeadLetters", "HomecareGatewayLaneStuck"}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)")
@pytest.mark.parametrize("command", [["check", "rules", RULES.name], ["test", "rules", TESTS.name]])
def test_promtool_accepts_and_the_unit_tests_pass(command):
    done = subprocess.run(["promtool", *command], cwd=RULES.parent, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
