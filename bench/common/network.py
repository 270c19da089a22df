"""The whole network under test, set up once per data folder: database, broker (with per-device
accounts), the four components as subprocesses, an administrator, the simulated population
(provisioned through the operator API, kept in `roster.json`) and a probe button.

With several broker shards, each device connects to the shard provisioning placed it on (the
`mqtt_url` of the API's answer), and its account is imported into that shard's broker only; a
probe button is enrolled for every shard."""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable
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
from .platform import Layout, Platform

log = logging.getLogger(__name__)

ADMIN = "bench-admin"


class BenchNetwork:
    """Infra + platform + population, reusing what an earlier run left in `data_dir`."""

    def __init__(self, data_dir: Path, scenario: Scenario, broker_auth: bool = True,
                 platform_env: dict[str, str] | None = None, *, shards: tuple[str, ...] = (),
                 nats_nodes: int = 1, layout: Callable[[Infra], Layout] | None = None):
        self.data_dir, self.scenario = data_dir, scenario
        self.infra = Infra(data_dir, broker_auth=broker_auth, shards=shards, nats_nodes=nats_nodes)
        self.layout = layout  # the platform's processes, once the brokers' addresses are known
        # shard -> its devices and probe buttons (id, secret), after start()
        self.placement: dict[str, list[tuple[str, str]]] = {}
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
        for shard in self.infra.shards:
            (self.infra.shard_dir(shard) / "mosquitto.db").unlink(missing_ok=True)
        self.infra.start()
        migrate(self.infra.database_url)
        with psycopg.connect(self.infra.database_url) as conn:
            create_user(conn, ADMIN, self.meta["admin_password"], Role.ADMIN)
        self.platform = Platform(
            self.infra.database_url, self.infra.broker_url, self.data_dir / "logs", self.infra.accounts,
            env=self.platform_env, nats_url=self.infra.nats_url,
            layout=self.layout(self.infra) if self.layout else None,
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
            self.meta["shard_urls"] = dict(self.infra.broker_urls)
            self._save_meta()
        self.meta.setdefault("shard_urls", dict(self.infra.broker_urls))
        self._enrol_probes()
        self._place()
        for shard in self.infra.shards:
            if self.infra.embedded_broker and self.infra.broker_auth and \
                    self.meta.get(self._imported_key(shard)) != self.roster.run_tag:
                self._import_accounts(shard)

    def _shard_of(self, device_id: str, url: str) -> str:
        """The shard provisioning placed a device on (its `mqtt_url` then, or now)."""
        shards = self.infra.shards
        if len(shards) == 1:
            return shards[0]
        by_url = {u: name for urls in (self.meta.get("shard_urls", {}), self.infra.broker_urls)
                  for name, u in urls.items()}
        if url not in by_url:
            raise RuntimeError(f"{device_id} was provisioned with mqtt_url {url!r}, none of this network's shards "
                               f"({by_url}): a data folder from before broker shards? delete {self.data_dir}")
        return by_url[url]

    def _place(self) -> None:
        """Point every device at its shard's broker as it runs now (ports change between runs);
        record which devices each shard has."""
        assert self.roster is not None
        self.placement = {shard: [] for shard in self.infra.shards}
        for home in self.roster.residents:
            for device in (home.bed, home.button):
                shard = self._shard_of(device.id, device.mqtt_url)
                device.mqtt_url = self.infra.broker_urls[shard]
                self.placement[shard].append((device.id, device.secret))
        for shard, probe in self.meta["probes"].items():
            self.placement[shard].append((probe["id"], probe["secret"]))
        self.roster.save(self.roster_path)
        self.meta["shard_urls"] = dict(self.infra.broker_urls)  # what the roster says now
        self._save_meta()

    def _enrol_probes(self) -> None:
        """A probe button on every shard (enrolled until provisioning put one on each)."""
        probes: dict[str, dict[str, str]] = self.meta.setdefault("probes", {})
        if "probe" in self.meta and not probes:  # a data folder of one shard, from before shards
            probes[self.infra.shards[0]] = self.meta["probe"]
        for _ in range(8 * len(self.infra.shards)):
            if all(s in probes for s in self.infra.shards):
                break
            probe = self._enrol_probe()
            probes.setdefault(self._shard_of(probe["id"], probe.pop("mqtt_url")), probe)
        missing = [s for s in self.infra.shards if s not in probes]
        if missing:
            raise RuntimeError(f"provisioning put no probe button on shards {missing}")
        self.meta["probe"] = probes[self.infra.shards[0]]

    def probe_url(self, shard: str) -> str:
        return self.infra.broker_urls[shard]

    @staticmethod
    def _imported_key(shard: str) -> str:
        return "accounts_imported" if shard == "main" else f"accounts_imported_{shard}"

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
        return {"id": device_id, "secret": device["secret"], "resident_id": resident["id"],
                "mqtt_url": device.get("mqtt_url") or ""}

    def _import_accounts(self, shard: str) -> None:
        """Write the broker accounts of a shard's devices in one go (see bench.common.accounts),
        restart that broker."""
        assert self.roster is not None and self.platform is not None
        devices = self.placement[shard]
        started = time.monotonic()
        self.infra.stop_broker(shard=shard)
        added = accounts.import_accounts(
            self.infra.shard_dir(shard) / "dynamic-security.json", devices, self.meta["observer_password"],
        )
        self.infra.start_broker(shard)
        for process in self.platform.layout.processes:
            self.platform.wait_ready(process, timeout=60)
        self.meta[self._imported_key(shard)] = self.roster.run_tag
        log.info("imported %d device accounts into broker %s in %.1fs", added, shard, time.monotonic() - started)

    def _save_meta(self) -> None:
        self.meta_path.write_text(json.dumps(self.meta, indent=1))
        self.meta_path.chmod(0o600)

    # -- what the benchmarks use ---------------------------------------------------------------

    @property
    def observer_url(self) -> str:
        """The broker URL with the observer's credentials (bare pipe, $SYS), when accounts are on."""
        return self.observer_url_of(self.infra.shards[0])

    def observer_url_of(self, shard: str) -> str:
        """A shard's broker URL with the observer's credentials, when accounts are on."""
        url = self.infra.broker_urls[shard]
        if not (self.infra.embedded_broker and self.infra.broker_auth):
            return url
        address = BrokerAddress.parse(url)
        return f"mqtt://{accounts.OBSERVER}:{self.meta['observer_password']}@{address.host}:{address.port}"

    def durability_settings(self) -> dict[str, Any]:
        """PostgreSQL's durability settings and each broker's persistence (as configured); with
        one broker, `mosquitto` is its settings, with shards `{shard: settings}`."""
        with psycopg.connect(self.infra.database_url) as conn:
            pg = {name: conn.execute(f"SHOW {name}").fetchone()[0]
                  for name in ("fsync", "synchronous_commit", "full_page_writes", "wal_level")}
        brokers = {}
        for shard in self.infra.shards:
            conf_file = self.infra.shard_dir(shard) / "mosquitto.conf"
            conf = conf_file.read_text() if self.infra.embedded_broker else ""
            brokers[shard] = {line.split()[0]: line.split(None, 1)[1] for line in conf.splitlines()
                              if line.split() and line.split()[0] in (
                                  "persistence", "autosave_interval", "max_queued_messages", "max_inflight_messages")}
        mosquitto = brokers[self.infra.shards[0]] if len(brokers) == 1 else brokers
        return {"postgresql": pg, "mosquitto": mosquitto}

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
