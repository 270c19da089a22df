"""Who may do what on the broker: the device role, the platform's service roles, and the
Mosquitto dynamic-security file that starts a broker with them.

Mosquitto 2.0's dynamic-security ACLs take no `%u` / `%c` substitution (tested on 2.0.11: an ACL
on `homecare/v1/devices/%u/status` matches nothing), so every device gets a role of its own.
A subscription through `$share/<group>/...` is checked with its `$share/<group>/` prefix, so the
service roles name both forms.

`python -m gateway.broker_config FILE [FILE ...]` writes a file for a deployment's mosquitto, one
per broker shard with the same accounts in each (passwords are read from the environment or
generated, and printed once as `HOMECARE_*` variables): the platform uses one admin account and
one account per service on every shard.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from homecare.topics import (
    DEVICE_PUBLISHES,
    DEVICE_SUBSCRIBES,
    DeviceChannel,
    all_devices_filter,
    device_topic,
)

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
ADMIN_USERNAME = "homecare-admin"
# Components that use the broker, each with an account of its own (username homecare-<name>).
SERVICES = ("gateway", "telemetry", "dispatch")

Acl = dict[str, Any]


def _acl(acltype: str, topic: str, allow: bool = True, priority: int = 0) -> Acl:
    return {"acltype": acltype, "topic": topic, "allow": allow, "priority": priority}


def _subscribe(*filters: str) -> list[Acl]:
    """Subscribing to each filter, plainly or through any shared-subscription group."""
    out: list[Acl] = []
    for f in filters:
        out += [_acl("subscribePattern", f), _acl("subscribePattern", f"$share/+/{f}")]
    return out


def _publish(*topics: str) -> list[Acl]:
    return [_acl("publishClientSend", t) for t in topics]


def device_role_name(device_id: str) -> str:
    return f"device-{device_id}"


def device_acls(device_id: str) -> list[Acl]:
    """mqtt-v1: publish only its own status, telemetry, events, acks; subscribe only its own
    commands and errors (literally: no wildcard filter), and receive nothing else."""
    acls = [_acl("publishClientSend", device_topic(device_id, c)) for c in DEVICE_PUBLISHES]
    for channel in DEVICE_SUBSCRIBES:
        topic = device_topic(device_id, channel)
        acls += [_acl("subscribeLiteral", topic), _acl("publishClientReceive", topic, priority=1)]
    acls.append(_acl("publishClientReceive", "#", allow=False))
    return acls


def service_acls(name: str) -> list[Acl]:
    """Least privilege of each platform component on the broker. The services' traffic goes
    through the internal log (NATS JetStream); the broker carries only what devices send and
    receive: the gateway reads what they send and answers rejections on `errors`; dispatch
    publishes their commands (and says on `errors` when an ack names a command not sent)."""
    if name == "gateway":
        return [
            *_subscribe(*(all_devices_filter(c) for c in DEVICE_PUBLISHES)),
            *_publish(all_devices_filter(DeviceChannel.ERRORS)),
        ]
    if name == "telemetry":
        # Nothing: telemetry reads and writes only the log. The account stays so that a
        # deployment's credentials (deploy/docker-compose.yml asks for one) are still made.
        return []
    if name == "dispatch":
        return _publish(all_devices_filter(DeviceChannel.COMMANDS), all_devices_filter(DeviceChannel.ERRORS))
    raise ValueError(f"no broker role for {name!r}")


def admin_acls() -> list[Acl]:
    """Account management only: the control topic, nothing of the network's own traffic."""
    return [
        _acl("publishClientSend", f"{CONTROL_TOPIC}"),
        _acl("subscribeLiteral", f"{CONTROL_TOPIC}/response"),
        _acl("publishClientReceive", f"{CONTROL_TOPIC}/response"),
    ]


def password_fields(password: str, iterations: int = 101) -> dict[str, Any]:
    """A password as the dynamic-security file stores it (PBKDF2-SHA512, 12-byte salt)."""
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return {
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": iterations,
    }


def service_username(name: str) -> str:
    return f"homecare-{name}"


def dynsec_config(admin_password: str, service_passwords: dict[str, str]) -> dict[str, Any]:
    """A dynamic-security file: the admin, one account per service, and deny by default."""
    clients = [{"username": ADMIN_USERNAME, "textName": "homecare account management",
                "roles": [{"rolename": "homecare-admin"}], **password_fields(admin_password)}]
    roles = [{"rolename": "homecare-admin", "acls": admin_acls()}]
    for name, password in service_passwords.items():
        clients.append({"username": service_username(name), "textName": f"homecare {name}",
                        "roles": [{"rolename": service_username(name)}],
                        **password_fields(password)})
        roles.append({"rolename": service_username(name), "acls": service_acls(name)})
    return {
        "defaultACLAccess": {"publishClientSend": False, "publishClientReceive": True,
                             "subscribe": False, "unsubscribe": True},
        "clients": clients, "groups": [], "roles": roles,
    }


def write_dynsec_file(
    path: str | Path, admin_password: str | None = None, services: tuple[str, ...] = SERVICES,
    passwords: dict[str, str] | None = None,
) -> tuple[str, dict[str, tuple[str, str]]]:
    """Write a fresh file; returns the admin password and (username, password) per service.
    Passwords not given are generated; give another shard's to make its broker's file."""
    admin_password = admin_password or secrets.token_urlsafe(18)
    passwords = {name: (passwords or {}).get(name) or secrets.token_urlsafe(18) for name in services}
    path = Path(path)
    path.write_text(json.dumps(dynsec_config(admin_password, passwords), indent=1))
    path.chmod(0o600)
    return admin_password, {n: (service_username(n), p) for n, p in passwords.items()}


def _main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m gateway.broker_config DYNSEC_JSON_FILE [one per broker shard ...]",
              file=sys.stderr)
        return 2
    admin, accounts = write_dynsec_file(argv[0], os.environ.get("HOMECARE_MQTT_ADMIN_PASSWORD"))
    for path in argv[1:]:  # the other shards: the same accounts, each file with its own salts
        write_dynsec_file(path, admin, passwords={name: p for name, (_, p) in accounts.items()})
    print(f"# {', '.join(argv)} written; give each process its credentials:")
    print(f"HOMECARE_MQTT_ADMIN_URL=mqtt://{ADMIN_USERNAME}:{admin}@BROKER:1883"
          "  # with several shards: used on each shard's host and port")
    for name, (user, password) in accounts.items():
        print(f"# {name}: HOMECARE_MQTT_SERVICE_USERNAME={user} HOMECARE_MQTT_SERVICE_PASSWORD={password}")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
