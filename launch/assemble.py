"""Builds the components and the one HTTP app that serves the operator API and the console."""

from __future__ import annotations

import importlib
from typing import Any

import psycopg
from fastapi import FastAPI

from homecare.api.app import build_app
from homecare.api.health import database_check
from homecare.residents.api import residents_router
from homecare.runtime import Component
from homecare.settings import Settings

# Component name -> module with `build(settings, pool) -> Component`; order is start order.
BUILDERS: dict[str, str] = {
    "gateway": "gateway.bootstrap",
    "telemetry": "services.telemetry.bootstrap",
    "dispatch": "services.dispatch.bootstrap",
    "console": "console.bootstrap",
}


def build_component(name: str, settings: Settings, pool) -> Component:
    """Build one component by name."""
    return importlib.import_module(BUILDERS[name]).build(settings, pool)


def resident_details(conn: psycopg.Connection, resident_id: str) -> dict[str, Any]:
    """A resident's devices (gateway) and open requests (dispatch), through their interfaces."""
    from gateway import registry
    from services.dispatch import queries

    return {
        "devices": [d.model_dump(mode="json") for d in registry.devices_of(conn, resident_id)],
        "open_requests": queries.open_requests_for(conn, resident_id),
    }


def http_app(title: str, pool, components: list[Component], with_residents: bool,
             running: list[Component] | None = None) -> FastAPI:
    """One app for the given components, with health, metrics and auth. /readyz checks the
    `running` ones (default: all): the console serves the routes of components it does not run,
    and their broker links, never started here, are no reason to be unready."""
    checks = {"database": database_check(pool)}
    for component in components if running is None else running:
        for name, check in component.checks().items():
            checks[f"{component.name}.{name}"] = check
    routers = []
    for component in components:
        routers.extend(component.routers())
    if with_residents:
        routers.append(residents_router([resident_details]))
    app = build_app(title, pool, routers, checks)
    for component in components:
        mount = getattr(component, "mount", None)  # e.g. the console's static files
        if mount:
            mount(app)
    return app
