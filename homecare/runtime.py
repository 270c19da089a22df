"""What every component exposes, so `homecare demo` can run them all in one process and
`homecare <component>` can run one alone."""

from __future__ import annotations

from typing import Protocol

from fastapi import APIRouter

from homecare.api.health import ReadinessCheck


class Component(Protocol):
    """A running part of the network: background workers plus HTTP routes."""

    name: str

    def start(self) -> None:
        """Connect and start background work; return once it runs."""

    def stop(self) -> None:
        """Stop background work and disconnect cleanly."""

    def routers(self) -> list[APIRouter]:
        """HTTP routes this component serves (under /api/v1 or its own pages)."""

    def checks(self) -> dict[str, ReadinessCheck]:
        """Readiness checks: name -> callable returning True when reachable."""
