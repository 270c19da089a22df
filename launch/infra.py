"""Where the database, the broker and the internal log (NATS) come from: the URLs configured, or
embedded ones."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from homecare.settings import Settings
from launch import embedded

log = logging.getLogger(__name__)


@dataclass
class Infrastructure:
    settings: Settings  # with database_url, mqtt_url and nats_url filled in
    embedded: list[embedded.Embedded] = field(default_factory=list)

    def stop(self) -> None:
        """Stop what was embedded in reverse order of starting: the log (NATS) and the broker
        first, so nothing they carry reaches a component writing to a dying database."""
        for service in reversed(self.embedded):
            service.stop()


def resolve(settings: Settings, allow_embedded: bool = True, broker_auth: bool = False) -> Infrastructure:
    """Use the configured URLs; start embedded services for the missing ones when allowed: the
    database, the MQTT broker, and the internal log (a single-node NATS server with JetStream).

    `broker_auth`: an embedded mosquitto runs with authentication (dynamic security); the
    settings then carry each component's account (`mqtt_accounts`, see
    `Settings.for_component`) and the account manager's URL (`mqtt_admin_url`).
    """
    started: list[embedded.Embedded] = []
    updates: dict = {}
    required = (("HOMECARE_DATABASE_URL", settings.database_url), ("HOMECARE_MQTT_URL", settings.mqtt_url),
                ("HOMECARE_NATS_URL", settings.nats_url))
    missing = [name for name, value in required if not value]
    if missing and not allow_embedded:
        raise SystemExit(f"set {_and(missing)} (only `homecare demo` embeds them)")
    try:
        if not settings.database_url:
            db = embedded.start_database(_sub(settings.data_dir, "postgres"))
            started.append(db)
            updates["database_url"] = db.url
        if not settings.mqtt_url:
            broker = embedded.start_broker(
                settings.embedded_broker, _sub(settings.data_dir, "broker"), dynsec=broker_auth
            )
            started.append(broker)
            updates["mqtt_url"] = broker.url
            if broker.accounts:
                updates["mqtt_accounts"] = broker.accounts
                updates["mqtt_admin_url"] = broker.admin_url
            if broker.name == "amqtt":  # no $share/ support there
                updates["mqtt_shared_subscriptions"] = False
        if not settings.nats_url:
            # A single node: streams of one replica, whatever HOMECARE_LOG_REPLICAS says.
            nats = embedded.start_nats(_sub(settings.data_dir, "nats"))
            started.append(nats)
            updates["nats_url"] = nats.url
            updates["log_replicas"] = 1
    except BaseException:
        for service in reversed(started):
            service.stop()
        raise
    for service in started:
        log.info("embedded %s at %s", service.name, service.url)
    return Infrastructure(settings.model_copy(update=updates), started)


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _sub(data_dir: str, name: str) -> str | None:
    return f"{data_dir.rstrip('/')}/{name}" if data_dir else None
