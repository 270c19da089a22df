"""The whole network under test, set up once per data folder: database, broker (with per-device
accounts), the four components as subprocesses, an administrator, the simulated population
(provisioned through the operator API, kept in `roster.json`) and a probe button."""

from __future__ import annotations

import json
import logging
import secrets
import time
from pathlib import Path
from typing import Any

import psycopg

from devices.simulator import Roster, Scenario, Simulation
from devices.simulator.api import ApiError, OperatorApi
from homecare.auth import Role, create_user
from homecare.db import migrate
from homecare.mqtt import BrokerAddress
from services.dispatch.domain.requests import TERMINAL, Status

from . import accounts
from .infra import Infra
from .platform import Platform

log = logging.getLogger(__name__)

ADMIN = "bench-admin"


class BenchNetwork:
    """Infra + platform + population, reusing what an earlier run left in `data_dir`."""

    def __init__(self, data_dir: Path, scenario: Scenario, broker_auth: bool = True,
                 platform_env: dict[str, str] | None = None):
        self.data_dir, self.scenario = data_dir, scenario
        self.infra = Infra(data_dir, broker_auth=broker_auth)
        self.platform: Platform | None = None
        self.meta_path = data_dir / "meta.json"
        self.roster_path = data_dir / "roster.json"
        self.meta: dict[str, Any] = {}
        self.roster: Roster | None = None
        self.provision_s: float | None = None
        self.platform_env = platform_env or {}

    # -- setup ----------------------------------------------------------------------------------

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.meta = json.loads(self.meta_path.read_text()) if self.meta_path.exists() else {}
        self.meta.setdefault("admin_password", secrets.token_urlsafe(12))
        self.meta.setdefault("observer_password", accounts.new_password())
        # Every run starts with an empty broker: what an earlier run left queued (a paused
        # consumer's backlog, say) would otherwise land on this run's services all at once.
        # Accounts stay; sessions and subscriptions are made again as clients connect.
        (self.infra.broker_dir / "mosquitto.db").unlink(missing_ok=True)
        self.infra.start()
        migrate(self.infra.database_url)
        with psycopg.connect(self.infra.database_url) as conn:
            create_user(conn, ADMIN, self.meta["admin_password"], Role.ADMIN)
        self.platform = Platform(
            self.infra.database_url, self.infra.broker_url, self.data_dir / "logs", self.infra.accounts,
            env=self.platform_env, nats_url=self.infra.nats_url,
        )
        self.platform.start_all()
        self._population()
        self._save_meta()

    def _population(self) -> None:
        assert self.platform is not None
        if self.roster_path.exists():
            self.roster = Roster.load(self.roster_path)
        else:
            started = time.monotonic()
            log.info("provisioning %d homes and %d providers through the API (once per data folder)",
                     self.scenario.homes, self.scenario.providers)
            sim = Simulation(self.platform.api_url, self.infra.broker_url, self.scenario, ADMIN,
                             self.meta["admin_password"])
            self.roster = sim.provision()
            self.roster.save(self.roster_path)
            self.provision_s = round(time.monotonic() - started, 1)
            self.meta["provision_s"] = self.provision_s
        if "probe" not in self.meta:
            self.meta["probe"] = self._enrol_probe()
        if self.infra.embedded_broker and self.infra.broker_auth and \
                self.meta.get("accounts_imported") != self.roster.run_tag:
            self._import_accounts()

    def _enrol_probe(self) -> dict[str, str]:
        """A home with a button of the benchmark's own, to check the press path end to end."""
        return self.enrol_button("probe", "Probe Resident", "Bench Lane 1")

    def enrol_button(self, role: str, name: str, address: str) -> dict[str, str]:
        """A resident with a button of the benchmark's own (`btn-<role>-<hex>`), through the API."""
        assert self.platform is not None
        api = OperatorApi(self.platform.api_url)
        try:
            api.sign_in(ADMIN, self.meta["admin_password"])
            resident = api.enrol_resident({
                "name": name, "address": address, "district": "Huangpu",
                "location": {"lat": 31.2304, "lon": 121.4737}, "contacts": [],
            })
            device_id = f"btn-{role}-{secrets.token_hex(3)}"
            device = api.provision_device(device_id, "button", resident["id"])
        finally:
            api.close()
        return {"id": device_id, "secret": device["secret"], "resident_id": resident["id"]}

    def _import_accounts(self) -> None:
        """Write every device's broker account in one go (see bench.common.accounts), restart."""
        assert self.roster is not None and self.platform is not None
        devices = [(d.id, d.secret) for d in self.roster.devices()]
        devices.append((self.meta["probe"]["id"], self.meta["probe"]["secret"]))
        started = time.monotonic()
        self.infra.stop_broker()
        added = accounts.import_accounts(
            self.infra.broker_dir / "dynamic-security.json", devices, self.meta["observer_password"],
        )
        self.infra.start_broker()
        for name in ("gateway", "telemetry", "dispatch"):
            self.platform.wait_ready(name, timeout=60)
        self.meta["accounts_imported"] = self.roster.run_tag
        log.info("imported %d device accounts into the broker in %.1fs", added, time.monotonic() - started)

    def _save_meta(self) -> None:
        self.meta_path.write_text(json.dumps(self.meta, indent=1))
        self.meta_path.chmod(0o600)

    # -- what the benchmarks use ---------------------------------------------------------------

    @property
    def observer_url(self) -> str:
        """The broker URL with the observer's credentials (bare pipe, $SYS), when accounts are on."""
        url = self.infra.broker_url
        if not (self.infra.embedded_broker and self.infra.broker_auth):
            return url
        address = BrokerAddress.parse(url)
        return f"mqtt://{accounts.OBSERVER}:{self.meta['observer_password']}@{address.host}:{address.port}"

    @property
    def admin(self) -> tuple[str, str]:
        return ADMIN, self.meta["admin_password"]

    def close_earlier_requests(self) -> int:
        """Close the requests earlier runs left open (cancelled; completed once the provider is
        there); how many.

        A simulated provider's visit takes minutes, so a run ends with its requests still open:
        the next run's presses would join them (a resident has one open request per service)
        and its providers would be busy with them, so no press of that run would get an offer."""
        assert self.platform is not None
        active = [s.value for s in Status if s not in TERMINAL]
        api = OperatorApi(self.platform.api_url)
        closed = 0
        try:
            api.sign_in(ADMIN, self.meta["admin_password"])
            while batch := api.requests(active):
                before = closed
                for request in batch:
                    try:
                        if request["status"] == Status.ARRIVED:
                            api.complete_request(request["id"])
                        else:
                            api.cancel_request(request["id"], "benchmark: left open by an earlier run")
                        closed += 1
                    except ApiError as exc:
                        if exc.status != 409:  # 409: it moved on meanwhile; the next listing shows it
                            raise
                if closed == before:
                    raise RuntimeError(f"{len(batch)} requests of earlier runs cannot be closed: {batch[0]}")
        finally:
            api.close()
        return closed

    def stop(self) -> None:
        if self.platform is not None:
            self.platform.stop()
        self.infra.stop()
