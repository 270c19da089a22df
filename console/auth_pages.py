"""Sign-in and sign-out: the session cookie is a bearer token, so the API accepts it too."""

# No `from __future__ import annotations`: FastAPI must evaluate the local `Depends(...)`.

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from homecare.api.auth_routes import client_address, throttle_of
from homecare.api.deps import SESSION_COOKIE
from homecare.auth import AuthError, Role, User, issue_token
from homecare.auth.throttle import LockedOut, sign_in
from homecare.auth.users import TOKEN_LIFETIME, revoke_token

from .csrf import LOGIN_COOKIE, new_login_token, same_token
from .web import ConsoleContext, ConsoleRoute, Session, form_guard, safe_next


def home_for(user: User) -> str:
    """Where a user lands after signing in: providers on their jobs, everyone else on the board."""
    return "/provider" if user.role is Role.PROVIDER else "/"


def auth_router(ctx: ConsoleContext) -> APIRouter:
    """`GET/POST /login`, `POST /logout`."""
    router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

    @router.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/") -> Response:
        """The sign-in form; straight on when already signed in."""
        session = ctx.session(request)
        if session is not None:
            target = home_for(session.user) if next in ("", "/") else safe_next(next, home_for(session.user))
            return RedirectResponse(target, status_code=303)
        return _login_page(ctx, request, next)

    @router.post("/login", response_class=HTMLResponse)
    def login(
        request: Request,
        username: Annotated[str, Form(max_length=64)] = "",
        password: Annotated[str, Form(max_length=256)] = "",
        csrf_token: Annotated[str, Form(max_length=128)] = "",
        next: Annotated[str, Form(max_length=2000)] = "/",
    ) -> Response:
        """Check the password, start a session, and go on to `next`."""
        if not same_token(request.cookies.get(LOGIN_COOKIE), csrf_token):
            return _login_page(ctx, request, next, username, status_code=403,
                               error="The sign-in form expired. Please sign in again.")
        try:
            with ctx.pool.connection() as conn:
                try:
                    user = sign_in(throttle_of(request), conn, username.strip(), password, client_address(request))
                except AuthError:
                    conn.commit()  # a lockout this failure started is in the audit log
                    raise
                token = issue_token(conn, user)
                old = request.cookies.get(SESSION_COOKIE)
                if old:  # a new sign-in replaces whatever session this browser had
                    revoke_token(conn, old)
        except LockedOut as exc:
            page = _login_page(ctx, request, next, username, status_code=429,
                               error=f"Too many failed sign-ins. Try again in {exc.retry_after} s.")
            page.headers["Retry-After"] = str(exc.retry_after)
            return page
        except AuthError:
            return _login_page(ctx, request, next, username, status_code=401,
                               error="Incorrect username or password.")
        # "/" is only the default: a provider's home is its own page, not the board.
        target = home_for(user) if next in ("", "/") else safe_next(next, home_for(user))
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE, token, max_age=int(TOKEN_LIFETIME.total_seconds()), path="/",
            httponly=True, samesite="lax", secure=ctx.cookie_secure,
        )
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        return response

    @router.post("/logout")
    def logout(session: Annotated[Session, Depends(form_guard(ctx))]) -> Response:
        """End the session: the token stops working for pages and the API alike."""
        with ctx.pool.connection() as conn:
            revoke_token(conn, session.token)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                               secure=ctx.cookie_secure)
        return response

    return router


def _login_page(
    ctx: ConsoleContext, request: Request, next: str, username: str = "",
    error: str | None = None, status_code: int = 200,
) -> HTMLResponse:
    # Double-submit: the form carries the value of a cookie only this site can set.
    token = request.cookies.get(LOGIN_COOKIE) or new_login_token()
    response = ctx.render(request, "login.html", {
        "next": safe_next(next), "username": username, "error": error, "login_csrf": token,
    }, status_code=status_code)
    response.set_cookie(LOGIN_COOKIE, token, path="/login", httponly=True, samesite="strict",
                        secure=ctx.cookie_secure)
    return response
