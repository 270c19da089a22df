"""What a new password must be: long, not the username, not a well-known one."""

from __future__ import annotations

from functools import cache
from pathlib import Path

MIN_LENGTH = 12
_LIST = Path(__file__).with_name("common_passwords.txt")  # where it comes from: see its header


@cache
def common_passwords() -> frozenset[str]:
    lines = _LIST.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def password_problem(password: str, username: str | None = None) -> str | None:
    """Why this password may not be used, or None when it may."""
    if len(password) < MIN_LENGTH:
        return f"must have at least {MIN_LENGTH} characters"
    folded = password.strip().lower()
    if username and folded in (username.strip().lower(), username.strip().lower()[::-1]):
        return "must not be the username"
    if folded in common_passwords() or folded.rstrip("!.?1234567890") in common_passwords():
        return "is one of the most common passwords; choose another"
    if len(set(password)) < 4:
        return "must not be a few characters repeated"
    return None
