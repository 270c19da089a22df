"""Bounded string types for request bodies: every string has a maximum length, and names refuse
control characters (they end up in pages, CSV files and logs)."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Field


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
Identifier = _name(64)  # an id given by a client
Note = Annotated[str, Field(max_length=2000)]  # free text, may span lines
