"""`POST /api/v1/auth/token` (OAuth2 password flow) and account management."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field, model_validator
from pydantic_core import PydanticCustomError

from homecare.api.types import District, Identifier
from homecare.auth import (
    AuthError,
    Role,
    UnknownUser,
    User,
    UserExists,
    add_user,
    audit,
    issue_token,
    update_user,
)
from homecare.auth.policy import MIN_LENGTH, password_problem
from homecare.auth.throttle import LockedOut, LoginThrottle, sign_in

from .deps import AdminUser, CurrentUser, DbConn
from .guard import INT64
from .settings import ApiSettings

router = APIRouter(prefix="/api/v1", tags=["auth"])


class ErrorOut(BaseModel):
    detail: str


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


def throttle_of(request: Request) -> LoginThrottle:
    """The app's sign-in throttle (the token endpoint and the console's login share it)."""
    throttle = getattr(request.app.state, "login_throttle", None)
    if throttle is None:  # an app not made by build_app
        throttle = request.app.state.login_throttle = LoginThrottle.from_settings(ApiSettings())
    return throttle


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.post("/auth/token", response_model=Token, responses={
    401: {"model": ErrorOut, "description": "Wrong username or password"},
    429: {"model": ErrorOut, "description": "Too many failed sign-ins; see Retry-After",
          "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}}},
})
def token(request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()], conn: DbConn) -> Token:
    """Exchange a username and password for a bearer token. Repeated failures for a username or
    from an address lock it out for a growing time: 429 with Retry-After."""
    try:
        user = sign_in(throttle_of(request), conn, form.username, form.password, client_address(request))
    except LockedOut as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
    except AuthError as exc:
        conn.commit()  # a lockout this failure started is in the audit log
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
    return Token(access_token=issue_token(conn, user))


@router.delete("/auth/lockouts/{username}", status_code=204)
def lift_lockout(username: str, request: Request, conn: DbConn, admin: AdminUser) -> Response:
    """End a username's sign-in lockout; admin only."""
    was_locked = throttle_of(request).lift(username, admin.username)
    audit.record(conn, audit.actor_of(admin), "lockout.lifted", f"user:{username}", {"was_locked": was_locked})
    return Response(status_code=204)


class NewUser(BaseModel):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
    password: str = Field(min_length=MIN_LENGTH, max_length=256, description=(
        f"At least {MIN_LENGTH} characters, not the username, not one of the most common passwords."))
    role: Role
    provider_id: Identifier | None = None
    districts: list[District] = Field(default_factory=list, max_length=50, description=(
        "The districts a dispatcher works for (residents' district names); a dispatcher of none"
        " sees nothing. Admins and `city` accounts see every district whatever is set here."))

    @model_validator(mode="after")
    def strong_password(self) -> NewUser:
        problem = password_problem(self.password, self.username)
        if problem:
            raise PydanticCustomError("weak_password", "password " + problem)
        return self


class UserOut(BaseModel):
    username: str
    role: Role
    provider_id: Identifier | None = None
    districts: list[str] = Field(default_factory=list, description="The account's districts, by name")

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(username=user.username, role=user.role, provider_id=user.provider_id,
                   districts=sorted(user.districts))


@router.post("/users", response_model=UserOut, status_code=201)
def create_account(body: NewUser, conn: DbConn, admin: AdminUser) -> UserOut:
    """Create an account; admin only. An existing username is 409: change it with PATCH."""
    try:
        user = add_user(conn, body.username, body.password, body.role, body.provider_id, body.districts)
    except UserExists as exc:
        raise HTTPException(409, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    audit.record(conn, audit.actor_of(admin), "user.created", f"user:{user.username}",
                 {"role": user.role.value, "provider_id": user.provider_id, "districts": sorted(user.districts)})
    return UserOut.of(user)


class UserChange(BaseModel):
    password: str | None = Field(default=None, min_length=MIN_LENGTH, max_length=256)
    role: Role | None = None
    provider_id: Identifier | None = None
    districts: list[District] | None = Field(default=None, max_length=50,
                                             description="Replaces the account's districts; left out: unchanged")


@router.patch("/users/{username}", response_model=UserOut)
def change_account(username: str, body: UserChange, conn: DbConn, admin: AdminUser) -> UserOut:
    """Reset a password, change a role or an account's districts; admin only. Every token and console session of the
    account ends at once."""
    problem = body.password is not None and password_problem(body.password, username)
    if problem:
        raise HTTPException(422, f"password: {problem}")
    try:
        user = update_user(conn, username, body.password, body.role, body.provider_id, body.districts)
    except UnknownUser as exc:
        raise HTTPException(404, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    audit.record(conn, audit.actor_of(admin), "user.changed", f"user:{user.username}", {
        "password_reset": body.password is not None, "role": user.role.value, "provider_id": user.provider_id,
        "districts": sorted(user.districts)})
    return UserOut.of(user)


@router.get("/me", response_model=UserOut)
def me(user: CurrentUser) -> UserOut:
    """Who the token belongs to, with the districts it sees."""
    return UserOut.of(user)


class AuditEntryOut(BaseModel):
    id: int = Field(description="Increases with every entry; pass as `before` to page on")
    at: datetime
    actor: str = Field(description="`role:username` of who did it, or `system` (a lockout)")
    action: str = Field(description="e.g. user.created, user.changed, lockout, lockout.lifted,"
                        " device.provisioned, device.revoked, provider.created, provider.shift_set")
    target: str = Field(description="What it was done to: `user:<name>`, `addr:<ip>`, `device:<id>`, `provider:<id>`")
    detail: dict[str, Any]


@router.get("/audit", response_model=list[AuditEntryOut], tags=["audit"])
def audit_log(
    conn: DbConn, _: AdminUser, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=1, le=INT64, description="Only entries older than this id")] = None,
) -> list[dict]:
    """The audit log, newest first: every admin action (accounts, lockouts lifted, devices,
    providers) and every sign-in lockout, with actor, action, target and time; admin only."""
    return audit.entries(conn, limit, before)
