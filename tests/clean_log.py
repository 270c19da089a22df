"""`python -m tests.clean_log [NATS_URL]`: deletes the streams test runs left on a long-lived NATS
server (namespaces `T<hex>`, see the `log_namespace` fixture), as CI does before a run. A test
deletes its own streams; a run that was killed leaves them."""

from __future__ import annotations

import asyncio
import os
import re
import sys

import nats

TEST_STREAM = re.compile(r"^T[0-9A-F]{10}_[A-Z]+$")


async def clean(url: str) -> int:
    nc = await nats.connect(servers=url.split(","), connect_timeout=5)
    js = nc.jetstream()
    deleted = 0
    try:
        while True:  # a page at a time: deleting shifts the pages
            names = [i.config.name for i in await js.streams_info() if TEST_STREAM.match(i.config.name)]
            if not names:
                return deleted
            for name in names:
                await js.delete_stream(name)
                deleted += 1
    finally:
        await nc.close()


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("HOMECARE_NATS_URL", "nats://127.0.0.1:4222")
    print(f"deleted {asyncio.run(clean(target))} streams of earlier test runs at {target}")
