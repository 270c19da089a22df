"""A lean MQTT 3.1.1 publisher for benchmarks: one TCP connection per device, packets encoded
before the clock starts, QoS 1 with a window of unacknowledged messages per connection, all on
one asyncio loop. It costs the machine far less than paho clients would, so the pipeline under
test gets the CPU."""

from __future__ import annotations

import asyncio
import struct
import time
from dataclasses import dataclass, field


def _length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(s: str) -> bytes:
    data = s.encode()
    return struct.pack("!H", len(data)) + data


def connect_packet(client_id: str, username: str | None = None, password: str | None = None) -> bytes:
    """CONNECT, clean session, keep-alive off (a benchmark connection lives briefly)."""
    flags = 0x02
    payload = _string(client_id)
    if username is not None:
        flags |= 0x80
        payload += _string(username)
        if password is not None:
            flags |= 0x40
            payload += _string(password)
    body = _string("MQTT") + bytes([4, flags]) + struct.pack("!H", 0) + payload
    return b"\x10" + _length(len(body)) + body


def publish_packet(topic: str, payload: bytes, packet_id: int) -> bytes:
    """PUBLISH at QoS 1."""
    body = _string(topic) + struct.pack("!H", packet_id) + payload
    return b"\x32" + _length(len(body)) + body


@dataclass
class Device:
    """One connection and the messages it sends, in order."""

    client_id: str
    topic: str
    payloads: list[bytes]
    username: str | None = None
    password: str | None = None
    packets: list[bytes] = field(default_factory=list)

    def encode(self) -> None:
        self.packets = [publish_packet(self.topic, p, i % 65535 + 1) for i, p in enumerate(self.payloads)]


@dataclass
class Report:
    messages: int
    bytes: int
    started: float
    finished: float

    @property
    def seconds(self) -> float:
        return self.finished - self.started


async def _run_device(
    device: Device, host: str, port: int, window: int, connected: asyncio.Queue, start: asyncio.Event
) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(connect_packet(device.client_id, device.username, device.password))
    await writer.drain()
    connack = await reader.readexactly(4)
    if connack[0] != 0x20 or connack[3] != 0:
        raise ConnectionError(f"{device.client_id}: broker refused the connection ({connack[3]})")
    connected.put_nowait(device.client_id)
    await start.wait()
    credits = asyncio.Semaphore(window)
    total = len(device.packets)

    async def read_acks() -> None:
        acked = 0
        while acked < total:
            header = await reader.readexactly(2)
            await reader.readexactly(header[1])  # PUBACK: the packet id
            if header[0] >> 4 == 4:
                acked += 1
                credits.release()

    acks = asyncio.create_task(read_acks())
    sent = 0
    for packet in device.packets:
        await credits.acquire()
        writer.write(packet)
        sent += len(packet)
        if writer.transport.get_write_buffer_size() > 1 << 16:
            await writer.drain()
    await writer.drain()
    await acks
    writer.write(b"\xe0\x00")  # DISCONNECT
    await writer.drain()
    writer.close()
    return sent


async def _publish(devices: list[Device], host: str, port: int, window: int) -> Report:
    start, connected = asyncio.Event(), asyncio.Queue()
    tasks = [
        asyncio.create_task(_run_device(d, host, port, window, connected, start)) for d in devices
    ]
    for _ in devices:  # every connection is up before the clock starts
        getter = asyncio.create_task(connected.get())
        done, _ = await asyncio.wait([getter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        if getter not in done:
            getter.cancel()
            for task in done:
                task.result()  # a connection failed: raise its error
    began = time.monotonic()
    start.set()
    sizes = await asyncio.gather(*tasks)
    return Report(sum(len(d.packets) for d in devices), sum(sizes), began, time.monotonic())


def publish(devices: list[Device], host: str, port: int, window: int = 20) -> Report:
    """Connect every device, then send all their messages; returns once every PUBACK came."""
    for device in devices:
        if not device.packets:
            device.encode()
    return asyncio.run(_publish(devices, host, port, window))
