"""`/healthz` (the process answers), `/readyz` (its broker and database answer), `/metrics`."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

ReadinessCheck = Callable[[], bool]


def health_router(checks: dict[str, ReadinessCheck]) -> APIRouter:
    """Probes for one component; each check returns True when its dependency is reachable."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @router.get("/readyz")
    def readyz() -> JSONResponse:
        results = {}
        for name, check in checks.items():
            try:
                results[name] = bool(check())
            except Exception:  # a failing probe means not ready, never a 500
                results[name] = False
        ready = all(results.values())
        return JSONResponse({"ready": ready, "checks": results}, status_code=200 if ready else 503)

    @router.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def database_check(pool) -> ReadinessCheck:
    """Readiness of a psycopg pool: a trivial query succeeds within 2 s."""

    def check() -> bool:
        with pool.connection(timeout=2) as conn:
            conn.execute("SELECT 1")
        return True

    return check
