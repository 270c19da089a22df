"""What every simulated device does with commands: apply them once, acknowledge each delivery."""

from __future__ import annotations

import logging
import random
from collections import OrderedDict
from typing import Any, Protocol

from pydantic import TypeAdapter, ValidationError

from homecare.contract import Command, DeviceKind

from . import messages
from .clock import Moment
from .messages import Outgoing

log = logging.getLogger(__name__)

_COMMAND = TypeAdapter(Command)
_REMEMBERED_COMMANDS = 256


class Behaviour(Protocol):
    """The pure side of a device: what to send when. The transport calls it; it does no I/O."""

    device_id: str
    kind: DeviceKind

    def status(self) -> Outgoing:
        """The retained status published on every connect."""

    def tick_interval(self) -> float:
        """Real seconds until the next tick."""

    def tick(self, moment: Moment) -> list[Outgoing]:
        """Advance to `moment`; the messages to publish now."""

    def on_command(self, payload: dict[str, Any], moment: Moment) -> list[Outgoing]:
        """A command arrived; the messages to publish in reply (its ack first)."""


class CommandHandling:
    """Acks every valid command and applies each command id once (QoS 1 may redeliver)."""

    device_id: str
    rng: random.Random

    def __init__(self) -> None:
        self._applied: OrderedDict[str, None] = OrderedDict()
        self.invalid_commands = 0

    def on_command(self, payload: dict[str, Any], moment: Moment) -> list[Outgoing]:
        """Validate, apply once, and acknowledge (again, on a redelivery)."""
        try:
            command = _COMMAND.validate_python(payload)
        except ValidationError as exc:
            # A device cannot show what it does not understand, so it does not confirm it.
            self.invalid_commands += 1
            log.warning("%s: invalid command ignored: %s", self.device_id, exc.errors()[0]["msg"])
            return []
        out = [messages.ack(command.command_id, moment.wall)]
        if command.command_id not in self._applied:
            self._applied[command.command_id] = None
            if len(self._applied) > _REMEMBERED_COMMANDS:
                self._applied.popitem(last=False)
            out.extend(self.apply(command, moment))
        return out

    def apply(self, command: Any, moment: Moment) -> list[Outgoing]:
        """Apply a validated command; subclasses override."""
        return []
