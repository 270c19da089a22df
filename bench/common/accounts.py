"""Broker accounts in bulk: device accounts written straight into mosquitto's dynamic-security
file while the broker is stopped, and the benchmark's own observer account.

Provisioning through the API creates each device's account with dynamic-security commands, and
the plugin rewrites its whole file after every command: ten thousand devices take hours that way
(measured: 3,000 accounts in 600 s, growing quadratically). A benchmark provisions the registry
through the API and imports the accounts here, as an operator migrating a fleet would.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from gateway.broker_config import (
    SERVICES,
    device_acls,
    device_role_name,
    password_fields,
    service_acls,
    service_username,
)
from homecare.topics import DeviceChannel, all_devices_filter

OBSERVER = "homecare-bench"


def observer_acls() -> list[dict]:
    """Read device telemetry (the bare pipe) and the broker's $SYS figures; nothing else."""
    telemetry = all_devices_filter(DeviceChannel.TELEMETRY)
    return [
        {"acltype": "subscribePattern", "topic": telemetry, "allow": True, "priority": 0},
        {"acltype": "subscribePattern", "topic": f"$share/+/{telemetry}", "allow": True, "priority": 0},
        {"acltype": "subscribePattern", "topic": "$SYS/#", "allow": True, "priority": 0},
    ]


def import_accounts(dynsec_file: Path, devices: list[tuple[str, str]], observer_password: str) -> int:
    """Add device accounts (id, secret) and the observer to a dynamic-security file; how many
    device accounts were new. Run it only while the broker is stopped."""
    config = json.loads(dynsec_file.read_text())
    clients = {c["username"]: c for c in config["clients"]}
    roles = {r["rolename"]: r for r in config["roles"]}
    added = 0
    for device_id, secret in devices:
        role = device_role_name(device_id)
        if device_id not in clients:
            added += 1
        clients[device_id] = {"username": device_id, "clientid": device_id, "roles": [{"rolename": role}],
                              **password_fields(secret)}
        roles[role] = {"rolename": role, "acls": device_acls(device_id)}
    clients[OBSERVER] = {"username": OBSERVER, "roles": [{"rolename": OBSERVER}], **password_fields(observer_password)}
    roles[OBSERVER] = {"rolename": OBSERVER, "acls": observer_acls()}
    config["clients"], config["roles"] = list(clients.values()), list(roles.values())
    tmp = dynsec_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(config))
    tmp.chmod(0o600)
    tmp.replace(dynsec_file)
    return added


def refresh_service_roles(dynsec_file: Path) -> None:
    """Give the services' roles in a kept dynamic-security file the ACLs of this version (a data
    folder outlives a change of what a service may do on the broker). Run it only while the
    broker is stopped."""
    config = json.loads(dynsec_file.read_text())
    wanted = {service_username(name): service_acls(name) for name in SERVICES}
    for role in config["roles"]:
        if role["rolename"] in wanted:
            role["acls"] = wanted[role["rolename"]]
    tmp = dynsec_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(config))
    tmp.chmod(0o600)
    tmp.replace(dynsec_file)


def new_password() -> str:
    return secrets.token_urlsafe(18)
