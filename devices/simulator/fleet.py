"""Every simulated device on one DeviceLoop: opened at a bounded rate, closed cleanly."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from homecare.mqtt import BrokerAddress

from .behaviour import Behaviour
from .clock import SimClock
from .ledger import Ledger
from .scenario import PowerCut
from .session import DeviceSession
from .stats import SimStats
from .transport import DeviceLoop, raise_open_files_limit, settle_garbage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceSpec:
    """A device to run: its behaviour, the secret it connects with and the broker it was
    placed on (empty: the fleet's)."""

    behaviour: Behaviour
    secret: str
    broker_url: str = ""

    @property
    def misbehaving(self) -> bool:
        return getattr(self.behaviour, "fault", None) is not None


class Fleet:
    """Many devices, each its own MQTT connection, all driven by one thread."""

    def __init__(
        self,
        broker_url: str,
        devices: Iterable[DeviceSpec],
        clock: SimClock,
        stats: SimStats,
        *,
        connect_rate: float = 200.0,
        keepalive: int = 60,
        power_cuts: Iterable[PowerCut] = (),
        ledger: Ledger | None = None,
        seed: int = 1,
    ):
        self.clock, self.stats = clock, stats
        self.connect_rate = connect_rate
        self.power_cuts = list(power_cuts)
        self._seed = seed
        self.loop = DeviceLoop()
        brokers: dict[str, BrokerAddress] = {}
        self.sessions = [
            DeviceSession(
                self.loop, _broker(brokers, d.broker_url or broker_url), d.secret, d.behaviour, clock, stats,
                keepalive=keepalive, time_presses=not d.misbehaving, ledger=ledger,
            )
            for d in devices
        ]
        self._by_id = {s.device_id: s for s in self.sessions}
        self._started = False

    def start(self) -> None:
        """Start the loop and power the devices on, `connect_rate` per second."""
        raise_open_files_limit(len(self.sessions) + 1024)
        settle_garbage()  # the sessions just built are long-lived: keep them out of collections
        self.loop.start()
        self._started = True
        self.loop.call_soon_threadsafe(self._open_all)

    def _open_all(self) -> None:
        for i, session in enumerate(self.sessions):
            self.loop.call_later(i / self.connect_rate, session.open)
        opened_after = len(self.sessions) / self.connect_rate
        # Once connected, what the connections allocated is long-lived too.
        self.loop.call_later(opened_after + 10.0, lambda: settle_garbage(collect=False))
        for n, cut in enumerate(self.power_cuts):
            self.loop.call_later(cut.at_s, lambda cut=cut, n=n: self._power_cut(cut, n))

    def _power_cut(self, cut: PowerCut, n: int) -> None:
        rng = random.Random(f"power-cut:{self._seed}:{n}")
        hit = rng.sample(self.sessions, round(cut.share * len(self.sessions)))
        log.info("power cut: %d devices off for %ss, back within %ss", len(hit), cut.outage_s, cut.jitter_s)
        for session in hit:
            session.power_cut(cut.outage_s, cut.jitter_s)

    def stop(self, timeout: float = 15.0) -> bool:
        """Power every device off cleanly (offline status, DISCONNECT), then stop the loop.

        True when every device closed within the timeout."""
        if not self._started:
            return True
        remaining = len(self.sessions)
        all_closed = threading.Event()
        lock = threading.Lock()

        def closed() -> None:
            nonlocal remaining
            with lock:
                remaining -= 1
                if remaining == 0:
                    all_closed.set()

        def close_all() -> None:
            if not self.sessions:
                all_closed.set()
            for session in self.sessions:
                session.close(closed)

        self.loop.call_soon_threadsafe(close_all)
        done = all_closed.wait(timeout)
        if not done:
            log.warning("%d devices did not close within %ss", remaining, timeout)
        self.loop.stop()
        self._started = False
        return done

    def connected(self) -> int:
        """How many devices are connected right now."""
        return sum(1 for s in self.sessions if s.connected)

    def unanswered_presses(self) -> int:
        """Presses the devices still wait an answer for (read from another thread: approximate)."""
        return sum(s.presses.unanswered() for s in self.sessions if s.presses)

    def session(self, device_id: str) -> DeviceSession:
        return self._by_id[device_id]


def _broker(known: dict[str, BrokerAddress], url: str) -> BrokerAddress:
    """One parsed address per broker url, shared by its devices."""
    if url not in known:
        known[url] = BrokerAddress.parse(url)
    return known[url]
