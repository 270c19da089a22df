"""Each press timed at the device: from sending `button.pressed` to the platform's answer."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from .stats import SimStats

# A press is answered by `request.acknowledged`, or, when a provider is already assigned, by a
# reminder `request.assigned` (dispatch answers every press of an open request).
ANSWERS = frozenset({"request.acknowledged", "request.assigned"})
_REMEMBERED = 256


class PressTimer:
    """Pending presses per service, oldest first; each answer closes the oldest one."""

    def __init__(self, stats: SimStats, clock: Callable[[], float] = time.monotonic):
        self._stats, self._clock = stats, clock
        self._pending: dict[str, deque[float]] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()

    def pressed(self, service: str) -> None:
        self._pending.setdefault(service, deque()).append(self._clock())

    def command(self, payload: dict[str, Any]) -> float | None:
        """A command reached the button: the latency (ms) of the press it answers, if any."""
        command_id = payload.get("command_id")
        if payload.get("type") not in ANSWERS or not isinstance(command_id, str) or command_id in self._seen:
            return None  # a redelivery of an answer is not a second answer
        self._seen[command_id] = None
        if len(self._seen) > _REMEMBERED:
            self._seen.popitem(last=False)
        waiting = self._pending.get(str(payload.get("service")))
        if not waiting:
            return None  # opened for them, or a provider's assignment: no press to answer
        latency_ms = (self._clock() - waiting.popleft()) * 1000
        self._stats.observe("press_to_ack_ms", latency_ms)
        return latency_ms

    def forget(self) -> None:
        """Power lost: the button no longer knows what it pressed."""
        self._stats.add("presses_unanswered", self.unanswered())
        self._pending.clear()

    def unanswered(self) -> int:
        return sum(len(q) for q in self._pending.values())
