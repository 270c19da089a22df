"""Ingest of bed samples from the log's telemetry stream: each fetched batch of device batches is
written in one transaction (COPY), and acknowledged by the consumer runtime after the commit. A
sample stored twice (a redelivery) is stored once: (device, ts) is the key."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import psycopg
from psycopg_pool import ConnectionPool

from homecare.log import ConsumerSpec, Delivery, PermanentError, streams
from services.telemetry import metrics
from services.telemetry.domain.samples import BadMessage, Parsed, parse_for_copy, parse_forwarded
from services.telemetry.settings import TelemetrySettings
from services.telemetry.store.samples import WriteResult, write_parsed

log = logging.getLogger(__name__)

# What a given message causes whatever is retried: the runtime finds the message and dead-letters it.
_PERMANENT = (psycopg.DataError, psycopg.IntegrityError)


def consumer_spec(config: TelemetrySettings) -> ConsumerSpec:
    """The durable consumer every telemetry replica pulls samples from."""
    return ConsumerSpec(
        durable="telemetry-samples", stream=streams.TELEMETRY, batch=config.fetch_batch,
        workers=config.writers, max_ack_pending=config.fetch_batch * config.writers * 4,
        stuck_after_s=config.stuck_after_s, title="Bed sensor readings",
    )


class TelemetryIngest:
    """Writes fetched device batches to the database, at least once, each sample once."""

    def __init__(self, pool: ConnectionPool, on_stored: Callable[[], None] | None = None):
        self._pool = pool
        self._on_stored = on_stored  # told after a commit that stored new samples

    def __call__(self, batch: Sequence[Delivery]) -> None:
        """The consumer runtime's handler: store every sample of the batch, or raise."""
        forwarded = parse_forwarded(d.data for d in batch)  # the gateway's messages, as it writes them
        if forwarded is not None:
            try:
                self._write(forwarded)
                return
            except _PERMANENT:
                pass  # a value the database refuses: parse_for_copy decides below, as for any other form
            except Exception:
                metrics.WRITE_ERRORS.inc()
                raise
        try:
            rows = parse_for_copy(b'{"batches":[' + b",".join(d.data for d in batch) + b"]}")
        except BadMessage as exc:
            if len(batch) > 1:
                raise  # the runtime tries them one by one, and finds it
            metrics.MESSAGES_REJECTED.labels("telemetry", "unparseable").inc()
            raise PermanentError(f"not a device batch: {exc}") from None
        try:
            self._write(rows)
        except Exception as exc:
            metrics.WRITE_ERRORS.inc()
            if not isinstance(exc, _PERMANENT):
                raise  # the database away or broken: the runtime holds the batch and tries again
            if len(batch) == 1:
                metrics.MESSAGES_REJECTED.labels("telemetry", "unstorable").inc()
                raise PermanentError(f"the database refuses it: {exc}") from None
            raise

    def _write(self, rows: Parsed) -> WriteResult:
        began = time.perf_counter()
        with self._pool.connection() as conn, conn.transaction():
            result = write_parsed(conn, rows)
        metrics.WRITE_SECONDS.observe(time.perf_counter() - began)
        metrics.BATCH_SAMPLES.observe(result.received)
        metrics.SAMPLES_STORED.inc(result.stored)
        metrics.SAMPLES_DUPLICATE.inc(result.duplicates)
        if result.stored and self._on_stored is not None:
            self._on_stored()
        return result
