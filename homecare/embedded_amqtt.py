"""In-process MQTT broker (amqtt) for machines without mosquitto on PATH.

PROBE VERSION
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from pathlib import Path

from amqtt.broker import Broker
from amqtt.plugins.base import BaseAuthPlugin
from amqtt.session import Session

from homecare.embedded import Embedded, free_port, wait_for_port

log = logging.getLogger(__name__)


class OpenAuthPlugin(BaseAuthPlugin):
    """Admit every client as an identified one (not anonymous)."""

    async def authenticate(self, *, session: Session) -> bool:
        return True


def _config(port: int) -> dict:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {f"{__name__}.OpenAuthPlugin": {}},
    }


def start_amqtt(data_dir: str | Path | None = None, port: int | None = None) -> Embedded:
    """An amqtt broker on 127.0.0.1 in a daemon thread with its own event loop."""
    for noisy in ("amqtt", "transitions"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    port = port or free_port()
    loop = asyncio.new_event_loop()
    started: concurrent.futures.Future[Broker] = concurrent.futures.Future()

    async def boot() -> Broker:
        broker = Broker(_config(port), loop=loop)
        await broker.start()
        return broker

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            started.set_result(loop.run_until_complete(boot()))
        except BaseException as exc:  # noqa: BLE001
            started.set_exception(exc)
            loop.close()
            return
        loop.run_forever()
        loop.close()

    thread = threading.Thread(target=run, name=f"amqtt-{port}", daemon=True)
    thread.start()
    broker = started.result(30)
    wait_for_port(port)

    def stop() -> None:
        asyncio.run_coroutine_threadsafe(broker.shutdown(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)

    return Embedded("amqtt", f"mqtt://127.0.0.1:{port}", stop)
