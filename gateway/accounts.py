"""Device identities on the broker: provisioning creates one, revocation removes it."""

from __future__ import annotations

import logging
import threading
from typing import Protocol

log = logging.getLogger(__name__)


class BrokerAccounts(Protocol):
    """The broker's own list of device credentials (mqtt-v1: username = id, password = secret)."""

    def add_device(self, device_id: str, secret: str) -> None:
        """Let the device connect with this secret, publishing and subscribing only its topics."""

    def remove_device(self, device_id: str) -> None:
        """Refuse the device from now on and drop its live connection."""


class AnonymousBroker:
    """A broker that lets anyone connect (embedded demo, tests): nothing to add or remove.

    Device identity is then not enforced by the broker; the gateway still drops messages from
    ids that are not provisioned, but cannot stop one device from speaking for another.
    """

    def __init__(self) -> None:
        self._warned = threading.Event()

    def _warn_once(self) -> None:
        if not self._warned.is_set():
            self._warned.set()
            log.warning(
                "the broker does not enforce device identity: any client may connect as any"
                " device; provision a broker with per-device accounts outside development"
            )

    def add_device(self, device_id: str, secret: str) -> None:
        self._warn_once()

    def remove_device(self, device_id: str) -> None:
        self._warn_once()
