"""The edge's worker thread: takes messages off the MQTT network thread, flushes telemetry."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg_pool import PoolTimeout

log = logging.getLogger(__name__)

Task = Callable[[], None]
# The database is away (restart, failover, pool exhausted): the same task will work later.
TRANSIENT = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)
MAX_ATTEMPTS = 3  # for failures that are not transient: a bug, which retrying will not fix


@dataclass
class _Item:
    task: Task
    give_up: Task | None  # when the task cannot succeed: reject (answer and acknowledge) its message
    holds_slot: bool


class Worker:
    """Runs tasks one at a time on its own thread.

    Received messages come in through `put`, which blocks while `capacity` of them wait, so a
    slow database slows the broker down instead of filling memory; follow-ups from PUBACK
    callbacks come in through `submit`, which never blocks (the network thread must not wait).
    Every task is idempotent: one that fails because the database is away is retried until it
    succeeds; one that fails otherwise is retried twice, then given up. `idle` runs between
    tasks and returns how long the worker may sleep.
    """

    def __init__(self, name: str, capacity: int, idle: Callable[[], float | None]):
        self._name = name
        self._tasks: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._capacity = capacity
        self._slots = threading.BoundedSemaphore(capacity)
        self._idle = idle
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def put(self, task: Task, give_up: Task | None = None) -> None:
        """Queue work for a received message; waits for room."""
        while not self._slots.acquire(timeout=1.0):
            if self._stopping.is_set():
                return
        self._tasks.put(_Item(task, give_up, True))

    def submit(self, task: Task, give_up: Task | None = None) -> None:
        """Queue a follow-up; never waits."""
        self._tasks.put(_Item(task, give_up, False))

    def backlog(self) -> int:
        """How many tasks are waiting (approximately: other threads add to it)."""
        return self._tasks.qsize()

    def attempt(self, task: Task, give_up: Task | None = None) -> None:
        """Run a task now with the retry policy of queued ones; on the worker thread only
        (from `idle`, for work gathered from several messages)."""
        self._attempt(_Item(task, give_up, False))

    def start(self) -> None:
        # Whatever a previous run left queued belongs to a connection that is gone: the broker
        # redelivers those messages, so start empty.
        self._tasks = queue.SimpleQueue()
        self._slots = threading.BoundedSemaphore(self._capacity)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the task at hand and stop; what is still queued stays unacknowledged."""
        self._stopping.set()
        self._tasks.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                wait = self._idle()
            except Exception:
                log.exception("%s: idle work failed", self._name)
                wait = 0.5
            try:
                item = self._tasks.get(timeout=0.5 if wait is None else max(wait, 0.0005))
            except queue.Empty:
                continue
            if item is None:
                break
            try:
                self._attempt(item)
            finally:
                if item.holds_slot:
                    self._slots.release()

    def _attempt(self, item: _Item) -> None:
        failures, pause = 0, 0.5
        while not self._stopping.is_set():
            try:
                item.task()
                return
            except TRANSIENT as exc:
                log.warning("%s: database unavailable, retrying in %.1fs: %s", self._name, pause, exc)
                self._stopping.wait(pause)
                pause = min(pause * 2, 10.0)
            except Exception:
                failures += 1
                if failures < MAX_ATTEMPTS:
                    continue
                log.exception("%s: task failed %d times, giving up", self._name, failures)
                if item.give_up is not None:
                    try:  # it answers and acknowledges the message; the worker must go on
                        item.give_up()
                    except Exception:
                        log.exception("%s: giving up failed too", self._name)
                return
