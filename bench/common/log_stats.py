"""What the platform still owes in the internal log: messages not yet delivered to a durable
consumer, and messages delivered but not acknowledged, summed over the namespace's consumers."""

from __future__ import annotations

from homecare.log import Log, streams
from homecare.settings import Settings


class LogStats:
    """A connection of the benchmark's own to the log, read on demand."""

    def __init__(self, nats_url: str, namespace: str | None = None):
        # The platform's processes take the namespace from the environment, as this does.
        settings = Settings()  # replicas too: the observer must not bring the streams to another count
        self._log = Log(nats_url, "bench-log-observer", namespace or settings.log_namespace, settings.log_replicas)
        self._log.start()

    def consumers(self) -> dict[str, dict[str, int]]:
        """`{durable: {"pending": n, "ack_pending": n}}` for every consumer of every stream."""
        return self._log.call(self._read(), 15)

    def backlog(self) -> int | None:
        """Messages the platform has not finished (None while the log cannot be read)."""
        try:
            return sum(c["pending"] + c["ack_pending"] for c in self.consumers().values())
        except Exception:
            return None

    async def _read(self) -> dict[str, dict[str, int]]:
        found: dict[str, dict[str, int]] = {}
        for spec in streams.ALL:
            if spec is streams.DEAD:
                continue
            for info in await self._log.js.consumers_info(self._log.stream(spec)):
                found[info.name] = {"pending": info.num_pending or 0, "ack_pending": info.num_ack_pending or 0}
        return found

    def dead_letters(self) -> int:
        """Messages consumers gave up on."""
        info = self._log.call(self._log.js.stream_info(self._log.stream(streams.DEAD)), 15)
        return info.state.messages

    def close(self) -> None:
        self._log.stop()
