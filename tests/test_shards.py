"""Broker shard settings: their syntax, the errors a process stops with, placement and the shard
a gateway bridges (homecare/shards.py; the brokers themselves: tests/gateway/test_shards.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.settings import GatewaySettings
from homecare.settings import Settings
from homecare.shards import DEFAULT_SHARD, Shard, ShardError, Shards, first_name


def _settings(**given) -> Settings:
    # every field given, so the process's environment (HOMECARE_MQTT_URL in CI) plays no part
    return Settings(**{"mqtt_url": "", "mqtt_shards": "", "mqtt_public_urls": "", **given})


def test_without_shards_there_is_one_named_main_at_the_mqtt_url():
    shards = Shards.from_settings(_settings(mqtt_url="mqtt://homecare-gateway:pw@broker:1883"))
    assert shards.all() == [Shard(DEFAULT_SHARD, "mqtt://homecare-gateway:pw@broker:1883", "mqtt://broker:1883")]
    assert shards.bridged("").name == "main" and len(shards) == 1


def test_shards_public_urls_and_the_mqtt_url_they_imply():
    settings = _settings(mqtt_shards=" a=mqtt://u:p@10.0.0.5:1883 , b=mqtts://10.0.0.6",
                         mqtt_public_urls="b=mqtts://b.care.example:8883")
    assert settings.mqtt_url == "mqtt://u:p@10.0.0.5:1883"  # the first shard's, for single-broker code
    shards = Shards.from_settings(settings)
    assert shards.names() == ["a", "b"]
    assert shards.get("a").public_url == "mqtt://10.0.0.5:1883"  # no credentials told to devices
    assert shards.get("b").public_url == "mqtts://b.care.example:8883"
    assert shards.get("b").address("homecare-admin", "x").port == 8883
    assert shards.get("b").address("homecare-admin", "x").username == "homecare-admin"
    assert first_name(settings) == "a" and first_name(_settings()) == "main"


@pytest.mark.parametrize(("given", "says"), [
    ({"mqtt_shards": "a=mqtt://h:1883,a=mqtt://h:1884"}, "shard 'a' is given twice"),
    ({"mqtt_shards": "a"}, "'a' is not name=url"),
    ({"mqtt_shards": "a="}, "'a=' is not name=url"),
    ({"mqtt_shards": "Shard A=mqtt://h"}, "shard name 'Shard A' does not match"),
    ({"mqtt_shards": "a=http://h"}, "shard 'a': MQTT URL must start with mqtt://"),
    ({"mqtt_shards": ","}, "HOMECARE_MQTT_SHARDS names no shard"),
    ({"mqtt_shards": "a=mqtt://h", "mqtt_public_urls": "b=mqtt://pub"},
     "HOMECARE_MQTT_PUBLIC_URLS names 'b', not a shard of HOMECARE_MQTT_SHARDS ('a')"),
    ({"mqtt_url": "mqtt://h", "mqtt_public_urls": "a=mqtt://pub"}, "names 'a', not a shard"),
    ({"mqtt_url": "mqtt://h", "mqtt_public_urls": "main=mqtt://user:pw@pub"}, "must not carry credentials"),
    ({"mqtt_url": "mqtt://h", "mqtt_public_urls": "main=tcp://pub:1883"}, "is not mqtt://host:port"),
    ({"mqtt_public_urls": "b=mqtt://pub"}, "names 'b', not a shard"),  # checked before any broker
])
def test_wrong_shard_settings_stop_the_process_with_the_reason(given, says):
    with pytest.raises(ValidationError, match=says.replace("(", r"\(").replace(")", r"\)")):
        _settings(**given)


def test_placement_fills_the_emptiest_shard_first_ties_by_name():
    shards = Shards([Shard(n, "mqtt://h", "mqtt://h") for n in ("c", "a", "b")])
    assert shards.place({}).name == "a"
    assert shards.place({"a": 3, "b": 3, "c": 3}).name == "a"
    assert shards.place({"a": 3, "b": 2, "c": 2}).name == "b"
    assert shards.place({"a": 3, "b": 3}).name == "c"  # a shard added later: none yet
    assert shards.place({"a": 0, "b": 0, "c": 0, "gone": 0}).name == "a"  # unconfigured ones ignored


def test_the_shard_a_gateway_bridges():
    one = _settings(mqtt_url="mqtt://h:1883")
    two = _settings(mqtt_shards="a=mqtt://h:1883,b=mqtt://h:1884")
    assert GatewaySettings(shard="").bridged_shard(one).name == "main"
    assert GatewaySettings(shard="b").bridged_shard(two).url == "mqtt://h:1884"
    with pytest.raises(ShardError, match="must name the shard this gateway bridges: there are several"):
        GatewaySettings(shard="").bridged_shard(two)
    with pytest.raises(ShardError, match="no broker shard named 'c'"):
        GatewaySettings(shard="c").bridged_shard(two)
    with pytest.raises(ValidationError):
        GatewaySettings(shard="Not A Name")
