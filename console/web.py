"""Page plumbing: the console's context, its route class, sign-in guards and rendering."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from psycopg_pool import ConnectionPool

from homecare.api.deps import SESSION_COOKIE
from homecare.auth import AuthError, Role, User, user_for_token

from .changes import ChangeHub
from .csrf import FORM_FIELD, HEADER, CsrfSigner
from .settings import ConsoleSettings

if TYPE_CHECKING:
    from services.dispatch.interface import Dispatch

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
STATIC_PREFIX = "/static"
FLASH_COOKIE = "homecare_flash"  # one message for the page after a form's redirect

# Pages load nothing from elsewhere and run no inline script.
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


class PageResponse(Exception):
    """Raised by a guard to answer with this response instead (a redirect, a 403 page)."""

    def __init__(self, response: Response):
        super().__init__(response.status_code)
        self.response = response


class ConsoleRoute(APIRoute):
    """Routes whose guards may answer with a page, and whose answers carry security headers."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                response = await handler(request)
            except PageResponse as exc:
                response = exc.response
            for name, value in _SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            response.headers.setdefault("Cache-Control", "no-store")
            return response

        return route


@dataclass(frozen=True)
class Session:
    """A signed-in console user, the session token of the cookie, and its CSRF token."""

    user: User
    token: str
    csrf_token: str


@dataclass
class ConsoleContext:
    """Everything the console's routes need, built once by `bootstrap.build`."""

    pool: ConnectionPool
    settings: ConsoleSettings
    csrf: CsrfSigner
    hub: ChangeHub
    templates: Jinja2Templates
    cookie_secure: bool
    dispatch: Dispatch  # the configuration dispatch's use cases run with
    # The system banner's lines for staff pages (set by the bootstrap: the consumer watch's).
    notices: Callable[[], list[str]] = field(default=lambda: [])

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run one data function or use case in one transaction: `fn(conn, *args)`."""
        with self.pool.connection() as conn:
            return fn(conn, *args)

    def act(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run one use case in one transaction: `fn(conn, dispatch, *args)`."""
        with self.pool.connection() as conn:
            return fn(conn, self.dispatch, *args)

    def session(self, request: Request) -> Session | None:
        """The session of the request's cookie, or None when absent, expired or revoked."""
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return None
        try:
            with self.pool.connection() as conn:
                user = user_for_token(conn, token)
        except AuthError:
            return None
        return Session(user, token, self.csrf.token_for(token))

    def render(
        self, request: Request, template: str, context: dict[str, Any] | None = None,
        status_code: int = 200, session: Session | None = None,
    ) -> HTMLResponse:
        """A page; templates see `session` (or None) and `flash` besides the given context."""
        flash = _read_flash(request.cookies.get(FLASH_COOKIE))
        staff = session is not None and session.user.has_role(Role.DISPATCHER)
        response = self.templates.TemplateResponse(
            request, template, {"session": session, "flash": flash, "path": request.url.path,
                                "server_time": now_iso(), "system_notices": self.notices() if staff else [],
                                "banner_refresh_s": self.settings.banner_refresh_s,
                                **(context or {})}, status_code=status_code,
        )
        if flash:
            response.delete_cookie(FLASH_COOKIE, path="/")
        return response

    def done(self, target: str, message: str, ok: bool = True) -> RedirectResponse:
        """After a form: back to a page (303), which then shows the message once."""
        response = RedirectResponse(safe_next(target), status_code=303)
        response.set_cookie(FLASH_COOKIE, ("ok:" if ok else "error:") + quote(message[:500]), max_age=60,
                            path="/", httponly=True, samesite="strict", secure=self.cookie_secure)
        return response

    def forbidden(self, request: Request, session: Session | None, message: str) -> HTMLResponse:
        """The 403 page."""
        return self.render(request, "forbidden.html", {"message": message}, 403, session)


def _read_flash(value: str | None) -> dict[str, str] | None:
    if not value:
        return None
    kind, _, text = value.partition(":")
    if kind not in ("ok", "error") or not text:
        return None
    return {"kind": kind, "text": unquote(text)}


def token_alive(pool: ConnectionPool, token: str) -> bool:
    """Whether a session or bearer token still works (streams check now and then)."""
    try:
        with pool.connection() as conn:
            user_for_token(conn, token)
        return True
    except AuthError:
        return False


def login_redirect(request: Request) -> RedirectResponse:
    """Send the browser to sign in, then back to where it was going."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def safe_next(target: str | None, default: str = "/") -> str:
    """Only a path on this site: no scheme, no host, no `//` (an open redirect otherwise)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def page_guard(ctx: ConsoleContext, *roles: Role) -> Callable[[Request], Session]:
    """Dependency: the signed-in session; sign-in redirect when none, 403 page for other roles."""

    def guard(request: Request) -> Session:
        session = ctx.session(request)
        if session is None:
            raise PageResponse(login_redirect(request))
        if roles and not session.user.has_role(*roles):
            wanted = " or ".join(r.value for r in roles)
            raise PageResponse(ctx.forbidden(
                request, session, f"This page is for {wanted} accounts; you are signed in as"
                f" {session.user.username} ({session.user.role.value})."))
        return session

    return guard


def form_guard(ctx: ConsoleContext, *roles: Role) -> Callable[[Request], Awaitable[Session]]:
    """Dependency for POSTs: `page_guard` plus a valid CSRF token (form field or header)."""
    page = page_guard(ctx, *roles)

    async def guard(request: Request) -> Session:
        session = await run_in_threadpool(page, request)
        token = request.headers.get(HEADER)
        if token is None:
            token = (await request.form()).get(FORM_FIELD)
        if not ctx.csrf.is_valid(session.token, token if isinstance(token, str) else None):
            raise PageResponse(ctx.forbidden(
                request, session, "This form has expired or did not come from the console."
                " Reload the page and try again."))
        return session

    return guard


def now_iso() -> str:
    """The server's clock, so pages can count SLA time down against it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso(value: Any) -> str:
    """A datetime as ISO 8601 in UTC with a Z (strings pass through), for <time datetime>."""
    if isinstance(value, datetime):
        at = value if value.tzinfo else value.replace(tzinfo=UTC)
        return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return "" if value is None else str(value)


def templates(asset_dir: Path = STATIC_DIR) -> Jinja2Templates:
    """Jinja templates with `asset(name)`: a static URL that changes when the file does."""
    versions = {
        path.relative_to(asset_dir).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()[:10]
        for path in asset_dir.rglob("*") if path.is_file()
    }

    def asset(name: str) -> str:
        return f"{STATIC_PREFIX}/{name}?v={versions.get(name, '0')}"

    out = Jinja2Templates(directory=str(HERE / "templates"))
    out.env.globals["asset"] = asset
    out.env.globals["csrf_field"] = FORM_FIELD
    out.env.filters["iso"] = iso
    return out
