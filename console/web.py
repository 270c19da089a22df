"""Page plumbing: the console's context, its route class, sign-in guards and rendering."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

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

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
STATIC_PREFIX = "/static"

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
        """A page; templates see `session` (or None) besides the given context."""
        return self.templates.TemplateResponse(
            request, template, {"session": session, **(context or {})}, status_code=status_code
        )

    def forbidden(self, request: Request, session: Session | None, message: str) -> HTMLResponse:
        """The 403 page."""
        return self.render(request, "forbidden.html", {"message": message}, 403, session)


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
    return out
