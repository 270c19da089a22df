"""Accounts, passwords and bearer tokens (http-v1 Access)."""

from .passwords import hash_secret, verify_secret
from .scope import Scope
from .users import (
    AuthError,
    Role,
    UnknownUser,
    User,
    UserExists,
    add_user,
    authenticate,
    create_user,
    issue_token,
    update_user,
    user_for_token,
)

__all__ = [
    "AuthError", "Role", "Scope", "UnknownUser", "User", "UserExists", "add_user", "authenticate", "create_user",
    "hash_secret", "issue_token", "update_user", "user_for_token", "verify_secret",
]
