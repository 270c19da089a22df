"""FastAPI dependencies: a database connection per request, and the signed-in user."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from psycopg_pool import ConnectionPool

from homecare.auth import AuthError, Role, User, user_for_token

SESSION_COOKIE = "homecare_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A browser sends the session cookie with any request, also one another site makes it send, so a
# request signed in by the cookie with an unsafe method must prove it came from the console: the
# console registers `app.state.cookie_csrf_check(request, session_token) -> bool` (it checks the
# X-CSRF-Token header). Without a registered check such requests are refused. Bearer tokens are
# never sent by a browser on its own and need no such proof.
CookieCsrfCheck = Callable[[Request, str], bool]
_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def get_pool(request: Request) -> ConnectionPool:
    return request.app.state.pool


def get_conn(pool: Annotated[ConnectionPool, Depends(get_pool)]) -> Iterator[psycopg.Connection]:
    """A connection in a transaction that commits when the route returns without error."""
    with pool.connection() as conn:
        yield conn


# scope="function": commit when the route returns, BEFORE the response is sent. With the default
# ("request") FastAPI runs the exit code after sending, so a client could see 201 for a row that
# a next request does not find yet (seen: POST /residents, then POST /devices -> 404).
DbConn = Annotated[psycopg.Connection, Depends(get_conn, scope="function")]


def current_user(request: Request, conn: DbConn, token: Annotated[str | None, Depends(_bearer)]) -> User:
    """The user of the bearer token, or of the console session cookie; 401 otherwise, and 403
    for a cookie-signed unsafe request without a valid CSRF token."""
    from_cookie = not token
    token = token or request.cookies.get(SESSION_COOKIE)
    if not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "not signed in", headers={"WWW-Authenticate": "Bearer"}
        )
    # The request's own connection (FastAPI hands the same one to the route): a request that held
    # two pooled connections at once deadlocked the pool under concurrent load.
    try:
        user = user_for_token(conn, token)
    except AuthError as exc:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, str(exc), headers={"WWW-Authenticate": "Bearer"}
        ) from None
    if from_cookie and request.method not in SAFE_METHODS:
        check: CookieCsrfCheck | None = getattr(request.app.state, "cookie_csrf_check", None)
        if check is None or not check(request, token):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                "signed in by the session cookie: this request needs a valid X-CSRF-Token header",
            )
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def require(*roles: Role):
    """Dependency that lets admins and the named roles through, 403 for the rest."""

    def check(user: CurrentUser) -> User:
        if not user.has_role(*roles):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {user.role.value} may not do this")
        return user

    return check


AdminUser = Annotated[User, Depends(require(Role.ADMIN))]
DispatcherUser = Annotated[User, Depends(require(Role.DISPATCHER))]
# What covers every district at once (a planning run of the day): the city bureau and admins.
CityUser = Annotated[User, Depends(require(Role.CITY))]
ProviderUser = Annotated[User, Depends(require(Role.PROVIDER))]
StaffUser = Annotated[User, Depends(require(Role.DISPATCHER, Role.PROVIDER))]
