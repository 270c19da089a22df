"""The compose deployment's broker configuration (deploy/mosquitto.conf), run by the real
mosquitto with a certificate from deploy/certs/self-signed and accounts from
gateway.broker_config: devices connect over TLS on the TLS listener with their accounts and the
CA; plain MQTT, an unknown CA and anonymous clients are refused there; the services' listener
takes plain MQTT. Only the paths and ports are changed for the test."""

from __future__ import annotations

import getpass
import shutil
import ssl
import subprocess
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.broker_config import write_dynsec_file
from launch.embedded import dynsec_plugin, free_port, wait_for_port

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    if not shutil.which("mosquitto") or not dynsec_plugin() or not shutil.which("openssl"):
        pytest.skip("needs mosquitto with its dynamic-security plugin and openssl")
    folder = tmp_path_factory.mktemp("deploy-broker")
    (folder / "certs").mkdir()
    (folder / "data").mkdir()
    shutil.copy(DEPLOY / "certs" / "self-signed", folder / "certs" / "self-signed")
    subprocess.run([folder / "certs" / "self-signed", "127.0.0.1"], check=True, capture_output=True)
    _, accounts = write_dynsec_file(folder / "data" / "dynamic-security.json")
    plain, tls = free_port(), free_port()
    conf = (DEPLOY / "mosquitto.conf").read_text()
    for original, ours in (("listener 1883", f"listener {plain} 127.0.0.1"),
                           ("listener 8883", f"listener {tls} 127.0.0.1"),
                           ("/mosquitto/certs/", f"{folder}/certs/"), ("/mosquitto/data/", f"{folder}/data/"),
                           ("/usr/lib/mosquitto_dynamic_security.so", dynsec_plugin())):
        assert original in conf, original
        conf = conf.replace(original, ours)
    # Run as whoever runs the test (as root, mosquitto would switch to a user that cannot read
    # the test's files; in the image it runs as its own user, which owns /mosquitto/data).
    conf += f"user {getpass.getuser()}\n"
    (folder / "mosquitto.conf").write_text(conf)
    process = subprocess.Popen(["mosquitto", "-c", str(folder / "mosquitto.conf")],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_port(tls)
        wait_for_port(plain)
        yield {"plain": plain, "tls": tls, "ca": folder / "certs" / "ca.crt", "account": accounts["telemetry"]}
    finally:
        process.terminate()
        process.wait(10)


def _connect(port: int, account: tuple[str, str] | None, ca: Path | None = None, system_ca: bool = False):
    """The CONNACK's reason code, or the exception the connection raised."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="deploy-test", protocol=mqtt.MQTTv311)
    if account:
        client.username_pw_set(*account)
    if ca or system_ca:
        client.tls_set(ca_certs=str(ca) if ca else None, cert_reqs=ssl.CERT_REQUIRED)
    result: dict = {}
    client.on_connect = lambda c, u, flags, reason, props: result.setdefault("reason", reason)
    try:
        client.connect("127.0.0.1", port, keepalive=10)
        for _ in range(50):
            client.loop(0.1)
            if "reason" in result:
                break
    except (OSError, ssl.SSLError) as exc:
        return exc
    finally:
        client.disconnect()
    return result.get("reason", "no answer")


def test_an_account_connects_over_tls_with_the_ca(broker):
    reason = _connect(broker["tls"], broker["account"], ca=broker["ca"])
    assert not isinstance(reason, Exception) and reason == 0, reason


def test_the_tls_listener_refuses_plain_mqtt_an_unknown_ca_and_anonymous_clients(broker):
    assert _connect(broker["tls"], broker["account"]) != 0  # plain MQTT on the TLS port
    assert isinstance(_connect(broker["tls"], broker["account"], system_ca=True), ssl.SSLError)
    anonymous = _connect(broker["tls"], None, ca=broker["ca"])
    assert not isinstance(anonymous, Exception) and anonymous != 0 and anonymous.is_failure


def test_the_services_listener_takes_plain_mqtt_with_an_account(broker):
    reason = _connect(broker["plain"], broker["account"])
    assert not isinstance(reason, Exception) and reason == 0, reason
