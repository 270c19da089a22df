"""`POST /api/v1/auth/token` (OAuth2 password flow) and account management."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from homecare.auth import (
    AuthError,
    Role,
    UnknownUser,
    UserExists,
    add_user,
    authenticate,
    issue_token,
    update_user,
)

from .deps import AdminUser, CurrentUser, DbConn

router = APIRouter(prefix="/api/v1", tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


@router.post("/auth/token", response_model=Token)
def token(form: Annotated[OAuth2PasswordRequestForm, Depends()], conn: DbConn) -> Token:
    """Exchange a username and password for a bearer token."""
    try:
        user = authenticate(conn, form.username, form.password)
    except AuthError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
    return Token(access_token=issue_token(conn, user))


class NewUser(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=8)
    role: Role
    provider_id: str | None = None


class UserOut(BaseModel):
    username: str
    role: Role
    provider_id: str | None = None


@router.post("/users", response_model=UserOut, status_code=201)
def create_account(body: NewUser, conn: DbConn, _: AdminUser) -> UserOut:
    """Create an account; admin only. An existing username is 409: change it with PATCH."""
    try:
        user = add_user(conn, body.username, body.password, body.role, body.provider_id)
    except UserExists as exc:
        raise HTTPException(409, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return UserOut(username=user.username, role=user.role, provider_id=user.provider_id)


class UserChange(BaseModel):
    password: str | None = Field(default=None, min_length=8)
    role: Role | None = None
    provider_id: str | None = None


@router.patch("/users/{username}", response_model=UserOut)
def change_account(username: str, body: UserChange, conn: DbConn, _: AdminUser) -> UserOut:
    """Reset a password or change a role; admin only. Every token and console session of the
    account ends at once."""
    try:
        user = update_user(conn, username, body.password, body.role, body.provider_id)
    except UnknownUser as exc:
        raise HTTPException(404, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return UserOut(username=user.username, role=user.role, provider_id=user.provider_id)


@router.get("/me", response_model=UserOut)
def me(user: CurrentUser) -> UserOut:
    """Who the token belongs to."""
    return UserOut(username=user.username, role=user.role, provider_id=user.provider_id)
