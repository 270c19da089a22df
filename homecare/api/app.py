"""The one factory that builds a component's HTTP app around its routers."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from homecare.auth.throttle import LoginThrottle
from homecare.errors import Conflict, Forbidden, HomecareError, Invalid, NotFound, Unavailable

from . import openapi
from .allow import AllowHeader
from .auth_routes import router as auth_router
from .guard import InputGuard, install_error_handlers
from .health import ReadinessCheck, health_router
from .settings import ApiSettings

# Each family of domain errors as an HTTP status: the one place that knows both. Another
# HomecareError is a 400.
_STATUS = {NotFound: 404, Conflict: 409, Invalid: 422, Forbidden: 403, Unavailable: 503}


def status_of(exc: HomecareError) -> int:
    """The HTTP status of a domain error: its nearest family's."""
    return next((_STATUS[family] for family in type(exc).__mro__ if family in _STATUS), 400)


def build_app(
    title: str,
    pool,
    routers: Iterable[APIRouter] = (),
    checks: dict[str, ReadinessCheck] | None = None,
    lifespan: Callable[[FastAPI], AbstractContextManager] | None = None,
    with_auth: bool = True,
) -> FastAPI:
    """A FastAPI app with health, metrics, auth, the given routers and domain-error mapping."""
    app = FastAPI(title=title, version="1", lifespan=lifespan)
    app.state.pool = pool
    settings = ApiSettings()
    app.state.login_throttle = LoginThrottle.from_settings(settings)  # the API's and the console's
    app.add_middleware(InputGuard)
    app.add_middleware(AllowHeader)  # outermost: OPTIONS is answered before the guard reads a body
    install_error_handlers(app)
    app.include_router(health_router(checks or {}))
    if with_auth:
        app.include_router(auth_router)
    for router in routers:
        app.include_router(router)

    openapi.install(app)

    @app.exception_handler(HomecareError)
    async def domain_error(_: Request, exc: HomecareError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status_of(exc))

    return app
