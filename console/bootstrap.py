"""Builds the console: settings, CSRF signer, change listener, templates and routes."""

from __future__ import annotations

import logging

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from psycopg_pool import ConnectionPool

from homecare import log as internal_log
from homecare.api.health import ReadinessCheck
from homecare.api.settings import ApiSettings
from homecare.settings import Settings
from services.dispatch.interface import DispatchSettings
from services.dispatch.interface import context as dispatch_context
from services.telemetry.interface import JobWatch, TelemetrySettings

from .alert_pages import alert_router
from .audit_pages import audit_router
from .auth_pages import auth_router
from .beds_pages import beds_router
from .board_pages import board_router
from .changes import ALERT, ChangeHub
from .consumer_watch import ConsumerWatch
from .csrf import HEADER, CsrfSigner, secret_key
from .dead_letter_pages import dead_letter_router
from .dead_letters_api import DeadLetterDesk, dead_letters_router
from .device_health_pages import device_health_router
from .provider_pages import provider_router
from .report_pages import report_router
from .request_pages import request_router
from .resident_pages import resident_router
from .roster_pages import roster_router
from .settings import ConsoleSettings
from .stream import BoardFeed
from .system_api import system_router
from .system_pages import system_page_router
from .web import STATIC_DIR, STATIC_PREFIX, ConsoleContext, templates

log = logging.getLogger(__name__)


class ConsoleComponent:
    """The web console as a `homecare.runtime.Component`."""

    name = "console"

    def __init__(self, ctx: ConsoleContext, log_: internal_log.Log):
        self.ctx = ctx
        self.feed = BoardFeed(ctx)
        self.log = log_  # the internal log, for its dead letters and its consumers' state
        self.dead_letters = DeadLetterDesk(log_, ctx.pool)
        self.consumers = ConsumerWatch(log_, ctx.pool, ctx.settings.consumer_check_s)
        # TimescaleDB's policy jobs: a failing one is in the banner too (and in telemetry's /readyz).
        self.jobs = JobWatch(ctx.pool, TelemetrySettings())
        ctx.notices = lambda: self.consumers.notices() + self.jobs.notices()

    def start(self) -> None:
        """Start listening for request changes; connect to the internal log and watch its consumers."""
        self.ctx.hub.start()
        try:
            self.log.start()
        except Exception:
            self.ctx.hub.stop()
            raise
        self.consumers.start()
        self.jobs.start()

    def stop(self) -> None:
        """Stop listening; open board streams end; stop watching; disconnect from the log."""
        self.ctx.hub.stop()
        self.consumers.stop()
        self.jobs.stop()
        self.log.stop()

    def routers(self) -> list[APIRouter]:
        """Sign-in, the board and its stream, and the static assets."""
        static = APIRouter()
        static.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="static")
        return [
            auth_router(self.ctx), board_router(self.ctx, self.feed), request_router(self.ctx),
            provider_router(self.ctx), alert_router(self.ctx),
            resident_router(self.ctx), beds_router(self.ctx), device_health_router(self.ctx), roster_router(self.ctx),
            report_router(self.ctx), dead_letter_router(self.ctx, self.dead_letters),
            dead_letters_router(self.dead_letters), system_page_router(self.ctx, self.consumers),
            system_router(self.consumers, self.jobs.notices), audit_router(self.ctx), static,
        ]

    def mount(self, app: FastAPI) -> None:
        """Register the CSRF check the API applies to cookie-signed unsafe requests, and keep
        /metrics for admins on this public port."""
        csrf = self.ctx.csrf
        # The console's port is the public one: its /metrics is for admins (see ApiSettings).
        app.state.metrics_admin_only = not ApiSettings().metrics_public
        app.state.cookie_csrf_check = lambda request, token: csrf.is_valid(token, request.headers.get(HEADER))

    def checks(self) -> dict[str, ReadinessCheck]:
        """Ready while the LISTEN connection is up (boards are live) and the log answers (dead letters)."""
        return {"listener": lambda: self.ctx.hub.listening, "log": lambda: self.log.connected}


def build(
    settings: Settings, pool: ConnectionPool, console: ConsoleSettings | None = None
) -> ConsoleComponent:
    """The console on this pool; nothing connects until `start()`."""
    console = console or ConsoleSettings()
    secure = console.cookie_secure
    if secure is None:
        secure = settings.environment == "production"
    ctx = ConsoleContext(
        pool=pool,
        settings=console,
        csrf=CsrfSigner(secret_key(settings)),
        hub=ChangeHub(pool.conninfo, console.channel, console.reconnect_max_s, tagged={console.alert_channel: ALERT}),
        templates=templates(),
        cookie_secure=secure,
        dispatch=dispatch_context(DispatchSettings()),
    )
    return ConsoleComponent(ctx, internal_log.connect(settings, "console"))
