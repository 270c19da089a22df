"""What every simulated device does with commands: apply them once, acknowledge each delivery."""

from __future__ import annotations

import logging
import random
from collections import OrderedDict
from typing import Annotated, Any, Protocol

from pydantic import Field, TypeAdapter, ValidationError

from homecare.contract import (
    Command,
    CommandType,
    Config,
    DeviceKind,
    RequestAcknowledged,
    RequestAssigned,
    RequestCancelled,
    RequestCompleted,
)

from . import messages
from .clock import Moment
from .messages import Outgoing

log = logging.getLogger(__name__)

_COMMAND = TypeAdapter(Command)
# The commands firmware built before v1.1 knows: all but `selftest.request`. Its `config` model
# ignores `selftest_interval_h` as it ignores any field it does not know (mqtt-v1's forward
# compatibility), so such a device still applies and acks the rest of a config.
_COMMAND_BEFORE_V11 = TypeAdapter(Annotated[
    RequestAcknowledged | RequestAssigned | RequestCompleted | RequestCancelled | Config,
    Field(discriminator="type"),
])
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

    def knows(self, command_type: object) -> bool:
        """Whether the device's firmware knows commands of this type."""


class CommandHandling:
    """Acks every valid command and applies each command id once (QoS 1 may redeliver).

    A device built before v1.1 (`before_v11`) does not know `selftest.request`: its firmware
    reads a command by its `type`, fails on one it has no model for, and treats it as any
    command it cannot read: ignored, and not acked, since an ack says the command was shown or
    applied (mqtt-v1 `acks`), which an old device cannot claim. The platform sees a command
    that is never acked (and expires it), as it would from such a device in the field."""

    device_id: str
    rng: random.Random

    def __init__(self, *, before_v11: bool = False) -> None:
        self._applied: OrderedDict[str, None] = OrderedDict()
        self.invalid_commands = 0
        self.unknown_commands = 0  # of a type newer than the firmware
        self.before_v11 = before_v11
        self._commands = _COMMAND_BEFORE_V11 if before_v11 else _COMMAND

    def knows(self, command_type: object) -> bool:
        """Whether the firmware knows commands of this type (an older one: not v1.1's)."""
        return not (self.before_v11 and command_type == CommandType.SELFTEST_REQUEST)

    def on_command(self, payload: dict[str, Any], moment: Moment) -> list[Outgoing]:
        """Validate, apply once, and acknowledge (again, on a redelivery)."""
        try:
            command = self._commands.validate_python(payload)
        except ValidationError as exc:
            # A device cannot show what it does not understand, so it does not confirm it.
            if not self.knows(payload.get("type")):
                self.unknown_commands += 1
                log.debug("%s: command type unknown to firmware before v1.1: %s", self.device_id, payload.get("type"))
                return []
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
