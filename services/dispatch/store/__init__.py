"""Data functions of the `dispatch` schema: each takes a connection and never commits."""

from __future__ import annotations

import uuid


def new_id(prefix: str, nbytes: int = 6) -> str:
    """A short random id with a readable prefix, e.g. `r-3f9a1c2b7d4e`."""
    return f"{prefix}-{uuid.uuid4().hex[: nbytes * 2]}"
