"""Bounded string types for request bodies: every string has a maximum length, and names refuse
control characters (they end up in pages, CSV files and logs)."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, Strict


def no_control_characters(value: str) -> str:
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value):
        raise ValueError("must not contain control characters")
    return value


def _name(max_length: int):
    return Annotated[str, Field(min_length=1, max_length=max_length), AfterValidator(no_control_characters)]


Name = _name(200)  # a person's, provider's or team's name
Line = _name(500)  # an address, a reason: one line of text
District = _name(100)
Phone = Annotated[str, Field(max_length=40), AfterValidator(no_control_characters)]
# An e-mail address as mail servers take it: local@domain.tld, no spaces or control characters,
# at most 254 characters (RFC 5321's limit on a path). Deliverability is the mail server's to judge.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
_EMAIL = re.compile(rf"[^@\s]{{1,64}}@{_LABEL}(?:\.{_LABEL})+")


def _email(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise ValueError("must be an e-mail address like name@example.org")
    return value


Email = Annotated[str, Field(min_length=3, max_length=254), AfterValidator(no_control_characters),
                  AfterValidator(_email)]
Identifier = _name(64)  # an id given by a client
Note = Annotated[str, Field(max_length=2000)]  # free text, may span lines


def _iso_only(value: object) -> object:
    """Pydantic would read a number (or a string of digits) as seconds since 1970; the schema
    says date-time, so only ISO 8601 text passes."""
    if isinstance(value, (int, float)) or (isinstance(value, str) and _NUMBER.fullmatch(value.strip())):
        raise ValueError("must be an ISO 8601 date-time, e.g. 2026-03-01T08:00:00Z")
    return value


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
Timestamp = Annotated[datetime, BeforeValidator(_iso_only)]
Flag = Annotated[bool, Strict()]  # true or false, not 0, 1 or "yes"
Latitude = Annotated[float, Strict(), Field(ge=-90, le=90)]  # a number, not true or "1"
Longitude = Annotated[float, Strict(), Field(ge=-180, le=180)]
