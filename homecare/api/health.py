"""`/healthz` (the process answers), `/readyz` (its broker and database answer), `/metrics`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


@dataclass(frozen=True)
class Degraded:
    """What a check returns for "ready, but an operator must look": the process keeps serving
    (taking it out of rotation would not help), and /readyz lists the reasons."""

    reasons: tuple[str, ...]

    def __bool__(self) -> bool:
        return True


ReadinessCheck = Callable[[], "bool | Degraded"]


def health_router(checks: dict[str, ReadinessCheck]) -> APIRouter:
    """Probes for one component; each check returns True when its dependency is reachable."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @router.get("/readyz", responses={503: {"description": "A dependency does not answer"}})
    def readyz() -> JSONResponse:
        """`ready` and each check's result; `degraded`: the reasons of checks that are ready but
        need an operator (the answer stays 200 for them)."""
        results: dict[str, bool] = {}
        degraded: dict[str, list[str]] = {}
        for name, check in checks.items():
            try:
                value = check()
            except Exception:  # a failing probe means not ready, never a 500
                value = False
            results[name] = bool(value)
            if isinstance(value, Degraded):
                degraded[name] = list(value.reasons)
        ready = all(results.values())
        return JSONResponse({"ready": ready, "checks": results, "degraded": degraded},
                            status_code=200 if ready else 503)

    @router.get("/metrics", response_class=PlainTextResponse, responses={
        200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
              "description": "Prometheus text exposition format"},
        401: {"description": "On the console's port: no admin token"},
        403: {"description": "On the console's port: not an admin"}})
    def metrics(request: Request) -> Response:
        """Prometheus metrics. On a port the public reaches (the console's) only for an admin's
        bearer token, unless HOMECARE_API_METRICS_PUBLIC=true; open on the components' own ports."""
        if getattr(request.app.state, "metrics_admin_only", False):
            _require_admin(request)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def _require_admin(request: Request) -> None:
    from homecare.auth import AuthError, Role, user_for_token

    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "metrics on this port need an admin's bearer token",
                            headers={"WWW-Authenticate": "Bearer"})
    try:
        with request.app.state.pool.connection() as conn:
            user = user_for_token(conn, token.strip())
    except AuthError as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
    if user.role is not Role.ADMIN:
        raise HTTPException(403, f"role {user.role.value} may not read metrics")


def database_check(pool) -> ReadinessCheck:
    """Readiness of a psycopg pool: a trivial query succeeds within 2 s."""

    def check() -> bool:
        with pool.connection(timeout=2) as conn:
            conn.execute("SELECT 1")
        return True

    return check
