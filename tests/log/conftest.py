"""The log's tests: a namespace of their own on the real NATS server, its streams dropped after."""

from __future__ import annotations

import uuid

import pytest

from homecare.log import Log, streams


@pytest.fixture
def log_(nats_url):
    log = Log(nats_url, "test", f"T{uuid.uuid4().hex[:8]}")
    log.start()
    yield log
    log.call(_drop_streams(log), 10)
    log.stop()


async def _drop_streams(log: Log) -> None:
    for spec in streams.ALL:
        try:
            await log.js.delete_stream(log.stream(spec))
        except Exception:
            pass
